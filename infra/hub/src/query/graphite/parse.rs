//! Targets to expressions: paths, numbers, strings and function calls, nesting bounded.

#[allow(unused_imports)]
use super::series::*;
#[allow(unused_imports)]
use serde_json::{Value, json};
#[allow(unused_imports)]
use std::collections::BTreeMap;

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

pub(crate) struct P<'a> {
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
