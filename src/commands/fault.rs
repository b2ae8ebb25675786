//! `lab fault`: kill, pause or restart an instance of the running lab on purpose, list the
//! faults in effect, clear them (issue 18; the mechanics are `lab_supervisor::faults`).

use std::time::{Duration, Instant};

use lab_supervisor::faults::{self, Action, Faults};
use lab_supervisor::runtime::docker::Engine;
use lab_supervisor::state::{Health, InstanceRecord, State};

use lab_edges::{Direction, EdgeFault, EdgeKind, PartitionMode};

use crate::cli::{EdgeOptions, FaultCommand, FaultDirection, PartitionModeArg};
use crate::config::diagnostic::did_you_mean;
use crate::config::model::EDGES_SERVICE;
use crate::error::{Usage, exit};
use crate::render;

use super::env::Env;
use super::running::{connect, faults_table, running_config};

pub async fn run(env: &Env, cmd: FaultCommand) -> anyhow::Result<u8> {
    let dir = &env.state_dir;
    let state = State::load(dir)?;
    match cmd {
        FaultCommand::List { json } => {
            let faults = Faults::load(dir)?;
            if json {
                render::line(serde_json::to_string_pretty(&faults.active)?);
            } else if faults.active.is_empty() {
                render::line("no fault in effect");
            } else {
                render::line(faults_table(&faults.active, &env.style));
            }
            Ok(exit::OK)
        }
        FaultCommand::Clear { which } => {
            let faults = Faults::load(dir)?;
            if which != "all" && !faults.active.iter().any(|f| f.id == which) {
                let ids: Vec<&str> = faults.active.iter().map(|f| f.id.as_str()).collect();
                return Err(Usage::lab(if ids.is_empty() {
                    format!("no fault {which}: none is in effect (`lab fault list`)")
                } else {
                    format!(
                        "no fault {which}: in effect are {}, or say `all`",
                        ids.join(", ")
                    )
                }));
            }
            let engine = engine_of(state.as_ref()).await;
            let gone = faults::clear(dir, engine.as_ref(), "cleared", |f| {
                which == "all" || f.id == which
            })
            .await?;
            if gone.is_empty() {
                render::line("no fault in effect");
            }
            if let Some(edges) = lab_edges::EdgesConfig::of_lab(dir)
                && gone.iter().any(|f| f.edge.is_some())
            {
                let ended: Vec<&str> = gone.iter().map(|f| f.id.as_str()).collect();
                if !edges_agree(&edges.control, |ids| {
                    !ids.iter().any(|i| ended.contains(&i.as_str()))
                }) {
                    render::line(format!(
                        "{} the edges did not confirm the end within 2 s: `lab status`, `lab logs edges`",
                        env.style.yellow(render::WARN)
                    ));
                }
            }
            for f in gone {
                render::line(format!("{}  {} {}: ended", f.id, f.kind, f.instance));
            }
            Ok(exit::OK)
        }
        FaultCommand::Kill(t) => inject(env, state, &t.target, Action::Kill).await,
        FaultCommand::Pause { target, lasting } => {
            inject(env, state, &target.target, Action::Pause { lasting }).await
        }
        FaultCommand::Restart(t) => inject(env, state, &t.target, Action::Restart).await,
        FaultCommand::Partition {
            target,
            mode,
            lasting,
        } => partition(env, state, &target.target, mode, lasting).await,
        other => {
            let (target, kind, opts) = edge_fault(other);
            inject_edge(env, state, &target, kind, &opts)
        }
    }
}

