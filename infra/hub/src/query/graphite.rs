//! The Graphite side of metrics out (docs/OBSERVABILITY.md §3): render targets (paths with globs and
//! the function subset Grafana, the book's dashboards and Cabot use), `/metrics/find`, and
//! Graphite's time forms.
//!
//! Data model as whisper: a series is one value (or null) per `step` seconds; the point at `t`
//! holds what was written in `[t, t + step)`. A window `[from, until]` yields the points from
//! `from - from % step + step` through `until - until % step` (whisper's `fetch`).

use std::collections::BTreeMap;

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

fn err<T>(msg: impl Into<String>) -> Result<T, RenderError> {
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
    fn parse(s: &str) -> Result<Self, RenderError> {
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

    fn apply(self, vals: &[Option<f64>]) -> Option<f64> {
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
    fn derive(&self, name: String, values: Vec<Option<f64>>) -> Self {
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

// === time ===

/// Graphite's time forms: `now`, `-10min`, `now-5minutes`, `-1h`, epoch seconds, `HH:MM_YYYYMMDD`,
/// `YYYYMMDD`. `now` is epoch seconds.
pub fn parse_time(s: &str, now: i64) -> Result<i64, RenderError> {
    let s = s.trim();
    let bad = || {
        RenderError(format!(
            "cannot read the time {s:?} (try -10min, -1h, now or epoch seconds)"
        ))
    };
    if s.is_empty() || s == "now" {
        return Ok(now);
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        let ymd = s.len() == 8
            && s[..4].parse::<i64>().is_ok_and(|y| y > 1900)
            && s[4..6].parse::<i64>().is_ok_and(|m| m < 13)
            && s[6..].parse::<i64>().is_ok_and(|d| d < 32);
        if !ymd {
            return s.parse().map_err(|_| bad());
        }
        return ymd_to_epoch(s, 0, 0).ok_or_else(bad);
    }
    let rel = s.strip_prefix("now").unwrap_or(s);
    if let Some(sign) = rel.chars().next().filter(|c| *c == '-' || *c == '+') {
        let secs = parse_interval(&rel[1..]).ok_or_else(bad)?;
        let t = if sign == '-' {
            now.checked_sub(secs)
        } else {
            now.checked_add(secs)
        };
        return t.ok_or_else(bad);
    }
    if let Some((hm, ymd)) = s.split_once('_') {
        let (h, m) = hm.split_once(':').ok_or_else(bad)?;
        let (h, m) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
        return ymd_to_epoch(ymd, h, m).ok_or_else(bad);
    }
    Err(bad())
}

fn ymd_to_epoch(ymd: &str, h: u8, m: u8) -> Option<i64> {
    if ymd.len() != 8 {
        return None;
    }
    let y: i32 = ymd[..4].parse().ok()?;
    let mo: u8 = ymd[4..6].parse().ok()?;
    let d: u8 = ymd[6..].parse().ok()?;
    let date = time::Date::from_calendar_date(y, time::Month::try_from(mo).ok()?, d).ok()?;
    let t = time::Time::from_hms(h, m, 0).ok()?;
    Some(
        time::PrimitiveDateTime::new(date, t)
            .assume_utc()
            .unix_timestamp(),
    )
}

/// `10min`, `5minutes`, `30s`, `1h`, `2d`, `1w`, `1mon`, `1y` → seconds.
pub fn parse_interval(s: &str) -> Option<i64> {
    let s = s.trim().trim_matches(|c| c == '"' || c == '\'');
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: i64 = if n.is_empty() { 1 } else { n.parse().ok()? };
    let unit_s = match unit {
        "s" | "sec" | "secs" | "second" | "seconds" => 1,
        "min" | "mins" | "minute" | "minutes" => 60,
        "h" | "hour" | "hours" => 3600,
        "d" | "day" | "days" => 86_400,
        "w" | "week" | "weeks" => 7 * 86_400,
        "mon" | "month" | "months" => 30 * 86_400,
        "y" | "year" | "years" => 365 * 86_400,
        _ => return None,
    };
    n.checked_mul(unit_s)
}

// === globs ===

/// One dot-free element of a Graphite glob (`*`, `?`, `[a-z0-9]`, `{a,b}`), compiled once.
#[derive(Debug, Clone)]
pub enum GlobElement {
    Exact(String),
    /// None: the pattern does not compile, and matches nothing.
    Pattern(Option<regex::Regex>),
}

impl GlobElement {
    pub fn new(pattern: &str) -> Self {
        if !pattern.contains(['*', '?', '[', '{']) {
            return Self::Exact(pattern.to_owned());
        }
        let mut re = String::from("^");
        let mut chars = pattern.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '*' => re.push_str("[^.]*"),
                '?' => re.push_str("[^.]"),
                '[' => {
                    re.push('[');
                    for c in chars.by_ref() {
                        if c == ']' {
                            break;
                        }
                        if c == '\\' || c == '^' && re.ends_with('[') {
                            re.push('\\');
                        }
                        re.push(c);
                    }
                    re.push(']');
                }
                '{' => {
                    let mut alts = String::new();
                    for c in chars.by_ref() {
                        if c == '}' {
                            break;
                        }
                        alts.push(c);
                    }
                    let parts: Vec<String> = alts.split(',').map(regex::escape).collect();
                    re.push_str(&format!("(?:{})", parts.join("|")));
                }
                c => re.push_str(&regex::escape(&c.to_string())),
            }
        }
        re.push('$');
        Self::Pattern(regex::Regex::new(&re).ok())
    }

    pub fn matches(&self, text: &str) -> bool {
        match self {
            Self::Exact(e) => e == text,
            Self::Pattern(re) => re.as_ref().is_some_and(|r| r.is_match(text)),
        }
    }
}

/// A whole path glob, compiled once and matched against many names.
#[derive(Debug, Clone)]
pub struct PathGlob(Vec<GlobElement>);

impl PathGlob {
    pub fn new(pattern: &str) -> Self {
        Self(
            split_path(pattern)
                .into_iter()
                .map(GlobElement::new)
                .collect(),
        )
    }

    /// Same number of elements, each matching.
    pub fn matches(&self, path: &str) -> bool {
        let mut parts = path.split('.');
        self.0
            .iter()
            .all(|g| parts.next().is_some_and(|t| g.matches(t)))
            && parts.next().is_none()
    }

    /// The first elements of `path` match every element of the glob (a `find` prefix).
    fn matches_prefix(&self, parts: &[&str]) -> bool {
        parts.len() >= self.0.len() && self.0.iter().zip(parts).all(|(g, t)| g.matches(t))
    }
}

/// Match one dot-free element against a Graphite glob.
pub fn glob_element(pattern: &str, text: &str) -> bool {
    GlobElement::new(pattern).matches(text)
}

/// Does a whole path match a pattern (same number of elements, each matching)?
pub fn glob_path(pattern: &str, path: &str) -> bool {
    PathGlob::new(pattern).matches(path)
}

/// Split on dots outside `{…}` and `[…]`.
fn split_path(p: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in p.char_indices() {
        match c {
            '{' | '[' => depth += 1,
            '}' | ']' => depth -= 1,
            '.' if depth == 0 => {
                out.push(&p[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&p[start..]);
    out
}

/// One `/metrics/find` answer row.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Node {
    /// Branches sort before leaves.
    pub leaf: bool,
    pub text: String,
    pub id: String,
}

/// The children matched by a find query (each element a glob), branches before leaves.
pub fn find(names: &[String], query: &str) -> Vec<Node> {
    let glob = PathGlob::new(query);
    let k = glob.0.len();
    let mut out = std::collections::BTreeSet::new();
    for name in names {
        let parts: Vec<&str> = name.split('.').collect();
        if !glob.matches_prefix(&parts) {
            continue;
        }
        out.insert(Node {
            leaf: parts.len() == k,
            text: parts[k - 1].to_owned(),
            id: parts[..k].join("."),
        });
    }
    out.into_iter().collect()
}

pub fn find_treejson(nodes: &[Node]) -> Value {
    Value::Array(
        nodes
            .iter()
            .map(|n| {
                let b = u8::from(!n.leaf);
                json!({"text": n.text, "id": n.id, "allowChildren": b, "expandable": b, "leaf": u8::from(n.leaf), "context": {}})
            })
            .collect(),
    )
}

pub fn find_completer(nodes: &[Node]) -> Value {
    let metrics: Vec<Value> = nodes
        .iter()
        .map(|n| {
            let path = if n.leaf {
                n.id.clone()
            } else {
                format!("{}.", n.id)
            };
            json!({"path": path, "name": n.text, "is_leaf": if n.leaf { "1" } else { "0" }})
        })
        .collect();
    json!({ "metrics": metrics })
}

// === expressions ===

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    Path(String),
    Call {
        name: String,
        args: Vec<Expr>,
        text: String,
    },
    Num(f64),
    Str(String),
    Bool(bool),
}

struct P<'a> {
    s: &'a str,
    i: usize,
    /// Calls open around the current one.
    depth: usize,
}

impl P<'_> {
    fn ws(&mut self) {
        while let Some(c) = self.s[self.i..]
            .chars()
            .next()
            .filter(|c| c.is_whitespace())
        {
            self.i += c.len_utf8();
        }
    }

    fn expr(&mut self) -> Result<Expr, RenderError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return err(format!(
                "the target nests functions deeper than {MAX_DEPTH}"
            ));
        }
        let e = self.expr_inner();
        self.depth -= 1;
        e
    }

    fn expr_inner(&mut self) -> Result<Expr, RenderError> {
        self.ws();
        let rest = &self.s[self.i..];
        let Some(c) = rest.chars().next() else {
            return err("target ends too early");
        };
        if c == '"' || c == '\'' {
            let end = rest[1..]
                .find(c)
                .ok_or_else(|| RenderError("unterminated string in target".into()))?;
            self.i += end + 2;
            return Ok(Expr::Str(rest[1..end + 1].to_owned()));
        }
        // A bare token: up to `(`, `,` or `)` outside braces/brackets.
        let (mut depth, mut end) = (0, rest.len());
        for (j, ch) in rest.char_indices() {
            match ch {
                '{' | '[' => depth += 1,
                '}' | ']' => depth -= 1,
                '(' | ',' | ')' if depth == 0 => {
                    end = j;
                    break;
                }
                _ => {}
            }
        }
        let token = rest[..end].trim();
        let start = self.i;
        self.i += end;
        if self.s[self.i..].starts_with('(') {
            if token.is_empty()
                || !token
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_')
            {
                return err(format!("{token:?} is not a function name"));
            }
            self.i += 1;
            let mut args = Vec::new();
            self.ws();
            if self.s[self.i..].starts_with(')') {
                self.i += 1;
            } else {
                loop {
                    args.push(self.expr()?);
                    self.ws();
                    match self.s[self.i..].chars().next() {
                        Some(',') => self.i += 1,
                        Some(')') => {
                            self.i += 1;
                            break;
                        }
                        _ => return err(format!("expected `,` or `)` in {token}(...)")),
                    }
                }
            }
            let text = self.s[start..self.i].trim().to_owned();
            return Ok(Expr::Call {
                name: token.to_owned(),
                args,
                text,
            });
        }
        if token.is_empty() {
            return err("empty argument in target");
        }
        if let Ok(n) = token.parse::<f64>() {
            return Ok(Expr::Num(n));
        }
        match token {
            "true" | "True" => return Ok(Expr::Bool(true)),
            "false" | "False" => return Ok(Expr::Bool(false)),
            _ => {}
        }
        Ok(Expr::Path(token.to_owned()))
    }
}

