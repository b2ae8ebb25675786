//! The lab's builtin reverse proxy, and the HAProxy configuration for the same frontends.
//!
//! - [`config`]: frontends, backends' servers, checks, limits (what `lab.toml`'s `[proxy]` lowers to).
//! - [`backend`]: server state, balancing (roundrobin, leastconn), maxconn slots and the queue.
//! - [`health`]: active checks with rise/fall.
//! - [`http`]: HTTP mode (keep-alive both sides, retries, X-Forwarded-For, compression, TLS, HTTP/2 to clients).
//! - [`tcp`]: TCP mode (passthrough).
//! - [`stats`]: the stats page (HTML, `;csv`, `;json`).
//! - [`haproxy`]: render an `haproxy.cfg` from the same [`config::ProxyConfig`].
//!
//! [`start`] binds every frontend before serving any (a taken port fails the whole start) and
//! returns the bound addresses; [`Running::stop`] stops accepting and drains under a cap.

pub mod backend;
pub mod config;
pub mod haproxy;
pub mod health;
pub mod http;
pub mod stats;
pub mod tcp;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tower_http::compression::CompressionLayer;
use tower_http::compression::predicate::Predicate;

use crate::backend::Backend;
use crate::config::{Mode, ProxyConfig};
use crate::stats::{FrontendCounters, ProxyStats, Stats};

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot read the proxy config {path}: {reason}")]
    Config { path: String, reason: String },
    #[error("frontend {frontend}: cannot listen on {addr}: {source}")]
    Bind {
        frontend: String,
        addr: String,
        source: std::io::Error,
    },
    #[error("frontend {frontend}: {source}")]
    Tls {
        frontend: String,
        source: lab_net::tls::TlsError,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A started proxy.
pub struct Running {
    /// The bound address of each frontend, in config order.
    pub addrs: Vec<SocketAddr>,
    pub stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    /// Accept loops (each drains its connections when told to stop).
    tasks: JoinSet<()>,
    /// Health checkers: endless, aborted at stop.
    checks: JoinSet<()>,
}

impl Running {
    /// Stop accepting, let open connections finish for at most `cap`, then drop them.
    pub async fn stop(mut self, cap: Duration) {
        let _ = self.stop.send(true);
        self.checks.shutdown().await;
        let drain = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(cap, drain).await.is_err() {
            tracing::warn!("proxy drain cap reached, closing remaining connections");
        }
        self.tasks.shutdown().await;
    }
}

/// What every thread of one proxy shares: backends (server state, slots, queue) and stats.
#[derive(Clone)]
pub struct Shared {
    backends: Vec<Arc<Backend>>,
    stats: Arc<Stats>,
}

impl Shared {
    pub fn new(cfg: &ProxyConfig) -> Self {
        let backends: Vec<Arc<Backend>> = cfg.frontends.iter().map(Backend::new).collect();
        let stats = Arc::new(Stats::new(
            cfg.frontends
                .iter()
                .zip(&backends)
                .map(|(f, b)| ProxyStats {
                    name: f.name.clone(),
                    checked: f.check.is_some(),
                    maxconn: f.maxconn,
                    frontend: FrontendCounters::default(),
                    backend: b.clone(),
                })
                .collect(),
        ));
        Self { backends, stats }
    }
}

/// Bind every frontend of `cfg`, start health checks and accept loops (one thread's worth).
pub async fn start(cfg: ProxyConfig) -> Result<Running, ProxyError> {
    start_on(&cfg, &Shared::new(&cfg), true, false).await
}

/// Start `cfg`'s accept loops on the current runtime over `shared` state; `checks`: also run
/// the health checks (one thread does); `reuseport`: bind with SO_REUSEPORT so that several
/// threads listen on the same ports and the kernel spreads connections over them.
async fn start_on(
    cfg: &ProxyConfig,
    shared: &Shared,
    checks_here: bool,
    reuseport: bool,
) -> Result<Running, ProxyError> {
    let mut listeners = Vec::new();
    for f in &cfg.frontends {
        let bind_err = |source| ProxyError::Bind {
            frontend: f.name.clone(),
            addr: f.bind.clone(),
            source,
        };
        let l = if reuseport {
            let addr: SocketAddr = tokio::net::lookup_host(&f.bind)
                .await
                .map_err(bind_err)?
                .next()
                .ok_or_else(|| bind_err(std::io::Error::other("no address")))?;
            let socket = if addr.is_ipv4() {
                tokio::net::TcpSocket::new_v4()
            } else {
                tokio::net::TcpSocket::new_v6()
            }
            .map_err(bind_err)?;
            socket.set_reuseaddr(true).map_err(bind_err)?;
            socket.set_reuseport(true).map_err(bind_err)?;
            socket.bind(addr).map_err(bind_err)?;
            socket.listen(1024).map_err(bind_err)?
        } else {
            TcpListener::bind(&f.bind).await.map_err(bind_err)?
        };
        listeners.push(l);
    }
    let (stop, stopped) = watch::channel(false);
    let mut tasks = JoinSet::new();
    let mut checks = JoinSet::new();
    let mut addrs = Vec::new();
    for (i, (f, listener)) in cfg.frontends.iter().zip(listeners).enumerate() {
        let addr = listener.local_addr()?;
        addrs.push(addr);
        let backend = shared.backends[i].clone();
        if let (Some(check), true) = (&f.check, checks_here) {
            health::spawn(backend.clone(), check.clone(), &mut checks);
        }
        let tls = match &f.tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(
                lab_net::tls::server_config(&t.cert, &t.key).map_err(|source| ProxyError::Tls {
                    frontend: f.name.clone(),
                    source,
                })?,
            )),
            None => None,
        };
        if checks_here {
            tracing::info!(frontend = %f.name, %addr, mode = ?f.mode, servers = f.servers.len(), tls = tls.is_some(), "listening");
        }
        let accept = Accept {
            frontend: Arc::new(f.clone()),
            backend,
            stats: shared.stats.clone(),
            index: i,
            tls,
        };
        tasks.spawn(accept.run(listener, stopped.clone()));
    }
    Ok(Running {
        addrs,
        stats: shared.stats.clone(),
        stop,
        tasks,
        checks,
    })
}

