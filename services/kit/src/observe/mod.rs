//! Chapter 4's instrumentation, as the book's services do it, towards whatever `LOGSTASH`,
//! `STATSD` and `ZIPKIN` name (the lab's hub, or the real ELK / StatsD / Zipkin):
//!
//! - logs: one Logstash UDP JSON document per event (`request-incoming`, `request-outgoing`,
//!   `request-failure`, `listen`), the fields of the book's `logstash.js`;
//! - metrics: StatsD lines with the service's prefix, batched like statsd-client (flushed at
//!   1200 bytes or every second): per request `inbound.response_code.<status>`,
//!   `inbound.response_code.<route>.<status>`, `inbound.response_time.<route>`; per upstream
//!   call `outbound.<svc>.request-time` and `.request-count`; every 10 s the `server.*` gauges
//!   and the `eventlag` timer;
//! - traces: Zipkin v2 spans (SERVER per request, CLIENT per upstream call) joined through B3
//!   headers ([`b3`]), queued and posted in batches by a background thread, so a request never
//!   waits on Zipkin.
//!
//! With none of the three variables set, [`apply`] leaves the router as it is: no cost.
//! Requests to `/health` are not logged, counted or traced (the supervisor and the hub poll it
//! every few seconds, and those polls would bury the requests people look for).

pub mod b3;

use std::net::{SocketAddr, ToSocketAddrs, UdpSocket};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;

use crate::settings::env as vars;

/// statsd-client's `maxBufferSize`.
pub const STATSD_BUFFER: usize = 1200;
/// statsd-client's `socketTimeout`: buffered lines leave at least this often.
pub const STATSD_FLUSH: Duration = Duration::from_secs(1);
/// How often the `server.*` gauges are sent (the book's 10 s).
pub const GAUGE_EVERY: Duration = Duration::from_secs(10);
/// Spans waiting to be posted; past this, new spans are dropped (and counted).
const SPAN_QUEUE: usize = 10_000;
/// Spans per POST.
const SPAN_BATCH: usize = 100;
/// How often queued spans are posted.
const SPAN_REPORT_EVERY: Duration = Duration::from_millis(100);
/// How often queued log documents are sent.
const LOG_SEND_EVERY: Duration = Duration::from_millis(20);
/// Log documents waiting to be sent; past this, new ones are dropped (and counted).
const OUTBOX_LIMIT: usize = 10_000;

/// Open client connections of this process (the `server.conn` gauge).
pub static OPEN_CONNECTIONS: AtomicI64 = AtomicI64::new(0);

/// Where a service sends its telemetry; any part may be off.
pub struct Telemetry {
    pub service: String,
    pub environment: String,
    hostname: String,
    logstash: Option<(UdpSocket, SocketAddr)>,
    statsd: Option<Statsd>,
    zipkin: Option<Zipkin>,
    /// This instance's address, for spans' localEndpoint.
    local: OnceLock<SocketAddr>,
    local_json: OnceLock<Box<serde_json::value::RawValue>>,
    /// Serialised log documents waiting for the `logstash-send` thread.
    logs_out: Mutex<Vec<Vec<u8>>>,
    logs_dropped: AtomicU64,
}

struct Statsd {
    sock: UdpSocket,
    to: SocketAddr,
    prefix: String,
    buf: Mutex<String>,
}

struct Zipkin {
    /// Serialised spans waiting for the reporter (which wakes on its own clock: a request
    /// never wakes a thread).
    queue: Mutex<Vec<Vec<u8>>>,
    url_host: String,
    addr: SocketAddr,
    dropped: AtomicU64,
    /// Spans queued or being posted.
    queued: AtomicI64,
}

fn resolve(v: &str) -> Option<SocketAddr> {
    v.to_socket_addrs().ok()?.next()
}

