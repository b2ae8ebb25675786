//! Alerts (Cabot's job, docs/OBSERVABILITY.md §6): rules over metrics (any Graphite target, compared
//! as Cabot does: the max of each series for `>`/`>=`, the min for `<`/`<=`, any point for `==`,
//! nulls dropped), over an HTTP endpoint (status and optional body regex), and over the health
//! states the hub polls. A rule that fails continuously for its `for` fires; one that passes
//! again resolves. Both are events: a line on the hub's stdout (`lab logs hub`), a log document
//! (`app:hub and type:alert`), and an optional webhook POST.
//!
//! Rules come from lab.toml (`[alerts.NAME]`) and may also be added at run time over the API
//! (`POST /api/alerts`), which is how `lab check ch4.alerting` brings its own rule.

use std::sync::Arc;
use std::time::Duration;

use lab_net::client::Client;
use lab_service_kit::health::Level;
use serde_json::json;

pub mod rule;

use crate::shared::Shared;
use crate::store::Write;
pub use rule::*;

/// Cabot's comparison over rendered series: (failing, what was seen).
pub fn compare(
    series: &[crate::query::graphite::Series],
    check: Cmp,
    value: f64,
) -> (bool, String) {
    let mut failing = Vec::new();
    let mut seen = Vec::new();
    for s in series {
        let points: Vec<f64> = s.values.iter().flatten().copied().collect();
        if points.is_empty() {
            continue;
        }
        let (fails, shown) = match check {
            Cmp::Gt | Cmp::Ge => {
                let max = points.iter().copied().fold(f64::MIN, f64::max);
                (
                    if check == Cmp::Gt {
                        max > value
                    } else {
                        max >= value
                    },
                    format!("max {max}"),
                )
            }
            Cmp::Lt | Cmp::Le => {
                let min = points.iter().copied().fold(f64::MAX, f64::min);
                (
                    if check == Cmp::Lt {
                        min < value
                    } else {
                        min <= value
                    },
                    format!("min {min}"),
                )
            }
            Cmp::Eq => (points.contains(&value), format!("{} points", points.len())),
        };
        seen.push(format!("{}: {shown}", s.name));
        if fails {
            failing.push(s.name.clone());
        }
    }
    if seen.is_empty() {
        return (false, "no data in the window".into());
    }
    (!failing.is_empty(), seen.join("; "))
}

async fn evaluate(shared: &Arc<Shared>, client: &Client, rule: &Rule) -> (bool, String) {
    match &rule.check {
        Check::Metric {
            target,
            check,
            value,
            window_s,
        } => {
            let (store, target, (check, value)) =
                (shared.store.clone(), target.clone(), (*check, *value));
            let until = crate::clock::now_s();
            let from = until - window_s.max(&1);
            let r = tokio::task::spawn_blocking(move || {
                crate::query::source::render_targets(&store, &[target], from, until, None)
            })
            .await;
            match r {
                Ok(Ok(series)) => {
                    let (fails, seen) = compare(&series, check, value);
                    (
                        fails,
                        format!("{seen} (fails when {} {value})", check.as_str()),
                    )
                }
                Ok(Err(e)) => (true, format!("the target does not render: {e}")),
                Err(e) => (true, e.to_string()),
            }
        }
        Check::Http {
            url,
            status,
            text,
            timeout_ms,
        } => match client.get(url, Duration::from_millis(*timeout_ms)).await {
            Ok(r) => {
                let body = r.text();
                if r.status.as_u16() != *status {
                    return (
                        true,
                        format!(
                            "GET {url} answered {} (expected {status})",
                            r.status.as_u16()
                        ),
                    );
                }
                match text.as_deref().map(regex::Regex::new) {
                    Some(Ok(re)) if !re.is_match(&body) => (
                        true,
                        format!("GET {url}: the body does not match /{}/", re.as_str()),
                    ),
                    Some(Err(e)) => (true, format!("bad text regex: {e}")),
                    _ => (false, format!("GET {url} answered {status}")),
                }
            }
            Err(e) => (true, format!("GET {url}: {e}")),
        },
        Check::Health { service, state } => {
            let entries = shared.health.lock().map(|e| e.clone()).unwrap_or_default();
            let mine: Vec<_> = entries.iter().filter(|e| &e.service == service).collect();
            if mine.is_empty() {
                return (false, format!("the hub polls no instance of {service}"));
            }
            let bad: Vec<String> = mine
                .iter()
                .filter(|e| e.state.is_some_and(|s| s.value() <= state.value()))
                .map(|e| {
                    format!(
                        "{}#{} {}",
                        e.service,
                        e.instance,
                        e.state.map_or("?", Level::as_str)
                    )
                })
                .collect();
            if bad.is_empty() {
                (
                    false,
                    format!("{} instances above {}", mine.len(), state.as_str()),
                )
            } else {
                (true, bad.join(", "))
            }
        }
    }
}