pub fn parse_target(s: &str) -> Result<Expr, RenderError> {
    let mut p = P { s, i: 0, depth: 0 };
    let e = p.expr()?;
    p.ws();
    if p.i < s.len() {
        return err(format!("unexpected {:?} after the target", &s[p.i..]));
    }
    Ok(e)
}

// === evaluation ===

pub struct Ctx<'a> {
    pub source: &'a dyn Source,
    pub from: i64,
    pub until: i64,
    /// Points this request may still read or make (of [`MAX_REQUEST_POINTS`]).
    budget: std::cell::Cell<usize>,
}

impl<'a> Ctx<'a> {
    pub fn new(source: &'a dyn Source, from: i64, until: i64) -> Self {
        Self {
            source,
            from,
            until,
            budget: std::cell::Cell::new(MAX_REQUEST_POINTS),
        }
    }

    /// Take `n` points from the request's budget, or refuse with the limit named.
    fn spend(&self, n: usize) -> Result<(), RenderError> {
        match self.budget.get().checked_sub(n) {
            Some(left) => {
                self.budget.set(left);
                Ok(())
            }
            None => err(format!(
                "the request would read or make more than {MAX_REQUEST_POINTS} points: narrow from/until, the globs or the targets"
            )),
        }
    }

    fn window(&self) -> Result<(i64, usize), RenderError> {
        let step = self.source.step().max(1);
        // In i128: the ends may be anywhere an i64 reaches.
        let (from, until, st) = (
            i128::from(self.from),
            i128::from(self.until),
            i128::from(step),
        );
        let first = from - from.rem_euclid(st) + st;
        let last = until - until.rem_euclid(st);
        let n = if last >= first {
            (last - first) / st + 1
        } else {
            0
        };
        if n > MAX_POINTS as i128 {
            return err(format!(
                "from/until span {n} points of {step} s per series; at most {MAX_POINTS} (about {} days): narrow the window",
                MAX_POINTS as i64 * step / 86_400
            ));
        }
        // Within MAX_POINTS steps of `until`: an i64.
        Ok((first as i64, n as usize))
    }

