//! Raw → validated: every problem is collected (with its span) before anything starts; later
//! code only ever sees [`LabConfig`]. One file per section of lab.toml ([`service`], [`proxy`],
//! [`hub`], [`alerts`], [`load`], [`faults`]), and [`cross`] for what spans sections (ports, TLS pairs,
//! start order, what `lab up` would trip on).

mod alerts;
mod common;
mod cross;
mod faults;
mod hub;
mod load;
mod proxy;
mod service;

pub use crate::config::model::*;
pub use common::MAX_REPLICAS;
use common::*;
pub use cross::runnable;
use cross::{check_duplicate_ports, check_tls_pairs, start_order};

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
    let faults = faults::faults(&raw, &services, proxy.as_ref(), &mut errs);
    if let Some((key, _)) = raw
        .services
        .iter()
        .find(|(k, _)| k.get_ref() == EDGES_SERVICE)
    {
        errs.push(
            Diagnostic::new(
                key.span(),
                "`edges` is the name of the process that relays the lab's fault edges",
            )
            .hint("rename this service (e.g. `my-edges`)"),
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
        faults,
    })
}

#[cfg(test)]
pub(crate) mod tests;
