//! One block of spans: its encoding, its spans read back, its sorted trace keys.

use super::super::blocks::{Cursor, put};
use super::super::types::SpanRow;

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

/// Encode up to [`BLOCK_SPANS`] spans: per span `ts` and `duration` (i64 LE, `i64::MIN` when
/// absent), then trace id, service, remote service, name and document as [`put`] writes them.
/// A block of spans without a timestamp takes `now_us` as its time range (retention's clock).
pub fn encode(rows: &[SpanRow], now_us: i64) -> SpanBlock {
    debug_assert!(!rows.is_empty() && rows.len() <= BLOCK_SPANS);
    let size = rows
        .iter()
        .map(|r| 40 + r.trace_id.len() + r.doc.len() + r.name.as_ref().map_or(0, String::len))
        .sum();
    let mut raw = Vec::with_capacity(size);
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    let mut keys = Vec::with_capacity(rows.len());
    for r in rows {
        if let Some(ts) = r.timestamp {
            min_ts = min_ts.min(ts);
            max_ts = max_ts.max(ts);
        }
        keys.push(trace_key(&r.trace_id));
        raw.extend_from_slice(&r.timestamp.unwrap_or(NONE).to_le_bytes());
        raw.extend_from_slice(&r.duration.unwrap_or(NONE).to_le_bytes());
        put(&mut raw, Some(&r.trace_id));
        put(&mut raw, r.service.as_deref());
        put(&mut raw, r.remote_service.as_deref());
        put(&mut raw, r.name.as_deref());
        put(&mut raw, Some(&r.doc));
    }
    if min_ts > max_ts {
        (min_ts, max_ts) = (now_us, now_us);
    }
    keys.sort_unstable();
    keys.dedup();
    SpanBlock {
        min_ts,
        max_ts,
        n: rows.len(),
        traces: keys.iter().flat_map(|k| k.to_le_bytes()).collect(),
        data: lz4_flex::block::compress_prepend_size(&raw),
    }
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
