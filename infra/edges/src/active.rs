//! The faults in effect, as the edges see them: re-read from `.lab/faults.json` when it changes
//! (checked every 100 ms), each with its own count of the exchanges it was asked about, and the
//! seeded draw that decides whether one exchange is hit — so with the same seed a fault with
//! probability p hits the same exchanges (the k-th request since it began) on every run.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Deserialize;

use crate::fault::{Direction, EdgeFault, EdgeKind, PartitionMode};

/// The part of `.lab/faults.json` the edges read.
#[derive(Deserialize)]
struct FileView {
    #[serde(default)]
    active: Vec<FaultView>,
}

#[derive(Deserialize)]
struct FaultView {
    id: String,
    instance: String,
    #[serde(default)]
    until_ms: Option<i64>,
    #[serde(default)]
    edge: Option<EdgeFault>,
}

/// One edge fault in effect.
#[derive(Debug)]
pub struct Active {
    /// `f3`.
    pub id: String,
    /// `recipe-api` (every edge into it) or `recipe-api#1` (one).
    pub target: String,
    pub until_ms: Option<i64>,
    pub fault: EdgeFault,
    /// Exchanges asked about, and hit.
    pub exchanges: AtomicU64,
    pub hits: AtomicU64,
    /// Mixed into the draw: a hash of the fault and its target, so the same fault injected
    /// again hits the same exchanges, and another fault others.
    num: u64,
}

impl Active {
    pub fn applies_to(&self, service: &str, instance: &str) -> bool {
        (self.target == service || self.target == instance)
            && self.until_ms.is_none_or(|u| u > now_ms())
    }
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// The faults in effect, shared by every connection of every edge.
pub struct Faults {
    current: RwLock<Arc<Vec<Arc<Active>>>>,
    seed: u64,
}

impl Faults {
    pub fn new(seed: u64) -> Self {
        Self {
            current: RwLock::new(Arc::new(Vec::new())),
            seed,
        }
    }

    pub fn snapshot(&self) -> Arc<Vec<Arc<Active>>> {
        self.current.read().expect("faults lock").clone()
    }

    /// Take what the file says; a fault already known keeps its counts.
    fn replace(&self, views: Vec<FaultView>) {
        let old = self.snapshot();
        let next: Vec<Arc<Active>> = views
            .into_iter()
            .filter_map(|v| {
                let fault = v.edge?;
                if let Some(known) = old.iter().find(|a| a.id == v.id && a.fault == fault) {
                    return Some(known.clone());
                }
                Some(Arc::new(Active {
                    num: fnv1a(format!("{} {}", v.instance, fault.describe()).as_bytes()),
                    id: v.id,
                    target: v.instance,
                    until_ms: v.until_ms,
                    fault,
                    exchanges: AtomicU64::new(0),
                    hits: AtomicU64::new(0),
                }))
            })
            .collect();
        *self.current.write().expect("faults lock") = Arc::new(next);
    }

