//! The Zipkin v2 API on its own port (docs/OBSERVABILITY.md §4): the collector (`POST /api/v2/spans`,
//! JSON, gzip accepted, `202` with an empty body) and the query endpoints Zipkin's UI calls,
//! all with `Access-Control-Allow-Origin: *`.

use std::collections::{BTreeMap, HashMap};
use std::io::Read as _;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::http::params::params as query_params;
use crate::ingest::zipkin::read_spans;
use crate::shared::Shared;
use crate::store::{Listed, SpanBatch, SpanFilter, Write};

/// The largest span body taken, as sent and after gunzip (413 past it, naming it).
pub const MAX_BODY: u64 = 16 << 20;

pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(
            "/api/v2/spans",
            post(collect).get(span_names).options(preflight),
        )
        .route("/api/v2/services", get(services))
        .route("/api/v2/remoteServices", get(remote_services))
        .route("/api/v2/traces", get(traces))
        .route("/api/v2/trace/{id}", get(trace))
        .route("/api/v2/traceMany", get(trace_many))
        .route("/api/v2/dependencies", get(dependencies))
        .route(
            "/api/v2/autocompleteKeys",
            get(|| async { axum::Json(json!([])) }),
        )
        .route(
            "/api/v2/autocompleteValues",
            get(|| async { axum::Json(json!([])) }),
        )
        .route(
            "/health",
            get(|| async { axum::Json(json!({"status": "UP", "zipkin": {"status": "UP"}})) }),
        )
        .layer(axum::middleware::map_response(cors))
        // The documented limit is the one enforced, with its own words (not the framework's 2 MB).
        .layer(axum::extract::DefaultBodyLimit::max(MAX_BODY as usize))
        .layer(axum::middleware::map_response(|r: Response| async move {
            if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
                too_large()
            } else {
                r
            }
        }))
        .with_state(shared)
}

async fn cors(mut r: Response) -> Response {
    r.headers_mut().insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    r
}

async fn preflight() -> Response {
    (
        StatusCode::NO_CONTENT,
        [
            (header::ACCESS_CONTROL_ALLOW_METHODS, "GET, POST, OPTIONS"),
            (
                header::ACCESS_CONTROL_ALLOW_HEADERS,
                "content-type, content-encoding",
            ),
        ],
    )
        .into_response()
}

fn too_large() -> Response {
    (
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "a span body may hold at most {} MiB (after gunzip): send smaller batches",
            MAX_BODY >> 20
        ),
    )
        .into_response()
}

fn bad(msg: impl std::fmt::Display) -> Response {
    (StatusCode::BAD_REQUEST, msg.to_string()).into_response()
}

async fn collect(State(s): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip"));
    let body = if gzip {
        let mut out = Vec::new();
        let read = flate2::read::GzDecoder::new(&body[..])
            .take(MAX_BODY + 1)
            .read_to_end(&mut out);
        if let Err(e) = read {
            s.counters.spans_rejected.fetch_add(1, Relaxed);
            return bad(format!("cannot gunzip the body: {e}"));
        }
        if out.len() as u64 > MAX_BODY {
            s.counters.spans_rejected.fetch_add(1, Relaxed);
            return too_large();
        }
        Bytes::from(out)
    } else {
        body
    };
    // Each span goes straight into its block's encoding (~400 bytes of it a span).
    let mut spans = SpanBatch::with_capacity(body.len() / 400 + 1);
    match read_spans(&body, |s| spans.push(&s)) {
        Ok(_) => {
            let n = spans.len() as u64;
            s.counters.spans_received.fetch_add(n, Relaxed);
            // A full store queue holds the reply back (the client waits, as for a slow Zipkin)
            // for up to 5 s before the spans are dropped and counted.
            if !spans.is_empty()
                && !s
                    .store
                    .write_within(Write::Spans(spans), std::time::Duration::from_secs(5))
                    .await
            {
                s.counters.spans_dropped_queue.fetch_add(n, Relaxed);
            }
            StatusCode::ACCEPTED.into_response()
        }
        Err(e) => {
            s.counters.spans_rejected.fetch_add(1, Relaxed);
            bad(format!("Cannot decode spans: {e}"))
        }
    }
}

