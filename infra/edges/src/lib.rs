//! Fault edges (issue 18): with `[faults] edges = true` (or `lab up --faults`) the lab gives
//! every consumer — a service with a `TARGET`, the proxy's servers — the address of an edge
//! instead of the server's own, and one process (`lab serve edges`) relays each edge to its
//! server. `lab fault latency|status|…` writes the fault into `.lab/faults.json`; the edges read
//! it within 100 ms and apply it to every exchange that follows, on connections already open
//! too.
//!
//! - [`fault`]: the kinds of edge fault, their direction and share (the file's format).
//! - [`active`]: the faults in effect, re-read when the file changes; the seeded draw.
//! - [`http`]: request framing, so HTTP faults hit whole requests.
//! - [`relay`]: one edge's connections.
//! - [`spans`]: a Zipkin span, tagged `lab.fault`, for each traced request a fault hits.
//!
//! A control listener answers `GET /health` and `GET /faults` (each fault in effect with the
//! exchanges it was asked about and hit).

pub mod active;
pub mod fault;
pub mod http;
mod relay;
pub mod spans;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub use fault::{Direction, EdgeFault, EdgeKind, PartitionMode};

/// One edge: where it listens and the server behind it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EdgeSpec {
    /// The instance behind it: `recipe-api#1`.
    pub name: String,
    /// Its service: `recipe-api`.
    pub service: String,
    /// `127.0.0.1:41234`.
    pub listen: String,
    /// The instance's own address.
    pub upstream: String,
    /// The service speaks HTTP/1.1 (http, https is not framed: TCP faults only; gRPC neither).
    pub http: bool,
}

/// What `lab serve edges` runs (`.lab/edges/edges.json`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct EdgesConfig {
    pub edges: Vec<EdgeSpec>,
    /// `GET /health`, `GET /faults`.
    pub control: String,
    /// The lab's `.lab/faults.json`.
    pub faults_file: PathBuf,
    /// Seeds the draw of probabilistic faults (`[faults] seed`).
    #[serde(default)]
    pub seed: u64,
    /// The hub's Zipkin `host:port`, for the spans of requests a fault hit.
    #[serde(default)]
    pub zipkin: Option<String>,
}

impl EdgesConfig {
    /// Where a lab keeps its edges' config: `.lab/edges/edges.json` under `state_dir`.
    pub fn path(state_dir: &std::path::Path) -> PathBuf {
        state_dir.join("edges").join("edges.json")
    }

    /// The edges' config of the lab under `state_dir`, if it has one.
    pub fn of_lab(state_dir: &std::path::Path) -> Option<EdgesConfig> {
        serde_json::from_slice(&std::fs::read(Self::path(state_dir)).ok()?).ok()
    }
}

/// Run the edges until the process is stopped.
pub fn main(config: &std::path::Path) -> std::io::Result<()> {
    let text = std::fs::read(config)?;
    let cfg: EdgesConfig = serde_json::from_slice(&text).map_err(|e| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("{}: {e}", config.display()),
        )
    })?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(cfg))
}

/// Bind every edge and the control listener, then serve.
pub async fn run(cfg: EdgesConfig) -> std::io::Result<()> {
    let faults = Arc::new(active::Faults::new(cfg.seed));
    faults.reload(&cfg.faults_file);
    let mut listeners = Vec::new();
    for e in &cfg.edges {
        let l = TcpListener::bind(&e.listen).await.map_err(|err| {
            std::io::Error::new(
                err.kind(),
                format!("edge {} on {}: {err}", e.name, e.listen),
            )
        })?;
        listeners.push((l, Arc::new(e.clone())));
    }
    let control = TcpListener::bind(&cfg.control).await?;
    let sink = spans::Sink::new(cfg.zipkin.clone());
    for (l, e) in listeners {
        tokio::spawn(relay::serve(l, e, faults.clone(), sink.clone()));
    }
    tokio::spawn(active::watch(cfg.faults_file.clone(), faults.clone()));
    loop {
        let Ok((mut s, _)) = control.accept().await else {
            continue;
        };
        let faults = faults.clone();
        tokio::spawn(async move {
            let mut buf = vec![0u8; 4096];
            let n = s.read(&mut buf).await.unwrap_or(0);
            let line = String::from_utf8_lossy(&buf[..n]);
            let (code, body) = if line.starts_with("GET /faults") {
                (200, faults_json(&faults))
            } else if line.starts_with("GET /health") {
                (200, r#"{"status":"OK"}"#.to_owned())
            } else {
                (404, r#"{"error":"not_found"}"#.to_owned())
            };
            let reply = format!(
                "HTTP/1.1 {code} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                if code == 200 { "OK" } else { "Not Found" },
                body.len()
            );
            let _ = s.write_all(reply.as_bytes()).await;
        });
    }
}

/// The faults the edges behind `control` apply now (`GET /faults`), each id with the
/// exchanges it hit, or `None` when they do not answer.
pub fn faults_now(control: &str) -> Option<Vec<(String, u64)>> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(control).ok()?;
    s.set_read_timeout(Some(std::time::Duration::from_secs(1)))
        .ok()?;
    s.write_all(b"GET /faults HTTP/1.1\r\nhost: edges\r\n\r\n")
        .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = &text[text.find("\r\n\r\n")? + 4..];
    let list: Vec<serde_json::Value> = serde_json::from_str(body).ok()?;
    Some(
        list.iter()
            .filter_map(|f| {
                Some((
                    f["id"].as_str()?.to_owned(),
                    f["hits"].as_u64().unwrap_or(0),
                ))
            })
            .collect(),
    )
}

/// The ids of the faults the edges behind `control` apply now.
pub fn fault_ids(control: &str) -> Option<Vec<String>> {
    Some(faults_now(control)?.into_iter().map(|(id, _)| id).collect())
}

/// Poll [`fault_ids`] until `ok` holds of them (the edges re-read the faults file every
/// 100 ms), for up to `within`; whether it did.
pub fn wait_for_faults(
    control: &str,
    ok: impl Fn(&[String]) -> bool,
    within: std::time::Duration,
) -> bool {
    let t0 = std::time::Instant::now();
    while t0.elapsed() < within {
        if fault_ids(control).is_some_and(|ids| ok(&ids)) {
            return true;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    false
}

fn faults_json(faults: &active::Faults) -> String {
    let list: Vec<serde_json::Value> = faults
        .snapshot()
        .iter()
        .map(|a| {
            serde_json::json!({
                "id": a.id,
                "target": a.target,
                "fault": a.fault.describe(),
                "exchanges": a.exchanges.load(Ordering::Relaxed),
                "hits": a.hits.load(Ordering::Relaxed),
            })
        })
        .collect();
    serde_json::Value::Array(list).to_string()
}
