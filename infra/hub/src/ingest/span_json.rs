//! A span's Zipkin v2 JSON, written by hand into one buffer sized up front: the same text
//! `serde_json` writes for [`SpanRef`]'s `Serialize` (field order, absent fields left out,
//! escapes), which a test holds it to. serde_json escaped every field name at run time and grew
//! its buffer a few times per span: 18% of the hub's CPU at its span knee (issue 17).

use std::borrow::Cow;

use super::zipkin::{EndpointRef, Span, SpanRef};

impl SpanRef<'_> {
    /// The span in Zipkin v2 JSON text.
    pub fn to_json_string(&self) -> String {
        to_string(self)
    }

    /// [`SpanRef::to_json_string`]'s text appended to `out`.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        write(self, out)
    }
}

impl Span {
    /// [`Span::to_json`] as text, without building a tree first.
    pub fn to_json_string(&self) -> String {
        self.view().to_json_string()
    }
}

/// The span as JSON text.
fn to_string(s: &SpanRef<'_>) -> String {
    let mut out = Vec::with_capacity(size_hint(s));
    write(s, &mut out);
    String::from_utf8(out).expect("JSON text of str is UTF-8")
}

/// The span's JSON text appended to `out` (a block's buffer: no copy in between).
fn write(s: &SpanRef<'_>, out: &mut Vec<u8>) {
    out.reserve(size_hint(s));
    push(out, "{\"traceId\":");
    string(out, &s.trace_id);
    if let Some(p) = &s.parent_id {
        push(out, ",\"parentId\":");
        string(out, p);
    }
    push(out, ",\"id\":");
    string(out, &s.id);
    if let Some(k) = s.kind {
        push(out, ",\"kind\":");
        string(out, k);
    }
    if let Some(n) = &s.name {
        push(out, ",\"name\":");
        string(out, n);
    }
    if let Some(t) = s.timestamp {
        push(out, ",\"timestamp\":");
        push(out, itoa::Buffer::new().format(t));
    }
    if let Some(d) = s.duration {
        push(out, ",\"duration\":");
        push(out, itoa::Buffer::new().format(d));
    }
    if let Some(b) = s.debug {
        push(
            out,
            if b {
                ",\"debug\":true"
            } else {
                ",\"debug\":false"
            },
        );
    }
    if let Some(b) = s.shared {
        push(
            out,
            if b {
                ",\"shared\":true"
            } else {
                ",\"shared\":false"
            },
        );
    }
    if let Some(e) = &s.local_endpoint {
        push(out, ",\"localEndpoint\":");
        endpoint(out, e);
    }
    if let Some(e) = &s.remote_endpoint {
        push(out, ",\"remoteEndpoint\":");
        endpoint(out, e);
    }
    if !s.annotations.is_empty() {
        push(out, ",\"annotations\":[");
        for (i, a) in s.annotations.iter().enumerate() {
            push(out, if i == 0 { "{" } else { ",{" });
            push(out, "\"timestamp\":");
            push(out, itoa::Buffer::new().format(a.timestamp));
            push(out, ",\"value\":");
            string(out, &a.value);
            out.push(b'}');
        }
        out.push(b']');
    }
    if !s.tags.is_empty() {
        push(out, ",\"tags\":{");
        for (i, (k, v)) in s.tags.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            string(out, k);
            out.push(b':');
            string(out, v);
        }
        out.push(b'}');
    }
    out.push(b'}');
}

fn endpoint(out: &mut Vec<u8>, e: &EndpointRef<'_>) {
    let mut sep = "{";
    let mut field = |out: &mut Vec<u8>, key: &str| {
        push(out, sep);
        push(out, key);
        sep = ",";
    };
    for (key, value) in [
        ("\"serviceName\":", &e.service_name),
        ("\"ipv4\":", &e.ipv4),
        ("\"ipv6\":", &e.ipv6),
    ] {
        if let Some(v) = value {
            field(out, key);
            string(out, v);
        }
    }
    if let Some(p) = e.port {
        field(out, "\"port\":");
        push(out, itoa::Buffer::new().format(p));
    }
    if sep == "{" {
        out.push(b'{');
    }
    out.push(b'}');
}

