//! OTLP metrics → Graphite points (the store) and Prometheus samples (the hub's `/metrics`).
//!
//! Graphite names: `otel.<service>.<metric name>`, then each data point attribute as two
//! segments `<key>.<value>` (sorted by key), then for histograms and summaries `.count`, `.sum`
//! (and `.min`, `.max` when sent); characters outside `[A-Za-z0-9_-]` in the service, keys and
//! values become `_` (the metric name keeps its dots). Sums are kept cumulative: a delta sum is
//! added to the running total the hub keeps, so both temporalities read as one rising series.
//! Prometheus families: `otel_<name>` (`_total` for monotonic sums; `_bucket`/`_sum`/`_count`
//! for histograms), labelled `service_name` and each attribute.

use std::collections::{BTreeMap, HashMap};

use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::metrics::v1::{
    AggregationTemporality, metric::Data, number_data_point,
};

use super::{ExportMetricsServiceRequest, Rejected, service_name, text};

/// A label set: (Prometheus label name, value as sent), `service_name` first.
pub type Labels = Vec<(String, String)>;

/// A Prometheus family's samples, by label set.
#[derive(Debug, Clone, PartialEq)]
pub enum Family {
    Counter(BTreeMap<Labels, f64>),
    Gauge(BTreeMap<Labels, f64>),
    Histogram(BTreeMap<Labels, Hist>),
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Hist {
    pub bounds: Vec<f64>,
    /// Per bucket as sent (not cumulative): one more than `bounds`.
    pub buckets: Vec<u64>,
    pub sum: f64,
    pub count: u64,
}

/// What the hub keeps between requests: running totals of delta sums and histograms, and the
/// last sample of every series for `/metrics`.
#[derive(Debug, Default)]
pub struct MetricState {
    totals: HashMap<String, f64>,
    hists: HashMap<String, Hist>,
    pub families: BTreeMap<String, (String, Family)>,
}

/// At most this many distinct series are kept for `/metrics` and delta totals (a bound on
/// the memory a label explosion can take); past it new series are rejected.
pub const MAX_SERIES: usize = 20_000;

impl MetricState {
    fn series_count(&self) -> usize {
        self.totals.len()
            + self.hists.len()
            + self
                .families
                .values()
                .map(|(_, f)| match f {
                    Family::Counter(m) | Family::Gauge(m) => m.len(),
                    Family::Histogram(m) => m.len(),
                })
                .sum::<usize>()
    }
}

/// Graphite segment: `[A-Za-z0-9_-]`, anything else `_`.
pub fn segment(s: &str) -> String {
    let out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() { "_".into() } else { out }
}

/// A metric name for Graphite: its dots kept, empty segments and odd characters replaced.
fn dotted(name: &str) -> String {
    name.split('.').map(segment).collect::<Vec<_>>().join(".")
}

/// A Prometheus metric or label name: `[a-zA-Z_][a-zA-Z0-9_]*`.
pub fn prom_name(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        out.insert(0, '_');
    }
    out
}

fn sorted(attrs: &[KeyValue]) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = attrs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map(text).unwrap_or_default(),
            )
        })
        .collect();
    v.sort();
    v
}

fn graphite_name(service: &str, metric: &str, attrs: &[(String, String)]) -> String {
    let mut n = format!("otel.{}.{}", segment(service), dotted(metric));
    for (k, v) in attrs {
        n.push('.');
        n.push_str(&segment(k));
        n.push('.');
        n.push_str(&segment(v));
    }
    n
}

fn labels(service: &str, attrs: &[(String, String)]) -> Labels {
    let mut l = vec![("service_name".to_owned(), service.to_owned())];
    for (k, v) in attrs {
        let k = prom_name(k);
        if k != "service_name" && k != "le" && !l.iter().any(|(have, _)| *have == k) {
            l.push((k, v.clone()));
        }
    }
    l
}

fn nanos_to_s(n: u64, now_s: i64) -> i64 {
    if n == 0 {
        now_s
    } else {
        (n / 1_000_000_000) as i64
    }
}

/// The request's points for the store, its samples folded into `state`, and what was
/// rejected (a point without a value, a family sent as two kinds, series past [`MAX_SERIES`]).
pub fn points(
    req: &ExportMetricsServiceRequest,
    state: &mut MetricState,
    now_s: i64,
) -> (Vec<(String, i64, f64)>, Rejected) {
    let mut out = Vec::new();
    let mut rejected = Rejected::default();
    for rm in &req.resource_metrics {
        let service = service_name(rm.resource.as_ref());
        for sm in &rm.scope_metrics {
            for m in &sm.metrics {
                let Some(data) = &m.data else {
                    rejected.add(format!("metric {:?}: no data", m.name));
                    continue;
                };
                metric(&service, m, data, state, now_s, &mut out, &mut rejected);
            }
        }
    }
    (out, rejected)
}

