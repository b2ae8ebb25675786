//! One block of spans: its encoding, its spans read back, its sorted trace keys.

use super::super::record::{Cursor, put};
use crate::ingest::zipkin::SpanRef;

/// The most spans in one block (a longer batch is split).
pub const BLOCK_SPANS: usize = 4096;

/// What a `span_names` row names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listed {
    /// The service itself (`value` is empty).
    Service = 0,
    SpanName = 1,
    RemoteService = 2,
}

/// One span read back from a block.
pub struct StoredSpan<'a> {
    /// Epoch µs, as sent.
    pub ts: Option<i64>,
    pub duration: Option<i64>,
    pub trace_id: &'a str,
    pub service: Option<&'a str>,
    pub remote: Option<&'a str>,
    pub name: Option<&'a str>,
    /// The span as Zipkin v2 JSON.
    pub doc: &'a str,
}

/// The key a trace is found by: the value of its last 16 hex characters (ids are stored
/// normalised, lower hex); anything else hashes.
pub fn trace_key(trace_id: &str) -> u64 {
    let tail = &trace_id[trace_id.len().saturating_sub(16)..];
    u64::from_str_radix(tail, 16).unwrap_or_else(|_| {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        trace_id.hash(&mut h);
        h.finish()
    })
}

/// A block ready for its row.
pub struct SpanBlock {
    pub min_ts: i64,
    pub max_ts: i64,
    pub n: usize,
    /// Sorted distinct trace keys, 8 bytes LE each.
    pub traces: Vec<u8>,
    pub data: Vec<u8>,
}

const NONE: i64 = i64::MIN;

/// Spans encoded as a block's records, in order: per span `ts` and `duration` (i64 LE,
/// `i64::MIN` when absent), then trace id, service, remote service, name and document as
/// [`put`] writes them. The collector writes a request's spans straight into one (its JSON
/// text too), and the writer joins the batches of a transaction into blocks: no row of owned
/// strings per span in between (issue 17).
#[derive(Default)]
pub struct SpanBatch {
    raw: Vec<u8>,
    /// Where each record ends in `raw`.
    ends: Vec<usize>,
}

impl SpanBatch {
    pub fn with_capacity(spans: usize) -> Self {
        SpanBatch {
            raw: Vec::with_capacity(spans * 512),
            ends: Vec::with_capacity(spans),
        }
    }

    /// A span as the collector read it.
    pub fn push(&mut self, s: &SpanRef<'_>) {
        self.head(
            s.timestamp,
            s.duration,
            &s.trace_id,
            s.service(),
            s.remote_service(),
            s.name.as_deref(),
        );
        let at = self.raw.len();
        self.raw.extend_from_slice(&[0; 4]);
        s.write_json(&mut self.raw);
        let len = (self.raw.len() - at - 4) as u32;
        self.raw[at..at + 4].copy_from_slice(&len.to_le_bytes());
        self.ends.push(self.raw.len());
    }

    /// A span read back from a block (or an older store's row).
    pub fn push_stored(&mut self, s: &StoredSpan<'_>) {
        self.head(s.ts, s.duration, s.trace_id, s.service, s.remote, s.name);
        put(&mut self.raw, Some(s.doc));
        self.ends.push(self.raw.len());
    }

    fn head(
        &mut self,
        ts: Option<i64>,
        duration: Option<i64>,
        trace_id: &str,
        service: Option<&str>,
        remote: Option<&str>,
        name: Option<&str>,
    ) {
        self.raw
            .extend_from_slice(&ts.unwrap_or(NONE).to_le_bytes());
        self.raw
            .extend_from_slice(&duration.unwrap_or(NONE).to_le_bytes());
        put(&mut self.raw, Some(trace_id));
        put(&mut self.raw, service);
        put(&mut self.raw, remote);
        put(&mut self.raw, name);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// `other`'s spans after these.
    pub fn append(&mut self, other: SpanBatch) {
        if self.is_empty() {
            *self = other;
            return;
        }
        let base = self.raw.len();
        self.raw.extend_from_slice(&other.raw);
        self.ends.extend(other.ends.iter().map(|e| e + base));
    }

    /// The records in runs of at most [`BLOCK_SPANS`], each run's bytes and its count.
    pub fn blocks(&self) -> impl Iterator<Item = (&[u8], usize)> {
        let mut from = 0;
        self.ends.chunks(BLOCK_SPANS).map(move |c| {
            let to = *c.last().expect("chunks are not empty");
            let run = &self.raw[from..to];
            from = to;
            (run, c.len())
        })
    }
}

/// Encode one run of [`SpanBatch::blocks`] (`n` spans). A block of spans without a timestamp
/// takes `now_us` as its time range (retention's clock).
pub fn encode(raw: &[u8], n: usize, now_us: i64) -> SpanBlock {
    debug_assert!(n > 0 && n <= BLOCK_SPANS);
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    let mut keys = Vec::with_capacity(n);
    for s in heads(raw) {
        if let Some(ts) = s.ts {
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
        }
        keys.push(trace_key(s.trace_id));
    }
    if min_ts > max_ts {
        (min_ts, max_ts) = (now_us, now_us);
    }
    keys.sort_unstable();
    keys.dedup();
    SpanBlock {
        min_ts,
        max_ts,
        n,
        traces: keys.iter().flat_map(|k| k.to_le_bytes()).collect(),
        data: lz4_flex::block::compress_prepend_size(raw),
    }
}

/// What a span is found and listed by, without its document.
pub struct Head<'a> {
    pub ts: Option<i64>,
    pub trace_id: &'a str,
    pub service: Option<&'a str>,
    pub remote: Option<&'a str>,
    pub name: Option<&'a str>,
}

/// The [`Head`]s of a block's records, in order (documents skipped, not decoded).
pub fn heads(raw: &[u8]) -> impl Iterator<Item = Head<'_>> {
    let mut c = Cursor { raw, at: 0 };
    std::iter::from_fn(move || {
        let ts = c.i64()?;
        c.i64()?;
        let h = Head {
            ts: (ts != NONE).then_some(ts),
            trace_id: c.str()??,
            service: c.str()?,
            remote: c.str()?,
            name: c.str()?,
        };
        c.skip_str()?;
        Some(h)
    })
}

/// The spans of a decompressed block, in order; a damaged block ends early (never panics).
pub fn spans(raw: &[u8]) -> impl Iterator<Item = StoredSpan<'_>> {
    let mut c = Cursor { raw, at: 0 };
    let opt = |v: i64| (v != NONE).then_some(v);
    std::iter::from_fn(move || {
        Some(StoredSpan {
            ts: opt(c.i64()?),
            duration: opt(c.i64()?),
            trace_id: c.str()??,
            service: c.str()?,
            remote: c.str()?,
            name: c.str()?,
            doc: c.str()??,
        })
    })
}

/// Whether a block's sorted key list holds `key`.
pub fn holds(traces: &[u8], key: u64) -> bool {
    let n = traces.len() / 8;
    let at = |i: usize| u64::from_le_bytes(traces[i * 8..i * 8 + 8].try_into().expect("8 bytes"));
    let (mut lo, mut hi) = (0, n);
    while lo < hi {
        let mid = (lo + hi) / 2;
        match at(mid).cmp(&key) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return true,
        }
    }
    false
}
