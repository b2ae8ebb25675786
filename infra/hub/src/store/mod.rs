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

mod blocks;
mod read;
mod record;
mod spans;
mod types;
mod writer;

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::mpsc::{SyncSender, TrySendError};
use std::sync::{Arc, Mutex, RwLock};

use rusqlite::Connection;

pub use spans::{Listed, SpanBatch, SpanFilter};
pub use types::*;
use writer::writer;

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
        let mut write = open(&path)?;
        write.execute_batch(SCHEMA)?;
        write.execute_batch(spans::SCHEMA)?;
        write.execute_batch(WRITER_PRAGMAS)?;
        let moved = writer::migrate_log_rows(&mut write)?;
        if moved > 0 {
            tracing::info!(
                documents = moved,
                "hub store: log documents moved from rows into blocks"
            );
        }
        let moved = spans::migrate_rows(&mut write)?;
        if moved > 0 {
            tracing::info!(
                spans = moved,
                "hub store: spans moved from rows into blocks"
            );
        }
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
}
