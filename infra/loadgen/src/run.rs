//! The engine: `connections` HTTP/1.1 connections on a `workers`-thread runtime, each sending
//! the pre-built request (`pipelining` at a time) and reading answers with its own parser.
//!
//! Requests are handed out as tickets from one counter, so `--amount` is exact and `--rate`
//! is one global schedule: ticket *i* is due at `start + i / rate`, and its latency is
//! measured from when it was due, not from when a free connection got to send it (wrk2's
//! correction for coordinated omission: a stalled server shows up as latency, not as fewer
//! samples). Without a rate, latency is measured from the write.
//!
//! Every failure is counted by kind (connect, reset, closed, bad response, timeout); a failed
//! connection is replaced. At the end of a duration run no request is started, in-flight ones
//! are awaited (up to the timeout), and every connection is closed before `run` returns.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use hdrhistogram::Histogram;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::plan::{Plan, Stop};

/// What one connection (and, merged, the run) measured.
#[derive(Debug, Clone)]
pub struct Measured {
    /// Latency of every answered request, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Answered requests per second of the run (index = second).
    pub per_second: Vec<u64>,
    /// Response bytes per second of the run.
    pub bytes_per_second: Vec<u64>,
    /// Answers by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Failed requests by kind (`connect`, `reset`, `closed`, `bad-response`).
    pub errors: BTreeMap<&'static str, u64>,
    pub timeouts: u64,
    /// Requests written.
    pub sent: u64,
    pub bytes: u64,
}

impl Measured {
    fn new() -> Self {
        Self {
            latency_us: Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid bounds"),
            per_second: Vec::new(),
            bytes_per_second: Vec::new(),
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            timeouts: 0,
            sent: 0,
            bytes: 0,
        }
    }

    fn answered(&mut self, at_second: usize, latency: Duration, status: u16, bytes: usize) {
        let _ = self.latency_us.record((latency.as_micros() as u64).max(1));
        if self.per_second.len() <= at_second {
            self.per_second.resize(at_second + 1, 0);
            self.bytes_per_second.resize(at_second + 1, 0);
        }
        self.per_second[at_second] += 1;
        self.bytes_per_second[at_second] += bytes as u64;
        *self.statuses.entry(status).or_default() += 1;
        self.bytes += bytes as u64;
    }

    fn merge(&mut self, o: &Measured) {
        let _ = self.latency_us.add(&o.latency_us);
        for (v, w) in [
            (&mut self.per_second, &o.per_second),
            (&mut self.bytes_per_second, &o.bytes_per_second),
        ] {
            if v.len() < w.len() {
                v.resize(w.len(), 0);
            }
            for (a, b) in v.iter_mut().zip(w) {
                *a += b;
            }
        }
        for (k, n) in &o.statuses {
            *self.statuses.entry(*k).or_default() += n;
        }
        for (k, n) in &o.errors {
            *self.errors.entry(k).or_default() += n;
        }
        self.timeouts += o.timeouts;
        self.sent += o.sent;
        self.bytes += o.bytes;
    }

    /// Answered requests (any status).
    pub fn answered_total(&self) -> u64 {
        self.statuses.values().sum()
    }

    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// A finished run.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub measured: Measured,
    /// From the first measured request to the last answer.
    pub elapsed: Duration,
    pub started: std::time::SystemTime,
}

/// Live counters, for a progress display.
#[derive(Debug, Default)]
pub struct Live {
    pub answered: AtomicU64,
    pub failed: AtomicU64,
}

// === impl Stream ===

/// A connection to the target: plain TCP or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connect to the plan's target, with TLS (ALPN `alpn`) for https. Errors are a kind name.
async fn open(plan: &Plan, alpn: &[u8]) -> Result<Stream, &'static str> {
    let tcp = TcpStream::connect(plan.target.addr())
        .await
        .map_err(|_| "connect")?;
    let _ = tcp.set_nodelay(true);
    if !plan.target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let mut cfg = plan.tls.as_deref().ok_or("tls")?.clone();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let name =
        rustls_pki_types::ServerName::try_from(plan.target.host.clone()).map_err(|_| "tls")?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|_| "tls")?;
    Ok(Stream::Tls(Box::new(tls)))
}