/// `lab serve proxy --config FILE`: run the proxy in `FILE` (JSON [`ProxyConfig`]) until
/// SIGINT/SIGTERM. Threads: `LAB_THREADS`, else one per core, as HAProxy's nbthread; each is
/// a current-thread runtime with its own listeners (SO_REUSEPORT) and upstream pool, sharing
/// only the backends' state and the stats: no task or connection hops between threads.
pub fn main(config: &std::path::Path) -> Result<(), ProxyError> {
    lab_net::telemetry::init("proxy");
    let bad = |reason: String| ProxyError::Config {
        path: config.display().to_string(),
        reason,
    };
    // A path, or the JSON itself (what an exported compose file passes: no file to mount).
    let arg = config.to_string_lossy();
    let text = if arg.trim_start().starts_with('{') {
        arg.as_bytes().to_vec()
    } else {
        std::fs::read(config).map_err(|e| bad(e.to_string()))?
    };
    let mut cfg: ProxyConfig = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    let threads: usize = std::env::var(lab_net::env::LAB_THREADS)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let runtime = || {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    };
    let shared = Shared::new(&cfg);
    let reuseport = threads > 1;
    let main_rt = runtime()?;
    // Thread 0 (this one) binds first: a frontend on port 0 gets its port here, and the other
    // threads bind the very same addresses.
    let first = main_rt.block_on(start_on(&cfg, &shared, true, reuseport))?;
    for (f, a) in cfg.frontends.iter_mut().zip(&first.addrs) {
        f.bind = a.to_string();
    }
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut others = Vec::new();
    for n in 1..threads {
        let (cfg, shared, mut stop_rx) = (cfg.clone(), shared.clone(), stop_rx.clone());
        let rt = runtime()?;
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        others.push(
            std::thread::Builder::new()
                .name(format!("proxy-{n}"))
                .spawn(move || {
                    rt.block_on(async move {
                        match start_on(&cfg, &shared, false, true).await {
                            Ok(running) => {
                                let _ = ready_tx.send(Ok(()));
                                let _ = stop_rx.wait_for(|s| *s).await;
                                running.stop(lab_net::serve::DRAIN_CAP).await;
                            }
                            Err(e) => {
                                let _ = ready_tx.send(Err(e));
                            }
                        }
                    })
                })?,
        );
        ready_rx
            .recv()
            .map_err(|_| ProxyError::Io(std::io::Error::other("a proxy thread died at start")))??;
    }
    tracing::info!(threads, "proxy running");
    main_rt.block_on(async {
        lab_net::serve::shutdown_signal().await;
        let _ = stop_tx.send(true);
        first.stop(lab_net::serve::DRAIN_CAP).await;
    });
    for t in others {
        let _ = t.join();
    }
    tracing::info!("proxy stopped");
    lab_net::telemetry::flush();
    Ok(())
}

/// One frontend's accept loop.
struct Accept {
    frontend: Arc<config::Frontend>,
    backend: Arc<Backend>,
    stats: Arc<Stats>,
    index: usize,
    tls: Option<tokio_rustls::TlsAcceptor>,
}

/// Counts a frontend connection while it lives.
struct ConnGuard(Arc<Stats>, usize);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.proxies[self.1]
            .frontend
            .conns_cur
            .fetch_sub(1, Relaxed);
    }
}

/// Content types the frontend compresses (its `compression` list).
#[derive(Clone)]
struct CompressTypes(Arc<Vec<String>>);

