//! The embedded store: one SQLite file (`hub.db`, WAL) holding log documents, metric points and
//! spans, so a lab's data survives `lab down` / `lab up`.
//!
//! Writes go through one writer thread fed by a bounded channel: ingestion never waits on disk
//! (a full queue is a counted drop, `hub.dropped.*_queue`), and each batch the writer finds
//! waiting becomes one transaction, which is what lets SQLite take tens of thousands of rows a
//! second. Reads use their own connection (WAL lets them run beside the writer).
//!
//! Why SQLite (rusqlite, bundled): durable, one file, no daemon, range scans on indexed
//! timestamps, and a known memory ceiling (its page cache), where an in-memory store of a day of
//! logs would grow with traffic.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::{Connection, OptionalExtension, params};

use crate::ingest::logs::LogEvent;
use crate::ingest::zipkin::Span;

/// What the writer thread is asked to do. Rows arrive serialised (by [`Write::logs`] and
/// [`Write::spans`], on the caller's thread): the one writer only talks to SQLite.
pub enum Write {
    Logs(Vec<LogRow>),
    /// (series name, epoch seconds, value)
    Points(Vec<(String, i64, f64)>),
    Spans(Vec<SpanRow>),
    /// A firing or resolution of an alert rule, for the alerts page's history (also a log
    /// document, but finding those means scanning every log of the day).
    AlertEvent(AlertEvent),
    /// A `lab load` result (its JSON), answered with its id once committed.
    Load {
        ts_ms: i64,
        doc: String,
        reply: std::sync::mpsc::Sender<i64>,
    },
    /// A run-time alert rule (its JSON) added or replaced, or (`None`) removed: kept across
    /// the hub's restarts.
    RuntimeRule {
        name: String,
        rule: Option<String>,
    },
    /// Answered once every write queued before it is committed.
    Barrier(std::sync::mpsc::Sender<()>),
}

/// A log document ready for its row.
pub struct LogRow {
    pub ts_ms: i64,
    pub index: String,
    pub source: Option<String>,
    pub doc: String,
}

/// One firing or resolution of an alert rule.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AlertEvent {
    pub ts_ms: i64,
    pub rule: String,
    /// `FIRING` or `resolved`.
    pub state: String,
    pub importance: String,
    pub detail: String,
}

/// A span ready for its row.
pub struct SpanRow {
    pub trace_id: String,
    pub id: String,
    pub parent_id: Option<String>,
    pub service: Option<String>,
    pub remote_service: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    pub timestamp: Option<i64>,
    pub duration: Option<i64>,
    pub doc: String,
}

impl Write {
    /// Log documents, serialised here.
    pub fn logs(events: Vec<LogEvent>) -> Self {
        Write::Logs(
            events
                .into_iter()
                .map(|e| LogRow {
                    doc: serde_json::Value::Object(e.doc).to_string(),
                    ts_ms: e.ts_ms,
                    index: e.index,
                    source: e.source.map(|s| s.to_string()),
                })
                .collect(),
        )
    }

