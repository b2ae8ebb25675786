//! `GET /metrics`: the Prometheus text exposition (format 0.0.4, docs/OBSERVABILITY.md §7). StatsD
//! paths stay whole as a `name` label; counters are monotonic since the hub started (not the
//! per-flush values), timers are summaries, and the hub's own counters come along.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::shared::Shared;

pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// A label value with `\\`, `"` and newlines escaped.
pub fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A sample value: `NaN`, `+Inf`, `-Inf` or the number.
pub fn value(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        format!("{v}")
    }
}

/// One family of StatsD series by name: `# HELP`, `# TYPE`, a sample per name.
fn family(
    out: &mut String,
    metric: &str,
    kind: &str,
    help: &str,
    series: &std::collections::BTreeMap<String, f64>,
) {
    let _ = writeln!(out, "# HELP {metric} {help}");
    let _ = writeln!(out, "# TYPE {metric} {kind}");
    for (k, v) in series {
        let _ = writeln!(
            out,
            "{metric}{{name=\"{}\"}} {}",
            escape_label(k),
            value(*v)
        );
    }
}

pub fn exposition(shared: &Shared) -> String {
    let totals = shared
        .statsd
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .totals
        .clone();
    let mut out = String::new();
    family(
        &mut out,
        "statsd_count_total",
        "counter",
        "StatsD counters received since the hub started (sample rates applied).",
        &totals.counters,
    );
    family(
        &mut out,
        "statsd_last_value",
        "gauge",
        "StatsD gauges, last value.",
        &totals.gauges,
    );
    let _ = writeln!(
        out,
        "# HELP statsd_timer_seconds StatsD timers in seconds (Prometheus' base unit; StatsD sends milliseconds): quantiles of the last interval with data, sum and count since the hub started."
    );
    let _ = writeln!(out, "# TYPE statsd_timer_seconds summary");
    for (k, (sum, count, qs)) in &totals.timers {
        let name = escape_label(k);
        for (q, v) in qs {
            let _ = writeln!(
                out,
                "statsd_timer_seconds{{name=\"{name}\",quantile=\"{q}\"}} {}",
                value(*v / 1000.0)
            );
        }
        let _ = writeln!(
            out,
            "statsd_timer_seconds_sum{{name=\"{name}\"}} {}",
            value(*sum / 1000.0)
        );
        let _ = writeln!(
            out,
            "statsd_timer_seconds_count{{name=\"{name}\"}} {}",
            value(*count)
        );
    }
    family(
        &mut out,
        "statsd_set_members",
        "gauge",
        "Distinct members of each StatsD set in the last interval.",
        &totals.sets,
    );
    let _ = writeln!(
        out,
        "# HELP lab_health_status The book's health state of each instance: 2 OK, 1 DEGRADED, 0 DOWN."
    );
    let _ = writeln!(out, "# TYPE lab_health_status gauge");
    for e in shared.health.lock().map(|e| e.clone()).unwrap_or_default() {
        if let Some(l) = e.state {
            let _ = writeln!(
                out,
                "lab_health_status{{service=\"{}\",instance=\"{}\"}} {}",
                escape_label(&e.service),
                e.instance,
                value(l.value())
            );
        }
    }
    let snap = shared.counters.snapshot();
    for (family, prefix, help) in [
        (
            "hub_received_total",
            "hub.received.",
            "What the hub received, by kind.",
        ),
        (
            "hub_dropped_total",
            "hub.dropped.",
            "What the hub could not take, by reason (bad input or a full queue).",
        ),
    ] {
        let _ = writeln!(out, "# HELP {family} {help}");
        let _ = writeln!(out, "# TYPE {family} counter");
        for (k, v) in snap.iter().filter(|(k, _)| k.starts_with(prefix)) {
            let _ = writeln!(out, "{family}{{what=\"{}\"}} {v}", &k[prefix.len()..]);
        }
    }
    out
}

pub async fn handler(State(s): State<Arc<Shared>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], exposition(&s)).into_response()
}
