//! Logs in, the fast path: [`rows_of_datagram`] turns a Logstash datagram straight into store
//! rows, keeping the common document as the text it came in (issue 17); anything unusual goes
//! through [`super::logs`]' parse.

use std::net::IpAddr;

use serde_json::Value;
use time::OffsetDateTime;

use super::logs::{
    JSON_FAILURE, LogEvent, MAX_DATAGRAM, daily_index, event, failure, format_time, parse_datagram,
    parse_time,
};
use crate::store::LogRow;

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
    out: &mut Vec<LogRow>,
) -> usize {
    let payload = &payload[..payload.len().min(MAX_DATAGRAM)];
    let source_text = source.map(|s| s.to_string());
    let fast = |raw: &serde_json::value::RawValue, out: &mut Vec<LogRow>| {
        let row = fast_row(raw.get(), source_text.as_deref(), index_prefix);
        let ok = row.is_some();
        out.extend(row);
        ok
    };
    // One parsed event into its row: 1 when it is a parse failure.
    let slow = |e: LogEvent, out: &mut Vec<LogRow>| {
        let failed = e
            .doc
            .get("tags")
            .and_then(|t| t.as_array())
            .is_some_and(|t| t.iter().any(|t| t == JSON_FAILURE));
        out.push(LogRow::from(e));
        usize::from(failed)
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
                failures += slow(e, out);
            }
        }
        return failures;
    }
    parse_datagram(payload, source, now, index_prefix)
        .into_iter()
        .map(|e| slow(e, out))
        .sum()
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
fn fast_row(text: &str, source: Option<&str>, prefix: &str) -> Option<LogRow> {
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
    Some(LogRow {
        ts_ms: (ts.unix_timestamp_nanos() / 1_000_000) as i64,
        index: daily_index(prefix, ts),
        source: source.map(str::to_owned),
        doc,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
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
            let slow: Vec<LogRow> = parse_datagram(p, src, now(), "nodejs-")
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
}
