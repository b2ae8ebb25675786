//! Log documents are stored a batch to a row: one `log_blocks` row holds up to
//! [`BLOCK_ROWS`] documents, LZ4-compressed, with the batch's earliest and latest time.
//!
//! Why: a row (and an index entry) per document made SQLite most of the hub's ingest cost
//! (issue 17: `sqlite3_step` and its commits were half of the hub's CPU at 5 records a
//! request, every document's bytes written twice, to the WAL and at the checkpoint). A block
//! is one insert for hundreds of documents, and JSON logs compress several times over, so
//! far fewer bytes reach the disk. Reads decompress the blocks that overlap a window and
//! filter by each document's own time, so what a query returns is unchanged.
//!
//! A document's id is `block id << 16 | position`: unique, and in arrival order.

use super::record::{Cursor, put};
use super::types::LogRow;

/// The most documents in one block (a longer batch is split).
pub const BLOCK_ROWS: usize = 4096;

/// Bits of a document id that hold its position in its block.
pub const POSITION_BITS: u32 = 16;

/// A block ready for its row: (earliest ts ms, latest ts ms, documents, compressed bytes).
pub struct Block {
    pub min_ts: i64,
    pub max_ts: i64,
    pub n: usize,
    pub data: Vec<u8>,
}

/// One document read back from a block.
pub struct BlockRow<'a> {
    pub ts_ms: i64,
    pub index: &'a str,
    pub source: Option<&'a str>,
    pub doc: &'a str,
}

/// Encode up to [`BLOCK_ROWS`] rows: per row `ts` (i64 LE), then `index`, `source` (absent:
/// length `u32::MAX`) and `doc`, each a `u32` LE length and UTF-8 bytes; the whole LZ4 block
/// format with its size in front.
pub fn encode(rows: &[LogRow]) -> Block {
    debug_assert!(!rows.is_empty() && rows.len() <= BLOCK_ROWS);
    let size = rows
        .iter()
        .map(|r| 20 + r.index.len() + r.source.as_ref().map_or(0, |s| s.len()) + r.doc.len())
        .sum();
    let mut raw = Vec::with_capacity(size);
    let (mut min_ts, mut max_ts) = (i64::MAX, i64::MIN);
    for r in rows {
        min_ts = min_ts.min(r.ts_ms);
        max_ts = max_ts.max(r.ts_ms);
        raw.extend_from_slice(&r.ts_ms.to_le_bytes());
        put(&mut raw, Some(&r.index));
        put(&mut raw, r.source.as_deref());
        put(&mut raw, Some(&r.doc));
    }
    Block {
        min_ts,
        max_ts,
        n: rows.len(),
        data: lz4_flex::block::compress_prepend_size(&raw),
    }
}

/// A block's bytes, decompressed (what [`rows`] reads).
pub fn decompress(data: &[u8]) -> Option<Vec<u8>> {
    lz4_flex::block::decompress_size_prepended(data).ok()
}

/// The documents of a decompressed block, in order; a damaged block ends early (never panics).
pub fn rows(raw: &[u8]) -> impl Iterator<Item = BlockRow<'_>> {
    let mut c = Cursor { raw, at: 0 };
    std::iter::from_fn(move || {
        Some(BlockRow {
            ts_ms: c.i64()?,
            index: c.str()??,
            source: c.str()?,
            doc: c.str()??,
        })
    })
}

/// Delete the rows of a block table (`log_blocks`, `span_blocks`) that `cond` (with its `args`)
/// selects; the number of records they held.
pub(super) fn delete_blocks(
    conn: &rusqlite::Connection,
    table: &str,
    cond: &str,
    args: &[&dyn rusqlite::ToSql],
) -> rusqlite::Result<u64> {
    let n: i64 = conn.query_row(
        &format!("SELECT coalesce(sum(n), 0) FROM {table} WHERE {cond}"),
        args,
        |r| r.get(0),
    )?;
    if n > 0 {
        conn.execute(&format!("DELETE FROM {table} WHERE {cond}"), args)?;
    }
    Ok(n as u64)
}