    fn fetch(&self, pattern: &str) -> Result<Vec<Series>, RenderError> {
        let step = self.source.step().max(1);
        let (first, n) = self.window()?;
        let glob = PathGlob::new(pattern);
        let mut names: Vec<String> = self
            .source
            .names()
            .into_iter()
            .filter(|name| glob.matches(name))
            .collect();
        names.sort();
        self.spend(names.len().saturating_mul(n))?;
        Ok(names
            .into_iter()
            .map(|name| {
                let mut values = vec![None; n];
                for (ts, v) in self
                    .source
                    .points(&name, first, first + n as i64 * step - 1)
                {
                    let i = (ts - first) / step;
                    if (0..n as i64).contains(&i) {
                        values[i as usize] = Some(v);
                    }
                }
                Series {
                    name: name.clone(),
                    path: name,
                    start: first,
                    step,
                    values,
                    consolidate: Consolidate::Average,
                }
            })
            .collect())
    }
}

fn num(e: Option<&Expr>, what: &str) -> Result<f64, RenderError> {
    match e {
        Some(Expr::Num(n)) => Ok(*n),
        Some(Expr::Str(s)) => s
            .parse()
            .map_err(|_| RenderError(format!("{what} must be a number"))),
        _ => err(format!("{what} must be a number")),
    }
}

fn string(e: Option<&Expr>, what: &str) -> Result<String, RenderError> {
    match e {
        Some(Expr::Str(s)) => Ok(s.clone()),
        Some(Expr::Path(s)) => Ok(s.clone()),
        Some(Expr::Num(n)) => Ok(fmt_num(*n)),
        _ => err(format!("{what} must be a string")),
    }
}

fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

fn arg_text(e: &Expr) -> String {
    match e {
        Expr::Path(p) => p.clone(),
        Expr::Call { text, .. } => text.clone(),
        Expr::Num(n) => fmt_num(*n),
        Expr::Str(s) => format!("\"{s}\""),
        Expr::Bool(b) => b.to_string(),
    }
}