    /// Spans, serialised here.
    pub fn spans(spans: Vec<Span>) -> Self {
        Write::Spans(
            spans
                .into_iter()
                .map(|s| SpanRow {
                    doc: s.to_json_string(),
                    service: s.service().map(str::to_owned),
                    remote_service: s.remote_service().map(str::to_owned),
                    trace_id: s.trace_id,
                    id: s.id,
                    parent_id: s.parent_id,
                    name: s.name,
                    kind: s.kind,
                    timestamp: s.timestamp,
                    duration: s.duration,
                })
                .collect(),
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("hub store {path}: {source}")]
    Open {
        path: PathBuf,
        source: rusqlite::Error,
    },
    #[error("hub store: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("hub store: the writer has stopped")]
    Stopped,
}

const SCHEMA: &str = "
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS logs (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    idx TEXT NOT NULL,
    source TEXT,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS logs_ts ON logs (ts);
CREATE TABLE IF NOT EXISTS series (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS points (
    series INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    value REAL,
    PRIMARY KEY (series, ts)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS points_ts ON points (ts);
CREATE TABLE IF NOT EXISTS spans (
    id INTEGER PRIMARY KEY,
    trace_id TEXT NOT NULL,
    span_id TEXT NOT NULL,
    parent_id TEXT,
    service TEXT,
    remote_service TEXT,
    name TEXT,
    kind TEXT,
    ts INTEGER,
    duration INTEGER,
    doc TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS spans_trace ON spans (trace_id);
CREATE INDEX IF NOT EXISTS spans_ts ON spans (ts);
CREATE TABLE IF NOT EXISTS alert_events (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    rule TEXT NOT NULL,
    state TEXT NOT NULL,
    importance TEXT NOT NULL,
    detail TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runtime_rules (
    name TEXT PRIMARY KEY,
    rule TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS loads (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    doc TEXT NOT NULL
);
";

/// Read connections of a store (the machines here have 2 cores).
pub const READERS: usize = 2;

/// How much the store keeps: the oldest data goes first, by age and by size, checked by the
/// writer every `every_ms` (`[hub] retention` in lab.toml).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Retention {
    /// Logs, points, spans and alert events older than this are deleted.
    pub max_age_ms: u64,
    /// Past this many bytes in use, the oldest logs, points and spans are deleted until it is
    /// 90% of it.
    pub max_bytes: u64,
    pub every_ms: u64,
}

impl Default for Retention {
    /// Sized for a laptop: a week, 1 GiB.
    fn default() -> Self {
        Self {
            max_age_ms: 7 * 86_400_000,
            max_bytes: 1 << 30,
            every_ms: 30_000,
        }
    }
}

/// What retention has deleted since the hub started.
#[derive(Debug, Default)]
pub struct Pruned {
    pub logs: std::sync::atomic::AtomicU64,
    pub points: std::sync::atomic::AtomicU64,
    pub spans: std::sync::atomic::AtomicU64,
}

/// The store: a handle to the writer and its read connections. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: SyncSender<Write>,
    /// Read connections (WAL lets them read beside the writer and each other): a query takes
    /// the first free one, so two pages or two series of one page are read at once.
    read: Arc<Vec<Mutex<Connection>>>,
    next_read: Arc<std::sync::atomic::AtomicUsize>,
    /// Every series name, for Graphite globbing without a query.
    names: Arc<RwLock<BTreeSet<String>>>,
    /// Step of the metric points, seconds (points are stored bucketed to it).
    pub step: i64,
    pub retention: Retention,
    pub pruned: Arc<Pruned>,
}

/// A stored log document as the APIs return it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct StoredLog {
    pub id: i64,
    pub ts_ms: i64,
    pub index: String,
    pub source: Option<String>,
    pub doc: serde_json::Map<String, serde_json::Value>,
}

/// A stored log document as its JSON text.
#[derive(Debug, Clone)]
pub struct RawLog {
    pub id: i64,
    pub ts_ms: i64,
    pub index: String,
    pub source: Option<String>,
    pub doc: String,
}

impl Store {
    /// Open (or create) `dir/hub.db`; `queue` bounds the writes waiting for the writer.
    pub fn open(
        dir: &Path,
        step: i64,
        queue: usize,
        retention: Retention,
    ) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::Open {
            path: dir.to_owned(),
            source: rusqlite::Error::InvalidPath(format!("{}: {e}", dir.display()).into()),
        })?;
        let path = dir.join("hub.db");
        let open = |p: &Path| {
            Connection::open(p).map_err(|source| StoreError::Open {
                path: p.to_owned(),
                source,
            })
        };
        let write = open(&path)?;
        write.execute_batch(SCHEMA)?;
        let mut read = Vec::new();
        for _ in 0..READERS {
            let conn = open(&path)?;
            conn.busy_timeout(std::time::Duration::from_secs(5))?;
            read.push(Mutex::new(conn));
        }
        let mut names = BTreeSet::new();
        let mut ids = HashMap::new();
        {
            let mut st = write.prepare("SELECT id, name FROM series")?;
            let rows = st.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))?;
            for row in rows {
                let (id, name) = row?;
                names.insert(name.clone());
                ids.insert(name, id);
            }
        }
        let names = Arc::new(RwLock::new(names));
        let (tx, rx) = std::sync::mpsc::sync_channel(queue);
        let writer_names = names.clone();
        let pruned = Arc::new(Pruned::default());
        let writer_pruned = pruned.clone();
        // The writer ends once every clone of the store (every sender) is gone.
        std::thread::Builder::new()
            .name("hub-store".into())
            .spawn(move || {
                writer(
                    write,
                    rx,
                    ids,
                    writer_names,
                    step,
                    retention,
                    &writer_pruned,
                )
            })
            .map_err(|e| StoreError::Open {
                path: path.clone(),
                source: rusqlite::Error::InvalidPath(format!("writer thread: {e}").into()),
            })?;
        Ok(Self {
            tx,
            read: Arc::new(read),
            next_read: Arc::default(),
            names,
            step,
            retention,
            pruned,
        })
    }