fn udp_to(to: SocketAddr) -> Option<UdpSocket> {
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

static GLOBAL: OnceLock<Arc<Telemetry>> = OnceLock::new();

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
                })
            });
            if r.is_none() {
                warn(vars::STATSD, v);
            }
            r
        });
        let zipkin = zipkin.and_then(|v| {
            let r = resolve(v).map(|addr| Zipkin {
                queue: Mutex::new(Vec::new()),
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
            logs_out: Mutex::new(Vec::new()),
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
                    while let Some(t) = t.upgrade() {
                        t.flush_statsd();
                        drop(t);
                        std::thread::sleep(STATSD_FLUSH);
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
    /// `logstash-send` thread within [`LOG_SEND_EVERY`] (one datagram per document).
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
        let Ok(bytes) = serde_json::to_vec(&doc) else {
            return;
        };
        let mut q = self.logs_out.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() < OUTBOX_LIMIT {
            q.push(bytes);
        } else {
            self.logs_dropped.fetch_add(1, Relaxed);
        }
    }

    /// Send the queued log documents now.
    pub fn flush_logs(&self) {
        let Some((sock, to)) = &self.logstash else {
            return;
        };
        let batch = std::mem::take(&mut *self.logs_out.lock().unwrap_or_else(|p| p.into_inner()));
        for doc in batch {
            let _ = sock.send_to(&doc, to);
        }
    }

    fn metric(&self, line: std::fmt::Arguments) {
        let Some(s) = &self.statsd else { return };
        let line = format!("{}.{line}", s.prefix);
        let full = {
            let mut buf = s.buf.lock().unwrap_or_else(|p| p.into_inner());
            let mut out = None;
            if !buf.is_empty() && buf.len() + 1 + line.len() > STATSD_BUFFER {
                out = Some(std::mem::take(&mut *buf));
            }
            if !buf.is_empty() {
                buf.push('\n');
            }
            buf.push_str(&line);
            out
        };
        if let Some(packet) = full {
            let _ = s.sock.send_to(packet.as_bytes(), s.to);
        }
    }

    pub fn increment(&self, name: &str, by: i64) {
        self.metric(format_args!("{name}:{by}|c"));
    }

    pub fn timing(&self, name: &str, ms: f64) {
        self.metric(format_args!("{name}:{}|ms", round3(ms)));
    }

    pub fn gauge(&self, name: &str, value: f64) {
        // A negative gauge must be set from zero first, or StatsD reads it as a delta.
        if value < 0.0 {
            self.metric(format_args!("{name}:0|g"));
        }
        self.metric(format_args!("{name}:{}|g", round3(value)));
    }

    /// Send buffered StatsD lines now.
    pub fn flush_statsd(&self) {
        let Some(s) = &self.statsd else { return };
        let packet = std::mem::take(&mut *s.buf.lock().unwrap_or_else(|p| p.into_inner()));
        if !packet.is_empty() {
            let _ = s.sock.send_to(packet.as_bytes(), s.to);
        }
    }

    /// Queue a span for Zipkin (dropped, and counted, when the queue is full).
    pub fn span(&self, span: impl serde::Serialize) {
        let Some(z) = &self.zipkin else { return };
        let Ok(bytes) = serde_json::to_vec(&span) else {
            return;
        };
        let mut q = z.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() < SPAN_QUEUE {
            q.push(bytes);
            z.queued.fetch_add(1, Relaxed);
        } else {
            z.dropped.fetch_add(1, Relaxed);
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
    fn local_endpoint(&self) -> &serde_json::value::RawValue {
        static UNKNOWN: std::sync::LazyLock<Box<serde_json::value::RawValue>> =
            std::sync::LazyLock::new(|| {
                serde_json::value::to_raw_value(&json!({})).expect("serialises")
            });
        self.local_json.get().map_or(&**UNKNOWN, |b| &**b)
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Post queued spans in batches of [`SPAN_BATCH`] every [`SPAN_REPORT_EVERY`]; stops when the
/// telemetry is gone.
fn report_spans(t: std::sync::Weak<Telemetry>) {
    loop {
        std::thread::sleep(SPAN_REPORT_EVERY);
        let Some(tel) = t.upgrade() else { return };
        let Some(z) = &tel.zipkin else { return };
        let spans = std::mem::take(&mut *z.queue.lock().unwrap_or_else(|p| p.into_inner()));
        for batch in spans.chunks(SPAN_BATCH) {
            if let Err(e) = post_spans(z, batch) {
                z.dropped.fetch_add(batch.len() as u64, Relaxed);
                tracing::debug!(error = %e, "zipkin: spans not delivered");
            }
            z.queued.fetch_sub(batch.len() as i64, Relaxed);
        }
    }
}

/// One blocking `POST /api/v2/spans` (a connection per batch; batches are at most a few a second).
fn post_spans(z: &Zipkin, batch: &[Vec<u8>]) -> std::io::Result<()> {
    use std::io::{Read, Write};
    let mut body = Vec::with_capacity(batch.iter().map(|s| s.len() + 1).sum::<usize>() + 2);
    body.push(b'[');
    for (i, span) in batch.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(span);
    }
    body.push(b']');
    let mut s = std::net::TcpStream::connect_timeout(&z.addr, Duration::from_secs(2))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "POST /api/v2/spans HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        z.url_host,
        body.len()
    )?;
    s.write_all(&body)?;
    let mut head = [0u8; 12];
    s.read_exact(&mut head)?;
    let status = std::str::from_utf8(&head[9..12]).unwrap_or("000");
    if status.starts_with('2') {
        Ok(())
    } else {
        Err(std::io::Error::other(format!("zipkin answered {status}")))
    }
}

/// A Logstash document, serialised straight from borrowed parts.
#[derive(serde::Serialize)]
struct LogDoc<'a, F> {
    #[serde(rename = "@timestamp")]
    timestamp: String,
    #[serde(rename = "@version")]
    version: u8,
    app: &'a str,
    environment: &'a str,
    severity: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    fields: F,
    host: &'a str,
}

#[derive(serde::Serialize)]
struct IncomingFields<'a> {
    path: &'a str,
    method: &'a str,
    ip: Option<&'a str>,
    ua: Option<&'a str>,
    /// The request's trace (B3), so a trace's log lines can be found from it.
    trace_id: &'a str,
}

#[derive(serde::Serialize)]
struct OutgoingFields<'a> {
    url: &'a str,
    svc: &'a str,
    trace_id: &'a str,
}

#[derive(serde::Serialize)]
struct FailureFields<'a> {
    stack: &'a str,
    path: &'a str,
    method: &'a str,
    trace_id: &'a str,
}

/// A Zipkin v2 span, serialised straight from borrowed parts.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanOut<'a> {
    trace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<&'a str>,
    id: &'a str,
    kind: &'a str,
    name: &'a str,
    timestamp: i64,
    duration: i64,
    local_endpoint: &'a serde_json::value::RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_endpoint: Option<RemoteEndpoint<'a>>,
    tags: Tags<'a>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct RemoteEndpoint<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    service_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4: Option<&'a str>,
}

