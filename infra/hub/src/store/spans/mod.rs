//! Spans are stored a batch to a row, like log documents ([`super::blocks`]): one `span_blocks`
//! row holds up to [`BLOCK_SPANS`] spans, LZ4-compressed, with the batch's time range and the
//! sorted keys of its traces; `span_names` keeps what the Zipkin API lists (services, span
//! names, remote services) without a scan.
//!
//! Why (issue 17): a row per span with an index on its random trace id dirtied a page of that
//! index for nearly every span, so each commit and checkpoint rewrote megabytes: 11 µs of the
//! hub's CPU a span went to SQLite. A block is one insert for a whole batch, and a trace is
//! found by binary search in each block's key list (8 bytes a trace), which a day of spans
//! keeps to a few MB read.
//!
//! A trace's key is the low 64 bits of its id (its last 16 hex characters); blocks whose list
//! holds the key are decompressed and their spans held to the exact id.

use std::collections::HashMap;

use rusqlite::{Connection, params};

use super::blocks::decompress;

pub(super) mod block;
mod read;
pub use block::{BLOCK_SPANS, Listed, SpanBatch, StoredSpan, encode, heads, spans};
pub(crate) use read::Reader;
pub use read::SpanFilter;

/// How far ahead of a `span_names` row's time its name's spans may be (the writer refreshes a
/// row only when a span is this much newer, so retention keeps this margin).
const NAMES_SLACK_US: i64 = 60_000_000;

pub(super) const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS span_blocks (
    id INTEGER PRIMARY KEY,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    n INTEGER NOT NULL,
    traces BLOB NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS span_blocks_max_ts ON span_blocks (max_ts);
CREATE TABLE IF NOT EXISTS span_names (
    service TEXT NOT NULL,
    what INTEGER NOT NULL,
    value TEXT NOT NULL,
    last_ts INTEGER NOT NULL,
    PRIMARY KEY (service, what, value)
) WITHOUT ROWID;
";

/// The writer's memory of the `span_names` rows it wrote (name → the time it wrote), so a
/// row is written once a minute at most, not once a span.
#[derive(Default)]
pub(super) struct Names {
    /// service → (what, value) → time written; looked up by `&str`, allocating only new names.
    written: HashMap<String, [HashMap<String, i64>; 3]>,
}

impl Names {
    /// Forget what was written (retention may have deleted rows).
    pub fn forget(&mut self) {
        self.written.clear();
    }
}

/// Store spans as blocks and note their names.
pub(super) fn insert(
    tx: &Connection,
    batch: &SpanBatch,
    names: &mut Names,
) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let now_us = crate::clock::now_ms() * 1000;
    let mut block_st = tx.prepare_cached(
        "INSERT INTO span_blocks (min_ts, max_ts, n, traces, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    let mut name_st = tx.prepare_cached(
        "INSERT INTO span_names (service, what, value, last_ts) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT DO UPDATE SET last_ts = max(last_ts, excluded.last_ts)",
    )?;
    for (raw, n) in batch.blocks() {
        let b = encode(raw, n, now_us);
        block_st.execute(params![b.min_ts, b.max_ts, b.n as i64, b.traces, b.data])?;
        // Spans of one batch mostly repeat their names: a span like the one before it and no
        // newer than what was noted for that one is not looked up again.
        let mut last: Option<(&str, Option<&str>, Option<&str>, i64)> = None;
        for h in heads(raw) {
            let Some(service) = h.service else { continue };
            let ts = h.ts.unwrap_or(b.max_ts);
            if let Some((s, n, r, noted)) = last
                && (s, n, r) == (service, h.name, h.remote)
                && ts <= noted
            {
                continue;
            }
            let mut noted = i64::MAX;
            let listed = [
                (Listed::Service, Some("")),
                (Listed::SpanName, h.name),
                (Listed::RemoteService, h.remote),
            ];
            for (what, value) in listed {
                let Some(value) = value else { continue };
                if !names.written.contains_key(service) {
                    names.written.insert(service.to_owned(), Default::default());
                }
                let seen = &mut names.written.get_mut(service).expect("just made")[what as usize];
                match seen.get_mut(value) {
                    Some(at) if ts <= *at + NAMES_SLACK_US => {
                        noted = noted.min(*at + NAMES_SLACK_US)
                    }
                    Some(at) => {
                        *at = ts;
                        noted = noted.min(ts + NAMES_SLACK_US);
                        name_st.execute(params![service, what as i64, value, ts])?;
                    }
                    None => {
                        name_st.execute(params![service, what as i64, value, ts])?;
                        noted = noted.min(ts + NAMES_SLACK_US);
                        seen.insert(value.to_owned(), ts);
                    }
                }
            }
            last = Some((service, h.name, h.remote, noted));
        }
    }
    Ok(())
}

