//! `lab up`: validate, check ports, start in dependency order, print what runs where and the
//! startup breakdown; then stream logs until Ctrl-C (or, with `--detach`, hand the lab to a
//! background supervisor and return once it is healthy).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use lab_supervisor::logs::{self, Source};
use lab_supervisor::state::State;
use lab_supervisor::{Breakdown, Event, Lab};
use tokio::io::AsyncBufReadExt;
use tokio_util::sync::CancellationToken;

use crate::cli::UpArgs;
use crate::config::LabConfig;
use crate::config::lower::{LowerOptions, Lowered, lower};
use crate::error::exit;
use crate::render::{self, Style};

use super::env::{Env, runtime};

/// Control lines from the detached supervisor to the `lab up --detach` that started it.
const READY: &str = "\x1elab:ready";
const FAILED: &str = "\x1elab:failed";
/// Forces colour in the detached supervisor when the user's terminal has it.
const FORCE_COLOR_ENV: &str = "LAB_FORCE_COLOR";

pub fn run(env: &Env, args: UpArgs) -> anyhow::Result<u8> {
    let cfg = env.load_config()?;
    let rt = runtime()?;
    if !args.supervise
        && let Some(state) = State::load(&env.state_dir)?
    {
        if state.supervisor_alive() {
            return Err(crate::error::Usage::lab(format!(
                "lab `{}` is already running here (supervisor pid {})\n  = hint: `lab status` shows it, `lab down` stops it",
                state.name, state.supervisor.pid
            )));
        }
        render::line(format!(
            "{} the last lab here was not stopped (its supervisor is gone); cleaning up first",
            env.style.yellow(render::WARN)
        ));
        rt.block_on(lab_supervisor::down::down(
            &env.state_dir,
            std::time::Duration::from_secs(5),
            false,
        ))?;
    }
    let mut cfg = cfg;
    cfg.faults.edges |= args.faults;
    let lowered = lower_for(env, &cfg, &args)?;
    if args.detach && !args.supervise {
        return rt.block_on(detach(env, &args));
    }
    rt.block_on(supervise(env, &cfg, lowered, args.supervise))
}

fn lower_for(env: &Env, cfg: &LabConfig, args: &UpArgs) -> anyhow::Result<Lowered> {
    if let Some(d) = crate::config::unrunnable(cfg, args.runtime.unwrap_or(cfg.runtime)) {
        return Err(crate::error::Usage::text(d));
    }
    let exe = std::env::current_exe()
        .map_err(|e| anyhow::anyhow!("cannot find my own binary to run built-in services: {e}"))?;
    lower(
        cfg,
        &LowerOptions {
            ports: args.ports,
            state_dir: env.state_dir.clone(),
            exe,
            shape: crate::config::lower::Shape::of(args.runtime.unwrap_or(cfg.runtime)),
            keep_statsd: false,
        },
    )
    .map_err(crate::error::Usage::text)
}

