//! One edge: accept a consumer's connection, connect to the server behind, pass bytes both
//! ways, and apply what [`Faults::decide`] says at the start of every exchange. An exchange is
//! a request on an HTTP edge (its head found by [`crate::http::Requests`]), and on a TCP edge
//! the consumer's next bytes after the server last spoke (request and answer, as the lab's
//! protocols go). With no fault in effect the cost is the relay alone.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};

use crate::EdgeSpec;
use crate::PartitionMode;
use crate::active::{Decision, Faults, Way};
use crate::fault::CLOSE;
use crate::http::{Part, Requests, answer, find_blank_line};
use crate::spans::{self, Begun, Sink};

/// Why a connection ends early.
enum End {
    /// Both ways finished.
    Done,
    /// Close both sides now.
    Close,
    /// Reset the consumer's side (RST), close the other.
    Reset,
}

/// What both directions of one connection share.
struct Conn {
    edge: Arc<EdgeSpec>,
    faults: Arc<Faults>,
    /// The current exchange's decision.
    decision: Mutex<Arc<Decision>>,
    /// The server spoke since the current exchange began.
    answered: AtomicBool,
    seq: AtomicU64,
    /// The consumer's side, written by the way back and by answers the edge gives itself.
    to_client: tokio::sync::Mutex<OwnedWriteHalf>,
    spans: Sink,
    /// The span of the current exchange, if a fault hit a traced request.
    span: Mutex<Option<Begun>>,
}

impl Conn {
    fn decision(&self) -> Arc<Decision> {
        self.decision.lock().expect("decision lock").clone()
    }

    /// `http`: the exchange is an HTTP/1.1 request (HTTP faults may hit it).
    fn begin_exchange(&self, http: bool) -> Arc<Decision> {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        let d = Arc::new(
            self.faults
                .decide(&self.edge.service, &self.edge.name, http, seq),
        );
        *self.decision.lock().expect("decision lock") = d.clone();
        self.answered.store(false, Ordering::Relaxed);
        d
    }

    /// Begin the span of exchange `d` if a fault hit it and `head` carries a trace context.
    fn begin_span(&self, d: &Decision, head: &[u8]) {
        if d.labels.is_empty() || !self.spans.enabled() {
            return;
        }
        if let Some(ctx) = spans::context(head) {
            *self.span.lock().expect("span lock") =
                Some(Begun::new(d.seq, ctx, d.labels.clone(), d.ids.clone()));
        }
    }

    /// End the span of exchange `seq` (any: `None`), if one was begun.
    fn end_span(&self, seq: Option<u64>) {
        let begun = {
            let mut g = self.span.lock().expect("span lock");
            match g.as_ref() {
                Some(b) if seq.is_none_or(|s| s == b.seq) => g.take(),
                _ => None,
            }
        };
        if let Some(b) = begun {
            let id = span_id(b.start_us ^ b.seq.rotate_left(17));
            self.spans
                .send(b.finish(&self.edge.name, &self.edge.service, id));
        }
    }

    /// Whether the fault holding a way is still in effect.
    fn holds(&self, id: &str) -> bool {
        self.faults
            .snapshot()
            .iter()
            .any(|a| a.id == id && a.applies_to(&self.edge.service, &self.edge.name))
    }
}

/// A span id: splitmix64 of `seed` mixed with a process-wide counter.
fn span_id(seed: u64) -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(0x5DEE_CE66_D1CE_4E5B);
    crate::active::mix(seed ^ NEXT.fetch_add(0x9E37_79B9_7F4A_7C15, Ordering::Relaxed)).max(1)
}

