//! StatsD in, with etsy statsd 0.10's semantics (docs/OBSERVABILITY.md §2): the line parser and the
//! aggregator that turns one flush interval of samples into the Graphite names statsd writes.
//!
//! Parsing follows `stats.js` `handlePacket` and `helpers.is_valid_packet`: a datagram is split on
//! `\n`; each line is `key:value|type[|@rate]` with one or more `:`-separated groups; DogStatsD
//! tags (`|#k:v,k2`) become Graphite tags on the key (`key;k=v;k2`). Counters scale by `1/rate`,
//! timers push the value and count `1/rate`, a `+`/`-` gauge is a delta only when the gauge exists,
//! sets count distinct values; any other type (`h`, `d`, …) counts as a counter, as etsy statsd
//! does. Invalid lines are counted (`bad_lines_seen`), never fatal.

use std::collections::{BTreeMap, HashMap, HashSet};

/// Which Graphite layout a flush writes (statsd's `legacyNamespace`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Namespace {
    /// `stats.K`, `stats_counts.K`, `stats.timers.K.*`, `stats.gauges.K`, `stats.sets.K.count`:
    /// what the book's Grafana queries and the graphite-statsd image use.
    #[default]
    Legacy,
    /// `stats.counters.K.rate|count`, the rest as legacy.
    Modern,
}

impl Namespace {
    /// The per-second rate series of counter `key`, as a flush writes it.
    pub fn counter_rate(self, key: &str) -> String {
        match self {
            Namespace::Legacy => format!("stats.{key}"),
            Namespace::Modern => format!("stats.counters.{key}.rate"),
        }
    }

    /// The counter key of a rate series name (the inverse of [`Namespace::counter_rate`]), or
    /// None for any other series.
    pub fn rate_key(self, series: &str) -> Option<&str> {
        match self {
            Namespace::Legacy => series.strip_prefix("stats.").filter(|k| {
                !k.starts_with("timers.") && !k.starts_with("gauges.") && !k.starts_with("sets.")
            }),
            Namespace::Modern => series
                .strip_prefix("stats.counters.")?
                .strip_suffix(".rate"),
        }
    }
}

/// One parsed sample.
#[derive(Debug, Clone, PartialEq)]
pub enum Sample {
    Counter {
        key: String,
        value: f64,
        rate: f64,
    },
    Timer {
        key: String,
        value: f64,
        rate: f64,
    },
    Gauge {
        key: String,
        value: f64,
        delta: bool,
    },
    Set {
        key: String,
        member: String,
    },
}

/// Why a line was rejected (counted, and shown by the fuzz target and tests).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadLine(pub String);

/// etsy's `sanitizeKeyName`: whitespace runs → `_`, `/` → `-`, drop what is not `[A-Za-z0-9_.;=-]`.
pub fn sanitize_key(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut in_space = false;
    for c in key.chars() {
        if c.is_whitespace() {
            if !in_space {
                out.push('_');
            }
            in_space = true;
            continue;
        }
        in_space = false;
        match c {
            '/' => out.push('-'),
            c if c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ';' | '=') => {
                out.push(c)
            }
            _ => {}
        }
    }
    out
}

fn is_number(s: &str) -> bool {
    // JavaScript's Number() accepts surrounding spaces; statsd's is_number is stricter (a regex
    // of digits, sign, dot and exponent). Both reject the empty string.
    let s = s.trim();
    !s.is_empty()
        && s.parse::<f64>().is_ok_and(f64::is_finite)
        && s.bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'-' | b'+' | b'e' | b'E'))
}

/// Parse one line into its samples (one per `:`-separated group). A bad group rejects only itself.
pub fn parse_line(line: &str, out: &mut Vec<Sample>, bad: &mut Vec<BadLine>) {
    let (body, tags) = match line.find("|#") {
        Some(i) => (&line[..i], Some(&line[i + 2..])),
        None => (line, None),
    };
    let mut bits = body.split(':');
    let mut key = bits.next().unwrap_or_default().to_owned();
    if let Some(tags) = tags {
        for tag in tags.split(',').filter(|t| !t.is_empty()) {
            key.push(';');
            key.push_str(&tag.replacen(':', "=", 1));
        }
    }
    let key = sanitize_key(&key);
    let groups: Vec<&str> = bits.collect();
    if key.is_empty() || groups.is_empty() {
        bad.push(BadLine(line.to_owned()));
        return;
    }
    for group in groups {
        match parse_group(&key, group) {
            Some(s) => out.push(s),
            None => bad.push(BadLine(format!("{key}:{group}"))),
        }
    }
}

