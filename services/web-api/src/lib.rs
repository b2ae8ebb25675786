//! web-api, the book's consumer: `GET /` fetches recipe 42 from `$TARGET` over the protocol
//! `TARGET_PROTOCOL` names, and answers with the shape of the book's matching consumer:
//!
//! - `http` (consumer-http-basic): `{"consumer_pid", "producer_data": <GET /recipes/42 body>}`;
//! - `https` (consumer-https-basic): the same over TLS, trusting only the CA in `TLS_CA`
//!   (a certificate from another CA, or an expired one, is a 502, never a plain-HTTP retry);
//! - `graphql` (web-api-graphql): `{"consumer_pid", "producer_data": <the GraphQL response>}`
//!   for the book's `kitchenSink` query with `{"id": "42"}`;
//! - `grpc` (web-api-grpc): `{"consumer_pid", "producer_data": {"pid"}, "recipe": {...}}`
//!   from `GetMetaData` and `GetRecipe({id: 42})`, called concurrently.
//!
//! Upstream refused or broken → 502, slower than `UPSTREAM_TIMEOUT_MS` → 503, each with a JSON
//! error body; it never hangs past the timeout. Clients are made once and pooled (keep-alive
//! HTTP, one multiplexed HTTP/2 channel for gRPC).
//! `GET /health` → `OK`; `GET /error` → 500 with a JSON error body (the book's failing route).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use lab_service_kit::JsonError;
use lab_service_kit::client::{Client, ClientError};
use lab_service_kit::observe::RequestCtx;
use serde_json::json;
use serde_json::value::RawValue;

/// Generated from recipe-api's contracts/recipe.proto.
pub mod pb {
    tonic::include_proto!("recipe");
}

/// Default port, as in the book.
pub const DEFAULT_PORT: u16 = 3000;
/// Default upstream, as in the book (`process.env.TARGET || 'localhost:4000'`).
pub const DEFAULT_TARGET: &str = "127.0.0.1:4000";
/// The book's GraphQL consumer query.
pub const KITCHEN_SINK: &str =
    "query kitchenSink ($id:ID) { recipe(id: $id) { id name ingredients { name quantity } } pid }";

/// How web-api talks to its upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TargetProtocol {
    #[default]
    Http,
    Https,
    Graphql,
    Grpc,
}

impl std::str::FromStr for TargetProtocol {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "http" => Ok(Self::Http),
            "https" => Ok(Self::Https),
            "graphql" => Ok(Self::Graphql),
            "grpc" => Ok(Self::Grpc),
            other => Err(format!(
                "TARGET_PROTOCOL {other:?} is not one of http, graphql, grpc"
            )),
        }
    }
}

/// gRPC over a pooled HTTP/2 client: requests go straight onto the multiplexed connection
/// (no buffer task in between, which tonic's `Channel` adds), and it reconnects by itself.
type GrpcTransport = hyper_util::client::legacy::Client<
    hyper_util::client::legacy::connect::HttpConnector,
    tonic::body::Body,
>;
type GrpcClient = pb::recipe_service_client::RecipeServiceClient<GrpcTransport>;

/// What the handlers share: the upstream and one client for it.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    timeout: Duration,
    protocol: TargetProtocol,
    http: Client,
    /// Connects on first use and again after recipe-api comes back.
    grpc: Option<GrpcClient>,
}

impl AppState {
    /// A consumer of `target`; for [`TargetProtocol::Https`] use [`AppState::https`].
    pub fn new(target: impl Into<String>, timeout: Duration, protocol: TargetProtocol) -> Self {
        Self::build(target.into(), timeout, protocol, Client::new())
    }

    /// An HTTPS consumer of `target` trusting exactly `tls` (the lab's CA).
    pub fn https(
        target: impl Into<String>,
        timeout: Duration,
        tls: std::sync::Arc<rustls::ClientConfig>,
    ) -> Self {
        Self::build(
            target.into(),
            timeout,
            TargetProtocol::Https,
            Client::with_tls(tls),
        )
    }

