//! `lab check [all|chN|scenario] [--list] [--json] [--junit FILE]`.
//!
//! Uses the running lab recorded under the state dir; without one, starts the lab from
//! lab.toml on free ports in a private state dir, runs the scenarios, and stops it again.

use std::time::Duration;

use lab_service_kit::client::Client;
use lab_supervisor::Lab;
use lab_supervisor::state::State;

use crate::check::{self, CheckReport, Ctx, Endpoint, Status};
use crate::cli::CheckArgs;
use crate::config::plan::{LowerOptions, PortMode, lower};
use crate::config::{LabConfig, Run};
use crate::exit;
use crate::render::{self, FAIL, OK, Style, table::Table};

use super::Env;

pub async fn run(env: &Env, args: CheckArgs) -> anyhow::Result<u8> {
    let style = env.style;
    if args.list {
        let mut t = Table::new(&["SCENARIO", "CHAPTER", "BOOK SECTION", "WHAT IT CHECKS"]);
        for s in check::registry() {
            t.row(vec![
                s.name.into(),
                format!("ch{}", s.chapter),
                s.section.into(),
                s.summary.into(),
            ]);
        }
        render::line(t.render(&style).trim_end());
        return Ok(exit::OK);
    }
    let scenarios = match check::select_many(check::registry(), &args.target) {
        Ok(s) => s,
        Err(msg) => {
            eprintln!("lab: {msg}");
            return Ok(exit::USAGE);
        }
    };
    let cfg = match env.load_config() {
        Ok(c) => c,
        Err(code) => return Ok(code),
    };
    // Progress goes to stderr so that `--json` stdout stays one document.
    let say = |m: String| {
        if !args.json {
            render::line(m)
        } else {
            eprintln!("{m}")
        }
    };

    let running = State::load(&env.state_dir)?.filter(|s| {
        s.instances
            .iter()
            .any(|r| r.container.is_some() || r.process.is_some_and(|p| p.is_alive()))
    });
    let report = match running {
        Some(state) => {
            say(format!(
                "checking the running lab {} ({} scenario(s))",
                state.name,
                scenarios.len()
            ));
            let ctx = ctx_from(
                &cfg,
                &state,
                &env.state_dir.join("tls"),
                engine(&cfg, &args),
            )?;
            check::run(&ctx, &scenarios, &state.name, "running").await
        }
        None => {
            say(format!(
                "no lab is running here: starting {} on free ports for the checks",
                cfg.name
            ));
            let dir = env.state_dir.join(format!("check-{}", std::process::id()));
            let lowered = lower(
                &cfg,
                &LowerOptions {
                    ports: PortMode::Ephemeral,
                    state_dir: dir.clone(),
                    exe: std::env::current_exe()?,
                    runtime: cfg.runtime,
                },
            );
            let lowered = match lowered {
                Ok(l) => l,
                Err(d) => {
                    eprintln!("{d}");
                    return Ok(exit::USAGE);
                }
            };
            if let Err(e) = crate::images::ensure_for(&cfg, &lowered.plan, &say).await {
                eprintln!("lab: cannot start the lab for the checks: {e:#}");
                return Ok(exit::FAILED);
            }
            let cancel = crate::shutdown::on_signals();
            let (lab, breakdown) =
                match Lab::up(lowered.plan, lab_supervisor::events::discard(), cancel).await {
                    Ok(up) => up,
                    Err(e) => {
                        eprintln!("lab: cannot start the lab for the checks: {e}");
                        if let Some(log) = e.log() {
                            for l in lab_supervisor::logs::last_lines(log, Some(15)) {
                                eprintln!("  {l}");
                            }
                        }
                        return Ok(exit::FAILED);
                    }
                };
            say(format!("lab up in {}", render::ms(breakdown.total)));
            let state = lab.state();
            let ctx = ctx_from(&cfg, &state, &dir.join("tls"), engine(&cfg, &args))?;
            let report = check::run(&ctx, &scenarios, &cfg.name, "started").await;
            lab.stop().await;
            if let Some(d) = &state.docker
                && let Err(e) = lab_supervisor::down::sweep_docker(d, true).await
            {
                eprintln!("lab: cannot remove the checks' Docker objects: {e}");
            }
            let _ = std::fs::remove_dir_all(&dir);
            report
        }
    };

    if let Some(path) = &args.junit {
        std::fs::write(path, crate::render::junit::render(&report))
            .map_err(|e| anyhow::anyhow!("cannot write JUnit to {}: {e}", path.display()))?;
    }
    if args.json {
        render::line(serde_json::to_string_pretty(&report)?);
    } else {
        render::line(report_text(&report, &style));
    }
    Ok(if report.failed == 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// The endpoints of `state`'s instances, with each service's role from the config; the client
/// trusts the lab CA under `tls_dir` when there is one.
/// `--proxy-engine`, else the lab's `[proxy] engine`, else builtin.
pub(crate) fn engine(cfg: &LabConfig, args: &CheckArgs) -> crate::config::raw::ProxyEngine {
    use crate::cli::ProxyEngineArg;
    use crate::config::raw::ProxyEngine;
    match args.proxy_engine {
        Some(ProxyEngineArg::Builtin) => ProxyEngine::Builtin,
        Some(ProxyEngineArg::Haproxy) => ProxyEngine::Haproxy,
        None => cfg
            .proxy
            .as_ref()
            .map_or(ProxyEngine::Builtin, |p| p.engine),
    }
}

pub(crate) fn ctx_from(
    cfg: &LabConfig,
    state: &State,
    tls_dir: &std::path::Path,
    proxy_engine: crate::config::raw::ProxyEngine,
) -> anyhow::Result<Ctx> {
    let mut endpoints: Vec<Endpoint> = cfg
        .services
        .iter()
        .map(|s| Endpoint {
            service: s.name.clone(),
            builtin: match &s.run {
                Run::Builtin(b) => Some(*b),
                Run::Command { .. } => None,
            },
            target_protocol: s.target_protocol,
            protocol: s.protocol,
            addrs: Vec::new(),
            environment: s.environment.clone(),
        })
        .collect();
    for r in &state.instances {
        if let Some(e) = endpoints.iter_mut().find(|e| e.service == r.service) {
            e.addrs.push(r.address.clone());
        }
    }
    let ca = tls_dir.join("ca.crt");
    let (client, tls_ca) = if ca.exists() {
        (
            Client::with_tls(lab_service_kit::tls::client_config(&ca)?),
            Some(ca),
        )
    } else {
        (Client::new(), None)
    };
    let hub_running = state
        .instances
        .iter()
        .any(|i| i.service == crate::config::validate::HUB_SERVICE);
    let hub = tls_dir
        .parent()
        .and_then(super::hub::running_config)
        .filter(|_| cfg.hub.is_some() && hub_running)
        .map(|h| {
            let host = if h.host.is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                h.host.to_string()
            };
            crate::check::HubInfo {
                http: format!("{host}:{}", h.http_port),
                zipkin: format!("{host}:{}", h.zipkin_port),
                flush: Duration::from_millis(h.flush_interval_ms),
                alert_interval: Duration::from_millis(h.alert_interval_ms),
            }
        });
    Ok(Ctx {
        client,
        tls_ca,
        endpoints,
        timeout: Duration::from_secs(5),
        proxy_engine,
        tls_dir: tls_dir.to_path_buf(),
        hub,
        containers: state.docker.is_some(),
    })
}

/// The human report: one line per scenario, its assertions and figures beneath.
pub fn report_text(r: &CheckReport, style: &Style) -> String {
    let mut out = String::new();
    for s in &r.scenarios {
        let mark = if s.status == Status::Pass {
            style.green(OK)
        } else {
            style.red(FAIL)
        };
        let engine = s
            .engine
            .as_ref()
            .map(|e| format!("  [{e}]"))
            .unwrap_or_default();
        out.push_str(&format!(
            "{mark} {}{engine}  {}  {}\n",
            style.bold(&s.name),
            style.dim(&s.section),
            render::ms(Duration::from_secs_f64(s.duration_ms / 1e3))
        ));
        for a in &s.assertions {
            let m = if a.ok {
                style.green(OK)
            } else {
                style.red(FAIL)
            };
            out.push_str(&format!("    {m} {}  {}\n", a.name, style.dim(&a.detail)));
        }
        for f in &s.figures {
            out.push_str(&format!(
                "    {} {} = {} {}\n",
                style.dim("•"),
                f.name,
                f.value,
                f.unit
            ));
        }
        if let Some(e) = &s.error {
            out.push_str(&format!("    {} {}\n", style.red("error:"), e));
        }
    }
    let summary = format!("{} passed, {} failed", r.passed, r.failed);
    out.push_str(&if r.failed == 0 {
        style.green(&summary)
    } else {
        style.red(&summary)
    });
    out
}
