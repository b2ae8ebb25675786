//! The hub's HTTP API (one port): Graphite's render and find endpoints as Grafana and Cabot call
//! them, Prometheus exposition, log search, and the hub's status. The Zipkin v2 API has its own
//! port ([`zipkin`]); carbon plaintext its own TCP listener ([`carbon`]).

pub mod carbon;
pub mod prometheus;
pub mod zipkin;

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::Shared;
use crate::query::graphite::{self, Ctx, Source};
use crate::query::kql;
use crate::store::Store;

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
        .route("/", get(crate::dashboard::overview))
        .route("/logs", get(crate::dashboard::logs))
        .route("/traces", get(crate::dashboard::traces))
        .route("/traces/{id}", get(crate::dashboard::trace))
        .route("/alerts", get(crate::dashboard::alerts))
        .route("/graphs", get(crate::dashboard::metrics::graphs))
        .route("/load", get(crate::dashboard::load::page_handler))
        .route(
            "/api/loads",
            get(crate::dashboard::load::list).post(crate::dashboard::load::add),
        )
        .route("/health", get(|| async { "OK" }))
        .route("/render", get(render).post(render))
        .route("/render/", get(render).post(render))
        .route("/metrics/find", get(find).post(find))
        .route("/metrics/find/", get(find).post(find))
        .route("/metrics/expand", get(expand).post(expand))
        .route("/metrics/expand/", get(expand).post(expand))
        .route("/metrics/index.json", get(index_json))
        .route("/functions", get(functions))
        .route("/functions/", get(functions))
        .route("/events/get_data", get(|| async { axum::Json(json!([])) }))
        .route("/metrics", get(prometheus::handler))
        .route("/api/logs", get(logs))
        .route("/api/status", get(status))
        .route("/api/health", get(health))
        .route("/api/overview", get(crate::dashboard::overview_json))
        .route("/api/alerts", get(alerts_list).post(alerts_add))
        .route("/api/alerts/{name}", axum::routing::delete(alerts_remove))
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

fn bad_request(msg: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, msg.to_string()).into_response()
}

/// A render's answer (JSON, CSV or raw), written a series at a time as the client reads it:
/// the response never exists whole in memory, and each series is freed once sent.
struct SeriesBody {
    /// This render's turn, held until its last byte is sent (its series are in memory till then).
    _turn: tokio::sync::SemaphorePermit<'static>,
    series: std::vec::IntoIter<graphite::Series>,
    first: bool,
    /// Writes one series (`true` for the first).
    write: fn(&graphite::Series, bool, &mut String),
    prefix: Option<Bytes>,
    suffix: Option<Bytes>,
}

impl http_body::Body for SeriesBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        use std::task::Poll::Ready;
        let this = &mut *self;
        if let Some(p) = this.prefix.take().filter(|p| !p.is_empty()) {
            return Ready(Some(Ok(http_body::Frame::data(p))));
        }
        match this.series.next() {
            Some(s) => {
                let mut out = String::new();
                (this.write)(&s, std::mem::take(&mut this.first), &mut out);
                Ready(Some(Ok(http_body::Frame::data(Bytes::from(out)))))
            }
            None => Ready(
                this.suffix
                    .take()
                    .filter(|b| !b.is_empty())
                    .map(|b| Ok(http_body::Frame::data(b))),
            ),
        }
    }
}

/// Renders of more points than this stream their answer (chunked) instead of sending it whole.
const STREAM_PAST_POINTS: usize = 100_000;

/// Heavy queries at once (renders, log searches): a render may hold up to
/// [`graphite::MAX_REQUEST_POINTS`] points (80 MB) and a search [`MAX_LOG_LIMIT`] documents,
/// so they take turns rather than add up (the wait counts in the deadline).
static HEAVY: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(1);

/// This request's turn among the heavy queries, or the 503 to send past the deadline.
async fn heavy_turn() -> Result<tokio::sync::SemaphorePermit<'static>, Response> {
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

fn now_s() -> i64 {
    crate::now_s()
}

/// The store as a Graphite source.
pub struct StoreSource<'a>(pub &'a Store);

impl Source for StoreSource<'_> {
    fn names(&self) -> Vec<String> {
        self.0.series_names()
    }
    fn points(&self, name: &str, from: i64, until: i64) -> Vec<(i64, f64)> {
        self.0.points(name, from, until).unwrap_or_default()
    }
    fn step(&self) -> i64 {
        self.0.step
    }
}

