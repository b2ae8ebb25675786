//! What the hub receives: parsers, each a pure function over bytes (fuzzed and unit tested),
//! and [`pipeline`], the threads between the sockets and the store. Carbon plaintext has its
//! own TCP listener ([`carbon`]).

pub mod carbon;
pub mod lite;
pub mod logs;
pub mod logs_fast;
pub mod otlp;
pub mod pipeline;
mod span_fields;
mod span_json;
pub mod statsd;
pub mod zipkin;
