//! OTLP/gRPC: the `TraceService`, `LogsService` and `MetricsService` `Export` calls, gzip
//! accepted and sent, served by tonic over the hub's own HTTP/2 listener. Bad data answers
//! `INVALID_ARGUMENT`, a full store queue `UNAVAILABLE` (the exporter retries). A request tonic
//! cannot read (not protobuf, bad gzip, no message) is bad data too: tonic answers it `INTERNAL`
//! (gRPC's status-code guide), and [`bad_request_is_invalid_argument`] makes it
//! `INVALID_ARGUMENT`, so an OTLP exporter drops it instead of retrying it forever.

use std::sync::Arc;

use axum::Router;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use tonic::codec::CompressionEncoding::Gzip;
use tonic::{Request, Response, Status};

use super::{MAX_BODY, Outcome};
use crate::ingest::otlp::*;
use crate::shared::Shared;

#[derive(Clone)]
pub struct Otlp(pub Arc<Shared>);

fn status(o: Outcome) -> Result<Rejected, Status> {
    match o {
        Outcome::Taken(r) => Ok(r),
        Outcome::Invalid(m) => Err(Status::invalid_argument(m)),
        Outcome::Full => Err(Status::unavailable("the hub's store is behind: retry")),
    }
}

#[tonic::async_trait]
impl TraceService for Otlp {
    async fn export(
        &self,
        req: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let r = status(super::traces(&self.0, req.into_inner()).await)?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: (r.count > 0).then(|| ExportTracePartialSuccess {
                rejected_spans: r.count,
                error_message: r.message(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Otlp {
    async fn export(
        &self,
        req: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let r = status(super::logs(&self.0, req.into_inner()).await)?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: (r.count > 0).then(|| ExportLogsPartialSuccess {
                rejected_log_records: r.count,
                error_message: r.message(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Otlp {
    async fn export(
        &self,
        req: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let r = status(super::metrics(&self.0, req.into_inner()).await)?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: (r.count > 0).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: r.count,
                error_message: r.message(),
            }),
        }))
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    let o = Otlp(shared);
    tonic::service::Routes::new(
        TraceServiceServer::new(o.clone())
            .accept_compressed(Gzip)
            .send_compressed(Gzip)
            .max_decoding_message_size(MAX_BODY),
    )
    .add_service(
        LogsServiceServer::new(o.clone())
            .accept_compressed(Gzip)
            .send_compressed(Gzip)
            .max_decoding_message_size(MAX_BODY),
    )
    .add_service(
        MetricsServiceServer::new(o)
            .accept_compressed(Gzip)
            .send_compressed(Gzip)
            .max_decoding_message_size(MAX_BODY),
    )
    .into_axum_router()
    .layer(axum::middleware::map_response(
        bad_request_is_invalid_argument,
    ))
}

/// A trailers-only answer (`grpc-status` among the headers) with `INTERNAL` comes from tonic
/// failing to read the request, before any handler ran: the handlers here answer only
/// `INVALID_ARGUMENT` or `UNAVAILABLE`, and a failure encoding an answer comes in trailers.
async fn bad_request_is_invalid_argument(
    mut res: axum::response::Response,
) -> axum::response::Response {
    let internal = axum::http::HeaderValue::from(tonic::Code::Internal as i32);
    if res.headers().get(Status::GRPC_STATUS) == Some(&internal) {
        res.headers_mut().insert(
            Status::GRPC_STATUS,
            axum::http::HeaderValue::from(tonic::Code::InvalidArgument as i32),
        );
    }
    res
}