/// Tickets: the next request to send, and when it is due.
struct Schedule {
    issued: AtomicU64,
    start: Instant,
    deadline: Option<Instant>,
    amount: Option<u64>,
    rate: Option<f64>,
    stopped: AtomicBool,
}

impl Schedule {
    /// No ticket is left (amount reached, or past the deadline).
    fn exhausted(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return true;
        }
        self.amount.is_some_and(|a| self.issued.load(Relaxed) >= a)
    }

    /// Up to `n` tickets: their count and, in rate mode, when the (single) one is due.
    fn take(&self, n: usize) -> Option<(usize, Option<Instant>)> {
        if self.stopped.load(Relaxed) {
            return None;
        }
        if let Some(rate) = self.rate {
            let i = self.issued.fetch_add(1, Relaxed);
            if self.amount.is_some_and(|a| i >= a) {
                return None;
            }
            let due = self.start + Duration::from_secs_f64(i as f64 / rate);
            if self.deadline.is_some_and(|d| due >= d) {
                return None;
            }
            return Some((1, Some(due)));
        }
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let i = self.issued.fetch_add(n as u64, Relaxed);
        let n = match self.amount {
            Some(a) if i >= a => return None,
            Some(a) => (a - i).min(n as u64) as usize,
            None => n,
        };
        Some((n, None))
    }
}

/// Run `plan` (after its warm-up, if any) and return what was measured.
pub fn run(plan: &Plan, live: Arc<Live>) -> std::io::Result<Outcome> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.workers)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        if !plan.warmup.is_zero() {
            let mut warm = plan.clone();
            warm.stop = Stop::Duration(plan.warmup);
            let _ = phase(&warm, Arc::new(Live::default())).await;
        }
        phase(plan, live).await
    })
}

async fn phase(plan: &Plan, live: Arc<Live>) -> std::io::Result<Outcome> {
    let request = plan.request_bytes();
    let mut batch = Vec::with_capacity(request.len() * plan.pipelining);
    for _ in 0..plan.pipelining {
        batch.extend_from_slice(&request);
    }
    let start = Instant::now();
    let started = std::time::SystemTime::now();
    let schedule = Arc::new(Schedule {
        issued: AtomicU64::new(0),
        start,
        deadline: match plan.stop {
            Stop::Duration(d) => Some(start + d),
            Stop::Amount(_) => None,
        },
        amount: match plan.stop {
            Stop::Amount(n) => Some(n),
            Stop::Duration(_) => None,
        },
        rate: plan.rate,
        stopped: AtomicBool::new(false),
    });
    let head = plan.method.eq_ignore_ascii_case("HEAD");
    let batch = bytes::Bytes::from(batch);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..plan.connections {
        if plan.http2 {
            let job = H2Job {
                plan: Arc::new(plan.clone()),
                schedule: schedule.clone(),
                live: live.clone(),
            };
            tasks.spawn(job.drive());
            continue;
        }
        let c = ConnJob {
            plan: Arc::new(plan.clone()),
            request_len: request.len(),
            batch: batch.clone(),
            timeout: plan.timeout,
            head,
            schedule: schedule.clone(),
            live: live.clone(),
        };
        tasks.spawn(c.drive());
    }
    let mut total = Measured::new();
    while let Some(done) = tasks.join_next().await {
        if let Ok(m) = done {
            total.merge(&m);
        }
    }
    Ok(Outcome {
        measured: total,
        elapsed: start.elapsed(),
        started,
    })
}

struct ConnJob {
    plan: Arc<Plan>,
    request_len: usize,
    /// `pipelining` copies of the request.
    batch: bytes::Bytes,
    timeout: Duration,
    head: bool,
    schedule: Arc<Schedule>,
    live: Arc<Live>,
}

