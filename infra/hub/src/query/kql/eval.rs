//! Matching documents: dotted paths into objects, globs, ranges over numbers and dates.

use super::ast::*;
use serde_json::{Map, Value};

/// The values at a dotted path (arrays flattened); a literal dotted key is tried first.
pub(super) fn lookup<'a>(doc: &'a Map<String, Value>, path: &str, out: &mut Vec<&'a Value>) {
    if let Some(v) = doc.get(path) {
        push_flat(v, out);
        return;
    }
    let mut rest = path;
    let mut cur = doc;
    while let Some((head, tail)) = rest.split_once('.') {
        match cur.get(head) {
            Some(Value::Object(m)) => {
                if let Some(v) = m.get(tail) {
                    push_flat(v, out);
                    return;
                }
                cur = m;
                rest = tail;
            }
            Some(Value::Array(items)) => {
                for item in items {
                    if let Value::Object(m) = item {
                        lookup(m, tail, out);
                    }
                }
                return;
            }
            _ => return,
        }
    }
}

pub(super) fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| push_flat(i, out)),
        v => out.push(v),
    }
}

pub(super) fn leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| leaves(i, out)),
        Value::Object(m) => m.values().for_each(|i| leaves(i, out)),
        v => out.push(v),
    }
}

pub(super) fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

pub(super) fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.to_lowercase().chars().collect();
    let t: Vec<char> = text.to_lowercase().chars().collect();
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if pi < p.len() && p[pi] == t[ti] {
            pi += 1;
            ti += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

pub(super) fn term_matches(term: &Term, v: &Value, substring: bool) -> bool {
    let Some(text) = text_of(v) else { return false };
    match term {
        Term::Wildcard(p) => glob(p, &text),
        Term::Word(w) | Term::Phrase(w) => {
            if let (Value::Number(n), Ok(want)) = (v, w.parse::<f64>()) {
                return n.as_f64() == Some(want);
            }
            text.eq_ignore_ascii_case(w)
                || ((substring || text.contains(char::is_whitespace))
                    && text.to_lowercase().contains(&w.to_lowercase()))
        }
    }
}

/// Evaluate against a document; `now_ms` resolves `now-5m` in date ranges.
pub fn matches(q: &Query, doc: &Map<String, Value>, now_ms: i64) -> bool {
    match q {
        Query::All => true,
        Query::And(qs) => qs.iter().all(|q| matches(q, doc, now_ms)),
        Query::Or(qs) => qs.iter().any(|q| matches(q, doc, now_ms)),
        Query::Not(q) => !matches(q, doc, now_ms),
        Query::Exists(field) => {
            let mut vals = Vec::new();
            lookup(doc, field, &mut vals);
            vals.iter().any(|v| !v.is_null())
        }
        Query::Match {
            field: Some(field),
            value,
        } => {
            let mut vals = Vec::new();
            lookup(doc, field, &mut vals);
            vals.iter().any(|v| term_matches(value, v, false))
        }
        Query::Match { field: None, value } => {
            let mut vals = Vec::new();
            doc.values().for_each(|v| leaves(v, &mut vals));
            vals.iter().any(|v| term_matches(value, v, true))
        }
        Query::Range { field, op, value } => {
            let mut vals = Vec::new();
            lookup(doc, field, &mut vals);
            vals.iter().any(|v| range_matches(v, *op, value, now_ms))
        }
    }
}

pub(super) fn range_matches(v: &Value, op: Op, bound: &str, now_ms: i64) -> bool {
    use std::cmp::Ordering;
    let ord = match v {
        Value::Number(n) => {
            let (Some(a), Ok(b)) = (n.as_f64(), bound.parse::<f64>()) else {
                return false;
            };
            a.partial_cmp(&b)
        }
        Value::String(s) => match (date_ms(s, now_ms), date_ms(bound, now_ms)) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => Some(s.as_str().cmp(bound)),
        },
        _ => None,
    };
    matches!(
        (op, ord),
        (Op::Lt, Some(Ordering::Less))
            | (Op::Le, Some(Ordering::Less | Ordering::Equal))
            | (Op::Gt, Some(Ordering::Greater))
            | (Op::Ge, Some(Ordering::Greater | Ordering::Equal))
    )
}

/// A date for ranges: ISO-8601, `now`, `now-5m` (s, m, h, d, w), or epoch milliseconds.
pub fn date_ms(s: &str, now_ms: i64) -> Option<i64> {
    if let Some(rest) = s.strip_prefix("now") {
        if rest.is_empty() {
            return Some(now_ms);
        }
        let (sign, amount) = match rest.as_bytes()[0] {
            b'-' => (-1, &rest[1..]),
            b'+' => (1, &rest[1..]),
            _ => return None,
        };
        return now_ms.checked_add(duration_ms(amount)?.checked_mul(sign)?);
    }
    if let Some(t) = crate::ingest::logs::parse_time(s) {
        return Some((t.unix_timestamp_nanos() / 1_000_000) as i64);
    }
    None
}

/// `5m`, `30s`, `2h`, `1d`, `1w`, `500ms` → milliseconds.
pub fn duration_ms(s: &str) -> Option<i64> {
    let split = s.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = s.split_at(split);
    let n: i64 = n.parse().ok()?;
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" | "min" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        _ => return None,
    };
    n.checked_mul(unit_ms)
}