    fn build(target: String, timeout: Duration, protocol: TargetProtocol, http: Client) -> Self {
        let grpc = (protocol == TargetProtocol::Grpc).then(|| {
            let mut connector = hyper_util::client::legacy::connect::HttpConnector::new();
            connector.set_nodelay(true);
            connector.set_connect_timeout(Some(timeout));
            let transport =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .http2_only(true)
                    .build(connector);
            let origin = format!("http://{target}")
                .parse()
                .expect("TARGET is host:port");
            GrpcClient::with_origin(transport, origin)
        });
        Self {
            inner: Arc::new(Inner {
                target,
                timeout,
                protocol,
                http,
                grpc,
            }),
        }
    }
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(lab_service_kit::health::handler))
        .route("/error", get(error))
        .fallback(|| async { JsonError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(lab_service_kit::compression::GzipLayer)
        .layer(lab_service_kit::telemetry::RequestLogLayer)
        .with_state(state)
}

/// The book's consumer answer around the producer's JSON, passed through as it came (checked
/// to be JSON, never parsed into a tree and written again).
#[derive(serde::Serialize)]
struct Wrapped<'a> {
    consumer_pid: u32,
    producer_data: &'a RawValue,
}

/// The kitchenSink request body, serialised once.
static KITCHEN_SINK_BODY: std::sync::LazyLock<bytes::Bytes> = std::sync::LazyLock::new(|| {
    serde_json::to_vec(&json!({ "query": KITCHEN_SINK, "variables": { "id": "42" } }))
        .expect("serialises")
        .into()
});

/// The upstream's name in metrics, logs and spans (the book's `outbound.recipe-api.*`).
pub const UPSTREAM_NAME: &str = "recipe-api";

async fn root(
    State(state): State<AppState>,
    ctx: Option<Extension<RequestCtx>>,
) -> Result<axum::response::Response, JsonError> {
    let s = &state.inner;
    let url = match s.protocol {
        TargetProtocol::Http => format!("http://{}/recipes/42", s.target),
        TargetProtocol::Https => format!("https://{}/recipes/42", s.target),
        TargetProtocol::Graphql => format!("http://{}/graphql", s.target),
        TargetProtocol::Grpc => format!("grpc://{}/recipe.RecipeService", s.target),
    };
    let call = ctx.map(|Extension(c)| c.outbound(UPSTREAM_NAME, &url));
    let headers: Vec<(&'static str, String)> = call
        .as_ref()
        .map(|c| c.headers().to_vec())
        .unwrap_or_default();
    let result = call_upstream(s, &url, &headers).await;
    if let Some(call) = call {
        // The status the upstream answered; a 5xx we made of a failure to reach it is no answer.
        let status = match &result {
            Ok(_) => Some(200),
            Err(e) if e.code == "upstream_error" => Some(502),
            Err(_) => None,
        };
        call.finish(status);
    }
    result
}

async fn call_upstream(
    s: &Inner,
    url: &str,
    headers: &[(&'static str, String)],
) -> Result<axum::response::Response, JsonError> {
    let pid = lab_service_kit::pid();
    let hdrs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    match s.protocol {
        TargetProtocol::Http | TargetProtocol::Https => {
            let sent = s
                .http
                .request(hyper::Method::GET, url, &hdrs, None, s.timeout)
                .await;
            let body = json_of(url, sent, s)?;
            Ok(Json(Wrapped {
                consumer_pid: pid,
                producer_data: &body,
            })
            .into_response())
        }
        TargetProtocol::Graphql => {
            let query = Some(("application/json", KITCHEN_SINK_BODY.clone()));
            let sent = s
                .http
                .request(hyper::Method::POST, url, &hdrs, query, s.timeout)
                .await;
            let body = json_of(url, sent, s)?;
            Ok(Json(Wrapped {
                consumer_pid: pid,
                producer_data: &body,
            })
            .into_response())
        }
        TargetProtocol::Grpc => {
            let mut a = s.grpc.clone().expect("grpc client for the grpc protocol");
            let mut b = a.clone();
            let both = async {
                tokio::try_join!(
                    a.get_meta_data(with_b3(pb::Empty {}, headers)),
                    b.get_recipe(with_b3(pb::RecipeRequest { id: 42 }, headers))
                )
            };
            let (meta, recipe) = tokio::time::timeout(s.timeout, both)
                .await
                .map_err(|_| timeout_error(s))?
                .map_err(|status| grpc_error(s, status))?;
            let (meta, r) = (meta.into_inner(), recipe.into_inner());
            Ok(Json(json!({
                "consumer_pid": pid,
                "producer_data": { "pid": meta.pid },
                "recipe": {
                    "id": r.id, "name": r.name, "steps": r.steps,
                    "ingredients": r.ingredients.iter().map(|i| json!({"id": i.id, "name": i.name, "quantity": i.quantity})).collect::<Vec<_>>(),
                },
            })).into_response())
        }
    }
}

/// A gRPC request carrying the B3 headers as metadata.
fn with_b3<T>(msg: T, headers: &[(&'static str, String)]) -> tonic::Request<T> {
    let mut req = tonic::Request::new(msg);
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            req.metadata_mut().insert(*k, v);
        }
    }
    req
}

fn timeout_error(s: &Inner) -> JsonError {
    JsonError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "upstream_timeout",
        format!(
            "{} did not answer within {} ms",
            s.target,
            s.timeout.as_millis()
        ),
    )
}

/// The JSON body of a successful upstream answer, or the error web-api answers with.
fn json_of(
    url: &str,
    r: Result<lab_service_kit::client::Response, ClientError>,
    s: &Inner,
) -> Result<Box<RawValue>, JsonError> {
    let resp = r.map_err(|e| match e {
        ClientError::Timeout(_) => timeout_error(s),
        ClientError::Tls(m) => JsonError::new(StatusCode::BAD_GATEWAY, "upstream_tls", m),
        other => JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            other.to_string(),
        ),
    })?;
    if !resp.status.is_success() {
        return Err(JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{url} answered {}", resp.status),
        ));
    }
    let text = String::from_utf8(resp.body.to_vec()).map_err(|e| {
        JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_bad_json",
            format!("{url} sent invalid UTF-8: {e}"),
        )
    })?;
    RawValue::from_string(text).map_err(|e| {
        JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_bad_json",
            format!("{url} sent invalid JSON: {e}"),
        )
    })
}