fn parse_group(key: &str, group: &str) -> Option<Sample> {
    let key = key.to_owned();
    Some(match parse_value(group)? {
        Parsed::Set(member) => Sample::Set {
            key,
            member: member.to_owned(),
        },
        Parsed::Gauge { value, delta } => Sample::Gauge { key, value, delta },
        Parsed::Timer { value, rate } => Sample::Timer { key, value, rate },
        Parsed::Counter { value, rate } => Sample::Counter { key, value, rate },
    })
}

/// One group's sample without its key.
enum Parsed<'a> {
    Counter { value: f64, rate: f64 },
    Timer { value: f64, rate: f64 },
    Gauge { value: f64, delta: bool },
    Set(&'a str),
}

/// `value|type[|@rate]`: what it counts, or `None` when statsd would reject it.
fn parse_value(group: &str) -> Option<Parsed<'_>> {
    let mut fields = group.split('|');
    let value = fields.next()?;
    let kind = fields.next()?;
    let mut rate = 1.0;
    if let Some(r) = fields.next() {
        let r = r.strip_prefix('@')?;
        // etsy takes the leading `[\d.]+` of the field.
        let end = r
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(r.len());
        rate = r[..end].parse::<f64>().ok()?;
        if rate <= 0.0 || rate.is_nan() {
            return None;
        }
    }
    match kind.trim() {
        "s" => Some(Parsed::Set(if value.is_empty() { "0" } else { value })),
        "g" => {
            let delta = value.starts_with('+') || value.starts_with('-');
            is_number(value).then(|| Parsed::Gauge {
                value: value.trim().parse().unwrap_or(0.0),
                delta,
            })
        }
        "ms" => {
            let v: f64 = value.trim().parse().ok()?;
            (is_number(value) && v >= 0.0).then_some(Parsed::Timer { value: v, rate })
        }
        "" => None,
        // `c`, and every other type (`h`, `d`, …) is a counter in etsy statsd.
        _ => is_number(value).then(|| Parsed::Counter {
            value: value.trim().parse().unwrap_or(1.0),
            rate,
        }),
    }
}

/// A line whose key [`sanitize_key`] keeps as it is, with one group and no tags: (key, group).
fn clean_line(line: &str) -> Option<(&str, &str)> {
    let (key, group) = line.split_once(':')?;
    let clean = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b';' | b'=');
    (!key.is_empty() && key.bytes().all(clean) && !group.contains([':', '#']))
        .then_some((key, group))
}

/// The value of `key` in `map`, inserted as the default when it lacks it.
fn slot<'m, V: Default>(map: &'m mut BTreeMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

fn hslot<'m, V: Default>(map: &'m mut HashMap<String, V>, key: &str) -> &'m mut V {
    if !map.contains_key(key) {
        map.insert(key.to_owned(), V::default());
    }
    map.get_mut(key).expect("inserted above")
}

/// What one timer's values summarise to (etsy `process_metrics.js`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TimerStats {
    pub fields: Vec<(String, f64)>,
}

/// Summaries of a timer's sorted values for the given percent thresholds.
pub fn timer_stats(values: &mut [f64], count: f64, interval_s: f64, pcts: &[f64]) -> TimerStats {
    let mut f = Vec::new();
    if values.is_empty() {
        f.push(("count".to_owned(), 0.0));
        f.push(("count_ps".to_owned(), 0.0));
        return TimerStats { fields: f };
    }
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let (min, max) = (values[0], values[n - 1]);
    let mut cum = Vec::with_capacity(n);
    let mut cum_sq = Vec::with_capacity(n);
    let (mut s, mut sq) = (0.0, 0.0);
    for v in values.iter() {
        s += v;
        sq += v * v;
        cum.push(s);
        cum_sq.push(sq);
    }
    let (mut sum, mut sum_squares, mut mean, mut boundary) = (min, min * min, min, max);
    for &pct in pcts {
        let mut num = n;
        if n > 1 {
            // JavaScript's Math.round: halves go up.
            num = (pct.abs() / 100.0 * n as f64 + 0.5).floor() as usize;
            if num == 0 {
                continue;
            }
            if pct > 0.0 {
                boundary = values[num - 1];
                sum = cum[num - 1];
                sum_squares = cum_sq[num - 1];
            } else {
                // The top `num` values (a negative threshold, `lower_top90`).
                boundary = values[n - num];
                let (below, below_sq) = match n - num {
                    0 => (0.0, 0.0),
                    k => (cum[k - 1], cum_sq[k - 1]),
                };
                sum = cum[n - 1] - below;
                sum_squares = cum_sq[n - 1] - below_sq;
            }
            mean = sum / num as f64;
        }
        let clean = format_number(pct)
            .replacen('.', "_", 1)
            .replacen('-', "top", 1);
        f.push((format!("count_{clean}"), num as f64));
        f.push((format!("mean_{clean}"), mean));
        let bound_name = if pct > 0.0 { "upper" } else { "lower" };
        f.push((format!("{bound_name}_{clean}"), boundary));
        f.push((format!("sum_{clean}"), sum));
        f.push((format!("sum_squares_{clean}"), sum_squares));
    }
    let sum = cum[n - 1];
    let mean = sum / n as f64;
    let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / n as f64;
    let mid = n / 2;
    let median = if n % 2 == 1 {
        values[mid]
    } else {
        (values[mid - 1] + values[mid]) / 2.0
    };
    f.push(("std".to_owned(), var.sqrt()));
    f.push(("upper".to_owned(), max));
    f.push(("lower".to_owned(), min));
    f.push(("count".to_owned(), count));
    f.push(("count_ps".to_owned(), count / interval_s));
    f.push(("sum".to_owned(), sum));
    f.push(("sum_squares".to_owned(), cum_sq[n - 1]));
    f.push(("mean".to_owned(), mean));
    f.push(("median".to_owned(), median));
    TimerStats { fields: f }
}