/// A store written before blocks kept a row per record in `table`: move them into blocks in
/// their order and drop the table, in one transaction. `select` reads `id` first and
/// takes `?1` (the last id read) and `?2` (a batch size); `row` makes a record of the rest,
/// `store` writes a batch of records. The number moved (0 when there is no such table).
pub(super) fn move_rows_into_blocks<R>(
    conn: &mut rusqlite::Connection,
    table: &str,
    select: &str,
    batch: usize,
    row: impl Fn(&rusqlite::Row<'_>) -> rusqlite::Result<R>,
    mut store: impl FnMut(&rusqlite::Transaction<'_>, &[R]) -> rusqlite::Result<()>,
) -> rusqlite::Result<u64> {
    let exists: i64 = conn.query_row(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = ?1",
        [table],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(0);
    }
    let tx = conn.transaction()?;
    let mut moved = 0u64;
    {
        let mut read = tx.prepare(select)?;
        let mut last = i64::MIN;
        loop {
            let mut rows = Vec::new();
            let mut q = read.query(rusqlite::params![last, batch as i64])?;
            while let Some(r) = q.next()? {
                last = r.get(0)?;
                rows.push(row(r)?);
            }
            if rows.is_empty() {
                break;
            }
            moved += rows.len() as u64;
            store(&tx, &rows)?;
        }
    }
    tx.execute_batch(&format!("DROP TABLE {table}"))?;
    tx.commit()?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts_ms: i64, source: Option<&str>, doc: &str) -> LogRow {
        LogRow {
            ts_ms,
            index: "nodejs-2026.12.02".into(),
            source: source.map(str::to_owned),
            doc: doc.into(),
        }
    }

    #[test]
    fn a_block_gives_back_its_rows_in_order_with_its_time_range() {
        let rows = vec![
            row(20, Some("127.0.0.1"), r#"{"a":"é"}"#),
            row(5, None, "{}"),
            row(30, Some(""), r#"{"b":[1,2,3]}"#),
        ];
        let b = encode(&rows);
        assert_eq!((b.min_ts, b.max_ts, b.n), (5, 30, 3));
        let raw = decompress(&b.data).unwrap();
        let back: Vec<_> = super::rows(&raw)
            .map(|r| {
                (
                    r.ts_ms,
                    r.index.to_owned(),
                    r.source.map(str::to_owned),
                    r.doc.to_owned(),
                )
            })
            .collect();
        let want: Vec<_> = rows
            .iter()
            .map(|r| (r.ts_ms, r.index.clone(), r.source.clone(), r.doc.clone()))
            .collect();
        assert_eq!(back, want);
    }

    #[test]
    fn similar_documents_compress_several_times_over() {
        let rows: Vec<_> = (0..500)
            .map(|i| {
                row(
                    1_796_000_000_000 + i,
                    Some("127.0.0.1"),
                    &format!(
                        r#"{{"@timestamp":"2026-12-02T10:00:00.{:03}Z","@version":1,"app":"web-api","environment":"development","severity":"info","type":"request-incoming","fields":{{"path":"/","method":"GET","ip":"127.0.0.1","ua":"wrk"}},"host":"box"}}"#,
                        i % 1000
                    ),
                )
            })
            .collect();
        let plain: usize = rows.iter().map(|r| r.doc.len()).sum();
        let b = encode(&rows);
        assert!(
            b.data.len() * 4 < plain,
            "{} of {plain} bytes",
            b.data.len()
        );
    }

    #[test]
    fn damaged_blocks_end_early_instead_of_panicking() {
        let b = encode(&[row(1, None, "{}"), row(2, None, r#"{"x":1}"#)]);
        let raw = decompress(&b.data).unwrap();
        for cut in 0..raw.len() {
            let _ = super::rows(&raw[..cut]).count();
        }
        assert!(decompress(&b.data[..b.data.len() / 2]).is_none() || b.data.len() < 8);
        assert!(super::rows(&[0xff; 11]).next().is_none());
    }
}
