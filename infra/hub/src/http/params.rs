//! What the hub's handlers share: query-string and form parameters, the deadline and the one
//! heavy query at a time every query runs under, and error answers that say nothing of the
//! hub's insides.

use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

/// Query string and (for form POSTs) body pairs, in order.
pub fn params(uri: &Uri, headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> =
        form_urlencoded::parse(uri.query().unwrap_or("").as_bytes())
            .into_owned()
            .collect();
    let is_form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("application/x-www-form-urlencoded"));
    if is_form && !body.is_empty() {
        out.extend(form_urlencoded::parse(body).into_owned());
    }
    out
}

/// The last value of `key` among `p`.
pub(crate) fn param<'a>(p: &'a [(String, String)], key: &str) -> Option<&'a str> {
    p.iter()
        .rev()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.as_str())
}

pub(crate) fn bad_request(msg: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, msg.to_string()).into_response()
}

/// Heavy queries at once (renders, log searches): a render may hold up to
/// [`graphite::MAX_REQUEST_POINTS`] points (80 MB) and a search [`MAX_LOG_LIMIT`] documents,
/// so they take turns rather than add up (the wait counts in the deadline).
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// This request's turn among the heavy queries, or the 503 to send past the deadline.
pub(crate) async fn heavy_turn() -> Result<tokio::sync::SemaphorePermit<'static>, Response> {
    match tokio::time::timeout(QUERY_DEADLINE, HEAVY.acquire()).await {
        Ok(Ok(p)) => Ok(p),
        _ => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            "other queries kept the hub busy past the deadline: try again",
        )
            .into_response()),
    }
}

/// The longest a query may take before it is answered 503 (its work is bounded besides).
pub const QUERY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);
/// The most log documents one search returns.
pub const MAX_LOG_LIMIT: usize = 10_000;

/// Run blocking query work under [`QUERY_DEADLINE`]; `Err` is the response to send (503 past
/// the deadline, 500 if the work panicked).
pub async fn query<T: Send + 'static>(
    what: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Response> {
    match tokio::time::timeout(QUERY_DEADLINE, tokio::task::spawn_blocking(work)).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(internal_error(what, &e)),
        Err(_) => Err((
            StatusCode::SERVICE_UNAVAILABLE,
            [(header::RETRY_AFTER, "5")],
            format!(
                "{what} took longer than {} s: narrow it (a shorter window, fewer series)",
                QUERY_DEADLINE.as_secs()
            ),
        )
            .into_response()),
    }
}

/// A 500 that says nothing of the hub's insides (a panic's text stays in the hub's log).
pub fn internal_error(what: &str, e: &dyn std::fmt::Display) -> Response {
    tracing::error!(error = %e, "{what} failed inside the hub");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("{what} failed inside the hub (its log says why)"),
    )
        .into_response()
}