/// The functions this hub knows (also served at `/functions`).
pub const FUNCTIONS: &[&str] = &[
    "absolute",
    "alias",
    "aliasByNode",
    "aliasSub",
    "asPercent",
    "averageSeries",
    "avg",
    "consolidateBy",
    "constantLine",
    "derivative",
    "divideSeries",
    "group",
    "highestAverage",
    "highestCurrent",
    "integral",
    "keepLastValue",
    "limit",
    "maxSeries",
    "minSeries",
    "movingAverage",
    "nonNegativeDerivative",
    "offset",
    "perSecond",
    "scale",
    "scaleToSeconds",
    "sortByMaxima",
    "sum",
    "sumSeries",
    "summarize",
    "transformNull",
];

/// Evaluate a parsed target.
pub fn eval(ctx: &Ctx, e: &Expr) -> Result<Vec<Series>, RenderError> {
    let Expr::Call { name, args, text } = e else {
        return match e {
            Expr::Path(p) => ctx.fetch(p),
            _ => err(format!("{} is not a series", arg_text(e))),
        };
    };
    let series = |i: usize| -> Result<Vec<Series>, RenderError> {
        match args.get(i) {
            Some(a @ (Expr::Path(_) | Expr::Call { .. })) => eval(ctx, a),
            _ => err(format!("{name}: argument {} must be a series list", i + 1)),
        }
    };
    let all_series = || -> Result<Vec<Series>, RenderError> {
        let mut out = Vec::new();
        for a in args {
            out.extend(eval(ctx, a)?);
        }
        Ok(out)
    };
    let map = |f: &dyn Fn(&Series) -> Series| -> Result<Vec<Series>, RenderError> {
        Ok(series(0)?.iter().map(f).collect())
    };
    let map_values =
        |fname: &str, extra: Option<String>, f: &dyn Fn(Option<f64>) -> Option<f64>| {
            map(&|s: &Series| {
                let n = match &extra {
                    Some(x) => format!("{fname}({},{x})", s.name),
                    None => format!("{fname}({})", s.name),
                };
                s.derive(n, s.values.iter().map(|v| f(*v)).collect())
            })
        };
    match name.as_str() {
        "constantLine" => {
            let v = num(args.first(), "constantLine's value")?;
            let step = ((ctx.until - ctx.from) / 2).max(1);
            Ok(vec![Series {
                name: fmt_num(v),
                path: fmt_num(v),
                start: ctx.from,
                step,
                values: vec![Some(v); 3],
                consolidate: Consolidate::Average,
            }])
        }
        "alias" => {
            let alias = string(args.get(1), "alias's name")?;
            map(&|s: &Series| Series {
                name: alias.clone(),
                ..s.clone()
            })
        }
        "aliasByNode" => {
            let nodes: Vec<i64> = args[1..]
                .iter()
                .map(|a| num(Some(a), "aliasByNode's node").map(|n| n as i64))
                .collect::<Result<_, _>>()?;
            map(&|s: &Series| {
                let parts: Vec<&str> = innermost_path(&s.name).split('.').collect();
                let pick: Vec<&str> = nodes
                    .iter()
                    .filter_map(|&n| {
                        let i = if n < 0 { parts.len() as i64 + n } else { n };
                        usize::try_from(i).ok().and_then(|i| parts.get(i).copied())
                    })
                    .collect();
                Series {
                    name: pick.join("."),
                    ..s.clone()
                }
            })
        }
        "aliasSub" => {
            let search = string(args.get(1), "aliasSub's search")?;
            let replace = string(args.get(2), "aliasSub's replace")?;
            let re =
                regex::Regex::new(&search).map_err(|e| RenderError(format!("aliasSub: {e}")))?;
            // Python's \1 is regex's ${1}.
            let replace = regex::Regex::new(r"\\(\d+)").map_or(replace.clone(), |r| {
                r.replace_all(&replace, "$${$1}").into_owned()
            });
            map(&|s: &Series| Series {
                name: re.replace_all(&s.name, replace.as_str()).into_owned(),
                ..s.clone()
            })
        }
        "sumSeries" | "sum" => combine(name, args, all_series()?, Consolidate::Sum),
        "averageSeries" | "avg" => combine(name, args, all_series()?, Consolidate::Average),
        "maxSeries" => combine(name, args, all_series()?, Consolidate::Max),
        "minSeries" => combine(name, args, all_series()?, Consolidate::Min),
        "group" => all_series(),
        "scale" => {
            let f = num(args.get(1), "scale's factor")?;
            map_values("scale", Some(fmt_num(f)), &|v| v.map(|v| v * f))
        }
        "offset" => {
            let f = num(args.get(1), "offset's amount")?;
            map_values("offset", Some(fmt_num(f)), &|v| v.map(|v| v + f))
        }
        "absolute" => map_values("absolute", None, &|v| v.map(f64::abs)),
        "transformNull" => {
            let d = if args.len() > 1 {
                num(args.get(1), "transformNull's default")?
            } else {
                0.0
            };
            map_values("transformNull", Some(fmt_num(d)), &|v| Some(v.unwrap_or(d)))
        }
        "scaleToSeconds" => {
            let secs = num(args.get(1), "scaleToSeconds's seconds")?;
            map(&|s: &Series| {
                let f = secs / s.step as f64;
                s.derive(
                    format!("scaleToSeconds({},{})", s.name, fmt_num(secs)),
                    s.values.iter().map(|v| v.map(|v| v * f)).collect(),
                )
            })
        }
        "keepLastValue" => {
            let limit = if args.len() > 1 {
                num(args.get(1), "keepLastValue's limit")? as usize
            } else {
                usize::MAX
            };
            map(&|s: &Series| {
                let (mut last, mut gap) = (None, 0usize);
                let mut out = Vec::with_capacity(s.values.len());
                for v in &s.values {
                    match v {
                        Some(v) => {
                            last = Some(*v);
                            gap = 0;
                            out.push(Some(*v));
                        }
                        None => {
                            gap += 1;
                            out.push(if gap <= limit { last } else { None });
                        }
                    }
                }
                s.derive(format!("keepLastValue({})", s.name), out)
            })
        }
        "derivative" | "nonNegativeDerivative" | "perSecond" => {
            let non_negative = name != "derivative";
            let per_second = name == "perSecond";
            map(&|s: &Series| {
                let mut prev: Option<f64> = None;
                let out = s
                    .values
                    .iter()
                    .map(|v| {
                        let r = match (v, prev) {
                            (Some(v), Some(p)) => {
                                let d = v - p;
                                let d = if per_second { d / s.step as f64 } else { d };
                                (!non_negative || d >= 0.0).then_some(d)
                            }
                            _ => None,
                        };
                        if v.is_some() {
                            prev = *v;
                        }
                        r
                    })
                    .collect();
                s.derive(format!("{name}({})", s.name), out)
            })
        }
        "integral" => map(&|s: &Series| {
            let mut acc = 0.0;
            let out = s
                .values
                .iter()
                .map(|v| {
                    v.map(|v| {
                        acc += v;
                        acc
                    })
                })
                .collect();
            s.derive(format!("integral({})", s.name), out)
        }),
        "movingAverage" => {
            let window = match args.get(1) {
                Some(Expr::Str(s)) => Window::Seconds(
                    parse_interval(s)
                        .ok_or_else(|| RenderError(format!("movingAverage: bad window {s:?}")))?,
                ),
                other => Window::Points(num(other, "movingAverage's window")? as usize),
            };
            map(&|s: &Series| {
                let n = match window {
                    Window::Points(n) => n.max(1),
                    Window::Seconds(secs) => ((secs / s.step).max(1)) as usize,
                };
                // A running sum over the last n points: linear whatever the window.
                let (mut sum, mut count) = (0.0, 0usize);
                let mut out = Vec::with_capacity(s.values.len());
                for i in 0..s.values.len() {
                    if let Some(v) = s.values[i] {
                        sum += v;
                        count += 1;
                    }
                    if i >= n
                        && let Some(old) = s.values[i - n]
                    {
                        sum -= old;
                        count -= 1;
                    }
                    out.push((count > 0).then(|| sum / count as f64));
                }
                let label = match args.get(1) {
                    Some(Expr::Str(w)) => format!("\"{w}\""),
                    _ => n.to_string(),
                };
                s.derive(format!("movingAverage({},{label})", s.name), out)
            })
        }
        "summarize" => {
            let interval_text = string(args.get(1), "summarize's interval")?;
            let interval = parse_interval(&interval_text)
                .ok_or_else(|| RenderError(format!("summarize: bad interval {interval_text:?}")))?;
            let func = match args.get(2) {
                Some(a) => Consolidate::parse(&string(Some(a), "summarize's function")?)?,
                None => Consolidate::Sum,
            };
            let func_name = args.get(2).map_or("sum".to_owned(), |a| {
                string(Some(a), "").unwrap_or_default()
            });
            if interval <= 0 {
                return err(format!(
                    "summarize: the interval {interval_text:?} is not positive"
                ));
            }
            let list = series(0)?;
            for s in &list {
                let buckets = (s.values.len() as i64).saturating_mul(s.step) / interval + 1;
                if buckets > MAX_POINTS as i64 {
                    return err(format!(
                        "summarize by {interval_text} makes {buckets} points; at most {MAX_POINTS} per series: a longer interval or a narrower window"
                    ));
                }
                ctx.spend(buckets as usize)?;
            }
            Ok(list
                .iter()
                .map(|s| summarize(s, interval, func, &interval_text, &func_name))
                .collect())
        }
        "consolidateBy" => {
            let f = Consolidate::parse(&string(args.get(1), "consolidateBy's function")?)?;
            let fname = string(args.get(1), "")?;
            map(&|s: &Series| Series {
                name: format!("consolidateBy({},\"{fname}\")", s.name),
                consolidate: f,
                ..s.clone()
            })
        }
        "asPercent" => {
            let list = series(0)?;
            let totals: Vec<Option<f64>> = match args.get(1) {
                None => {
                    let len = list.first().map_or(0, |s| s.values.len());
                    (0..len)
                        .map(|i| {
                            Consolidate::Sum.apply(
                                &list
                                    .iter()
                                    .map(|s| s.values.get(i).copied().flatten())
                                    .collect::<Vec<_>>(),
                            )
                        })
                        .collect()
                }
                Some(Expr::Num(n)) => vec![Some(*n); list.first().map_or(0, |s| s.values.len())],
                Some(other) => {
                    let t = eval(ctx, other)?;
                    let [t] = t.as_slice() else {
                        return err("asPercent: the total must be one series");
                    };
                    t.values.clone()
                }
            };
            let label = args.get(1).map(arg_text);
            Ok(list
                .iter()
                .map(|s| {
                    let vals = s
                        .values
                        .iter()
                        .zip(totals.iter().chain(std::iter::repeat(&None)))
                        .map(|(v, t)| match (v, t) {
                            (Some(v), Some(t)) if *t != 0.0 => Some(v / t * 100.0),
                            _ => None,
                        });
                    let n = match &label {
                        Some(l) => format!("asPercent({},{l})", s.name),
                        None => format!("asPercent({})", s.name),
                    };
                    s.derive(n, vals.collect())
                })
                .collect())
        }
        "divideSeries" => {
            let list = series(0)?;
            let div = series(1)?;
            let [d] = div.as_slice() else {
                return err("divideSeries: the divisor must be exactly one series");
            };
            Ok(list
                .iter()
                .map(|s| {
                    let vals = s
                        .values
                        .iter()
                        .zip(d.values.iter().chain(std::iter::repeat(&None)))
                        .map(|(v, t)| match (v, t) {
                            (Some(v), Some(t)) if *t != 0.0 => Some(v / t),
                            _ => None,
                        });
                    s.derive(
                        format!("divideSeries({},{})", s.name, d.name),
                        vals.collect(),
                    )
                })
                .collect())
        }
        "highestCurrent" | "highestAverage" | "sortByMaxima" | "limit" => {
            let mut list = series(0)?;
            let key = |s: &Series| -> f64 {
                match name.as_str() {
                    "highestCurrent" => s
                        .values
                        .iter()
                        .rev()
                        .flatten()
                        .next()
                        .copied()
                        .unwrap_or(f64::MIN),
                    "highestAverage" => Consolidate::Average.apply(&s.values).unwrap_or(f64::MIN),
                    _ => Consolidate::Max.apply(&s.values).unwrap_or(f64::MIN),
                }
            };
            if name != "limit" {
                list.sort_by(|a, b| key(b).total_cmp(&key(a)));
            }
            if name != "sortByMaxima" {
                let n = if args.len() > 1 {
                    num(args.get(1), "the count")? as usize
                } else {
                    1
                };
                list.truncate(n);
            }
            Ok(list)
        }
        other => {
            let _ = text;
            err(format!(
                "unknown function {other}() (this hub knows: {})",
                FUNCTIONS.join(", ")
            ))
        }
    }
}