impl Predicate for CompressTypes {
    fn should_compress<B: hyper::body::Body>(&self, response: &hyper::Response<B>) -> bool {
        let Some(ct) = response
            .headers()
            .get(hyper::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let essence = ct.split(';').next().unwrap_or("").trim();
        self.0.iter().any(|t| t.eq_ignore_ascii_case(essence))
    }
}

/// How an HTTP frontend answers a request: the proxy itself, or the proxy behind the
/// compression layer (a router, so the layer can wrap it).
#[derive(Clone)]
enum Handler {
    Plain(Arc<http::HttpProxy>),
    Compressing(Router),
}

type ResponseFuture = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = Result<hyper::Response<axum::body::Body>, std::convert::Infallible>,
            > + Send,
    >,
>;

impl Handler {
    fn call(
        &self,
        mut req: hyper::Request<hyper::body::Incoming>,
        peer: SocketAddr,
    ) -> ResponseFuture {
        match self {
            Handler::Plain(proxy) => Box::pin(
                proxy
                    .clone()
                    .handle(req.map(axum::body::Body::new), Some(peer)),
            ),
            Handler::Compressing(router) => {
                req.extensions_mut().insert(http::ClientAddr(peer));
                let mut router = router.clone();
                Box::pin(async move { tower_service::Service::call(&mut router, req).await })
            }
        }
    }
}

impl Accept {
    fn handler(&self) -> Handler {
        let proxy = http::HttpProxy::new(
            (*self.frontend).clone(),
            self.backend.clone(),
            self.stats.clone(),
        );
        if self.frontend.compression.is_empty() {
            return Handler::Plain(proxy);
        }
        let router = Router::new().fallback(move |req: axum::extract::Request| {
            let peer = req.extensions().get::<http::ClientAddr>().map(|c| c.0);
            proxy.clone().handle(req, peer)
        });
        Handler::Compressing(
            router.layer(
                CompressionLayer::new()
                    .gzip(true)
                    .no_br()
                    .no_deflate()
                    .no_zstd()
                    .compress_when(CompressTypes(Arc::new(self.frontend.compression.clone()))),
            ),
        )
    }

    async fn run(self, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let limit = Arc::new(Semaphore::new(self.frontend.maxconn.max(1)));
        let handler = (self.frontend.mode == Mode::Http).then(|| self.handler());
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        let client_timeout = Duration::from_millis(self.frontend.client_timeout_ms);
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(client_timeout)
            // Past these a request is refused with 431 before it is read further.
            .max_buf_size(self.frontend.max_header_bytes.max(8192))
            .max_headers(self.frontend.max_headers)
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .keep_alive_interval(Some(client_timeout / 2))
            .keep_alive_timeout(client_timeout);
        let graceful = hyper_util::server::graceful::GracefulShutdown::new();
        let mut conns = JoinSet::new();
        loop {
            // maxconn: past it, connections wait in the listen backlog (as with HAProxy).
            let permit = tokio::select! {
                p = limit.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
                _ = stopped.changed() => break,
            };
            let (tcp, peer) = tokio::select! {
                a = listener.accept() => match a {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
                _ = stopped.changed() => break,
            };
            while conns.try_join_next().is_some() {}
            let _ = tcp.set_nodelay(true);
            let px = &self.stats.proxies[self.index].frontend;
            let cur = px.conns_cur.fetch_add(1, Relaxed) + 1;
            px.conns_max.fetch_max(cur, Relaxed);
            px.conns_total.fetch_add(1, Relaxed);
            let guard = ConnGuard(self.stats.clone(), self.index);
            let Some(handler) = handler.clone() else {
                let (f, b) = (self.frontend.clone(), self.backend.clone());
                conns.spawn(async move {
                    let _hold = (permit, guard);
                    tcp::handle(f, b, tcp).await;
                });
                continue;
            };
            let service = hyper::service::service_fn(move |req| handler.call(req, peer));
            let builder = builder.clone();
            let watcher = graceful.watcher();
            let tls = self.tls.clone();
            conns.spawn(async move {
                let _hold = (permit, guard);
                match tls {
                    Some(acceptor) => {
                        let Ok(Ok(stream)) =
                            tokio::time::timeout(client_timeout, acceptor.accept(tcp)).await
                        else {
                            return; // failed or too slow handshake (e.g. plain HTTP on a TLS port)
                        };
                        let conn = builder
                            .serve_connection(TokioIo::new(stream), service)
                            .into_owned();
                        let _ = watcher.watch(conn).await;
                    }
                    None => {
                        let conn = builder
                            .serve_connection(TokioIo::new(tcp), service)
                            .into_owned();
                        let _ = watcher.watch(conn).await;
                    }
                }
            });
        }
        drop(listener);
        graceful.shutdown().await;
        conns.shutdown().await;
    }
}
