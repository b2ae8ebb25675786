//! A backend: its servers' state (up or down, in-flight work, counters), the balancing choice
//! and the queue in front of servers that are at their `maxconn`.
//!
//! Invariant: a server's in-flight count never exceeds its `maxconn`: a [`Slot`] is taken by a
//! compare-and-swap below the limit and given back when dropped, which wakes one queued request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::*};
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::{Balance, Frontend};

/// Counters of one server (or of the frontend), as the stats page shows them.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests (http) or connections (tcp) sent to it.
    pub total: AtomicU64,
    /// Highest in-flight count seen.
    pub max_inflight: AtomicUsize,
    /// Connections to it that failed.
    pub conn_errors: AtomicU64,
    /// Requests it failed to answer (reset, timeout, bad response).
    pub resp_errors: AtomicU64,
    /// Requests retried on another server after it failed.
    pub retries: AtomicU64,
    pub hrsp_2xx: AtomicU64,
    pub hrsp_3xx: AtomicU64,
    pub hrsp_4xx: AtomicU64,
    pub hrsp_5xx: AtomicU64,
    pub bytes_out: AtomicU64,
}

impl Counters {
    pub fn status(&self, code: u16) {
        let c = match code {
            200..=299 => &self.hrsp_2xx,
            300..=399 => &self.hrsp_3xx,
            400..=499 => &self.hrsp_4xx,
            _ => &self.hrsp_5xx,
        };
        c.fetch_add(1, Relaxed);
    }
}

#[derive(Debug)]
pub struct ServerState {
    pub name: String,
    pub addr: String,
    pub up: AtomicBool,
    pub inflight: AtomicUsize,
    pub counters: Counters,
    /// Health check results: consecutive failures, transitions to down, last result text.
    pub check_fails: AtomicU64,
    pub went_down: AtomicU64,
    pub last_check: std::sync::Mutex<String>,
    /// When the up/down state last changed.
    pub changed: std::sync::Mutex<Instant>,
    /// Hedged requests in a row that another server answered while this one said nothing.
    pub hedges_lost: AtomicU64,
    /// Out of rotation until then (passive ejection without active checks).
    pub ejected_until: std::sync::Mutex<Option<Instant>>,
}

impl ServerState {
    fn ejected(&self) -> bool {
        self.ejected_until
            .lock()
            .map(|u| u.is_some_and(|t| Instant::now() < t))
            .unwrap_or(false)
    }
}

#[derive(Debug)]
pub struct Backend {
    pub name: String,
    pub servers: Vec<ServerState>,
    pub balance: Balance,
    pub maxconn: Option<usize>,
    pub queue_timeout: Duration,
    rr: AtomicUsize,
    freed: Notify,
    pub queued: AtomicUsize,
    pub max_queued: AtomicUsize,
    /// Requests answered 503 because they waited past the queue timeout or no server was up.
    pub rejected: AtomicU64,
    /// A moving average of the servers' time to answer, microseconds (what "slow" means here).
    answer_us: AtomicU64,
    /// Active checks run: a passively ejected server waits for them to bring it back.
    checked: bool,
}

/// Hedged requests lost in a row after which a server is taken out of rotation.
pub const EJECT_AFTER_HEDGES_LOST: u64 = 3;
/// How long a server is out after that, when no active check decides.
pub const EJECTION: Duration = Duration::from_secs(2);

/// Why no server could take a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoServer {
    /// Every server is down (or was already tried).
    NoneAvailable,
    /// Servers are up but all at maxconn, past the queue timeout.
    QueueTimeout,
}

/// The right to send one request (or hold one connection) to a server.
#[derive(Debug)]
pub struct Slot {
    backend: Arc<Backend>,
    pub index: usize,
}

impl Slot {
    pub fn server(&self) -> &ServerState {
        &self.backend.servers[self.index]
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.backend.servers[self.index]
            .inflight
            .fetch_sub(1, AcqRel);
        self.backend.freed.notify_one();
    }
}

