//! What the lab's services share, so `recipe-api` and `web-api` stay about their own behaviour.
//!
//! - [`settings`]: the book's environment (`HOST`, `PORT`, `TARGET`, `LAB_ENV` or `NODE_ENV`).
//! - [`serve`]: run a router on a listener until a shutdown future fires, draining in-flight
//!   requests for at most [`serve::DRAIN_CAP`]; [`service::run_service`] is the whole `main` of a service.
//! - [`cluster`]: Node's cluster module (a master and workers sharing one port).
//! - [`compression`]: gzip responses for clients that send `Accept-Encoding: gzip`, and only them.
//! - [`error`]: JSON error bodies with their HTTP status.
//! - [`telemetry`]: tracing setup and the one-line-per-request log.
//! - [`health`]: `/health` with dependencies (OK / DEGRADED / DOWN, real Redis and PostgreSQL probes).
//! - [`observe`]: chapter 4's instrumentation (Logstash logs, StatsD metrics, Zipkin spans, B3).
//! - [`tls`]: rustls server and client configs from the lab's PEM files.
//! - [`client`]: a small HTTP/1.1 (and HTTPS) client with a deadline, used by web-api, the supervisor's
//!   health probes and the `lab check` scenarios.

pub mod client;
pub mod cluster;
pub mod compression;
pub mod error;
pub mod health;
pub mod observe;
pub mod serve;
pub mod service;
pub mod settings;
pub mod telemetry;
pub mod tls;

pub use error::JsonError;
pub use settings::Settings;
