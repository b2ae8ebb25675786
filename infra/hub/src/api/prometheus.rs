//! `GET /metrics`: the Prometheus text exposition (format 0.0.4, docs/OBSERVABILITY.md §7). StatsD
//! paths stay whole as a `name` label; counters are monotonic since the hub started (not the
//! per-flush values), timers are summaries, and the hub's own counters come along.

use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use crate::ingest::otlp::metrics::{Family, Labels, MetricState};
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
    // What OTel-instrumented services sent over OTLP, last samples (`otel_*`).
    if let Ok(st) = shared.otlp_metrics.lock() {
        otlp_families(&st, &mut out);
    }
    out
}

fn label_set(l: &Labels, le: Option<&str>) -> String {
    let mut parts: Vec<String> = l
        .iter()
        .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
        .collect();
    if let Some(le) = le {
        parts.push(format!("le=\"{le}\""));
    }
    parts.join(",")
}

/// The OTLP families in the text format, each with `# HELP` and `# TYPE`.
pub fn otlp_families(state: &MetricState, out: &mut String) {
    for (fam, (help, f)) in &state.families {
        let help = if help.is_empty() {
            "OpenTelemetry metric received over OTLP."
        } else {
            help
        };
        let help = help.replace('\\', "\\\\").replace('\n', "\\n");
        let kind = match f {
            Family::Counter(_) => "counter",
            Family::Gauge(_) => "gauge",
            Family::Histogram(_) => "histogram",
        };
        let _ = writeln!(out, "# HELP {fam} {help}");
        let _ = writeln!(out, "# TYPE {fam} {kind}");
        match f {
            Family::Counter(s) | Family::Gauge(s) => {
                for (l, v) in s {
                    let _ = writeln!(out, "{fam}{{{}}} {}", label_set(l, None), value(*v));
                }
            }
            Family::Histogram(s) => {
                for (l, h) in s {
                    let mut cum = 0u64;
                    for (i, b) in h.buckets.iter().enumerate() {
                        cum += b;
                        let le = h.bounds.get(i).map_or("+Inf".to_owned(), |b| value(*b));
                        let _ = writeln!(out, "{fam}_bucket{{{}}} {cum}", label_set(l, Some(&le)));
                    }
                    if h.buckets.is_empty() {
                        let _ = writeln!(
                            out,
                            "{fam}_bucket{{{}}} {}",
                            label_set(l, Some("+Inf")),
                            h.count
                        );
                    }
                    let _ = writeln!(out, "{fam}_sum{{{}}} {}", label_set(l, None), value(h.sum));
                    let _ = writeln!(out, "{fam}_count{{{}}} {}", label_set(l, None), h.count);
                }
            }
        }
    }
}

pub async fn handler(State(s): State<Arc<Shared>>) -> Response {
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], exposition(&s)).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp::metrics::Hist;
    use std::collections::BTreeMap;

    #[test]
    fn otlp_families_render_with_their_labels_and_buckets() {
        let l = vec![
            ("service_name".to_owned(), "shop".to_owned()),
            ("route".to_owned(), "/x \"y\"".to_owned()),
        ];
        let mut st = MetricState::default();
        st.families.insert(
            "otel_orders_total".into(),
            (
                String::new(),
                Family::Counter(BTreeMap::from([(l.clone(), 5.0)])),
            ),
        );
        let h = Hist {
            bounds: vec![1.0, 5.0],
            buckets: vec![1, 2, 0],
            sum: 6.0,
            count: 3,
        };
        st.families.insert(
            "otel_latency".into(),
            (
                "Request time.\nIn s".into(),
                Family::Histogram(BTreeMap::from([(l[..1].to_vec(), h)])),
            ),
        );
        let mut text = String::new();
        otlp_families(&st, &mut text);
        assert!(
            text.contains("# TYPE otel_orders_total counter\n"),
            "{text}"
        );
        assert!(
            text.contains("otel_orders_total{service_name=\"shop\",route=\"/x \\\"y\\\"\"} 5\n"),
            "{text}"
        );
        assert!(
            text.contains("# HELP otel_latency Request time.\\nIn s\n"),
            "{text}"
        );
        assert!(
            text.contains("otel_latency_bucket{service_name=\"shop\",le=\"1\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("otel_latency_bucket{service_name=\"shop\",le=\"5\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("otel_latency_bucket{service_name=\"shop\",le=\"+Inf\"} 3\n"),
            "{text}"
        );
        assert!(
            text.contains("otel_latency_count{service_name=\"shop\"} 3\n"),
            "{text}"
        );
    }
}