/// Render targets over `[from, until]` (blocking: reads the store).
pub fn render_targets(
    store: &Store,
    targets: &[String],
    from: i64,
    until: i64,
    max_points: Option<usize>,
) -> Result<Vec<graphite::Series>, graphite::RenderError> {
    let source = StoreSource(store);
    let ctx = Ctx::new(&source, from, until);
    if targets.len() > graphite::MAX_TARGETS {
        return Err(graphite::RenderError(format!(
            "{} targets in one request; at most {}",
            targets.len(),
            graphite::MAX_TARGETS
        )));
    }
    let mut out = Vec::new();
    for t in targets {
        let expr = graphite::parse_target(t)?;
        let mut series = graphite::eval(&ctx, &expr)?;
        if let Some(max) = max_points {
            series.iter_mut().for_each(|s| s.limit_points(max));
        }
        out.extend(series);
    }
    Ok(out)
}

async fn render(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(&uri, &headers, &body);
    let now = now_s();
    let from = match graphite::parse_time(param(&p, "from").unwrap_or("-24h"), now) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    let until = match graphite::parse_time(param(&p, "until").unwrap_or("now"), now) {
        Ok(t) => t,
        Err(e) => return bad_request(e),
    };
    if until < from {
        return bad_request("until is before from");
    }
    let targets: Vec<String> = p
        .iter()
        .filter(|(k, _)| k == "target" || k == "target[]")
        .map(|(_, v)| v.clone())
        .collect();
    let max_points = param(&p, "maxDataPoints").and_then(|m| m.parse().ok());
    let format = param(&p, "format").unwrap_or("json").to_owned();
    let jsonp = param(&p, "jsonp").map(str::to_owned);
    let store = s.store.clone();
    let turn = match heavy_turn().await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let result = query("render", move || {
        render_targets(&store, &targets, from, until, max_points)
    })
    .await;
    let series = match result {
        Ok(Ok(series)) => series,
        Ok(Err(e)) => return bad_request(e),
        Err(resp) => return resp,
    };
    // Small answers go whole, with a length (as Graphite's do); large ones stream.
    let points: usize = series.iter().map(|s| s.values.len()).sum();
    let stream =
        |write: fn(&graphite::Series, bool, &mut String), prefix: String, suffix: &'static str| {
            if points <= STREAM_PAST_POINTS {
                let mut out = prefix;
                for (i, s) in series.iter().enumerate() {
                    write(s, i == 0, &mut out);
                }
                out.push_str(suffix);
                drop(turn);
                return axum::body::Body::from(out);
            }
            axum::body::Body::new(SeriesBody {
                _turn: turn,
                series: series.into_iter(),
                first: true,
                write,
                prefix: Some(Bytes::from(prefix)),
                suffix: Some(Bytes::from_static(suffix.as_bytes())),
            })
        };
    match format.as_str() {
        "json" => {
            let (prefix, suffix, ctype) = match jsonp {
                Some(cb)
                    if cb
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.') =>
                {
                    (format!("{cb}(["), "])", "text/javascript")
                }
                _ => ("[".to_owned(), "]", "application/json"),
            };
            let write = |s: &graphite::Series, first: bool, out: &mut String| {
                if !first {
                    out.push(',');
                }
                s.write_json(out);
            };
            (
                [(header::CONTENT_TYPE, ctype)],
                stream(write, prefix, suffix),
            )
                .into_response()
        }
        "csv" => {
            let write = |se: &graphite::Series, _: bool, out: &mut String| {
                use std::fmt::Write as _;
                for (i, v) in se.values.iter().enumerate() {
                    let ts =
                        time::OffsetDateTime::from_unix_timestamp(se.start + i as i64 * se.step)
                            .map_or(String::new(), crate::ymd_hms);
                    let _ = writeln!(
                        out,
                        "{},{ts},{}",
                        se.name,
                        v.map(|v| v.to_string()).unwrap_or_default()
                    );
                }
            };
            (
                [(header::CONTENT_TYPE, "text/csv")],
                stream(write, String::new(), ""),
            )
                .into_response()
        }
        "raw" => {
            let write = |se: &graphite::Series, _: bool, out: &mut String| {
                use std::fmt::Write as _;
                let _ = write!(
                    out,
                    "{},{},{},{}|",
                    se.name,
                    se.start,
                    se.start + se.values.len() as i64 * se.step,
                    se.step
                );
                for (i, v) in se.values.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    match v {
                        Some(v) => {
                            let _ = write!(out, "{v}");
                        }
                        None => out.push_str("None"),
                    }
                }
                out.push('\n');
            };
            (
                [(header::CONTENT_TYPE, "text/plain")],
                stream(write, String::new(), ""),
            )
                .into_response()
        }
        other => bad_request(format!("format {other:?} is not served (json, csv, raw)")),
    }
}