/// A JSON string: as is between quotes unless it holds a byte JSON escapes (then serde_json
/// writes it, so the escapes are the ones it writes).
fn string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().any(|b| b < 0x20 || b == b'"' || b == b'\\') {
        serde_json::to_writer(&mut *out, s).expect("a str serialises");
    } else {
        out.push(b'"');
        push(out, s);
        out.push(b'"');
    }
}

fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

/// Room for the span's text: its strings plus a field name's worth of bytes for each field.
fn size_hint(s: &SpanRef<'_>) -> usize {
    let len = |c: &Option<Cow<'_, str>>| c.as_deref().map_or(0, |s| s.len() + 16);
    let ep = |e: &Option<EndpointRef<'_>>| {
        e.as_ref().map_or(0, |e| {
            24 + len(&e.service_name) + len(&e.ipv4) + len(&e.ipv6) + 16
        })
    };
    let tags: usize = s.tags.iter().map(|(k, v)| k.len() + v.len() + 6).sum();
    let notes: usize = s.annotations.iter().map(|a| a.value.len() + 40).sum();
    96 + s.trace_id.len()
        + s.id.len()
        + len(&s.parent_id)
        + len(&s.name)
        + 2 * 32
        + ep(&s.local_endpoint)
        + ep(&s.remote_endpoint)
        + tags
        + notes
}

#[cfg(test)]
mod tests {
    use super::super::zipkin::{AnnotationRef, read_spans};
    use super::*;

    fn same_as_serde(s: &SpanRef<'_>) {
        let want = serde_json::to_string(s).unwrap();
        let got = to_string(s);
        assert_eq!(got, want);
        assert!(got.capacity() >= got.len());
    }

    #[test]
    fn the_text_is_what_serde_json_writes() {
        let body = br#"[{"traceId":"1234567890abcdef","id":"a1b2c3d4e5f60718"},
            {"traceId":"1234567890abcdef1234567890abcdef","parentId":"0000000000000001","id":"a1b2c3d4e5f60718",
             "kind":"CLIENT","name":"get \"x\"\\y\u0001\u00e9","timestamp":1,"duration":"2","debug":true,"shared":"true",
             "localEndpoint":{"serviceName":"web-api","ipv4":"127.0.0.1","port":3000},
             "remoteEndpoint":{"ipv6":"::1"},
             "annotations":[{"timestamp":5,"value":"ws"},{"timestamp":6,"value":"line\nbreak"}],
             "tags":{"b":"2","a":"tab\there","c":7}},
            {"traceId":"1","id":"2","localEndpoint":{"port":9}}]"#;
        let spans = read_spans(body, |s| {
            same_as_serde(&s);
        })
        .unwrap();
        assert_eq!(spans.len(), 3);
        // Fields the reader never leaves empty or false, as an owned span may hold them.
        let odd = SpanRef {
            trace_id: Cow::Borrowed("a"),
            id: Cow::Borrowed("b"),
            debug: Some(false),
            shared: Some(false),
            local_endpoint: Some(EndpointRef::default()),
            annotations: vec![AnnotationRef {
                timestamp: -1,
                value: Cow::Borrowed(""),
            }],
            tags: vec![(Cow::Borrowed(""), Cow::Borrowed("\u{7f}\u{2028}"))],
            ..Default::default()
        };
        same_as_serde(&odd);
    }

    proptest::proptest! {
        #[test]
        fn any_strings_are_written_as_serde_json_writes_them(
            name in ".*", service in ".*", key in ".*", value in "[\\x00-\\x7f]*", ts in proptest::num::i64::ANY,
        ) {
            let s = SpanRef {
                trace_id: Cow::Borrowed("1"),
                id: Cow::Borrowed("2"),
                name: Some(Cow::Owned(name)),
                timestamp: Some(ts),
                local_endpoint: Some(EndpointRef { service_name: Some(Cow::Owned(service)), ..Default::default() }),
                tags: vec![(Cow::Owned(key), Cow::Owned(value))],
                ..Default::default()
            };
            same_as_serde(&s);
        }
    }
}
