//! What the section validators share: the imports they all use, [`Errors`] (every problem
//! collected), names, sizes and addresses.

pub(super) use std::collections::HashMap;
pub(super) use std::ops::Range;
pub(super) use std::path::{Path, PathBuf};
pub(super) use std::time::Duration;

pub(super) use lab_supervisor::{Backoff, HealthCheck, HealthSpec, RestartPolicy, RestartSpec};
pub(super) use toml::Spanned;

pub(super) use crate::config::diagnostic::{Diagnostic, did_you_mean};
pub(super) use crate::config::model::*;
pub(super) use crate::config::raw::{
    CheckKind, PortSpec, RawBackoff, RawHealth, RawLab, RawService,
};

pub(super) fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.len() <= 63
}

pub(super) struct Errors(pub(super) Vec<Diagnostic>);

impl Errors {
    pub(super) fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    pub(super) fn duration(&mut self, v: &Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match humantime::parse_duration(v.get_ref().trim()) {
            Ok(d) => d,
            Err(e) => {
                self.push(
                    Diagnostic::new(v.span(), format!("invalid duration {:?}: {e}", v.get_ref()))
                        .hint("write it like \"250ms\", \"2s\" or \"1m\""),
                );
                default
            }
        }
    }
}

impl Errors {
    /// [`Errors::duration`], refused below `min` (a 0 s probe interval is 1,000 probes a second).
    pub(super) fn duration_min(
        &mut self,
        v: &Option<Spanned<String>>,
        default: Duration,
        min: Duration,
        what: &str,
    ) -> Duration {
        let d = self.duration(v, default);
        if let Some(s) = v
            && d < min
        {
            self.push(
                Diagnostic::new(
                    s.span(),
                    format!("{what} {:?} is below the least the lab takes", s.get_ref()),
                )
                .hint(format!("write {} or more", humantime::format_duration(min))),
            );
            return min;
        }
        d
    }
}

/// The most instances one service may run (each a process, ports and descriptors of its own).
pub const MAX_REPLICAS: u32 = 256;

/// `1GB`, `500MB`, `2GiB`, `100kB`, or bytes → bytes.
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" | "k" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let b = n * mult;
    (b.is_finite() && (0.0..1e18).contains(&b)).then_some(b as u64)
}

pub(super) fn looks_like_addr(v: &str) -> bool {
    matches!(v.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok())
}
