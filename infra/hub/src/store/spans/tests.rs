use super::super::{Retention, Store, Write};
use super::block::holds;
use super::*;
use crate::ingest::zipkin::parse_spans;

fn span(trace: &str, id: &str, service: &str, name: &str, ts: i64, duration: i64) -> String {
    format!(
        r#"{{"traceId":"{trace}","id":"{id}","name":"{name}","timestamp":{ts},"duration":{duration},
           "localEndpoint":{{"serviceName":"{service}"}},"remoteEndpoint":{{"serviceName":"db"}}}}"#
    )
}

fn write(s: &Store, spans: &[String]) {
    let body = format!("[{}]", spans.join(","));
    s.write(Write::spans(parse_spans(body.as_bytes()).unwrap()))
        .unwrap();
    s.sync().unwrap();
}

fn ids(traces: &[Vec<serde_json::Value>]) -> Vec<Vec<String>> {
    traces
        .iter()
        .map(|t| {
            t.iter()
                .map(|s| s["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .collect()
}

#[test]
fn traces_are_found_by_id_search_and_window_across_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), 10, 16, Retention::default()).unwrap();
    let t0 = crate::clock::now_ms() * 1000 - 60_000_000;
    // Two 128-bit traces sharing their low 64 bits: one key, two traces.
    let (a, b) = (
        "1000000000000000000000000000000a",
        "2000000000000000000000000000000a",
    );
    write(
        &s,
        &[
            span(a, "1", "web-api", "get", t0 + 10, 500),
            span(b, "2", "web-api", "get", t0 + 20, 50),
        ],
    );
    write(
        &s,
        &[
            span(a, "3", "recipe-api", "get_recipe", t0 + 5, 100),
            span("c", "4", "web-api", "post", t0 + 30, 5),
        ],
    );
    assert_eq!(s.counts().unwrap().2, 4);
    assert_eq!(
        ids(&s.traces(&[a, b, "dead"]).unwrap()),
        [
            vec!["0000000000000003", "0000000000000001"],
            vec!["0000000000000002"],
            vec![]
        ]
    );
    let all = SpanFilter {
        from_us: t0,
        until_us: t0 + 1000,
        service: None,
        remote: None,
        name: None,
        min_duration: None,
        max_duration: None,
    };
    let keep = |_: &str| true;
    let c = "000000000000000c";
    assert_eq!(
        s.find_traces(&all, 10, keep).unwrap(),
        [c, b, a],
        "newest first"
    );
    assert_eq!(s.find_traces(&all, 2, keep).unwrap(), [c, b]);
    let slow = SpanFilter {
        min_duration: Some(100),
        service: Some("web-api"),
        ..all
    };
    assert_eq!(s.find_traces(&slow, 10, keep).unwrap(), [a]);
    let named = SpanFilter {
        name: Some("get_recipe"),
        ..all
    };
    assert_eq!(s.find_traces(&named, 10, keep).unwrap(), [a]);
    let early = SpanFilter {
        until_us: t0 + 10,
        ..all
    };
    assert_eq!(s.find_traces(&early, 10, keep).unwrap(), [a]);
    let ws = s.spans_of_traces_in(t0, t0 + 6).unwrap();
    assert_eq!(ws.len(), 2, "the whole of trace a, found by its span at +5");
    assert_eq!(
        s.span_names(Listed::Service, None).unwrap(),
        ["recipe-api", "web-api"]
    );
    assert_eq!(
        s.span_names(Listed::SpanName, Some("web-api")).unwrap(),
        ["get", "post"]
    );
    assert_eq!(
        s.span_names(Listed::RemoteService, Some("recipe-api"))
            .unwrap(),
        ["db"]
    );
}

#[test]
fn retention_trims_a_straddling_block_and_forgets_names_of_no_span() {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path(), 10, 16, Retention::default()).unwrap();
    let now = crate::clock::now_ms() * 1000;
    let day = 86_400_000_000i64;
    write(
        &s,
        &[
            span("a", "1", "old-api", "x", now - 9 * day, 1),
            span("b", "2", "web-api", "y", now - 2 * day, 1),
            span("b", "3", "web-api", "z", now - 60_000_000, 1),
        ],
    );
    let conn = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
    assert_eq!(prune_before(&conn, now - 7 * day).unwrap(), 1);
    assert_eq!(s.counts().unwrap().2, 2);
    assert!(s.trace("000000000000000a").unwrap().is_empty());
    assert_eq!(s.trace("000000000000000b").unwrap().len(), 2);
    assert_eq!(s.span_names(Listed::Service, None).unwrap(), ["web-api"]);
    assert_eq!(prune_oldest_tenth(&conn).unwrap(), 2);
    assert!(s.span_names(Listed::Service, None).unwrap().is_empty());
}

