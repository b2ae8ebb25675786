//! The one writer thread: batched transactions, retention pruning every 30 s.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};

use rusqlite::{Connection, params};

use super::spans::SpanBatch;
use super::types::*;

/// How long the writer gathers writes into one transaction.
const GATHER: std::time::Duration = std::time::Duration::from_millis(20);

pub(super) fn writer(
    mut conn: Connection,
    rx: Receiver<Write>,
    ids: HashMap<String, i64>,
    names: Arc<RwLock<BTreeSet<String>>>,
    step: i64,
    retention: Retention,
    pruned: &Pruned,
) {
    let every = std::time::Duration::from_millis(retention.every_ms.max(10));
    let mut last_prune = std::time::Instant::now() - every;
    let mut batch = Vec::new();
    let mut seen = Seen {
        series: ids,
        span_names: super::spans::Names::default(),
    };
    loop {
        if last_prune.elapsed() >= every {
            last_prune = std::time::Instant::now();
            if let Err(e) = prune(&conn, retention, pruned) {
                tracing::error!(error = %e, "hub store: retention did not run");
            }
            seen.span_names.forget();
        }
        let first = match rx.recv_timeout(every) {
            Ok(w) => w,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        batch.push(first);
        // Group commit: what arrives within GATHER of the first write shares its transaction
        // (a commit writes every page it touched, so fewer, larger ones write far less).
        let until = std::time::Instant::now() + GATHER;
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => {
                    let left = until.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() || matches!(batch.last(), Some(Write::Barrier(_))) {
                        break;
                    }
                    match rx.recv_timeout(left) {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
            }
        }
        let mut barriers = Vec::new();
        let mut loads = Vec::new();
        if let Err(e) = commit(
            &mut conn,
            &mut batch,
            &mut seen,
            &names,
            step,
            &mut barriers,
            &mut loads,
        ) {
            tracing::error!(error = %e, "hub store: a batch was not written");
            loads.clear();
        }
        batch.clear();
        for b in barriers {
            let _ = b.send(());
        }
        // Answered after the commit (a failed batch drops the reply: the caller sees Stopped).
        for (reply, id) in loads {
            let _ = reply.send(id);
        }
    }
}

/// Delete what retention does not keep: everything older than `max_age`, then the oldest
/// tenth of logs, points and spans at a time while more than `max_bytes` are in use (a few
/// rounds per run, so the writer is never held for long), freeing the pages to the file system.
pub(super) fn prune(conn: &Connection, r: Retention, pruned: &Pruned) -> rusqlite::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let now_ms = crate::clock::now_ms();
    let cut_ms = now_ms - r.max_age_ms as i64;
    let by_age = [(
        "DELETE FROM points WHERE ts < ?1",
        cut_ms / 1000,
        &pruned.points,
    )];
    for (sql, cut, n) in by_age {
        n.fetch_add(conn.execute(sql, params![cut])? as u64, Relaxed);
    }
    pruned
        .spans
        .fetch_add(super::spans::prune_before(conn, cut_ms * 1000)?, Relaxed);
    // A block goes once its latest document is past the cut; one that straddles it keeps
    // only its documents from the cut on.
    delete_log_blocks(conn, "max_ts < ?1", &[&cut_ms], &pruned.logs)?;
    trim_log_blocks(conn, cut_ms, &pruned.logs)?;
    conn.execute("DELETE FROM alert_events WHERE ts < ?1", params![cut_ms])?;
    let used = || -> rusqlite::Result<u64> {
        let p = |sql: &str| conn.query_row(sql, [], |row| row.get::<_, i64>(0));
        Ok(
            ((p("PRAGMA page_count")? - p("PRAGMA freelist_count")?) * p("PRAGMA page_size")?)
                as u64,
        )
    };
    for _ in 0..5 {
        if used()? <= r.max_bytes {
            break;
        }
        delete_log_blocks(
            conn,
            "id <= (SELECT min(id) + (max(id) - min(id)) / 10 FROM log_blocks)",
            &[],
            &pruned.logs,
        )?;
        pruned
            .spans
            .fetch_add(super::spans::prune_oldest_tenth(conn)?, Relaxed);
        pruned.points.fetch_add(
            conn.execute(
                "DELETE FROM points WHERE ts <= (SELECT min(ts) + (max(ts) - min(ts)) / 10 FROM points)",
                [],
            )? as u64,
            Relaxed,
        );
        if used()? <= r.max_bytes / 10 * 9 {
            break;
        }
    }
    conn.execute_batch("PRAGMA incremental_vacuum")?;
    Ok(())
}