/// JavaScript's `'' + n` for the numbers that appear as thresholds (90, 99.9).
pub(crate) fn format_number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

/// A timer's sum of values, count, and quantiles `(q, value)` of the last interval with data.
pub type TimerTotal = (f64, f64, Vec<(f64, f64)>);

/// The cumulative view the Prometheus exposition serves (monotonic since the hub started).
#[derive(Debug, Clone, Default)]
pub struct Totals {
    pub counters: BTreeMap<String, f64>,
    pub gauges: BTreeMap<String, f64>,
    /// name → (sum of values, count, quantiles of the last flush with data: (q, value)).
    pub timers: BTreeMap<String, TimerTotal>,
    pub sets: BTreeMap<String, f64>,
}

/// One flush interval's state, plus what survives flushes (keys, gauges, totals).
#[derive(Debug, Default)]
pub struct Aggregator {
    counters: HashMap<String, f64>,
    timers: HashMap<String, (Vec<f64>, f64)>,
    gauges: HashMap<String, f64>,
    sets: HashMap<String, HashSet<String>>,
    pub packets_received: u64,
    pub metrics_received: u64,
    pub bad_lines_seen: u64,
    pub totals: Totals,
    scratch: Vec<Sample>,
    bad: Vec<BadLine>,
}

impl Aggregator {
    pub fn new() -> Self {
        Self::default()
    }