#[derive(serde::Serialize)]
struct Tags<'a> {
    #[serde(rename = "http.method", skip_serializing_if = "Option::is_none")]
    method: Option<&'a str>,
    #[serde(rename = "http.path", skip_serializing_if = "Option::is_none")]
    path: Option<&'a str>,
    #[serde(rename = "http.status_code", skip_serializing_if = "Option::is_none")]
    status: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
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

/// Wrap `router` with the per-request instrumentation (nothing when telemetry is off).
pub fn apply(router: Router, t: Arc<Telemetry>) -> Router {
    if !t.enabled() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(t, middleware))
}

/// What a handler needs to instrument its upstream calls (a request extension).
#[derive(Clone)]
pub struct RequestCtx {
    pub telemetry: Arc<Telemetry>,
    pub trace_id: String,
    /// The SERVER span of this request.
    pub span_id: String,
    pub sampled: bool,
}

/// The Express-style route name statsd-client uses: `GET_root`, `GET_recipes_id`; requests
/// no route matched are `unknown_express_route`.
pub fn route_name(method: &str, matched: Option<&str>) -> String {
    match matched {
        None => "unknown_express_route".into(),
        Some("/") => format!("{method}_root"),
        Some(p) => {
            let cleaned: String = p
                .chars()
                .filter(|c| !matches!(c, '{' | '}' | ':'))
                .collect();
            format!(
                "{method}_{}",
                cleaned.trim_matches('/').replace(['/', '.'], "_")
            )
        }
    }
}

fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as i64)
}

/// `2026-11-25T17:00:00.123Z` (JavaScript's `toISOString`).
pub fn iso_now() -> String {
    iso(SystemTime::now())
}

pub fn iso(t: SystemTime) -> String {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    let secs = d.as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        d.subsec_millis()
    )
}

/// The text a failed request's log carries as its `stack`, set by [`crate::JsonError`].
#[derive(Debug, Clone)]
pub struct FailureNote(pub String);