/// An edge fault's command as (target, kind, options).
fn edge_fault(cmd: FaultCommand) -> (String, EdgeKind, EdgeOptions) {
    let ms = |d: Duration| d.as_millis() as u64;
    let (t, kind, o) = match cmd {
        FaultCommand::Latency {
            target,
            delay,
            jitter,
            edge,
        } => (
            target,
            EdgeKind::Latency {
                ms: ms(delay),
                jitter_ms: jitter.map_or(0, ms),
            },
            edge,
        ),
        FaultCommand::Bandwidth {
            target,
            kb_per_s,
            edge,
        } => (target, EdgeKind::Bandwidth { kb_per_s }, edge),
        FaultCommand::Timeout(a) => (a.target, EdgeKind::Timeout, a.edge),
        FaultCommand::Reset(a) => (a.target, EdgeKind::Reset, a.edge),
        FaultCommand::SlowClose(a) => (a.target, EdgeKind::SlowClose { ms: ms(a.delay) }, a.edge),
        FaultCommand::LimitData {
            target,
            bytes,
            edge,
        } => (target, EdgeKind::LimitData { bytes }, edge),
        FaultCommand::Status { target, code, edge } => (target, EdgeKind::Status { code }, edge),
        FaultCommand::FailFirst {
            target,
            n,
            status,
            close,
            edge,
        } => (
            target,
            EdgeKind::FailFirst {
                n,
                code: if close {
                    lab_edges::fault::CLOSE
                } else {
                    status
                },
            },
            edge,
        ),
        FaultCommand::SlowFirstByte(a) => (
            a.target,
            EdgeKind::SlowFirstByte { ms: ms(a.delay) },
            a.edge,
        ),
        FaultCommand::AbortAfterHeaders(a) => (a.target, EdgeKind::AbortAfterHeaders, a.edge),
        FaultCommand::Kill(_)
        | FaultCommand::Pause { .. }
        | FaultCommand::Partition { .. }
        | FaultCommand::Restart(_)
        | FaultCommand::List { .. }
        | FaultCommand::Clear { .. } => unreachable!("not an edge fault"),
    };
    (t.target, kind, o)
}

/// A partition: the docker runtime's network disconnect, the process runtime's edges.
async fn partition(
    env: &Env,
    state: Option<State>,
    target: &str,
    mode: Option<PartitionModeArg>,
    lasting: Option<Duration>,
) -> anyhow::Result<u8> {
    let docker = state.as_ref().is_some_and(|s| s.docker.is_some());
    if docker {
        if mode.is_some() {
            return Err(Usage::lab(
                "on the docker runtime a partition disconnects the container from the lab's network \
                 (its name stops resolving, its address stops answering); --mode is for the process runtime's edges",
            ));
        }
        return inject(env, state, target, Action::Partition { lasting }).await;
    }
    let mode = match mode {
        Some(PartitionModeArg::Drop) => PartitionMode::Drop,
        Some(PartitionModeArg::Refuse) | None => PartitionMode::Refuse,
    };
    let opts = EdgeOptions {
        probability: 1.0,
        direction: None,
        lasting,
    };
    inject_edge(env, state, target, EdgeKind::Partition { mode }, &opts)
}

