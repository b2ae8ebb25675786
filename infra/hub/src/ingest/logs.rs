//! Logs in: Logstash's `udp` input with the `json` codec (docs/OBSERVABILITY.md §1).
//!
//! One datagram is one payload: a JSON object is one event, an array one event per element.
//! What does not decode is still kept, as Logstash keeps it: `{"message": <raw>, "tags":
//! ["_jsonparsefailure"]}`. `@timestamp` is parsed as ISO-8601 (an unparsable one is moved to
//! `_@timestamp` and tagged `_timestampparsefailure`); a missing one is the receive time.
//! `@version` defaults to `"1"` only when absent; `host` is kept as sent (the sender's address
//! is stored beside the document, not in it). Each event carries its daily index name
//! `<prefix>YYYY.MM.dd` from `@timestamp` in UTC, as the book's `udp.conf` writes to Elasticsearch.

use std::net::IpAddr;

use serde_json::{Map, Value};
use time::OffsetDateTime;
use time::format_description::well_known::{Iso8601, Rfc3339};

/// One stored log document.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEvent {
    /// `@timestamp` in milliseconds since the epoch (UTC).
    pub ts_ms: i64,
    /// The daily index, e.g. `nodejs-2026.11.25`.
    pub index: String,
    /// The sender's address (Logstash would write it to `host` only if absent; we keep both).
    pub source: Option<IpAddr>,
    /// The document (`_source`).
    pub doc: Map<String, Value>,
}

/// Logstash's largest read: longer datagrams are cut to this.
pub const MAX_DATAGRAM: usize = 65536;

pub const JSON_FAILURE: &str = "_jsonparsefailure";
pub const TIMESTAMP_FAILURE: &str = "_timestampparsefailure";

/// Decode one datagram into its events. Never fails: what is not JSON is kept, tagged.
pub fn parse_datagram(
    payload: &[u8],
    source: Option<IpAddr>,
    now: OffsetDateTime,
    index_prefix: &str,
) -> Vec<LogEvent> {
    let payload = &payload[..payload.len().min(MAX_DATAGRAM)];
    match serde_json::from_slice::<Value>(payload) {
        Ok(Value::Object(doc)) => vec![event(doc, source, now, index_prefix)],
        Ok(Value::Array(items)) if !items.is_empty() => items
            .into_iter()
            .map(|item| match item {
                Value::Object(doc) => event(doc, source, now, index_prefix),
                other => failure(&other.to_string(), source, now, index_prefix),
            })
            .collect(),
        _ => {
            let raw = String::from_utf8_lossy(payload);
            vec![failure(
                raw.trim_end_matches(['\n', '\r']),
                source,
                now,
                index_prefix,
            )]
        }
    }
}

/// `<prefix>YYYY.MM.dd` of a UTC time.
pub(crate) fn daily_index(prefix: &str, ts: OffsetDateTime) -> String {
    format!(
        "{prefix}{:04}.{:02}.{:02}",
        ts.year(),
        u8::from(ts.month()),
        ts.day()
    )
}

/// A line that is not JSON (a datagram, or a service's stdout line), kept as `message`.
pub fn failure(raw: &str, source: Option<IpAddr>, now: OffsetDateTime, prefix: &str) -> LogEvent {
    let mut doc = Map::new();
    doc.insert("message".into(), Value::String(raw.to_owned()));
    doc.insert("tags".into(), Value::Array(vec![JSON_FAILURE.into()]));
    event(doc, source, now, prefix)
}

/// A plain text line from a service's stdout/stderr (not a parse failure: it never was JSON).
pub fn plain_line(
    service: &str,
    stream: &str,
    line: &str,
    now: OffsetDateTime,
    prefix: &str,
) -> LogEvent {
    let mut doc = Map::new();
    doc.insert("message".into(), Value::String(line.to_owned()));
    doc.insert("app".into(), Value::String(service.to_owned()));
    doc.insert("type".into(), Value::String(stream.to_owned()));
    event(doc, None, now, prefix)
}

pub(crate) fn event(
    mut doc: Map<String, Value>,
    source: Option<IpAddr>,
    now: OffsetDateTime,
    prefix: &str,
) -> LogEvent {
    let ts = match doc.get("@timestamp") {
        None | Some(Value::Null) => now,
        Some(Value::String(s)) => match parse_time(s) {
            Some(t) => t,
            None => timestamp_failure(&mut doc, now),
        },
        Some(_) => timestamp_failure(&mut doc, now),
    };
    stamped(doc, source, ts, prefix)
}

