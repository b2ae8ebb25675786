//! `GET /api/status` (counters, store size, retention) and `GET /api/health` (the instances'
//! health as the hub last polled it).

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::shared::Shared;

pub(crate) async fn status(State(s): State<Arc<Shared>>) -> Response {
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
pub(crate) async fn health(State(s): State<Arc<Shared>>) -> Response {
    let entries = s.health.lock().map(|e| e.clone()).unwrap_or_default();
    axum::Json(entries).into_response()
}