fn metric(
    service: &str,
    m: &opentelemetry_proto::tonic::metrics::v1::Metric,
    data: &Data,
    state: &mut MetricState,
    now_s: i64,
    out: &mut Vec<(String, i64, f64)>,
    rejected: &mut Rejected,
) {
    let full = state.series_count() >= MAX_SERIES;
    let delta = |t: i32| t == AggregationTemporality::Delta as i32;
    match data {
        Data::Gauge(_) | Data::Sum(_) => {
            let (dps, is_delta, counter) = match data {
                Data::Gauge(g) => (&g.data_points, false, false),
                Data::Sum(s) => (
                    &s.data_points,
                    delta(s.aggregation_temporality),
                    s.is_monotonic,
                ),
                _ => unreachable!("matched above"),
            };
            let fam = if counter {
                let base = prom_name(&m.name);
                let base = base.strip_suffix("_total").unwrap_or(&base).to_owned();
                format!("otel_{base}_total")
            } else {
                format!("otel_{}", prom_name(&m.name))
            };
            for (i, p) in dps.iter().enumerate() {
                let v = match p.value {
                    Some(number_data_point::Value::AsDouble(d)) => d,
                    Some(number_data_point::Value::AsInt(n)) => n as f64,
                    None => {
                        rejected.add(format!("metric {:?} point {i}: no value", m.name));
                        continue;
                    }
                };
                let attrs = sorted(&p.attributes);
                let name = graphite_name(service, &m.name, &attrs);
                let v = if is_delta {
                    if full && !state.totals.contains_key(&name) {
                        rejected.add(format!(
                            "metric {:?}: more than {MAX_SERIES} series",
                            m.name
                        ));
                        continue;
                    }
                    let t = state.totals.entry(name.clone()).or_insert(0.0);
                    *t += v;
                    *t
                } else {
                    v
                };
                let entry = state.families.entry(fam.clone()).or_insert_with(|| {
                    let f = if counter {
                        Family::Counter(BTreeMap::new())
                    } else {
                        Family::Gauge(BTreeMap::new())
                    };
                    (m.description.clone(), f)
                });
                match &mut entry.1 {
                    Family::Counter(s) if counter => {
                        s.insert(labels(service, &attrs), v);
                    }
                    Family::Gauge(s) if !counter => {
                        s.insert(labels(service, &attrs), v);
                    }
                    _ => {
                        rejected.add(format!("metric {:?}: sent as two kinds", m.name));
                        continue;
                    }
                }
                out.push((name, nanos_to_s(p.time_unix_nano, now_s), v));
            }
        }
        Data::Histogram(h) => {
            let fam = format!("otel_{}", prom_name(&m.name));
            for p in &h.data_points {
                let attrs = sorted(&p.attributes);
                let name = graphite_name(service, &m.name, &attrs);
                let sent = Hist {
                    bounds: p.explicit_bounds.clone(),
                    buckets: p.bucket_counts.clone(),
                    sum: p.sum.unwrap_or(0.0),
                    count: p.count,
                };
                let hist = if delta(h.aggregation_temporality) {
                    if full && !state.hists.contains_key(&name) {
                        rejected.add(format!(
                            "metric {:?}: more than {MAX_SERIES} series",
                            m.name
                        ));
                        continue;
                    }
                    let t = state.hists.entry(name.clone()).or_default();
                    if t.bounds != sent.bounds {
                        *t = Hist {
                            bounds: sent.bounds.clone(),
                            buckets: vec![0; sent.buckets.len()],
                            ..Hist::default()
                        };
                    }
                    t.buckets.resize(sent.buckets.len(), 0);
                    for (a, b) in t.buckets.iter_mut().zip(&sent.buckets) {
                        *a += b;
                    }
                    t.sum += sent.sum;
                    t.count += sent.count;
                    t.clone()
                } else {
                    sent
                };
                let ts = nanos_to_s(p.time_unix_nano, now_s);
                out.push((format!("{name}.count"), ts, hist.count as f64));
                out.push((format!("{name}.sum"), ts, hist.sum));
                if let Some(v) = p.min {
                    out.push((format!("{name}.min"), ts, v));
                }
                if let Some(v) = p.max {
                    out.push((format!("{name}.max"), ts, v));
                }
                let entry = state
                    .families
                    .entry(fam.clone())
                    .or_insert_with(|| (m.description.clone(), Family::Histogram(BTreeMap::new())));
                match &mut entry.1 {
                    Family::Histogram(s)
                        if hist.buckets.len() == hist.bounds.len() + 1
                            || hist.buckets.is_empty() =>
                    {
                        s.insert(labels(service, &attrs), hist);
                    }
                    Family::Histogram(_) => {
                        rejected.add(format!(
                            "metric {:?}: bucket counts do not match the bounds",
                            m.name
                        ));
                    }
                    _ => rejected.add(format!("metric {:?}: sent as two kinds", m.name)),
                }
            }
        }
        Data::Summary(s) => {
            for p in &s.data_points {
                let attrs = sorted(&p.attributes);
                let name = graphite_name(service, &m.name, &attrs);
                let ts = nanos_to_s(p.time_unix_nano, now_s);
                out.push((format!("{name}.count"), ts, p.count as f64));
                out.push((format!("{name}.sum"), ts, p.sum));
            }
        }
        Data::ExponentialHistogram(e) => {
            for p in &e.data_points {
                let attrs = sorted(&p.attributes);
                let name = graphite_name(service, &m.name, &attrs);
                let ts = nanos_to_s(p.time_unix_nano, now_s);
                out.push((format!("{name}.count"), ts, p.count as f64));
                out.push((format!("{name}.sum"), ts, p.sum.unwrap_or(0.0)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp::json::decode;

    fn req(temporality: i32, v: &str) -> ExportMetricsServiceRequest {
        let body = format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"shop"}}}}]}},
            "scopeMetrics":[{{"metrics":[
              {{"name":"orders","sum":{{"aggregationTemporality":{temporality},"isMonotonic":true,"dataPoints":[
                {{"asInt":"{v}","timeUnixNano":"1795000000000000000","attributes":[{{"key":"http.route","value":{{"stringValue":"/x y"}}}}]}}]}}}},
              {{"name":"queue.depth","gauge":{{"dataPoints":[{{"asDouble":2.5}}]}}}},
              {{"name":"latency","histogram":{{"aggregationTemporality":{temporality},"dataPoints":[
                {{"count":"3","sum":6.0,"bucketCounts":["1","2","0"],"explicitBounds":[1.0,5.0],"min":0.5,"max":4.0}}]}}}},
              {{"name":"empty"}}
            ]}}]}}]}}"#
        );
        decode(body.as_bytes()).unwrap()
    }

    #[test]
    fn delta_sums_and_histograms_accumulate_cumulative_ones_replace() {
        let mut st = MetricState::default();
        let (p, rej) = points(&req(1, "2"), &mut st, 1_795_000_009);
        assert_eq!(rej.count, 1, "the metric without data");
        assert!(
            p.contains(&(
                "otel.shop.orders.http_route._x_y".into(),
                1_795_000_000,
                2.0
            )),
            "{p:?}"
        );
        assert!(
            p.contains(&("otel.shop.queue.depth".into(), 1_795_000_009, 2.5)),
            "{p:?}"
        );
        assert!(
            p.contains(&("otel.shop.latency.count".into(), 1_795_000_009, 3.0)),
            "{p:?}"
        );
        let (p, _) = points(&req(1, "5"), &mut st, 1_795_000_010);
        assert!(
            p.contains(&(
                "otel.shop.orders.http_route._x_y".into(),
                1_795_000_000,
                7.0
            )),
            "{p:?}"
        );
        assert!(
            p.contains(&("otel.shop.latency.sum".into(), 1_795_000_010, 12.0)),
            "{p:?}"
        );
        let mut st = MetricState::default();
        points(&req(2, "2"), &mut st, 0);
        let (p, _) = points(&req(2, "5"), &mut st, 0);
        assert!(
            p.contains(&(
                "otel.shop.orders.http_route._x_y".into(),
                1_795_000_000,
                5.0
            )),
            "{p:?}"
        );
        let shop = |extra: &[(&str, &str)]| -> Labels {
            let mut l = vec![("service_name".to_owned(), "shop".to_owned())];
            l.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            l
        };
        let Family::Counter(orders) = &st.families["otel_orders_total"].1 else {
            panic!("a counter")
        };
        assert_eq!(orders[&shop(&[("http_route", "/x y")])], 5.0);
        let Family::Histogram(lat) = &st.families["otel_latency"].1 else {
            panic!("a histogram")
        };
        assert_eq!(lat[&shop(&[])].buckets, vec![1, 2, 0]);
        let Family::Gauge(depth) = &st.families["otel_queue_depth"].1 else {
            panic!("a gauge")
        };
        assert_eq!(depth[&shop(&[])], 2.5);
    }
}