impl ConnJob {
    /// One answer, measured from when its request was due (rate mode) or sent.
    fn record(&self, m: &mut Measured, r: &Answer, sent_at: Instant, due: Option<Instant>) {
        let now = Instant::now();
        let second = now.duration_since(self.schedule.start).as_secs() as usize;
        m.answered(
            second,
            now.duration_since(due.unwrap_or(sent_at)),
            r.status,
            r.bytes,
        );
        self.live.answered.fetch_add(1, Relaxed);
    }

    /// Keep `pipelining` requests in flight (autocannon's window): each answer frees a slot that
    /// the next ticket fills, and every free slot is written in one go.
    async fn drive(self) -> Measured {
        let depth = self.batch.len() / self.request_len;
        let mut m = Measured::new();
        let mut conn: Option<(Stream, BytesMut)> = None;
        // Written and not yet answered on `conn`: when each was sent, and when it was due.
        let mut inflight: VecDeque<(Instant, Option<Instant>)> = VecDeque::with_capacity(depth);
        let fail = |m: &mut Measured, kind: &'static str, n: usize| {
            *m.errors.entry(kind).or_default() += n as u64;
            self.live.failed.fetch_add(n as u64, Relaxed);
        };
        loop {
            let free = depth - inflight.len();
            let (take, due) = match (free > 0).then(|| self.schedule.take(free)).flatten() {
                Some((n, due)) => (n, due),
                None => (0, None),
            };
            if take == 0 && inflight.is_empty() {
                break;
            }
            if take > 0 {
                if let Some(due) = due {
                    tokio::time::sleep_until(due.into()).await;
                }
                if conn.is_none() {
                    match tokio::time::timeout(self.timeout, open(&self.plan, b"http/1.1")).await {
                        Ok(Ok(s)) => conn = Some((s, BytesMut::with_capacity(16 * 1024))),
                        Ok(Err(kind)) => {
                            fail(&mut m, kind, take);
                            // A refused port answers at once: do not spin on it.
                            tokio::time::sleep(Duration::from_millis(10)).await;
                            continue;
                        }
                        Err(_) => {
                            m.timeouts += take as u64;
                            self.live.failed.fetch_add(take as u64, Relaxed);
                            continue;
                        }
                    }
                }
                let (stream, _) = conn.as_mut().expect("connected");
                if stream
                    .write_all(&self.batch[..take * self.request_len])
                    .await
                    .is_err()
                {
                    fail(&mut m, "reset", take + inflight.len());
                    inflight.clear();
                    conn = None;
                    continue;
                }
                let now = Instant::now();
                m.sent += take as u64;
                inflight.extend(std::iter::repeat_n((now, due), take));
            }
            // One answer: the oldest request's.
            let Some((stream, buf)) = conn.as_mut() else {
                continue;
            };
            let (sent_at, due) = *inflight.front().expect("a request in flight");
            let deadline = tokio::time::Instant::from(sent_at + self.timeout);
            match tokio::time::timeout_at(deadline, read_response(stream, buf, self.head)).await {
                Ok(Ok(r)) => {
                    inflight.pop_front();
                    self.record(&mut m, &r, sent_at, due);
                    let mut close = r.close;
                    // Answers already in the buffer are taken now, so that the slots they free
                    // are refilled with one write rather than one write per answer.
                    while !close && !inflight.is_empty() {
                        match parse(buf, self.head) {
                            Ok(Some(r)) => {
                                buf.advance(r.bytes);
                                let (sent_at, due) = inflight.pop_front().expect("in flight");
                                self.record(&mut m, &r, sent_at, due);
                                close = r.close;
                            }
                            Ok(None) => break,
                            Err(kind) => {
                                fail(&mut m, kind, inflight.len());
                                inflight.clear();
                                close = true;
                            }
                        }
                    }
                    if close {
                        // The server closes after this answer: what was pipelined behind it is lost.
                        fail(&mut m, "closed", inflight.len());
                        inflight.clear();
                        conn = None;
                    }
                }
                Ok(Err(kind)) => {
                    fail(&mut m, kind, inflight.len());
                    inflight.clear();
                    conn = None;
                }
                Err(_) => {
                    m.timeouts += inflight.len() as u64;
                    self.live.failed.fetch_add(inflight.len() as u64, Relaxed);
                    inflight.clear();
                    conn = None;
                }
            }
        }
        m
    }
}

