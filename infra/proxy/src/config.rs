//! What the proxy runs: frontends, each bound to an address and balancing one backend's
//! servers. `lab` lowers lab.toml's `[proxy]` section to this (written as JSON under `.lab/`)
//! for the builtin engine, and renders the same value as an `haproxy.cfg` for HAProxy.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProxyConfig {
    pub frontends: Vec<Frontend>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Frontend {
    /// Also the backend's name (one backend per frontend).
    pub name: String,
    /// `host:port` to listen on.
    pub bind: String,
    pub mode: Mode,
    pub balance: Balance,
    pub servers: Vec<Server>,
    /// Active health checks; `None`: servers are always considered up.
    pub check: Option<Check>,
    /// Content types compressed with gzip for clients that accept it; empty: no compression.
    #[serde(default)]
    pub compression: Vec<String>,
    /// Terminate TLS with this certificate (plain HTTP to the servers).
    pub tls: Option<TlsFiles>,
    /// Concurrent client connections; more wait in the listen backlog.
    pub maxconn: usize,
    /// Concurrent requests (http) or connections (tcp) per server; excess ones queue.
    pub server_maxconn: Option<usize>,
    /// How long a request may wait in the queue before it is answered 503.
    pub queue_timeout_ms: u64,
    pub connect_timeout_ms: u64,
    /// Idle client connection limit, and the time a client has to send a request's headers
    /// (a slowloris client is cut off after it).
    pub client_timeout_ms: u64,
    /// Time a server has to answer a request's headers (504 past it).
    pub server_timeout_ms: u64,
    /// Other servers tried after a connection failure (or a failure before any response on an
    /// idempotent request).
    pub retries: u32,
    /// Serve the stats page at this path and query (e.g. `/admin?stats`), HTTP mode only.
    pub stats_uri: Option<String>,
    /// The largest request body accepted (413 past it); bodies are buffered so a request can
    /// be retried on another server.
    pub max_body_bytes: usize,
    /// The most bytes of request line and headers (431 past it), as HAProxy's buffer bounds them.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// The most header fields in a request (431 past it; HAProxy's `tune.http.maxhdr` is 101).
    #[serde(default = "default_max_headers")]
    pub max_headers: usize,
}

fn default_max_header_bytes() -> usize {
    64 * 1024
}

fn default_max_headers() -> usize {
    100
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Http,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Balance {
    Roundrobin,
    Leastconn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Server {
    /// e.g. `web-api-1`
    pub name: String,
    /// `host:port`
    pub addr: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Check {
    /// `GET path` must answer 2xx/3xx; `None`: a TCP connect check.
    pub path: Option<String>,
    pub interval_ms: u64,
    pub timeout_ms: u64,
    /// Consecutive successes that bring a down server back.
    pub rise: u32,
    /// Consecutive failures that take an up server out.
    pub fall: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TlsFiles {
    pub cert: std::path::PathBuf,
    pub key: std::path::PathBuf,
}

impl Frontend {
    /// A frontend with HAProxy-like defaults, for tests and as the base of lowering.
    pub fn new(name: &str, bind: &str, servers: Vec<Server>) -> Self {
        Self {
            name: name.into(),
            bind: bind.into(),
            mode: Mode::Http,
            balance: Balance::Roundrobin,
            servers,
            check: None,
            compression: Vec::new(),
            tls: None,
            maxconn: 2000,
            server_maxconn: None,
            queue_timeout_ms: 5_000,
            connect_timeout_ms: 2_000,
            client_timeout_ms: 30_000,
            server_timeout_ms: 30_000,
            retries: 2,
            stats_uri: None,
            max_body_bytes: 1 << 20,
            max_header_bytes: default_max_header_bytes(),
            max_headers: default_max_headers(),
        }
    }
}
