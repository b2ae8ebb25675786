//! SLA bounds, `--sla 'p99<20ms,errors<0.1%,rps>5000'`: each is a metric, a comparison and a
//! value; a run breaches the SLA when any bound is false.
//!
//! Metrics: latency `p50`, `p90`, `p97.5`, `p99`, `p99.9`, `p99.99`, `avg`, `max` (units `us`,
//! `ms`, `s`; default ms); `rps` (answered per second); `errors` and `timeouts` (a count, or a
//! share of attempted requests with `%`); `non2xx` (count or %).

use crate::report::Report;

#[derive(Debug, Clone, PartialEq)]
pub struct Bound {
    pub text: String,
    metric: Metric,
    op: Op,
    value: f64,
    percent: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Metric {
    Latency(&'static str),
    Rps,
    Errors,
    Timeouts,
    Non2xx,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, thiserror::Error, PartialEq)]
#[error("bad SLA bound {bound:?}: {reason}")]
pub struct SlaError {
    pub bound: String,
    pub reason: String,
}

/// One checked bound: what it says, what was measured, whether it held.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Verdict {
    pub bound: String,
    pub measured: String,
    pub ok: bool,
}

pub fn parse(spec: &str) -> Result<Vec<Bound>, SlaError> {
    spec.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(parse_one)
        .collect()
}

fn parse_one(text: &str) -> Result<Bound, SlaError> {
    let err = |reason: &str| SlaError {
        bound: text.to_owned(),
        reason: reason.to_owned(),
    };
    let at = text
        .find(['<', '>'])
        .ok_or_else(|| err("expected <, <=, > or >= (e.g. p99<20ms)"))?;
    let name = text[..at].trim().to_ascii_lowercase();
    let rest = &text[at..];
    let (op, rest) = if let Some(r) = rest.strip_prefix("<=") {
        (Op::Le, r)
    } else if let Some(r) = rest.strip_prefix(">=") {
        (Op::Ge, r)
    } else if let Some(r) = rest.strip_prefix('<') {
        (Op::Lt, r)
    } else {
        (Op::Gt, &rest[1..])
    };
    let metric = match name.as_str() {
        "p50" => Metric::Latency("p50"),
        "p90" => Metric::Latency("p90"),
        "p97.5" => Metric::Latency("p97_5"),
        "p99" => Metric::Latency("p99"),
        "p99.9" => Metric::Latency("p99_9"),
        "p99.99" => Metric::Latency("p99_99"),
        "avg" | "mean" => Metric::Latency("avg"),
        "max" => Metric::Latency("max"),
        "rps" => Metric::Rps,
        "errors" => Metric::Errors,
        "timeouts" => Metric::Timeouts,
        "non2xx" => Metric::Non2xx,
        _ => {
            return Err(err(
                "unknown metric: use p50, p90, p97.5, p99, p99.9, p99.99, avg, max, rps, errors, timeouts or non2xx",
            ));
        }
    };
    let v = rest.trim();
    let (num, unit) = v.split_at(
        v.find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(v.len()),
    );
    let num: f64 = num.parse().map_err(|_| err("expected a number"))?;
    let (value, percent) = match (metric, unit.trim()) {
        (Metric::Latency(_), "" | "ms") => (num, false),
        (Metric::Latency(_), "us" | "µs") => (num / 1000.0, false),
        (Metric::Latency(_), "s") => (num * 1000.0, false),
        (Metric::Errors | Metric::Timeouts | Metric::Non2xx, "%") => (num, true),
        (Metric::Errors | Metric::Timeouts | Metric::Non2xx | Metric::Rps, "") => (num, false),
        _ => return Err(err("this unit does not fit the metric")),
    };
    Ok(Bound {
        text: text.to_owned(),
        metric,
        op,
        value,
        percent,
    })
}

impl Bound {
    pub fn check(&self, r: &Report) -> Verdict {
        let attempted = (r.requests.dist.total + (r.errors + r.timeouts) as f64).max(1.0);
        let share = |n: u64| n as f64 / attempted * 100.0;
        let (measured, shown) = match self.metric {
            Metric::Latency("avg") => (r.latency.average, format!("{:.3} ms", r.latency.average)),
            Metric::Latency("max") => (r.latency.max, format!("{:.3} ms", r.latency.max)),
            Metric::Latency(p) => (r.latency.p(p), format!("{:.3} ms", r.latency.p(p))),
            Metric::Rps => (r.rps(), format!("{:.0} req/s", r.rps())),
            Metric::Errors | Metric::Timeouts | Metric::Non2xx => {
                let n = match self.metric {
                    Metric::Errors => r.errors,
                    Metric::Timeouts => r.timeouts,
                    _ => r.non2xx,
                };
                if self.percent {
                    (share(n), format!("{:.3}% ({n})", share(n)))
                } else {
                    (n as f64, n.to_string())
                }
            }
        };
        let ok = match self.op {
            Op::Lt => measured < self.value,
            Op::Le => measured <= self.value,
            Op::Gt => measured > self.value,
            Op::Ge => measured >= self.value,
        };
        Verdict {
            bound: self.text.clone(),
            measured: shown,
            ok,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_parse_with_units() {
        let b = parse("p99<20ms, errors<0.1%,rps>=5000,max<1s,p50<=800us").unwrap();
        assert_eq!(b.len(), 5);
        assert_eq!((b[0].value, b[0].op), (20.0, Op::Lt));
        assert!(b[1].percent && b[1].value == 0.1);
        assert_eq!(b[3].value, 1000.0);
        assert!((b[4].value - 0.8).abs() < 1e-9);
        assert!(parse("p42<1ms").is_err());
        assert!(parse("rps>5%").is_err());
        assert!(parse("p99=3").is_err());
    }
}