async fn middleware(State(t): State<Arc<Telemetry>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/health" {
        return next.run(req).await;
    }
    let start = Instant::now();
    let ts = now_us();
    let method = req.method().as_str().to_owned();
    let route = route_name(
        &method,
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let incoming = b3::extract(req.headers());
    let sampled = incoming.as_ref().and_then(|i| i.sampled).unwrap_or(true);
    let trace_id = incoming
        .as_ref()
        .map(|i| i.trace_id.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(b3::new_id);
    let parent_id = incoming
        .as_ref()
        .map(|i| i.span_id.clone())
        .filter(|s| !s.is_empty());
    let span_id = b3::new_id();
    // (A block: a borrow of the request must not live across an await, the body is not Sync.)
    let (ip, ua) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let ip = header("x-forwarded-for")
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()));
        (ip, header("user-agent"))
    };
    t.log(
        "info",
        "request-incoming",
        IncomingFields {
            path: &path,
            method: &method,
            ip: ip.as_deref(),
            ua: ua.as_deref(),
            trace_id: &trace_id,
        },
    );
    req.extensions_mut().insert(RequestCtx {
        telemetry: t.clone(),
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        sampled,
    });
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        let stack = resp.extensions().get::<FailureNote>().map_or_else(
            || {
                format!(
                    "Error: {method} {path} answered {status}\n    at {} ({})",
                    route, t.service
                )
            },
            |n| n.0.clone(),
        );
        t.log(
            "error",
            "request-failure",
            FailureFields {
                stack: &stack,
                path: &path,
                method: &method,
                trace_id: &trace_id,
            },
        );
    }
    t.increment(&format!("inbound.response_code.{status}"), 1);
    t.increment(&format!("inbound.response_code.{route}.{status}"), 1);
    t.timing(&format!("inbound.response_time.{route}"), ms);
    if sampled && t.tracing_enabled() {
        let name = route.to_lowercase();
        t.span(SpanOut {
            trace_id: &trace_id,
            parent_id: parent_id.as_deref(),
            id: &span_id,
            kind: "SERVER",
            name: &name,
            timestamp: ts,
            duration: (start.elapsed().as_micros() as i64).max(1),
            local_endpoint: t.local_endpoint(),
            remote_endpoint: ip.as_deref().map(|ip| RemoteEndpoint {
                service_name: None,
                ipv4: Some(ip),
            }),
            tags: Tags {
                method: Some(&method),
                path: Some(&path),
                status: Some(status.to_string()),
                error: (status >= 500).then(|| status.to_string()),
            },
        });
    }
    resp
}

/// One upstream call made while serving a request: its B3 headers, then [`Outbound::finish`].
pub struct Outbound {
    ctx: RequestCtx,
    svc: String,
    span_id: String,
    start: Instant,
    ts: i64,
}

impl RequestCtx {
    /// Start a call to `svc` at `url`: logs `request-outgoing` (as the book, before the call).
    pub fn outbound(&self, svc: &str, url: &str) -> Outbound {
        self.telemetry.log(
            "info",
            "request-outgoing",
            OutgoingFields {
                url,
                svc,
                trace_id: &self.trace_id,
            },
        );
        Outbound {
            ctx: self.clone(),
            svc: svc.to_owned(),
            span_id: b3::new_id(),
            start: Instant::now(),
            ts: now_us(),
        }
    }
}

impl Outbound {
    /// The headers to send: all four multi B3 headers and `b3`.
    pub fn headers(&self) -> [(&'static str, String); 5] {
        b3::headers(
            &self.ctx.trace_id,
            &self.span_id,
            &self.ctx.span_id,
            self.ctx.sampled,
        )
    }

    /// Record the call: the outbound timer and counter, and its CLIENT span.
    pub fn finish(self, status: Option<u16>) {
        let t = &self.ctx.telemetry;
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        t.timing(&format!("outbound.{}.request-time", self.svc), ms);
        t.increment(&format!("outbound.{}.request-count", self.svc), 1);
        if self.ctx.sampled && t.tracing_enabled() {
            let name = format!("call_{}", self.svc);
            t.span(SpanOut {
                trace_id: &self.ctx.trace_id,
                parent_id: Some(&self.ctx.span_id),
                id: &self.span_id,
                kind: "CLIENT",
                name: &name,
                timestamp: self.ts,
                duration: (self.start.elapsed().as_micros() as i64).max(1),
                local_endpoint: t.local_endpoint(),
                remote_endpoint: Some(RemoteEndpoint {
                    service_name: Some(&self.svc),
                    ipv4: None,
                }),
                tags: Tags {
                    method: None,
                    path: None,
                    status: status.map(|s| s.to_string()),
                    error: match status {
                        Some(s) if s >= 500 => Some(s.to_string()),
                        Some(_) => None,
                        None => Some("no answer".into()),
                    },
                },
            });
        }
    }
}

/// The `server.*` gauges and the `eventlag` timer, every [`GAUGE_EVERY`] (run on the service's
/// runtime: the lag measured is that runtime's).
pub async fn gauges(t: Arc<Telemetry>) {
    if t.statsd.is_none() {
        return;
    }
    let mut tick = tokio::time::interval(GAUGE_EVERY);
    loop {
        tick.tick().await;
        // Event-loop lag: how long a task waits to run again after yielding.
        let asked = Instant::now();
        tokio::task::yield_now().await;
        let lag_ms = asked.elapsed().as_secs_f64() * 1000.0;
        t.timing("eventlag", lag_ms);
        t.gauge("server.conn", OPEN_CONNECTIONS.load(Relaxed) as f64);
        let (rss, vm) = statm();
        let total = meminfo_total();
        t.gauge("server.memory.used", rss as f64);
        t.gauge("server.memory.total", total as f64);
        t.gauge("server.heap.size", vm as f64);
        t.gauge("server.heap.limit", total as f64);
        t.gauge(
            "server.descriptors",
            std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count()) as f64,
        );
    }
}