async fn find(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    let p = params(&uri, &headers, &body);
    let Some(query) = param(&p, "query").filter(|q| !q.is_empty()) else {
        return bad_request("missing parameter: query");
    };
    let nodes = graphite::find(&s.store.series_names(), query);
    match param(&p, "format").unwrap_or("treejson") {
        "treejson" => axum::Json(graphite::find_treejson(&nodes)).into_response(),
        "completer" => axum::Json(graphite::find_completer(&nodes)).into_response(),
        other => bad_request(format!(
            "format {other:?} is not served (treejson, completer)"
        )),
    }
}

async fn expand(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(&uri, &headers, &body);
    let leaves_only = param(&p, "leavesOnly") == Some("1");
    let names = s.store.series_names();
    let mut results = std::collections::BTreeSet::new();
    for q in p.iter().filter(|(k, _)| k == "query").map(|(_, v)| v) {
        for n in graphite::find(&names, q) {
            if !leaves_only || n.leaf {
                results.insert(n.id);
            }
        }
    }
    axum::Json(json!({ "results": results })).into_response()
}

async fn index_json(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.store.series_names()).into_response()
}

async fn functions() -> Response {
    let m: serde_json::Map<String, Value> = graphite::FUNCTIONS
        .iter()
        .map(|f| {
            (
                (*f).to_owned(),
                json!({"name": f, "group": "lab hub", "description": "", "params": []}),
            )
        })
        .collect();
    axum::Json(Value::Object(m)).into_response()
}

/// `GET /api/logs?query=KQL&since=5m|from=…&until=…&limit=100&order=desc`.
async fn logs(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = params(&uri, &headers, &[]);
    let q = match kql::parse(param(&p, "query").unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let now_ms = now_s() * 1000 + 999;
    let window = (|| -> Result<(i64, i64), String> {
        let until = match param(&p, "until") {
            Some(u) => kql::date_ms(u, now_ms)
                .or_else(|| u.parse().ok())
                .ok_or(format!("cannot read until={u:?}"))?,
            None => now_ms,
        };
        let from = match (param(&p, "since"), param(&p, "from")) {
            (Some(since), _) => until.saturating_sub(
                kql::duration_ms(since)
                    .ok_or(format!("cannot read since={since:?} (e.g. 5m, 1h)"))?,
            ),
            (None, Some(f)) => kql::date_ms(f, now_ms)
                .or_else(|| f.parse().ok())
                .ok_or(format!("cannot read from={f:?}"))?,
            (None, None) => 0,
        };
        Ok((from, until))
    })();
    let (from, until) = match window {
        Ok(w) => w,
        Err(e) => return bad_request(e),
    };
    let limit = param(&p, "limit")
        .and_then(|l| l.parse().ok())
        .unwrap_or(100usize);
    if limit > MAX_LOG_LIMIT {
        return bad_request(format!(
            "limit={limit}: at most {MAX_LOG_LIMIT} documents per search"
        ));
    }
    let oldest_first = param(&p, "order") == Some("asc");
    let _turn = match heavy_turn().await {
        Ok(t) => t,
        Err(resp) => return resp,
    };
    let store = s.store.clone();
    let res = query("the log search", move || {
        store.logs_raw(from, until, limit, oldest_first, |d| {
            kql::matches(&q, d, now_ms)
        })
    })
    .await;
    match res {
        Ok(Ok((hits, total))) => {
            // Each document as it is stored (valid JSON), not parsed and written again.
            use std::fmt::Write as _;
            let mut out =
                String::with_capacity(64 + hits.iter().map(|h| h.doc.len() + 128).sum::<usize>());
            let _ = write!(out, "{{\"total\":{total},\"hits\":[");
            for (i, h) in hits.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(
                    out,
                    "{{\"_index\":{},\"_id\":\"{}\",\"_source\":{},\"_meta\":{{\"source_ip\":{},\"ts_ms\":{}}}}}",
                    Value::from(h.index.as_str()),
                    h.id,
                    h.doc,
                    h.source.as_deref().map_or(Value::Null, Value::from),
                    h.ts_ms
                );
            }
            out.push_str("]}");
            ([(header::CONTENT_TYPE, "application/json")], out).into_response()
        }
        Ok(Err(e)) => internal_error("the query", &e),
        Err(resp) => resp,
    }
}

