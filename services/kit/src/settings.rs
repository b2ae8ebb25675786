//! Settings from the environment, named as in the book so a learner's Node.js code and ours
//! read the same variables.

use std::time::Duration;

/// Environment variable names, in one place (the supervisor sets the same ones).
pub mod env {
    pub const HOST: &str = "HOST";
    pub const PORT: &str = "PORT";
    pub const TARGET: &str = "TARGET";
    pub const LAB_ENV: &str = "LAB_ENV";
    pub const NODE_ENV: &str = "NODE_ENV";
    pub const UPSTREAM_TIMEOUT_MS: &str = "UPSTREAM_TIMEOUT_MS";
    pub const TARGET_PROTOCOL: &str = "TARGET_PROTOCOL";
    /// `host:port` of a Logstash UDP JSON input (the book's env name).
    pub const LOGSTASH: &str = "LOGSTASH";
    /// `host:port` of a StatsD daemon.
    pub const STATSD: &str = "STATSD";
    /// `host:port` of a Zipkin collector (the book's env name).
    pub const ZIPKIN: &str = "ZIPKIN";
    /// OpenTelemetry's: where an OTel SDK exports (the hub's OTLP/HTTP input, `http://host:port`).
    pub const OTEL_EXPORTER_OTLP_ENDPOINT: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
    /// OpenTelemetry's: the `service.name` an OTel SDK reports (the lab's service name).
    pub const OTEL_SERVICE_NAME: &str = "OTEL_SERVICE_NAME";
    /// Event-loop threads of a built-in service (default 1: one loop per process, like Node).
    pub use lab_net::env::LAB_THREADS;
    /// `1`: CPU-bound work runs on a blocking pool (libuv's thread pool in the book).
    pub const LAB_OFFLOAD: &str = "LAB_OFFLOAD";
    /// Worker processes sharing the port (Node's cluster module); the process given it is the master.
    pub const LAB_WORKERS: &str = "LAB_WORKERS";
    /// `1`: the master forks a new worker when one exits (default: `0`, as the book leaves it).
    pub const LAB_RESPAWN: &str = "LAB_RESPAWN";
    /// Set by a master on its workers: this worker's number (1-based). Workers bind with SO_REUSEPORT.
    pub const LAB_WORKER: &str = "LAB_WORKER";
}

/// How long web-api waits for its upstream unless `UPSTREAM_TIMEOUT_MS` says.
pub const DEFAULT_UPSTREAM_TIMEOUT: Duration = Duration::from_secs(2);

/// What a service reads from its environment at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Interface to bind (`HOST`, default `127.0.0.1` as in the book).
    pub host: String,
    /// Port to bind (`PORT`, default given by the service: 4000 for recipe-api, 3000 for web-api).
    pub port: u16,
    /// `host:port` of the upstream service (`TARGET`), if the service has one.
    pub target: Option<String>,
    /// Environment name (`LAB_ENV`, else `NODE_ENV`, else `development`).
    pub env_name: String,
    /// How long web-api waits for its upstream (`UPSTREAM_TIMEOUT_MS`, default 2 s).
    pub upstream_timeout: Duration,
    /// Event-loop threads (`LAB_THREADS`, default 1).
    pub threads: usize,
    /// Move CPU-bound work off the event loop (`LAB_OFFLOAD=1`).
    pub offload: bool,
    /// Worker processes sharing the port (`LAB_WORKERS`, default 1: no master).
    pub workers: usize,
    /// Replace a worker that exits (`LAB_RESPAWN=1`).
    pub respawn: bool,
    /// This process's worker number when a master started it (`LAB_WORKER`).
    pub worker: Option<usize>,
}

/// A variable was set to something the service cannot use.
#[derive(Debug, thiserror::Error)]
#[error("environment variable {name}={value:?} is invalid: {reason}")]
pub struct SettingsError {
    pub name: &'static str,
    pub value: String,
    pub reason: &'static str,
}

impl Settings {
    /// Read the settings from the process environment.
    pub fn from_env(default_port: u16) -> Result<Self, SettingsError> {
        Self::from_lookup(default_port, |k| std::env::var(k).ok())
    }

