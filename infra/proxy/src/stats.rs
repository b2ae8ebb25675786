//! The stats page (`stats_uri`, e.g. `/admin?stats`): HTML for people, `;csv` and `;json` for
//! programs. The CSV uses HAProxy's column names and meanings (a subset of its columns, in its
//! order), with one `FRONTEND` row, a row per server and a `BACKEND` row per proxy, so one
//! parser reads both engines' pages by header name.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};

use crate::backend::Backend;

/// What the accept loop of one frontend counts.
#[derive(Debug, Default)]
pub struct FrontendCounters {
    pub conns_cur: AtomicUsize,
    pub conns_max: AtomicUsize,
    pub conns_total: AtomicU64,
}

pub struct ProxyStats {
    pub name: String,
    /// Whether its servers have active checks.
    pub checked: bool,
    pub maxconn: usize,
    pub frontend: FrontendCounters,
    pub backend: Arc<Backend>,
}

pub struct Stats {
    pub proxies: Vec<ProxyStats>,
    started: std::time::Instant,
}

/// The columns, HAProxy's names.
pub const COLUMNS: &[&str] = &[
    "pxname",
    "svname",
    "qcur",
    "qmax",
    "scur",
    "smax",
    "slim",
    "stot",
    "bin",
    "bout",
    "dreq",
    "dresp",
    "ereq",
    "econ",
    "eresp",
    "wretr",
    "wredis",
    "status",
    "weight",
    "act",
    "bck",
    "chkfail",
    "chkdown",
    "lastchg",
    "downtime",
    "check_status",
    "hrsp_2xx",
    "hrsp_3xx",
    "hrsp_4xx",
    "hrsp_5xx",
    "req_tot",
];

impl Stats {
    pub fn new(proxies: Vec<ProxyStats>) -> Self {
        Self {
            proxies,
            started: std::time::Instant::now(),
        }
    }

    /// Every row as (column, value) pairs, in [`COLUMNS`] order.
    pub fn rows(&self) -> Vec<Vec<(&'static str, String)>> {
        let mut rows = Vec::new();
        for p in &self.proxies {
            let b = &p.backend;
            let f = &p.frontend;
            let sum = |get: &dyn Fn(&crate::backend::ServerState) -> u64| -> u64 {
                b.servers.iter().map(get).sum()
            };
            let total_req = sum(&|s| s.counters.total.load(Relaxed));
            // As in the haproxy.cfg rendered from the same config: servers and the BACKEND
            // row belong to `<name>-servers`.
            let backend_name = format!("{}-servers", p.name);
            let row = |svname: &str, vals: Vals| -> Vec<(&'static str, String)> {
                COLUMNS
                    .iter()
                    .map(|&c| {
                        let v = match c {
                            "pxname" if svname == "FRONTEND" => p.name.clone(),
                            "pxname" => backend_name.clone(),
                            "svname" => svname.to_owned(),
                            _ => vals.get(c).unwrap_or_default(),
                        };
                        (c, v)
                    })
                    .collect()
            };
            rows.push(row(
                "FRONTEND",
                Vals(vec![
                    ("scur", f.conns_cur.load(Relaxed).to_string()),
                    ("smax", f.conns_max.load(Relaxed).to_string()),
                    ("slim", p.maxconn.to_string()),
                    ("stot", f.conns_total.load(Relaxed).to_string()),
                    ("status", "OPEN".into()),
                    ("req_tot", total_req.to_string()),
                ]),
            ));
            for s in &b.servers {
                let c = &s.counters;
                let up = s.up.load(Relaxed);
                let lastchg = s
                    .changed
                    .lock()
                    .map(|t| t.elapsed().as_secs())
                    .unwrap_or_default();
                rows.push(row(
                    &s.name,
                    Vals(vec![
                        ("scur", s.inflight.load(Relaxed).to_string()),
                        ("smax", c.max_inflight.load(Relaxed).to_string()),
                        ("slim", b.maxconn.map(|m| m.to_string()).unwrap_or_default()),
                        ("stot", c.total.load(Relaxed).to_string()),
                        ("bout", c.bytes_out.load(Relaxed).to_string()),
                        ("econ", c.conn_errors.load(Relaxed).to_string()),
                        ("eresp", c.resp_errors.load(Relaxed).to_string()),
                        ("wretr", c.retries.load(Relaxed).to_string()),
                        // As HAProxy: a server without checks is "no check".
                        (
                            "status",
                            match (p.checked, up) {
                                (false, _) => "no check",
                                (true, true) => "UP",
                                (true, false) => "DOWN",
                            }
                            .into(),
                        ),
                        ("weight", "1".into()),
                        ("act", "1".into()),
                        ("bck", "0".into()),
                        ("chkfail", s.check_fails.load(Relaxed).to_string()),
                        ("chkdown", s.went_down.load(Relaxed).to_string()),
                        ("lastchg", lastchg.to_string()),
                        (
                            "check_status",
                            s.last_check.lock().map(|c| c.clone()).unwrap_or_default(),
                        ),
                        ("hrsp_2xx", c.hrsp_2xx.load(Relaxed).to_string()),
                        ("hrsp_3xx", c.hrsp_3xx.load(Relaxed).to_string()),
                        ("hrsp_4xx", c.hrsp_4xx.load(Relaxed).to_string()),
                        ("hrsp_5xx", c.hrsp_5xx.load(Relaxed).to_string()),
                        ("req_tot", c.total.load(Relaxed).to_string()),
                    ]),
                ));
            }
            let any_up = b.servers.iter().any(|s| s.up.load(Relaxed));
            rows.push(row(
                "BACKEND",
                Vals(vec![
                    ("qcur", b.queued.load(Relaxed).to_string()),
                    ("qmax", b.max_queued.load(Relaxed).to_string()),
                    (
                        "scur",
                        sum(&|s| s.inflight.load(Relaxed) as u64).to_string(),
                    ),
                    ("stot", total_req.to_string()),
                    (
                        "econ",
                        sum(&|s| s.counters.conn_errors.load(Relaxed)).to_string(),
                    ),
                    (
                        "eresp",
                        sum(&|s| s.counters.resp_errors.load(Relaxed)).to_string(),
                    ),
                    (
                        "wretr",
                        sum(&|s| s.counters.retries.load(Relaxed)).to_string(),
                    ),
                    ("dreq", b.rejected.load(Relaxed).to_string()),
                    ("status", if any_up { "UP" } else { "DOWN" }.into()),
                    (
                        "act",
                        b.servers
                            .iter()
                            .filter(|s| s.up.load(Relaxed))
                            .count()
                            .to_string(),
                    ),
                    (
                        "hrsp_2xx",
                        sum(&|s| s.counters.hrsp_2xx.load(Relaxed)).to_string(),
                    ),
                    (
                        "hrsp_5xx",
                        sum(&|s| s.counters.hrsp_5xx.load(Relaxed)).to_string(),
                    ),
                    ("req_tot", total_req.to_string()),
                ]),
            ));
        }
        rows
    }