/// Evaluate every rule each interval until `stop`.
pub async fn run(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let client = Client::new();
    let every = Duration::from_millis(shared.config.alert_interval_ms.max(100));
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
        let rules: Vec<Rule> = shared
            .alerts
            .lock()
            .map(|a| a.iter().map(|s| s.rule.clone()).collect())
            .unwrap_or_default();
        for rule in rules {
            let (failing, detail) = evaluate(&shared, &client, &rule).await;
            let event = update(&shared, &rule.name, failing, detail);
            if let Some((status, state)) = event {
                announce(&shared, &client, status, &state).await;
            }
        }
    }
}

/// Apply one evaluation; returns the event (firing or resolved) it causes, if any.
fn update(
    shared: &Shared,
    name: &str,
    failing: bool,
    detail: String,
) -> Option<(Status, RuleState)> {
    let now = crate::clock::now_ms();
    let mut alerts = shared.alerts.lock().unwrap_or_else(|p| p.into_inner());
    let st = alerts.iter_mut().find(|s| s.rule.name == name)?;
    st.evaluations += 1;
    st.detail = detail;
    let before = st.status;
    if failing {
        let since = *st.failing_since_ms.get_or_insert(now);
        let due = now - since >= st.rule.for_ms as i64;
        st.status = if due { Status::Firing } else { Status::Pending };
    } else {
        st.failing_since_ms = None;
        st.status = Status::Ok;
    }
    if st.status != before {
        st.since_ms = now;
    }
    match (before, st.status) {
        (b, Status::Firing) if b != Status::Firing => {
            st.fired += 1;
            Some((Status::Firing, st.clone()))
        }
        (Status::Firing, Status::Ok) => Some((Status::Ok, st.clone())),
        _ => None,
    }
}

async fn announce(shared: &Shared, client: &Client, status: Status, st: &RuleState) {
    let what = if status == Status::Firing {
        "FIRING"
    } else {
        "resolved"
    };
    let detail = match &st.rule.origin {
        Some(o) => format!("{} (a rule of {o})", st.detail),
        None => st.detail.clone(),
    };
    println!(
        "alert {} {what} [{}]: {detail}",
        st.rule.name, st.rule.importance
    );
    let severity = match (status, st.rule.importance.as_str()) {
        (Status::Ok, _) => "info",
        (_, "WARNING") => "warn",
        _ => "error",
    };
    let at = time::OffsetDateTime::now_utc();
    let mut e =
        crate::ingest::logs::parse_datagram(b"{}", None, at, &shared.config.index_prefix).remove(0);
    e.doc.insert("app".into(), "hub".into());
    e.doc.insert("type".into(), "alert".into());
    e.doc.insert("severity".into(), severity.into());
    e.doc.insert(
        "message".into(),
        format!("alert {} {what}: {detail}", st.rule.name).into(),
    );
    e.doc.insert("fields".into(), json!({"rule": st.rule.name, "state": what, "importance": st.rule.importance, "detail": detail, "origin": st.rule.origin}));
    let _ = shared.store.try_write(Write::logs(vec![e]));
    let _ = shared
        .store
        .try_write(Write::AlertEvent(crate::store::AlertEvent {
            ts_ms: (at.unix_timestamp_nanos() / 1_000_000) as i64,
            rule: st.rule.name.clone(),
            state: what.to_owned(),
            importance: st.rule.importance.clone(),
            detail: detail.clone(),
        }));
    if let Some(url) = &shared.config.alert_webhook {
        let body = json!({
            "rule": st.rule.name, "state": what, "importance": st.rule.importance,
            "detail": detail, "origin": st.rule.origin, "at": crate::ingest::logs::format_time(at), "check": st.rule.check,
        });
        let sent = client
            .request(
                hyper::Method::POST,
                url,
                &[],
                Some(("application/json", body.to_string().into())),
                Duration::from_secs(5),
            )
            .await;
        if let Err(e) = sent {
            tracing::warn!(url = %url, error = %e, "alert webhook failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::graphite::{Consolidate, Series};

    fn series(vals: &[Option<f64>]) -> Series {
        Series {
            name: "s".into(),
            path: "s".into(),
            start: 0,
            step: 10,
            values: vals.to_vec(),
            consolidate: Consolidate::Average,
        }
    }

    #[test]
    fn cabot_comparisons() {
        let s = [series(&[Some(1.0), None, Some(7.0)])];
        assert!(compare(&s, Cmp::Gt, 5.0).0, "max for >");
        assert!(!compare(&s, Cmp::Lt, 1.0).0, "min for <");
        assert!(compare(&s, Cmp::Le, 1.0).0);
        assert!(compare(&s, Cmp::Eq, 7.0).0);
        assert!(
            !compare(&[series(&[None, None])], Cmp::Gt, 0.0).0,
            "no data does not fail"
        );
    }

    #[test]
    fn rules_read_from_json() {
        let r: Rule = serde_json::from_value(json!({"name": "errors", "kind": "metric", "target": "a.b", "check": ">", "value": 5, "window_s": 60, "for_ms": 0})).unwrap();
        assert_eq!(r.importance, "ERROR");
        assert!(matches!(r.check, Check::Metric { check: Cmp::Gt, .. }));
    }
}