    /// Read the settings through `lookup`, so tests need not touch the process environment.
    pub fn from_lookup(
        default_port: u16,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, SettingsError> {
        let nonempty = |k: &str| lookup(k).filter(|v| !v.trim().is_empty());
        let port = match nonempty(env::PORT) {
            None => default_port,
            Some(v) => v.trim().parse().map_err(|_| SettingsError {
                name: env::PORT,
                value: v.clone(),
                reason: "expected a port number 0-65535",
            })?,
        };
        let upstream_timeout = match nonempty(env::UPSTREAM_TIMEOUT_MS) {
            None => DEFAULT_UPSTREAM_TIMEOUT,
            Some(v) => Duration::from_millis(v.trim().parse().map_err(|_| SettingsError {
                name: env::UPSTREAM_TIMEOUT_MS,
                value: v.clone(),
                reason: "expected milliseconds as a whole number",
            })?),
        };
        let count = |name: &'static str, default: usize| -> Result<usize, SettingsError> {
            match nonempty(name) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<usize>() {
                    Ok(n) if (1..=256).contains(&n) => Ok(n),
                    _ => Err(SettingsError {
                        name,
                        value: v.clone(),
                        reason: "expected a whole number from 1 to 256",
                    }),
                },
            }
        };
        let flag = |name: &'static str| -> Result<bool, SettingsError> {
            match nonempty(name).as_deref().map(str::trim) {
                None | Some("0" | "false") => Ok(false),
                Some("1" | "true") => Ok(true),
                Some(v) => Err(SettingsError {
                    name,
                    value: v.to_owned(),
                    reason: "expected 1, 0, true or false",
                }),
            }
        };
        Ok(Self {
            threads: count(env::LAB_THREADS, 1)?,
            offload: flag(env::LAB_OFFLOAD)?,
            workers: count(env::LAB_WORKERS, 1)?,
            respawn: flag(env::LAB_RESPAWN)?,
            worker: match nonempty(env::LAB_WORKER) {
                None => None,
                Some(_) => Some(count(env::LAB_WORKER, 1)?),
            },
            host: nonempty(env::HOST).unwrap_or_else(|| "127.0.0.1".into()),
            port,
            target: nonempty(env::TARGET),
            env_name: nonempty(env::LAB_ENV)
                .or_else(|| nonempty(env::NODE_ENV))
                .unwrap_or_else(|| "development".into()),
            upstream_timeout,
        })
    }

    /// `HOST:PORT`, bracketing IPv6 literals.
    pub fn bind_addr(&self) -> String {
        if self.host.contains(':') && !self.host.starts_with('[') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl From<SettingsError> for lab_net::serve::ServiceError {
    fn from(e: SettingsError) -> Self {
        Self::Config(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn defaults_follow_the_book() {
        let s = Settings::from_lookup(4000, lookup(&[])).unwrap();
        assert_eq!(s.bind_addr(), "127.0.0.1:4000");
        assert_eq!(s.env_name, "development");
        assert_eq!(s.target, None);
    }

    #[test]
    fn lab_env_wins_over_node_env() {
        let s = Settings::from_lookup(1, lookup(&[("NODE_ENV", "production")])).unwrap();
        assert_eq!(s.env_name, "production");
        let s = Settings::from_lookup(
            1,
            lookup(&[("NODE_ENV", "production"), ("LAB_ENV", "staging")]),
        )
        .unwrap();
        assert_eq!(s.env_name, "staging");
    }

    #[test]
    fn a_bad_port_names_the_variable() {
        let e = Settings::from_lookup(1, lookup(&[("PORT", "http")])).unwrap_err();
        assert!(e.to_string().contains("PORT=\"http\""), "{e}");
    }

    #[test]
    fn threads_workers_and_flags() {
        let s = Settings::from_lookup(1, lookup(&[])).unwrap();
        assert_eq!(
            (s.threads, s.workers, s.offload, s.respawn, s.worker),
            (1, 1, false, false, None)
        );
        let s = Settings::from_lookup(
            1,
            lookup(&[
                ("LAB_THREADS", "4"),
                ("LAB_WORKERS", "2"),
                ("LAB_OFFLOAD", "1"),
                ("LAB_RESPAWN", "true"),
                ("LAB_WORKER", "2"),
            ]),
        )
        .unwrap();
        assert_eq!(
            (s.threads, s.workers, s.offload, s.respawn, s.worker),
            (4, 2, true, true, Some(2))
        );
        let e = Settings::from_lookup(1, lookup(&[("LAB_THREADS", "0")])).unwrap_err();
        assert!(e.to_string().contains("LAB_THREADS=\"0\""), "{e}");
        let e = Settings::from_lookup(1, lookup(&[("LAB_OFFLOAD", "yes")])).unwrap_err();
        assert!(e.to_string().contains("LAB_OFFLOAD"), "{e}");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let s = Settings::from_lookup(5, lookup(&[("HOST", "::1")])).unwrap();
        assert_eq!(s.bind_addr(), "[::1]:5");
    }
}