    pub fn csv(&self) -> String {
        let mut out = format!("# {}\n", COLUMNS.join(","));
        for r in self.rows() {
            let vals: Vec<String> = r.into_iter().map(|(_, v)| v.replace(',', ";")).collect();
            out.push_str(&vals.join(","));
            out.push('\n');
        }
        out
    }

    pub fn json(&self) -> String {
        let rows: Vec<serde_json::Map<String, serde_json::Value>> = self
            .rows()
            .into_iter()
            .map(|r| {
                r.into_iter()
                    .map(|(k, v)| (k.to_owned(), serde_json::Value::String(v)))
                    .collect()
            })
            .collect();
        serde_json::to_string_pretty(&serde_json::json!({
            "engine": "builtin",
            "uptime_s": self.started.elapsed().as_secs(),
            "rows": rows,
        }))
        .expect("stats serialise")
    }

    pub fn html(&self) -> String {
        let esc = lab_net::html::escape;
        let mut out = String::from(
            "<!doctype html><html><head><meta charset=\"utf-8\"><title>lab proxy stats</title>\
             <style>body{font-family:sans-serif}table{border-collapse:collapse}td,th{border:1px solid #999;padding:2px 6px;font-size:13px}\
             .UP{background:#cfc}.DOWN{background:#fcc}</style></head><body><h1>lab proxy (builtin) statistics</h1>",
        );
        out.push_str(&format!(
            "<p>uptime {} s · also as <a href=\"?stats;csv\">CSV</a> (append <code>;csv</code>) and <code>;json</code></p><table><tr>",
            self.started.elapsed().as_secs()
        ));
        for c in COLUMNS {
            out.push_str(&format!("<th>{c}</th>"));
        }
        out.push_str("</tr>");
        for r in self.rows() {
            let status = r
                .iter()
                .find(|(k, _)| *k == "status")
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            out.push_str(&format!("<tr class=\"{}\">", esc(&status)));
            for (_, v) in r {
                out.push_str(&format!("<td>{}</td>", esc(&v)));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table></body></html>\n");
        out
    }
}

struct Vals(Vec<(&'static str, String)>);

impl Vals {
    fn get(&self, k: &str) -> Option<String> {
        self.0.iter().find(|(c, _)| *c == k).map(|(_, v)| v.clone())
    }
}