impl Backend {
    pub fn new(f: &Frontend) -> Arc<Self> {
        Arc::new(Self {
            name: f.name.clone(),
            servers: f
                .servers
                .iter()
                .map(|s| ServerState {
                    name: s.name.clone(),
                    addr: s.addr.clone(),
                    up: AtomicBool::new(true),
                    inflight: AtomicUsize::new(0),
                    counters: Counters::default(),
                    check_fails: AtomicU64::new(0),
                    went_down: AtomicU64::new(0),
                    last_check: std::sync::Mutex::new("-".into()),
                    changed: std::sync::Mutex::new(Instant::now()),
                    hedges_lost: AtomicU64::new(0),
                    ejected_until: std::sync::Mutex::new(None),
                })
                .collect(),
            balance: f.balance,
            maxconn: f.server_maxconn.filter(|&m| m > 0),
            queue_timeout: Duration::from_millis(f.queue_timeout_ms),
            rr: AtomicUsize::new(0),
            freed: Notify::new(),
            queued: AtomicUsize::new(0),
            max_queued: AtomicUsize::new(0),
            rejected: AtomicU64::new(0),
            answer_us: AtomicU64::new(0),
            checked: f.check.is_some(),
        })
    }

    /// A server answered after `took`: part of the moving average, and it is not hung.
    pub fn answered(&self, i: usize, took: Duration) {
        let us = took.as_micros().min(u64::MAX as u128) as u64;
        let _ = self.answer_us.fetch_update(Relaxed, Relaxed, |avg| {
            Some(if avg == 0 {
                us
            } else {
                avg - avg / 16 + us / 16
            })
        });
        self.servers[i].hedges_lost.store(0, Relaxed);
    }

    /// How long to wait for a safe request's answer before asking another server too: ten
    /// times the usual answer time, at least 100 ms, at most `cap` (the server timeout).
    pub fn hedge_after(&self, cap: Duration) -> Duration {
        let usual = Duration::from_micros(self.answer_us.load(Relaxed));
        (usual * 10).clamp(Duration::from_millis(100), cap)
    }

    /// Another server answered a hedged request first while server `i` said nothing: after
    /// [`EJECT_AFTER_HEDGES_LOST`] in a row it is out (down until the active checks bring it
    /// back, else for [`EJECTION`]).
    pub fn hedge_lost(&self, i: usize) {
        let s = &self.servers[i];
        if s.hedges_lost.fetch_add(1, Relaxed) + 1 < EJECT_AFTER_HEDGES_LOST {
            return;
        }
        s.hedges_lost.store(0, Relaxed);
        tracing::warn!(backend = %self.name, server = %s.name, "server not answering: out of rotation");
        if self.checked {
            self.set_up(i, false);
        } else if let Ok(mut u) = s.ejected_until.lock() {
            *u = Some(Instant::now() + EJECTION);
            s.went_down.fetch_add(1, Relaxed);
        }
    }

    /// A slot on a server other than `tried` now, or none (a hedge never waits in the queue).
    pub fn take_now(self: &Arc<Self>, tried: &[usize]) -> Option<Slot> {
        self.try_take(tried)
    }

    /// Mark server `i` up or down (health checks, passive failures); queued requests re-look.
    pub fn set_up(&self, i: usize, up: bool) {
        let s = &self.servers[i];
        if s.up.swap(up, AcqRel) != up {
            *s.changed.lock().unwrap_or_else(|e| e.into_inner()) = Instant::now();
            if !up {
                s.went_down.fetch_add(1, Relaxed);
            }
            tracing::warn!(backend = %self.name, server = %s.name, up, "server state changed");
            self.freed.notify_waiters();
        }
    }

    /// Take a slot on a server now, per the balance, skipping `tried`; `None` if none is free.
    fn try_take(self: &Arc<Self>, tried: &[usize]) -> Option<Slot> {
        let n = self.servers.len();
        if n == 0 {
            return None;
        }
        let start = self.rr.fetch_add(1, Relaxed);
        let order = (0..n).map(|k| (start + k) % n);
        let eligible = |i: &usize| {
            !tried.contains(i) && self.servers[*i].up.load(Acquire) && !self.servers[*i].ejected()
        };
        let candidates: Vec<usize> = match self.balance {
            Balance::Roundrobin => order.filter(eligible).collect(),
            Balance::Leastconn => {
                let mut c: Vec<usize> = order.filter(eligible).collect();
                c.sort_by_key(|&i| self.servers[i].inflight.load(Acquire)); // stable: rr breaks ties
                c
            }
        };
        for i in candidates {
            let s = &self.servers[i];
            let limit = self.maxconn.unwrap_or(usize::MAX);
            let taken = s
                .inflight
                .fetch_update(AcqRel, Acquire, |v| (v < limit).then_some(v + 1));
            if let Ok(prev) = taken {
                s.counters.max_inflight.fetch_max(prev + 1, Relaxed);
                s.counters.total.fetch_add(1, Relaxed);
                return Some(Slot {
                    backend: self.clone(),
                    index: i,
                });
            }
        }
        None
    }

