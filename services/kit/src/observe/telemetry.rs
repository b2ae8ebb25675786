//! A service's telemetry: the Logstash logger, the StatsD client and the Zipkin reporter, their
//! queues and threads, made once per process ([`global`]).

use super::wire::*;
use crate::settings::env as vars;
use serde_json::json;
use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// statsd-client's `maxBufferSize`.
pub const STATSD_BUFFER: usize = 1200;

/// statsd-client's `socketTimeout`: buffered lines leave at least this often.
pub const STATSD_FLUSH: Duration = Duration::from_secs(1);

/// How often full StatsD packets are sent: off the request's path, and a burst of them wakes
/// the collector once, not once a packet (each wake-up cost the sender a few µs; issue 17).
pub const STATSD_SEND_EVERY: Duration = Duration::from_millis(20);

/// How often the `server.*` gauges are sent (the book's 10 s).
pub const GAUGE_EVERY: Duration = Duration::from_secs(10);

/// Spans waiting to be posted; past this, new spans are dropped (and counted).
pub(super) const SPAN_QUEUE: usize = 10_000;

/// Spans per POST (a few hundred KB; Zipkin takes up to 5 MB).
pub(super) const SPAN_BATCH: usize = 1000;

/// How often queued spans are posted.
pub(super) const SPAN_REPORT_EVERY: Duration = Duration::from_millis(100);

/// How often queued log documents are sent.
pub(super) const LOG_SEND_EVERY: Duration = Duration::from_millis(20);

/// Log documents waiting to be sent; past this, new ones are dropped (and counted).
pub(super) const OUTBOX_LIMIT: usize = 10_000;

pub use lab_net::serve::OPEN_CONNECTIONS;

/// Where a service sends its telemetry; any part may be off.
pub struct Telemetry {
    pub service: String,
    pub environment: String,
    pub(super) hostname: String,
    pub(super) logstash: Option<(UdpSocket, SocketAddr)>,
    pub(super) statsd: Option<Statsd>,
    pub(super) zipkin: Option<Zipkin>,
    /// This instance's address, for spans' localEndpoint.
    pub(super) local: OnceLock<SocketAddr>,
    pub(super) local_json: OnceLock<Box<serde_json::value::RawValue>>,
    /// Serialised log documents waiting for the `logstash-send` thread.
    pub(super) logs_out: Mutex<Outbox>,
    pub(super) logs_dropped: AtomicU64,
}

pub(super) struct Statsd {
    pub(super) sock: UdpSocket,
    pub(super) to: SocketAddr,
    pub(super) prefix: String,
    pub(super) buf: Mutex<String>,
    /// Full packets waiting for the `statsd-flush` thread.
    pub(super) ready: Mutex<Vec<String>>,
}

pub(super) struct Zipkin {
    /// Serialised spans waiting for the reporter (which wakes on its own clock: a request
    /// never wakes a thread).
    pub(super) queue: Mutex<Outbox>,
    pub(super) url_host: String,
    pub(super) addr: SocketAddr,
    pub(super) dropped: AtomicU64,
    /// Spans queued or being posted.
    pub(super) queued: AtomicI64,
}

pub(super) fn resolve(v: &str) -> Option<SocketAddr> {
    v.to_socket_addrs().ok()?.next()
}

pub(super) fn udp_to(to: SocketAddr) -> Option<UdpSocket> {
    let bind: SocketAddr = if to.is_ipv4() {
        ([0, 0, 0, 0], 0).into()
    } else {
        (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
    };
    let s = UdpSocket::bind(bind).ok()?;
    // A full send buffer drops the datagram instead of stalling a request.
    s.set_nonblocking(true).ok()?;
    Some(s)
}

pub(super) static GLOBAL: OnceLock<Arc<Telemetry>> = OnceLock::new();

/// What a service sends (each still only where its variable points). The book instruments
/// web-api fully and recipe-api for tracing only: every event is work for the collector too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Parts {
    pub logs: bool,
    pub metrics: bool,
    pub traces: bool,
}