/// Record an edge fault on `target` for the edges process to apply.
fn inject_edge(
    env: &Env,
    state: Option<State>,
    target: &str,
    kind: EdgeKind,
    opts: &EdgeOptions,
) -> anyhow::Result<u8> {
    let dir = &env.state_dir;
    let state = running_lab(dir, state)?;
    let has_edges = state.instances.iter().any(|r| r.service == EDGES_SERVICE);
    let edges = lab_edges::EdgesConfig::of_lab(dir).filter(|_| has_edges).ok_or_else(|| {
        Usage::lab(
            "this lab has no fault edges, so nothing can slow or fail what passes between its services: \
             set `[faults] edges = true` in lab.toml (or run `lab up --faults`), then `lab down` and `lab up` again",
        )
    })?;
    let hits = resolve(&state, target)?;
    let on: Vec<&lab_edges::EdgeSpec> = edges
        .edges
        .iter()
        .filter(|e| hits.iter().any(|r| r.id() == e.name))
        .collect();
    if on.is_empty() {
        let consumed: Vec<&str> = {
            let mut v: Vec<&str> = edges.edges.iter().map(|e| e.service.as_str()).collect();
            v.dedup();
            v
        };
        return Err(Usage::lab(format!(
            "nothing reaches {target} through an edge (no service's TARGET or frontend names it); edges are on {}",
            consumed.join(", ")
        )));
    }
    if kind.is_http()
        && let Some(e) = on.iter().find(|e| !e.http)
    {
        return Err(Usage::lab(format!(
            "{} does not speak plain HTTP/1.1, so `{}` cannot hit its requests; latency, bandwidth, timeout, reset, slow-close and limit-data work on any edge",
            e.service,
            kind.name()
        )));
    }
    if opts.direction.is_some() && !kind.has_direction() {
        return Err(Usage::lab(format!(
            "`{}` has no direction: --direction is for latency, bandwidth, timeout, slow-close and limit-data",
            kind.name()
        )));
    }
    let fault = EdgeFault {
        kind,
        direction: match opts.direction {
            Some(FaultDirection::Upstream) => Direction::Upstream,
            Some(FaultDirection::Downstream) | None => Direction::Downstream,
        },
        probability: opts.probability,
    };
    let hub_logs = running_config(dir).map(|c| connect(&c, c.logs_port));
    let target = target.to_owned();
    let f = Faults::add_edge(dir, &target, fault.clone(), opts.lasting, hub_logs)?;
    if !edges_agree(&edges.control, |ids| ids.contains(&f.id)) {
        render::line(format!(
            "{} the edges did not confirm {} within 2 s: `lab status`, `lab logs edges`",
            env.style.yellow(render::WARN),
            f.id
        ));
    }
    render::line(format!(
        "{}  {} on {} ({} edge{}){}; `lab fault clear {}` ends it",
        f.id,
        fault.describe(),
        target,
        on.len(),
        if on.len() == 1 { "" } else { "s" },
        opts.lasting.map_or(String::new(), |d| format!(
            " for {}",
            humantime::format_duration(d)
        )),
        f.id
    ));
    Ok(exit::OK)
}

/// Poll the edges' control listener until the ids of the faults they apply satisfy `ok`
/// (they re-read the faults file every 100 ms), for up to 2 s.
fn edges_agree(control: &str, ok: impl Fn(&[String]) -> bool) -> bool {
    lab_edges::wait_for_faults(control, ok, Duration::from_secs(2))
}

/// The state of a lab whose supervisor runs (faults need it to end them).
fn running_lab(dir: &std::path::Path, state: Option<State>) -> anyhow::Result<State> {
    let Some(state) = state else {
        return Err(Usage::lab(format!(
            "no lab is running here (nothing recorded under {}): start one with `lab up --detach`",
            dir.display()
        )));
    };
    if !state.supervisor_alive() {
        return Err(Usage::lab(format!(
            "the lab's supervisor (pid {}) is gone, so nothing would restart or resume what a fault stops: `lab down`, then `lab up --detach`",
            state.supervisor.pid
        )));
    }
    Ok(state)
}

/// The docker runtime's engine, when the lab runs on it and it answers.
async fn engine_of(state: Option<&State>) -> Option<Engine> {
    state?.docker.as_ref()?;
    Engine::connect().await.ok()
}

