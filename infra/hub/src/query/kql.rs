//! The log query language: a Kibana KQL subset (docs/OBSERVABILITY.md §1), one AST for `lab logs
//! --query` and the hub's HTTP API.
//!
//! - `field:value`, `field:"a phrase"`, `field:val*` (wildcard), `field:*` (exists),
//!   `field:200 404` and `field:(a or b)` (any of);
//! - `field >= 1`, `field < 5` (numbers, or dates for `@timestamp`: ISO-8601 or `now-5m`);
//! - `and` / `or` / `not` in any case, `and` binding tighter than `or`, parentheses;
//! - a bare term or phrase searches every field's text.
//!
//! Matching: keyword-like values match whole and case-insensitively; a field whose value is
//! free text (it contains whitespace, e.g. `message` or a stack) also matches a substring.
//! Dotted paths reach into objects (`fields.path:/error`); arrays match if any element does.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    All,
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    /// `field:value` (`None` field = any field).
    Match {
        field: Option<String>,
        value: Term,
    },
    Exists(String),
    Range {
        field: String,
        op: Op,
        value: String,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub enum Term {
    Word(String),
    Phrase(String),
    Wildcard(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("query: {message} at column {column}")]
pub struct ParseError {
    pub message: String,
    /// 1-based character column.
    pub column: usize,
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Word(String),
    Phrase(String),
    Colon,
    Open,
    Close,
    Cmp(Op),
    And,
    Or,
    Not,
}

fn lex(s: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
    let chars: Vec<char> = s.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        match c {
            c if c.is_whitespace() => i += 1,
            ':' => {
                out.push((Tok::Colon, col));
                i += 1;
            }
            '(' => {
                out.push((Tok::Open, col));
                i += 1;
            }
            ')' => {
                out.push((Tok::Close, col));
                i += 1;
            }
            '<' | '>' => {
                let eq = chars.get(i + 1) == Some(&'=');
                let op = match (c, eq) {
                    ('<', false) => Op::Lt,
                    ('<', true) => Op::Le,
                    ('>', false) => Op::Gt,
                    _ => Op::Ge,
                };
                out.push((Tok::Cmp(op), col));
                i += if eq { 2 } else { 1 };
            }
            '"' => {
                let mut text = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(ParseError {
                                message: "unterminated quoted phrase".into(),
                                column: col,
                            });
                        }
                        Some('"') => {
                            i += 1;
                            break;
                        }
                        Some('\\') if i + 1 < chars.len() => {
                            text.push(chars[i + 1]);
                            i += 2;
                        }
                        Some(&c) => {
                            text.push(c);
                            i += 1;
                        }
                    }
                }
                out.push((Tok::Phrase(text), col));
            }
            _ => {
                let mut text = String::new();
                while let Some(&c) = chars.get(i) {
                    if c.is_whitespace() || matches!(c, ':' | '(' | ')' | '<' | '>' | '"') {
                        break;
                    }
                    if c == '\\' && i + 1 < chars.len() {
                        text.push(chars[i + 1]);
                        i += 2;
                        continue;
                    }
                    text.push(c);
                    i += 1;
                }
                let tok = match text.to_ascii_lowercase().as_str() {
                    "and" => Tok::And,
                    "or" => Tok::Or,
                    "not" => Tok::Not,
                    _ => Tok::Word(text),
                };
                out.push((tok, col));
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<(Tok, usize)>,
    pos: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos).map(|t| &t.0)
    }
    fn col(&self) -> usize {
        self.toks.get(self.pos).map_or(self.end, |t| t.1)
    }
    fn err<T>(&self, message: impl Into<String>) -> Result<T, ParseError> {
        Err(ParseError {
            message: message.into(),
            column: self.col(),
        })
    }

    /// `next (op next)*`: one operand alone, else all of them joined by `join`.
    fn chain(
        &mut self,
        op: Tok,
        join: fn(Vec<Query>) -> Query,
        mut next: impl FnMut(&mut Self) -> Result<Query, ParseError>,
    ) -> Result<Query, ParseError> {
        let mut parts = vec![next(self)?];
        while self.peek() == Some(&op) {
            self.pos += 1;
            parts.push(next(self)?);
        }
        Ok(if parts.len() == 1 {
            parts.pop().unwrap_or(Query::All)
        } else {
            join(parts)
        })
    }

    fn or(&mut self) -> Result<Query, ParseError> {
        self.chain(Tok::Or, Query::Or, |p| p.and())
    }

    fn and(&mut self) -> Result<Query, ParseError> {
        self.chain(Tok::And, Query::And, |p| p.not())
    }

    fn not(&mut self) -> Result<Query, ParseError> {
        if self.peek() == Some(&Tok::Not) {
            self.pos += 1;
            return Ok(Query::Not(Box::new(self.not()?)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Query, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let q = self.or()?;
                if self.peek() != Some(&Tok::Close) {
                    return self.err("expected `)`");
                }
                self.pos += 1;
                Ok(q)
            }
            Some(Tok::Word(w)) => {
                self.pos += 1;
                match self.peek().cloned() {
                    Some(Tok::Colon) => {
                        self.pos += 1;
                        self.field_values(&w)
                    }
                    Some(Tok::Cmp(op)) => {
                        self.pos += 1;
                        match self.peek().cloned() {
                            Some(Tok::Word(v) | Tok::Phrase(v)) => {
                                self.pos += 1;
                                Ok(Query::Range {
                                    field: w,
                                    op,
                                    value: v,
                                })
                            }
                            _ => self.err(format!("expected a value after `{w}` and a comparison")),
                        }
                    }
                    _ => {
                        // Bare terms side by side: any of them (KQL's value list).
                        let mut terms = vec![word_term(None, &w)];
                        while let Some(Tok::Word(_) | Tok::Phrase(_)) = self.peek() {
                            terms.push(self.bare()?);
                        }
                        Ok(any(terms))
                    }
                }
            }
            Some(Tok::Phrase(_)) => {
                let mut terms = vec![self.bare()?];
                while let Some(Tok::Word(_) | Tok::Phrase(_)) = self.peek() {
                    terms.push(self.bare()?);
                }
                Ok(any(terms))
            }
            Some(t) => self.err(format!("unexpected {}", describe(&t))),
            None => self.err("unexpected end of query"),
        }
    }

    fn bare(&mut self) -> Result<Query, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                Ok(word_term(None, &w))
            }
            Some(Tok::Phrase(p)) => {
                self.pos += 1;
                Ok(Query::Match {
                    field: None,
                    value: Term::Phrase(p),
                })
            }
            _ => self.err("expected a term"),
        }
    }

    /// After `field:` — one value, several (any of), or a parenthesised `a or b` list.
    fn field_values(&mut self, field: &str) -> Result<Query, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Open) => {
                self.pos += 1;
                let q = self.value_or(field)?;
                if self.peek() != Some(&Tok::Close) {
                    return self.err("expected `)`");
                }
                self.pos += 1;
                Ok(q)
            }
            Some(Tok::Word(_) | Tok::Phrase(_)) => {
                let mut terms = vec![self.value(field)?];
                while let Some(Tok::Word(_) | Tok::Phrase(_)) = self.peek() {
                    // `a:1 b:2` is two clauses, not a list: stop before a word followed by `:`.
                    if matches!(
                        self.toks.get(self.pos + 1).map(|t| &t.0),
                        Some(Tok::Colon | Tok::Cmp(_))
                    ) {
                        break;
                    }
                    terms.push(self.value(field)?);
                }
                Ok(any(terms))
            }
            _ => self.err(format!("expected a value after `{field}:`")),
        }
    }

    fn value_or(&mut self, field: &str) -> Result<Query, ParseError> {
        self.chain(Tok::Or, Query::Or, |p| p.value_and(field))
    }

    fn value_and(&mut self, field: &str) -> Result<Query, ParseError> {
        self.chain(Tok::And, Query::And, |p| p.value_not(field))
    }

    fn value_not(&mut self, field: &str) -> Result<Query, ParseError> {
        match self.peek() {
            Some(Tok::Not) => {
                self.pos += 1;
                Ok(Query::Not(Box::new(self.value_not(field)?)))
            }
            Some(Tok::Open) => {
                self.pos += 1;
                let q = self.value_or(field)?;
                if self.peek() != Some(&Tok::Close) {
                    return self.err("expected `)`");
                }
                self.pos += 1;
                Ok(q)
            }
            _ => {
                let mut terms = vec![self.value(field)?];
                while let Some(Tok::Word(_) | Tok::Phrase(_)) = self.peek() {
                    terms.push(self.value(field)?);
                }
                Ok(any(terms))
            }
        }
    }

    fn value(&mut self, field: &str) -> Result<Query, ParseError> {
        match self.peek().cloned() {
            Some(Tok::Word(w)) => {
                self.pos += 1;
                if w == "*" {
                    return Ok(Query::Exists(field.to_owned()));
                }
                Ok(word_term(Some(field), &w))
            }
            Some(Tok::Phrase(p)) => {
                self.pos += 1;
                Ok(Query::Match {
                    field: Some(field.to_owned()),
                    value: Term::Phrase(p),
                })
            }
            _ => self.err(format!("expected a value for `{field}`")),
        }
    }
}

