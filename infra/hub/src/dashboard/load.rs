//! `lab load` results kept by the hub: `POST /api/loads` (what `lab load` sends when pointed
//! at the lab), `GET /api/loads`, and `GET /load?run=ID&run=ID`, the page that lists the runs
//! and shows the picked ones side by side: their figures, SLA verdicts, latency by percentile
//! and requests per second over the run, each chart with one line per run.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::html::{escape, page, server_error};
use crate::http::params::params;
use crate::shared::Shared;
use lab_net::chart::{self, Line, XAxis};

/// Runs listed on the page.
const LISTED: usize = 100;
/// Runs shown side by side at most.
const COMPARED: usize = 4;
/// The largest result accepted (a report with its curves is a few kB).
const MAX_BODY: usize = 1 << 20;

/// `POST /api/loads`: keep one result. The body is `lab load`'s JSON: `report` (autocannon's
/// shape), `sla` (verdicts), `per_second` (answered requests each second) and `percentiles`
/// (`[nines, ms]` pairs); `report` is required.
pub async fn add(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    if body.len() > MAX_BODY {
        return (
            StatusCode::PAYLOAD_TOO_LARGE,
            "a load result is at most 1 MiB",
        )
            .into_response();
    }
    let doc: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("not JSON: {e}")).into_response(),
    };
    if !doc["report"].is_object() {
        return (StatusCode::BAD_REQUEST, "a load result needs its `report`").into_response();
    }
    let store = s.store.clone();
    let text = doc.to_string();
    let added =
        tokio::task::spawn_blocking(move || store.add_load(crate::clock::now_ms(), text)).await;
    match added {
        Ok(Ok(id)) => (
            StatusCode::CREATED,
            axum::Json(json!({ "id": id, "page": format!("/load?run={id}") })),
        )
            .into_response(),
        Ok(Err(e)) => server_error(e),
        Err(e) => server_error(e),
    }
}

/// `GET /api/loads`: the kept results, newest first (id, ts, and the document).
pub async fn list(State(s): State<Arc<Shared>>) -> Response {
    let store = s.store.clone();
    match tokio::task::spawn_blocking(move || store.loads(LISTED)).await {
        Ok(Ok(runs)) => axum::Json(
            runs.into_iter()
                .map(|(id, ts, doc)| json!({ "id": id, "ts_ms": ts, "result": doc }))
                .collect::<Vec<_>>(),
        )
        .into_response(),
        Ok(Err(e)) => server_error(e),
        Err(e) => server_error(e),
    }
}

fn num(v: &Value) -> f64 {
    v.as_f64().unwrap_or(f64::NAN)
}

fn ms(v: f64) -> String {
    if v.is_nan() {
        "-".into()
    } else if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// The verdict of a run's SLA bounds: "pass", "FAIL", or "-" without bounds.
fn verdict(doc: &Value) -> &'static str {
    match doc["sla"].as_array() {
        Some(v) if !v.is_empty() => {
            if v.iter().all(|b| b["ok"] == true) {
                "pass"
            } else {
                "FAIL"
            }
        }
        _ => "-",
    }
}

/// A report's `start`/`finish` (epoch seconds, as autocannon writes them) as UTC time.
fn when(v: &Value) -> String {
    let secs = v
        .as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()));
    secs.and_then(|s| time::OffsetDateTime::from_unix_timestamp_nanos((s * 1e9) as i128).ok())
        .map(|t| format!("{} UTC", crate::clock::ymd_hms(t)))
        .unwrap_or_else(|| v.as_str().unwrap_or("").to_owned())
}

fn label(id: i64, doc: &Value) -> String {
    format!("#{id} {}", doc["report"]["url"].as_str().unwrap_or("?"))
}

