//! The readers: series and points, logs (parsed or as their stored text), traces, alert
//! events, load runs, run-time rules, counts.

use rusqlite::{OptionalExtension, params};

use super::Store;
use super::spans::{Listed, SpanFilter};
use super::types::*;

impl Store {
    pub fn series_names(&self) -> Vec<String> {
        self.names
            .read()
            .map(|n| n.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// Points of one series in `[from, until]` (epoch seconds), ascending.
    pub fn points(&self, name: &str, from: i64, until: i64) -> Result<Vec<(i64, f64)>, StoreError> {
        self.with_read(|c| {
            let mut st = c.prepare_cached(
                "SELECT p.ts, p.value FROM points p JOIN series s ON s.id = p.series
                 WHERE s.name = ?1 AND p.ts >= ?2 AND p.ts <= ?3 ORDER BY p.ts",
            )?;
            let rows = st.query_map(params![name, from, until], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, Option<f64>>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                if let (ts, Some(v)) = row? {
                    out.push((ts, v));
                }
            }
            Ok(out)
        })
    }

    /// The newest (or oldest) `limit` log documents of `[from_ms, until_ms]` that `keep`
    /// takes, and how many it took in all; each document parsed.
    pub fn logs(
        &self,
        from_ms: i64,
        until_ms: i64,
        limit: usize,
        oldest_first: bool,
        keep: impl FnMut(&serde_json::Map<String, serde_json::Value>) -> bool,
    ) -> Result<(Vec<StoredLog>, usize), StoreError> {
        let (raw, total) = self.logs_raw(from_ms, until_ms, limit, oldest_first, keep)?;
        let hits = raw
            .into_iter()
            .filter_map(|h| match serde_json::from_str(&h.doc) {
                Ok(serde_json::Value::Object(doc)) => Some(StoredLog {
                    id: h.id,
                    ts_ms: h.ts_ms,
                    index: h.index,
                    source: h.source,
                    doc,
                }),
                _ => None,
            })
            .collect();
        Ok((hits, total))
    }

    /// [`Store::logs`] with each document as its stored JSON text (what the log search API
    /// sends on unchanged: ten thousand hits as trees of values took 135 MB, as text 3 MB).
    pub fn logs_raw(
        &self,
        from_ms: i64,
        until_ms: i64,
        limit: usize,
        oldest_first: bool,
        mut keep: impl FnMut(&serde_json::Map<String, serde_json::Value>) -> bool,
    ) -> Result<(Vec<RawLog>, usize), StoreError> {
        self.with_read(|c| {
            // The blocks that overlap the window, each document then held to it by its own
            // time; the `limit` first in (ts, id) order kept in a heap as the scan goes.
            let mut st = c.prepare_cached(
                "SELECT id, data FROM log_blocks WHERE max_ts >= ?1 AND min_ts <= ?2",
            )?;
            let mut rows = st.query(params![from_ms, until_ms])?;
            let mut best = Best::new(limit, oldest_first);
            let mut total = 0;
            while let Some(r) = rows.next()? {
                let block: i64 = r.get(0)?;
                let Some(raw) = super::blocks::decompress(r.get_ref(1)?.as_blob()?) else {
                    tracing::warn!(block, "hub store: a damaged log block was skipped");
                    continue;
                };
                for (i, d) in super::blocks::rows(&raw).enumerate() {
                    if d.ts_ms < from_ms || d.ts_ms > until_ms {
                        continue;
                    }
                    let Ok(serde_json::Value::Object(doc)) = serde_json::from_str(d.doc) else {
                        continue;
                    };
                    if !keep(&doc) {
                        continue;
                    }
                    total += 1;
                    let id = block << super::blocks::POSITION_BITS | i as i64;
                    best.offer((d.ts_ms, id), || RawLog {
                        id,
                        ts_ms: d.ts_ms,
                        index: d.index.to_owned(),
                        source: d.source.map(str::to_owned),
                        doc: d.doc.to_owned(),
                    });
                }
            }
            Ok((best.into_sorted(), total))
        })
    }

    /// Every stored report of the spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        Ok(self.traces(&[trace_id])?.pop().unwrap_or_default())
    }

    /// [`Store::trace`] of each id, in the order given (one scan of the blocks' trace keys).
    pub fn traces(&self, ids: &[&str]) -> Result<Vec<Vec<serde_json::Value>>, StoreError> {
        let mut found = self.with_read(|c| super::spans::Reader(c).traces(ids))?;
        Ok(ids
            .iter()
            .map(|id| {
                found
                    .remove(*id)
                    .unwrap_or_default()
                    .iter()
                    .filter_map(|d| serde_json::from_str(d).ok())
                    .collect()
            })
            .collect())
    }

    /// The ids of the newest traces with a span passing `f` and `keep` (given the span's
    /// JSON), newest first, at most `limit`.
    pub fn find_traces(
        &self,
        f: &SpanFilter<'_>,
        limit: usize,
        keep: impl FnMut(&str) -> bool,
    ) -> Result<Vec<String>, StoreError> {
        self.with_read(|c| super::spans::Reader(c).find(f, limit, keep))
    }

    /// Every span of the traces with a span in `[from_us, until_us]`.
    pub fn spans_of_traces_in(
        &self,
        from_us: i64,
        until_us: i64,
    ) -> Result<Vec<serde_json::Value>, StoreError> {
        let ids = self.with_read(|c| super::spans::Reader(c).traces_in(from_us, until_us))?;
        let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
        Ok(self.traces(&ids)?.into_iter().flatten().collect())
    }

    /// What the Zipkin API lists: the services (`service` absent), or one service's span
    /// names or remote services.
    pub fn span_names(
        &self,
        what: Listed,
        service: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        self.with_read(|c| super::spans::Reader(c).names(what, service))
    }

    /// The newest alert events since `from_ms`, newest first, at most `limit`, and how many
    /// there are since then in all.
    pub fn alert_events(
        &self,
        from_ms: i64,
        limit: usize,
    ) -> Result<(Vec<AlertEvent>, i64), StoreError> {
        self.with_read(|c| {
            let total = c.query_row(
                "SELECT count(*) FROM alert_events WHERE ts >= ?1",
                params![from_ms],
                |r| r.get::<_, i64>(0),
            )?;
            let mut st = c.prepare_cached(
                "SELECT ts, rule, state, importance, detail FROM alert_events WHERE ts >= ?1 ORDER BY id DESC LIMIT ?2",
            )?;
            let rows = st.query_map(params![from_ms, limit as i64], |r| {
                Ok(AlertEvent {
                    ts_ms: r.get(0)?,
                    rule: r.get(1)?,
                    state: r.get(2)?,
                    importance: r.get(3)?,
                    detail: r.get(4)?,
                })
            })?;
            Ok((rows.collect::<rusqlite::Result<Vec<_>>>()?, total))
        })
    }

    /// Keep a `lab load` result; its id once committed.
    pub fn add_load(&self, ts_ms: i64, doc: String) -> Result<i64, StoreError> {
        let (reply, rx) = std::sync::mpsc::channel();
        self.write(Write::Load { ts_ms, doc, reply })?;
        rx.recv().map_err(|_| StoreError::Stopped)
    }

    /// Stored `lab load` results, newest first: (id, ts ms, document).
    pub fn loads(&self, limit: usize) -> Result<Vec<(i64, i64, serde_json::Value)>, StoreError> {
        self.with_read(|c| {
            let mut st =
                c.prepare_cached("SELECT id, ts, doc FROM loads ORDER BY id DESC LIMIT ?1")?;
            let rows = st.query_map(params![limit as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, String>(2)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, ts, doc) = row?;
                out.push((id, ts, serde_json::from_str(&doc).unwrap_or_default()));
            }
            Ok(out)
        })
    }

    /// One stored `lab load` result.
    pub fn load(&self, id: i64) -> Result<Option<(i64, serde_json::Value)>, StoreError> {
        self.with_read(|c| {
            c.query_row(
                "SELECT ts, doc FROM loads WHERE id = ?1",
                params![id],
                |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()
            .map(|o| o.map(|(ts, doc)| (ts, serde_json::from_str(&doc).unwrap_or_default())))
        })
    }

    /// The run-time alert rules kept, as JSON.
    pub fn runtime_rules(&self) -> Result<Vec<String>, StoreError> {
        self.with_read(|c| {
            let mut st = c.prepare("SELECT rule FROM runtime_rules ORDER BY name")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    /// Log documents, series and spans kept, for the hub's own metrics and `lab hub` status.
    pub fn counts(&self) -> Result<(i64, i64, i64), StoreError> {
        self.with_read(|c| {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).optional();
            Ok((
                one("SELECT coalesce(sum(n), 0) FROM log_blocks")?.unwrap_or(0),
                one("SELECT count(*) FROM series")?.unwrap_or(0),
                one("SELECT coalesce(sum(n), 0) FROM span_blocks")?.unwrap_or(0),
            ))
        })
    }
}

/// The `limit` first documents in (ts, id) order, newest or oldest first, out of any order.
struct Best {
    limit: usize,
    oldest_first: bool,
    /// Its top is the one to give up first.
    heap: std::collections::BinaryHeap<Ranked>,
}

/// A document and its rank: lower is better (the key itself when the oldest come first, the
/// key negated when the newest do).
struct Ranked {
    rank: (i64, i64),
    log: RawLog,
}

impl PartialEq for Ranked {
    fn eq(&self, o: &Self) -> bool {
        self.rank == o.rank
    }
}
impl Eq for Ranked {}
impl PartialOrd for Ranked {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Ranked {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        self.rank.cmp(&o.rank)
    }
}

impl Best {
    fn new(limit: usize, oldest_first: bool) -> Self {
        Self {
            limit,
            oldest_first,
            heap: std::collections::BinaryHeap::with_capacity(limit.min(4096) + 1),
        }
    }

    /// Keep the document of `key` if it is among the first so far (made only then).
    fn offer(&mut self, key: (i64, i64), make: impl FnOnce() -> RawLog) {
        let rank = if self.oldest_first {
            key
        } else {
            (-key.0, -key.1)
        };
        if self.heap.len() >= self.limit {
            match self.heap.peek() {
                Some(worst) if rank < worst.rank => {
                    self.heap.pop();
                }
                _ => return,
            }
        }
        self.heap.push(Ranked { rank, log: make() });
    }

    /// Best first.
    fn into_sorted(self) -> Vec<RawLog> {
        self.heap
            .into_sorted_vec()
            .into_iter()
            .map(|r| r.log)
            .collect()
    }
}
