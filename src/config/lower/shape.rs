//! What lowering is for and what it gives: the [`Shape`], its options, what the machine
//! answered ([`Machine`]), and the result ([`Lowered`]) with the files to write.

use std::collections::HashMap;
use std::path::PathBuf;

use lab_supervisor::Plan;

use super::ports::{self, PortMode};
use crate::config::model::RuntimeKind;

/// What the lab is lowered for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// Local processes (the default runtime).
    Processes,
    /// Containers run by the docker runtime, on the lab's network, each instance on its own
    /// port (consumer #N pinned to producer #N, as with processes), state bind-mounted.
    Docker,
    /// A Compose file: instances by name on the default network, replicas of a service on its
    /// first port behind its name (`TARGET=recipe-api:4000`, the book's shape), nothing of
    /// this machine's `.lab/` mounted.
    Compose,
    /// Kubernetes: one Deployment per service behind a Service of its name.
    Kubernetes,
}

impl Shape {
    /// The shape `lab up` runs for `runtime`.
    pub fn of(runtime: RuntimeKind) -> Self {
        match runtime {
            RuntimeKind::Process => Self::Processes,
            RuntimeKind::Docker => Self::Docker,
        }
    }
    /// Runs on this machine, with `.lab/` (logs, state, certificates) at hand.
    pub fn local(self) -> bool {
        matches!(self, Self::Processes | Self::Docker)
    }
}

pub struct LowerOptions {
    pub ports: PortMode,
    pub state_dir: PathBuf,
    /// The `lab` binary that runs built-in services (`lab serve NAME`).
    pub exe: PathBuf,
    pub shape: Shape,
    /// With `PortMode::Ephemeral`: keep the hub's StatsD on its configured port when that is
    /// free (the book's consumer-http-metrics.js sends to localhost:8125 whatever STATSD says).
    pub keep_statsd: bool,
}

impl LowerOptions {
    /// What `lab export` lowers with: the ports as written, nothing of this machine.
    pub fn export(shape: Shape) -> Self {
        Self {
            ports: PortMode::Declared,
            state_dir: PathBuf::from(".lab"),
            exe: PathBuf::from("lab"),
            shape,
            keep_statsd: false,
        }
    }
}

/// What lowering asked the machine, answered by [`prepare`].
pub struct Machine {
    pub ports: ports::Resolved,
    pub tls: Option<Tls>,
    /// The `haproxy` program, when the proxy's engine is HAProxy.
    pub haproxy: Option<PathBuf>,
}

/// The lab CA and the certificates issued for it (by service name; the proxy's under
/// [`PROXY_SERVICE`]).
pub struct Tls {
    pub ca: PathBuf,
    pub certs: HashMap<String, crate::tls::Issued>,
    /// The proxy's certificate and key in one PEM, as HAProxy reads it.
    pub proxy_pem: Option<Vec<u8>>,
}

/// A file lowering wants under the state folder before anything starts.
#[derive(Debug, Clone)]
pub struct FileToWrite {
    pub path: PathBuf,
    pub contents: Vec<u8>,
}

/// The lowered lab.
pub struct Lowered {
    pub plan: Plan,
    /// The hub's config as the lab's commands reach it (host addresses), if the lab has one.
    pub hub: Option<lab_hub::HubConfig>,
    /// The proxy's config as run on this machine, if the lab has one.
    pub proxy: Option<lab_proxy::config::ProxyConfig>,
    /// The fault edges' config, if the lab has them.
    pub edges: Option<lab_edges::EdgesConfig>,
    pub files: Vec<FileToWrite>,
    /// For the user: ports shifted by `--ports auto`, …
    pub notes: Vec<String>,
}

impl Lowered {
    /// Write [`Self::files`] (creating their folders).
    pub fn write_files(&self) -> std::io::Result<()> {
        for f in &self.files {
            if let Some(dir) = f.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(&f.path, &f.contents).map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot write {}: {e}", f.path.display()))
            })?;
        }
        Ok(())
    }
}

/// The plan entry of a part the lab runs itself (`lab serve hub|edges …`): one instance, ready
/// when `GET /health` on `host:port` (an address to connect to) answers.
pub fn builtin_service(
    name: &str,
    program: PathBuf,
    args: Vec<String>,
    cwd: PathBuf,
    (host, port): (&str, u16),
    policy: lab_supervisor::RestartPolicy,
    stop_grace: std::time::Duration,
) -> lab_supervisor::ServiceSpec {
    lab_supervisor::ServiceSpec {
        name: name.to_owned(),
        depends_on: Vec::new(),
        instances: vec![lab_supervisor::InstanceSpec {
            service: name.to_owned(),
            index: 1,
            program,
            args,
            cwd,
            env: vec![("LAB_SERVICE".to_owned(), name.to_owned())],
            host: host.to_owned(),
            port,
            container: None,
        }],
        health: lab_supervisor::HealthSpec {
            check: lab_supervisor::HealthCheck::Http {
                path: "/health".into(),
            },
            ..Default::default()
        },
        restart: lab_supervisor::RestartSpec {
            policy,
            backoff: lab_supervisor::Backoff::default(),
        },
        stop_grace,
    }
}
