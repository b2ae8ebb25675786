//! What `Lab::up` reports: why it failed ([`UpError`]), or when each service and instance was
//! started and became healthy ([`Breakdown`], the startup breakdown `lab up` prints).

use std::path::PathBuf;
use std::time::Duration;

/// Why `up` failed. Everything it had started is stopped again before this is returned.
#[derive(Debug, thiserror::Error)]
pub enum UpError {
    #[error("{instance} did not become healthy within {deadline:?}: {reason}")]
    NotHealthy {
        instance: String,
        deadline: Duration,
        reason: String,
        log: PathBuf,
    },
    #[error("{instance} exited before it became healthy ({status})")]
    ExitedEarly {
        instance: String,
        status: String,
        log: PathBuf,
    },
    #[error("{instance} could not be started: {error}")]
    Spawn {
        instance: String,
        error: String,
        log: PathBuf,
    },
    #[error("interrupted while starting")]
    Interrupted,
    #[error("cannot probe {service}: {reason}")]
    Probe { service: String, reason: String },
    #[error("{0}")]
    Engine(String),
    #[error("cannot write lab state under {dir}: {source}")]
    State {
        dir: PathBuf,
        source: std::io::Error,
    },
}

impl UpError {
    /// The log file of the instance that failed, if one did.
    pub fn log(&self) -> Option<&PathBuf> {
        match self {
            UpError::NotHealthy { log, .. }
            | UpError::ExitedEarly { log, .. }
            | UpError::Spawn { log, .. } => Some(log),
            _ => None,
        }
    }
}

/// When each instance was spawned and became healthy, relative to the start of `up`.
#[derive(Debug, Clone)]
pub struct InstanceTiming {
    pub instance: String,
    pub service: String,
    /// When the spawn began.
    pub spawn_at: Duration,
    /// How long the spawn call itself took.
    pub spawn_took: Duration,
    /// When the first health probe succeeded.
    pub healthy_at: Duration,
}

/// When each service started and became ready (all instances healthy).
#[derive(Debug, Clone)]
pub struct ServiceTiming {
    pub name: String,
    pub depends_on: Vec<String>,
    pub started_at: Duration,
    pub ready_at: Duration,
}

/// The startup breakdown `lab up` prints.
#[derive(Debug, Clone, Default)]
pub struct Breakdown {
    pub total: Duration,
    pub instances: Vec<InstanceTiming>,
    pub services: Vec<ServiceTiming>,
}

impl Breakdown {
    /// The chain of services that decided the total: from the last service ready, back through
    /// the dependency that was ready last, to a service with no dependencies (first element).
    pub fn critical_chain(&self) -> Vec<&ServiceTiming> {
        let find = |n: &str| self.services.iter().find(|s| s.name == n);
        let mut chain = Vec::new();
        let mut cur = self.services.iter().max_by_key(|s| s.ready_at);
        while let Some(s) = cur {
            chain.push(s);
            cur = s
                .depends_on
                .iter()
                .filter_map(|d| find(d))
                .max_by_key(|d| d.ready_at);
        }
        chain.reverse();
        chain
    }
}
