//! Path globs as Graphite reads them: `*`, `?`, `[a-z]`, `{a,b}`, never across a `.`.

#[allow(unused_imports)]
use super::series::*;
#[allow(unused_imports)]
use serde_json::{Value, json};
#[allow(unused_imports)]
use std::collections::BTreeMap;

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
pub struct PathGlob(pub(crate) Vec<GlobElement>);

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
    pub(crate) fn matches_prefix(&self, parts: &[&str]) -> bool {
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
pub(crate) fn split_path(p: &str) -> Vec<&str> {
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
