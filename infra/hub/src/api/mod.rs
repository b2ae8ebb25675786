//! The hub's HTTP API handlers (one port, routed by [`crate::http`]): Graphite's render and
//! find endpoints as Grafana and Cabot call them ([`graphite`]), Prometheus exposition
//! ([`prometheus`]), log search ([`logs`]), alert rules ([`alerts`]) and the hub's status
//! ([`status`]). The Zipkin v2 API has its own port ([`zipkin`]); carbon plaintext its own TCP
//! listener ([`carbon`]).

pub mod alerts;
pub mod graphite;
pub mod logs;
pub mod otlp;
pub mod prometheus;
pub mod status;
pub mod zipkin;