    fn any_available(&self, tried: &[usize]) -> bool {
        self.servers
            .iter()
            .enumerate()
            .any(|(i, s)| !tried.contains(&i) && s.up.load(Acquire) && !s.ejected())
    }

    /// A slot on some server, waiting in the queue (at most the queue timeout) while every
    /// available server is at its maxconn.
    pub async fn acquire(self: &Arc<Self>, tried: &[usize]) -> Result<Slot, NoServer> {
        let deadline = tokio::time::Instant::now() + self.queue_timeout;
        let mut counted = false;
        let result = loop {
            let freed = self.freed.notified();
            tokio::pin!(freed);
            freed.as_mut().enable();
            if let Some(slot) = self.try_take(tried) {
                break Ok(slot);
            }
            if !self.any_available(tried) {
                break Err(NoServer::NoneAvailable);
            }
            if !counted {
                counted = true;
                let q = self.queued.fetch_add(1, AcqRel) + 1;
                self.max_queued.fetch_max(q, Relaxed);
            }
            tokio::select! {
                _ = &mut freed => {}
                _ = tokio::time::sleep_until(deadline) => break Err(NoServer::QueueTimeout),
            }
        };
        if counted {
            self.queued.fetch_sub(1, AcqRel);
        }
        if result.is_err() {
            self.rejected.fetch_add(1, Relaxed);
        }
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Server;

    fn backend(n: usize, balance: Balance, maxconn: Option<usize>, queue_ms: u64) -> Arc<Backend> {
        let mut f = Frontend::new(
            "b",
            "127.0.0.1:0",
            (0..n)
                .map(|i| Server {
                    name: format!("s{i}"),
                    addr: format!("127.0.0.1:{}", 1000 + i),
                })
                .collect(),
        );
        f.balance = balance;
        f.server_maxconn = maxconn;
        f.queue_timeout_ms = queue_ms;
        Backend::new(&f)
    }

    #[tokio::test]
    async fn round_robin_alternates_and_skips_down_servers() {
        let b = backend(3, Balance::Roundrobin, None, 10);
        let picks: Vec<usize> = futures_picks(&b, 6).await;
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        b.set_up(1, false);
        let picks: Vec<usize> = futures_picks(&b, 4).await;
        assert!(!picks.contains(&1), "{picks:?}");
        b.set_up(0, false);
        b.set_up(2, false);
        assert_eq!(b.acquire(&[]).await.unwrap_err(), NoServer::NoneAvailable);
    }

    async fn futures_picks(b: &Arc<Backend>, n: usize) -> Vec<usize> {
        let mut v = Vec::new();
        for _ in 0..n {
            v.push(b.acquire(&[]).await.unwrap().index);
        }
        v
    }

    #[tokio::test]
    async fn leastconn_prefers_the_idle_server() {
        let b = backend(2, Balance::Leastconn, None, 10);
        let held = b.acquire(&[]).await.unwrap();
        for _ in 0..4 {
            let s = b.acquire(&[]).await.unwrap();
            assert_ne!(s.index, held.index);
        }
    }

    #[tokio::test]
    async fn maxconn_queues_then_times_out_and_never_exceeds_the_limit() {
        let b = backend(1, Balance::Roundrobin, Some(2), 50);
        let a = b.acquire(&[]).await.unwrap();
        let _c = b.acquire(&[]).await.unwrap();
        // A third waits; freeing a slot lets it in.
        let b2 = b.clone();
        let waiter = tokio::spawn(async move { b2.acquire(&[]).await.map(|s| s.index) });
        tokio::task::yield_now().await;
        drop(a);
        assert_eq!(waiter.await.unwrap(), Ok(0));
        // Nothing frees now: the queue timeout answers.
        let _d = b.acquire(&[]).await.unwrap();
        let t0 = Instant::now();
        assert_eq!(b.acquire(&[]).await.unwrap_err(), NoServer::QueueTimeout);
        assert!(t0.elapsed() >= Duration::from_millis(50));
        assert_eq!(b.servers[0].counters.max_inflight.load(Relaxed), 2);
    }

    #[tokio::test]
    async fn tried_servers_are_skipped_for_retries() {
        let b = backend(2, Balance::Roundrobin, None, 10);
        for _ in 0..3 {
            assert_eq!(b.acquire(&[0]).await.unwrap().index, 1);
        }
        assert_eq!(
            b.acquire(&[0, 1]).await.unwrap_err(),
            NoServer::NoneAvailable
        );
    }
}
