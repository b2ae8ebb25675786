//! The lab's observability hub: one process that speaks the book's stack's wire protocols
//! (docs/OBSERVABILITY.md), so services work unchanged against it or against ELK, Graphite and Zipkin.
//!
//! - [`config`]: [`HubConfig`] (what `[hub]` lowers to); [`shared`]: what a running hub's parts
//!   share; [`clock`], [`error`].
//! - [`ingest`]: Logstash UDP JSON ([`ingest::logs`]), StatsD ([`ingest::statsd`]), Zipkin v2
//!   spans ([`ingest::zipkin`]), carbon plaintext ([`ingest::carbon`]), and the threads between
//!   the sockets and the store ([`ingest::pipeline`]).
//! - [`store`]: the embedded SQLite store (one writer thread, batched transactions, retention).
//! - [`query`]: the log query language ([`query::kql`]), Graphite targets ([`query::graphite`])
//!   and the store as their source ([`query::source`]).
//! - [`http`]: the router and the browser guard; [`http::params`] what every handler shares.
//! - [`api`]: the HTTP APIs: Graphite render/find, Prometheus `/metrics`, logs search, alert
//!   rules, status, and the Zipkin v2 API on its own port.
//! - [`dashboard`]: the HTML pages on the HTTP port (overview, metrics, traces, logs, alerts,
//!   load runs), offline and escaped; `lab_net::chart` draws their SVG charts and [`topology`] reads
//!   what the overview shows beyond health (the supervisor's state, the proxy's stats CSV).
//! - [`alerts`], [`health`], [`tail`]: the rules evaluated, the instances polled, their output
//!   tailed into the log store.
//!
//! [`start`] binds every socket first (a taken port fails the whole start, nothing half-up), then
//! runs: UDP receivers on their own threads that only copy datagrams into bounded queues (a
//! full queue is a counted drop, never a stall), parser threads behind them, a flush thread for
//! StatsD, and the HTTP servers on a small tokio runtime. [`Running::stop`] stops them all and
//! waits for the store to commit what was received.

pub mod alerts;
pub mod api;
pub mod clock;
pub mod config;
pub mod dashboard;
pub mod error;
pub mod health;
pub mod http;
pub mod ingest;
pub mod query;
pub mod shared;
pub mod store;
pub mod tail;
pub mod topology;

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::ingest::pipeline::{Datagram, aggregate, flush, flush_loop, parse_logs, receive};
use crate::ingest::statsd::Aggregator;
use crate::store::Store;
use clock::now_s;
pub use clock::ymd_hms;
pub use config::{HealthTarget, HubConfig, ProxyStatsTarget, load_config};
pub use error::HubError;
pub use shared::{Counters, HubAddrs, Shared};

/// A started hub.
pub struct Running {
    pub addrs: HubAddrs,
    pub shared: Arc<Shared>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
    runtime: Option<tokio::runtime::Runtime>,
    http_stop: tokio::sync::watch::Sender<bool>,
}

impl Running {
    /// Stop receiving, run a last flush, wait for the store to commit.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = self.http_stop.send(true);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_timeout(Duration::from_secs(2));
        }
        let _ = self.shared.store.sync();
    }

    /// Run a StatsD flush now (tests; `lab hub` does it on its interval).
    pub fn flush_now(&self) {
        flush(&self.shared, now_s());
        let _ = self.shared.store.sync();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.shutdown();
        }
    }
}

/// The receive buffer asked for each UDP input: bursts wait in the kernel, not dropped there
/// (the default ~208 KB holds a few hundred datagrams).
pub const UDP_RECV_BUFFER: usize = 8 << 20;

