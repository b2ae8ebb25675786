//! The foundation the lab's infra and services both build on, with none of the book's
//! behaviour (that is `lab-service-kit`'s):
//!
//! - [`client`]: a small HTTP/1.1 (and HTTPS) client with a deadline, pooled.
//! - [`tls`]: rustls server and client configs from PEM files (the lab CA's).
//! - [`serve`]: run a router on a listener until a shutdown future fires, draining in-flight
//!   requests for at most [`serve::DRAIN_CAP`]; TLS too; open connections counted.
//! - [`telemetry`]: tracing setup (`RUST_LOG`) and the one-line-per-request log.
//! - [`chart`]: SVG line charts (time, linear or percentile axes), no plotting dependency.
//! - [`html`]: the one escaper of text put into HTML, SVG or XML.
//! - [`env`]: the environment variables this crate's users read.

pub mod chart;
pub mod client;
pub mod html;
pub mod serve;
pub mod telemetry;
pub mod tls;

/// Environment variables read below the services (the lab's own knobs, not the book's).
pub mod env {
    /// Runtime threads of a process (`threads = N` in lab.toml).
    pub const LAB_THREADS: &str = "LAB_THREADS";
}
