//! web-api, the book's consumer: `GET /` fetches recipe 42 from `http://$TARGET` and wraps it.
//!
//! - `GET /` → 200 `{"consumer_pid": <pid>, "producer_data": <recipe-api's body>}`;
//!   upstream refused or broken → 502, upstream slower than `UPSTREAM_TIMEOUT_MS` → 503, each with
//!   a JSON error body; it never hangs past the timeout.
//! - `GET /health` → `OK`; `GET /error` → 500 with a JSON error body (the book's failing route).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use lab_service_kit::client::{Client, ClientError};
use lab_service_kit::{JsonError, Settings};
use serde_json::{Value, json};

/// Default port, as in the book.
pub const DEFAULT_PORT: u16 = 3000;
/// Default upstream, as in the book (`process.env.TARGET || 'localhost:4000'`).
pub const DEFAULT_TARGET: &str = "127.0.0.1:4000";

/// What the handlers share.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    target: String,
    timeout: Duration,
    client: Client,
}

impl AppState {
    pub fn new(target: impl Into<String>, timeout: Duration) -> Self {
        Self {
            inner: Arc::new(Inner {
                target: target.into(),
                timeout,
                client: Client::new(),
            }),
        }
    }

    pub fn from_settings(s: &Settings) -> Self {
        Self::new(
            s.target.clone().unwrap_or_else(|| DEFAULT_TARGET.into()),
            s.upstream_timeout,
        )
    }
}

/// The service's routes.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/health", get(|| async { "OK" }))
        .route("/error", get(error))
        .fallback(|| async { JsonError::new(StatusCode::NOT_FOUND, "not_found", "no such route") })
        .layer(axum::middleware::from_fn(
            lab_service_kit::telemetry::request_log,
        ))
        .with_state(state)
}

async fn root(State(state): State<AppState>) -> Result<Json<Value>, JsonError> {
    let s = &state.inner;
    let url = format!("http://{}/recipes/42", s.target);
    let resp = s.client.get(&url, s.timeout).await.map_err(|e| match e {
        ClientError::Timeout(t) => JsonError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "upstream_timeout",
            format!("{} did not answer within {} ms", s.target, t.as_millis()),
        ),
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
    let producer_data = resp.json().map_err(|e| {
        JsonError::new(
            StatusCode::BAD_GATEWAY,
            "upstream_bad_json",
            format!("{url} sent invalid JSON: {e}"),
        )
    })?;
    Ok(Json(
        json!({ "consumer_pid": std::process::id(), "producer_data": producer_data }),
    ))
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
    lab_service_kit::serve::run_service("web-api", DEFAULT_PORT, |s| {
        router(AppState::from_settings(s))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_service_kit::client;
    use std::time::Instant;

    const T: Duration = Duration::from_secs(5);

    async fn start(router: Router) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(lab_service_kit::serve::serve(
            listener,
            router,
            std::future::pending(),
        ));
        addr.to_string()
    }

    #[tokio::test]
    async fn wraps_the_producers_answer() {
        let producer = start(Router::new().route(
            "/recipes/42",
            get(|| async { Json(json!({"producer_pid": 1, "recipe": {"id": 42}})) }),
        ))
        .await;
        let web = start(router(AppState::new(producer, T))).await;
        let r = client::get(&format!("http://{web}/"), T).await.unwrap();
        assert_eq!(r.status, 200);
        let v = r.json().unwrap();
        assert_eq!(v["consumer_pid"], std::process::id());
        assert_eq!(
            v["producer_data"],
            json!({"producer_pid": 1, "recipe": {"id": 42}})
        );
    }

    #[tokio::test]
    async fn a_dead_upstream_is_a_502_with_json() {
        // Bind then drop, so the port is (very likely) refused.
        let dead = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let web = start(router(AppState::new(dead.to_string(), T))).await;
        let r = client::get(&format!("http://{web}/"), T).await.unwrap();
        assert_eq!(r.status, 502);
        assert_eq!(r.json().unwrap()["error"], "upstream_unreachable");
    }

    #[tokio::test]
    async fn a_silent_upstream_is_a_503_within_the_timeout() {
        // Accepts connections but never answers.
        let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = silent.local_addr().unwrap();
        let _keep = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = silent.accept().await {
                held.push(s);
            }
        });
        let timeout = Duration::from_millis(300);
        let web = start(router(AppState::new(addr.to_string(), timeout))).await;
        let t0 = Instant::now();
        let r = client::get(&format!("http://{web}/"), T).await.unwrap();
        assert_eq!(r.status, 503);
        assert_eq!(r.json().unwrap()["error"], "upstream_timeout");
        assert!(t0.elapsed() < T, "answered only after {:?}", t0.elapsed());
    }

    #[tokio::test]
    async fn error_route_is_a_json_500() {
        let web = start(router(AppState::new(DEFAULT_TARGET, T))).await;
        let r = client::get(&format!("http://{web}/error"), T)
            .await
            .unwrap();
        assert_eq!(r.status, 500);
        assert_eq!(r.json().unwrap()["error"], "internal_error");
    }
}