/// Delete the log blocks `cond` (with its `args`) selects, counting their documents.
fn delete_log_blocks(
    conn: &Connection,
    cond: &str,
    args: &[&dyn rusqlite::ToSql],
    pruned: &std::sync::atomic::AtomicU64,
) -> rusqlite::Result<()> {
    let n = super::blocks::delete_blocks(conn, "log_blocks", cond, args)?;
    pruned.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

/// Rewrite the blocks holding documents both before and from `cut_ms` without the older ones.
fn trim_log_blocks(
    conn: &Connection,
    cut_ms: i64,
    pruned: &std::sync::atomic::AtomicU64,
) -> rusqlite::Result<()> {
    let straddling: Vec<(i64, Vec<u8>)> = conn
        .prepare("SELECT id, data FROM log_blocks WHERE min_ts < ?1 AND max_ts >= ?1")?
        .query_map(params![cut_ms], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    for (id, data) in straddling {
        let Some(raw) = super::blocks::decompress(&data) else {
            continue;
        };
        let all: Vec<_> = super::blocks::rows(&raw).collect();
        let kept: Vec<LogRow> = all
            .iter()
            .filter(|r| r.ts_ms >= cut_ms)
            .map(|r| LogRow {
                ts_ms: r.ts_ms,
                index: r.index.to_owned(),
                source: r.source.map(str::to_owned),
                doc: r.doc.to_owned(),
            })
            .collect();
        let b = super::blocks::encode(&kept);
        conn.execute(
            "UPDATE log_blocks SET min_ts = ?2, max_ts = ?3, n = ?4, data = ?5 WHERE id = ?1",
            params![id, b.min_ts, b.max_ts, b.n as i64, b.data],
        )?;
        pruned.fetch_add(
            (all.len() - kept.len()) as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
    }
    Ok(())
}

/// Store log rows as blocks (see [`super::blocks`]).
pub(super) fn insert_log_blocks(
    st: &mut rusqlite::CachedStatement<'_>,
    rows: &[LogRow],
) -> rusqlite::Result<()> {
    for chunk in rows.chunks(super::blocks::BLOCK_ROWS) {
        let b = super::blocks::encode(chunk);
        st.execute(params![b.min_ts, b.max_ts, b.n as i64, b.data])?;
    }
    Ok(())
}

/// A store written before log blocks kept a row per document in `logs`: those rows become
/// blocks (in their order), and the table goes, in one transaction. The number moved.
pub(super) fn migrate_log_rows(conn: &mut Connection) -> rusqlite::Result<u64> {
    super::blocks::move_rows_into_blocks(
        conn,
        "logs",
        "SELECT id, ts, idx, source, doc FROM logs WHERE id > ?1 ORDER BY id LIMIT ?2",
        super::blocks::BLOCK_ROWS,
        |r| {
            Ok(LogRow {
                ts_ms: r.get(1)?,
                index: r.get(2)?,
                source: r.get(3)?,
                doc: r.get(4)?,
            })
        },
        |tx, rows| insert_log_blocks(&mut tx.prepare_cached(LOG_BLOCK_INSERT)?, rows),
    )
}

pub(super) const LOG_BLOCK_INSERT: &str =
    "INSERT INTO log_blocks (min_ts, max_ts, n, data) VALUES (?1, ?2, ?3, ?4)";

/// What the writer remembers of what it wrote: series ids, and the span names it listed.
pub(super) struct Seen {
    pub series: HashMap<String, i64>,
    pub span_names: super::spans::Names,
}

pub(super) fn commit(
    conn: &mut Connection,
    batch: &mut Vec<Write>,
    seen: &mut Seen,
    names: &RwLock<BTreeSet<String>>,
    step: i64,
    barriers: &mut Vec<std::sync::mpsc::Sender<()>>,
    loads: &mut Vec<(std::sync::mpsc::Sender<i64>, i64)>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut log_st = tx.prepare_cached(LOG_BLOCK_INSERT)?;
        let mut series_st = tx.prepare_cached("INSERT INTO series (name) VALUES (?1)")?;
        let mut point_st = tx.prepare_cached(
            "INSERT OR REPLACE INTO points (series, ts, value) VALUES (?1, ?2, ?3)",
        )?;
        // Every span of the batch in one block (or a few): see super::spans.
        let mut spans = SpanBatch::default();
        for w in batch.drain(..) {
            match w {
                Write::Logs(rows) => insert_log_blocks(&mut log_st, &rows)?,
                Write::Points(points) => {
                    for (name, ts, value) in points {
                        let id = match seen.series.get(&name) {
                            Some(id) => *id,
                            None => {
                                series_st.execute(params![name])?;
                                let id = tx.last_insert_rowid();
                                seen.series.insert(name.clone(), id);
                                if let Ok(mut n) = names.write() {
                                    n.insert(name);
                                }
                                id
                            }
                        };
                        // Last write in a bucket wins, as in whisper.
                        let bucket = ts - ts.rem_euclid(step);
                        let value = value.is_finite().then_some(value);
                        point_st.execute(params![id, bucket, value])?;
                    }
                }
                Write::Spans(batch) => spans.append(batch),
                Write::AlertEvent(e) => {
                    tx.execute(
                        "INSERT INTO alert_events (ts, rule, state, importance, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![e.ts_ms, e.rule, e.state, e.importance, e.detail],
                    )?;
                }
                Write::Load { ts_ms, doc, reply } => {
                    tx.execute(
                        "INSERT INTO loads (ts, doc) VALUES (?1, ?2)",
                        params![ts_ms, doc],
                    )?;
                    loads.push((reply, tx.last_insert_rowid()));
                }
                Write::RuntimeRule { name, rule } => match rule {
                    Some(r) => {
                        tx.execute(
                            "INSERT OR REPLACE INTO runtime_rules (name, rule) VALUES (?1, ?2)",
                            params![name, r],
                        )?;
                    }
                    None => {
                        tx.execute("DELETE FROM runtime_rules WHERE name = ?1", params![name])?;
                    }
                },
                Write::Barrier(b) => barriers.push(b),
            }
        }
        super::spans::insert(&tx, &spans, &mut seen.span_names)?;
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::super::{Retention, Store};

    #[test]
    fn a_store_of_log_rows_is_moved_into_blocks_and_reads_the_same() {
        let dir = tempfile::tempdir().unwrap();
        // Within retention's week.
        let t0 = crate::clock::now_ms() - 60_000;
        {
            let mut c = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
            let c = c.transaction().unwrap();
            c.execute_batch(
                "CREATE TABLE logs (id INTEGER PRIMARY KEY, ts INTEGER NOT NULL, idx TEXT NOT NULL,
                 source TEXT, doc TEXT NOT NULL);",
            )
            .unwrap();
            let mut st = c
                .prepare("INSERT INTO logs (ts, idx, source, doc) VALUES (?1, 'i', ?2, ?3)")
                .unwrap();
            for i in 0..5000i64 {
                let src = (i % 2 == 0).then_some("127.0.0.1");
                st.execute(rusqlite::params![t0 + i, src, format!(r#"{{"n":{i}}}"#)])
                    .unwrap();
            }
            drop(st);
            c.commit().unwrap();
        }
        let s = Store::open(dir.path(), 10, 16, Retention::default()).unwrap();
        assert_eq!(s.counts().unwrap().0, 5000);
        let keep_all = |_: &serde_json::Map<String, serde_json::Value>| true;
        let (newest, total) = s.logs_raw(0, i64::MAX, 3, false, keep_all).unwrap();
        assert_eq!(total, 5000);
        let docs: Vec<_> = newest.iter().map(|h| h.doc.as_str()).collect();
        assert_eq!(docs, [r#"{"n":4999}"#, r#"{"n":4998}"#, r#"{"n":4997}"#]);
        assert_eq!(newest[0].ts_ms, t0 + 4999);
        assert_eq!(newest[0].source, None, "4999 was sent without a source");
        assert_eq!(newest[1].source.as_deref(), Some("127.0.0.1"));
        let (oldest, _) = s.logs_raw(t0 + 2, t0 + 3, 10, true, keep_all).unwrap();
        let docs: Vec<_> = oldest.iter().map(|h| h.doc.as_str()).collect();
        assert_eq!(docs, [r#"{"n":2}"#, r#"{"n":3}"#]);
        assert!(oldest[0].id < oldest[1].id);
        drop(s);
        // Moved once: the old table is gone, and a second open finds the same.
        let s = Store::open(dir.path(), 10, 16, Retention::default()).unwrap();
        assert_eq!(s.counts().unwrap().0, 5000);
    }
}
