//! What the hub runs with: [`HubConfig`] (what `[hub]` in lab.toml lowers to, `hub.json`),
//! the instances it polls and the proxy stats pages it reads, and [`load_config`].

use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

use crate::alerts::rule::Rule;
use crate::error::HubError;
use crate::ingest::statsd::Namespace;
use crate::store::Retention;

/// What `[hub]` in lab.toml lowers to (`.lab/hub/hub.json`). Port 0 = any free port.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HubConfig {
    /// Where `hub.db` lives.
    pub data_dir: PathBuf,
    pub host: IpAddr,
    /// Logstash UDP JSON input.
    pub logs_port: u16,
    /// StatsD UDP input.
    pub statsd_port: u16,
    /// Zipkin v2 API (collector and query).
    pub zipkin_port: u16,
    /// Graphite render/find, Prometheus `/metrics`, logs search, status.
    pub http_port: u16,
    /// OTLP/HTTP input (`/v1/traces`, `/v1/logs`, `/v1/metrics`).
    pub otlp_http_port: u16,
    /// OTLP/gRPC input (the three `Export` services).
    pub otlp_grpc_port: u16,
    /// Carbon plaintext (TCP) input, so a real StatsD daemon can flush into the hub. None = off.
    pub carbon_port: Option<u16>,
    /// StatsD flush interval, milliseconds (etsy's default 10000).
    pub flush_interval_ms: u64,
    pub namespace: Namespace,
    /// Timer percentiles (etsy's `percentThreshold`).
    pub percent_thresholds: Vec<f64>,
    /// Daily index name prefix (the book's `nodejs-`).
    pub index_prefix: String,
    /// Also write every flushed series to this carbon plaintext endpoint (`host:port`).
    pub forward_graphite: Option<String>,
    /// Bound of each ingest queue (datagrams or batches waiting for a parser).
    pub queue: usize,
    /// Instances whose health endpoint the hub polls (filled in by `lab up`).
    pub health_targets: Vec<HealthTarget>,
    /// How often each is polled, milliseconds.
    pub health_interval_ms: u64,
    /// Alert rules (`[alerts.NAME]`).
    pub alerts: Vec<Rule>,
    /// How often the rules are evaluated, milliseconds.
    pub alert_interval_ms: u64,
    /// POST firing and resolved events here (JSON), if set.
    pub alert_webhook: Option<String>,
    /// Instance output files whose new lines become log documents (filled in by `lab up`).
    pub tail: Vec<TailFile>,
    /// The supervisor's `state.json` (filled in by `lab up`): the overview shows each instance's
    /// process or container and its restarts from it.
    pub state_file: Option<PathBuf>,
    /// The proxy frontends' stats pages, as CSV (filled in by `lab up`): the overview shows
    /// their servers and check states.
    pub proxy_stats: Vec<ProxyStatsTarget>,
    /// What the store keeps (by age and size; the oldest goes first).
    pub retention: Retention,
}

/// A proxy frontend whose stats page the overview reads.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct ProxyStatsTarget {
    pub frontend: String,
    /// The CSV form of its stats page (`…/admin?stats;csv`).
    pub url: String,
    /// For https: the CA to trust.
    pub ca: Option<PathBuf>,
}

/// One instance the hub polls: `GET url`, classified OK / DEGRADED / DOWN.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct HealthTarget {
    pub service: String,
    pub instance: usize,
    pub url: String,
    /// For https: the CA to trust.
    pub ca: Option<PathBuf>,
}

impl Default for HubConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from(".lab/hub"),
            host: IpAddr::V4(Ipv4Addr::LOCALHOST),
            logs_port: 7777,
            statsd_port: 8125,
            zipkin_port: 9411,
            http_port: 8080,
            otlp_http_port: 4318,
            otlp_grpc_port: 4317,
            carbon_port: Some(2003),
            flush_interval_ms: 10_000,
            namespace: Namespace::Legacy,
            percent_thresholds: vec![90.0],
            index_prefix: "nodejs-".into(),
            forward_graphite: None,
            queue: 65_536,
            health_targets: Vec::new(),
            health_interval_ms: 2000,
            alerts: Vec::new(),
            alert_interval_ms: 5000,
            alert_webhook: None,
            tail: Vec::new(),
            state_file: None,
            proxy_stats: Vec::new(),
            retention: Retention::default(),
        }
    }
}

/// Read a hub.json.
/// Read a hub config: a path to a hub.json, or the JSON itself (what an exported compose file
/// passes: no file to mount).
pub fn load_config(path: &std::path::Path) -> Result<HubConfig, HubError> {
    let arg = path.to_string_lossy();
    let text = if arg.trim_start().starts_with('{') {
        arg.into_owned()
    } else {
        std::fs::read_to_string(path).map_err(|e| HubError::Config {
            path: path.display().to_string(),
            reason: e.to_string(),
        })?
    };
    serde_json::from_str(&text).map_err(|e| HubError::Config {
        path: path.display().to_string(),
        reason: e.to_string(),
    })
}

/// An instance output file whose new lines become log documents (see [`crate::tail`]).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct TailFile {
    pub service: String,
    pub instance: usize,
    pub path: PathBuf,
    /// The service's environment (`NODE_ENV`), for the documents' `environment`.
    #[serde(default)]
    pub environment: Option<String>,
}
