//! OTLP/HTTP: `POST /v1/traces`, `/v1/logs`, `/v1/metrics` with `application/x-protobuf` or
//! `application/json` bodies (gzip accepted), answered in the request's content type: 200 with
//! the export response (its `partial_success` when some items were rejected), 400 with a
//! `google.rpc.Status` for bad data, 413 past [`MAX_BODY`], 415 for other content types, 503
//! with `Retry-After` while the store's queue is full.

use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{MAX_BODY, Outcome, RETRY_AFTER_S};
use crate::ingest::otlp::*;
use crate::shared::Shared;

pub const PROTOBUF: &str = "application/x-protobuf";
pub const JSON: &str = "application/json";

/// `google.rpc.Status`, the body of OTLP/HTTP's error answers (its `details` left empty).
#[derive(Clone, PartialEq, prost::Message, Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
}

/// gRPC's codes, as `google.rpc.Status` carries them.
pub const INVALID_ARGUMENT: i32 = 3;
pub const RESOURCE_EXHAUSTED: i32 = 8;
pub const UNAVAILABLE: i32 = 14;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v1/traces", post(traces))
        .route("/v1/logs", post(logs))
        .route("/v1/metrics", post(metrics))
        .with_state(shared)
}

#[derive(Clone, Copy, PartialEq)]
enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    fn of(headers: &HeaderMap) -> Option<Encoding> {
        let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
        let mime = ct.split(';').next()?.trim();
        if mime.eq_ignore_ascii_case(PROTOBUF) {
            Some(Encoding::Protobuf)
        } else if mime.eq_ignore_ascii_case(JSON) {
            Some(Encoding::Json)
        } else {
            None
        }
    }
    fn mime(self) -> &'static str {
        match self {
            Encoding::Protobuf => PROTOBUF,
            Encoding::Json => JSON,
        }
    }
}

fn answer<T: prost::Message + Serialize>(status: StatusCode, enc: Encoding, msg: &T) -> Response {
    let body = match enc {
        Encoding::Protobuf => msg.encode_to_vec(),
        Encoding::Json => serde_json::to_vec(msg).unwrap_or_default(),
    };
    (status, [(header::CONTENT_TYPE, enc.mime())], body).into_response()
}

fn error(s: &Shared, status: StatusCode, enc: Encoding, code: i32, message: String) -> Response {
    if status != StatusCode::SERVICE_UNAVAILABLE {
        s.counters.otlp_bad_requests.fetch_add(1, Relaxed);
    }
    let mut r = answer(status, enc, &RpcStatus { code, message });
    if status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, RETRY_AFTER_S.into());
    }
    r
}

/// The request's body, un-gzipped and bounded, decoded as its content type says.
async fn decode<T: prost::Message + Default + DeserializeOwned>(
    s: &Shared,
    req: Request,
) -> Result<(T, Encoding), Response> {
    let (parts, body) = req.into_parts();
    let Some(enc) = Encoding::of(&parts.headers) else {
        let got = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("none")
            .to_owned();
        return Err(error(
            s,
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Encoding::Json,
            INVALID_ARGUMENT,
            format!("content type {got}: OTLP/HTTP takes {PROTOBUF} or {JSON}"),
        ));
    };
    let too_large = || {
        error(
            s,
            StatusCode::PAYLOAD_TOO_LARGE,
            enc,
            RESOURCE_EXHAUSTED,
            format!(
                "a body may hold at most {} MiB (after gunzip): export smaller batches",
                MAX_BODY >> 20
            ),
        )
    };
    let bytes: Bytes = axum::body::to_bytes(Body::new(body), MAX_BODY)
        .await
        .map_err(|_| too_large())?;
    let coding = parts
        .headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("identity")
        .trim()
        .to_ascii_lowercase();
    let bytes = match coding.as_str() {
        "identity" | "" => bytes,
        "gzip" => {
            let mut out = Vec::new();
            if let Err(e) = flate2::read::GzDecoder::new(&bytes[..])
                .take(MAX_BODY as u64 + 1)
                .read_to_end(&mut out)
            {
                return Err(error(
                    s,
                    StatusCode::BAD_REQUEST,
                    enc,
                    INVALID_ARGUMENT,
                    format!("cannot gunzip the body: {e}"),
                ));
            }
            if out.len() > MAX_BODY {
                return Err(too_large());
            }
            Bytes::from(out)
        }
        other => {
            return Err(error(
                s,
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                enc,
                INVALID_ARGUMENT,
                format!("content encoding {other}: the hub takes gzip or none"),
            ));
        }
    };
    let decoded = match enc {
        Encoding::Protobuf => {
            T::decode(bytes).map_err(|e| format!("not an OTLP protobuf message: {e}"))
        }
        Encoding::Json => {
            json::decode::<T>(&bytes).map_err(|e| format!("not an OTLP/JSON message: {e}"))
        }
    };
    decoded
        .map(|t| (t, enc))
        .map_err(|m| error(s, StatusCode::BAD_REQUEST, enc, INVALID_ARGUMENT, m))
}

fn respond<T: prost::Message + Serialize>(
    s: &Shared,
    enc: Encoding,
    outcome: Outcome,
    ok: impl FnOnce(Rejected) -> T,
) -> Response {
    match outcome {
        Outcome::Taken(r) => answer(StatusCode::OK, enc, &ok(r)),
        Outcome::Invalid(m) => error(s, StatusCode::BAD_REQUEST, enc, INVALID_ARGUMENT, m),
        Outcome::Full => error(
            s,
            StatusCode::SERVICE_UNAVAILABLE,
            enc,
            UNAVAILABLE,
            "the hub's store is behind: retry".into(),
        ),
    }
}

async fn traces(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (r, enc) = match decode::<ExportTraceServiceRequest>(&s, req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let outcome = super::traces(&s, r).await;
    respond(&s, enc, outcome, |r| ExportTraceServiceResponse {
        partial_success: (r.count > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: r.count,
            error_message: r.message(),
        }),
    })
}

async fn logs(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (r, enc) = match decode::<ExportLogsServiceRequest>(&s, req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let outcome = super::logs(&s, r).await;
    respond(&s, enc, outcome, |r| ExportLogsServiceResponse {
        partial_success: (r.count > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: r.count,
            error_message: r.message(),
        }),
    })
}

async fn metrics(State(s): State<Arc<Shared>>, req: Request) -> Response {
    let (r, enc) = match decode::<ExportMetricsServiceRequest>(&s, req).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let outcome = super::metrics(&s, r).await;
    respond(&s, enc, outcome, |r| ExportMetricsServiceResponse {
        partial_success: (r.count > 0).then(|| ExportMetricsPartialSuccess {
            rejected_data_points: r.count,
            error_message: r.message(),
        }),
    })
}