enum Window {
    Points(usize),
    Seconds(i64),
}

fn combine(
    fname: &str,
    args: &[Expr],
    list: Vec<Series>,
    how: Consolidate,
) -> Result<Vec<Series>, RenderError> {
    let Some(first) = list.first() else {
        return Ok(Vec::new());
    };
    let len = list.iter().map(|s| s.values.len()).min().unwrap_or(0);
    let values = (0..len)
        .map(|i| how.apply(&list.iter().map(|s| s.values[i]).collect::<Vec<_>>()))
        .collect();
    let label: Vec<String> = args.iter().map(arg_text).collect();
    let name = format!("{fname}({})", label.join(","));
    Ok(vec![Series {
        name: name.clone(),
        path: name,
        values,
        ..first.clone()
    }])
}

fn summarize(
    s: &Series,
    interval: i64,
    func: Consolidate,
    interval_text: &str,
    func_name: &str,
) -> Series {
    let mut buckets: BTreeMap<i64, Vec<Option<f64>>> = BTreeMap::new();
    for (i, v) in s.values.iter().enumerate() {
        let ts = s.start + i as i64 * s.step;
        buckets
            .entry(ts - ts.rem_euclid(interval))
            .or_default()
            .push(*v);
    }
    let start = buckets.keys().next().copied().unwrap_or(s.start);
    let end = buckets.keys().last().copied().unwrap_or(s.start);
    let values = (0..=((end - start) / interval))
        .map(|k| {
            buckets
                .get(&(start + k * interval))
                .and_then(|vals| func.apply(vals))
        })
        .collect();
    Series {
        name: format!(
            "summarize({}, \"{interval_text}\", \"{func_name}\")",
            s.name
        ),
        start,
        step: interval,
        values,
        ..s.clone()
    }
}

