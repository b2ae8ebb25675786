//! Serving a router with graceful shutdown and a drain cap.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// The longest a service waits for in-flight requests after a shutdown signal.
/// Connections open now, over every [`serve`] of the process (the `server.conn` gauge).
pub static OPEN_CONNECTIONS: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

pub const DRAIN_CAP: Duration = Duration::from_secs(5);

/// Serve `router` on `listener` until `shutdown` completes, then let in-flight requests finish
/// for at most [`DRAIN_CAP`]. Returns `Ok(true)` if everything drained, `Ok(false)` if the cap
/// cut the drain short.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<bool> {
    serve_with_drain_cap(listener, router, shutdown, DRAIN_CAP).await
}

/// [`serve`] with another drain cap.
pub async fn serve_with_drain_cap(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    cap: Duration,
) -> std::io::Result<bool> {
    let (tripped_tx, tripped_rx) = tokio::sync::oneshot::channel::<()>();
    let listener = Counting(listener);
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tripped_tx.send(());
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        biased; // a finished server wins over the trip wire it dropped
        r = &mut server => return r.map(|()| true),
        _ = tripped_rx => {}
    }
    match within_cap(server, cap).await {
        Some(r) => r.map(|()| true),
        None => Ok(false),
    }
}

/// The listener `serve` accepts through: no Nagle (HTTP/2 answers in several small writes, and
/// waiting for delayed ACKs would add ~40 ms to each exchange on a fresh connection), and every
/// connection counted in [`OPEN_CONNECTIONS`] while it is open.
struct Counting(TcpListener);

impl axum::serve::Listener for Counting {
    type Io = Counted;
    type Addr = std::net::SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            match self.0.accept().await {
                Ok((tcp, addr)) => {
                    let _ = tcp.set_nodelay(true);
                    return (Counted::new(tcp), addr);
                }
                // Out of descriptors and the like: pause instead of spinning (as axum does).
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        self.0.local_addr()
    }
}

/// A connection that counts itself open until dropped.
pub struct Counted(tokio::net::TcpStream);

impl Counted {
    fn new(tcp: tokio::net::TcpStream) -> Self {
        OPEN_CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Self(tcp)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        OPEN_CONNECTIONS.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

impl tokio::io::AsyncRead for Counted {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl tokio::io::AsyncWrite for Counted {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        std::pin::Pin::new(&mut self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Let a drain run for at most `cap`; `None` (and a warning) if the cap cut it short.
async fn within_cap<T>(drain: impl Future<Output = T>, cap: Duration) -> Option<T> {
    match tokio::time::timeout(cap, drain).await {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::warn!(
                cap_ms = cap.as_millis() as u64,
                "drain cap reached, closing remaining connections"
            );
            None
        }
    }
}

/// [`serve`] over TLS: each connection is a TLS session (ALPN picks HTTP/2 or HTTP/1.1), the
/// handshake runs off the accept loop with a deadline, and shutdown drains like [`serve`].
/// A client speaking plain HTTP to this port gets no answer but a closed connection.
pub async fn serve_tls(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    tls: std::sync::Arc<rustls::ServerConfig>,
    cap: Duration,
) -> std::io::Result<bool> {
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use hyper_util::server::conn::auto::Builder;
    use hyper_util::service::TowerToHyperService;

    const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(10);
    let acceptor = tokio_rustls::TlsAcceptor::from(tls);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let builder = Builder::new(TokioExecutor::new());
    tokio::pin!(shutdown);
    loop {
        let (tcp, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = tcp.set_nodelay(true);
        let tcp = Counted::new(tcp);
        let acceptor = acceptor.clone();
        let service = TowerToHyperService::new(router.clone());
        let builder = builder.clone();
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let tls = match tokio::time::timeout(HANDSHAKE_DEADLINE, acceptor.accept(tcp)).await {
                Ok(Ok(tls)) => tls,
                Ok(Err(e)) => {
                    tracing::info!(%peer, error = %e, "TLS handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!(%peer, "TLS handshake timed out");
                    return;
                }
            };
            let conn = builder
                .serve_connection_with_upgrades(TokioIo::new(tls), service)
                .into_owned();
            if let Err(e) = watcher.watch(conn).await {
                tracing::debug!(%peer, error = %e, "connection ended with an error");
            }
        });
    }
    drop(listener);
    Ok(within_cap(graceful.shutdown(), cap).await.is_some())
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).expect("install SIGTERM handler");
    let mut int = signal(SignalKind::interrupt()).expect("install SIGINT handler");
    tokio::select! {
        _ = term.recv() => tracing::info!(signal = "SIGTERM", "shutting down"),
        _ = int.recv() => tracing::info!(signal = "SIGINT", "shutting down"),
    }
}

/// Why a service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error("{0}")]
    Config(String),
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::sync::Arc;
    use std::time::Instant;
    use tokio::sync::{Notify, oneshot};

    struct Server {
        addr: String,
        /// Notified when a request has entered the `/slow` handler.
        entered: Arc<Notify>,
        stop: oneshot::Sender<()>,
        done: tokio::task::JoinHandle<std::io::Result<bool>>,
    }

    /// A server whose `/slow` takes `hold`, draining for at most `cap`.
    async fn start(hold: Duration, cap: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let entered = Arc::new(Notify::new());
        let e = entered.clone();
        let router = Router::new().route(
            "/slow",
            get(move || async move {
                e.notify_one();
                tokio::time::sleep(hold).await;
                "done"
            }),
        );
        let (stop, rx) = oneshot::channel::<()>();
        let done = tokio::spawn(serve_with_drain_cap(
            listener,
            router,
            async move {
                let _ = rx.await;
            },
            cap,
        ));
        Server {
            addr,
            entered,
            stop,
            done,
        }
    }

    #[tokio::test]
    async fn in_flight_requests_finish_after_the_signal() {
        let s = start(Duration::from_millis(300), Duration::from_secs(10)).await;
        let url = format!("http://{}/slow", s.addr);
        let req =
            tokio::spawn(async move { crate::client::get(&url, Duration::from_secs(5)).await });
        s.entered.notified().await;
        s.stop.send(()).unwrap();
        let resp = req.await.unwrap().expect("the in-flight request completes");
        assert_eq!((resp.status.as_u16(), resp.text().as_str()), (200, "done"));
        assert!(s.done.await.unwrap().unwrap(), "drained fully");
    }

    #[tokio::test]
    async fn the_drain_cap_ends_a_request_that_would_never_finish() {
        let s = start(Duration::from_secs(3600), Duration::from_millis(200)).await;
        let url = format!("http://{}/slow", s.addr);
        let _req =
            tokio::spawn(async move { crate::client::get(&url, Duration::from_secs(60)).await });
        s.entered.notified().await;
        let t0 = Instant::now();
        s.stop.send(()).unwrap();
        let drained = s.done.await.unwrap().unwrap();
        assert!(!drained, "the cap, not the request, ended the drain");
        assert!(
            t0.elapsed() < Duration::from_secs(30),
            "serve returned only after {:?}",
            t0.elapsed()
        );
    }
}
