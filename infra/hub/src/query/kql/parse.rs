//! Text to [`Query`]: the lexer and a recursive-descent parser with a depth bound.

use super::ast::*;

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
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

pub(super) fn lex(s: &str) -> Result<Vec<(Tok, usize)>, ParseError> {
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

pub(super) struct Parser {
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

pub(super) fn describe(t: &Tok) -> String {
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

pub(super) fn any(mut terms: Vec<Query>) -> Query {
    if terms.len() == 1 {
        terms.pop().unwrap_or(Query::All)
    } else {
        Query::Or(terms)
    }
}

pub(super) fn word_term(field: Option<&str>, w: &str) -> Query {
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
