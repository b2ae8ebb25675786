//! What every part of a running hub shares: its config, the store, its counters, the StatsD
//! aggregator, the polled health states and the alert rules' standing.

use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::alerts::rule::RuleState;
use crate::config::HubConfig;
use crate::health::entry::Entry;
use crate::ingest::statsd::Aggregator;
use crate::store::Store;

/// The hub's own counters (served as `hub.*` StatsD series and in `/metrics`).
#[derive(Debug, Default)]
pub struct Counters {
    pub log_datagrams: AtomicU64,
    pub log_documents: AtomicU64,
    pub log_parse_failures: AtomicU64,
    pub log_dropped_queue: AtomicU64,
    pub statsd_datagrams: AtomicU64,
    pub statsd_bad_lines: AtomicU64,
    pub statsd_dropped_queue: AtomicU64,
    pub spans_received: AtomicU64,
    pub spans_rejected: AtomicU64,
    pub spans_dropped_queue: AtomicU64,
    pub carbon_lines: AtomicU64,
    pub carbon_bad_lines: AtomicU64,
    pub forward_failures: AtomicU64,
    pub otlp_spans: AtomicU64,
    pub otlp_log_records: AtomicU64,
    pub otlp_points: AtomicU64,
    /// Items an OTLP request carried that were rejected (bad ids, points without a value).
    pub otlp_rejected: AtomicU64,
    /// OTLP requests refused whole: undecodable bodies, wrong content types, too large.
    pub otlp_bad_requests: AtomicU64,
    /// OTLP items refused because the store's queue was full (503 / UNAVAILABLE: the exporter retries).
    pub otlp_dropped_queue: AtomicU64,
}

impl Counters {
    /// (StatsD key, value) of every counter.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        vec![
            (
                "hub.received.log_datagrams",
                self.log_datagrams.load(Relaxed),
            ),
            (
                "hub.received.log_documents",
                self.log_documents.load(Relaxed),
            ),
            (
                "hub.received.statsd_datagrams",
                self.statsd_datagrams.load(Relaxed),
            ),
            ("hub.received.spans", self.spans_received.load(Relaxed)),
            ("hub.received.carbon_lines", self.carbon_lines.load(Relaxed)),
            (
                "hub.dropped.log_json",
                self.log_parse_failures.load(Relaxed),
            ),
            (
                "hub.dropped.log_queue",
                self.log_dropped_queue.load(Relaxed),
            ),
            ("hub.dropped.statsd", self.statsd_bad_lines.load(Relaxed)),
            (
                "hub.dropped.statsd_queue",
                self.statsd_dropped_queue.load(Relaxed),
            ),
            ("hub.dropped.spans", self.spans_rejected.load(Relaxed)),
            (
                "hub.dropped.spans_queue",
                self.spans_dropped_queue.load(Relaxed),
            ),
            ("hub.dropped.carbon", self.carbon_bad_lines.load(Relaxed)),
            ("hub.dropped.forward", self.forward_failures.load(Relaxed)),
            ("hub.received.otlp_spans", self.otlp_spans.load(Relaxed)),
            (
                "hub.received.otlp_log_records",
                self.otlp_log_records.load(Relaxed),
            ),
            ("hub.received.otlp_points", self.otlp_points.load(Relaxed)),
            ("hub.dropped.otlp_items", self.otlp_rejected.load(Relaxed)),
            (
                "hub.dropped.otlp_requests",
                self.otlp_bad_requests.load(Relaxed),
            ),
            (
                "hub.dropped.otlp_queue",
                self.otlp_dropped_queue.load(Relaxed),
            ),
        ]
    }
}

/// What the HTTP handlers share.
pub struct Shared {
    pub config: HubConfig,
    pub store: Store,
    pub counters: Counters,
    pub statsd: Mutex<Aggregator>,
    pub started: std::time::SystemTime,
    /// Bound addresses (filled in at start).
    pub addrs: Mutex<Option<HubAddrs>>,
    /// The polled state of every health target.
    pub health: Mutex<Vec<Entry>>,
    /// Every alert rule and its standing.
    pub alerts: Mutex<Vec<RuleState>>,
    /// One client per `config.proxy_stats` target, made once (the overview asks every second).
    pub proxy_clients: Vec<lab_net::client::Client>,
    /// OTLP metrics between requests: delta running totals, the last samples for `/metrics`.
    pub otlp_metrics: Mutex<crate::ingest::otlp::metrics::MetricState>,
}

/// Where a started hub listens.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct HubAddrs {
    pub logs: SocketAddr,
    pub statsd: SocketAddr,
    pub zipkin: SocketAddr,
    pub http: SocketAddr,
    pub carbon: Option<SocketAddr>,
    pub otlp_http: SocketAddr,
    pub otlp_grpc: SocketAddr,
}