/// The metric path inside a series name like `scale(a.b.c,2)` (what aliasByNode numbers).
fn innermost_path(name: &str) -> &str {
    let inner = name.rsplit('(').next().unwrap_or(name);
    inner.split([',', ')']).next().unwrap_or(inner).trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Mem(BTreeMap<String, Vec<(i64, f64)>>);

    impl Source for Mem {
        fn names(&self) -> Vec<String> {
            self.0.keys().cloned().collect()
        }
        fn points(&self, name: &str, from: i64, until: i64) -> Vec<(i64, f64)> {
            self.0[name]
                .iter()
                .copied()
                .filter(|(t, _)| (from..=until).contains(t))
                .collect()
        }
        fn step(&self) -> i64 {
            10
        }
    }

    fn mem() -> Mem {
        let mut m = BTreeMap::new();
        m.insert(
            "stats_counts.web-api.inbound.response_code.200".to_owned(),
            vec![(110, 5.0), (120, 7.0), (140, 1.0)],
        );
        m.insert(
            "stats_counts.web-api.inbound.response_code.500".to_owned(),
            vec![(110, 1.0), (120, 1.0)],
        );
        m.insert(
            "stats.timers.web-api.outbound.recipe-api.request-time.upper_90".to_owned(),
            vec![(130, 12.5)],
        );
        Mem(m)
    }

    fn render(target: &str) -> Vec<Series> {
        let src = mem();
        let ctx = Ctx::new(&src, 100, 150);
        eval(&ctx, &parse_target(target).unwrap()).unwrap()
    }

    #[test]
    fn windows_follow_whisper_and_keep_nulls() {
        let s = &render("stats_counts.web-api.inbound.response_code.200")[0];
        assert_eq!(s.start, 110);
        assert_eq!(s.values, vec![Some(5.0), Some(7.0), None, Some(1.0), None]);
        let j = s.to_json();
        let mut text = String::new();
        s.write_json(&mut text);
        assert_eq!(
            serde_json::from_str::<Value>(&text).unwrap(),
            j,
            "written as the tree says"
        );
        assert_eq!(j["datapoints"][2], json!([null, 130]));
        assert_eq!(
            j["tags"]["name"],
            "stats_counts.web-api.inbound.response_code.200"
        );
    }

    #[test]
    fn the_books_grafana_queries() {
        let r = render("aliasByNode(stats_counts.web-api.inbound.response_code.*, 4)");
        let names: Vec<&str> = r.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["200", "500"]);
        let r = render("stats.timers.web-api.outbound.*.request-time.upper_90");
        assert_eq!(r[0].values[2], Some(12.5));
        let r = render("sumSeries(stats_counts.web-api.inbound.response_code.{200,500})");
        assert_eq!(r[0].values[..2], [Some(6.0), Some(8.0)]);
        assert_eq!(
            r[0].name,
            "sumSeries(stats_counts.web-api.inbound.response_code.{200,500})"
        );
    }

    #[test]
    fn functions() {
        assert_eq!(render("constantLine(100)")[0].values, vec![Some(100.0); 3]);
        assert_eq!(
            render("scale(stats_counts.web-api.inbound.response_code.500, 10)")[0].values[0],
            Some(10.0)
        );
        assert_eq!(
            render("transformNull(stats_counts.web-api.inbound.response_code.500)")[0].values[2],
            Some(0.0)
        );
        assert_eq!(
            render("keepLastValue(stats_counts.web-api.inbound.response_code.200)")[0].values[2],
            Some(7.0)
        );
        assert_eq!(
            render("nonNegativeDerivative(stats_counts.web-api.inbound.response_code.200)")[0]
                .values[1],
            Some(2.0)
        );
        assert_eq!(
            render("nonNegativeDerivative(stats_counts.web-api.inbound.response_code.200)")[0]
                .values[3],
            None,
            "a drop is not a rate"
        );
        assert_eq!(
            render("perSecond(stats_counts.web-api.inbound.response_code.200)")[0].values[1],
            Some(0.2)
        );
        assert_eq!(
            render("integral(stats_counts.web-api.inbound.response_code.200)")[0].values[1],
            Some(12.0)
        );
        let p = render("asPercent(stats_counts.web-api.inbound.response_code.*)");
        assert_eq!(
            p[1].values[0].map(|v| (v * 100.0).round() / 100.0),
            Some(16.67)
        );
        let d = render(
            "divideSeries(stats_counts.web-api.inbound.response_code.500, stats_counts.web-api.inbound.response_code.200)",
        );
        assert_eq!(d[0].values[0], Some(0.2));
        let s =
            render("summarize(stats_counts.web-api.inbound.response_code.200, \"1min\", \"sum\")");
        // Buckets aligned to the minute: 110 alone, then 120..150.
        assert_eq!(s[0].values, vec![Some(5.0), Some(8.0)]);
        assert_eq!(s[0].step, 60);
        let h = render("highestCurrent(stats_counts.web-api.inbound.response_code.*, 1)");
        assert!(h[0].name.ends_with("200"));
        assert_eq!(
            render("alias(stats_counts.web-api.inbound.response_code.200, 'ok')")[0].name,
            "ok"
        );
        let a = render(
            "aliasSub(stats_counts.web-api.inbound.response_code.200, 'response_code\\.(\\d+)', 'code \\1')",
        );
        assert_eq!(a[0].name, "stats_counts.web-api.inbound.code 200");
        assert_eq!(
            render("movingAverage(stats_counts.web-api.inbound.response_code.200, 2)")[0].values[1],
            Some(6.0)
        );
        assert_eq!(render("group(stats_counts.web-api.inbound.response_code.200, stats_counts.web-api.inbound.response_code.500)").len(), 2);
    }

    #[test]
    fn max_data_points_consolidate() {
        let mut s = render("stats_counts.web-api.inbound.response_code.200").remove(0);
        s.limit_points(2);
        assert_eq!(s.values, vec![Some(6.0), Some(1.0)]);
        assert_eq!(s.step, 30);
    }

    #[test]
    fn unknown_functions_are_named() {
        let src = mem();
        let ctx = Ctx::new(&src, 100, 150);
        let e = eval(&ctx, &parse_target("frobnicate(a.b)").unwrap()).unwrap_err();
        assert!(e.0.contains("frobnicate"), "{e}");
        assert!(parse_target("sum(a.b").is_err());
    }

    #[test]
    fn times() {
        let now = 1_000_000;
        assert_eq!(parse_time("-10min", now), Ok(now - 600));
        assert_eq!(parse_time("-5minutes", now), Ok(now - 300));
        assert_eq!(parse_time("-30s", now), Ok(now - 30));
        assert_eq!(parse_time("now-1h", now), Ok(now - 3600));
        assert_eq!(parse_time("-1mon", now), Ok(now - 30 * 86400));
        assert_eq!(parse_time("1700000000", now), Ok(1_700_000_000));
        assert_eq!(parse_time("20261125", now), Ok(1_795_564_800));
        assert_eq!(
            parse_time("12:30_20261125", now),
            Ok(1_795_564_800 + 12 * 3600 + 1800)
        );
        assert!(
            parse_time("-5m", now).is_err(),
            "Grafana writes min; m is not Graphite's"
        );
        assert!(parse_time("yesterday-ish", now).is_err());
    }

    #[test]
    fn globs_stay_within_one_element() {
        assert!(glob_path("a.*.c", "a.b.c"));
        assert!(!glob_path("a.*", "a.b.c"));
        assert!(glob_path("a.{b,x}.c", "a.b.c"));
        assert!(glob_path("a.[a-c].c", "a.b.c"));
        assert!(glob_path("a.b?.c", "a.bb.c"));
        assert!(!glob_path("a.[x-z].c", "a.b.c"));
    }

    #[test]
    fn find_lists_branches_before_leaves() {
        let names = vec![
            "stats.a.x".to_owned(),
            "stats.b".to_owned(),
            "stats.a.y".to_owned(),
            "stats_counts.z".to_owned(),
        ];
        let n = find(&names, "stats.*");
        assert_eq!(
            n.iter()
                .map(|n| (n.text.as_str(), n.leaf))
                .collect::<Vec<_>>(),
            [("a", false), ("b", true)]
        );
        let t = find_treejson(&n);
        assert_eq!(
            t[0],
            json!({"text":"a","id":"stats.a","allowChildren":1,"expandable":1,"leaf":0,"context":{}})
        );
        let c = find_completer(&n);
        assert_eq!(c["metrics"][0]["path"], "stats.a.");
        assert_eq!(find(&names, "*").len(), 2);
    }

    #[test]
    fn hostile_targets_are_refused_with_the_limit_named_never_allocated_or_panicked() {
        let src = mem();
        let now = 1_000_000_000;
        // A hundred years of one series: refused, not allocated.
        let from = parse_time("-100y", now).unwrap();
        let e = eval(&Ctx::new(&src, from, now), &parse_target("a.b").unwrap()).unwrap_err();
        assert!(e.0.contains("at most 100000"), "{e}");
        let e = eval(
            &Ctx::new(&src, now - 86_400, now),
            &parse_target("summarize(stats_counts.web-api.inbound.response_code.200,\"1s\")")
                .unwrap(),
        );
        assert!(e.is_ok(), "a day summarized by second fits");
        let e = eval(
            &Ctx::new(&src, now - 20 * 86_400, now),
            &parse_target("summarize(stats_counts.web-api.inbound.response_code.200,\"1s\")")
                .unwrap(),
        )
        .unwrap_err();
        assert!(e.0.contains("at most"), "{e}");
        assert!(
            eval(
                &Ctx::new(&src, 100, 150),
                &parse_target("summarize(a.b,\"0s\")").unwrap()
            )
            .is_err()
        );
        // Times past i64: an error, not an overflow; far but representable: refused by the window.
        let far = parse_time("-99999999999y", now).unwrap();
        assert!(eval(&Ctx::new(&src, far, now), &parse_target("a.b").unwrap()).is_err());
        assert!(
            eval(
                &Ctx::new(&src, i64::MIN, i64::MAX),
                &parse_target("a.b").unwrap()
            )
            .is_err()
        );
        assert!(parse_time("-1000000000000000000000d", now).is_err());
        // Nesting: refused past the depth, at any depth, without a stack overflow.
        let deep = format!("{}a.b{}", "sumSeries(".repeat(3000), ")".repeat(3000));
        let e = parse_target(&deep).unwrap_err();
        assert!(e.0.contains("deeper than 32"), "{e}");
        assert!(parse_target(&format!("{}a.b{}", "sumSeries(".repeat(30), ")".repeat(30))).is_ok());
        // Wide whitespace is whitespace, not a char-boundary panic.
        assert!(parse_target("sumSeries(\u{3000}a.b\u{3000})").is_ok());
        assert!(parse_target("\u{3000}").is_err());
        // A window of a million points in movingAverage runs in linear time.
        let s = eval(
            &Ctx::new(&src, 100, 150),
            &parse_target("movingAverage(stats_counts.web-api.inbound.response_code.200,1000000)")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            s[0].values,
            [
                Some(5.0),
                Some(6.0),
                Some(6.0),
                Some(13.0 / 3.0),
                Some(13.0 / 3.0)
            ]
        );
        let s = eval(
            &Ctx::new(&src, 100, 150),
            &parse_target("movingAverage(stats_counts.web-api.inbound.response_code.200,2)")
                .unwrap(),
        )
        .unwrap();
        assert_eq!(
            s[0].values,
            [Some(5.0), Some(6.0), Some(7.0), Some(1.0), Some(1.0)]
        );
    }
}
