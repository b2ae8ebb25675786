//! Raw → validated: every problem is collected (with its span) before anything starts; later
//! code only ever sees [`LabConfig`]. One file per section of lab.toml ([`service`], [`proxy`],
//! [`hub`], [`alerts`], [`load`]), and [`cross`] for what spans sections (ports, TLS pairs,
//! start order, what `lab up` would trip on).

mod alerts;
mod cross;
mod hub;
mod load;
mod proxy;
mod service;

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab_supervisor::{Backoff, HealthCheck, HealthSpec, RestartPolicy, RestartSpec};
use toml::Spanned;

use super::diagnostic::{Diagnostic, did_you_mean};
pub use super::model::*;
use super::raw::{CheckKind, PortSpec, RawBackoff, RawHealth, RawLab, RawService};
pub use cross::runnable;
use cross::{check_duplicate_ports, check_tls_pairs, start_order};

pub(super) fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.len() <= 63
}

pub(super) struct Errors(Vec<Diagnostic>);

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

/// Validate `raw` (parsed from `source`, the file in `dir`).
pub fn validate(
    raw: RawLab,
    source: &str,
    path: &Path,
    display_path: &str,
) -> Result<LabConfig, Vec<Diagnostic>> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut errs = Errors(Vec::new());

    let name = match &raw.name {
        Some(n) if !valid_name(n.get_ref()) => {
            errs.push(
                Diagnostic::new(n.span(), format!("invalid lab name {:?}", n.get_ref()))
                    .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
            n.get_ref().clone()
        }
        Some(n) => n.get_ref().clone(),
        None => dir
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .to_lowercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            })
            .filter(|n| valid_name(n))
            .unwrap_or_else(|| "lab".into()),
    };
    let lab_env = raw
        .environment
        .as_ref()
        .map_or("development".to_owned(), |e| e.get_ref().clone());

    // A lab of only `[hub]` is what `lab hub` runs for one's own services; `lab up` refuses
    // it (see `runnable`).
    if raw.services.is_empty() && raw.hub.is_none() {
        errs.push(Diagnostic {
            span: None,
            message: "no services: the lab has nothing to run".into(),
            hint: Some(
                "add a [services.NAME] table with `builtin = \"recipe-api\"` or `command = [...]`"
                    .into(),
            ),
        });
    }
    let names: Vec<&str> = raw.services.keys().map(|k| k.get_ref().as_str()).collect();

    let mut services = Vec::new();
    for (key, svc) in &raw.services {
        if !valid_name(key.get_ref()) {
            errs.push(
                Diagnostic::new(
                    key.span(),
                    format!("invalid service name {:?}", key.get_ref()),
                )
                .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        services.push(service::service(
            key, svc, &names, &lab_env, &dir, &mut errs,
        ));
    }

    let proxy = raw
        .proxy
        .as_ref()
        .map(|p| proxy::proxy(p, &services, &names, &mut errs))
        .filter(|p| !p.frontends.is_empty());
    if proxy.is_some()
        && let Some((key, _)) = raw
            .services
            .iter()
            .find(|(k, _)| k.get_ref() == PROXY_SERVICE)
    {
        errs.push(
            Diagnostic::new(key.span(), "`proxy` is the name of the lab's proxy")
                .hint("rename this service (e.g. `my-proxy`)"),
        );
    }
    let mut hub = raw.hub.as_ref().map(|h| hub::hub(h, &mut errs));
    let rules = alerts::alerts(&raw, &services, &names, &mut errs);
    match &mut hub {
        Some(h) => h.config.alerts = rules,
        None if !rules.is_empty() => {
            let (key, _) = raw.alerts.first().expect("rules come from [alerts]");
            errs.push(
                Diagnostic::new(
                    key.span(),
                    "alert rules need the hub, and this lab has no [hub]",
                )
                .hint("add `[hub]` (the hub evaluates the rules)"),
            );
        }
        None => {}
    }
    if hub.is_some()
        && let Some((key, _)) = raw
            .services
            .iter()
            .find(|(k, _)| k.get_ref() == HUB_SERVICE)
    {
        errs.push(
            Diagnostic::new(
                key.span(),
                "`hub` is the name of the lab's observability hub",
            )
            .hint("rename this service (e.g. `my-hub`)"),
        );
    }
    check_duplicate_ports(&services, proxy.as_ref(), hub.as_ref(), &mut errs);
    let load = load::load_presets(&raw, &mut errs);
    check_tls_pairs(&raw, &services, &mut errs);
    let order = start_order(&raw, &services, &mut errs);

    if !errs.0.is_empty() {
        return Err(errs.0);
    }
    let mut by_name: HashMap<String, Service> =
        services.into_iter().map(|s| (s.name.clone(), s)).collect();
    let services = order
        .into_iter()
        .filter_map(|n| by_name.remove(&n))
        .collect();
    Ok(LabConfig {
        name,
        path: path.to_path_buf(),
        display_path: display_path.to_owned(),
        source: source.to_owned(),
        dir,
        services,
        proxy,
        load,
        hub,
        runtime: raw
            .runtime
            .as_ref()
            .map(|r| *r.get_ref())
            .unwrap_or_default(),
    })
}

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
    (b.is_finite() && b >= 0.0 && b < 1e18).then_some(b as u64)
}

pub(super) fn looks_like_addr(v: &str) -> bool {
    matches!(v.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok())
}

/// For the section files' tests: every diagnostic of `src` as `(line, col, message, hint)`.
#[cfg(test)]
pub(crate) fn diagnostics_of(src: &str) -> Vec<(usize, usize, String, Option<String>)> {
    match crate::config::parse(src, Path::new("/x/lab.toml"), "lab.toml") {
        Ok(_) => Vec::new(),
        Err(crate::config::ConfigError::Invalid(d)) => d
            .items
            .iter()
            .map(|i| {
                let (l, c) = i
                    .span
                    .as_ref()
                    .map_or((0, 0), |s| super::diagnostic::line_col(src, s.start));
                (l, c, i.message.clone(), i.hint.clone())
            })
            .collect(),
        Err(e) => panic!("{e}"),
    }
}

/// The one diagnostic of `src` whose message contains `part`.
#[cfg(test)]
pub(crate) fn one(src: &str, part: &str) -> (usize, usize, String, Option<String>) {
    let all = diagnostics_of(src);
    let mut hits = all.iter().filter(|d| d.2.contains(part));
    let hit = hits
        .next()
        .unwrap_or_else(|| panic!("no {part:?} in {all:#?}"));
    assert!(hits.next().is_none(), "{part:?} twice in {all:#?}");
    hit.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_sections_are_checked_with_their_spans() {
        let (l, c, m, h) = one("name = \"bad name\"\n[hub]\n", "invalid lab name");
        assert_eq!((l, c), (1, 8), "{m}");
        assert!(h.unwrap().contains("letters, digits"));
        let d = diagnostics_of("name = \"x\"\n");
        assert_eq!(d[0].2, "no services: the lab has nothing to run", "{d:?}");
        assert!(
            diagnostics_of("[hub]\n").is_empty(),
            "a lab of only [hub] is valid"
        );
        let (l, _, _, h) = one(
            "[services.hub]\nbuiltin = \"recipe-api\"\n[hub]\n",
            "`hub` is the name of the lab's observability hub",
        );
        assert_eq!(l, 1);
        assert_eq!(h.as_deref(), Some("rename this service (e.g. `my-hub`)"));
    }
}