pub async fn page_handler(State(s): State<Arc<Shared>>, uri: Uri, headers: HeaderMap) -> Response {
    let p = params(&uri, &headers, &[]);
    let mut picked: Vec<i64> = p
        .iter()
        .filter(|(k, _)| k == "run")
        .filter_map(|(_, v)| v.parse().ok())
        .collect();
    picked.dedup();
    picked.truncate(COMPARED);
    let store = s.store.clone();
    let found = tokio::task::spawn_blocking(move || {
        let runs = store.loads(LISTED)?;
        let mut shown = Vec::new();
        for id in &picked {
            if let Some((ts, doc)) = store.load(*id)? {
                shown.push((*id, ts, doc));
            }
        }
        // With none picked, the newest run.
        if picked.is_empty() {
            shown.extend(runs.first().cloned());
        }
        Ok::<_, crate::store::StoreError>((runs, shown, picked))
    })
    .await;
    let (runs, shown, picked) = match found {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => return server_error(e),
        Err(e) => return server_error(e),
    };
    let mut body = String::from("<h1>Load</h1>");
    if runs.is_empty() {
        body.push_str(
            "<p>No run kept yet. <code>lab load SERVICE</code> (or any URL of the running lab) sends its result here.</p>",
        );
        return page("load", "Load", &body, "").into_response();
    }
    if !shown.is_empty() {
        compare(&mut body, &shown);
    }
    for id in &picked {
        if !shown.iter().any(|r| r.0 == *id) {
            let _ = write!(body, "<p class=\"DOWN\">no run #{id}</p>");
        }
    }
    let _ = write!(
        body,
        r#"<h2>Runs</h2><form method="get" action="/load"><table id="runs"><tr><th></th><th>run</th><th>finished</th><th>target</th><th>connections</th><th>duration</th><th>req/s</th><th>p50</th><th>p99</th><th>errors</th><th>non-2xx</th><th>SLA</th></tr>"#
    );
    for (id, _, doc) in &runs {
        let r = &doc["report"];
        let checked = if shown.iter().any(|x| x.0 == *id) {
            " checked"
        } else {
            ""
        };
        let v = verdict(doc);
        let _ = write!(
            body,
            r#"<tr><td><input type="checkbox" name="run" value="{id}"{checked}></td><td><a href="/load?run={id}">#{id}</a></td><td>{}</td><td>{}</td><td>{}</td><td>{:.1} s</td><td>{:.0}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class="{}">{}</td></tr>"#,
            escape(&when(&r["finish"])),
            escape(r["url"].as_str().unwrap_or("")),
            num(&r["connections"]),
            num(&r["duration"]),
            num(&r["requests"]["average"]),
            ms(num(&r["latency"]["p50"])),
            ms(num(&r["latency"]["p99"])),
            num(&r["errors"]) + num(&r["timeouts"]),
            num(&r["non2xx"]),
            match v {
                "FAIL" => "DOWN",
                "pass" => "OK",
                _ => "",
            },
            v
        );
    }
    body.push_str("</table><button>compare the checked runs</button></form>");
    page("load", "Load", &body, "").into_response()
}

/// Answers per second as steps over each whole second of the run; the last, partial second
/// (a run of 1.004 s has one of 4 ms) would read as a collapse, so it is left out.
fn steps(per_second: &Value, duration_s: f64) -> Vec<(f64, Option<f64>)> {
    let whole = if duration_s.is_finite() {
        duration_s.floor().max(1.0) as usize
    } else {
        usize::MAX
    };
    per_second
        .as_array()
        .map(|a| {
            a.iter()
                .take(whole)
                .enumerate()
                .flat_map(|(i, v)| [(i as f64, v.as_f64()), ((i + 1) as f64, v.as_f64())])
                .collect()
        })
        .unwrap_or_default()
}

/// One row of the comparison: a run's document to the cell's text.
type Cell = dyn Fn(&Value) -> String;

