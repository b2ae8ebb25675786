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
//!
//! Rooms: [`shared`] (measurements, the schedule), [`stream`] (plain or TLS connections),
//! [`h1`] (HTTP/1.1 jobs and their parser), [`h2`] (HTTP/2 and gRPC jobs).

mod h1;
mod h2;
mod shared;
mod stream;

use crate::plan::{Plan, Stop};
use h1::*;
use h2::*;
pub use shared::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::time::Instant;

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
