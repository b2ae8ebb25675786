//! What the supervisor reports as it works; the CLI renders these as lines.

use std::time::Duration;

#[derive(Debug, Clone)]
pub enum Event {
    Spawned {
        instance: String,
        pid: u32,
        restarts: u32,
    },
    Healthy {
        instance: String,
        after_spawn: Duration,
    },
    Unhealthy {
        instance: String,
        reason: String,
    },
    Exited {
        instance: String,
        status: String,
        ran_for: Duration,
    },
    Restarting {
        instance: String,
        delay: Duration,
        restarts: u32,
    },
    NotRestarting {
        instance: String,
        policy: &'static str,
    },
    SpawnFailed {
        instance: String,
        error: String,
    },
    Stopping {
        service: String,
    },
    Stopped {
        instance: String,
        forced: bool,
    },
    /// A `[faults.NAME]` fault came due: what was injected (or why it could not be).
    Scheduled {
        name: String,
        text: String,
    },
}

/// Where events go: called synchronously from the instance tasks, so what it prints lands in
/// order with the rest of the output. It must not block.
pub type EventSink = std::sync::Arc<dyn Fn(Event) + Send + Sync>;

/// A sink that drops every event.
pub fn discard() -> EventSink {
    std::sync::Arc::new(|_| {})
}
