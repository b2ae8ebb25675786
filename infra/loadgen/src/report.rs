//! The result of a run in autocannon's shape (`autocannon --json`), so scripts written for
//! autocannon read `lab load --json` unchanged: `requests.average` is req/s, latencies are in
//! milliseconds, `p2_5` is the 2.5th percentile. Added: `errorsByKind` and `engine`.

use serde::Serialize;

use crate::plan::Plan;
use crate::run::Outcome;

/// Percentiles reported, as autocannon names them (`p2_5` = 2.5%).
pub const PERCENTILES: &[(&str, f64)] = &[
    ("p0_001", 0.001),
    ("p0_01", 0.01),
    ("p0_1", 0.1),
    ("p1", 1.0),
    ("p2_5", 2.5),
    ("p10", 10.0),
    ("p25", 25.0),
    ("p50", 50.0),
    ("p75", 75.0),
    ("p90", 90.0),
    ("p97_5", 97.5),
    ("p99", 99.0),
    ("p99_9", 99.9),
    ("p99_99", 99.99),
    ("p99_999", 99.999),
];

/// A distribution: average, spread, extremes, percentiles (by autocannon name), total.
#[derive(Debug, Clone, Serialize)]
pub struct Dist {
    pub average: f64,
    pub mean: f64,
    pub stddev: f64,
    pub min: f64,
    pub max: f64,
    pub total: f64,
    #[serde(flatten)]
    pub percentiles: std::collections::BTreeMap<String, f64>,
}

impl Dist {
    pub fn p(&self, name: &str) -> f64 {
        self.percentiles.get(name).copied().unwrap_or(f64::NAN)
    }

    /// From per-second samples (req/s, bytes/s), nearest-rank percentiles.
    fn of_samples(samples: &[u64]) -> Self {
        let mut s: Vec<f64> = samples.iter().map(|&v| v as f64).collect();
        s.sort_by(f64::total_cmp);
        let n = s.len().max(1) as f64;
        let mean = s.iter().sum::<f64>() / n;
        let var = s.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let pick = |q: f64| -> f64 {
            if s.is_empty() {
                return 0.0;
            }
            let rank = ((q / 100.0) * s.len() as f64).ceil() as usize;
            s[rank.clamp(1, s.len()) - 1]
        };
        Self {
            average: mean,
            mean,
            stddev: var.sqrt(),
            min: s.first().copied().unwrap_or(0.0),
            max: s.last().copied().unwrap_or(0.0),
            total: s.iter().sum(),
            percentiles: PERCENTILES
                .iter()
                .map(|(k, q)| (k.to_string(), pick(*q)))
                .collect(),
        }
    }
}

#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub engine: &'static str,
    pub url: String,
    pub connections: usize,
    pub pipelining: usize,
    pub workers: usize,
    /// Seconds the measured phase lasted.
    pub duration: f64,
    /// Requests per second it was asked to hold (`--rate`), if any.
    pub rate: Option<f64>,
    pub start: String,
    pub finish: String,
    /// Failed requests (not timeouts), all kinds.
    pub errors: u64,
    pub errors_by_kind: std::collections::BTreeMap<String, u64>,
    pub timeouts: u64,
    /// Answers outside 2xx.
    pub non2xx: u64,
    #[serde(rename = "1xx")]
    pub s1xx: u64,
    #[serde(rename = "2xx")]
    pub s2xx: u64,
    #[serde(rename = "3xx")]
    pub s3xx: u64,
    #[serde(rename = "4xx")]
    pub s4xx: u64,
    #[serde(rename = "5xx")]
    pub s5xx: u64,
    pub status_code_stats: std::collections::BTreeMap<String, serde_json::Value>,
    /// Milliseconds (HDR histogram, microsecond resolution).
    pub latency: Dist,
    /// Requests per second, sampled each second; `total` = answered requests; `sent` = written.
    pub requests: Requests,
    /// Bytes per second, sampled each second.
    pub throughput: Dist,
}

#[derive(Debug, Clone, Serialize)]
pub struct Requests {
    #[serde(flatten)]
    pub dist: Dist,
    pub sent: u64,
}

impl Report {
    pub fn new(plan: &Plan, o: &Outcome) -> Self {
        let m = &o.measured;
        let h = &m.latency_us;
        let ms = |us: u64| us as f64 / 1000.0;
        let latency = Dist {
            average: h.mean() / 1000.0,
            mean: h.mean() / 1000.0,
            stddev: h.stdev() / 1000.0,
            min: if h.is_empty() { 0.0 } else { ms(h.min()) },
            max: if h.is_empty() { 0.0 } else { ms(h.max()) },
            total: h.len() as f64,
            percentiles: PERCENTILES
                .iter()
                .map(|(k, q)| {
                    (
                        k.to_string(),
                        if h.is_empty() {
                            0.0
                        } else {
                            ms(h.value_at_quantile(q / 100.0))
                        },
                    )
                })
                .collect(),
        };
        // Whole seconds only: a last partial second would read as a slump.
        let whole = (o.elapsed.as_secs() as usize).max(1);
        let secs = |v: &Vec<u64>| -> Vec<u64> {
            if o.elapsed.as_secs() == 0 {
                vec![(v.iter().sum::<u64>() as f64 / o.elapsed.as_secs_f64().max(1e-9)) as u64]
            } else {
                let mut s = v.clone();
                s.resize(whole, 0); // pads a silent second, drops the last partial one
                s
            }
        };
        let mut requests = Dist::of_samples(&secs(&m.per_second));
        requests.total = m.answered_total() as f64;
        let mut throughput = Dist::of_samples(&secs(&m.bytes_per_second));
        throughput.total = m.bytes as f64;
        let class = |lo: u16| {
            m.statuses
                .iter()
                .filter(|(s, _)| **s / 100 == lo / 100)
                .map(|(_, n)| n)
                .sum::<u64>()
        };
        let rfc3339 = |t: std::time::SystemTime| {
            let d = t.duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
            format!("{}.{:03}", d.as_secs(), d.subsec_millis())
        };
        Self {
            engine: "lab load",
            url: plan.target.url(),
            connections: plan.connections,
            pipelining: plan.pipelining,
            workers: plan.workers,
            duration: o.elapsed.as_secs_f64(),
            rate: plan.rate,
            start: rfc3339(o.started),
            finish: rfc3339(o.started + o.elapsed),
            errors: m.errors_total(),
            errors_by_kind: m.errors.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
            timeouts: m.timeouts,
            non2xx: m.answered_total() - class(200),
            s1xx: class(100),
            s2xx: class(200),
            s3xx: class(300),
            s4xx: class(400),
            s5xx: class(500),
            status_code_stats: m
                .statuses
                .iter()
                .map(|(s, n)| (s.to_string(), serde_json::json!({ "count": n })))
                .collect(),
            latency,
            requests: Requests {
                dist: requests,
                sent: m.sent,
            },
            throughput,
        }
    }

    /// Answered requests per second over the whole run (total / duration).
    pub fn rps(&self) -> f64 {
        self.requests.dist.total / self.duration.max(1e-9)
    }

    /// Failed requests (errors and timeouts) as a share of those attempted, in percent.
    pub fn error_percent(&self) -> f64 {
        let failed = (self.errors + self.timeouts) as f64;
        let attempted = self.requests.dist.total + failed;
        if attempted == 0.0 {
            0.0
        } else {
            failed / attempted * 100.0
        }
    }
}
