//! Process gauges every [`GAUGE_EVERY`]: memory, open connections, event-loop lag.

use super::telemetry::*;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Instant;

/// The `server.*` gauges and the `eventlag` timer, every [`GAUGE_EVERY`] (run on the service's
/// runtime: the lag measured is that runtime's).
pub async fn gauges(t: Arc<Telemetry>) {
    if t.statsd.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(GAUGE_EVERY);
    loop {
        tick.tick().await;
        // Event-loop lag: how long a task waits to run again after yielding.
        let asked = Instant::now();
        tokio::task::yield_now().await;
        let lag_ms = asked.elapsed().as_secs_f64() * 1000.0;
        t.timing("eventlag", lag_ms);
        t.gauge("server.conn", OPEN_CONNECTIONS.load(Relaxed) as f64);
        let (rss, vm) = statm();
        let total = meminfo_total();
        t.gauge("server.memory.used", rss as f64);
        t.gauge("server.memory.total", total as f64);
        t.gauge("server.heap.size", vm as f64);
        t.gauge("server.heap.limit", total as f64);
        t.gauge(
            "server.descriptors",
            std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64,
        );
    }
}

/// (resident bytes, data-segment bytes) of this process.
pub(super) fn statm() -> (u64, u64) {
    let page = 4096;
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let f: Vec<u64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    (
        f.get(1).copied().unwrap_or(0) * page,
        f.get(5).copied().unwrap_or(0) * page,
    )
}

pub(super) fn meminfo_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}