/// The picked runs side by side: a table (a column per run) and two charts (a line per run).
fn compare(body: &mut String, shown: &[(i64, i64, Value)]) {
    let rows: [(&str, &Cell); 13] = [
        ("target", &|d| {
            d["report"]["url"].as_str().unwrap_or("").to_owned()
        }),
        ("started", &|d| when(&d["report"]["start"])),
        ("connections", &|d| {
            format!("{}", num(&d["report"]["connections"]))
        }),
        ("fixed rate", &|d| {
            d["report"]["rate"]
                .as_f64()
                .map_or("-".into(), |r| format!("{r} req/s"))
        }),
        ("duration", &|d| {
            format!("{:.1} s", num(&d["report"]["duration"]))
        }),
        ("answered", &|d| {
            format!("{}", num(&d["report"]["requests"]["total"]))
        }),
        ("req/s (avg)", &|d| {
            format!("{:.1}", num(&d["report"]["requests"]["average"]))
        }),
        ("latency p50", &|d| ms(num(&d["report"]["latency"]["p50"]))),
        ("latency p99", &|d| ms(num(&d["report"]["latency"]["p99"]))),
        ("latency max", &|d| ms(num(&d["report"]["latency"]["max"]))),
        ("errors + timeouts", &|d| {
            format!(
                "{}",
                num(&d["report"]["errors"]) + num(&d["report"]["timeouts"])
            )
        }),
        ("SLA", &|d| {
            let bounds: Vec<String> = d["sla"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|b| {
                            format!(
                                "{} {} (measured {})",
                                if b["ok"] == true { "ok" } else { "FAIL" },
                                b["bound"].as_str().unwrap_or(""),
                                b["measured"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if bounds.is_empty() {
                "-".into()
            } else {
                bounds.join("; ")
            }
        }),
        // `lab load` notes the faults (`lab fault`) that overlapped the run.
        ("faults during the run", &|d| {
            let faults: Vec<String> = d["faults"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .map(|f| {
                            format!(
                                "{} {} on {}",
                                f["id"].as_str().unwrap_or(""),
                                f["what"].as_str().unwrap_or(""),
                                f["target"].as_str().unwrap_or("")
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            if faults.is_empty() {
                "none".into()
            } else {
                faults.join("; ")
            }
        }),
    ];
    body.push_str(r#"<table id="compare"><tr><th></th>"#);
    for (id, _, _) in shown {
        let _ = write!(body, "<th>run #{id}</th>");
    }
    body.push_str("</tr>");
    for (name, get) in rows {
        let _ = write!(body, "<tr><th>{}</th>", escape(name));
        for (_, _, doc) in shown {
            let cell = get(doc);
            let class = match (name, cell.contains("FAIL")) {
                ("faults during the run", _) if cell != "none" => " class=\"DEGRADED\"",
                ("SLA", true) => " class=\"DOWN\"",
                ("SLA", false) if cell != "-" => " class=\"OK\"",
                _ => "",
            };
            let _ = write!(body, "<td{class}>{}</td>", escape(&cell));
        }
        body.push_str("</tr>");
    }
    body.push_str("</table>");
    let pairs = |v: &Value| -> Vec<(f64, Option<f64>)> {
        v.as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| Some((p.get(0)?.as_f64()?, p.get(1)?.as_f64())))
                    .collect()
            })
            .unwrap_or_default()
    };
    let latency: Vec<Line> = shown
        .iter()
        .map(|(id, _, d)| Line {
            name: label(*id, d),
            points: pairs(&d["percentiles"]),
        })
        .collect();
    let per_second: Vec<Line> = shown
        .iter()
        .map(|(id, _, d)| Line {
            name: label(*id, d),
            points: steps(&d["per_second"], num(&d["report"]["duration"])),
        })
        .collect();
    let _ = write!(
        body,
        r#"<div class="charts">{}{}</div>"#,
        chart::lines(
            "latency by percentile (HdrHistogram)",
            "ms",
            XAxis::Nines,
            &latency
        ),
        chart::lines(
            "answered requests, each second",
            "req/s",
            XAxis::Linear("s"),
            &per_second
        )
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_second_steps_leave_out_the_partial_last_second() {
        let pts = steps(&json!([700, 720, 5]), 2.004);
        assert_eq!(
            pts,
            [
                (0.0, Some(700.0)),
                (1.0, Some(700.0)),
                (1.0, Some(720.0)),
                (2.0, Some(720.0))
            ]
        );
        // A run shorter than a second still shows its one sample.
        assert_eq!(steps(&json!([300, 2]), 0.5).len(), 2);
    }

    #[test]
    fn verdicts_and_times_read_from_the_document() {
        assert_eq!(
            verdict(&json!({"sla": [{"ok": true}, {"ok": false}]})),
            "FAIL"
        );
        assert_eq!(verdict(&json!({"sla": [{"ok": true}]})), "pass");
        assert_eq!(verdict(&json!({"sla": []})), "-");
        assert_eq!(when(&json!("1795645694.031")), "2026-11-25 22:28:14 UTC");
    }
}
