//! Config errors as people read them: `lab.toml:LINE:COL: message`, the offending line with a
//! caret, and a hint.

use std::fmt;
use std::ops::Range;

/// One problem in lab.toml.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Byte range in the file; `None` for problems of the whole file.
    pub span: Option<Range<usize>>,
    pub message: String,
    pub hint: Option<String>,
}

impl Diagnostic {
    pub fn new(span: Range<usize>, message: impl Into<String>) -> Self {
        Self {
            span: Some(span),
            message: message.into(),
            hint: None,
        }
    }
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Every problem found in one file, with what is needed to show them.
#[derive(Debug, Clone)]
pub struct Diagnostics {
    /// The path as the user gave it (so `lab.toml:3:1` reads as they typed it).
    pub path: String,
    pub source: String,
    pub items: Vec<Diagnostic>,
}

/// 1-based line and column (in characters) of byte `offset`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(source.len());
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

impl fmt::Display for Diagnostics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (n, d) in self.items.iter().enumerate() {
            if n > 0 {
                writeln!(f)?;
            }
            let Some(span) = &d.span else {
                writeln!(f, "{}: {}", self.path, d.message)?;
                if let Some(h) = &d.hint {
                    writeln!(f, "  = hint: {h}")?;
                }
                continue;
            };
            let (line, col) = line_col(&self.source, span.start);
            writeln!(f, "{}:{line}:{col}: {}", self.path, d.message)?;
            let text = self.source.lines().nth(line - 1).unwrap_or("");
            let width = self.source[span.clone()]
                .lines()
                .next()
                .map_or(1, |s| s.chars().count().max(1));
            let gutter = line.to_string().len();
            writeln!(f, "{:gutter$} |", "")?;
            writeln!(f, "{line} | {text}")?;
            writeln!(
                f,
                "{:gutter$} | {:pad$}{}",
                "",
                "",
                "^".repeat(width),
                pad = col - 1
            )?;
            if let Some(h) = &d.hint {
                writeln!(f, "{:gutter$} = hint: {h}", "")?;
            }
        }
        let n = self.items.len();
        write!(
            f,
            "{n} error{} in {}; nothing was started",
            if n == 1 { "" } else { "s" },
            self.path
        )
    }
}

/// The closest of `candidates` to `word`, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (levenshtein(word, c), c))
        .filter(|(d, c)| *d <= 2.max(c.len() / 3))
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

fn levenshtein(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Turn a toml/serde error into a diagnostic, with a "did you mean" for unknown keys and values.
pub fn from_toml(e: &toml::de::Error) -> Diagnostic {
    let message = e.message().trim().to_owned();
    let mut d = Diagnostic {
        span: e.span(),
        message: message.clone(),
        hint: None,
    };
    // serde's wording: "unknown field `x`, expected one of `a`, `b`" / "unknown variant `x`, expected `a` or `b`"
    if let Some(rest) = message
        .strip_prefix("unknown field ")
        .or_else(|| message.strip_prefix("unknown variant "))
    {
        let mut ticks = rest.split('`').skip(1).step_by(2);
        if let Some(word) = ticks.next() {
            let expected: Vec<&str> = ticks.collect();
            let head = message
                .split(", expected")
                .next()
                .unwrap_or(&message)
                .to_owned();
            d.message = head;
            let list = expected
                .iter()
                .map(|c| format!("`{c}`"))
                .collect::<Vec<_>>()
                .join(", ");
            d.hint = Some(match did_you_mean(word, expected.iter().copied()) {
                Some(best) => format!("did you mean `{best}`? (expected one of {list})"),
                None if expected.is_empty() => "remove it".to_owned(),
                None => format!("expected one of {list}"),
            });
        }
    } else if [
        "invalid type",
        "invalid value",
        "missing field",
        "duplicate",
        "invalid length",
    ]
    .iter()
    .any(|p| message.starts_with(p))
    {
        d.hint = Some("see `lab config schema` for every field and its type".into());
    } else {
        d.hint = Some("this is not valid TOML here (lab.toml is TOML 1.0: `key = value`, `[table]`, strings in quotes)".into());
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_are_one_based() {
        let s = "a = 1\nbb = 2\n";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 6), (2, 1));
        assert_eq!(line_col(s, 11), (2, 6));
    }

    #[test]
    fn suggests_close_names_only() {
        assert_eq!(
            did_you_mean("replica", ["replicas", "restart"]),
            Some("replicas")
        );
        assert_eq!(did_you_mean("zzz", ["replicas", "restart"]), None);
    }

    #[test]
    fn renders_path_line_col_caret_and_hint() {
        let d = Diagnostics {
            path: "lab.toml".into(),
            source: "x = 1\nreplica = 2\n".into(),
            items: vec![
                Diagnostic::new(6..13, "unknown field `replica`").hint("did you mean `replicas`?"),
            ],
        };
        let text = d.to_string();
        assert!(
            text.starts_with("lab.toml:2:1: unknown field `replica`\n"),
            "{text}"
        );
        assert!(text.contains("2 | replica = 2\n  | ^^^^^^^\n"), "{text}");
        assert!(text.contains("hint: did you mean `replicas`?"), "{text}");
    }
}