/// The instances `target` names: `SERVICE#N` one, `SERVICE` all of it.
fn resolve<'s>(state: &'s State, target: &str) -> anyhow::Result<Vec<&'s InstanceRecord>> {
    let (service, index) = match target.split_once('#') {
        Some((s, n)) => {
            let n: usize = n.parse().map_err(|_| {
                Usage::lab(format!(
                    "{target}: an instance is SERVICE#N with N a number, as `lab status` shows"
                ))
            })?;
            (s, Some(n))
        }
        None => (target, None),
    };
    let of: Vec<&InstanceRecord> = state
        .instances
        .iter()
        .filter(|r| r.service == service)
        .collect();
    if of.is_empty() {
        let mut names: Vec<&str> = state.order.iter().map(String::as_str).collect();
        names.dedup();
        let hint = match did_you_mean(service, names.iter().copied()) {
            Some(m) => format!(" (did you mean {m}?)"),
            None => String::new(),
        };
        return Err(Usage::lab(format!(
            "the lab has no service {service}{hint}; it has {}",
            names.join(", ")
        )));
    }
    match index {
        None => Ok(of),
        Some(n) => match of.iter().find(|r| r.instance == n) {
            Some(r) => Ok(vec![r]),
            None => Err(Usage::lab(format!(
                "{service} has no instance #{n}; it has {}",
                of.iter().map(|r| r.id()).collect::<Vec<_>>().join(", ")
            ))),
        },
    }
}

async fn inject(
    env: &Env,
    state: Option<State>,
    target: &str,
    action: Action,
) -> anyhow::Result<u8> {
    let dir = &env.state_dir;
    let state = running_lab(dir, state)?;
    let hits = resolve(&state, target)?;
    let engine = engine_of(Some(&state)).await;
    if state.docker.is_some() && engine.is_none() {
        anyhow::bail!("the lab runs on docker and the engine does not answer");
    }
    let hub_logs = running_config(dir).map(|c| connect(&c, c.logs_port));
    let mut failed = 0;
    for r in hits {
        let before = r.process.map(|p| p.pid);
        let restarts = r.restarts;
        let network = state.docker.as_ref().map(|d| d.network.as_str());
        match faults::inject(dir, engine.as_ref(), network, r, action, hub_logs.clone()).await {
            Ok(done) => {
                let line = match (&done.fault, action) {
                    (Some(f), Action::Pause { lasting } | Action::Partition { lasting }) => {
                        format!(
                            "{}  {} {} ({}){}; `lab fault clear {}` ends it",
                            f.id,
                            action.name(),
                            r.id(),
                            done.how,
                            lasting.map_or(String::new(), |d| format!(
                                " for {}",
                                humantime::format_duration(d)
                            )),
                            f.id
                        )
                    }
                    _ if action == Action::Kill => format!(
                        "kill {} ({}): the supervisor restarts it as after a crash",
                        r.id(),
                        done.how
                    ),
                    _ => format!("restart {} ({})", r.id(), done.how),
                };
                render::line(line);
                if action == Action::Restart {
                    match back_healthy(dir, &r.id(), before, restarts).await {
                        Some((pid, took)) => render::line(format!(
                            "  {} is back: pid {}, healthy {:.1} s after the stop",
                            r.id(),
                            pid.map_or("-".into(), |p| p.to_string()),
                            took.as_secs_f64()
                        )),
                        None => {
                            failed += 1;
                            render::line(format!(
                                "  {} is not healthy again after 30 s: `lab status`, `lab logs {}`",
                                r.id(),
                                r.id()
                            ));
                        }
                    }
                }
            }
            Err(e) => {
                failed += 1;
                render::line(format!("lab: {e}"));
            }
        }
    }
    Ok(if failed > 0 { exit::FAILED } else { exit::OK })
}

/// Poll the lab's state until `instance` runs again (a restart counted since `restarts`) and
/// is healthy; its pid and how long that took, or `None` after 30 s.
async fn back_healthy(
    dir: &std::path::Path,
    instance: &str,
    before: Option<u32>,
    restarts: u32,
) -> Option<(Option<u32>, Duration)> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(30) {
        if let Ok(Some(s)) = State::load(dir)
            && let Some(r) = s.instances.iter().find(|r| r.id() == instance)
            && r.restarts > restarts
            && r.health == Health::Healthy
        {
            let pid = r.process.map(|p| p.pid);
            if pid != before || r.container.is_some() {
                return Some((pid, t0.elapsed()));
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}
