//! What the supervisor reports as it works; the CLI renders these as lines.

use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Event {
    Spawned { instance: String, pid: u32, restarts: u32 },
    Healthy { instance: String, after_spawn: Duration },
    Unhealthy { instance: String, reason: String },
    Exited { instance: String, status: String, ran_for: Duration },
    Restarting { instance: String, delay: Duration, restarts: u32 },
    NotRestarting { instance: String, policy: &'static str },
    SpawnFailed { instance: String, error: String },
    Stopping { service: String },
    Stopped { instance: String, forced: bool },
}

/// Where events go. Dropped receivers are fine: events are informative.
pub type EventSink = tokio::sync::mpsc::UnboundedSender<Event>;
