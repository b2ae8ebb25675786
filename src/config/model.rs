//! The validated lab: what every command after validation sees ([`LabConfig`] and its parts),
//! and the value enums lab.toml shares with them (re-exported from [`super::raw`], so nothing
//! outside `config/` reads the raw mirror).

use std::ops::Range;
use std::path::PathBuf;
use std::time::Duration;

use lab_supervisor::{HealthSpec, RestartSpec};

pub use super::raw::{
    Builtin, FrontendMode, Protocol, ProxyEngine, RuntimeKind, Serve, TargetProtocol,
};

/// A lab.toml that passed validation.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub name: String,
    /// lab.toml, absolute.
    pub path: PathBuf,
    /// lab.toml as the user named it, for messages.
    pub display_path: String,
    /// The file's text, for diagnostics found later (taken ports at `up`).
    pub source: String,
    /// The folder holding lab.toml: relative paths resolve against it.
    pub dir: PathBuf,
    /// In a valid start order: every service after what it depends on.
    pub services: Vec<Service>,
    /// `[proxy]`, if the lab has one with at least one frontend.
    pub proxy: Option<Proxy>,
    /// `[load.NAME]` presets, by name.
    pub load: Vec<LoadPreset>,
    /// `[hub]`, if the lab has one.
    pub hub: Option<Hub>,
    /// What runs the instances (`runtime`, or `lab up --runtime`).
    pub runtime: super::raw::RuntimeKind,
    /// `[faults]`.
    pub faults: Faults,
}

/// The validated `[faults]`.
#[derive(Debug, Clone, Default)]
pub struct Faults {
    /// Fault edges on every consumer's addresses (`edges = true`, `lab up --faults`, or a
    /// `[faults.NAME]` edge fault).
    pub edges: bool,
    pub seed: u64,
    /// `[faults.NAME]`, in file order.
    pub schedule: Vec<ScheduledFault>,
}

/// One `[faults.NAME]`.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduledFault {
    pub name: String,
    /// `SERVICE` or `SERVICE#N`.
    pub target: String,
    pub kind: ScheduledKind,
    pub after: std::time::Duration,
    pub lasting: Option<std::time::Duration>,
}

/// What a scheduled fault does; lowering picks how (a partition is the edges' on the process
/// runtime, the engine's network disconnect on docker).
#[derive(Debug, Clone, PartialEq)]
pub enum ScheduledKind {
    Kill,
    Pause,
    Restart,
    Partition(lab_edges::PartitionMode),
    Edge(lab_edges::EdgeFault),
}

/// Whether something in the lab reaches `service` through an address the lab gives (a
/// service's `TARGET`, a proxy frontend's servers): where fault edges go.
pub fn consumed(services: &[Service], proxy: Option<&Proxy>, service: &str) -> bool {
    services
        .iter()
        .any(|c| matches!(&c.target, Some(Target::Service(t)) if t == service))
        || proxy
            .iter()
            .flat_map(|p| &p.frontends)
            .any(|f| f.service == service)
}

/// The name of the process that relays the fault edges.
pub const EDGES_SERVICE: &str = "edges";

/// The validated `[hub]`: the hub's settings (ports as configured; lowering picks free ones
/// for 0 and fills in the data dir) and where services send what.
#[derive(Debug, Clone)]
pub struct Hub {
    pub config: lab_hub::HubConfig,
    /// The configured listeners, for port checks at `up`.
    pub ports: Vec<HubPort>,
    /// External endpoints the services use instead of the hub (`host:port`).
    pub logstash: Option<String>,
    pub statsd: Option<String>,
    pub zipkin: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HubPort {
    pub what: HubListener,
    pub port: u16,
    pub span: Option<Range<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubListener {
    Logs,
    Statsd,
    Zipkin,
    Http,
    Carbon,
    OtlpHttp,
    OtlpGrpc,
}

impl HubListener {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Logs => "hub logs (UDP)",
            Self::Statsd => "hub StatsD (UDP)",
            Self::Zipkin => "hub Zipkin API",
            Self::Http => "hub HTTP API",
            Self::Carbon => "hub carbon (TCP)",
            Self::OtlpHttp => "hub OTLP/HTTP",
            Self::OtlpGrpc => "hub OTLP/gRPC",
        }
    }
    pub fn udp(self) -> bool {
        matches!(self, Self::Logs | Self::Statsd)
    }
}

