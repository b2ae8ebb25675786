//! The one HTML module: [`escape`] (every dynamic value goes through it), the page frame
//! (navigation, style) and the error answer of a page.

use std::fmt::Write as _;

use axum::response::{Html, Response};

pub use lab_net::html::escape;

pub(crate) const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:0;color:#222}\
nav{background:#1f2933;padding:8px 16px}nav a{color:#e4e7eb;margin-right:16px;text-decoration:none}\
nav a.on{font-weight:bold;color:#fff}main{padding:16px}table{border-collapse:collapse}\
td,th{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}\
.OK{color:#137333;font-weight:bold}.DEGRADED{color:#b06000;font-weight:bold}\
.DOWN{color:#c5221f;font-weight:bold}.PENDING{color:#666}\
.sev-error,.sev-fatal{color:#c5221f}.sev-warn,.sev-warning{color:#b06000}.sev-debug{color:#666}\
.firing{color:#c5221f;font-weight:bold}.pending{color:#b06000}.ok{color:#137333}\
pre{margin:0;white-space:pre-wrap}input[type=text]{width:40em}\
.lane{position:relative;width:600px;height:14px;background:#f1f3f4}\
.bar{position:absolute;top:0;height:14px;background:#4a7fd4;min-width:2px}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{border:1px solid #ddd}\
.scroll{max-height:320px;overflow:auto;border:1px solid #eee;padding-top:4px;padding-bottom:4px}";

pub(crate) fn page(title: &str, active: &str, body: &str, script: &str) -> Html<String> {
    let mut nav = String::new();
    for (href, name) in [
        ("/", "Overview"),
        ("/graphs", "Metrics"),
        ("/traces", "Traces"),
        ("/logs", "Logs"),
        ("/alerts", "Alerts"),
        ("/load", "Load"),
    ] {
        let class = if name == active { " class=\"on\"" } else { "" };
        let _ = write!(nav, "<a href=\"{href}\"{class}>{name}</a>");
    }
    Html(format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>lab · {}</title><style>{STYLE}</style></head>\
         <body><nav>{nav}</nav><main>{body}</main><script>{script}</script></body></html>",
        escape(title)
    ))
}

pub(crate) fn server_error(e: impl std::fmt::Display) -> Response {
    crate::http::params::internal_error("the page", &e)
}

/// `2026-11-25T10:00:00.123456Z` of a time in µs since the epoch.
pub(crate) fn iso_us(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}
