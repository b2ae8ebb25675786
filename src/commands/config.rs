//! `lab config schema | validate`.

use crate::cli::ConfigCommand;
use crate::config::{Ports, Run};
use crate::error::exit;
use crate::render::{self, OK};

use super::env::Env;

pub fn run(env: &Env, cmd: ConfigCommand) -> anyhow::Result<u8> {
    match cmd {
        ConfigCommand::Schema => {
            print!("{}", crate::config::schema_json());
            Ok(exit::OK)
        }
        ConfigCommand::Validate => {
            let cfg = env.load_config()?;
            if cfg.services.is_empty() {
                // Validation lets a lab of only [hub] through: it is what `lab hub` runs.
                render::line(format!(
                    "{} {}: lab `{}`, a hub and no services: `lab hub` runs it for services of your own; `lab up` needs [services.NAME]",
                    env.style.green(OK),
                    env.file.display(),
                    cfg.name,
                ));
                return Ok(exit::OK);
            }
            if let Some(d) = crate::config::unrunnable(&cfg, cfg.runtime) {
                return Err(crate::error::Usage::text(d));
            }
            let instances: usize = cfg.services.iter().map(|s| s.replicas).sum();
            render::line(format!(
                "{} {}: lab `{}`, {} services, {instances} instances; start order: {}",
                env.style.green(OK),
                env.file.display(),
                cfg.name,
                cfg.services.len(),
                cfg.services
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" → ")
            ));
            for s in &cfg.services {
                let what = match &s.run {
                    Run::Builtin(b) => format!("builtin {}", b.as_str()),
                    Run::Command { argv, .. } => format!("command {}", argv.join(" ")),
                };
                let ports = match &s.ports {
                    Ports::Auto => "free ports".to_owned(),
                    Ports::Fixed(p) => p.iter().map(u16::to_string).collect::<Vec<_>>().join(","),
                };
                let role = match (s.role, s.serves.is_empty()) {
                    (Some(r), true) => format!("  role {}", r.as_str()),
                    (Some(r), false) => format!(
                        "  role {} serving {}",
                        r.as_str(),
                        s.serves
                            .iter()
                            .map(|x| x.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                    (None, _) => "  no role (`lab check` holds it to no contract; set `role = \"recipe-api\"` or \"web-api\")".to_owned(),
                };
                render::line(format!(
                    "  {} ×{}  {what}  ports {ports}{role}",
                    s.name, s.replicas
                ));
            }
            for f in &cfg.faults.schedule {
                use crate::config::model::ScheduledKind;
                let what = match &f.kind {
                    ScheduledKind::Kill => "kill".to_owned(),
                    ScheduledKind::Pause => "pause".to_owned(),
                    ScheduledKind::Restart => "restart".to_owned(),
                    ScheduledKind::Partition(m) => format!("partition:{}", m.as_str()),
                    ScheduledKind::Edge(e) => e.describe(),
                };
                render::line(format!(
                    "  fault {}  {what} on {} {} after the lab is up{}",
                    f.name,
                    f.target,
                    humantime::format_duration(f.after),
                    f.lasting.map_or(", until cleared".to_owned(), |d| format!(
                        ", for {}",
                        humantime::format_duration(d)
                    ))
                ));
            }
            Ok(exit::OK)
        }
    }
}

/// `lab init [SECTION] [--list] [--force] [--stdout]`.
pub fn init(env: &Env, args: crate::cli::InitArgs) -> anyhow::Result<u8> {
    use crate::init;
    if args.list {
        render::line(format!(
            "  {:<14} the lab's own services: recipe-api ×2, web-api ×2, a proxy, the hub (no section)",
            "(default)"
        ));
        for s in init::SECTIONS {
            render::line(format!("  {:<14} {}", s.name, s.title));
        }
        return Ok(exit::OK);
    }
    let text = match &args.section {
        None => init::DEFAULT.to_owned(),
        Some(name) => match init::section(name) {
            Some(s) => init::render(s),
            None => {
                let hint = crate::config::diagnostic::did_you_mean(
                    name,
                    init::SECTIONS.iter().map(|s| s.name),
                )
                .map(|b| format!("did you mean `{b}`? "))
                .unwrap_or_default();
                return Err(crate::error::Usage::lab(format!(
                    "no book section {name}; {hint}`lab init --list` names them"
                )));
            }
        },
    };
    if args.stdout {
        print!("{text}");
        return Ok(exit::OK);
    }
    if env.file.exists() && !args.force {
        return Err(crate::error::Usage::lab(format!(
            "{} exists; nothing written\n  = hint: `lab init --force` overwrites it, `lab init --stdout` prints the file",
            env.file.display()
        )));
    }
    std::fs::write(&env.file, &text)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", env.file.display()))?;
    render::line(format!(
        "{} wrote {}{}; `lab config validate` checks it, `lab up` runs it, `lab check` holds it to the book",
        env.style.green(OK),
        env.file.display(),
        args.section
            .as_ref()
            .map(|s| format!(" for {s}"))
            .unwrap_or_default()
    ));
    Ok(exit::OK)
}