/// (resident bytes, data-segment bytes) of this process.
fn statm() -> (u64, u64) {
    let page = 4096;
    let text = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let f: Vec<u64> = text
        .split_whitespace()
        .filter_map(|v| v.parse().ok())
        .collect();
    (
        f.get(1).copied().unwrap_or(0) * page,
        f.get(5).copied().unwrap_or(0) * page,
    )
}

fn meminfo_total() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find(|l| l.starts_with("MemTotal:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
        })
        .map_or(0, |kb| kb * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_names_are_express_style() {
        assert_eq!(route_name("GET", Some("/")), "GET_root");
        assert_eq!(route_name("GET", Some("/recipes/{id}")), "GET_recipes_id");
        assert_eq!(route_name("GET", None), "unknown_express_route");
    }

    #[test]
    fn iso_matches_javascript() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_600_000_123);
        assert_eq!(iso(t), "2026-11-25T09:46:40.123Z");
        assert_eq!(
            iso(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn statsd_lines_are_batched_under_the_packet_size() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = rx.local_addr().unwrap().to_string();
        let t = Telemetry::new("web-api", "test", None, Some(&to), None);
        for i in 0..100 {
            t.increment(&format!("inbound.response_code.GET_root.{i}"), 1);
        }
        t.flush_statsd();
        let mut buf = [0u8; 65536];
        let mut lines = 0;
        while lines < 100 {
            let n = rx.recv(&mut buf).unwrap();
            assert!(n <= STATSD_BUFFER, "{n} bytes");
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(text.lines().all(|l| l.starts_with("web-api.inbound.response_code.") && l.ends_with(":1|c")), "{text}");
            lines += text.lines().count();
        }
        assert_eq!(lines, 100);
    }

    #[tokio::test]
    async fn gauges_report_the_books_server_series() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to = rx.local_addr().unwrap().to_string();
        let t = Arc::new(Telemetry::new("web-api", "test", None, Some(&to), None));
        // The first tick is at once; then flush what it buffered.
        let task = tokio::spawn(gauges(t.clone()));
        let mut text = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !text.contains("eventlag") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            t.flush_statsd();
            let mut buf = [0u8; 65536];
            rx.set_nonblocking(true).unwrap();
            while let Ok(n) = rx.recv(&mut buf) {
                text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
                text.push('\n');
            }
        }
        task.abort();
        for want in [
            "server.conn:",
            "server.memory.used:",
            "server.memory.total:",
            "server.heap.size:",
            "server.heap.limit:",
            "server.descriptors:",
            "eventlag:",
        ] {
            assert!(
                text.contains(&format!("web-api.{want}")),
                "{want} missing in {text}"
            );
        }
        let rss: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("web-api.server.memory.used:")?
                    .strip_suffix("|g")?
                    .parse()
                    .ok()
            })
            .unwrap();
        assert!(rss > 1e6, "resident memory of a live process: {rss}");
    }

    #[test]
    fn logstash_documents_have_the_books_shape() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = rx.local_addr().unwrap().to_string();
        let t = Telemetry::new("web-api", "production", Some(&to), None, None);
        t.log(
            "info",
            "request-incoming",
            json!({"path": "/", "method": "GET", "ip": null, "ua": "curl"}),
        );
        t.flush_logs();
        let mut buf = [0u8; 65536];
        let n = rx.recv(&mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        for k in [
            "@timestamp",
            "@version",
            "app",
            "environment",
            "severity",
            "type",
            "fields",
            "host",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert_eq!(v["@version"], 1);
        assert_eq!(v["environment"], "production");
        assert_eq!(v["fields"]["ua"], "curl");
    }
}
