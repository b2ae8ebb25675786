//! What to run: the lowered, validated form of `lab.toml`. Nothing here is optional or
//! unresolved: ports are concrete, `TARGET`s are addresses, services are in start order.

use std::path::PathBuf;
use std::time::Duration;

/// A whole lab.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The lab's name (`lab.project`); shown in status and used to label resources.
    pub name: String,
    /// Where state and logs live (`.lab/` beside lab.toml unless told otherwise).
    pub state_dir: PathBuf,
    /// The config file this plan came from, recorded in the state for later commands.
    pub config_path: PathBuf,
    /// Services in a valid start order (every service after its dependencies).
    pub services: Vec<ServiceSpec>,
}

impl Plan {
    pub fn service(&self, name: &str) -> Option<&ServiceSpec> {
        self.services.iter().find(|s| s.name == name)
    }
    pub fn instances(&self) -> impl Iterator<Item = &InstanceSpec> {
        self.services.iter().flat_map(|s| s.instances.iter())
    }
    pub fn logs_dir(&self) -> PathBuf {
        self.state_dir.join("logs")
    }
    pub fn state_file(&self) -> PathBuf {
        crate::state::state_file(&self.state_dir)
    }
}

/// One service and its replicas.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    pub name: String,
    pub depends_on: Vec<String>,
    pub instances: Vec<InstanceSpec>,
    pub health: HealthSpec,
    pub restart: RestartSpec,
    /// How long a stopping instance gets between SIGTERM and SIGKILL.
    pub stop_grace: Duration,
}

/// One process to run.
#[derive(Debug, Clone)]
pub struct InstanceSpec {
    pub service: String,
    /// 1-based replica number.
    pub index: usize,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Variables set on top of the inherited environment (HOST, PORT, TARGET, LAB_ENV, ... and the user's).
    pub env: Vec<(String, String)>,
    pub host: String,
    pub port: u16,
}

impl InstanceSpec {
    /// `recipe-api#1`.
    pub fn id(&self) -> String {
        format!("{}#{}", self.service, self.index)
    }
    /// `127.0.0.1:4000`.
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
    /// File name of this instance's log under `logs/`.
    pub fn log_file_name(&self) -> String {
        crate::logs::log_file_name(&self.service, self.index)
    }
}

/// How readiness and liveness are probed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum HealthCheck {
    /// `GET path` must answer 2xx.
    Http { path: String },
    /// `GET path` over TLS, trusting only the CA in `ca`, must answer 2xx.
    Https { path: String, ca: PathBuf },
    /// A TCP connect must succeed.
    Tcp,
    /// Healthy as soon as spawned.
    None,
}

#[derive(Debug, Clone)]
pub struct HealthSpec {
    pub check: HealthCheck,
    /// Probe period while starting.
    pub start_interval: Duration,
    /// Probe period once healthy.
    pub interval: Duration,
    /// One probe's time limit.
    pub timeout: Duration,
    /// How long a starting instance may take to become healthy.
    pub deadline: Duration,
}

impl Default for HealthSpec {
    fn default() -> Self {
        Self {
            check: HealthCheck::Http {
                path: "/health".into(),
            },
            start_interval: Duration::from_millis(5),
            interval: Duration::from_secs(2),
            timeout: Duration::from_secs(1),
            deadline: Duration::from_secs(30),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartPolicy {
    Always,
    OnFailure,
    Never,
}

impl RestartPolicy {
    /// Whether an instance that exited with `success` is started again.
    pub fn restarts(self, success: bool) -> bool {
        match self {
            RestartPolicy::Always => true,
            RestartPolicy::OnFailure => !success,
            RestartPolicy::Never => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct RestartSpec {
    pub policy: RestartPolicy,
    pub backoff: Backoff,
}

/// Capped exponential backoff, reset after a healthy stretch (pm2's defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub factor: f64,
    pub max: Duration,
    /// An instance that had been healthy this long when it exited starts over at `initial`.
    pub reset_after: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            factor: 1.5,
            max: Duration::from_secs(15),
            reset_after: Duration::from_secs(30),
        }
    }
}
