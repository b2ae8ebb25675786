//! The whole `main` of a service: tracing, settings, the cluster master or a worker, bind,
//! telemetry, serve until a signal; and the header naming the instance that answered.

use axum::Router;
use tokio::net::TcpListener;

use crate::Settings;
use lab_net::serve::{DRAIN_CAP, ServiceError, serve, serve_tls, shutdown_signal};

/// The whole `main` of a service: tracing, settings, bind, serve until a signal.
///
/// `build` gets the settings and returns the router. By default the runtime has one thread:
/// one event loop per process, like Node, so that scaling by replicas and workers shows what
/// it shows in the book; `LAB_THREADS=N` gives it N. With `LAB_WORKERS=N` this process becomes
/// a cluster master ([`crate::cluster`]) and the workers run the service.
pub fn run_service(
    name: &'static str,
    default_port: u16,
    build: impl FnOnce(&Settings) -> Router,
) -> Result<(), ServiceError> {
    run_service_with(name, default_port, crate::observe::Parts::ALL, build)
}

/// [`run_service`], sending only `parts` of the telemetry.
pub fn run_service_with(
    name: &'static str,
    default_port: u16,
    parts: crate::observe::Parts,
    build: impl FnOnce(&Settings) -> Router,
) -> Result<(), ServiceError> {
    lab_net::telemetry::init(name);
    let settings = Settings::from_env(default_port)?;
    if settings.workers > 1 && settings.worker.is_none() {
        let result = crate::cluster::run_master(name, &settings);
        lab_net::telemetry::flush();
        return result;
    }
    if settings.worker.is_some() {
        crate::cluster::worker_setup();
    }
    let telemetry = crate::observe::global(name, &settings.env_name, parts);
    let runtime = if settings.threads > 1 {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(settings.threads)
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    };
    let tel = telemetry.clone();
    let result = runtime.block_on(async move {
        let telemetry = tel;
        let addr = settings.bind_addr();
        let listener = match settings.worker {
            Some(_) => crate::cluster::bind_shared(&addr).await?,
            None => TcpListener::bind(&addr)
                .await
                .map_err(|source| ServiceError::Bind { addr: addr.clone(), source })?,
        };
        let local = listener.local_addr()?;
        tracing::info!(service = name, addr = %local, env = %settings.env_name, target = ?settings.target,
            threads = settings.threads, offload = settings.offload, worker = settings.worker, "listening");
        telemetry.set_local(local);
        telemetry.log("info", "listen", serde_json::json!({ "host": local.ip().to_string(), "port": local.port() }));
        let gauges = tokio::spawn(crate::observe::gauges(telemetry.clone()));
        let router = with_instance_header(crate::observe::apply(build(&settings), telemetry.clone()));
        match tls_from_env()? {
            Some(tls) => {
                tracing::info!(service = name, "serving TLS");
                serve_tls(listener, router, shutdown_signal(), tls, DRAIN_CAP).await?
            }
            None => serve(listener, router, shutdown_signal()).await?,
        };
        gauges.abort();
        tracing::info!(service = name, "stopped");
        Ok(())
    });
    telemetry.flush();
    lab_net::telemetry::flush();
    result
}

/// The response header naming the instance that answered (`recipe-api#2`), from
/// `LAB_INSTANCE`: what tells instances apart where every one is pid 1 (in containers).
pub const INSTANCE_HEADER: &str = "x-lab-instance";

fn with_instance_header(router: Router) -> Router {
    let Some(value) = std::env::var("LAB_INSTANCE")
        .ok()
        .and_then(|v| axum::http::HeaderValue::from_str(&v).ok())
    else {
        return router;
    };
    router.layer(axum::middleware::map_response(
        move |mut r: axum::response::Response| {
            let value = value.clone();
            async move {
                r.headers_mut().insert(INSTANCE_HEADER, value);
                r
            }
        },
    ))
}

/// The TLS config named by `TLS_CERT` and `TLS_KEY`, if both are set.
fn tls_from_env() -> Result<Option<std::sync::Arc<rustls::ServerConfig>>, ServiceError> {
    use lab_net::tls::env::{TLS_CERT, TLS_KEY};
    match (std::env::var_os(TLS_CERT), std::env::var_os(TLS_KEY)) {
        (Some(c), Some(k)) => Ok(Some(lab_net::tls::server_config(c.as_ref(), k.as_ref())?)),
        (None, None) => Ok(None),
        _ => Err(ServiceError::Config(format!(
            "set both {TLS_CERT} and {TLS_KEY}, or neither"
        ))),
    }
}