fn describe(t: &Tok) -> String {
    match t {
        Tok::Word(w) => format!("`{w}`"),
        Tok::Phrase(p) => format!("\"{p}\""),
        Tok::Colon => "`:`".into(),
        Tok::Open => "`(`".into(),
        Tok::Close => "`)`".into(),
        Tok::Cmp(_) => "a comparison".into(),
        Tok::And => "`and`".into(),
        Tok::Or => "`or`".into(),
        Tok::Not => "`not`".into(),
    }
}

fn any(mut terms: Vec<Query>) -> Query {
    if terms.len() == 1 {
        terms.pop().unwrap_or(Query::All)
    } else {
        Query::Or(terms)
    }
}

fn word_term(field: Option<&str>, w: &str) -> Query {
    let value = if w.contains('*') {
        Term::Wildcard(w.to_owned())
    } else {
        Term::Word(w.to_owned())
    };
    Query::Match {
        field: field.map(str::to_owned),
        value,
    }
}

/// Parse a query; an empty one matches everything.
/// How deep parentheses and `not`s may nest in one query (the parser recurses once per level).
pub const MAX_DEPTH: usize = 32;

pub fn parse(s: &str) -> Result<Query, ParseError> {
    let toks = lex(s)?;
    if toks.is_empty() {
        return Ok(Query::All);
    }
    // Count the nesting before descending into it: a few KB of `(` must not overflow the stack.
    let (mut parens, mut nots) = (0usize, 0usize);
    for (t, col) in &toks {
        match t {
            Tok::Open => parens += 1,
            Tok::Close => parens = parens.saturating_sub(1),
            Tok::Not => nots += 1,
            _ => nots = 0,
        }
        if parens + nots > MAX_DEPTH {
            return Err(ParseError {
                message: format!("the query nests parentheses and `not`s deeper than {MAX_DEPTH}"),
                column: *col,
            });
        }
    }
    let mut p = Parser {
        toks,
        pos: 0,
        end: s.chars().count() + 1,
    };
    let q = p.or()?;
    if p.pos < p.toks.len() {
        let t = p.toks[p.pos].0.clone();
        return p.err(format!(
            "unexpected {} (join clauses with `and` / `or`)",
            describe(&t)
        ));
    }
    Ok(q)
}

