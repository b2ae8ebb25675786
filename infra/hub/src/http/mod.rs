//! The hub's HTTP port: the router (every page and API, one table), and the browser guard
//! in front of it. Handlers live in [`crate::api`] and [`crate::dashboard`]; what they share
//! (query strings, deadlines, error answers) is in [`params`], below both.

pub mod params;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::api::{alerts, graphite, logs, prometheus, status};
use crate::dashboard;
use crate::shared::Shared;

/// Serve a router until `stop` turns true.
pub async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let shutdown = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    if let Err(e) = axum::serve(listener, router)
        .with_graceful_shutdown(shutdown)
        .await
    {
        tracing::warn!(error = %e, "hub: HTTP server stopped");
    }
}

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(dashboard::overview::page))
        .route("/logs", get(dashboard::logs::page))
        .route("/traces", get(dashboard::traces::page))
        .route("/traces/{id}", get(dashboard::traces::trace))
        .route("/alerts", get(dashboard::alerts::page))
        .route("/graphs", get(dashboard::metrics::graphs))
        .route("/load", get(dashboard::load::page_handler))
        .route(
            "/api/loads",
            get(dashboard::load::list).post(dashboard::load::add),
        )
        .route("/health", get(|| async { "OK" }))
        .route("/render", get(graphite::render).post(graphite::render))
        .route("/render/", get(graphite::render).post(graphite::render))
        .route("/metrics/find", get(graphite::find).post(graphite::find))
        .route("/metrics/find/", get(graphite::find).post(graphite::find))
        .route(
            "/metrics/expand",
            get(graphite::expand).post(graphite::expand),
        )
        .route(
            "/metrics/expand/",
            get(graphite::expand).post(graphite::expand),
        )
        .route("/metrics/index.json", get(graphite::index_json))
        .route("/functions", get(graphite::functions))
        .route("/functions/", get(graphite::functions))
        .route("/events/get_data", get(|| async { axum::Json(json!([])) }))
        .route("/metrics", get(prometheus::handler))
        .route("/api/logs", get(logs::logs))
        .route("/api/status", get(status::status))
        .route("/api/health", get(status::health))
        .route("/api/overview", get(dashboard::overview::json))
        .route("/api/alerts", get(alerts::list).post(alerts::add))
        .route("/api/alerts/{name}", axum::routing::delete(alerts::remove))
        .layer(axum::middleware::from_fn_with_state(shared.clone(), guard))
        .with_state(shared)
}

// === browser safety ===

/// The host part of a `Host` header or an origin's authority (`[::1]:8080` → `::1`).
fn host_part(authority: &str) -> &str {
    let a = authority.trim();
    if let Some(rest) = a.strip_prefix('[') {
        return rest.split(']').next().unwrap_or("");
    }
    match a.rsplit_once(':') {
        Some((h, p)) if p.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => a,
    }
}

/// A name this machine's loopback answers to (a DNS-rebinding page's name is not one).
fn local_name(host: &str, bound: std::net::IpAddr) -> bool {
    let h = host_part(host).to_ascii_lowercase();
    h == "localhost"
        || h.parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback() || ip == bound)
}

/// What a web page must not be able to do to the hub:
/// - with the hub on loopback (the default), every route answers only a `Host` that names
///   loopback (`127.0.0.1`, `localhost`, `[::1]`): a page reached through a rebound DNS name
///   gets 403 (bound elsewhere, `[hub] host` is the user's choice and any name is served);
/// - a request that changes something (not GET, HEAD or OPTIONS) with an `Origin` other than
///   the hub's own gets 403;
/// - a POST to `/api/...` must say `Content-Type: application/json` (415 otherwise), which no
///   plain HTML form can send without a preflight the hub does not grant.
async fn guard(
    State(s): State<Arc<Shared>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = req.headers();
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if s.config.host.is_loopback() && !host.is_empty() && !local_name(host, s.config.host) {
        return (
            StatusCode::FORBIDDEN,
            format!("the hub answers its loopback names only, not Host {host}"),
        )
            .into_response();
    }
    let method = req.method().clone();
    let safe = matches!(
        method,
        axum::http::Method::GET | axum::http::Method::HEAD | axum::http::Method::OPTIONS
    );
    if !safe {
        if let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
            let authority = origin.split_once("://").map_or(origin, |(_, a)| a);
            if !authority.eq_ignore_ascii_case(host) {
                return (
                    StatusCode::FORBIDDEN,
                    format!("{method} from the page at {origin} is refused: the hub changes state only for its own pages and for clients that send no Origin"),
                )
                    .into_response();
            }
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/json"));
        if method == axum::http::Method::POST && req.uri().path().starts_with("/api/") && !json {
            return (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "send the body as Content-Type: application/json",
            )
                .into_response();
        }
    }
    next.run(req).await
}
