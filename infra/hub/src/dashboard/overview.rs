//! `/`: every instance with its process or container, restarts and health, and the proxy's
//! servers; refreshed every second from `/api/overview` ([`json`]).

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::html::{escape, page as frame};
use crate::shared::Shared;

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

fn fault_cells(f: &crate::topology::FaultRow, now_ms: i64) -> Vec<(String, String)> {
    let secs = |ms: i64| format!("{:.1} s", ms.max(0) as f64 / 1000.0);
    vec![
        (
            match &f.name {
                Some(n) => format!("{} ({n})", f.id),
                None => f.id.clone(),
            },
            String::new(),
        ),
        (f.kind.clone(), "kind".into()),
        (f.target.clone(), String::new()),
        (f.what.clone(), "what".into()),
        (format!("{} ago", secs(now_ms - f.since_ms)), String::new()),
        (
            f.until_ms.map_or_else(
                || "at lab fault clear".to_owned(),
                |u| format!("in {}", secs(u - now_ms)),
            ),
            String::new(),
        ),
    ]
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
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
pub async fn json(State(s): State<Arc<Shared>>) -> Response {
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
    let now = now_ms();
    let faults: Vec<Value> = o
        .faults
        .iter()
        .map(|f| {
            serde_json::json!({
                "key": f.id,
                "cells": fault_cells(f, now),
                "data": f,
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "lab": o.lab,
        "instances": instances,
        "backends": backends,
        "problems": o.problems,
        "faults": faults,
    }))
    .into_response()
}

/// `GET /`: every instance of the lab (process or container, restarts, the hub's health
/// probe) and the proxy's servers with their check state, refreshed from `/api/overview`.
pub async fn page(State(s): State<Arc<Shared>>) -> Response {
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
    let mut faults = String::new();
    let now = now_ms();
    for f in &o.faults {
        rows_html(&mut faults, &f.id, &fault_cells(f, now));
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
         <ul id=\"problems\" class=\"DOWN\">{problems}</ul>\
         <h2>Faults in effect</h2><table><thead><tr><th>fault</th><th>kind</th><th>target</th><th>what</th>\
         <th>since</th><th>ends</th></tr></thead><tbody id=\"faults\">{faults}</tbody></table>\
         <p>Injected by <code>lab fault</code> or a <code>[faults.NAME]</code> schedule; none is shown when none is in effect.</p>\
         <p id=\"store\">{}</p>",
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
        fill('instances',o.instances);fill('backends',o.backends);fill('faults',o.faults||[]);\
        const ul=document.getElementById('problems');ul.replaceChildren(...o.problems.map(p=>{const li=document.createElement('li');li.textContent=p;return li;}));\
        document.getElementById('updated').textContent=new Date().toLocaleTimeString();}catch(_){}}\
        setInterval(tick,1000);";
    frame("overview", "Overview", &body, script).into_response()
}
