//! `/logs`: the KQL of `lab logs --query`, severity colours, expandable documents, live tail.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::html::{escape, page as frame};
use crate::http::params::{param, params};
use crate::query::kql;
use crate::shared::Shared;

/// `GET /logs?query=KQL&since=15m`: the newest matching documents.
pub async fn page(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = params(&uri, &headers, &[]);
    let get = |k: &str| param(&p, k).map(str::to_owned);
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
            return frame("logs", "Logs", &body, "").into_response();
        }
    };
    let Some(window) = kql::duration_ms(&since) else {
        let body = format!(
            "{form}<p class=\"DOWN\">cannot read since={} (e.g. 5m, 1h)</p>",
            escape(&since)
        );
        return frame("logs", "Logs", &body, "").into_response();
    };
    let now_ms = crate::clock::now_ms();
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
            return crate::http::params::internal_error("the page", &e);
        }
        Err(e) => {
            return crate::http::params::internal_error("the page", &e);
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
    frame("logs", "Logs", &body, &script).into_response()
}
