//! The lab's dashboard, served by the hub on its HTTP port: server-rendered HTML, a few lines
//! of hand-written JS, nothing fetched from elsewhere (it works offline). Every dynamic value
//! goes through [`escape`]; the live parts update text only (`textContent`), never markup.
//!
//! Pages: overview (every instance with its process or container, restarts and health, and
//! the proxy's servers; refreshed every second from `/api/overview`), [`metrics`] (per-service
//! rates, errors and latency; any StatsD series), traces (the last hour's, filtered by service
//! and minimum duration; one opens as a waterfall of its spans with their tags and a link to
//! its log lines), logs (the KQL of `lab logs --query`, severity colours, expandable documents,
//! live tail), alerts (rules, their standing and history), [`load`] (kept `lab load` runs,
//! compared side by side).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;

use crate::Shared;
use crate::query::kql;

pub mod load;
pub mod metrics;

/// `s` safe inside HTML text and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:0;color:#222}\
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

fn page(title: &str, active: &str, body: &str, script: &str) -> Html<String> {
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

/// The cells of one instance row, as (text, class): the same for the server's first render
/// and the page's script (which gets them from `/api/overview`).
fn instance_cells(i: &crate::topology::Instance) -> Vec<(String, String)> {
    let process = match (&i.container, i.pid) {
        (Some(c), _) => format!("ctr {c}"),
        (None, Some(pid)) => format!("pid {pid}"),
        (None, None) => "-".to_owned(),
    };
    let health = i.health.clone().unwrap_or_else(|| "-".into());
    vec![
        (i.service.clone(), String::new()),
        (format!("#{}", i.instance), String::new()),
        (i.address.clone(), String::new()),
        (process, "process".into()),
        (
            i.supervisor.clone().unwrap_or_else(|| "-".into()),
            "supervisor".into(),
        ),
        (health.clone(), format!("health {health}")),
        (i.detail.clone(), "detail".into()),
        (i.restarts.to_string(), "restarts".into()),
        (i.last_exit.clone().unwrap_or_default(), "last-exit".into()),
    ]
}

fn backend_cells(b: &crate::topology::Backend) -> Vec<(String, String)> {
    let class = match b.status.as_str() {
        "UP" => "OK",
        "DOWN" => "DOWN",
        _ => "",
    };
    vec![
        (b.frontend.clone(), String::new()),
        (b.server.clone(), String::new()),
        (b.status.clone(), format!("status {class}")),
        (b.check.clone(), "check".into()),
        (b.current.to_string(), String::new()),
        (b.total.to_string(), String::new()),
    ]
}

fn rows_html(out: &mut String, key: &str, cells: &[(String, String)]) {
    let _ = write!(out, "<tr data-key=\"{}\">", escape(key));
    for (text, class) in cells {
        if class.is_empty() {
            let _ = write!(out, "<td>{}</td>", escape(text));
        } else {
            let _ = write!(out, "<td class=\"{}\">{}</td>", escape(class), escape(text));
        }
    }
    out.push_str("</tr>");
}

/// `GET /api/overview`: what the overview shows (instances, proxy backends), as JSON.
pub async fn overview_json(State(s): State<Arc<Shared>>) -> Response {
    let o = crate::topology::overview(&s).await;
    let instances: Vec<Value> = o
        .instances
        .iter()
        .map(|i| {
            serde_json::json!({
                "key": format!("{}#{}", i.service, i.instance),
                "cells": instance_cells(i),
                "data": i,
            })
        })
        .collect();
    let backends: Vec<Value> = o
        .backends
        .iter()
        .map(|b| {
            serde_json::json!({
                "key": format!("{}/{}", b.frontend, b.server),
                "cells": backend_cells(b),
                "data": b,
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "lab": o.lab,
        "instances": instances,
        "backends": backends,
        "problems": o.problems,
    }))
    .into_response()
}

/// `GET /`: every instance of the lab (process or container, restarts, the hub's health
/// probe) and the proxy's servers with their check state, refreshed from `/api/overview`.
pub async fn overview(State(s): State<Arc<Shared>>) -> Response {
    let o = crate::topology::overview(&s).await;
    let mut instances = String::new();
    for i in &o.instances {
        rows_html(
            &mut instances,
            &format!("{}#{}", i.service, i.instance),
            &instance_cells(i),
        );
    }
    let mut backends = String::new();
    for b in &o.backends {
        rows_html(
            &mut backends,
            &format!("{}/{}", b.frontend, b.server),
            &backend_cells(b),
        );
    }
    let problems: String = o
        .problems
        .iter()
        .map(|p| format!("<li>{}</li>", escape(p)))
        .collect();
    let title = o
        .lab
        .as_deref()
        .map_or_else(|| "Overview".to_owned(), |l| format!("Overview of {l}"));
    let store = s.store.clone();
    let used = tokio::task::spawn_blocking(move || store.usage())
        .await
        .ok()
        .and_then(Result::ok)
        .map_or(0, |u| u.0);
    let r = s.store.retention;
    let pruned = &s.store.pruned;
    use std::sync::atomic::Ordering::Relaxed;
    let store_line = format!(
        "The hub's store: {:.1} MB of {:.1} MB, keeping {} h; retention has deleted {} logs, {} points and {} spans.",
        used as f64 / 1e6,
        r.max_bytes as f64 / 1e6,
        r.max_age_ms / 3_600_000,
        pruned.logs.load(Relaxed),
        pruned.points.load(Relaxed),
        pruned.spans.load(Relaxed)
    );
    let body = format!(
        "<h1>{}</h1><h2>Instances</h2><table><thead><tr><th>service</th><th>instance</th><th>address</th>\
         <th>process</th><th>supervisor</th><th>health</th><th>last probe</th><th>restarts</th><th>last exit</th></tr></thead>\
         <tbody id=\"instances\">{instances}</tbody></table>\
         <p>Health as the hub's probe sees it, every {} ms; the supervisor's view beside it. \
         Updated <span id=\"updated\">now</span>.</p>\
         <h2>Proxy</h2><table><thead><tr><th>frontend</th><th>server</th><th>status</th><th>check</th>\
         <th>sessions</th><th>total</th></tr></thead><tbody id=\"backends\">{backends}</tbody></table>\
         <ul id=\"problems\" class=\"DOWN\">{problems}</ul><p id=\"store\">{}</p>",
        escape(&title),
        s.config.health_interval_ms,
        escape(&store_line)
    );
    // Text only: every value comes from services and must never become markup.
    let script = "function fill(id,rows){const tb=document.getElementById(id);const out=[];\
        for(const r of rows){const tr=document.createElement('tr');tr.dataset.key=r.key;\
        for(const [t,c] of r.cells){const td=document.createElement('td');td.textContent=t;td.className=c;tr.appendChild(td);}\
        out.push(tr);}tb.replaceChildren(...out);}\
        async function tick(){try{const r=await fetch('/api/overview');const o=await r.json();\
        fill('instances',o.instances);fill('backends',o.backends);\
        const ul=document.getElementById('problems');ul.replaceChildren(...o.problems.map(p=>{const li=document.createElement('li');li.textContent=p;return li;}));\
        document.getElementById('updated').textContent=new Date().toLocaleTimeString();}catch(_){}}\
        setInterval(tick,1000);";
    page("overview", "Overview", &body, script).into_response()
}

/// `GET /logs?query=KQL&since=15m`: the newest matching documents.
pub async fn logs(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = super::api::params(&uri, &headers, &[]);
    let get = |k: &str| super::api::param(&p, k).map(str::to_owned);
    let query = get("query").unwrap_or_default();
    let since = get("since").unwrap_or_else(|| "15m".to_owned());
    let form = format!(
        "<h1>Logs</h1><form method=\"get\" action=\"/logs\"><input type=\"text\" name=\"query\" value=\"{}\" \
         placeholder=\"app:web-api and severity:error\"> since <input name=\"since\" size=\"5\" value=\"{}\"> \
         <button>search</button></form>",
        escape(&query),
        escape(&since)
    );
    let parsed = match kql::parse(&query) {
        Ok(q) => q,
        Err(e) => {
            let body = format!("{form}<p class=\"DOWN\">{}</p>", escape(&e.to_string()));
            return page("logs", "Logs", &body, "").into_response();
        }
    };
    let Some(window) = kql::duration_ms(&since) else {
        let body = format!(
            "{form}<p class=\"DOWN\">cannot read since={} (e.g. 5m, 1h)</p>",
            escape(&since)
        );
        return page("logs", "Logs", &body, "").into_response();
    };
    let now_ms = crate::now_ms();
    let store = s.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        store.logs(now_ms - window, now_ms, 200, false, |d| {
            kql::matches(&parsed, d, now_ms)
        })
    })
    .await;
    let (hits, total) = match found {
        Ok(Ok(h)) => h,
        Ok(Err(e)) => {
            return crate::api::internal_error("the page", &e);
        }
        Err(e) => {
            return crate::api::internal_error("the page", &e);
        }
    };
    let mut rows = String::new();
    for h in &hits {
        let doc = &h.doc;
        let text = |k: &str| match doc.get(k) {
            Some(Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
            None => String::new(),
        };
        let severity = text("severity").to_lowercase();
        let message = [text("type"), text("message")]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(" ");
        let pretty = serde_json::to_string_pretty(doc).unwrap_or_default();
        let _ = write!(
            rows,
            "<tr class=\"sev-{}\" data-id=\"{}\"><td>{}</td><td>{}</td><td>{}</td><td><details><summary>{}</summary><pre>{}</pre></details></td></tr>",
            escape(&severity),
            h.id,
            escape(&text("@timestamp")),
            escape(&text("app")),
            escape(&severity),
            escape(&message),
            escape(&pretty)
        );
    }
    let body = format!(
        "{form}<p>{total} match(es) in the last {}; newest {} shown.</p>\
         <p><label><input type=\"checkbox\" id=\"live\"> live tail</label> \
         <span id=\"tail-state\"></span></p>\
         <table><thead><tr><th>@timestamp</th><th>app</th><th>severity</th><th>document</th></tr></thead>\
         <tbody id=\"hits\">{rows}</tbody></table>",
        escape(&since),
        hits.len()
    );
    // Live tail: new matches (by id) go on top, built as text; the query is the page's own.
    let script = format!(
        "const Q={};let last=Math.max(0,...[...document.querySelectorAll('#hits tr')].map(r=>+r.dataset.id));\
         async function tail(){{if(!document.getElementById('live').checked)return;\
         try{{const r=await fetch('/api/logs?limit=100&since=5m&query='+encodeURIComponent(Q));\
         if(!r.ok){{document.getElementById('tail-state').textContent='tail: '+r.status;return;}}\
         const o=await r.json();const tb=document.getElementById('hits');\
         const fresh=o.hits.filter(h=>+h._id>last).reverse();\
         for(const h of fresh){{const d=h._source;const sev=String(d.severity||'').toLowerCase();\
         const tr=document.createElement('tr');tr.className='sev-'+sev;tr.dataset.id=h._id;\
         for(const t of [d['@timestamp']||'',d.app||'',sev]){{const td=document.createElement('td');td.textContent=t;tr.appendChild(td);}}\
         const td=document.createElement('td');const det=document.createElement('details');const sm=document.createElement('summary');\
         sm.textContent=[d.type,d.message].filter(x=>x).join(' ');const pre=document.createElement('pre');\
         pre.textContent=JSON.stringify(d,null,2);det.append(sm,pre);td.appendChild(det);tr.appendChild(td);\
         tb.insertBefore(tr,tb.firstChild);last=Math.max(last,+h._id);}}\
         document.getElementById('tail-state').textContent=fresh.length+' new at '+new Date().toLocaleTimeString();\
         }}catch(_){{}}}}setInterval(tail,1000);",
        serde_json::to_string(&query)
            .unwrap_or_default()
            .replace('<', "\\u003c")
    );
    page("logs", "Logs", &body, &script).into_response()
}

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

fn iso_us(us: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(us) * 1000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn server_error(e: impl std::fmt::Display) -> Response {
    crate::api::internal_error("the page", &e)
}

/// `GET /traces?service=web-api&min_ms=5`: the newest traces, their duration and span count.
pub async fn traces(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = super::api::params(&uri, &headers, &[]);
    let get = |k: &str| {
        super::api::param(&p, k)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let service = get("service");
    let min_ms: Option<f64> = get("min_ms").and_then(|v| v.parse().ok());
    let q = crate::api::zipkin::TraceQuery {
        end_ts: crate::now_ms(),
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
    page("traces", "Traces", &body, "").into_response()
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
            let mut r = page("trace", "Traces", &body, "").into_response();
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
    page("trace", "Traces", &body, "").into_response()
}

/// `GET /alerts`: every rule with its standing, then the history of firings and resolutions
/// (the hub's `type:alert` documents of the last day, newest first).
pub async fn alerts(State(s): State<Arc<Shared>>) -> Response {
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
    let now_ms = crate::now_ms();
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
    page("alerts", "Alerts", &body, "").into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_leaves_no_markup() {
        assert_eq!(
            escape("<script>alert('x')</script> & \"q\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"
        );
    }
}