/// A list the store keeps of the spans' names (see `store::Listed`).
fn listed(s: &Shared, what: Listed, service: Option<&str>) -> Response {
    let service = service.map(str::to_lowercase);
    match s.store.span_names(what, service.as_deref()) {
        Ok(v) => axum::Json(v).into_response(),
        Err(e) => crate::http::params::internal_error("the query", &e),
    }
}

async fn services(State(s): State<Arc<Shared>>) -> Response {
    listed(&s, Listed::Service, None)
}

/// A list of one service's names (`?serviceName=` required).
fn of_service(s: &Shared, uri: &Uri, headers: &HeaderMap, what: Listed) -> Response {
    let p = query_params(uri, headers, &[]);
    match p.iter().find(|(k, _)| k == "serviceName") {
        Some((_, svc)) => listed(s, what, Some(svc)),
        None => bad("serviceName is required"),
    }
}

async fn span_names(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    of_service(&s, &uri, &headers, Listed::SpanName)
}

async fn remote_services(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    of_service(&s, &uri, &headers, Listed::RemoteService)
}

/// Merge the reports of one span (same trace, id and local service) into one, Zipkin-style.
fn merge(spans: Vec<Value>) -> Vec<Value> {
    let mut by_key: BTreeMap<(String, String, bool, String), Value> = BTreeMap::new();
    let mut order = Vec::new();
    for s in spans {
        let key = (
            s["traceId"].as_str().unwrap_or_default().to_owned(),
            s["id"].as_str().unwrap_or_default().to_owned(),
            s["shared"].as_bool().unwrap_or(false),
            s["localEndpoint"]["serviceName"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        );
        match by_key.get_mut(&key) {
            Some(existing) => {
                if let (Value::Object(into), Value::Object(from)) = (existing, s) {
                    for (k, v) in from {
                        match (into.get_mut(&k), v) {
                            (Some(Value::Object(a)), Value::Object(b)) => a.extend(b),
                            (Some(Value::Array(a)), Value::Array(b)) => a.extend(b),
                            (None, v) => {
                                into.insert(k, v);
                            }
                            _ => {}
                        }
                    }
                }
            }
            None => {
                order.push(key.clone());
                by_key.insert(key, s);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|k| by_key.remove(&k))
        .collect()
}

fn normalise_id(id: &str) -> String {
    let id = id.to_lowercase();
    let width = if id.len() > 16 { 32 } else { 16 };
    let id = format!("{id:0>width$}");
    if width == 32 && id.starts_with("0000000000000000") {
        id[16..].to_owned()
    } else {
        id
    }
}

async fn trace(State(s): State<Arc<Shared>>, Path(id): Path<String>) -> Response {
    let id = normalise_id(&id);
    match s.store.trace(&id) {
        Ok(spans) if spans.is_empty() => {
            (StatusCode::NOT_FOUND, format!("{id} not found")).into_response()
        }
        Ok(spans) => axum::Json(merge(spans)).into_response(),
        Err(e) => crate::http::params::internal_error("the query", &e),
    }
}

async fn trace_many(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = query_params(&uri, &headers, &[]);
    let Some(ids) = p
        .iter()
        .find(|(k, _)| k == "traceIds")
        .map(|(_, v)| v.clone())
    else {
        return bad("traceIds is required");
    };
    let mut out = Vec::new();
    for id in ids.split(',').filter(|i| !i.is_empty()) {
        match s.store.trace(&normalise_id(id)) {
            Ok(spans) if !spans.is_empty() => out.push(Value::Array(merge(spans))),
            Ok(_) => {}
            Err(e) => return crate::http::params::internal_error("the query", &e),
        }
    }
    axum::Json(out).into_response()
}

fn num(p: &[(String, String)], key: &str) -> Result<Option<i64>, String> {
    match p.iter().find(|(k, _)| k == key) {
        None => Ok(None),
        Some((_, v)) if v.is_empty() => Ok(None),
        Some((_, v)) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("{key} must be a number")),
    }
}

/// `annotationQuery`: `key=value and word` (kv → tag; word → annotation value or tag key).
fn annotation_matches(q: &str, span: &Value) -> bool {
    q.split(" and ")
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .all(|term| match term.split_once('=') {
            Some((k, v)) => span["tags"][k].as_str() == Some(v),
            None => {
                span["tags"].get(term).is_some()
                    || span["annotations"]
                        .as_array()
                        .is_some_and(|a| a.iter().any(|a| a["value"] == term))
            }
        })
}

async fn traces(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = query_params(&uri, &headers, &[]);
    let get = |k: &str| {
        p.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
    };
    let parsed = (|| -> Result<_, String> {
        let end_ts = num(&p, "endTs")?.unwrap_or_else(crate::clock::now_ms);
        let lookback = num(&p, "lookback")?.unwrap_or(86_400_000);
        Ok((
            end_ts,
            lookback,
            num(&p, "minDuration")?,
            num(&p, "maxDuration")?,
            num(&p, "limit")?.unwrap_or(10),
        ))
    })();
    let (end_ts, lookback, min_d, max_d, limit) = match parsed {
        Ok(v) => v,
        Err(e) => return bad(e),
    };
    let q = TraceQuery {
        end_ts,
        lookback,
        min_duration: min_d,
        max_duration: max_d,
        limit,
        service: get("serviceName").map(|v| v.to_lowercase()),
        remote: get("remoteServiceName").map(|v| v.to_lowercase()),
        span_name: get("spanName")
            .map(|v| v.to_lowercase())
            .filter(|v| v != "all"),
        annotation: get("annotationQuery"),
    };
    match find_traces(&s, &q) {
        Ok(out) => {
            axum::Json(out.into_iter().map(Value::Array).collect::<Vec<_>>()).into_response()
        }
        Err(e) => crate::http::params::internal_error("the query", &e),
    }
}

/// What `/api/v2/traces` (and the dashboard) asks: times in ms, durations in µs.
#[derive(Debug, Default)]
pub struct TraceQuery {
    pub end_ts: i64,
    pub lookback: i64,
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
    pub limit: i64,
    pub service: Option<String>,
    pub remote: Option<String>,
    pub span_name: Option<String>,
    pub annotation: Option<String>,
}

/// The newest traces with a span matching `q`, each its merged spans.
pub fn find_traces(
    s: &Shared,
    q: &TraceQuery,
) -> Result<Vec<Vec<Value>>, crate::store::StoreError> {
    let TraceQuery {
        end_ts,
        lookback,
        min_duration: min_d,
        max_duration: max_d,
        limit,
        ref service,
        ref remote,
        ref span_name,
        ref annotation,
    } = *q;
    let filter = SpanFilter {
        from_us: (end_ts - lookback) * 1000,
        until_us: end_ts * 1000,
        service: service.as_deref(),
        remote: remote.as_deref(),
        name: span_name.as_deref(),
        min_duration: min_d,
        max_duration: max_d,
    };
    let ids = s
        .store
        .find_traces(&filter, limit.max(0) as usize, |doc| match annotation {
            None => true,
            Some(q) => serde_json::from_str::<Value>(doc).is_ok_and(|v| annotation_matches(q, &v)),
        })?;
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    Ok(s.store
        .traces(&ids)?
        .into_iter()
        .filter(|t| !t.is_empty())
        .map(merge)
        .collect())
}

/// One trace's spans, merged as the Zipkin API returns them (empty if unknown).
pub fn find_trace(s: &Shared, id: &str) -> Result<Vec<Value>, crate::store::StoreError> {
    s.store.trace(&normalise_id(id)).map(merge)
}

/// Service-to-service links: each span whose parent (or, for a shared server half, whose
/// client half) belongs to another service is one call parent → child; `error` tags count.
pub fn links(spans: &[Value]) -> Vec<Value> {
    let mut by_trace: HashMap<&str, Vec<&Value>> = HashMap::new();
    for s in spans {
        by_trace
            .entry(s["traceId"].as_str().unwrap_or_default())
            .or_default()
            .push(s);
    }
    let mut calls: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for spans in by_trace.values() {
        let service_of: HashMap<(&str, bool), &str> = spans
            .iter()
            .filter_map(|s| {
                Some((
                    (s["id"].as_str()?, s["shared"].as_bool().unwrap_or(false)),
                    s["localEndpoint"]["serviceName"].as_str()?,
                ))
            })
            .collect();
        for s in spans {
            let Some(child) = s["localEndpoint"]["serviceName"].as_str() else {
                continue;
            };
            let is_shared = s["shared"].as_bool().unwrap_or(false);
            let parent = if is_shared {
                s["id"]
                    .as_str()
                    .and_then(|id| service_of.get(&(id, false)).copied())
            } else {
                s["parentId"].as_str().and_then(|pid| {
                    service_of
                        .get(&(pid, false))
                        .or(service_of.get(&(pid, true)))
                        .copied()
                })
            };
            let Some(parent) = parent.filter(|p| *p != child) else {
                continue;
            };
            let e = calls
                .entry((parent.to_owned(), child.to_owned()))
                .or_default();
            e.0 += 1;
            if s["tags"].get("error").is_some() {
                e.1 += 1;
            }
        }
    }
    calls
        .into_iter()
        .map(|((parent, child), (n, errors))| {
            let mut v = json!({"parent": parent, "child": child, "callCount": n});
            if errors > 0 {
                v["errorCount"] = errors.into();
            }
            v
        })
        .collect()
}

async fn dependencies(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = query_params(&uri, &headers, &[]);
    let Ok(Some(end_ts)) = num(&p, "endTs").map(|v| v.or(Some(crate::clock::now_ms()))) else {
        return bad("endTs must be a number");
    };
    let lookback = match num(&p, "lookback") {
        Ok(l) => l.unwrap_or(86_400_000),
        Err(e) => return bad(e),
    };
    let res = s
        .store
        .spans_of_traces_in((end_ts - lookback) * 1000, end_ts * 1000);
    match res {
        Ok(spans) => axum::Json(links(&spans)).into_response(),
        Err(e) => crate::http::params::internal_error("the query", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_follow_parents_across_services() {
        let spans = vec![
            json!({"traceId":"1","id":"a","kind":"SERVER","localEndpoint":{"serviceName":"web-api"}}),
            json!({"traceId":"1","id":"b","parentId":"a","kind":"CLIENT","localEndpoint":{"serviceName":"web-api"}}),
            json!({"traceId":"1","id":"c","parentId":"b","kind":"SERVER","localEndpoint":{"serviceName":"recipe-api"},"tags":{"error":"500"}}),
            json!({"traceId":"2","id":"x","kind":"CLIENT","localEndpoint":{"serviceName":"web-api"}}),
            json!({"traceId":"2","id":"x","kind":"SERVER","shared":true,"localEndpoint":{"serviceName":"recipe-api"}}),
        ];
        assert_eq!(
            links(&spans),
            vec![json!({"parent":"web-api","child":"recipe-api","callCount":2,"errorCount":1})]
        );
    }

    #[test]
    fn merge_joins_reports_of_one_span() {
        let m = merge(vec![
            json!({"traceId":"1","id":"a","localEndpoint":{"serviceName":"w"},"tags":{"x":"1"}}),
            json!({"traceId":"1","id":"a","localEndpoint":{"serviceName":"w"},"duration":5,"tags":{"y":"2"}}),
        ]);
        assert_eq!(m.len(), 1);
        assert_eq!(m[0]["duration"], 5);
        assert_eq!(m[0]["tags"], json!({"x":"1","y":"2"}));
    }

    #[test]
    fn annotation_queries() {
        let s = json!({"tags":{"http.method":"GET","error":"x"},"annotations":[{"timestamp":1,"value":"ws"}]});
        assert!(annotation_matches("http.method=GET and error", &s));
        assert!(annotation_matches("ws", &s));
        assert!(!annotation_matches("http.method=POST", &s));
    }
}
