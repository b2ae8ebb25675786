//! What every part of render shares: the [`Source`] series are read from, [`Series`] and
//! their consolidation, the bounds, [`RenderError`].

use serde_json::{Value, json};

/// Where render reads series from (the store, or a map in tests).
pub trait Source {
    fn names(&self) -> Vec<String>;
    /// Points of one series in `[from, until]`, ascending, bucketed to `step`.
    fn points(&self, name: &str, from: i64, until: i64) -> Vec<(i64, f64)>;
    fn step(&self) -> i64;
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RenderError(pub String);

/// The most points one series of a request may hold (a day at 1 s, 11 days at the 10 s flush):
/// a wider window is refused with the limit named, never allocated.
pub const MAX_POINTS: usize = 100_000;
/// The most points one request may read and make, over all its series and functions.
pub const MAX_REQUEST_POINTS: usize = 5_000_000;
/// How deep a target's function calls may nest.
pub const MAX_DEPTH: usize = 32;
/// How many targets one request may render.
pub const MAX_TARGETS: usize = 100;

pub(crate) fn err<T>(msg: impl Into<String>) -> Result<T, RenderError> {
    Err(RenderError(msg.into()))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consolidate {
    Average,
    Sum,
    Max,
    Min,
    Last,
    First,
}

impl Consolidate {
    pub(crate) fn parse(s: &str) -> Result<Self, RenderError> {
        Ok(match s {
            "avg" | "average" => Self::Average,
            "sum" | "total" => Self::Sum,
            "max" => Self::Max,
            "min" => Self::Min,
            "last" | "current" => Self::Last,
            "first" => Self::First,
            other => return err(format!("unknown consolidation function {other:?}")),
        })
    }

    pub(crate) fn apply(self, vals: &[Option<f64>]) -> Option<f64> {
        let present: Vec<f64> = vals.iter().flatten().copied().collect();
        if present.is_empty() {
            return None;
        }
        Some(match self {
            Self::Average => present.iter().sum::<f64>() / present.len() as f64,
            Self::Sum => present.iter().sum(),
            Self::Max => present.iter().copied().fold(f64::MIN, f64::max),
            Self::Min => present.iter().copied().fold(f64::MAX, f64::min),
            Self::Last => *present.last()?,
            Self::First => present[0],
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// What `target` shows (the expression that made it, or an alias).
    pub name: String,
    /// The path expression it came from (for `tags.name` and for naming combined series).
    pub path: String,
    pub start: i64,
    pub step: i64,
    pub values: Vec<Option<f64>>,
    pub consolidate: Consolidate,
}

impl Series {
    pub(crate) fn derive(&self, name: String, values: Vec<Option<f64>>) -> Self {
        Self {
            name,
            values,
            ..self.clone()
        }
    }

    /// [`Series::to_json`] written as text straight into `out`: a render of millions of
    /// points never becomes a tree of values (a hundred bytes a point) before it is sent.
    pub fn write_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        out.push_str("{\"target\":");
        out.push_str(&Value::from(self.name.as_str()).to_string());
        out.push_str(",\"tags\":{\"name\":");
        out.push_str(&Value::from(self.path.as_str()).to_string());
        out.push_str("},\"datapoints\":[");
        out.reserve(self.values.len() * 24);
        for (i, v) in self.values.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let ts = self.start + i as i64 * self.step;
            match v.filter(|v| v.is_finite()) {
                Some(v) => {
                    let _ = write!(out, "[{},{ts}]", Value::from(v));
                }
                None => {
                    let _ = write!(out, "[null,{ts}]");
                }
            }
        }
        out.push_str("]}");
    }

    pub fn to_json(&self) -> Value {
        let points: Vec<Value> = self
            .values
            .iter()
            .enumerate()
            .map(|(i, v)| {
                json!([
                    v.filter(|v| v.is_finite()),
                    self.start + i as i64 * self.step
                ])
            })
            .collect();
        json!({"target": self.name, "tags": {"name": self.path}, "datapoints": points})
    }

    /// Consolidate to at most `max` points (Graphite's maxDataPoints).
    pub fn limit_points(&mut self, max: usize) {
        if max == 0 || self.values.len() <= max {
            return;
        }
        let per = self.values.len().div_ceil(max);
        self.values = self
            .values
            .chunks(per)
            .map(|c| self.consolidate.apply(c))
            .collect();
        self.step *= per as i64;
    }
}
