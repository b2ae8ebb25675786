//! `/traces`: the last hour's traces, filtered by service and minimum duration; `/traces/ID`
//! opens one as a waterfall of its spans with their tags and a link to its log lines.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::html::{escape, iso_us, page as frame, server_error};
use crate::http::params::{param, params};
use crate::shared::Shared;

/// A text field of a span (`localEndpoint.serviceName` and the like).
fn field<'a>(v: &'a Value, path: &[&str]) -> &'a str {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_str)
        .unwrap_or("")
}

/// (start µs, end µs) of a trace's spans.
fn extent(spans: &[Value]) -> (i64, i64) {
    let start = spans
        .iter()
        .filter_map(|s| s["timestamp"].as_i64())
        .min()
        .unwrap_or(0);
    let end = spans
        .iter()
        .filter_map(|s| Some(s["timestamp"].as_i64()? + s["duration"].as_i64().unwrap_or(0)))
        .max()
        .unwrap_or(start);
    (start, end)
}

/// `GET /traces?service=web-api&min_ms=5`: the newest traces, their duration and span count.
pub async fn page(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = params(&uri, &headers, &[]);
    let get = |k: &str| param(&p, k).filter(|v| !v.is_empty()).map(str::to_owned);
    let service = get("service");
    let min_ms: Option<f64> = get("min_ms").and_then(|v| v.parse().ok());
    let q = crate::api::zipkin::TraceQuery {
        end_ts: crate::clock::now_ms(),
        lookback: 3_600_000,
        min_duration: min_ms.map(|m| (m * 1000.0) as i64),
        limit: 50,
        service: service.as_ref().map(|v| v.to_lowercase()),
        ..Default::default()
    };
    let shared = s.clone();
    let found =
        tokio::task::spawn_blocking(move || crate::api::zipkin::find_traces(&shared, &q)).await;
    let traces = match found {
        Ok(Ok(t)) => t,
        Ok(Err(e)) => return server_error(e),
        Err(e) => return server_error(e),
    };
    let mut rows = String::new();
    for spans in &traces {
        let (start, end) = extent(spans);
        let root = spans
            .iter()
            .find(|s| s.get("parentId").is_none())
            .or(spans.first())
            .cloned()
            .unwrap_or_default();
        let id = field(&root, &["traceId"]);
        let mut services: Vec<&str> = spans
            .iter()
            .map(|s| field(s, &["localEndpoint", "serviceName"]))
            .filter(|s| !s.is_empty())
            .collect();
        services.sort_unstable();
        services.dedup();
        let _ = write!(
            rows,
            r#"<tr><td><a href="/traces/{}">{}</a></td><td>{}</td><td>{} {}</td><td>{:.3} ms</td><td>{}</td><td>{}</td></tr>"#,
            escape(id),
            escape(id),
            escape(&iso_us(start)),
            escape(field(&root, &["localEndpoint", "serviceName"])),
            escape(field(&root, &["name"])),
            (end - start) as f64 / 1000.0,
            spans.len(),
            escape(&services.join(", "))
        );
    }
    let body = format!(
        r#"<h1>Traces</h1><form method="get" action="/traces">service <input name="service" value="{}"> at least <input name="min_ms" size="5" value="{}"> ms <button>filter</button></form><p>{} trace(s) in the last hour, newest first.</p><table id="traces"><tr><th>trace</th><th>start</th><th>root span</th><th>duration</th><th>spans</th><th>services</th></tr>{rows}</table>"#,
        escape(service.as_deref().unwrap_or("")),
        min_ms.map(|m| m.to_string()).unwrap_or_default(),
        traces.len()
    );
    frame("traces", "Traces", &body, "").into_response()
}