/// Whether a gRPC failure is the transport failing to connect (tonic reports it as `Unknown`
/// with the client's error as its source).
fn is_connect_failure(status: &tonic::Status) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(e) = cur {
        if e.downcast_ref::<hyper_util::client::legacy::Error>()
            .is_some_and(|e| e.is_connect())
        {
            return true;
        }
        cur = e.source();
    }
    false
}

fn grpc_error(s: &Inner, status: tonic::Status) -> JsonError {
    let unreachable = status.code() == tonic::Code::Unavailable || is_connect_failure(&status);
    match status.code() {
        tonic::Code::DeadlineExceeded => timeout_error(s),
        _ if unreachable => JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_unreachable",
            format!("{}: {}", s.target, status.message()),
        ),
        code => JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_error",
            format!("{} answered gRPC {code:?}: {}", s.target, status.message()),
        ),
    }
}

async fn error() -> JsonError {
    JsonError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        "internal_error",
        "this route always fails (the book's /error)",
    )
}

/// Run web-api from the environment until SIGINT/SIGTERM.
pub fn main() -> Result<(), lab_service_kit::serve::ServiceError> {
    let protocol: TargetProtocol = std::env::var(lab_service_kit::settings::env::TARGET_PROTOCOL)
        .unwrap_or_default()
        .parse()
        .map_err(lab_service_kit::serve::ServiceError::Config)?;
    use lab_service_kit::serve::ServiceError;
    use lab_service_kit::tls::env::TLS_CA;
    let tls = match protocol {
        TargetProtocol::Https => {
            let ca = std::env::var_os(TLS_CA).ok_or_else(|| {
                ServiceError::Config(format!(
                    "TARGET_PROTOCOL=https needs {TLS_CA}, the CA to trust"
                ))
            })?;
            Some(lab_service_kit::tls::client_config(ca.as_ref())?)
        }
        _ => None,
    };
    lab_service_kit::service::run_service("web-api", DEFAULT_PORT, move |s| {
        let target = s.target.clone().unwrap_or_else(|| DEFAULT_TARGET.into());
        match tls {
            Some(tls) => router(AppState::https(target, s.upstream_timeout, tls)),
            None => router(AppState::new(target, s.upstream_timeout, protocol)),
        }
    })
}

#[cfg(test)]
mod tests;