// === evaluation ===

/// The values at a dotted path (arrays flattened); a literal dotted key is tried first.
fn lookup<'a>(doc: &'a Map<String, Value>, path: &str, out: &mut Vec<&'a Value>) {
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

fn push_flat<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| push_flat(i, out)),
        v => out.push(v),
    }
}

fn leaves<'a>(v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Array(items) => items.iter().for_each(|i| leaves(i, out)),
        Value::Object(m) => m.values().for_each(|i| leaves(i, out)),
        v => out.push(v),
    }
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn glob(pattern: &str, text: &str) -> bool {
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

fn term_matches(term: &Term, v: &Value, substring: bool) -> bool {
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

fn range_matches(v: &Value, op: Op, bound: &str, now_ms: i64) -> bool {
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    fn m(q: &str, d: &Value) -> bool {
        matches(&parse(q).unwrap(), &doc(d.clone()), 1_000_000)
    }

    #[test]
    fn fields_booleans_and_precedence() {
        let d = json!({"app":"web-api","severity":"error","type":"request-failure",
            "fields":{"path":"/error","method":"GET","stack":"Error: Oh no\n    at handler (x.js:1)"},"status":500});
        assert!(m("app:web-api AND severity:error", &d));
        assert!(
            m("app:WEB-API and severity:error", &d),
            "keywords ignore case"
        );
        assert!(!m("app:web", &d), "keywords match whole");
        assert!(m("app:web*", &d));
        assert!(m("fields.path:/error", &d));
        assert!(
            m("fields.stack:\"oh no\"", &d),
            "text fields match phrases inside"
        );
        assert!(m(
            "app:recipe-api or severity:error and type:request-failure",
            &d
        ));
        assert!(!m("(app:recipe-api or severity:error) and type:listen", &d));
        assert!(m("not app:recipe-api", &d));
        assert!(m("status:200 500", &d), "a value list is any of");
        assert!(m("status:(200 or 500)", &d));
        assert!(m("status >= 500 and status < 600", &d));
        assert!(!m("status > 500", &d));
        assert!(m("fields.method:*", &d));
        assert!(!m("fields.nothing:*", &d));
        assert!(m("handler", &d), "free text searches every field");
        assert!(m("\"Oh no\"", &d));
        assert!(!m("nowhere", &d));
        assert!(m("", &d));
    }

    #[test]
    fn dates_compare_as_dates() {
        let d = json!({"@timestamp":"1970-01-01T00:16:40.000Z"}); // 1_000_000 ms
        assert!(m("@timestamp >= now-1m", &d));
        assert!(!m("@timestamp < now-1m", &d));
        assert!(m("@timestamp > \"1970-01-01T00:00:00Z\"", &d));
    }

    #[test]
    fn arrays_match_any_element() {
        let d = json!({"tags":["_jsonparsefailure","x"]});
        assert!(m("tags:_jsonparsefailure", &d));
    }

    #[test]
    fn errors_name_the_column() {
        let e = parse("app:web-api AND (severity:error").unwrap_err();
        assert_eq!(e.column, 32, "one past the end");
        assert!(e.message.contains(")"));
        let e = parse("app: AND x").unwrap_err();
        assert!(e.message.contains("app"), "{e}");
        assert!(parse("\"open").is_err());
        assert!(parse("a:1 )").is_err());
    }

    #[test]
    fn two_clauses_side_by_side_are_not_a_value_list() {
        // `a:1 b:2` without an operator: KQL reads it as an error; we name it.
        assert!(parse("a:1 b:2").is_err());
    }

    #[test]
    fn huge_durations_and_dates_are_errors_not_overflows() {
        assert_eq!(duration_ms("99999999999999999w"), None);
        assert_eq!(date_ms("now-99999999999999999w", 0), None);
        assert!(parse("@timestamp > now-99999999999999999w").is_ok());
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let deep = format!("{}a:b{}", "(".repeat(2000), ")".repeat(2000));
        let e = parse(&deep).unwrap_err();
        assert!(e.message.contains("deeper than 32"), "{e:?}");
        assert!(parse(&"not ".repeat(5000)).is_err());
        let ok = format!("{}a:b{}", "(".repeat(20), ")".repeat(20));
        assert!(parse(&ok).is_ok());
    }
}