/// Parents before children, siblings by start time, each with its depth.
fn waterfall_order(spans: &[Value]) -> Vec<(usize, &Value)> {
    fn place<'a>(
        spans: &'a [Value],
        parent: Option<&str>,
        depth: usize,
        out: &mut Vec<(usize, &'a Value)>,
    ) {
        let mut kids: Vec<&Value> = spans
            .iter()
            .filter(|s| s.get("parentId").and_then(Value::as_str) == parent)
            .collect();
        kids.sort_by_key(|s| s["timestamp"].as_i64().unwrap_or(0));
        for k in kids {
            if depth > 64 || out.iter().any(|(_, s)| std::ptr::eq(*s, k)) {
                continue;
            }
            out.push((depth, k));
            place(spans, k.get("id").and_then(Value::as_str), depth + 1, out);
        }
    }
    let mut out = Vec::new();
    place(spans, None, 0, &mut out);
    // Spans whose parent is not in the trace go last, at the top level.
    for sp in spans {
        if !out.iter().any(|(_, s)| std::ptr::eq(*s, sp)) {
            out.push((0, sp));
        }
    }
    out
}

/// `GET /traces/{id}`: one trace as a waterfall of its spans, each with its tags.
pub async fn trace(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(id): axum::extract::Path<String>,
) -> Response {
    let shared = s.clone();
    let wanted = id.clone();
    let found =
        tokio::task::spawn_blocking(move || crate::api::zipkin::find_trace(&shared, &wanted)).await;
    let spans = match found {
        Ok(Ok(spans)) if !spans.is_empty() => spans,
        Ok(Ok(_)) => {
            let body = format!(
                r#"<h1>Trace</h1><p class="DOWN">no trace {}</p>"#,
                escape(&id)
            );
            let mut r = frame("trace", "Traces", &body, "").into_response();
            *r.status_mut() = axum::http::StatusCode::NOT_FOUND;
            return r;
        }
        Ok(Err(e)) => return server_error(e),
        Err(e) => return server_error(e),
    };
    let (start, end) = extent(&spans);
    let total = (end - start).max(1) as f64;
    let mut rows = String::new();
    for (depth, sp) in waterfall_order(&spans) {
        let ts = sp["timestamp"].as_i64().unwrap_or(start);
        let dur = sp["duration"].as_i64().unwrap_or(0);
        let left = (ts - start) as f64 / total * 100.0;
        let width = dur as f64 / total * 100.0;
        let tags = sp
            .get("tags")
            .and_then(Value::as_object)
            .map(|t| {
                t.iter()
                    .map(|(k, v)| {
                        let v = v.as_str().map_or(v.to_string(), str::to_owned);
                        format!("{}={}", escape(k), escape(&v))
                    })
                    .collect::<Vec<_>>()
                    .join("<br>")
            })
            .unwrap_or_default();
        let _ = write!(
            rows,
            r#"<tr class="span"><td style="padding-left:{pad}px">{} <b>{}</b> {}</td><td>{:.3} ms</td><td><div class="lane"><div class="bar" style="left:{left:.2}%;width:{width:.2}%"></div></div></td><td><details><summary>tags</summary>{tags}</details></td></tr>"#,
            escape(field(sp, &["kind"])),
            escape(field(sp, &["localEndpoint", "serviceName"])),
            escape(field(sp, &["name"])),
            dur as f64 / 1000.0,
            pad = 10 + depth * 16,
        );
    }
    let query = format!("fields.trace_id:{}", field(&spans[0], &["traceId"]));
    let body = format!(
        r#"<h1>Trace {}</h1><p>{} span(s), {:.3} ms, started {}. <a href="/logs?query={}&amp;since=1d">Its log lines</a>.</p><table id="waterfall"><tr><th>span</th><th>duration</th><th>when</th><th></th></tr>{rows}</table>"#,
        escape(&id),
        spans.len(),
        total / 1000.0,
        escape(&iso_us(start)),
        escape(&form_urlencoded::byte_serialize(query.as_bytes()).collect::<String>())
    );
    frame("trace", "Traces", &body, "").into_response()
}
