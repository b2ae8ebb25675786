//! Stopping a lab from its recorded state: what `lab down` does, from any process, whether the
//! supervisor is alive (asked to stop in order) or was killed with SIGKILL (its instances are
//! stopped here, in reverse start order).

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

use crate::procfs::{self, ProcId};
use crate::runtime::process;
use crate::state::State;
use crate::supervisor::LAB_STATE_DIR_ENV;

/// What `down` did.
#[derive(Debug, Default)]
pub struct DownReport {
    /// False if there was no recorded lab.
    pub found: bool,
    pub name: String,
    /// The supervisor was alive and stopped the lab itself.
    pub supervisor_stopped: bool,
    /// Instances stopped here (supervisor gone), with whether SIGKILL was needed.
    pub stopped_here: Vec<(String, bool)>,
    /// Processes that carried this lab's marker but were never recorded (killed).
    pub strays: Vec<u32>,
    /// `host:port`s still bound afterwards (should be empty).
    pub still_bound: Vec<String>,
    /// Docker objects removed by label (docker runtime).
    pub swept: Option<crate::runtime::docker::Swept>,
    /// Why the Docker objects could not be removed (the engine did not answer).
    pub docker_error: Option<String>,
}

/// Remove every Docker object labelled as `lab`'s (named volumes too with `volumes`); what
/// `down` does for a docker lab, and what the CLI calls when no state was recorded.
pub async fn sweep_docker(
    lab: &crate::plan::DockerSpec,
    volumes: bool,
) -> Result<crate::runtime::docker::Swept, String> {
    let engine = crate::runtime::docker::Engine::connect().await?;
    engine.sweep(lab, volumes).await
}

/// Stop the lab recorded under `state_dir`. `grace` is per instance, between SIGTERM and
/// SIGKILL. A docker lab's containers are stopped in reverse order, then everything carrying
/// its labels is removed (named volumes too with `volumes`).
pub async fn down(state_dir: &Path, grace: Duration, volumes: bool) -> std::io::Result<DownReport> {
    let Some(state) = State::load(state_dir)? else {
        let strays = kill_strays(state_dir).await;
        return Ok(DownReport {
            strays,
            ..Default::default()
        });
    };
    let mut report = DownReport {
        found: true,
        name: state.name.clone(),
        ..Default::default()
    };
    let me = std::process::id();

    if state.supervisor.pid != me && state.supervisor_alive() {
        // The supervisor stops everything in reverse order and removes the state file.
        let _ = kill(Pid::from_raw(state.supervisor.pid as i32), Signal::SIGTERM);
        let budget = grace * (state.instances.len() as u32 + 1) + Duration::from_secs(2);
        if wait_gone(state.supervisor, budget).await {
            report.supervisor_stopped = true;
        } else {
            tracing::warn!(
                pid = state.supervisor.pid,
                "supervisor did not stop in time; killing it"
            );
            let _ = kill(Pid::from_raw(state.supervisor.pid as i32), Signal::SIGKILL);
            wait_gone(state.supervisor, Duration::from_secs(2)).await;
        }
    }

    // Whatever is still recorded and alive is stopped here, services in reverse start order.
    let rank = |svc: &str| {
        state
            .order
            .iter()
            .position(|s| s == svc)
            .unwrap_or(usize::MAX)
    };
    let mut records = state.instances.clone();
    records.sort_by_key(|r| std::cmp::Reverse(rank(&r.service)));
    if let Some(lab) = &state.docker {
        match crate::runtime::docker::Engine::connect().await {
            Ok(engine) => {
                for r in &records {
                    if let Some(id) = &r.container
                        && let Some(forced) = engine.stop(id, grace).await
                    {
                        report.stopped_here.push((r.id(), forced));
                    }
                }
                match engine.sweep(lab, volumes).await {
                    Ok(s) => report.swept = Some(s),
                    Err(e) => report.docker_error = Some(e),
                }
            }
            Err(e) => report.docker_error = Some(e),
        }
    }
    for r in &records {
        let Some(p) = r.process else { continue };
        if p.is_alive() || !procfs::group_members(p.pid).is_empty() {
            let forced = process::terminate_foreign(p, grace).await;
            report.stopped_here.push((r.id(), forced));
        }
    }
    report.strays = kill_strays(state_dir).await;

    for r in &state.instances {
        let host = r.address.rsplit_once(':').map_or("127.0.0.1", |(h, _)| h);
        if !crate::ports::is_released(host, r.port) {
            report.still_bound.push(r.address.clone());
        }
    }
    // Kept when the engine did not answer, so that a later `lab down` can still remove them.
    if report.docker_error.is_none() {
        State::remove(state_dir)?;
        // Pauses ended with their processes (stopping sends SIGCONT, or thaws the container).
        crate::faults::remove(state_dir);
    }
    Ok(report)
}

/// Kill processes marked with this lab's state dir that no record names (an instance spawned
/// in the instant before a SIGKILL hit the supervisor, before its pid was written).
async fn kill_strays(state_dir: &Path) -> Vec<u32> {
    let dir = state_dir
        .canonicalize()
        .unwrap_or_else(|_| state_dir.to_path_buf());
    let mut killed = Vec::new();
    for pid in procfs::processes_with_env(LAB_STATE_DIR_ENV, &dir.display().to_string()) {
        if let Some(p) = ProcId::of(pid) {
            process::terminate_foreign(p, Duration::from_secs(2)).await;
            killed.push(pid);
        }
    }
    killed
}

/// Poll until the process is gone or `budget` passes; true if it is gone.
async fn wait_gone(p: ProcId, budget: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + budget;
    while p.is_alive() {
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    true
}