impl Parts {
    pub const ALL: Parts = Parts {
        logs: true,
        metrics: true,
        traces: true,
    };
    pub const TRACES: Parts = Parts {
        logs: false,
        metrics: false,
        traces: true,
    };
}

impl Telemetry {
    /// Telemetry with every part off.
    pub fn off(service: &str) -> Self {
        Self::new(service, "development", None, None, None)
    }

    /// Send to the given `host:port` endpoints (each optional).
    pub fn new(
        service: &str,
        environment: &str,
        logstash: Option<&str>,
        statsd: Option<&str>,
        zipkin: Option<&str>,
    ) -> Self {
        let warn = |what: &str, v: &str| {
            tracing::warn!(
                service,
                "{what}={v:?} does not resolve to an address; not sending there"
            )
        };
        let logstash = logstash.and_then(|v| {
            let r = resolve(v).and_then(|a| Some((udp_to(a)?, a)));
            if r.is_none() {
                warn(vars::LOGSTASH, v);
            }
            r
        });
        let statsd = statsd.and_then(|v| {
            let r = resolve(v).and_then(|to| {
                Some(Statsd {
                    sock: udp_to(to)?,
                    to,
                    prefix: service.to_owned(),
                    buf: Mutex::new(String::new()),
                    ready: Mutex::new(Vec::new()),
                })
            });
            if r.is_none() {
                warn(vars::STATSD, v);
            }
            r
        });
        let zipkin = zipkin.and_then(|v| {
            let r = resolve(v).map(|addr| Zipkin {
                queue: Mutex::new(Outbox::default()),
                url_host: v.to_owned(),
                addr,
                dropped: AtomicU64::new(0),
                queued: AtomicI64::new(0),
            });
            if r.is_none() {
                warn(vars::ZIPKIN, v);
            }
            r
        });
        let hostname = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_owned())
            .unwrap_or_else(|_| "localhost".into());
        Self {
            service: service.to_owned(),
            environment: environment.to_owned(),
            hostname,
            logstash,
            statsd,
            zipkin,
            local: OnceLock::new(),
            local_json: OnceLock::new(),
            logs_out: Mutex::new(Outbox::default()),
            logs_dropped: AtomicU64::new(0),
        }
    }

    /// From `LOGSTASH`, `STATSD` and `ZIPKIN`, for the parts the service sends.
    pub fn from_env(service: &str, environment: &str, parts: Parts) -> Self {
        let var = |k| {
            std::env::var(k)
                .ok()
                .filter(|v: &String| !v.trim().is_empty())
        };
        Self::new(
            service,
            environment,
            var(vars::LOGSTASH).as_deref().filter(|_| parts.logs),
            var(vars::STATSD).as_deref().filter(|_| parts.metrics),
            var(vars::ZIPKIN).as_deref().filter(|_| parts.traces),
        )
    }

    pub fn enabled(&self) -> bool {
        self.logstash.is_some() || self.statsd.is_some() || self.zipkin.is_some()
    }

    /// Start the background senders (StatsD flush, span posting). Call once.
    pub fn start(self: &Arc<Self>) {
        if self.statsd.is_some() {
            let t = Arc::downgrade(self);
            let _ = std::thread::Builder::new()
                .name("statsd-flush".into())
                .spawn(move || {
                    let mut last = Instant::now();
                    while let Some(t) = t.upgrade() {
                        if last.elapsed() >= STATSD_FLUSH {
                            last = Instant::now();
                            t.flush_statsd();
                        } else {
                            t.send_ready_statsd();
                        }
                        drop(t);
                        std::thread::sleep(STATSD_SEND_EVERY);
                    }
                });
        }
        if self.zipkin.is_some() {
            let t = Arc::downgrade(self);
            let _ = std::thread::Builder::new()
                .name("zipkin-report".into())
                .spawn(move || report_spans(t));
        }
        if self.logstash.is_some() {
            let t = Arc::downgrade(self);
            let _ = std::thread::Builder::new()
                .name("logstash-send".into())
                .spawn(move || {
                    while let Some(t) = t.upgrade() {
                        t.flush_logs();
                        drop(t);
                        std::thread::sleep(LOG_SEND_EVERY);
                    }
                });
        }
    }

    pub fn set_local(&self, addr: SocketAddr) {
        let _ = self.local.set(addr);
        let mut e = json!({ "serviceName": self.service });
        let ip = if addr.ip().is_unspecified() {
            "127.0.0.1".to_owned()
        } else {
            addr.ip().to_string()
        };
        e[if addr.is_ipv4() { "ipv4" } else { "ipv6" }] = ip.into();
        e["port"] = addr.port().into();
        let _ = self
            .local_json
            .set(serde_json::value::to_raw_value(&e).expect("serialises"));
    }

    /// One Logstash document (the book's `logstash.js` shape), serialised now and sent by the
    /// `logstash-send` thread within [`LOG_SEND_EVERY`] (with the others queued, see [`pack_logs`]).
    pub fn log(&self, severity: &str, kind: &str, fields: impl serde::Serialize) {
        if self.logstash.is_none() {
            return;
        }
        let doc = LogDoc {
            timestamp: iso_now(),
            version: 1,
            app: &self.service,
            environment: &self.environment,
            severity,
            kind,
            fields,
            host: &self.hostname,
        };
        let mut q = self.logs_out.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= OUTBOX_LIMIT {
            self.logs_dropped.fetch_add(1, Relaxed);
        } else {
            q.push_json(&doc);
        }
    }

    /// Send the queued log documents now.
    pub fn flush_logs(&self) {
        let Some((sock, to)) = &self.logstash else {
            return;
        };
        let batch = Outbox::take(&self.logs_out);
        for packet in pack_logs(batch.docs()) {
            let _ = sock.send_to(&packet, to);
        }
        Outbox::recycle(&self.logs_out, batch);
    }

    /// One StatsD line, `<prefix>.<line>`, written straight into the buffer; the buffer goes
    /// out first when the line would take it past [`STATSD_BUFFER`].
    pub(super) fn metric(&self, line: std::fmt::Arguments) {
        use std::fmt::Write as _;
        let Some(s) = &self.statsd else { return };
        let full = {
            let mut buf = s.buf.lock().unwrap_or_else(|p| p.into_inner());
            let before = buf.len();
            if before > 0 {
                buf.push('\n');
            }
            let _ = write!(buf, "{}.{line}", s.prefix);
            if before > 0 && buf.len() > STATSD_BUFFER {
                let rest = buf[before + 1..].to_owned();
                buf.truncate(before);
                Some(std::mem::replace(&mut *buf, rest))
            } else {
                None
            }
        };
        if let Some(packet) = full {
            s.ready
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(packet);
        }
    }

    /// Send the full StatsD packets queued so far.
    fn send_ready_statsd(&self) {
        let Some(s) = &self.statsd else { return };
        let ready = std::mem::take(&mut *s.ready.lock().unwrap_or_else(|p| p.into_inner()));
        for packet in ready {
            let _ = s.sock.send_to(packet.as_bytes(), s.to);
        }
    }

    pub fn increment(&self, name: impl std::fmt::Display, by: i64) {
        self.metric(format_args!("{name}:{by}|c"));
    }

    pub fn timing(&self, name: impl std::fmt::Display, ms: f64) {
        self.metric(format_args!("{name}:{}|ms", round3(ms)));
    }

    pub fn gauge(&self, name: impl std::fmt::Display, value: f64) {
        // A negative gauge must be set from zero first, or StatsD reads it as a delta.
        if value < 0.0 {
            self.metric(format_args!("{name}:0|g"));
        }
        self.metric(format_args!("{name}:{}|g", round3(value)));
    }

    /// Send buffered StatsD lines now.
    pub fn flush_statsd(&self) {
        self.send_ready_statsd();
        let Some(s) = &self.statsd else { return };
        let packet = std::mem::take(&mut *s.buf.lock().unwrap_or_else(|p| p.into_inner()));
        if !packet.is_empty() {
            let _ = s.sock.send_to(packet.as_bytes(), s.to);
        }
    }

    /// Queue a span for Zipkin (dropped, and counted, when the queue is full).
    pub fn span(&self, span: impl serde::Serialize) {
        let Some(z) = &self.zipkin else { return };
        let mut q = z.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= SPAN_QUEUE {
            z.dropped.fetch_add(1, Relaxed);
        } else if q.push_json(&span) {
            z.queued.fetch_add(1, Relaxed);
        }
    }

    pub fn tracing_enabled(&self) -> bool {
        self.zipkin.is_some()
    }

    /// Send what is buffered (StatsD lines, queued spans): at shutdown.
    pub fn flush(&self) {
        self.flush_statsd();
        self.flush_logs();
        if let Some(z) = &self.zipkin {
            // The reporter thread drains the queue; give it a moment to empty it.
            let deadline = Instant::now() + Duration::from_secs(1);
            while Instant::now() < deadline && z.queued.load(Relaxed) > 0 {
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }

    /// This instance's localEndpoint, serialised once (at [`Telemetry::set_local`]).
    pub(super) fn local_endpoint(&self) -> &serde_json::value::RawValue {
        static UNKNOWN: std::sync::LazyLock<Box<serde_json::value::RawValue>> =
            std::sync::LazyLock::new(|| {
                serde_json::value::to_raw_value(&json!({})).expect("serialises")
            });
        self.local_json.get().map_or(&**UNKNOWN, |b| &**b)
    }
}

pub(super) fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Post queued spans in batches of [`SPAN_BATCH`] every [`SPAN_REPORT_EVERY`], on one kept-alive
/// connection (a connection per batch cost a handshake and a teardown on both sides each
/// time); stops when the telemetry is gone.
pub(super) fn report_spans(t: std::sync::Weak<Telemetry>) {
    let mut conn: Option<std::net::TcpStream> = None;
    loop {
        std::thread::sleep(SPAN_REPORT_EVERY);
        let Some(tel) = t.upgrade() else { return };
        let Some(z) = &tel.zipkin else { return };
        let spans = Outbox::take(&z.queue);
        let docs: Vec<&[u8]> = spans.docs().collect();
        for batch in docs.chunks(SPAN_BATCH) {
            let body = span_body(batch);
            // A kept connection the server has since closed fails at once: one more try, new.
            let reused = conn.is_some();
            let mut sent = post_spans(z, &mut conn, &body);
            if reused && sent.is_err() {
                sent = post_spans(z, &mut conn, &body);
            }
            let sent = sent.and_then(|status| match status.starts_with('2') {
                true => Ok(()),
                false => Err(std::io::Error::other(format!("zipkin answered {status}"))),
            });
            if let Err(e) = sent {
                z.dropped.fetch_add(batch.len() as u64, Relaxed);
                tracing::debug!(error = %e, "zipkin: spans not delivered");
            }
            z.queued.fetch_sub(batch.len() as i64, Relaxed);
        }
        drop(docs);
        Outbox::recycle(&z.queue, spans);
    }
}

/// Serialised spans as one JSON array.
fn span_body(batch: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::with_capacity(batch.iter().map(|s| s.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, span) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(span);
    }
    body.push(b']');
    body
}

/// One blocking `POST /api/v2/spans` on `conn` (opened when absent; dropped after a failure
/// or an answer that does not keep it open); the answer's status.
pub(super) fn post_spans(
    z: &Zipkin,
    conn: &mut Option<std::net::TcpStream>,
    body: &[u8],
) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut s = match conn.take() {
        Some(s) => s,
        None => {
            let s = std::net::TcpStream::connect_timeout(&z.addr, Duration::from_secs(2))?;
            s.set_write_timeout(Some(Duration::from_secs(2)))?;
            s.set_read_timeout(Some(Duration::from_secs(5)))?;
            s.set_nodelay(true)?;
            s
        }
    };
    let mut req = format!(
        "POST /api/v2/spans HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        z.url_host,
        body.len()
    )
    .into_bytes();
    req.extend_from_slice(body);
    s.write_all(&req)?;
    // The answer's head, then its body by Content-Length (Zipkin's 202 has none).
    let mut head = Vec::with_capacity(256);
    let mut byte = [0u8; 512];
    let end = loop {
        let n = s.read(&mut byte)?;
        if n == 0 {
            return Err(std::io::Error::other("zipkin closed the connection"));
        }
        head.extend_from_slice(&byte[..n]);
        if let Some(at) = head.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
        if head.len() > 16 * 1024 {
            return Err(std::io::Error::other("zipkin's answer has no end of head"));
        }
    };
    let text = String::from_utf8_lossy(&head[..end]).to_ascii_lowercase();
    let status = text.get(9..12).unwrap_or("000").to_owned();
    let length = text.lines().find_map(|l| {
        l.strip_prefix("content-length:")
            .and_then(|v| v.trim().parse::<usize>().ok())
    });
    let mut keep = length.is_some() && !text.contains("connection: close");
    if let Some(len) = length {
        let mut left = len.saturating_sub(head.len() - end);
        while left > 0 {
            let n = s.read(&mut byte[..left.min(512)])?;
            if n == 0 {
                keep = false;
                break;
            }
            left -= n;
        }
    }
    if keep {
        *conn = Some(s);
    }
    Ok(status)
}

