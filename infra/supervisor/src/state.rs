//! `.lab/state.json`: what a running lab is made of, so that `lab status`, `lab logs` and
//! `lab down` work from another process, and after the supervisor was killed with SIGKILL.
//!
//! The supervisor is the only writer while it lives; every write replaces the file atomically.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};

use crate::procfs::ProcId;

pub const STATE_VERSION: u32 = 1;

pub use crate::plan::state_file;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub version: u32,
    pub name: String,
    pub config: PathBuf,
    /// The process supervising the lab (`lab up`, or its detached daemon).
    pub supervisor: ProcId,
    pub phase: Phase,
    /// Service names in start order; `down` stops them in reverse.
    pub order: Vec<String>,
    pub instances: Vec<InstanceRecord>,
    /// Set for a lab on the docker runtime: `down` removes its objects by label from this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<crate::plan::DockerSpec>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Starting,
    Up,
    Stopping,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
    Exited,
    Stopped,
}

impl Health {
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Starting => "starting",
            Health::Healthy => "healthy",
            Health::Unhealthy => "unhealthy",
            Health::Exited => "exited",
            Health::Stopped => "stopped",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InstanceRecord {
    pub service: String,
    pub instance: usize,
    pub address: String,
    pub port: u16,
    /// The current process (also its process group id); `None` between a crash and its restart.
    pub process: Option<ProcId>,
    /// The current container's id (docker runtime); `process` is then `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    pub health: Health,
    /// How `lab status` probes it.
    pub health_check: crate::plan::HealthCheck,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub log: PathBuf,
}

impl InstanceRecord {
    pub fn id(&self) -> String {
        format!("{}#{}", self.service, self.instance)
    }
}

impl State {
    /// Read the state of the lab whose state lives in `state_dir`; `Ok(None)` if none is recorded.
    pub fn load(state_dir: &Path) -> std::io::Result<Option<State>> {
        let path = state_file(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write atomically (temp file + rename), so a reader never sees half a file.
    pub fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(state_dir)?;
        let path = state_file(state_dir);
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)
    }

    pub fn remove(state_dir: &Path) -> std::io::Result<()> {
        match std::fs::remove_file(state_file(state_dir)) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    pub fn supervisor_alive(&self) -> bool {
        self.supervisor.is_alive()
    }
}

/// The supervisor's shared, persisted copy of the state.
#[derive(Clone)]
pub struct StateStore {
    dir: PathBuf,
    state: Arc<Mutex<State>>,
}

impl StateStore {
    pub fn create(dir: PathBuf, state: State) -> std::io::Result<Self> {
        state.save(&dir)?;
        Ok(Self {
            dir,
            state: Arc::new(Mutex::new(state)),
        })
    }

    /// The lab's state folder (`.lab/`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Change the state and persist it. A failed write is logged, not fatal: the lab keeps running.
    pub fn update(&self, f: impl FnOnce(&mut State)) {
        let mut s = self.state.lock().expect("state lock");
        f(&mut s);
        if let Err(e) = s.save(&self.dir) {
            tracing::warn!(error = %e, dir = %self.dir.display(), "cannot write lab state");
        }
    }

    /// Change one instance's record and persist.
    pub fn update_instance(
        &self,
        service: &str,
        index: usize,
        f: impl FnOnce(&mut InstanceRecord),
    ) {
        self.update(|s| {
            if let Some(r) = s
                .instances
                .iter_mut()
                .find(|r| r.service == service && r.instance == index)
            {
                f(r);
            }
        });
    }

    pub fn snapshot(&self) -> State {
        self.state.lock().expect("state lock").clone()
    }

    pub fn remove(&self) -> std::io::Result<()> {
        State::remove(&self.dir)
    }
}
