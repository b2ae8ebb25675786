//! What a run does: the target, the request, how many connections, for how long or how many
//! requests, at what rate.

use std::time::Duration;

use bytes::Bytes;

/// A `http://` or `https://host:port/path` target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// `https://`: TLS (the plan's `tls` config says whom to trust).
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// `path?query`, starting with `/`.
    pub path: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PlanError {
    #[error(
        "{0:?} is not an http:// URL (https, HTTP/2, GraphQL and gRPC come in a later version)"
    )]
    Scheme(String),
    #[error("{url:?}: {reason}")]
    Url { url: String, reason: &'static str },
    #[error("{0}")]
    Invalid(String),
}

impl Target {
    pub fn parse(url: &str) -> Result<Self, PlanError> {
        let (tls, rest) = match (url.strip_prefix("http://"), url.strip_prefix("https://")) {
            (Some(r), _) => (false, r),
            (None, Some(r)) => (true, r),
            _ => return Err(PlanError::Scheme(url.to_owned())),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let bad = |reason| PlanError::Url {
            url: url.to_owned(),
            reason,
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || h.starts_with('[') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| bad("the port is not a number 1-65535"))?,
            ),
            _ => (authority, if tls { 443 } else { 80 }),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(Self {
            tls,
            host: host
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_owned(),
            port,
            path: path.to_owned(),
        })
    }

    /// `host:port` to connect to.
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}{}", self.addr(), self.path)
    }
}

/// When a run ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// After this long (in-flight requests finish, none is started after).
    Duration(Duration),
    /// After this many requests have completed.
    Amount(u64),
}

#[derive(Debug, Clone)]
pub struct Plan {
    pub target: Target,
    pub method: String,
    pub headers: Vec<(String, String)>,
    pub body: Bytes,
    pub connections: usize,
    /// Requests written back to back on a connection before their answers are read (HTTP/1.1).
    pub pipelining: usize,
    pub stop: Stop,
    /// Requests per second overall; `None`: closed loop (each connection sends as fast as answers come).
    pub rate: Option<f64>,
    /// A request not answered within this counts as a timeout (and its connection is replaced).
    pub timeout: Duration,
    /// Threads driving the connections.
    pub workers: usize,
    /// Load sent before measuring starts (not counted).
    pub warmup: Duration,
    /// HTTP/2 with prior knowledge (h2c): one connection carries `pipelining` concurrent streams.
    pub http2: bool,
    /// gRPC unary over HTTP/2: the body is one length-prefixed message, success is
    /// `grpc-status: 0` in the trailers.
    pub grpc: bool,
    /// For `https://` targets: whom to trust (ALPN is set by the engine).
    pub tls: Option<std::sync::Arc<rustls::ClientConfig>>,
}

impl Plan {
    /// Autocannon's defaults: 10 connections, no pipelining, 10 s, GET.
    pub fn new(target: Target) -> Self {
        Self {
            target,
            method: "GET".into(),
            headers: Vec::new(),
            body: Bytes::new(),
            connections: 10,
            pipelining: 1,
            stop: Stop::Duration(Duration::from_secs(10)),
            rate: None,
            timeout: Duration::from_secs(10),
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            warmup: Duration::ZERO,
            http2: false,
            grpc: false,
            tls: None,
        }
    }

    pub fn validate(&self) -> Result<(), PlanError> {
        let bad = |m: &str| Err(PlanError::Invalid(m.to_owned()));
        if self.connections == 0 {
            return bad("--connections must be at least 1");
        }
        if self.pipelining == 0 {
            return bad("--pipelining must be at least 1");
        }
        if self.workers == 0 {
            return bad("--workers must be at least 1");
        }
        if self.target.tls && self.tls.is_none() {
            return bad(
                "an https:// target needs a TLS config (the lab CA, --ca FILE or --insecure)",
            );
        }
        if self.grpc && !self.http2 {
            return bad("gRPC runs over HTTP/2");
        }
        if let Some(r) = self.rate {
            if !(r > 0.0 && r.is_finite()) {
                return bad("--rate must be a positive number of requests per second");
            }
            if self.pipelining > 1 && !self.http2 {
                return bad(
                    "--rate sends each request when it is due: use it without --pipelining",
                );
            }
        }
        if self.stop == Stop::Amount(0) {
            return bad("--amount must be at least 1");
        }
        if !self
            .method
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            || self.method.is_empty()
        {
            return bad("--method must be a token like GET or POST");
        }
        for (k, v) in &self.headers {
            if k.is_empty() || k.bytes().any(|b| b <= b' ' || b == b':') || v.contains(['\r', '\n'])
            {
                return Err(PlanError::Invalid(format!("invalid header {k:?}: {v:?}")));
            }
        }
        Ok(())
    }

    /// The request as it goes on the wire (written once, sent many times).
    pub fn request_bytes(&self) -> Bytes {
        let mut r = format!("{} {} HTTP/1.1\r\n", self.method, self.target.path);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(k, _)| k.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            r.push_str(&format!("Host: {}\r\n", self.target.addr()));
        }
        for (k, v) in &self.headers {
            r.push_str(&format!("{k}: {v}\r\n"));
        }
        if !self.body.is_empty() && !has("content-length") {
            r.push_str(&format!("Content-Length: {}\r\n", self.body.len()));
        }
        r.push_str("\r\n");
        let mut bytes = r.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = Target::parse("http://127.0.0.1:4000/recipes/42?x=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 4000, "/recipes/42?x=1")
        );
        assert_eq!(Target::parse("http://localhost").unwrap().path, "/");
        assert_eq!(
            Target::parse("http://[::1]:80/").unwrap().addr(),
            "[::1]:80"
        );
        assert_eq!(Target::parse("https://x/").unwrap().port, 443);
        assert!(matches!(
            Target::parse("ftp://x/"),
            Err(PlanError::Scheme(_))
        ));
        assert!(Target::parse("http://x:port/").is_err());
    }

    #[test]
    fn the_request_is_built_once_with_host_and_length() {
        let mut p = Plan::new(Target::parse("http://h:1/a").unwrap());
        p.method = "POST".into();
        p.body = Bytes::from_static(b"{}");
        p.headers
            .push(("Content-Type".into(), "application/json".into()));
        assert_eq!(
            &p.request_bytes()[..],
            b"POST /a HTTP/1.1\r\nHost: h:1\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        );
        p.rate = Some(10.0);
        p.pipelining = 2;
        assert!(p.validate().is_err());
    }
}