/// Accept connections on `listener` for ever. While a `refuse` partition is in effect the
/// edge does not listen at all (connecting is refused, as to a host that is down); it binds
/// its address again when the partition ends.
pub async fn serve(listener: TcpListener, edge: Arc<EdgeSpec>, faults: Arc<Faults>, spans: Sink) {
    const RECHECK: Duration = Duration::from_millis(100);
    let mut listener = Some(listener);
    let mut warned = false;
    loop {
        let refused = matches!(
            faults.partition(&edge.service, &edge.name, false),
            Some((PartitionMode::Refuse, _))
        );
        let Some(l) = listener.as_ref().filter(|_| !refused) else {
            if refused {
                // Dropping the listener closes it: connecting gets ECONNREFUSED.
                listener = None;
                tokio::time::sleep(RECHECK).await;
                continue;
            }
            match TcpListener::bind(&edge.listen).await {
                Ok(l) => {
                    listener = Some(l);
                    warned = false;
                }
                Err(e) => {
                    if !warned {
                        tracing::warn!(edge = %edge.name, error = %e, "cannot listen again after a partition; retrying");
                        warned = true;
                    }
                    tokio::time::sleep(RECHECK).await;
                }
            }
            continue;
        };
        tokio::select! {
            accepted = l.accept() => match accepted {
                Ok((client, _)) => {
                    tokio::spawn(connection(
                        client,
                        edge.clone(),
                        faults.clone(),
                        spans.clone(),
                    ));
                }
                Err(e) => {
                    tracing::warn!(edge = %edge.name, error = %e, "accept");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            // Look again whether a partition began.
            _ = tokio::time::sleep(RECHECK) => {}
        }
    }
}

fn reset(s: &TcpStream) {
    let _ = socket2::SockRef::from(s).set_linger(Some(Duration::ZERO));
}

async fn connection(client: TcpStream, edge: Arc<EdgeSpec>, faults: Arc<Faults>, spans: Sink) {
    let _ = client.set_nodelay(true);
    match faults.partition(&edge.service, &edge.name, true) {
        // Taken just as the partition began.
        Some((PartitionMode::Refuse, _)) => {
            reset(&client);
            return;
        }
        // Black-holed: held, nothing read or answered, closed when the partition ends.
        Some((PartitionMode::Drop, id)) => {
            while faults
                .partition(&edge.service, &edge.name, false)
                .is_some_and(|(_, now)| now == id)
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            return;
        }
        None => {}
    }
    let server = match TcpStream::connect(&edge.upstream).await {
        Ok(s) => s,
        Err(e) => {
            tracing::debug!(edge = %edge.name, error = %e, "connect upstream");
            reset(&client);
            return;
        }
    };
    let _ = server.set_nodelay(true);
    let (from_client, to_client) = client.into_split();
    let (from_server, to_server) = server.into_split();
    let conn = Arc::new(Conn {
        edge,
        faults,
        decision: Mutex::new(Arc::new(Decision::default())),
        answered: AtomicBool::new(true),
        seq: AtomicU64::new(0),
        to_client: tokio::sync::Mutex::new(to_client),
        spans,
        span: Mutex::new(None),
    });
    let end = {
        let up = upstream(&conn, from_client, to_server);
        let down = downstream(&conn, from_server);
        tokio::pin!(up, down);
        tokio::select! {
            e = &mut up => match e { End::Done => down.await, e => e },
            e = &mut down => match e { End::Done => up.await, e => e },
        }
    };
    // A fault that held or cut the exchange: its span ends with the connection.
    conn.end_span(None);
    // A write half dropped sends FIN first; a reset must be the RST alone.
    if let End::Reset = end
        && let Ok(conn) = Arc::try_unwrap(conn)
    {
        let w = conn.to_client.into_inner();
        reset(w.as_ref());
        w.forget();
    }
}

/// Pass `bytes` one way as `way` says; `sent` counts the exchange's bytes for `limit`.
/// `Err` ends the connection.
async fn pass(
    conn: &Conn,
    w: &mut (impl AsyncWriteExt + Unpin),
    bytes: &[u8],
    way: &Way,
    arrived: Instant,
    sent: &mut u64,
) -> Result<(), End> {
    if let Some(id) = &way.hold {
        // Nothing passes while the fault lasts; then the connection is closed.
        while conn.holds(id) {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        return Err(End::Close);
    }
    if !way.delay.is_zero() {
        tokio::time::sleep_until((arrived + way.delay).into()).await;
    }
    let mut bytes = bytes;
    let mut over = false;
    if let Some(limit) = way.limit {
        let room = limit.saturating_sub(*sent) as usize;
        if bytes.len() >= room {
            bytes = &bytes[..room];
            over = true;
        }
    }
    match way.rate {
        None => w.write_all(bytes).await.map_err(|_| End::Close)?,
        Some(rate) => {
            // A tenth of a second's worth at a time, each after its time.
            let step = ((rate / 10) as usize).max(1);
            let t0 = Instant::now();
            let mut written = 0;
            for piece in bytes.chunks(step) {
                w.write_all(piece).await.map_err(|_| End::Close)?;
                written += piece.len();
                let due = t0 + Duration::from_secs_f64(written as f64 / rate as f64);
                tokio::time::sleep_until(due.into()).await;
            }
        }
    }
    *sent += bytes.len() as u64;
    if over {
        let _ = w.flush().await;
        return Err(End::Close);
    }
    Ok(())
}

async fn upstream(conn: &Conn, mut from: OwnedReadHalf, mut to: OwnedWriteHalf) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let mut requests = conn.edge.http.then(Requests::default);
    let mut parts = Vec::new();
    let mut current = conn.decision();
    let mut sent = 0u64;
    // The body of a request the edge answered itself is not passed on.
    let mut swallow = false;
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => {
                if !current.up.slow_close.is_zero() {
                    tokio::time::sleep(current.up.slow_close).await;
                }
                let _ = to.shutdown().await;
                return End::Done;
            }
            Ok(n) => n,
        };
        let arrived = Instant::now();
        let Some(requests) = requests.as_mut() else {
            if conn.answered.load(Ordering::Relaxed) {
                current = conn.begin_exchange(false);
                sent = 0;
                if current.reset {
                    return End::Reset;
                }
            }
            if let Err(e) = pass(conn, &mut to, &buf[..n], &current.up, arrived, &mut sent).await {
                return e;
            }
            continue;
        };
        requests.feed(&buf[..n], &mut parts);
        for part in parts.drain(..) {
            let bytes = match part {
                Part::Head(head) => {
                    current = conn.begin_exchange(true);
                    conn.begin_span(&current, &head);
                    sent = 0;
                    if current.reset {
                        return End::Reset;
                    }
                    if let Some((code, id, label)) = &current.answer {
                        if *code == CLOSE {
                            // No answer at all: what a proxy's retries are for.
                            conn.end_span(Some(current.seq));
                            return End::Close;
                        }
                        swallow = true;
                        let mut w = conn.to_client.lock().await;
                        if w.write_all(&answer(*code, id, label)).await.is_err() {
                            return End::Close;
                        }
                        conn.end_span(Some(current.seq));
                        continue;
                    }
                    swallow = false;
                    head
                }
                Part::Body(_) if swallow => continue,
                Part::Body(b) => b,
                // Not framed (HTTP/2, chunked): exchanges as on a TCP edge.
                Part::Opaque(b) => {
                    if conn.answered.load(Ordering::Relaxed) {
                        current = conn.begin_exchange(false);
                        sent = 0;
                        if current.reset {
                            return End::Reset;
                        }
                    }
                    b
                }
            };
            if let Err(e) = pass(conn, &mut to, &bytes, &current.up, arrived, &mut sent).await {
                return e;
            }
        }
    }
}

