//! Runtimes that run instances: local [`process`]es, or [`docker`] containers. The supervisor
//! drives both through [`Running`], so health gating, restarts with backoff, events and state
//! are one piece of code whatever runs the instance.

pub mod docker;
pub mod process;

use std::path::Path;
use std::time::Duration;

use crate::plan::{DockerSpec, HealthSpec, InstanceSpec};
use crate::procfs::ProcId;

/// Where an instance runs.
#[derive(Clone)]
pub enum Runtime {
    Process,
    Docker(std::sync::Arc<DockerRuntime>),
}

/// The engine and the lab-wide objects of a docker lab.
pub struct DockerRuntime {
    pub engine: docker::Engine,
    pub lab: DockerSpec,
}

/// A started instance.
pub enum Running {
    Process {
        child: tokio::process::Child,
        me: ProcId,
    },
    Container {
        engine: docker::Engine,
        container: docker::Container,
    },
}

/// How an instance ended: whether it counts as success, and how to say it.
pub struct Exit {
    pub success: bool,
    pub text: String,
}

impl Runtime {
    /// The docker runtime's engine.
    pub fn engine(&self) -> Option<docker::Engine> {
        match self {
            Runtime::Process => None,
            Runtime::Docker(d) => Some(d.engine.clone()),
        }
    }

    /// Start `spec`, its output appended to `log`.
    pub async fn spawn(
        &self,
        spec: &InstanceSpec,
        health: &HealthSpec,
        grace: Duration,
        log: &Path,
    ) -> Result<Running, String> {
        match (self, &spec.container) {
            (Runtime::Docker(d), Some(c)) => d
                .engine
                .run(&d.lab, spec, c, health, grace, log)
                .await
                .map(|container| Running::Container {
                    engine: d.engine.clone(),
                    container,
                }),
            _ => {
                let child = process::spawn(spec, log).map_err(|e| e.to_string())?;
                let pid = child.id().unwrap_or(0);
                // Not yet waited for, so /proc still shows it.
                let me = ProcId::of(pid).unwrap_or(ProcId { pid, start_time: 0 });
                Ok(Running::Process { child, me })
            }
        }
    }
}

impl Running {
    /// The pid the host sees (a container's main process).
    pub fn pid(&self) -> u32 {
        match self {
            Running::Process { me, .. } => me.pid,
            Running::Container { container, .. } => container.pid,
        }
    }
    /// Where a probe of `check` reaches this instance. A TCP check of a container goes to its
    /// own address: the engine's proxy on the published port accepts connections before the
    /// program inside listens, so a connect there proves nothing.
    pub fn probe_target(
        &self,
        spec: &InstanceSpec,
        check: &crate::plan::HealthCheck,
    ) -> (String, u16) {
        match (self, check, &spec.container) {
            (Running::Container { container, .. }, crate::plan::HealthCheck::Tcp, Some(c)) => {
                match (&container.ip, c.ports.first()) {
                    (Some(ip), Some(p)) => (ip.clone(), p.container),
                    _ => (spec.host.clone(), spec.port),
                }
            }
            _ => (spec.host.clone(), spec.port),
        }
    }

    /// The process group to record (processes only).
    pub fn process(&self) -> Option<ProcId> {
        match self {
            Running::Process { me, .. } => Some(*me),
            Running::Container { .. } => None,
        }
    }
    /// The container id to record (containers only).
    pub fn container(&self) -> Option<String> {
        match self {
            Running::Process { .. } => None,
            Running::Container { container, .. } => Some(container.id.clone()),
        }
    }

    /// Wait until it ends by itself.
    pub async fn wait(&mut self) -> Exit {
        match self {
            Running::Process { child, .. } => match child.wait().await {
                Ok(s) => Exit {
                    success: s.success(),
                    text: process::describe_exit(s),
                },
                Err(e) => Exit {
                    success: false,
                    text: format!("wait failed: {e}"),
                },
            },
            Running::Container { engine, container } => {
                let (success, text) = engine.wait(&container.id).await;
                Exit { success, text }
            }
        }
    }

    /// Clean up after it ended by itself: kill what is left of the group, or take the
    /// container's last output and remove it.
    pub async fn reap(&mut self) {
        match self {
            Running::Process { me, .. } => process::reap_group(*me),
            Running::Container { engine, container } => {
                container.flush_logs().await;
                if let Err(e) = engine.remove(&container.id).await {
                    tracing::warn!(error = %e, "cannot remove an exited container");
                }
            }
        }
    }

    /// Stop it: SIGTERM, `grace`, SIGKILL; the container is removed. Whether SIGKILL was needed.
    pub async fn terminate(&mut self, grace: Duration) -> bool {
        match self {
            Running::Process { child, me } => process::terminate(child, *me, grace).await,
            Running::Container { engine, container } => {
                let forced = engine.stop(&container.id, grace).await.unwrap_or(false);
                container.flush_logs().await;
                if let Err(e) = engine.remove(&container.id).await {
                    tracing::warn!(error = %e, "cannot remove a stopped container");
                }
                forced
            }
        }
    }
}
