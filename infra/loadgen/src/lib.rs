//! `lab load`: an autocannon-class HTTP load generator.
//!
//! - [`plan`]: target, request, connections, pipelining, duration or amount, rate.
//! - [`run`]: the engine (own HTTP/1.1 client on tokio, tickets, coordinated-omission correction).
//! - [`report`]: autocannon's result shape (`--json`) and its two tables, from one struct.
//! - [`sla`]: `p99<20ms,errors<0.1%,rps>5000` bounds checked against a report.

pub mod plan;
pub mod report;
pub mod run;
pub mod sla;
pub mod svg;
pub mod tls;

pub use plan::{Plan, Stop, Target};
pub use report::Report;