    /// Bytes the store's file uses (its free pages left out), and the file's size.
    pub fn usage(&self) -> Result<(u64, u64), StoreError> {
        self.with_read(|c| {
            let p = |sql: &str| c.query_row(sql, [], |r| r.get::<_, i64>(0));
            let (pages, free, size) = (
                p("PRAGMA page_count")?,
                p("PRAGMA freelist_count")?,
                p("PRAGMA page_size")?,
            );
            Ok((((pages - free) * size) as u64, (pages * size) as u64))
        })
    }

    /// Queue a write without waiting; false when the queue is full (the caller counts a drop).
    pub fn try_write(&self, w: Write) -> bool {
        match self.tx.try_send(w) {
            Ok(()) => true,
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
        }
    }

    /// Queue a write from async code: wait for room (yielding, never blocking a runtime thread)
    /// up to `patience`; false when there was none (the caller counts a drop).
    pub async fn write_within(&self, mut w: Write, patience: std::time::Duration) -> bool {
        let deadline = std::time::Instant::now() + patience;
        loop {
            match self.tx.try_send(w) {
                Ok(()) => return true,
                Err(TrySendError::Disconnected(_)) => return false,
                Err(TrySendError::Full(back)) => {
                    if std::time::Instant::now() >= deadline {
                        return false;
                    }
                    w = back;
                    tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                }
            }
        }
    }

    /// Queue a write, waiting for room (for batches that must not be lost, e.g. a flush).
    pub fn write(&self, w: Write) -> Result<(), StoreError> {
        self.tx.send(w).map_err(|_| StoreError::Stopped)
    }

    /// Wait until everything queued so far is committed.
    pub fn sync(&self) -> Result<(), StoreError> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.write(Write::Barrier(tx))?;
        rx.recv().map_err(|_| StoreError::Stopped)
    }

    pub fn with_read<T>(
        &self,
        f: impl FnOnce(&Connection) -> rusqlite::Result<T>,
    ) -> Result<T, StoreError> {
        let free = self.read.iter().find_map(|m| match m.try_lock() {
            Ok(c) => Some(c),
            Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
            Err(std::sync::TryLockError::WouldBlock) => None,
        });
        let conn = match free {
            Some(c) => c,
            None => {
                // All busy: queue on one, in turn.
                let i = self
                    .next_read
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                self.read[i % self.read.len()]
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
            }
        };
        Ok(f(&conn)?)
    }

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

fn writer(
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
fn prune(conn: &Connection, r: Retention, pruned: &Pruned) -> rusqlite::Result<()> {
    use std::sync::atomic::Ordering::Relaxed;
    let now_ms = crate::now_ms();
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

fn commit(
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
