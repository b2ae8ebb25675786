//! `GET /api/logs`: KQL search over the log store (hits as their stored JSON text).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::shared::Shared;

use crate::http::params::{
    MAX_LOG_LIMIT, bad_request, heavy_turn, internal_error, param, params, query,
};
use crate::query::kql;

/// `GET /api/logs?query=KQL&since=5m|from=…&until=…&limit=100&order=desc`.
pub(crate) async fn logs(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = params(&uri, &headers, &[]);
    let q = match kql::parse(param(&p, "query").unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return bad_request(e),
    };
    let now_ms = crate::clock::now_s() * 1000 + 999;
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