/// Pieces of a response held by a pure latency fault, each with when it is due: reading goes
/// on while they wait, so every piece is late by the fault's delay from when it arrived, as a
/// delay on the wire would make it (a server that writes its head and body apart is not made
/// twice as slow).
type Held = std::collections::VecDeque<(Instant, Vec<u8>, u64)>;

/// Write the held pieces whose time has come (all of them with `all`), in order.
async fn release(conn: &Conn, held: &mut Held, all: bool) -> Result<(), End> {
    while let Some((due, _, _)) = held.front() {
        if !all && *due > Instant::now() {
            break;
        }
        tokio::time::sleep_until((*due).into()).await;
        let (_, bytes, seq) = held.pop_front().expect("a front");
        let mut w = conn.to_client.lock().await;
        w.write_all(&bytes).await.map_err(|_| End::Close)?;
        drop(w);
        conn.end_span(Some(seq));
    }
    Ok(())
}

/// Only a delay, so a piece can wait while the next is read.
fn pure_latency(d: &Decision) -> bool {
    !d.down.delay.is_zero()
        && d.down.rate.is_none()
        && d.down.limit.is_none()
        && d.down.hold.is_none()
        && !d.abort_after_headers
}

async fn downstream(conn: &Conn, mut from: OwnedReadHalf) -> End {
    let mut buf = vec![0u8; 16 * 1024];
    let mut seen_seq = 0;
    let mut sent = 0u64;
    // The tail of the response head read so far (abort-after-headers).
    let mut head_tail: Vec<u8> = Vec::new();
    let mut held = Held::new();
    loop {
        let next_due = held.front().map(|(due, _, _)| *due);
        let read = tokio::select! {
            r = from.read(&mut buf) => r,
            _ = tokio::time::sleep_until(next_due.unwrap_or_else(Instant::now).into()), if next_due.is_some() => {
                if let Err(e) = release(conn, &mut held, false).await {
                    return e;
                }
                continue;
            }
        };
        let n = match read {
            Ok(0) | Err(_) => {
                if let Err(e) = release(conn, &mut held, true).await {
                    return e;
                }
                let d = conn.decision();
                if !d.down.slow_close.is_zero() {
                    tokio::time::sleep(d.down.slow_close).await;
                }
                let _ = conn.to_client.lock().await.shutdown().await;
                return End::Done;
            }
            Ok(n) => n,
        };
        let arrived = Instant::now();
        conn.answered.store(true, Ordering::Relaxed);
        let d = conn.decision();
        let mut bytes = &buf[..n];
        if d.seq != seen_seq {
            seen_seq = d.seq;
            sent = 0;
            head_tail.clear();
            if !d.first_byte.is_zero() {
                tokio::time::sleep(d.first_byte).await;
            }
        }
        if pure_latency(&d) {
            held.push_back((arrived + d.down.delay, bytes.to_vec(), d.seq));
            continue;
        }
        // Anything else passes in order, after what is still held.
        if let Err(e) = release(conn, &mut held, true).await {
            return e;
        }
        let mut abort = false;
        if d.abort_after_headers {
            let from = head_tail.len().saturating_sub(3);
            head_tail.extend_from_slice(bytes);
            if let Some(at) = find_blank_line(&head_tail[from..]) {
                let end_in_bytes = (from + at + 4) - (head_tail.len() - bytes.len());
                bytes = &bytes[..end_in_bytes];
                abort = true;
            }
        }
        let mut w = conn.to_client.lock().await;
        if let Err(e) = pass(conn, &mut *w, bytes, &d.down, arrived, &mut sent).await {
            return e;
        }
        if abort {
            let _ = w.flush().await;
        }
        drop(w);
        conn.end_span(Some(d.seq));
        if abort {
            return End::Close;
        }
    }
}