/// The process-wide telemetry, from the environment on first use.
pub fn global(service: &str, environment: &str, parts: Parts) -> Arc<Telemetry> {
    GLOBAL
        .get_or_init(|| {
            let t = Arc::new(Telemetry::from_env(service, environment, parts));
            t.start();
            t
        })
        .clone()
}

/// The already-initialised process-wide telemetry, if any.
pub fn current() -> Option<Arc<Telemetry>> {
    GLOBAL.get().cloned()
}

pub(super) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `2026-11-25T17:00:00.123Z` (JavaScript's `toISOString`).
pub fn iso_now() -> String {
    iso(SystemTime::now())
}

pub fn iso(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

/// The most a log datagram carries: under Logstash's 65,536-byte read buffer and loopback's
/// 65,507-byte datagram.
pub(super) const LOG_DATAGRAM: usize = 60_000;

/// Queued log documents as datagrams: several to a datagram as one JSON array (Logstash's json
/// codec, like the hub, makes an event of each element), up to [`LOG_DATAGRAM`] bytes; a lone
/// document, or one too large to share, goes as it is. One `sendto` per datagram, not per
/// document: the system call was most of what logging cost a service.
pub(super) fn pack_logs<'a>(docs: impl IntoIterator<Item = &'a [u8]>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut group: Vec<&[u8]> = Vec::new();
    let mut size = 1;
    let close = |group: &mut Vec<&[u8]>, out: &mut Vec<Vec<u8>>| match group.len() {
        0 => {}
        1 => out.push(group[0].to_vec()),
        _ => {
            let mut p = Vec::with_capacity(group.iter().map(|d| d.len() + 1).sum::<usize>() + 1);
            for (i, d) in group.iter().enumerate() {
                p.push(if i == 0 { b'[' } else { b',' });
                p.extend_from_slice(d);
            }
            p.push(b']');
            out.push(p);
        }
    };
    for d in docs {
        if !group.is_empty() && size + d.len() + 1 > LOG_DATAGRAM {
            close(&mut group, &mut out);
            group.clear();
            size = 1;
        }
        group.push(d);
        size += d.len() + 1;
    }
    close(&mut group, &mut out);
    out
}
