//! Evaluation: the functions of [`FUNCTIONS`] over a [`Source`], points bounded per series
//! and per request.

#[allow(unused_imports)]
use super::{find::*, glob::*, parse::*, series::*, time::*};
#[allow(unused_imports)]
use serde_json::{Value, json};
#[allow(unused_imports)]
use std::collections::BTreeMap;

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

pub(crate) fn num(e: Option<&Expr>, what: &str) -> Result<f64, RenderError> {
    match e {
        Some(Expr::Num(n)) => Ok(*n),
        Some(Expr::Str(s)) => s
            .parse()
            .map_err(|_| RenderError(format!("{what} must be a number"))),
        _ => err(format!("{what} must be a number")),
    }
}

pub(crate) fn string(e: Option<&Expr>, what: &str) -> Result<String, RenderError> {
    match e {
        Some(Expr::Str(s)) => Ok(s.clone()),
        Some(Expr::Path(s)) => Ok(s.clone()),
        Some(Expr::Num(n)) => Ok(fmt_num(*n)),
        _ => err(format!("{what} must be a string")),
    }
}

pub(crate) fn fmt_num(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

pub(crate) fn arg_text(e: &Expr) -> String {
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

pub(crate) enum Window {
    Points(usize),
    Seconds(i64),
}

pub(crate) fn combine(
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

pub(crate) fn summarize(
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
pub(crate) fn innermost_path(name: &str) -> &str {
    let inner = name.rsplit('(').next().unwrap_or(name);
    inner.split([',', ')']).next().unwrap_or(inner).trim()
}
