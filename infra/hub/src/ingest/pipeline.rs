//! The threads between the sockets and the store: UDP receive loops that only copy datagrams
//! into bounded queues (a full queue is a counted drop, never a stall), the log parser that
//! batches documents into the store, the StatsD aggregator and its flush loop (with the
//! optional forward to a real carbon).

use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use crate::clock::now_s;
use crate::ingest;
use crate::shared::Shared;
use crate::store::Write;

/// One received datagram: its bytes, sender, and when it arrived.
pub(crate) struct Datagram {
    bytes: Vec<u8>,
    from: SocketAddr,
    at: std::time::SystemTime,
}

/// A receive loop that does nothing but copy datagrams into the queue.
pub(crate) fn receive(
    sock: UdpSocket,
    tx: SyncSender<Datagram>,
    stop: &AtomicBool,
    received: &AtomicU64,
    dropped: &AtomicU64,
) {
    // Logstash's read size: longer datagrams are cut.
    let mut buf = vec![0u8; ingest::logs::MAX_DATAGRAM];
    while !stop.load(Relaxed) {
        match sock.recv_from(&mut buf) {
            Ok((n, from)) => {
                received.fetch_add(1, Relaxed);
                let d = Datagram {
                    bytes: buf[..n].to_vec(),
                    from,
                    at: std::time::SystemTime::now(),
                };
                match tx.try_send(d) {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => {
                        dropped.fetch_add(1, Relaxed);
                    }
                    Err(TrySendError::Disconnected(_)) => return,
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => {
                tracing::warn!(error = %e, "hub: UDP receive failed");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Log documents per store write: large enough for one transaction to carry a burst, small
/// enough that the batches waiting for the writer stay a few MB.
pub(crate) const LOG_BATCH: usize = 512;

pub(crate) fn parse_logs(rx: Receiver<Datagram>, shared: &Shared) {
    let prefix = shared.config.index_prefix.clone();
    while let Ok(first) = rx.recv() {
        let mut rows = Vec::new();
        let mut next = Some(first);
        while let Some(d) = next {
            let at = time::OffsetDateTime::from(d.at);
            let failures = ingest::logs_fast::rows_of_datagram(
                &d.bytes,
                Some(d.from.ip()),
                at,
                &prefix,
                &mut rows,
            );
            shared
                .counters
                .log_parse_failures
                .fetch_add(failures as u64, Relaxed);
            next = if rows.len() < LOG_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        shared
            .counters
            .log_documents
            .fetch_add(rows.len() as u64, Relaxed);
        // Wait for room rather than drop: the queue in front of us is what absorbs bursts.
        if shared.store.write(Write::Logs(rows)).is_err() {
            return;
        }
    }
}

pub(crate) fn aggregate(rx: Receiver<Datagram>, shared: &Shared) {
    while let Ok(first) = rx.recv() {
        let mut agg = shared.statsd.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = Some(first);
        let mut n = 0;
        while let Some(d) = next {
            let bad = agg.ingest(&d.bytes);
            shared
                .counters
                .statsd_bad_lines
                .fetch_add(bad as u64, Relaxed);
            n += 1;
            next = if n < 4096 { rx.try_recv().ok() } else { None };
        }
    }
}

pub(crate) fn flush_loop(shared: &Shared, stop: &AtomicBool) {
    let interval = Duration::from_millis(shared.config.flush_interval_ms.max(100));
    let mut next = Instant::now() + interval;
    let mut last_counters: Vec<u64> = shared.counters.snapshot().iter().map(|c| c.1).collect();
    while !stop.load(Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep((next - now).min(Duration::from_millis(100)));
            continue;
        }
        next += interval;
        // The hub's own counters, as deltas, into this interval.
        let snap = shared.counters.snapshot();
        {
            let mut agg = shared.statsd.lock().unwrap_or_else(|p| p.into_inner());
            for ((key, v), last) in snap.iter().zip(last_counters.iter_mut()) {
                agg.count(key, (*v - *last) as f64);
                *last = *v;
            }
        }
        flush(shared, now_s());
    }
    flush(shared, now_s());
}

/// Close one StatsD interval into the store (and the carbon forward).
pub(crate) fn flush(shared: &Shared, ts: i64) {
    let series = {
        let mut agg = shared.statsd.lock().unwrap_or_else(|p| p.into_inner());
        agg.flush(
            shared.config.flush_interval_ms as f64 / 1000.0,
            shared.config.namespace,
            &shared.config.percent_thresholds,
        )
    };
    if let Some(target) = &shared.config.forward_graphite
        && let Err(e) = forward(target, &series, ts)
    {
        shared.counters.forward_failures.fetch_add(1, Relaxed);
        tracing::warn!(target = %target, error = %e, "hub: carbon forward failed");
    }
    let points = series.into_iter().map(|(k, v)| (k, ts, v)).collect();
    let _ = shared.store.write(Write::Points(points));
}

/// statsd's graphite backend: one connection per flush, every line, close.
pub(crate) fn forward(target: &str, series: &[(String, f64)], ts: i64) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::net::ToSocketAddrs;
    let addr = target
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| std::io::Error::other(format!("{target} does not resolve")))?;
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_write_timeout(Some(Duration::from_secs(2)))?;
    let mut text = String::new();
    for (k, v) in series {
        text.push_str(&format!("{k} {v} {ts}\n"));
    }
    s.write_all(text.as_bytes())
}
