//! `/alerts`: the rules, their standing and their history.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::html::{escape, iso_us, page as frame, server_error};
use crate::shared::Shared;

/// `GET /alerts`: every rule with its standing, then the history of firings and resolutions
/// (the hub's `type:alert` documents of the last day, newest first).
pub async fn page(State(s): State<Arc<Shared>>) -> Response {
    let all = s.alerts.lock().map(|a| a.clone()).unwrap_or_default();
    let mut rows = String::new();
    for a in &all {
        let status = serde_json::to_value(a.status)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let what = serde_json::to_value(&a.rule.check)
            .map(|v| v.to_string())
            .unwrap_or_default();
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&a.rule.name),
            escape(&a.rule.importance),
            escape(&status),
            escape(&status),
            escape(&a.detail),
            a.fired,
            escape(&what)
        );
    }
    let now_ms = crate::clock::now_ms();
    let store = s.store.clone();
    let history =
        tokio::task::spawn_blocking(move || store.alert_events(now_ms - 86_400_000, 200)).await;
    let (events, total) = match history {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => return server_error(e),
        Err(e) => return server_error(e),
    };
    let mut past = String::new();
    for e in &events {
        let class = if e.state == "FIRING" { "firing" } else { "ok" };
        let at = iso_us(e.ts_ms * 1000);
        let _ = write!(
            past,
            "<tr><td>{}</td><td>{}</td><td class=\"{class}\">{}</td><td>{}</td><td>{}</td></tr>",
            escape(&at),
            escape(&e.rule),
            escape(&e.state),
            escape(&e.importance),
            escape(&e.detail)
        );
    }
    let body = format!(
        "<h1>Alerts</h1><table id=\"rules\"><tr><th>rule</th><th>importance</th><th>status</th><th>detail</th>\
         <th>fired</th><th>check</th></tr>{rows}</table><p>{} rule(s), evaluated every {} ms.</p>\
         <h2>History</h2><p>{total} firing and resolved event(s) in the last day{}.</p>\
         <table id=\"history\"><tr><th>@timestamp</th><th>rule</th><th>state</th><th>importance</th><th>detail</th></tr>{past}</table>\
         <p><a href=\"/logs?query=type%3Aalert&amp;since=1d\">The same events in the log store</a>.</p>",
        all.len(),
        s.config.alert_interval_ms,
        if total > events.len() as i64 {
            format!("; the newest {} shown", events.len())
        } else {
            String::new()
        }
    );
    frame("alerts", "Alerts", &body, "").into_response()
}
