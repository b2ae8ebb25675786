//! Serving a router with graceful shutdown and a drain cap.

use std::future::Future;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

use crate::Settings;

/// The longest a service waits for in-flight requests after a shutdown signal.
pub const DRAIN_CAP: Duration = Duration::from_secs(5);

/// Serve `router` on `listener` until `shutdown` completes, then let in-flight requests finish
/// for at most [`DRAIN_CAP`]. Returns `Ok(true)` if everything drained, `Ok(false)` if the cap
/// cut the drain short.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<bool> {
    let (tripped_tx, tripped_rx) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, router).with_graceful_shutdown(async move {
        shutdown.await;
        let _ = tripped_tx.send(());
    });
    let server = server.into_future();
    tokio::pin!(server);
    tokio::select! {
        r = &mut server => r.map(|()| true),
        _ = async {
            if tripped_rx.await.is_ok() {
                tokio::time::sleep(DRAIN_CAP).await;
            } else {
                std::future::pending::<()>().await;
            }
        } => {
            tracing::warn!(cap_ms = DRAIN_CAP.as_millis() as u64, "drain cap reached, closing remaining connections");
            Ok(false)
        }
    }
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

/// The whole `main` of a service: tracing, settings, bind, serve until a signal.
///
/// `build` gets the settings and returns the router. Runs a single-threaded runtime: one event
/// loop per process, like Node, so that scaling by replicas shows what it shows in the book.
pub fn run_service(
    name: &'static str,
    default_port: u16,
    build: impl FnOnce(&Settings) -> Router,
) -> Result<(), ServiceError> {
    crate::telemetry::init(name);
    let settings = Settings::from_env(default_port)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let addr = settings.bind_addr();
        let listener = TcpListener::bind(&addr)
            .await
            .map_err(|source| ServiceError::Bind { addr: addr.clone(), source })?;
        let local = listener.local_addr()?;
        tracing::info!(service = name, addr = %local, env = %settings.env_name, target = ?settings.target, "listening");
        let router = build(&settings);
        serve(listener, router, shutdown_signal()).await?;
        tracing::info!(service = name, "stopped");
        Ok(())
    })
}

/// Why a service could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Settings(#[from] crate::settings::SettingsError),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
