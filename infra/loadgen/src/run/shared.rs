//! What every connection job shares: the measurements ([`Measured`]), the outcome of a run,
//! the live counters, and the one global schedule of tickets.

use hdrhistogram::Histogram;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

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
    pub(super) fn new() -> Self {
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

    pub(super) fn answered(
        &mut self,
        at_second: usize,
        latency: Duration,
        status: u16,
        bytes: usize,
    ) {
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

    pub(super) fn merge(&mut self, o: &Measured) {
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

/// Tickets: the next request to send, and when it is due.
pub(super) struct Schedule {
    pub(super) issued: AtomicU64,
    pub(super) start: Instant,
    pub(super) deadline: Option<Instant>,
    pub(super) amount: Option<u64>,
    pub(super) rate: Option<f64>,
    pub(super) stopped: AtomicBool,
}

impl Schedule {
    /// No ticket is left (amount reached, or past the deadline).
    pub(super) fn exhausted(&self) -> bool {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return true;
        }
        self.amount.is_some_and(|a| self.issued.load(Relaxed) >= a)
    }

    /// Up to `n` tickets: their count and, in rate mode, when the (single) one is due.
    pub(super) fn take(&self, n: usize) -> Option<(usize, Option<Instant>)> {
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