/// A document whose time is known: `@timestamp` and `@version` set, its daily index named.
pub fn stamped(
    mut doc: Map<String, Value>,
    source: Option<IpAddr>,
    ts: OffsetDateTime,
    prefix: &str,
) -> LogEvent {
    let ts = ts.to_offset(time::UtcOffset::UTC);
    doc.insert("@timestamp".into(), Value::String(format_time(ts)));
    doc.entry("@version")
        .or_insert_with(|| Value::String("1".into()));
    let index = daily_index(prefix, ts);
    LogEvent {
        ts_ms: (ts.unix_timestamp_nanos() / 1_000_000) as i64,
        index,
        source,
        doc,
    }
}

fn timestamp_failure(doc: &mut Map<String, Value>, now: OffsetDateTime) -> OffsetDateTime {
    if let Some(raw) = doc.remove("@timestamp") {
        doc.insert("_@timestamp".into(), raw);
    }
    add_tag(doc, TIMESTAMP_FAILURE);
    now
}

fn add_tag(doc: &mut Map<String, Value>, tag: &str) {
    match doc.get_mut("tags") {
        Some(Value::Array(tags)) => tags.push(tag.into()),
        Some(other) => {
            let old = other.take();
            *other = Value::Array(vec![old, tag.into()]);
        }
        None => {
            doc.insert("tags".into(), Value::Array(vec![tag.into()]));
        }
    }
}

/// ISO-8601 / RFC 3339 (`2026-11-25T17:00:00.123Z`, offsets, basic forms).
pub fn parse_time(s: &str) -> Option<OffsetDateTime> {
    OffsetDateTime::parse(s, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(s, &Iso8601::DEFAULT))
        .ok()
}

/// Logstash's output form: UTC with milliseconds, `Z`.
pub fn format_time(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap() // 2026-11-18T...
    }

    #[test]
    fn the_books_document_is_kept_as_sent_with_its_daily_index() {
        let d = br#"{"@timestamp":"2026-11-25T23:59:59.500Z","@version":1,"app":"web-api","environment":"development","severity":"info","type":"request-incoming","fields":{"path":"/","method":"GET","ip":"127.0.0.1","ua":"curl"},"host":"box"}"#;
        let ev = parse_datagram(d, Some("127.0.0.1".parse().unwrap()), now(), "nodejs-");
        assert_eq!(ev.len(), 1);
        let e = &ev[0];
        assert_eq!(e.index, "nodejs-2026.11.25");
        assert_eq!(e.doc["@version"], 1, "kept as the number sent");
        assert_eq!(e.doc["host"], "box");
        assert_eq!(e.doc["fields"]["path"], "/");
        assert_eq!(e.doc["@timestamp"], "2026-11-25T23:59:59.500Z");
        assert_eq!(e.ts_ms % 1000, 500);
    }

    #[test]
    fn offsets_decide_the_utc_index() {
        let ev = parse_datagram(
            br#"{"@timestamp":"2026-11-25T23:30:00-02:00"}"#,
            None,
            now(),
            "nodejs-",
        );
        assert_eq!(ev[0].index, "nodejs-2026.11.26");
        assert_eq!(ev[0].doc["@timestamp"], "2026-11-26T01:30:00.000Z");
        assert_eq!(ev[0].doc["@version"], "1");
    }

    #[test]
    fn invalid_json_is_kept_and_tagged() {
        let ev = parse_datagram(b"not json {\n", None, now(), "nodejs-");
        assert_eq!(ev[0].doc["message"], "not json {");
        assert_eq!(ev[0].doc["tags"][0], JSON_FAILURE);
        assert_eq!(ev[0].ts_ms, now().unix_timestamp() * 1000);
        // A JSON scalar is not an event either.
        let ev = parse_datagram(b"42", None, now(), "nodejs-");
        assert_eq!(ev[0].doc["tags"][0], JSON_FAILURE);
    }

    #[test]
    fn arrays_are_one_event_per_element() {
        let ev = parse_datagram(br#"[{"a":1},{"b":2},3]"#, None, now(), "nodejs-");
        assert_eq!(ev.len(), 3);
        assert_eq!(ev[1].doc["b"], 2);
        assert_eq!(ev[2].doc["tags"][0], JSON_FAILURE);
    }

    #[test]
    fn bad_timestamps_move_aside() {
        let ev = parse_datagram(
            br#"{"@timestamp":"yesterday","tags":["x"]}"#,
            None,
            now(),
            "n-",
        );
        let d = &ev[0].doc;
        assert_eq!(d["_@timestamp"], "yesterday");
        assert_eq!(d["tags"], serde_json::json!(["x", TIMESTAMP_FAILURE]));
        assert_eq!(ev[0].ts_ms, now().unix_timestamp() * 1000);
    }
}