async fn status(State(s): State<Arc<Shared>>) -> Response {
    let counters: serde_json::Map<String, Value> = s
        .counters
        .snapshot()
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
    let store = s.store.clone();
    let (counts, usage) = tokio::task::spawn_blocking(move || (store.counts(), store.usage()))
        .await
        .map(|(c, u)| (c.ok(), u.ok()))
        .unwrap_or((None, None));
    let r = s.store.retention;
    let pruned = &s.store.pruned;
    use std::sync::atomic::Ordering::Relaxed;
    let store_json = json!({
        "used_bytes": usage.map(|u| u.0),
        "file_bytes": usage.map(|u| u.1),
        "max_bytes": r.max_bytes,
        "max_age_ms": r.max_age_ms,
        "pruned": {
            "logs": pruned.logs.load(Relaxed),
            "points": pruned.points.load(Relaxed),
            "spans": pruned.spans.load(Relaxed),
        },
    });
    let addrs = s.addrs.lock().ok().and_then(|a| *a);
    axum::Json(json!({
        "addrs": addrs,
        "counters": counters,
        "stored": counts.map(|(logs, series, spans)| json!({"logs": logs, "series": series, "spans": spans})),
        "store": store_json,
        "flush_interval_ms": s.config.flush_interval_ms,
    }))
    .into_response()
}

/// `GET /api/health`: the polled state of every instance.
async fn health(State(s): State<Arc<Shared>>) -> Response {
    let entries = s.health.lock().map(|e| e.clone()).unwrap_or_default();
    axum::Json(entries).into_response()
}

/// `GET /api/alerts`: every rule with its standing.
async fn alerts_list(State(s): State<Arc<Shared>>) -> Response {
    let all = s.alerts.lock().map(|a| a.clone()).unwrap_or_default();
    axum::Json(all).into_response()
}

/// `POST /api/alerts` with a rule (JSON): added, or replacing a run-time rule of that name.
async fn alerts_add(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let rule: crate::alerts::Rule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("not a rule: {e}")),
    };
    // A target the hub could not evaluate is refused now, not at the next evaluation.
    if let crate::alerts::Check::Metric { target, .. } = &rule.check
        && let Err(e) = graphite::parse_target(target)
    {
        return bad_request(format!("the rule's target: {e}"));
    }
    let kept = {
        let mut all = s.alerts.lock().unwrap_or_else(|p| p.into_inner());
        if all.iter().any(|a| a.rule.name == rule.name && !a.runtime) {
            return (
                StatusCode::CONFLICT,
                format!("{} is a rule of lab.toml", rule.name),
            )
                .into_response();
        }
        all.retain(|a| a.rule.name != rule.name);
        let kept = crate::store::Write::RuntimeRule {
            name: rule.name.clone(),
            rule: serde_json::to_string(&rule).ok(),
        };
        all.push(crate::alerts::RuleState::new(rule, true));
        kept
    };
    // Kept in the store, so a restarted hub evaluates it still.
    if !s
        .store
        .write_within(kept, std::time::Duration::from_secs(2))
        .await
    {
        return internal_error("keeping the rule", &"the store's queue is full");
    }
    StatusCode::CREATED.into_response()
}

/// `DELETE /api/alerts/{name}`: remove a run-time rule.
async fn alerts_remove(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let removed = {
        let mut all = s.alerts.lock().unwrap_or_else(|p| p.into_inner());
        let before = all.len();
        all.retain(|a| !(a.rule.name == name && a.runtime));
        all.len() != before
    };
    if !removed {
        return (StatusCode::NOT_FOUND, format!("no run-time rule {name}")).into_response();
    }
    let gone = crate::store::Write::RuntimeRule { name, rule: None };
    if !s
        .store
        .write_within(gone, std::time::Duration::from_secs(2))
        .await
    {
        return internal_error("forgetting the rule", &"the store's queue is full");
    }
    StatusCode::NO_CONTENT.into_response()
}