#[test]
fn a_store_of_span_rows_is_moved_into_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let t0 = crate::clock::now_ms() * 1000 - 60_000_000;
    {
        let mut c = rusqlite::Connection::open(dir.path().join("hub.db")).unwrap();
        let c = c.transaction().unwrap();
        c.execute_batch(
            "CREATE TABLE spans (id INTEGER PRIMARY KEY, trace_id TEXT NOT NULL, span_id TEXT NOT NULL,
             parent_id TEXT, service TEXT, remote_service TEXT, name TEXT, kind TEXT, ts INTEGER,
             duration INTEGER, doc TEXT NOT NULL);
             CREATE INDEX spans_trace ON spans (trace_id);",
        )
        .unwrap();
        let mut st = c
            .prepare(
                "INSERT INTO spans (trace_id, span_id, service, name, ts, duration, doc)
                 VALUES (?1, ?2, 'web-api', 'get', ?3, 7, ?4)",
            )
            .unwrap();
        for i in 0..5000i64 {
            let trace = format!("{:016x}", i / 2 + 1);
            let doc = format!(r#"{{"traceId":"{trace}","id":"{:016x}"}}"#, i + 1);
            st.execute(rusqlite::params![trace, i + 1, t0 + i, doc])
                .unwrap();
        }
        drop(st);
        c.commit().unwrap();
    }
    let s = Store::open(dir.path(), 10, 16, Retention::default()).unwrap();
    assert_eq!(s.counts().unwrap().2, 5000);
    assert_eq!(
        s.trace("00000000000009c4").unwrap().len(),
        2,
        "the last trace"
    );
    assert_eq!(
        s.span_names(Listed::SpanName, Some("web-api")).unwrap(),
        ["get"]
    );
    drop(s);
    let s = Store::open(dir.path(), 10, 16, Retention::default()).unwrap();
    assert_eq!(s.counts().unwrap().2, 5000);
}

#[test]
fn damaged_blocks_end_early_instead_of_panicking() {
    let mut batch = SpanBatch::default();
    for i in 0..3 {
        batch.push_stored(&StoredSpan {
            trace_id: &format!("{i:016x}"),
            service: (i > 0).then_some("w"),
            remote: None,
            name: Some("n"),
            ts: (i != 1).then_some(i),
            duration: Some(5),
            doc: "{}",
        });
    }
    let (raw, n) = batch.blocks().next().unwrap();
    assert_eq!((n, batch.blocks().count()), (3, 1));
    let b = encode(raw, n, 99);
    assert_eq!((b.min_ts, b.max_ts, b.n, b.traces.len()), (0, 2, 3, 24));
    let raw = super::super::blocks::decompress(&b.data).unwrap();
    let back: Vec<_> = spans(&raw).map(|s| (s.ts, s.service)).collect();
    assert_eq!(
        back,
        [(Some(0), None), (None, Some("w")), (Some(2), Some("w"))]
    );
    for cut in 0..raw.len() {
        assert!(spans(&raw[..cut]).count() < 3);
    }
    assert!(holds(&b.traces, 2) && !holds(&b.traces, 3));
}
