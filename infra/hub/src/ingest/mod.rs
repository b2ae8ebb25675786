//! Parsers of what the hub receives. Each is a pure function over bytes (fuzzed and unit
//! tested); the threads and sockets around them live in the crate root and [`crate::api`].

pub mod logs;
pub mod statsd;
pub mod zipkin;
