//! The supervisor: runs a [`Plan`] as local processes or containers and keeps it running.
//!
//! - [`plan`]: what to run (services in start order, their instances, health and restart specs).
//! - [`supervisor`]: `Lab::up` starts services in dependency order, each instance gated on its
//!   health check (polled, never slept), restarts crashed instances with capped exponential
//!   [`backoff`], and `Lab::stop` stops everything in reverse order.
//! - [`runtime`]: what runs an instance, behind [`runtime::Running`]: [`runtime::process`]
//!   (children in their own process groups; signals reach whole groups) or
//!   [`runtime::docker`] (containers through bollard on the lab's network, removed by label).
//! - [`report`]: what `up` reports: its error, or the startup breakdown.
//! - [`state`]: `.lab/state.json`, written before `up` reports success and after every (re)spawn,
//!   with pid *and* process start time so that [`down`] never signals a recycled pid.
//! - [`procfs`]: what /proc says: start times, process groups, who holds a port.
//! - [`ports`]: check ports before anything binds; pick free ones.
//! - [`health`]: one probe (HTTP GET, TCP connect, or none).
//! - [`logs`]: per-instance log files and a tailer for `lab logs -f` and `lab up`.
//! - [`events`]: what happened, for the CLI to render.
//! - [`faults`]: kill, pause and restart on purpose (`lab fault`), recorded in `.lab/faults.json`.
//! - [`schedule`]: the faults of lab.toml's `[faults.NAME]`, injected `after` the lab is up.

pub mod backoff;
pub mod down;
pub mod events;
pub mod faults;
pub mod health;
pub mod logs;
pub mod plan;
pub mod ports;
pub mod procfs;
pub mod report;
pub mod runtime;
pub mod schedule;
pub mod state;
pub mod supervisor;

pub use events::Event;
pub use plan::{
    Backoff, HealthCheck, HealthSpec, InstanceSpec, Plan, RestartPolicy, RestartSpec, ServiceSpec,
};
pub use supervisor::{Breakdown, Lab, UpError};
