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
    /// Set when the lab runs as containers (the `docker` runtime): the lab-wide objects.
    pub docker: Option<DockerSpec>,
    /// `[faults.NAME]`: faults to inject once the lab is up.
    pub faults: Vec<Scheduled>,
    /// The hub's log input (Logstash JSON over UDP), for the scheduled faults' documents.
    pub hub_logs: Option<String>,
}

/// What a lab on the docker runtime shares: one bridge network (service names resolve on it)
/// and named volumes. Everything created carries the labels of [`DockerSpec::labels`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DockerSpec {
    /// `lab.project`: the lab's name.
    pub project: String,
    /// `lab.dir`: the lab's state dir, so that two checkouts of a lab with the same name never
    /// remove each other's containers.
    pub dir: String,
    /// What the lab's objects are named after (`PREFIX-recipe-api-1`, `PREFIX_default`).
    pub prefix: String,
    pub network: String,
    /// Named volumes (data that survives `down`/`up`; `lab down --volumes` removes them).
    pub volumes: Vec<String>,
}

/// Label keys on every Docker object a lab creates.
pub mod labels {
    pub const PROJECT: &str = "lab.project";
    pub const DIR: &str = "lab.dir";
    pub const SERVICE: &str = "lab.service";
    pub const INSTANCE: &str = "lab.instance";
}

impl DockerSpec {
    /// The labels every object of this lab carries.
    pub fn labels(&self) -> Vec<(String, String)> {
        vec![
            (labels::PROJECT.into(), self.project.clone()),
            (labels::DIR.into(), self.dir.clone()),
        ]
    }
}

/// How one instance runs as a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContainerSpec {
    /// `{project}-{service}-{index}`.
    pub name: String,
    pub image: String,
    /// Arguments after the image's entry point (`None`: the image's own `CMD`).
    pub cmd: Option<Vec<String>>,
    /// The container's environment (addresses by service name, `HOST=0.0.0.0`).
    pub env: Vec<(String, String)>,
    /// Names this container answers to on the lab's network.
    pub aliases: Vec<String>,
    /// Published on the host, always on 127.0.0.1.
    pub ports: Vec<PublishedPort>,
    pub mounts: Vec<MountSpec>,
    /// A Docker healthcheck (`["CMD", …]`), run by the engine beside the supervisor's probe.
    pub healthcheck: Option<Vec<String>>,
    /// Removed by the engine as soon as it stops (`docker run --rm`).
    pub auto_remove: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPort {
    /// 0: a free port the engine picks ([`crate::runtime::docker::Engine::host_port`] reads it).
    pub host: u16,
    pub container: u16,
    pub udp: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountSpec {
    /// A host path (read-only).
    Bind { source: PathBuf, target: String },
    /// A named volume of the lab.
    Volume { name: String, target: String },
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
        state_file(&self.state_dir)
    }
}

/// `.lab/state.json`: what `lab down` and `lab status` read (see [`crate::state`]).
pub fn state_file(state_dir: &std::path::Path) -> PathBuf {
    state_dir.join("state.json")
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
    /// Set on the docker runtime: the instance runs as this container instead of `program`
    /// (`host:port` is then its published address, which the supervisor probes).
    pub container: Option<ContainerSpec>,
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

/// A fault to inject into one instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// SIGKILL (the supervisor restarts it as after any crash).
    Kill,
    /// SIGSTOP / `docker pause`, for a while or until cleared.
    Pause { lasting: Option<Duration> },
    /// SIGTERM / `docker stop`, then started again at once.
    Restart,
    /// `docker network disconnect` from the lab's network (docker runtime; on the process
    /// runtime a partition is an edge fault), for a while or until cleared.
    Partition { lasting: Option<Duration> },
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Kill => "kill",
            Action::Pause { .. } => "pause",
            Action::Restart => "restart",
            Action::Partition { .. } => "partition",
        }
    }

    /// What lasts until cleared (or its time is up), and so is recorded as in effect.
    pub fn lasting(self) -> Option<Option<Duration>> {
        match self {
            Action::Pause { lasting } | Action::Partition { lasting } => Some(lasting),
            Action::Kill | Action::Restart => None,
        }
    }
}

/// One fault of the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduled {
    /// `slow-recipes` (`[faults.slow-recipes]`).
    pub name: String,
    /// `SERVICE` or `SERVICE#N`.
    pub target: String,
    /// After the lab is up.
    pub after: Duration,
    pub what: What,
}

/// What a scheduled fault does.
#[derive(Debug, Clone, PartialEq)]
pub enum What {
    /// Kill, pause, restart, or (docker runtime) partition each instance of the target.
    Process(Action),
    /// A fault on the edges into the target (the edges apply it).
    Edge {
        fault: lab_edges::EdgeFault,
        lasting: Option<Duration>,
    },
}
