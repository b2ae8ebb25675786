//! Tracing for services: one `EnvFilter` knob (`RUST_LOG`) and one log line per request.

use std::time::Instant;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::Response;
use tracing_subscriber::EnvFilter;

/// Install a fmt subscriber writing to stderr; `RUST_LOG` overrides the default `info`.
/// Calling it twice is harmless (the second call does nothing).
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
    tracing::debug!(service, "tracing ready");
}

/// Middleware: log method, path, status and latency of every request, once, when it completes.
pub async fn request_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let start = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        path,
        status = response.status().as_u16(),
        latency_ms = format_args!("{:.3}", start.elapsed().as_secs_f64() * 1e3),
        "request"
    );
    response
}