/// The name the hub runs under (as a service of the plan, in logs and status).
pub const HUB_SERVICE: &str = "hub";

/// A validated `[load.NAME]`.
#[derive(Debug, Clone)]
pub struct LoadPreset {
    pub name: String,
    pub target: String,
    pub connections: Option<usize>,
    pub pipelining: Option<usize>,
    pub duration: Option<Duration>,
    pub amount: Option<u64>,
    pub rate: Option<f64>,
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub http2: bool,
    pub timeout: Option<Duration>,
    pub sla: Option<String>,
}

/// The validated `[proxy]` section.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub engine: super::raw::ProxyEngine,
    pub engine_span: Option<Range<usize>>,
    pub frontends: Vec<ProxyFrontend>,
}

/// One frontend; `settings` holds everything but its bind address, servers and TLS files,
/// which lowering fills in.
#[derive(Debug, Clone)]
pub struct ProxyFrontend {
    pub name: String,
    pub service: String,
    pub host: String,
    /// 0: a free port at start.
    pub port: u16,
    pub port_span: Option<Range<usize>>,
    pub tls: bool,
    pub settings: lab_proxy::config::Frontend,
}

/// The name the proxy runs under (as a service of the plan, in logs and status).
pub const PROXY_SERVICE: &str = "proxy";

impl LabConfig {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub name_span: Range<usize>,
    pub run: Run,
    /// Where `command` is written, for diagnostics about the program.
    pub command_span: Option<Range<usize>>,
    pub replicas: usize,
    pub ports: Ports,
    pub port_span: Option<Range<usize>>,
    pub host: String,
    /// The user's variables (TARGET excluded: see `target`).
    pub env: Vec<(String, String)>,
    pub target: Option<Target>,
    /// How it serves.
    pub protocol: super::raw::Protocol,
    /// How it calls `target` (`TARGET_PROTOCOL`), if set.
    pub target_protocol: Option<super::raw::TargetProtocol>,
    /// What it plays in the book's application (`role`, else its builtin, else its name when
    /// that is a role); `None`: no chapter scenario holds it to a contract.
    pub role: Option<Builtin>,
    /// Producers: what it answers on its port (`serves`, or the default for its kind), in
    /// [`Serve::ALL`] order; empty for consumers.
    pub serves: Vec<Serve>,
    /// `serves` was written in lab.toml (not a default).
    pub serves_declared: bool,
    /// Declared dependencies plus the service `TARGET` names.
    pub depends_on: Vec<String>,
    pub health: HealthSpec,
    pub restart: RestartSpec,
    pub stop_grace: Duration,
    pub environment: String,
    /// Built-in services' process model (`LAB_THREADS`, `LAB_OFFLOAD`, `LAB_WORKERS`, `LAB_RESPAWN`).
    pub process: ProcessModel,
    /// `command` services on the docker runtime: the image, and the folder it is built from.
    pub image: Option<String>,
    pub build: Option<PathBuf>,
}

/// How a built-in service runs inside its instance: threads, offload, cluster workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessModel {
    pub threads: u32,
    pub offload: bool,
    pub workers: u32,
    pub respawn: bool,
}

impl Default for ProcessModel {
    fn default() -> Self {
        Self {
            threads: 1,
            offload: false,
            workers: 1,
            respawn: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    Builtin(Builtin),
    Command { argv: Vec<String>, cwd: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// Free ports picked at start.
    Auto,
    /// One port per instance.
    Fixed(Vec<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Another service of the lab: resolved to one of its instances' address at start.
    Service(String),
    /// A literal `host:port`.
    Addr(String),
}