/// Retention by age: blocks wholly before `cut_us` go, a block straddling it keeps its spans
/// from the cut on (spans without a timestamp stay with it); names go with their spans. The
/// number of spans deleted.
pub(super) fn prune_before(conn: &Connection, cut_us: i64) -> rusqlite::Result<u64> {
    let mut gone = super::blocks::delete_blocks(conn, "span_blocks", "max_ts < ?1", &[&cut_us])?;
    let straddling: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, data FROM span_blocks WHERE min_ts < ?1 AND max_ts >= ?1")?
        .query_map(params![cut_us], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, data) in straddling {
        let Some(raw) = decompress(&data) else {
            continue;
        };
        let all: Vec<_> = spans(&raw).collect();
        let mut kept = SpanBatch::default();
        for s in all.iter().filter(|s| s.ts.is_none_or(|t| t >= cut_us)) {
            kept.push_stored(s);
        }
        let Some((kept_raw, n)) = kept.blocks().next() else {
            // Every span of it goes (one without a timestamp would have stayed).
            conn.execute("DELETE FROM span_blocks WHERE id = ?1", params![id])?;
            gone += all.len() as u64;
            continue;
        };
        let b = encode(kept_raw, n, cut_us);
        conn.execute(
            "UPDATE span_blocks SET min_ts = ?2, max_ts = ?3, n = ?4, traces = ?5, data = ?6 WHERE id = ?1",
            params![id, b.min_ts, b.max_ts, b.n as i64, b.traces, b.data],
        )?;
        gone += (all.len() - n) as u64;
    }
    conn.execute(
        "DELETE FROM span_names WHERE last_ts < ?1",
        params![cut_us - NAMES_SLACK_US],
    )?;
    Ok(gone)
}

/// Retention by size: the oldest tenth of the blocks go, and the names of no span left.
pub(super) fn prune_oldest_tenth(conn: &Connection) -> rusqlite::Result<u64> {
    let gone = super::blocks::delete_blocks(
        conn,
        "span_blocks",
        "id <= (SELECT min(id) + (max(id) - min(id)) / 10 FROM span_blocks)",
        &[],
    )?;
    conn.execute(
        "DELETE FROM span_names WHERE last_ts < coalesce((SELECT min(min_ts) FROM span_blocks), 9223372036854775807) - ?1",
        params![NAMES_SLACK_US],
    )?;
    Ok(gone)
}

/// A store written before span blocks kept a row per span in `spans`: those rows become blocks
/// (in their order), and the table goes, in one transaction. The number moved.
pub(super) fn migrate_rows(conn: &mut Connection) -> rusqlite::Result<u64> {
    let mut names = Names::default();
    super::blocks::move_rows_into_blocks(
        conn,
        "spans",
        "SELECT id, trace_id, service, remote_service, name, ts, duration, doc FROM spans
         WHERE id > ?1 ORDER BY id LIMIT ?2",
        BLOCK_SPANS,
        |r| {
            Ok(OldRow {
                trace_id: r.get(1)?,
                service: r.get(2)?,
                remote: r.get(3)?,
                name: r.get(4)?,
                ts: r.get(5)?,
                duration: r.get(6)?,
                doc: r.get(7)?,
            })
        },
        |tx, rows| {
            let mut batch = SpanBatch::with_capacity(rows.len());
            for r in rows {
                batch.push_stored(&StoredSpan {
                    ts: r.ts,
                    duration: r.duration,
                    trace_id: &r.trace_id,
                    service: r.service.as_deref(),
                    remote: r.remote.as_deref(),
                    name: r.name.as_deref(),
                    doc: &r.doc,
                });
            }
            insert(tx, &batch, &mut names)
        },
    )
}

/// A row of an older store's `spans` table.
struct OldRow {
    trace_id: String,
    service: Option<String>,
    remote: Option<String>,
    name: Option<String>,
    ts: Option<i64>,
    duration: Option<i64>,
    doc: String,
}

#[cfg(test)]
mod tests;
