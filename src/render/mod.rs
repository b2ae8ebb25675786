//! Output for people and machines. Human output comes from the same structs as `--json`.
//! Colour only on a terminal, never with `NO_COLOR` or `--no-color`; marks read as ✓ / ~ / x
//! in plain text too.

pub mod junit;
pub mod table;

use std::io::{IsTerminal, Write};

#[derive(Debug, Clone, Copy)]
pub struct Style {
    pub color: bool,
}

impl Style {
    /// Colour when stdout is a terminal, `NO_COLOR` is unset or empty, and `--no-color` not given.
    pub fn detect(no_color_flag: bool) -> Self {
        let env_off = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        Self {
            color: !no_color_flag && !env_off && std::io::stdout().is_terminal(),
        }
    }
    pub fn plain() -> Self {
        Self { color: false }
    }
    pub fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_owned()
        }
    }
    pub fn green(&self, t: &str) -> String {
        self.paint("32", t)
    }
    pub fn red(&self, t: &str) -> String {
        self.paint("31", t)
    }
    pub fn yellow(&self, t: &str) -> String {
        self.paint("33", t)
    }
    pub fn dim(&self, t: &str) -> String {
        self.paint("2", t)
    }
    pub fn bold(&self, t: &str) -> String {
        self.paint("1", t)
    }
    /// A per-service colour for log prefixes, stable by index.
    pub fn service(&self, index: usize, t: &str) -> String {
        const CODES: [&str; 6] = ["36", "35", "34", "33", "32", "96"];
        self.paint(CODES[index % CODES.len()], t)
    }
    /// Colour a health word by meaning.
    pub fn health(&self, h: &str) -> String {
        match h {
            "healthy" | "OK" => self.green(h),
            "starting" | "unhealthy" | "DEGRADED" => self.yellow(h),
            "-" => h.to_owned(),
            _ => self.red(h),
        }
    }
}

pub const OK: &str = "✓";
pub const WARN: &str = "~";
pub const FAIL: &str = "x";

/// Print a line to stdout, ignoring a closed pipe (`lab status | head` must not panic).
pub fn line(text: impl AsRef<str>) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{}", text.as_ref());
    let _ = out.flush();
}

/// Milliseconds with sensible precision: `0.42ms`, `12.3ms`, `1534ms`.
pub fn ms(d: std::time::Duration) -> String {
    let v = d.as_secs_f64() * 1e3;
    if v < 1.0 {
        format!("{v:.2}ms")
    } else if v < 100.0 {
        format!("{v:.1}ms")
    } else {
        format!("{v:.0}ms")
    }
}