/// Run the lab in this process until a signal: the foreground `lab up`, or the detached
/// supervisor (`detached`), which reports readiness on stdout and then writes to its log.
async fn supervise(
    env: &Env,
    cfg: &LabConfig,
    lowered: Lowered,
    detached: bool,
) -> anyhow::Result<u8> {
    let style = if detached && std::env::var_os(FORCE_COLOR_ENV).is_some() {
        Style { color: true }
    } else {
        env.style
    };
    if detached {
        // Leave the caller's session so its terminal closing does not stop the lab.
        let _ = nix::unistd::setsid();
    }
    let plan = lowered.plan;
    for note in &lowered.notes {
        render::line(format!("{} {note}", style.yellow(render::WARN)));
    }
    let instances: usize = plan.services.iter().map(|s| s.instances.len()).sum();
    render::line(format!(
        "lab {}: starting {} services, {instances} instances from {}",
        style.bold(&plan.name),
        plan.services.len(),
        cfg.display_path
    ));
    let colour: Arc<HashMap<String, usize>> = Arc::new(
        plan.services
            .iter()
            .enumerate()
            .map(|(i, s)| (s.name.clone(), i))
            .collect(),
    );
    let sink = event_printer(style, colour.clone());
    let cancel = crate::shutdown::on_signals();

    let follow_stop = CancellationToken::new();
    let mut follower = (!detached).then(|| {
        let sources: Vec<Source> = plan
            .instances()
            .map(|i| Source {
                label: i.id(),
                path: plan.logs_dir().join(i.log_file_name()),
            })
            .collect();
        let colour = colour.clone();
        tokio::spawn(logs::follow(
            sources,
            false,
            follow_stop.clone(),
            move |label, text| {
                let svc = label.split('#').next().unwrap_or(label);
                let idx = colour.get(svc).copied().unwrap_or(0);
                render::line(format!("{} | {text}", style.service(idx, label)));
            },
        ))
    });

    let logs_dir = plan.logs_dir();
    let state_dir = plan.state_dir.clone();
    if plan.docker.is_some()
        && let Err(e) = crate::images::ensure_for(cfg, &plan, &|l| render::line(l)).await
    {
        render::line(format!(
            "{} lab up failed: {e:#}\n  nothing was started.",
            style.red(render::FAIL)
        ));
        if detached {
            render::line(FAILED);
        }
        return Ok(exit::FAILED);
    }
    let has_hub = plan
        .services
        .iter()
        .any(|s| s.name == crate::config::model::HUB_SERVICE);
    let code = match Lab::up(plan, sink, cancel.clone()).await {
        Ok((lab, breakdown)) => {
            render::line(super::running::instances_table(&lab.state(), None, &style));
            render::line(breakdown_text(&breakdown, &style));
            if let Some(hub) = super::running::running_config(&state_dir).filter(|_| has_hub) {
                render::line(super::running::summary(&hub));
            }
            if detached {
                render::line(format!(
                    "{} lab is up; the supervisor (pid {}) keeps it running. `lab status`, `lab logs -f`, `lab down`.",
                    style.green(render::OK),
                    std::process::id()
                ));
                render::line(READY);
                redirect_output(&state_dir);
            } else {
                render::line(format!(
                    "{} lab is up; logs follow (also in {}). Ctrl-C stops it.",
                    style.green(render::OK),
                    logs_dir.display()
                ));
            }
            cancel.cancelled().await;
            render::line("stopping (reverse start order)…");
            lab.stop().await;
            // The instances' last log lines come before the final word.
            follow_stop.cancel();
            if let Some(f) = follower.take() {
                let _ = f.await;
            }
            render::line(format!("{} stopped", style.green(render::OK)));
            exit::OK
        }
        Err(e) => {
            render::line(format!("{} lab up failed: {e}", style.red(render::FAIL)));
            if let Some(hint) = super::running::start_hint(&e, cfg) {
                render::line(format!("  = hint: {hint}"));
            }
            if let Some(log) = e.log() {
                render::line(format!("  last lines of {}:", log.display()));
                for l in logs::last_lines(log, Some(15)) {
                    render::line(format!("  {}", style.dim(&l)));
                }
            }
            render::line("  everything that had started was stopped again.");
            if detached {
                render::line(FAILED);
            }
            exit::FAILED
        }
    };
    follow_stop.cancel();
    if let Some(f) = follower {
        let _ = f.await;
    }
    Ok(code)
}

