//! Reads of the span blocks: traces by id, trace search, a window's traces, the listed names.

use std::collections::{HashMap, HashSet};

use rusqlite::{Connection, params};

use super::super::blocks::decompress;
use super::block::{Listed, StoredSpan, holds, spans, trace_key};

/// What a trace search asks of each span (the Zipkin API's filters but the annotation query,
/// which `keep` applies).
pub struct SpanFilter<'a> {
    pub from_us: i64,
    pub until_us: i64,
    pub service: Option<&'a str>,
    pub remote: Option<&'a str>,
    pub name: Option<&'a str>,
    pub min_duration: Option<i64>,
    pub max_duration: Option<i64>,
}

impl SpanFilter<'_> {
    fn passes(&self, s: &StoredSpan<'_>) -> bool {
        let Some(ts) = s.ts else { return false };
        let same = |want: Option<&str>, got: Option<&str>| want.is_none_or(|w| got == Some(w));
        ts >= self.from_us
            && ts <= self.until_us
            && same(self.service, s.service)
            && same(self.remote, s.remote)
            && same(self.name, s.name)
            && self
                .min_duration
                .is_none_or(|m| s.duration.is_some_and(|d| d >= m))
            && self
                .max_duration
                .is_none_or(|m| s.duration.is_some_and(|d| d <= m))
    }
}

/// Reads of the span blocks, on a read connection.
pub(crate) struct Reader<'c>(pub &'c Connection);

impl Reader<'_> {
    /// Every stored report of the spans of these traces, by trace id, each in (timestamp,
    /// arrival) order (spans without a timestamp first).
    pub(crate) fn traces(&self, ids: &[&str]) -> rusqlite::Result<HashMap<String, Vec<String>>> {
        let mut out: HashMap<String, Vec<(Option<i64>, String)>> = HashMap::new();
        if ids.is_empty() {
            return Ok(HashMap::new());
        }
        let wanted: HashSet<&str> = ids.iter().copied().collect();
        let keys: Vec<u64> = ids.iter().map(|id| trace_key(id)).collect();
        let mut st = self
            .0
            .prepare_cached("SELECT id, traces FROM span_blocks ORDER BY id")?;
        let mut rows = st.query([])?;
        let mut hit = Vec::new();
        while let Some(r) = rows.next()? {
            let list = r.get_ref(1)?.as_blob()?;
            if keys.iter().any(|k| holds(list, *k)) {
                hit.push(r.get::<_, i64>(0)?);
            }
        }
        let mut data = self
            .0
            .prepare_cached("SELECT data FROM span_blocks WHERE id = ?1")?;
        for block in hit {
            let bytes: Vec<u8> = data.query_row(params![block], |r| r.get(0))?;
            let Some(raw) = decompress(&bytes) else {
                tracing::warn!(block, "hub store: a damaged span block was skipped");
                continue;
            };
            for s in spans(&raw) {
                if wanted.contains(s.trace_id) {
                    out.entry(s.trace_id.to_owned())
                        .or_default()
                        .push((s.ts, s.doc.to_owned()));
                }
            }
        }
        Ok(out
            .into_iter()
            .map(|(id, mut v)| {
                // Stable: arrival order within one timestamp.
                v.sort_by_key(|(ts, _)| *ts);
                (id, v.into_iter().map(|(_, d)| d).collect())
            })
            .collect())
    }

    /// The ids of the traces with a span passing `f` and `keep`, newest such span first, at
    /// most `limit`.
    pub(crate) fn find(
        &self,
        f: &SpanFilter<'_>,
        limit: usize,
        mut keep: impl FnMut(&str) -> bool,
    ) -> rusqlite::Result<Vec<String>> {
        // Blocks newest-ending first: once `limit` traces are found, a block ending before the
        // limit-th newest hit cannot change the answer.
        let mut st = self.0.prepare_cached(
            "SELECT id, max_ts, data FROM span_blocks WHERE max_ts >= ?1 AND min_ts <= ?2
             ORDER BY max_ts DESC",
        )?;
        let mut rows = st.query(params![f.from_us, f.until_us])?;
        let mut newest: HashMap<String, i64> = HashMap::new();
        while let Some(r) = rows.next()? {
            let max_ts: i64 = r.get(1)?;
            if newest.len() >= limit && limit > 0 {
                let mut ts: Vec<i64> = newest.values().copied().collect();
                ts.sort_unstable_by(|a, b| b.cmp(a));
                if max_ts < ts[limit - 1] {
                    break;
                }
            }
            let block: i64 = r.get(0)?;
            let Some(raw) = decompress(r.get_ref(2)?.as_blob()?) else {
                tracing::warn!(block, "hub store: a damaged span block was skipped");
                continue;
            };
            for s in spans(&raw) {
                if !f.passes(&s) {
                    continue;
                }
                let ts = s.ts.unwrap_or(i64::MIN);
                if newest.get(s.trace_id).is_some_and(|t| *t >= ts) || !keep(s.doc) {
                    continue;
                }
                newest.insert(s.trace_id.to_owned(), ts);
            }
        }
        let mut found: Vec<(i64, String)> = newest.into_iter().map(|(id, t)| (t, id)).collect();
        found.sort_unstable_by(|a, b| b.cmp(a));
        Ok(found.into_iter().take(limit).map(|(_, id)| id).collect())
    }

    /// The ids of the traces with a span in `[from_us, until_us]`.
    pub(crate) fn traces_in(&self, from_us: i64, until_us: i64) -> rusqlite::Result<Vec<String>> {
        let mut st = self
            .0
            .prepare_cached("SELECT data FROM span_blocks WHERE max_ts >= ?1 AND min_ts <= ?2")?;
        let mut rows = st.query(params![from_us, until_us])?;
        let mut ids = HashSet::new();
        while let Some(r) = rows.next()? {
            let Some(raw) = decompress(r.get_ref(0)?.as_blob()?) else {
                continue;
            };
            for s in spans(&raw) {
                if s.ts.is_some_and(|t| t >= from_us && t <= until_us) && !ids.contains(s.trace_id)
                {
                    ids.insert(s.trace_id.to_owned());
                }
            }
        }
        Ok(ids.into_iter().collect())
    }

    /// What `span_names` lists: services (no `service`), or one service's span or remote
    /// service names; sorted.
    pub(crate) fn names(
        &self,
        what: Listed,
        service: Option<&str>,
    ) -> rusqlite::Result<Vec<String>> {
        match service {
            None => self
                .0
                .prepare_cached("SELECT DISTINCT service FROM span_names ORDER BY 1")?
                .query_map([], |r| r.get(0))?
                .collect(),
            Some(s) => self
                .0
                .prepare_cached(
                    "SELECT value FROM span_names WHERE service = ?1 AND what = ?2 ORDER BY 1",
                )?
                .query_map(params![s, what as i64], |r| r.get(0))?
                .collect(),
        }
    }
}