    /// Take one datagram. Returns how many lines were bad.
    pub fn ingest(&mut self, packet: &[u8]) -> usize {
        self.packets_received += 1;
        let text = String::from_utf8_lossy(packet);
        let mut samples = std::mem::take(&mut self.scratch);
        let mut bad = std::mem::take(&mut self.bad);
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            self.metrics_received += 1;
            // The common line (`name:value|type[|@rate]`, a key with nothing to clean, one
            // group, no tags) is taken without an allocation unless its key is new.
            if let Some((key, group)) = clean_line(line)
                && let Some(p) = parse_value(group)
            {
                self.add_parsed(key, p);
                continue;
            }
            parse_line(line, &mut samples, &mut bad);
            for s in samples.drain(..) {
                self.add(s);
            }
        }
        let n = bad.len();
        self.bad_lines_seen += n as u64;
        bad.clear();
        self.scratch = samples;
        self.bad = bad;
        n
    }

    pub fn add(&mut self, s: Sample) {
        match s {
            Sample::Counter { key, value, rate } => {
                self.add_parsed(&key, Parsed::Counter { value, rate });
            }
            Sample::Timer { key, value, rate } => {
                self.add_parsed(&key, Parsed::Timer { value, rate });
            }
            Sample::Gauge { key, value, delta } => {
                self.add_parsed(&key, Parsed::Gauge { value, delta });
            }
            Sample::Set { key, member } => {
                self.sets.entry(key).or_default().insert(member);
            }
        }
    }

    /// [`Aggregator::add`] of a borrowed key: it is copied only into a map that lacks it.
    fn add_parsed(&mut self, key: &str, p: Parsed) {
        match p {
            Parsed::Counter { value, rate } => {
                let v = value / rate;
                *slot(&mut self.totals.counters, key) += v;
                *hslot(&mut self.counters, key) += v;
            }
            Parsed::Timer { value, rate } => {
                let t = slot(&mut self.totals.timers, key);
                t.0 += value;
                t.1 += 1.0 / rate;
                let e = hslot(&mut self.timers, key);
                e.0.push(value);
                e.1 += 1.0 / rate;
            }
            Parsed::Gauge { value, delta } => {
                let v = match self.gauges.get(key) {
                    Some(old) if delta => old + value,
                    _ => value,
                };
                *slot(&mut self.totals.gauges, key) = v;
                *hslot(&mut self.gauges, key) = v;
            }
            Parsed::Set(member) => {
                hslot(&mut self.sets, key).insert(member.to_owned());
            }
        }
    }

    /// Count a counter of the hub's own (`hub.dropped.*`) into this interval.
    pub fn count(&mut self, key: &str, by: f64) {
        self.add(Sample::Counter {
            key: key.to_owned(),
            value: by,
            rate: 1.0,
        });
    }

    /// Close the interval: every series statsd would write, with `interval` seconds of data.
    /// Counters, timers and sets restart from zero but keep their keys (statsd's
    /// `deleteIdleStats = false`); gauges keep their value.
    pub fn flush(&mut self, interval_s: f64, ns: Namespace, pcts: &[f64]) -> Vec<(String, f64)> {
        let mut out = Vec::new();
        let own = [
            ("statsd.bad_lines_seen", self.bad_lines_seen),
            ("statsd.packets_received", self.packets_received),
            ("statsd.metrics_received", self.metrics_received),
        ];
        for (k, v) in own {
            *self.counters.entry(k.to_owned()).or_default() += v as f64;
        }
        self.bad_lines_seen = 0;
        self.packets_received = 0;
        self.metrics_received = 0;
        for (k, v) in self.counters.iter_mut() {
            match ns {
                Namespace::Legacy => {
                    out.push((format!("stats.{k}"), *v / interval_s));
                    out.push((format!("stats_counts.{k}"), *v));
                }
                Namespace::Modern => {
                    out.push((format!("stats.counters.{k}.rate"), *v / interval_s));
                    out.push((format!("stats.counters.{k}.count"), *v));
                }
            }
            *v = 0.0;
        }
        for (k, (values, count)) in self.timers.iter_mut() {
            let stats = timer_stats(values, *count, interval_s, pcts);
            if !values.is_empty() {
                let q = quantiles(values);
                if let Some(t) = self.totals.timers.get_mut(k) {
                    t.2 = q;
                }
            }
            for (field, v) in stats.fields {
                out.push((format!("stats.timers.{k}.{field}"), v));
            }
            values.clear();
            *count = 0.0;
        }
        for (k, v) in &self.gauges {
            out.push((format!("stats.gauges.{k}"), *v));
        }
        for (k, members) in self.sets.iter_mut() {
            out.push((format!("stats.sets.{k}.count"), members.len() as f64));
            self.totals.sets.insert(k.clone(), members.len() as f64);
            members.clear();
        }
        let num_stats =
            (self.counters.len() + self.timers.len() + self.gauges.len() + self.sets.len()) as f64;
        out.push(("statsd.numStats".to_owned(), num_stats));
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }
}