fn bind_udp(what: &'static str, addr: SocketAddr) -> Result<UdpSocket, HubError> {
    use nix::sys::socket::{setsockopt, sockopt};
    let s = UdpSocket::bind(addr).map_err(|error| HubError::Bind { what, addr, error })?;
    s.set_read_timeout(Some(Duration::from_millis(100)))?;
    // Past net.core.rmem_max only with CAP_NET_ADMIN (RCVBUFFORCE); else as much as allowed.
    if setsockopt(&s, sockopt::RcvBufForce, &UDP_RECV_BUFFER).is_err() {
        let _ = setsockopt(&s, sockopt::RcvBuf, &UDP_RECV_BUFFER);
    }
    Ok(s)
}

fn bind_tcp(what: &'static str, addr: SocketAddr) -> Result<std::net::TcpListener, HubError> {
    let l =
        std::net::TcpListener::bind(addr).map_err(|error| HubError::Bind { what, addr, error })?;
    l.set_nonblocking(true)?;
    Ok(l)
}

/// Bind every socket, open the store, and run.
pub fn start(config: HubConfig) -> Result<Running, HubError> {
    let at = |port| SocketAddr::new(config.host, port);
    let logs_sock = bind_udp("logs (Logstash UDP)", at(config.logs_port))?;
    let statsd_sock = bind_udp("StatsD (UDP)", at(config.statsd_port))?;
    let zipkin_l = bind_tcp("the Zipkin API", at(config.zipkin_port))?;
    let http_l = bind_tcp("the HTTP API", at(config.http_port))?;
    let otlp_http_l = bind_tcp("OTLP/HTTP", at(config.otlp_http_port))?;
    let otlp_grpc_l = bind_tcp("OTLP/gRPC", at(config.otlp_grpc_port))?;
    let carbon_l = match config.carbon_port {
        Some(p) => Some(bind_tcp("carbon plaintext", at(p))?),
        None => None,
    };
    let addrs = HubAddrs {
        logs: logs_sock.local_addr()?,
        statsd: statsd_sock.local_addr()?,
        zipkin: zipkin_l.local_addr()?,
        http: http_l.local_addr()?,
        carbon: carbon_l.as_ref().map(|l| l.local_addr()).transpose()?,
        otlp_http: otlp_http_l.local_addr()?,
        otlp_grpc: otlp_grpc_l.local_addr()?,
    };
    let step = (config.flush_interval_ms / 1000).max(1) as i64;
    // Few batches may wait for the writer: past them the parsers wait, and the datagram queues
    // in front of them (bounded, counted drops) absorb the burst.
    let store = Store::open(&config.data_dir, step, 32, config.retention)?;
    let kept_rules = store.runtime_rules().unwrap_or_default();
    let shared = Arc::new(Shared {
        store,
        counters: Counters::default(),
        statsd: Mutex::new(Aggregator::new()),
        started: std::time::SystemTime::now(),
        addrs: Mutex::new(Some(addrs)),
        health: Mutex::new(health::entries(&config.health_targets)),
        proxy_clients: config
            .proxy_stats
            .iter()
            .map(|t| health::client_for(t.ca.as_deref()))
            .collect(),
        alerts: Mutex::new({
            let mut all: Vec<alerts::RuleState> = config
                .alerts
                .iter()
                .cloned()
                .map(|r| alerts::RuleState::new(r, false))
                .collect();
            // Rules added over the API outlive the hub's restarts (lab.toml's win a name).
            for json in kept_rules {
                match serde_json::from_str::<alerts::Rule>(&json) {
                    Ok(r) if !all.iter().any(|a| a.rule.name == r.name) => {
                        all.push(alerts::RuleState::new(r, true));
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "a kept run-time rule does not read"),
                }
            }
            all
        }),
        otlp_metrics: Mutex::default(),
        config,
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::new();
    let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
        std::thread::Builder::new().name(name.to_owned()).spawn(f)
    };

    // Logs and StatsD: receiver → bounded queue → parser (logs batch into the store, StatsD
    // into the aggregator; a flush thread closes each interval).
    type Parse = fn(std::sync::mpsc::Receiver<Datagram>, &Shared);
    let inputs: [(
        &str,
        UdpSocket,
        Parse,
        fn(&Counters) -> (&std::sync::atomic::AtomicU64, &std::sync::atomic::AtomicU64),
    ); 2] = [
        ("hub-logs", logs_sock, parse_logs, |c| {
            (&c.log_datagrams, &c.log_dropped_queue)
        }),
        ("hub-statsd", statsd_sock, aggregate, |c| {
            (&c.statsd_datagrams, &c.statsd_dropped_queue)
        }),
    ];
    for (name, sock, parse, counters) in inputs {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Datagram>(shared.config.queue);
        let (s, st) = (shared.clone(), stop.clone());
        threads.push(spawn(
            &format!("{name}-udp"),
            Box::new(move || {
                let (received, dropped) = counters(&s.counters);
                receive(sock, tx, &st, received, dropped)
            }),
        )?);
        let s = shared.clone();
        threads.push(spawn(
            &format!("{name}-parse"),
            Box::new(move || parse(rx, &s)),
        )?);
    }
    {
        let (s, st) = (shared.clone(), stop.clone());
        threads.push(spawn("hub-flush", Box::new(move || flush_loop(&s, &st)))?);
    }
    if !shared.config.tail.is_empty() {
        let (s, st) = (shared.clone(), stop.clone());
        threads.push(spawn("hub-tail", Box::new(move || tail::run(&s, &st)))?);
    }

    // HTTP: the APIs on a small runtime.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("hub-http")
        .enable_all()
        .build()?;
    let (http_stop, stop_rx) = tokio::sync::watch::channel(false);
    runtime.block_on(async {
        let http = tokio::net::TcpListener::from_std(http_l)?;
        let zipkin = tokio::net::TcpListener::from_std(zipkin_l)?;
        tokio::spawn(http::serve(
            http,
            http::router(shared.clone()),
            stop_rx.clone(),
        ));
        tokio::spawn(http::serve(
            zipkin,
            api::zipkin::router(shared.clone()),
            stop_rx.clone(),
        ));
        tokio::spawn(http::serve(
            tokio::net::TcpListener::from_std(otlp_http_l)?,
            api::otlp::http::router(shared.clone()),
            stop_rx.clone(),
        ));
        tokio::spawn(http::serve(
            tokio::net::TcpListener::from_std(otlp_grpc_l)?,
            api::otlp::grpc::router(shared.clone()),
            stop_rx.clone(),
        ));
        tokio::spawn(health::poll(shared.clone(), stop_rx.clone()));
        tokio::spawn(alerts::run(shared.clone(), stop_rx.clone()));
        if let Some(c) = carbon_l {
            let c = tokio::net::TcpListener::from_std(c)?;
            tokio::spawn(ingest::carbon::serve(c, shared.clone(), stop_rx.clone()));
        }
        Ok::<_, std::io::Error>(())
    })?;
    tracing::info!(logs = %addrs.logs, statsd = %addrs.statsd, zipkin = %addrs.zipkin, http = %addrs.http, carbon = ?addrs.carbon, otlp_http = %addrs.otlp_http, otlp_grpc = %addrs.otlp_grpc, "hub listening");
    Ok(Running {
        addrs,
        shared,
        stop,
        threads,
        runtime: Some(runtime),
        http_stop,
    })
}

/// `lab serve hub --config FILE`: run until SIGTERM/SIGINT.
pub fn main(config_path: &std::path::Path) -> Result<(), HubError> {
    let config = load_config(config_path)?;
    let running = start(config)?;
    let a = running.addrs;
    println!(
        "hub: logs udp://{} · statsd udp://{} · zipkin http://{} · api http://{} · otlp http://{} grpc://{}{}",
        a.logs,
        a.statsd,
        a.zipkin,
        a.http,
        a.otlp_http,
        a.otlp_grpc,
        a.carbon
            .map(|c| format!(" · carbon tcp://{c}"))
            .unwrap_or_default()
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        Ok::<_, std::io::Error>(())
    })?;
    running.stop();
    Ok(())
}
