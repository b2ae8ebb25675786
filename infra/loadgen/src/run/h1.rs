//! HTTP/1.1 jobs: one connection sending the pre-built request `pipelining` at a time, and
//! its own response parser (content-length and chunked).

use super::shared::*;
use super::stream::*;
use crate::plan::Plan;
use bytes::{Buf, BytesMut};
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub(super) struct ConnJob {
    pub(super) plan: Arc<Plan>,
    pub(super) request_len: usize,
    /// `pipelining` copies of the request.
    pub(super) batch: bytes::Bytes,
    pub(super) timeout: Duration,
    pub(super) head: bool,
    pub(super) schedule: Arc<Schedule>,
    pub(super) live: Arc<Live>,
}

impl ConnJob {
    /// One answer, measured from when its request was due (rate mode) or sent.
    pub(super) fn record(
        &self,
        m: &mut Measured,
        r: &Answer,
        sent_at: Instant,
        due: Option<Instant>,
    ) {
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
    pub(super) async fn drive(self) -> Measured {
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

pub(super) struct Answer {
    pub(super) status: u16,
    pub(super) bytes: usize,
    pub(super) close: bool,
}

/// Read one response from `stream` (bytes already in `buf` first). Errors are a kind name.
pub(super) async fn read_response(
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
pub(super) fn parse(buf: &[u8], head: bool) -> Result<Option<Answer>, &'static str> {
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
pub(super) fn chunked_len(b: &[u8]) -> Result<Option<usize>, &'static str> {
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
