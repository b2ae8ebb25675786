//! Runtimes that run instances. Only `process` exists so far; the `docker` runtime (issue on
//! containers) will put both behind one trait once a second implementation shows its shape.

pub mod process;
