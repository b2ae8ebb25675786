//! What goes into the store and comes out: writes, rows, retention, errors, the schema.

use std::path::PathBuf;

use super::spans::block::SpanBatch;
use crate::ingest::logs::LogEvent;
use crate::ingest::zipkin::Span;

/// What the writer thread is asked to do. Rows arrive serialised (by [`Write::logs`] and
/// [`Write::spans`], on the caller's thread): the one writer only talks to SQLite.
pub enum Write {
    Logs(Vec<LogRow>),
    /// (series name, epoch seconds, value)
    Points(Vec<(String, i64, f64)>),
    Spans(SpanBatch),
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

impl From<LogEvent> for LogRow {
    fn from(e: LogEvent) -> Self {
        LogRow {
            doc: serde_json::Value::Object(e.doc).to_string(),
            ts_ms: e.ts_ms,
            index: e.index,
            source: e.source.map(|s| s.to_string()),
        }
    }
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

impl Write {
    /// Log documents, serialised here.
    pub fn logs(events: Vec<LogEvent>) -> Self {
        Write::Logs(events.into_iter().map(LogRow::from).collect())
    }

    /// Spans, serialised here.
    pub fn spans(spans: Vec<Span>) -> Self {
        let mut batch = SpanBatch::with_capacity(spans.len());
        for s in &spans {
            batch.push(&s.view());
        }
        Write::Spans(batch)
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

pub(super) const SCHEMA: &str = "
PRAGMA auto_vacuum = INCREMENTAL;
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS log_blocks (
    id INTEGER PRIMARY KEY,
    min_ts INTEGER NOT NULL,
    max_ts INTEGER NOT NULL,
    n INTEGER NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS log_blocks_max_ts ON log_blocks (max_ts);
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

/// The writer's own settings (issue 17: with SQLite's defaults, spans' random trace ids made
/// the writer spill its 2 MB page cache mid-transaction, read pages back, and checkpoint every
/// 4 MB of WAL, rewriting the same index pages over and over; 20 µs of CPU a span). An 8 MB
/// cache holds the hot index pages now that spans go in blocks keyed by short integers (16 MB
/// took the hub with a day of data to 102 MiB peak; 8 MB: 82 MiB, spans still 2.1 µs each at
/// the knee); a checkpoint every 32 MB of WAL writes each page once for many commits (the WAL
/// file stays under ~40 MB).
pub(super) const WRITER_PRAGMAS: &str = "
PRAGMA cache_size = -8192;
PRAGMA wal_autocheckpoint = 8192;
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