// === impl H2Job ===

/// One HTTP/2 connection (h2c, prior knowledge) carrying `pipelining` concurrent streams,
/// each a loop of requests; a failed connection is replaced.
struct H2Job {
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    live: Arc<Live>,
}

impl H2Job {
    async fn drive(self) -> Measured {
        let mut total = Measured::new();
        loop {
            if self.schedule.stopped.load(Relaxed) || self.schedule.exhausted() {
                break;
            }
            let sender = match tokio::time::timeout(self.plan.timeout, h2_connect(&self.plan)).await
            {
                Ok(Ok(s)) => s,
                failed => {
                    let kind = match failed {
                        Ok(Err(kind)) => kind,
                        _ => "connect",
                    };
                    // One ticket per failed attempt, so a dead target still ends the run.
                    if let Some((n, _)) = self.schedule.take(1) {
                        *total.errors.entry(kind).or_default() += n as u64;
                        self.live.failed.fetch_add(n as u64, Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let mut streams = tokio::task::JoinSet::new();
            for _ in 0..self.plan.pipelining {
                let (plan, schedule, live, sender) = (
                    self.plan.clone(),
                    self.schedule.clone(),
                    self.live.clone(),
                    sender.clone(),
                );
                streams.spawn(h2_stream(plan, schedule, live, sender));
            }
            while let Some(done) = streams.join_next().await {
                if let Ok(m) = done {
                    total.merge(&m);
                }
            }
        }
        total
    }
}

type H2Sender = hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;

async fn h2_connect(plan: &Plan) -> Result<H2Sender, &'static str> {
    let stream = open(plan, b"h2").await?;
    let (sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| "h2-handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One stream's loop: take a ticket, send, read the whole answer (and trailers), record.
/// Returns when the schedule is exhausted or the connection failed (the caller reconnects).
async fn h2_stream(
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    live: Arc<Live>,
    mut sender: H2Sender,
) -> Measured {
    use http_body_util::BodyExt;
    let mut m = Measured::new();
    let uri: hyper::Uri = match plan.target.url().parse() {
        Ok(u) => u,
        Err(_) => return m,
    };
    while let Some((n, due)) = schedule.take(1) {
        debug_assert_eq!(n, 1);
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
        }
        let mut req = hyper::Request::builder()
            .method(plan.method.as_str())
            .uri(uri.clone());
        for (k, v) in &plan.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = match req.body(http_body_util::Full::new(plan.body.clone())) {
            Ok(r) => r,
            Err(_) => return m,
        };
        let sent_at = Instant::now();
        m.sent += 1;
        let fail = |m: &mut Measured, kind: &'static str| {
            *m.errors.entry(kind).or_default() += 1;
            live.failed.fetch_add(1, Relaxed);
        };
        if sender.ready().await.is_err() {
            fail(&mut m, "closed");
            return m;
        }
        let exchange = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await?;
            let trailers = collected.trailers().cloned();
            let grpc_status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .or_else(|| parts.headers.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u16>().ok());
            Ok::<_, hyper::Error>((status, collected.to_bytes().len(), grpc_status))
        };
        match tokio::time::timeout(plan.timeout, exchange).await {
            Ok(Ok((status, bytes, grpc_status))) => {
                let now = Instant::now();
                if plan.grpc && grpc_status != Some(0) {
                    // A gRPC failure rides on HTTP 200: count it by its gRPC status.
                    fail(&mut m, grpc_kind(grpc_status));
                    continue;
                }
                let second = now.duration_since(schedule.start).as_secs() as usize;
                m.answered(
                    second,
                    now.duration_since(due.unwrap_or(sent_at)),
                    status,
                    bytes,
                );
                live.answered.fetch_add(1, Relaxed);
            }
            Ok(Err(_)) => {
                fail(&mut m, "reset");
                return m;
            }
            Err(_) => {
                m.timeouts += 1;
                live.failed.fetch_add(1, Relaxed);
                return m;
            }
        }
    }
    m
}

fn grpc_kind(status: Option<u16>) -> &'static str {
    match status {
        None => "grpc-no-status",
        Some(1) => "grpc-cancelled",
        Some(3) => "grpc-invalid-argument",
        Some(4) => "grpc-deadline-exceeded",
        Some(5) => "grpc-not-found",
        Some(8) => "grpc-resource-exhausted",
        Some(12) => "grpc-unimplemented",
        Some(13) => "grpc-internal",
        Some(14) => "grpc-unavailable",
        Some(_) => "grpc-other",
    }
}

struct Answer {
    status: u16,
    bytes: usize,
    close: bool,
}

/// Read one response from `stream` (bytes already in `buf` first). Errors are a kind name.
async fn read_response(
    stream: &mut Stream,
    buf: &mut BytesMut,
    head: bool,
) -> Result<Answer, &'static str> {
    loop {
        if let Some(parsed) = parse(buf, head)? {
            buf.advance(parsed.bytes);
            return Ok(parsed);
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(16 * 1024);
        }
        match stream.read_buf(buf).await {
            Ok(0) => return Err("closed"),
            Ok(_) => {}
            Err(_) => return Err("reset"),
        }
    }
}

