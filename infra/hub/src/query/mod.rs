//! The query languages: KQL for logs, Graphite targets for metrics.

pub mod graphite;
pub mod kql;
pub mod source;
