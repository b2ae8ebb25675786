//! What the lab's services share, so `recipe-api` and `web-api` stay about their own behaviour:
//! the book's behaviour (settings, observe, cluster, health), on top of `lab-net` (client, TLS,
//! serve, telemetry; re-exported here under their old paths).
//!
//! - [`settings`]: the book's environment (`HOST`, `PORT`, `TARGET`, `LAB_ENV` or `NODE_ENV`).
//! - [`service`]: [`service::run_service`] is the whole `main` of a service (cluster master or
//!   worker, telemetry, serve until a signal).
//! - [`serve`] (`lab-net`): run a router on a listener until a shutdown future fires, draining
//!   in-flight requests for at most [`serve::DRAIN_CAP`].
//! - [`cluster`]: Node's cluster module (a master and workers sharing one port).
//! - [`compression`]: gzip responses for clients that send `Accept-Encoding: gzip`, and only them.
//! - [`error`]: JSON error bodies with their HTTP status.
//! - [`telemetry`] (`lab-net`): tracing setup and the one-line-per-request log.
//! - [`health`]: `/health` with dependencies (OK / DEGRADED / DOWN, real Redis and PostgreSQL probes).
//! - [`observe`]: chapter 4's instrumentation (Logstash logs, StatsD metrics, Zipkin spans, B3).
//! - [`tls`] (`lab-net`): rustls server and client configs from the lab's PEM files.
//! - [`client`] (`lab-net`): a small HTTP/1.1 (and HTTPS) client with a deadline, used by web-api, the supervisor's
//!   health probes and the `lab check` scenarios.

pub mod cluster;
/// The foundation kit builds on, re-exported under kit's old paths.
pub use lab_net::{client, serve, telemetry, tls};
pub mod compression;
pub mod error;
pub mod health;
pub mod observe;
pub mod service;
pub mod settings;

pub use error::JsonError;

/// This process's id, asked of the kernel once: the book's services answer it on every
/// request (`consumer_pid`, `producer_pid`), and a `getpid` a request is a syscall each time.
/// Workers are processes of their own (spawned, never forked), so each reads its own.
pub fn pid() -> u32 {
    static PID: std::sync::OnceLock<u32> = std::sync::OnceLock::new();
    *PID.get_or_init(std::process::id)
}
pub use settings::Settings;