/// A complete response at the start of `buf`: status, total length, whether the server
/// closes after it. `None`: more bytes needed.
fn parse(buf: &[u8], head: bool) -> Result<Option<Answer>, &'static str> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    let head_len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(_) => return Err("bad-response"),
    };
    let status = resp.code.unwrap_or(0);
    let mut length = None;
    let mut chunked = false;
    let mut close = resp.version == Some(0);
    for h in resp.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            length = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<usize>().ok());
            if length.is_none() {
                return Err("bad-response");
            }
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = h
                .value
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            close |= h.value.windows(5).any(|w| w.eq_ignore_ascii_case(b"close"));
        }
    }
    let no_body = head || status < 200 || status == 204 || status == 304;
    let body = if no_body {
        0
    } else if chunked {
        match chunked_len(&buf[head_len..])? {
            Some(n) => n,
            None => return Ok(None),
        }
    } else if let Some(n) = length {
        if buf.len() - head_len < n {
            return Ok(None);
        }
        n
    } else {
        // Delimited by the close: not supported for measuring; count as bad.
        return Err("bad-response");
    };
    if status < 200 && status != 101 {
        // An interim answer (100 Continue): skip it and read on. (Rare with these requests.)
        return Err("bad-response");
    }
    Ok(Some(Answer {
        status,
        bytes: head_len + body,
        close,
    }))
}

/// Length of a complete chunked body (with its last chunk and trailers) at the start of `b`.
fn chunked_len(b: &[u8]) -> Result<Option<usize>, &'static str> {
    let mut at = 0;
    loop {
        let (size_len, size) = match httparse::parse_chunk_size(&b[at..]) {
            Ok(httparse::Status::Complete((n, size))) => (n, size as usize),
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err("bad-response"),
        };
        at += size_len;
        if size == 0 {
            // Trailers end with an empty line.
            loop {
                let rest = &b[at..];
                let Some(eol) = rest.windows(2).position(|w| w == b"\r\n") else {
                    return Ok(None);
                };
                at += eol + 2;
                if eol == 0 {
                    return Ok(Some(at));
                }
            }
        }
        if b.len() < at + size + 2 {
            return Ok(None);
        }
        at += size + 2;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_chunked_and_partial_answers() {
        let r = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT",
            false,
        )
        .unwrap()
        .unwrap();
        assert_eq!((r.status, r.bytes, r.close), (200, 43, false));
        assert!(
            parse(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel", false)
                .unwrap()
                .is_none()
        );
        let c = b"HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let r = parse(c, false).unwrap().unwrap();
        assert_eq!((r.status, r.bytes, r.close), (404, c.len(), true));
        assert!(parse(&c[..c.len() - 2], false).unwrap().is_none());
        assert_eq!(
            parse(b"HTTP/1.1 204 No Content\r\n\r\n", false)
                .unwrap()
                .unwrap()
                .bytes,
            27
        );
        assert!(parse(b"garbage\r\n\r\n", false).is_err());
    }
}