    /// Read `path` now (a missing file: no faults).
    pub fn reload(&self, path: &Path) {
        match std::fs::read(path) {
            Ok(bytes) => match serde_json::from_slice::<FileView>(&bytes) {
                Ok(v) => self.replace(v.active),
                Err(e) => tracing::warn!(error = %e, "cannot read the faults file"),
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => self.replace(Vec::new()),
            Err(e) => tracing::warn!(error = %e, "cannot read the faults file"),
        }
    }

    /// Decide what the next exchange on the edge into `service`'s `instance` suffers.
    pub fn decide(&self, service: &str, instance: &str, http: bool, seq: u64) -> Decision {
        let snapshot = self.snapshot();
        let mut d = Decision {
            seq,
            ..Decision::default()
        };
        for a in snapshot.iter() {
            if !a.applies_to(service, instance) || (a.fault.kind.is_http() && !http) {
                continue;
            }
            let k = a.exchanges.fetch_add(1, Ordering::Relaxed);
            let hit = match a.fault.kind {
                EdgeKind::FailFirst { n, .. } => k < n,
                _ => draw(self.seed, a.num, k, 0) < a.fault.probability,
            };
            if !hit {
                continue;
            }
            a.hits.fetch_add(1, Ordering::Relaxed);
            d.labels.push(a.fault.kind.label());
            d.ids.push(a.id.clone());
            let way = match a.fault.direction {
                Direction::Upstream => &mut d.up,
                Direction::Downstream => &mut d.down,
            };
            match a.fault.kind {
                EdgeKind::Latency { ms, jitter_ms } => {
                    let j = jitter_ms as f64 * (2.0 * draw(self.seed, a.num, k, 1) - 1.0);
                    let ms = (ms as f64 + j).max(0.0);
                    way.delay += Duration::from_micros((ms * 1000.0) as u64);
                }
                EdgeKind::Bandwidth { kb_per_s } => {
                    let rate = kb_per_s.max(1) * 1000;
                    way.rate = Some(way.rate.map_or(rate, |r| r.min(rate)));
                }
                EdgeKind::Timeout => way.hold = Some(a.id.clone()),
                EdgeKind::SlowClose { ms } => way.slow_close += Duration::from_millis(ms),
                EdgeKind::LimitData { bytes } => {
                    way.limit = Some(way.limit.map_or(bytes, |l| l.min(bytes)));
                }
                EdgeKind::Reset => d.reset = true,
                EdgeKind::Status { code } | EdgeKind::FailFirst { code, .. } => {
                    d.answer
                        .get_or_insert((code, a.id.clone(), a.fault.kind.label()));
                }
                EdgeKind::SlowFirstByte { ms } => d.first_byte += Duration::from_millis(ms),
                EdgeKind::AbortAfterHeaders => d.abort_after_headers = true,
                EdgeKind::Partition {
                    mode: PartitionMode::Refuse,
                } => d.reset = true,
                EdgeKind::Partition {
                    mode: PartitionMode::Drop,
                } => {
                    d.up.hold = Some(a.id.clone());
                    d.down.hold = Some(a.id.clone());
                }
            }
        }
        d
    }
}

impl Faults {
    /// The partition in effect on the edge into `service`'s `instance`, if any: its mode and
    /// id. `count`: a connection it meets (counted as an exchange it hit).
    pub fn partition(
        &self,
        service: &str,
        instance: &str,
        count: bool,
    ) -> Option<(PartitionMode, String)> {
        let snapshot = self.snapshot();
        let a = snapshot.iter().find(|a| {
            matches!(a.fault.kind, EdgeKind::Partition { .. }) && a.applies_to(service, instance)
        })?;
        if count {
            a.exchanges.fetch_add(1, Ordering::Relaxed);
            a.hits.fetch_add(1, Ordering::Relaxed);
        }
        match a.fault.kind {
            EdgeKind::Partition { mode } => Some((mode, a.id.clone())),
            _ => None,
        }
    }
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

/// A number in [0, 1) from the seed, the fault and the exchange: the same on every run.
fn draw(seed: u64, fault: u64, k: u64, salt: u64) -> f64 {
    let z = seed
        ^ fault.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        ^ k.wrapping_mul(0xD1B5_4A32_D192_ED03)
        ^ salt.wrapping_mul(0x94D0_49BB_1331_11EB);
    (mix(z) >> 11) as f64 / (1u64 << 53) as f64
}

/// splitmix64's finaliser: every bit of `z` stirred into every bit of the result.
pub(crate) fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// What one direction of an exchange suffers.
#[derive(Debug, Clone, Default)]
pub struct Way {
    pub delay: Duration,
    /// Bytes a second.
    pub rate: Option<u64>,
    /// Held by this fault (timeout): nothing passes while it lasts.
    pub hold: Option<String>,
    pub limit: Option<u64>,
    pub slow_close: Duration,
}

/// What one exchange (a request, on an HTTP edge) suffers; the default: nothing.
#[derive(Debug, Clone, Default)]
pub struct Decision {
    /// The exchange's number on its connection.
    pub seq: u64,
    pub labels: Vec<String>,
    /// The ids of the faults that hit it.
    pub ids: Vec<String>,
    pub up: Way,
    pub down: Way,
    pub reset: bool,
    /// The edge answers (status, fault id, label).
    pub answer: Option<(u16, String, String)>,
    pub first_byte: Duration,
    pub abort_after_headers: bool,
}

/// Re-read `path` whenever its modification time or length changes, every 100 ms.
pub async fn watch(path: PathBuf, faults: Arc<Faults>) {
    let stamp = |p: &Path| {
        std::fs::metadata(p)
            .ok()
            .map(|m| (m.modified().ok(), m.len()))
    };
    let mut seen = stamp(&path);
    faults.reload(&path);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = stamp(&path);
        if now != seen {
            seen = now;
            faults.reload(&path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(dir: &Path, active: serde_json::Value) -> PathBuf {
        let p = dir.join("faults.json");
        std::fs::write(&p, serde_json::json!({ "active": active }).to_string()).unwrap();
        p
    }

    #[test]
    fn a_seeded_share_hits_the_same_exchanges_every_run_and_about_its_share() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(
            dir.path(),
            serde_json::json!([{"id": "f1", "instance": "recipe-api", "kind": "pause",
                "edge": {"kind": "status", "code": 503, "probability": 0.2}}]),
        );
        let hits = |seed| {
            let f = Faults::new(seed);
            f.reload(&p);
            (0..2000)
                .filter(|&k| {
                    f.decide("recipe-api", "recipe-api#1", true, k)
                        .answer
                        .is_some()
                })
                .collect::<Vec<u64>>()
        };
        let a = hits(7);
        assert_eq!(a, hits(7), "the same seed hits the same requests");
        assert_ne!(a, hits(8), "another seed, others");
        // Binomial(2000, 0.2): mean 400, sd ~17.9; ±5 sd.
        assert!((310..=490).contains(&a.len()), "{}", a.len());
    }

    #[test]
    fn faults_apply_to_their_target_only_and_fail_first_counts() {
        let dir = tempfile::tempdir().unwrap();
        let p = file(
            dir.path(),
            serde_json::json!([
                {"id": "f1", "instance": "recipe-api#2", "kind": "latency",
                 "edge": {"kind": "latency", "ms": 200}},
                {"id": "f2", "instance": "recipe-api", "kind": "fail-first",
                 "edge": {"kind": "fail-first", "n": 2, "code": 500}},
                {"id": "f3", "instance": "web-api#1", "kind": "pause"},
            ]),
        );
        let f = Faults::new(0);
        f.reload(&p);
        let one = f.decide("recipe-api", "recipe-api#1", true, 0);
        assert_eq!(one.down.delay, Duration::ZERO, "f1 is on #2 only");
        assert_eq!(one.answer.as_ref().map(|a| a.0), Some(500));
        let two = f.decide("recipe-api", "recipe-api#2", true, 0);
        assert_eq!(two.down.delay, Duration::from_millis(200));
        assert!(two.answer.is_some(), "the second of the first two");
        assert!(
            f.decide("recipe-api", "recipe-api#1", true, 1)
                .answer
                .is_none()
        );
        assert!(
            f.decide("recipe-api", "recipe-api#1", false, 1)
                .labels
                .is_empty(),
            "HTTP faults never hit a TCP edge"
        );
        // A re-read keeps the counts of the faults it already knew.
        f.reload(&p);
        assert!(
            f.decide("recipe-api", "recipe-api#1", true, 2)
                .answer
                .is_none()
        );
        std::fs::remove_file(&p).unwrap();
        f.reload(&p);
        assert!(f.snapshot().is_empty());
    }
}
