//! The one writer thread: batched transactions, retention pruning every 30 s.

use std::collections::{BTreeSet, HashMap};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, RwLock};

use rusqlite::{Connection, params};

use super::types::*;

pub(super) fn writer(
    mut conn: Connection,
    rx: Receiver<Write>,
    mut ids: HashMap<String, i64>,
    names: Arc<RwLock<BTreeSet<String>>>,
    step: i64,
    retention: Retention,
    pruned: &Pruned,
) {
    let every = std::time::Duration::from_millis(retention.every_ms.max(10));
    let mut last_prune = std::time::Instant::now() - every;
    let mut batch = Vec::new();
    loop {
        if last_prune.elapsed() >= every {
            last_prune = std::time::Instant::now();
            if let Err(e) = prune(&conn, retention, pruned) {
                tracing::error!(error = %e, "hub store: retention did not run");
            }
        }
        let first = match rx.recv_timeout(every) {
            Ok(w) => w,
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => continue,
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return,
        };
        batch.push(first);
        while batch.len() < 256 {
            match rx.try_recv() {
                Ok(w) => batch.push(w),
                Err(_) => break,
            }
        }
        let mut barriers = Vec::new();
        let mut loads = Vec::new();
        if let Err(e) = commit(
            &mut conn,
            &mut batch,
            &mut ids,
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
    let by_age = [
        ("DELETE FROM logs WHERE ts < ?1", cut_ms, &pruned.logs),
        (
            "DELETE FROM points WHERE ts < ?1",
            cut_ms / 1000,
            &pruned.points,
        ),
        (
            "DELETE FROM spans WHERE ts < ?1",
            cut_ms * 1000,
            &pruned.spans,
        ),
    ];
    for (sql, cut, n) in by_age {
        n.fetch_add(conn.execute(sql, params![cut])? as u64, Relaxed);
    }
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
        let oldest_tenth = |table: &str| -> String {
            format!(
                "DELETE FROM {table} WHERE id <= (SELECT min(id) + (max(id) - min(id)) / 10 FROM {table})"
            )
        };
        pruned
            .logs
            .fetch_add(conn.execute(&oldest_tenth("logs"), [])? as u64, Relaxed);
        pruned
            .spans
            .fetch_add(conn.execute(&oldest_tenth("spans"), [])? as u64, Relaxed);
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

pub(super) fn commit(
    conn: &mut Connection,
    batch: &mut Vec<Write>,
    ids: &mut HashMap<String, i64>,
    names: &RwLock<BTreeSet<String>>,
    step: i64,
    barriers: &mut Vec<std::sync::mpsc::Sender<()>>,
    loads: &mut Vec<(std::sync::mpsc::Sender<i64>, i64)>,
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut log_st =
            tx.prepare_cached("INSERT INTO logs (ts, idx, source, doc) VALUES (?1, ?2, ?3, ?4)")?;
        let mut series_st = tx.prepare_cached("INSERT INTO series (name) VALUES (?1)")?;
        let mut point_st = tx.prepare_cached(
            "INSERT OR REPLACE INTO points (series, ts, value) VALUES (?1, ?2, ?3)",
        )?;
        let mut span_st = tx.prepare_cached(
            "INSERT INTO spans (trace_id, span_id, parent_id, service, remote_service, name, kind, ts, duration, doc)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
        )?;
        for w in batch.drain(..) {
            match w {
                Write::Logs(rows) => {
                    for e in rows {
                        log_st.execute(params![e.ts_ms, e.index, e.source, e.doc])?;
                    }
                }
                Write::Points(points) => {
                    for (name, ts, value) in points {
                        let id = match ids.get(&name) {
                            Some(id) => *id,
                            None => {
                                series_st.execute(params![name])?;
                                let id = tx.last_insert_rowid();
                                ids.insert(name.clone(), id);
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
                Write::Spans(rows) => {
                    for s in rows {
                        span_st.execute(params![
                            s.trace_id,
                            s.id,
                            s.parent_id,
                            s.service,
                            s.remote_service,
                            s.name,
                            s.kind,
                            s.timestamp,
                            s.duration,
                            s.doc
                        ])?;
                    }
                }
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
    }
    tx.commit()
}