/// Point stdout and stderr at `.lab/supervisor.log` once the parent stopped listening.
fn redirect_output(state_dir: &Path) {
    let _ = std::io::stdout().flush();
    if let Ok(f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(state_dir.join("supervisor.log"))
    {
        let _ = nix::unistd::dup2_stdout(&f);
        let _ = nix::unistd::dup2_stderr(&f);
    }
}

fn event_printer(
    style: Style,
    colour: Arc<HashMap<String, usize>>,
) -> lab_supervisor::events::EventSink {
    Arc::new(move |e: Event| {
        let tag = |inst: &str| {
            let svc = inst.split('#').next().unwrap_or(inst);
            style.service(colour.get(svc).copied().unwrap_or(0), inst)
        };
        let text = match e {
            Event::Spawned {
                instance,
                pid,
                restarts: 0,
            } => format!("  {} spawned, pid {pid}", tag(&instance)),
            Event::Spawned {
                instance,
                pid,
                restarts,
            } => format!(
                "  {} respawned, pid {pid} (restart #{restarts})",
                tag(&instance)
            ),
            Event::Healthy {
                instance,
                after_spawn,
            } => {
                format!(
                    "  {} {} after {}",
                    tag(&instance),
                    style.green("healthy"),
                    render::ms(after_spawn)
                )
            }
            Event::Unhealthy { instance, reason } => format!(
                "  {} {}: {reason}",
                tag(&instance),
                style.yellow("unhealthy")
            ),
            Event::Exited {
                instance,
                status,
                ran_for,
            } => {
                format!(
                    "  {} {} ({status}) after {}",
                    tag(&instance),
                    style.red("exited"),
                    render::ms(ran_for)
                )
            }
            Event::Restarting {
                instance,
                delay,
                restarts,
            } => {
                format!(
                    "  {} restart #{restarts} in {}",
                    tag(&instance),
                    render::ms(delay)
                )
            }
            Event::NotRestarting { instance, policy } => format!(
                "  {} not restarted (restart = \"{policy}\")",
                tag(&instance)
            ),
            Event::SpawnFailed { instance, error } => format!(
                "  {} {}: {error}",
                tag(&instance),
                style.red("cannot start")
            ),
            Event::Stopping { service } => format!("  stopping {service}"),
            Event::Scheduled { name, text } => {
                format!("  {} [faults.{name}]: {text}", style.yellow("fault"))
            }
            Event::Stopped {
                instance,
                forced: false,
            } => format!("  {} stopped", tag(&instance)),
            Event::Stopped {
                instance,
                forced: true,
            } => format!(
                "  {} killed (did not stop within its grace period)",
                tag(&instance)
            ),
        };
        render::line(text);
    })
}

/// The startup breakdown: per instance, time to spawn and to healthy; then the critical chain.
pub fn breakdown_text(b: &Breakdown, style: &Style) -> String {
    let mut t = crate::render::table::Table::new(&[
        "INSTANCE",
        "SPAWN AT",
        "SPAWN TOOK",
        "HEALTHY AT",
        "SPAWN→HEALTHY",
    ]);
    for i in &b.instances {
        t.row(vec![
            i.instance.clone(),
            render::ms(i.spawn_at),
            render::ms(i.spawn_took),
            render::ms(i.healthy_at),
            render::ms(i.healthy_at.saturating_sub(i.spawn_at)),
        ]);
    }
    let mut out = format!(
        "startup: all healthy in {}\n",
        style.bold(&render::ms(b.total))
    );
    out.push_str(&t.render(style));
    out.push_str("critical chain (each service waits for the one above it):\n");
    for (depth, s) in b.critical_chain().iter().enumerate() {
        out.push_str(&format!(
            "  {}{} ready @{} (took {} once its dependencies were ready)\n",
            if depth == 0 { "" } else { "└─ " },
            s.name,
            render::ms(s.ready_at),
            render::ms(s.ready_at.saturating_sub(s.started_at))
        ));
    }
    out.trim_end().to_owned()
}

/// Start the supervisor in the background and relay its output until it reports readiness.
async fn detach(env: &Env, args: &UpArgs) -> anyhow::Result<u8> {
    std::fs::create_dir_all(&env.state_dir)?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(env.state_dir.join("supervisor.log"))?;
    let file = std::path::absolute(&env.file)?;
    let mut cmd = tokio::process::Command::new(std::env::current_exe()?);
    cmd.arg("--file")
        .arg(&file)
        .arg("--state-dir")
        .arg(&env.state_dir)
        .args(["up", "--detach", "--supervise", "--ports"])
        .arg(
            clap::ValueEnum::to_possible_value(&args.ports)
                .expect("no skipped variants")
                .get_name(),
        )
        .args(
            args.runtime
                .map(|r| ["--runtime".to_owned(), r.as_str().to_owned()])
                .into_iter()
                .flatten(),
        )
        .args(args.faults.then_some("--faults"))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::from(log));
    if env.style.color {
        cmd.env(FORCE_COLOR_ENV, "1");
    } else {
        cmd.arg("--no-color");
    }
    let mut child = cmd.spawn()?;
    let mut lines = tokio::io::BufReader::new(child.stdout.take().expect("piped")).lines();
    let cancel = crate::shutdown::on_signals();
    loop {
        tokio::select! {
            line = lines.next_line() => match line? {
                Some(l) if l == READY => return Ok(exit::OK),
                Some(l) if l == FAILED => break,
                Some(l) => render::line(l),
                None => {
                    eprintln!("lab: the supervisor exited before the lab was up; see {}", env.state_dir.join("supervisor.log").display());
                    break;
                }
            },
            _ = cancel.cancelled(), if !cancel.is_cancelled() => {
                // Ctrl-C while starting: ask the supervisor to stop what it started, keep relaying.
                if let Some(pid) = child.id() {
                    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGTERM);
                }
            }
        }
    }
    let _ = child.wait().await;
    Ok(exit::FAILED)
}
