//! The readers: series and points, logs (parsed or as their stored text), traces, alert
//! events, load runs, run-time rules, counts.

use rusqlite::{OptionalExtension, params};

use super::Store;
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

    /// Log documents with `from_ms <= ts <= until_ms`, newest first, passing `keep`, at most `limit`.
    /// Returns the hits and how many matched in all (scanned to the end of the window).
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
            let sql = if oldest_first {
                "SELECT id, ts, idx, source, doc FROM logs WHERE ts >= ?1 AND ts <= ?2 ORDER BY ts, id"
            } else {
                "SELECT id, ts, idx, source, doc FROM logs WHERE ts >= ?1 AND ts <= ?2 ORDER BY ts DESC, id DESC"
            };
            let mut st = c.prepare_cached(sql)?;
            let mut rows = st.query(params![from_ms, until_ms])?;
            let (mut hits, mut total) = (Vec::new(), 0);
            while let Some(r) = rows.next()? {
                let text = r.get_ref(4)?.as_str().unwrap_or("");
                let Ok(serde_json::Value::Object(doc)) = serde_json::from_str(text) else {
                    continue;
                };
                if !keep(&doc) {
                    continue;
                }
                total += 1;
                if hits.len() < limit {
                    hits.push(RawLog {
                        id: r.get(0)?,
                        ts_ms: r.get(1)?,
                        index: r.get(2)?,
                        source: r.get(3)?,
                        doc: text.to_owned(),
                    });
                }
            }
            Ok((hits, total))
        })
    }

    /// Every stored report of the spans of one trace.
    pub fn trace(&self, trace_id: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        self.with_read(|c| {
            let mut st =
                c.prepare_cached("SELECT doc FROM spans WHERE trace_id = ?1 ORDER BY ts, id")?;
            let rows = st.query_map(params![trace_id], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for row in rows {
                if let Ok(v) = serde_json::from_str(&row?) {
                    out.push(v);
                }
            }
            Ok(out)
        })
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

    /// Row counts, for the hub's own metrics and `lab hub` status.
    /// The run-time alert rules kept, as JSON.
    pub fn runtime_rules(&self) -> Result<Vec<String>, StoreError> {
        self.with_read(|c| {
            let mut st = c.prepare("SELECT rule FROM runtime_rules ORDER BY name")?;
            let rows = st.query_map([], |r| r.get::<_, String>(0))?;
            rows.collect()
        })
    }

    pub fn counts(&self) -> Result<(i64, i64, i64), StoreError> {
        self.with_read(|c| {
            let one = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0)).optional();
            Ok((
                one("SELECT count(*) FROM logs")?.unwrap_or(0),
                one("SELECT count(*) FROM series")?.unwrap_or(0),
                one("SELECT count(*) FROM spans")?.unwrap_or(0),
            ))
        })
    }
}