/// p50, p90, p99 of sorted values (nearest rank), for the Prometheus summary.
fn quantiles(sorted: &[f64]) -> Vec<(f64, f64)> {
    [0.5, 0.9, 0.99]
        .into_iter()
        .map(|q| {
            let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
            (q, sorted[rank - 1])
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flush_map(a: &mut Aggregator) -> BTreeMap<String, f64> {
        a.flush(10.0, Namespace::Legacy, &[90.0])
            .into_iter()
            .collect()
    }

    #[test]
    fn counters_with_sample_rates_and_several_groups() {
        let mut a = Aggregator::new();
        a.ingest(b"web-api.hits:1|c\nweb-api.hits:2|c|@0.5\n\nmulti:1|c:3|c");
        let m = flush_map(&mut a);
        assert_eq!(m["stats_counts.web-api.hits"], 5.0);
        assert_eq!(m["stats.web-api.hits"], 0.5);
        assert_eq!(m["stats_counts.multi"], 4.0);
        assert_eq!(m["stats_counts.statsd.metrics_received"], 3.0);
        assert_eq!(m["stats_counts.statsd.packets_received"], 1.0);
        // The next interval re-emits the keys as zero.
        let m = flush_map(&mut a);
        assert_eq!(m["stats_counts.web-api.hits"], 0.0);
    }

    #[test]
    fn timers_match_etsy_process_metrics() {
        let mut a = Aggregator::new();
        let lines: String = (1..=10).map(|v| format!("t:{v}|ms\n")).collect();
        a.ingest(lines.as_bytes());
        let m = flush_map(&mut a);
        let t = |f: &str| m[&format!("stats.timers.t.{f}")];
        assert_eq!(t("count"), 10.0);
        assert_eq!(t("count_ps"), 1.0);
        assert_eq!(t("upper"), 10.0);
        assert_eq!(t("lower"), 1.0);
        assert_eq!(t("mean"), 5.5);
        assert_eq!(t("median"), 5.5);
        assert_eq!(t("sum"), 55.0);
        assert_eq!(t("sum_squares"), 385.0);
        assert_eq!(t("count_90"), 9.0);
        assert_eq!(t("upper_90"), 9.0);
        assert_eq!(t("sum_90"), 45.0);
        assert_eq!(t("mean_90"), 5.0);
        assert!((t("std") - 2.8722813232690143).abs() < 1e-12);
        // Idle: only count and count_ps.
        let m = flush_map(&mut a);
        assert_eq!(m["stats.timers.t.count"], 0.0);
        assert!(!m.contains_key("stats.timers.t.upper"));
    }

    #[test]
    fn sampled_timer_counts_scale_but_values_do_not() {
        let mut a = Aggregator::new();
        a.ingest(b"t:100|ms|@0.1");
        let m = flush_map(&mut a);
        assert_eq!(m["stats.timers.t.count"], 10.0);
        assert_eq!(m["stats.timers.t.upper"], 100.0);
    }

    #[test]
    fn gauges_deltas_apply_only_to_existing_gauges() {
        let mut a = Aggregator::new();
        a.ingest(b"g:-5|g");
        assert_eq!(flush_map(&mut a)["stats.gauges.g"], -5.0);
        a.ingest(b"g:+3|g\ng:-1|g");
        assert_eq!(flush_map(&mut a)["stats.gauges.g"], -3.0);
        a.ingest(b"g:7|g");
        let m = flush_map(&mut a);
        assert_eq!(m["stats.gauges.g"], 7.0);
        // Kept across an idle interval.
        assert_eq!(flush_map(&mut a)["stats.gauges.g"], 7.0);
    }

    #[test]
    fn sets_count_distinct_members() {
        let mut a = Aggregator::new();
        a.ingest(b"u:alice|s\nu:bob|s\nu:alice|s");
        assert_eq!(flush_map(&mut a)["stats.sets.u.count"], 2.0);
        assert_eq!(flush_map(&mut a)["stats.sets.u.count"], 0.0);
    }

    #[test]
    fn unknown_types_are_counters_as_in_etsy_statsd() {
        let mut a = Aggregator::new();
        a.ingest(b"web-api.hist:5|h\nd:2|d");
        let m = flush_map(&mut a);
        assert_eq!(m["stats_counts.web-api.hist"], 5.0);
        assert_eq!(m["stats_counts.d"], 2.0);
    }

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let mut a = Aggregator::new();
        let bad = a.ingest(b"nokey\n:1|c\nx:abc|c\ny:1|c|0.5\nz:-1|ms\nw:1\nok:1|c\nv:1|g|@x");
        assert_eq!(bad, 7);
        let m = flush_map(&mut a);
        assert_eq!(m["stats_counts.statsd.bad_lines_seen"], 7.0);
        assert_eq!(m["stats_counts.ok"], 1.0);
    }

    #[test]
    fn keys_are_sanitised_and_tags_become_graphite_tags() {
        assert_eq!(sanitize_key("a b\t c/d!e"), "a_b_c-de");
        let mut a = Aggregator::new();
        a.ingest(b"req:1|c|#route:home,canary");
        assert_eq!(flush_map(&mut a)["stats_counts.req;route=home;canary"], 1.0);
    }

    #[test]
    fn modern_namespace() {
        let mut a = Aggregator::new();
        a.ingest(b"hits:4|c");
        let m: BTreeMap<_, _> = a
            .flush(2.0, Namespace::Modern, &[90.0])
            .into_iter()
            .collect();
        assert_eq!(m["stats.counters.hits.count"], 4.0);
        assert_eq!(m["stats.counters.hits.rate"], 2.0);
    }

    #[test]
    fn totals_are_monotonic_for_prometheus() {
        let mut a = Aggregator::new();
        a.ingest(b"hits:4|c\nt:2|ms\nt:4|ms");
        a.flush(10.0, Namespace::Legacy, &[90.0]);
        a.ingest(b"hits:1|c");
        a.flush(10.0, Namespace::Legacy, &[90.0]);
        assert_eq!(a.totals.counters["hits"], 5.0);
        let t = &a.totals.timers["t"];
        assert_eq!((t.0, t.1), (6.0, 2.0));
        assert_eq!(t.2[0], (0.5, 2.0));
    }
}
