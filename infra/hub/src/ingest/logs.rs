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

/// [`parse_datagram`] straight into store rows, and how many documents were parse failures.
///
/// The common document (an object whose `@timestamp` is already Logstash's output form,
/// without `tags` or repeated keys) is stored as the text it came in, with `@version` added
/// at the end when absent: the same document the parse-and-write-again path makes (keys keep
/// their order there too), for a fraction of its cost, because nothing is built from it
/// but its time (issue 17). Anything else takes that path.
pub fn rows_of_datagram(
    payload: &[u8],
    source: Option<IpAddr>,
    now: OffsetDateTime,
    index_prefix: &str,
    out: &mut Vec<crate::store::LogRow>,
) -> usize {
    let payload = &payload[..payload.len().min(MAX_DATAGRAM)];
    let source_text = source.map(|s| s.to_string());
    let fast = |raw: &serde_json::value::RawValue, out: &mut Vec<crate::store::LogRow>| {
        let row = fast_row(raw.get(), source_text.as_deref(), index_prefix);
        let ok = row.is_some();
        out.extend(row);
        ok
    };
    let slow = |events: Vec<LogEvent>, out: &mut Vec<crate::store::LogRow>| {
        let mut failures = 0;
        for e in events {
            if e.doc
                .get("tags")
                .and_then(|t| t.as_array())
                .is_some_and(|t| t.iter().any(|t| t == JSON_FAILURE))
            {
                failures += 1;
            }
            out.push(crate::store::LogRow::from(e));
        }
        failures
    };
    let trimmed = payload.trim_ascii_start();
    if trimmed.first() == Some(&b'{')
        && let Ok(raw) = serde_json::from_slice::<&serde_json::value::RawValue>(payload)
        && fast(raw, out)
    {
        return 0;
    }
    if trimmed.first() == Some(&b'[')
        && let Ok(items) = serde_json::from_slice::<Vec<&serde_json::value::RawValue>>(payload)
        && !items.is_empty()
    {
        let mut failures = 0;
        for item in items {
            if !fast(item, out) {
                let v: Value = serde_json::from_str(item.get()).unwrap_or(Value::Null);
                let e = match v {
                    Value::Object(doc) => event(doc, source, now, index_prefix),
                    other => failure(&other.to_string(), source, now, index_prefix),
                };
                failures += slow(vec![e], out);
            }
        }
        return failures;
    }
    slow(parse_datagram(payload, source, now, index_prefix), out)
}

/// The top-level members of an object, in order, their values unparsed.
struct Members<'a>(Vec<(super::lite::Key<'a>, &'a serde_json::value::RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut m: A,
            ) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(m.size_hint().unwrap_or(8));
                while let Some(e) = m.next_entry()? {
                    out.push(e);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The fast path of [`rows_of_datagram`] for one object's text; `None` when it does not apply.
fn fast_row(text: &str, source: Option<&str>, prefix: &str) -> Option<crate::store::LogRow> {
    let Members(members) = serde_json::from_str(text).ok()?;
    let mut ts = None;
    let mut has_version = false;
    for (i, (k, v)) in members.iter().enumerate() {
        if members[..i].iter().any(|(o, _)| o.0 == k.0) {
            return None;
        }
        match &*k.0 {
            "tags" | "_@timestamp" => return None,
            "@version" => has_version = true,
            "@timestamp" => {
                // Already the output form: a plain string (no escapes) that reads back as itself.
                let s = v.get().strip_prefix('"')?.strip_suffix('"')?;
                let t = parse_time(s)?;
                if s.len() != 24 || format_time(t) != s {
                    return None;
                }
                ts = Some(t);
            }
            _ => {}
        }
    }
    let ts = ts?;
    let mut doc = String::with_capacity(text.len() + 18);
    if has_version {
        doc.push_str(text);
    } else {
        doc.push_str(text.trim_end().strip_suffix('}')?);
        doc.push_str(",\"@version\":\"1\"}");
    }
    Some(crate::store::LogRow {
        ts_ms: (ts.unix_timestamp_nanos() / 1_000_000) as i64,
        index: daily_index(prefix, ts),
        source: source.map(str::to_owned),
        doc,
    })
}

/// `<prefix>YYYY.MM.dd` of a UTC time.
fn daily_index(prefix: &str, ts: OffsetDateTime) -> String {
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

fn event(
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

    /// The fast path stores what the parse-and-write-again path stores, document by document.
    #[test]
    fn rows_of_datagram_agree_with_the_parsed_path() {
        let payloads: &[&[u8]] = &[
            br#"{"@timestamp":"2026-11-25T23:59:59.500Z","@version":1,"app":"web-api","fields":{"path":"/"}}"#,
            br#"{"@timestamp":"2026-11-25T23:59:59.500Z","app":"no version"}"#,
            br#"  {"@timestamp":"2026-11-25T23:59:59.500Z", "a" : [1, {"b":null}] }  "#,
            br#"{"@timestamp":"2026-11-25T23:30:00-02:00","offset":true}"#,
            br#"{"@timestamp":"2026-11-25T23:59:59Z","no":"millis"}"#,
            br#"{"@timestamp":"2026-11-25T23:59:59.500Z","a":1,"a":2}"#,
            br#"{"@timestamp":"2026-11-25T23:59:59.500Z","tags":["_jsonparsefailure"]}"#,
            br#"{"@timestamp":"yesterday"}"#,
            br#"{"@timestamp":7}"#,
            br#"{"no":"time"}"#,
            br#"{"@timestamp":"2026-11-25T23:59:59.500Z","k\u00e9y":"\u00e9"}"#,
            br#"[{"@timestamp":"2026-11-25T23:59:59.500Z","i":0},3,{"i":2},"x"]"#,
            b"[]",
            b"{}",
            b"not json {\n",
            br#"{"@timestamp":"2026-11-25T23:59:59.500Z""#,
        ];
        let src = Some("10.0.0.7".parse().unwrap());
        for p in payloads {
            let mut fast = Vec::new();
            let failures = rows_of_datagram(p, src, now(), "nodejs-", &mut fast);
            let slow: Vec<crate::store::LogRow> = parse_datagram(p, src, now(), "nodejs-")
                .into_iter()
                .map(Into::into)
                .collect();
            let text = String::from_utf8_lossy(p);
            assert_eq!(fast.len(), slow.len(), "{text}");
            let tagged = slow.iter().filter(|r| r.doc.contains(JSON_FAILURE)).count();
            assert_eq!(failures, tagged, "{text}");
            for (f, s) in fast.iter().zip(&slow) {
                let fv: Value = serde_json::from_str(&f.doc).unwrap();
                let sv: Value = serde_json::from_str(&s.doc).unwrap();
                assert_eq!(fv, sv, "{text}");
                assert_eq!(
                    (f.ts_ms, &f.index, &f.source),
                    (s.ts_ms, &s.index, &s.source),
                    "{text}"
                );
            }
        }
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
