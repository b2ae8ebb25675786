//! Graphite's HTTP API as Grafana and Cabot call it: `/render` (JSON, CSV, raw; streamed past
//! [`STREAM_PAST_POINTS`]), `/metrics/find`, `/metrics/expand`, `/metrics/index.json`,
//! `/functions`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::shared::Shared;

use crate::http::params::{bad_request, heavy_turn, param, params, query};
use crate::query::graphite;
use crate::query::source::render_targets;

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

pub(crate) async fn render(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = params(&uri, &headers, &body);
    let now = crate::clock::now_s();
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
                            .map_or(String::new(), crate::clock::ymd_hms);
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

pub(crate) async fn find(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
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

pub(crate) async fn expand(
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

pub(crate) async fn index_json(State(s): State<Arc<Shared>>) -> Response {
    axum::Json(s.store.series_names()).into_response()
}

pub(crate) async fn functions() -> Response {
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
