//! Traces in: Zipkin v2 JSON spans, read as leniently as the real server reads them
//! (docs/OBSERVABILITY.md §4, `V2SpanReader`): numbers may arrive as strings (zipkin-lite sends ports
//! that way), bad IPs are dropped, `::ffff:a.b.c.d` becomes ipv4, ids are normalised to lower
//! hex of 16 (or 32) characters, names and service names are lower-cased, unknown fields are
//! ignored. A span without `traceId` or `id`, with a bad id or kind, or a `null` tag is invalid,
//! and fails the whole request (400), as in Zipkin.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::lite::J;
use super::span_fields::{Body, Fields};

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Endpoint {
    pub service_name: Option<String>,
    pub ipv4: Option<String>,
    pub ipv6: Option<String>,
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Annotation {
    pub timestamp: i64,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct Span {
    pub trace_id: String,
    pub id: String,
    pub parent_id: Option<String>,
    pub name: Option<String>,
    pub kind: Option<String>,
    /// Epoch microseconds.
    pub timestamp: Option<i64>,
    /// Microseconds.
    pub duration: Option<i64>,
    pub debug: Option<bool>,
    pub shared: Option<bool>,
    pub local_endpoint: Option<Endpoint>,
    pub remote_endpoint: Option<Endpoint>,
    pub annotations: Vec<Annotation>,
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("span {index}: {message}")]
pub struct SpanError {
    pub index: usize,
    pub message: String,
}

/// Decode a `POST /api/v2/spans` body (already un-gzipped).
pub fn parse_spans(body: &[u8]) -> Result<Vec<Span>, SpanError> {
    read_spans(body, |s| s.into_owned())
}

/// Decode a body and hand each span, borrowing from the body what needs no change, to `f`
/// (the collector's path: a span becomes its store row without owned copies in between).
pub fn read_spans<T>(
    body: &[u8],
    mut f: impl FnMut(SpanRef<'_>) -> T,
) -> Result<Vec<T>, SpanError> {
    let v: Body = serde_json::from_slice(body).map_err(|e| SpanError {
        index: 0,
        message: format!("not JSON: {e}"),
    })?;
    let Body::Spans(items) = v else {
        return Err(SpanError {
            index: 0,
            message: "expected a JSON array of spans".into(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            let span = match item {
                Some(fields) => parse_span(fields),
                None => Err("expected an object".to_owned()),
            };
            span.map(&mut f)
                .map_err(|message| SpanError { index, message })
        })
        .collect()
}

fn as_i64(v: &J) -> Option<i64> {
    match v {
        J::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        J::Str(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn as_bool(v: &J) -> Option<bool> {
    match v {
        J::Bool(b) => Some(*b),
        J::Str(s) => s.parse().ok(),
        _ => None,
    }
}

/// `s` lower-cased, borrowed when it already is.
fn lower(s: &str) -> Cow<'_, str> {
    if s.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii()) {
        Cow::Owned(s.to_lowercase())
    } else {
        Cow::Borrowed(s)
    }
}

fn hex_id<'j>(v: &'j J, max: usize, what: &str) -> Result<Cow<'j, str>, String> {
    let s = match v {
        J::Str(s) => &**s,
        _ => return Err(format!("{what} must be a hex string")),
    };
    if s.is_empty()
        || s.len() > max
        || !s
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        return Err(format!("{what} {s:?} is not 1-{max} lower-hex characters"));
    }
    if s.bytes().all(|b| b == b'0') {
        return Err(format!("{what} is all zeros"));
    }
    const HIGH_ZEROS: &str = "0000000000000000";
    if s.len() == 16 || (s.len() == 32 && !s.starts_with(HIGH_ZEROS)) {
        return Ok(Cow::Borrowed(s));
    }
    let width = if s.len() > 16 { 32 } else { 16 };
    let mut id = format!("{s:0>width$}");
    if width == 32 && id.starts_with(HIGH_ZEROS) {
        id = id[16..].to_owned();
    }
    Ok(Cow::Owned(id))
}

fn endpoint<'j>(v: &'j J) -> Option<EndpointRef<'j>> {
    let m = v.is_object().then_some(v)?;
    let mut e = EndpointRef {
        service_name: m
            .get("serviceName")
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(lower),
        ..Default::default()
    };
    for key in ["ipv4", "ipv6"] {
        let Some(text) = m.get(key).and_then(J::as_str) else {
            continue;
        };
        match text.parse::<IpAddr>() {
            // The parser takes only the dotted-quad form (no leading zeros): as sent.
            Ok(IpAddr::V4(_)) => e.ipv4 = Some(Cow::Borrowed(text)),
            Ok(IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
                Some(v4) => e.ipv4 = Some(Cow::Owned(v4.to_string())),
                None => e.ipv6 = Some(Cow::Owned(v6.to_string())),
            },
            Err(_) => {}
        }
    }
    e.port = m
        .get("port")
        .and_then(as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    (e != EndpointRef::default()).then_some(e)
}

fn parse_span<'j>(m: &'j Fields) -> Result<SpanRef<'j>, String> {
    let trace_id = hex_id(
        m.get("traceId").ok_or("traceId is required")?,
        32,
        "traceId",
    )?;
    let id = hex_id(m.get("id").ok_or("id is required")?, 16, "id")?;
    let parent_id = match m.get("parentId") {
        None | Some(J::Null) => None,
        Some(J::Str(s)) if s.bytes().all(|b| b == b'0') => None,
        Some(p) => Some(hex_id(p, 16, "parentId")?),
    };
    let kind = match m.get("kind") {
        None | Some(J::Null) => None,
        Some(J::Str(k)) => match &**k {
            "CLIENT" => Some("CLIENT"),
            "SERVER" => Some("SERVER"),
            "PRODUCER" => Some("PRODUCER"),
            "CONSUMER" => Some("CONSUMER"),
            other => {
                return Err(format!(
                    "kind {other:?} is not CLIENT, SERVER, PRODUCER or CONSUMER"
                ));
            }
        },
        Some(_) => return Err("kind must be a string".into()),
    };
    // Fields of the wrong type fail the span, as Zipkin's own collector does.
    let number = |key: &str| -> Result<Option<i64>, String> {
        match m.get(key) {
            None | Some(J::Null) => Ok(None),
            Some(v) => as_i64(v)
                .map(Some)
                .ok_or_else(|| format!("{key} must be a number of microseconds, not {v}")),
        }
    };
    let (timestamp, duration) = (number("timestamp")?, number("duration")?);
    for (key, ok) in [
        (
            "annotations",
            m.get("annotations")
                .is_none_or(|v| v.is_array() || v.is_null()),
        ),
        (
            "tags",
            m.get("tags").is_none_or(|v| v.is_object() || v.is_null()),
        ),
        (
            "name",
            m.get("name").is_none_or(|v| v.is_string() || v.is_null()),
        ),
        (
            "localEndpoint",
            m.get("localEndpoint")
                .is_none_or(|v| v.is_object() || v.is_null()),
        ),
        (
            "remoteEndpoint",
            m.get("remoteEndpoint")
                .is_none_or(|v| v.is_object() || v.is_null()),
        ),
    ] {
        if !ok {
            let want = match key {
                "annotations" => "an array",
                "name" => "a string",
                _ => "an object",
            };
            return Err(format!("{key} must be {want}"));
        }
    }
    let mut annotations = Vec::new();
    if let Some(J::Array(items)) = m.get("annotations") {
        for a in items {
            let ts = a
                .get("timestamp")
                .and_then(as_i64)
                .ok_or("an annotation needs a timestamp")?;
            let value = a
                .get("value")
                .and_then(J::as_str)
                .ok_or("an annotation needs a value")?;
            annotations.push(AnnotationRef {
                timestamp: ts,
                value: Cow::Borrowed(value),
            });
        }
    }
    let mut tags = Vec::new();
    if let Some(t) = m.get("tags").and_then(J::members) {
        tags.reserve(t.len());
        for (k, v) in t {
            let v = match v {
                J::Str(s) => Cow::Borrowed(&**s),
                J::Number(n) => Cow::Owned(n.to_string()),
                J::Bool(b) => Cow::Borrowed(if *b { "true" } else { "false" }),
                _ => return Err(format!("tag {k:?} has no string value")),
            };
            tags.push((Cow::Borrowed(k), v));
        }
        // Keys are distinct (`members`): sorted, as a map keeps them.
        tags.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    }
    Ok(SpanRef {
        trace_id,
        id,
        parent_id,
        name: m
            .get("name")
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(lower),
        kind,
        timestamp: timestamp.filter(|t| *t > 0),
        duration: duration.filter(|d| *d > 0),
        debug: m.get("debug").and_then(as_bool).filter(|b| *b),
        shared: m.get("shared").and_then(as_bool).filter(|b| *b),
        local_endpoint: m.get("localEndpoint").and_then(endpoint),
        remote_endpoint: m.get("remoteEndpoint").and_then(endpoint),
        annotations,
        tags,
    })
}

/// A span as read from a request: what needed no normalising borrowed from the request's
/// JSON. Serialises as the span's Zipkin v2 JSON, absent fields left out.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SpanRef<'j> {
    pub trace_id: Cow<'j, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parent_id: Option<Cow<'j, str>>,
    pub id: Cow<'j, str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'j str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<Cow<'j, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub debug: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub local_endpoint: Option<EndpointRef<'j>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remote_endpoint: Option<EndpointRef<'j>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub annotations: Vec<AnnotationRef<'j>>,
    /// Sorted by key, each key once.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "as_map")]
    pub tags: Vec<(Cow<'j, str>, Cow<'j, str>)>,
}

#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct EndpointRef<'j> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_name: Option<Cow<'j, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv4: Option<Cow<'j, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ipv6: Option<Cow<'j, str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct AnnotationRef<'j> {
    pub timestamp: i64,
    pub value: Cow<'j, str>,
}

fn as_map<S: serde::Serializer>(
    tags: &[(Cow<'_, str>, Cow<'_, str>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(tags.iter().map(|(k, v)| (&**k, &**v)))
}

fn owned(c: &Option<Cow<'_, str>>) -> Option<String> {
    c.as_deref().map(str::to_owned)
}

impl EndpointRef<'_> {
    fn into_owned(self) -> Endpoint {
        Endpoint {
            service_name: owned(&self.service_name),
            ipv4: owned(&self.ipv4),
            ipv6: owned(&self.ipv6),
            port: self.port,
        }
    }
}

fn borrowed(s: &Option<String>) -> Option<Cow<'_, str>> {
    s.as_deref().map(Cow::Borrowed)
}

impl<'a> From<&'a Endpoint> for EndpointRef<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Self {
            service_name: borrowed(&e.service_name),
            ipv4: borrowed(&e.ipv4),
            ipv6: borrowed(&e.ipv6),
            port: e.port,
        }
    }
}

impl SpanRef<'_> {
    pub fn service(&self) -> Option<&str> {
        self.local_endpoint.as_ref()?.service_name.as_deref()
    }

    pub fn remote_service(&self) -> Option<&str> {
        self.remote_endpoint.as_ref()?.service_name.as_deref()
    }

    pub fn into_owned(self) -> Span {
        Span {
            trace_id: self.trace_id.into_owned(),
            id: self.id.into_owned(),
            parent_id: owned(&self.parent_id),
            name: owned(&self.name),
            kind: self.kind.map(str::to_owned),
            timestamp: self.timestamp,
            duration: self.duration,
            debug: self.debug,
            shared: self.shared,
            local_endpoint: self.local_endpoint.map(EndpointRef::into_owned),
            remote_endpoint: self.remote_endpoint.map(EndpointRef::into_owned),
            annotations: self
                .annotations
                .into_iter()
                .map(|a| Annotation {
                    timestamp: a.timestamp,
                    value: a.value.into_owned(),
                })
                .collect(),
            tags: self
                .tags
                .into_iter()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
        }
    }
}

impl Span {
    /// The span in Zipkin v2 JSON, absent fields left out.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.view()).expect("spans serialise")
    }

    /// The span as the collector reads one (borrowing every field).
    pub fn view(&self) -> SpanRef<'_> {
        SpanRef {
            trace_id: Cow::Borrowed(&self.trace_id),
            parent_id: borrowed(&self.parent_id),
            id: Cow::Borrowed(&self.id),
            kind: self.kind.as_deref(),
            name: borrowed(&self.name),
            timestamp: self.timestamp,
            duration: self.duration,
            debug: self.debug.filter(|d| *d),
            shared: self.shared.filter(|d| *d),
            local_endpoint: self.local_endpoint.as_ref().map(EndpointRef::from),
            remote_endpoint: self.remote_endpoint.as_ref().map(EndpointRef::from),
            annotations: self
                .annotations
                .iter()
                .map(|a| AnnotationRef {
                    timestamp: a.timestamp,
                    value: Cow::Borrowed(&a.value),
                })
                .collect(),
            tags: self
                .tags
                .iter()
                .map(|(k, v)| (Cow::Borrowed(&**k), Cow::Borrowed(&**v)))
                .collect(),
        }
    }

    pub fn service(&self) -> Option<&str> {
        self.local_endpoint.as_ref()?.service_name.as_deref()
    }

    pub fn remote_service(&self) -> Option<&str> {
        self.remote_endpoint.as_ref()?.service_name.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zipkin_lite_spans_with_string_numbers_are_read() {
        let body = br#"[{"id":"a1b2c3d4e5f60718","traceId":"1234567890abcdef","name":"GET_RECIPE",
            "parentId":"00000000000000ff","timestamp":"1700000000000000","duration":"1500","kind":"SERVER",
            "localEndpoint":{"serviceName":"Recipe-API","ipv4":"::ffff:127.0.0.1","port":"4000"},
            "remoteEndpoint":{"ipv4":"not-an-ip"},
            "tags":{"http.method":"GET","http.path":"/recipes/42","n":3},"extra":true}]"#;
        let spans = parse_spans(body).unwrap();
        let s = &spans[0];
        assert_eq!(s.name.as_deref(), Some("get_recipe"));
        assert_eq!(s.timestamp, Some(1_700_000_000_000_000));
        assert_eq!(s.duration, Some(1500));
        assert_eq!(s.parent_id.as_deref(), Some("00000000000000ff"));
        let le = s.local_endpoint.as_ref().unwrap();
        assert_eq!(le.service_name.as_deref(), Some("recipe-api"));
        assert_eq!(le.ipv4.as_deref(), Some("127.0.0.1"));
        assert_eq!(le.port, Some(4000));
        assert_eq!(
            s.remote_endpoint, None,
            "an endpoint with only a bad IP is absent"
        );
        assert_eq!(s.tags["n"], "3");
        let j = s.to_json();
        assert_eq!(j["localEndpoint"]["port"], 4000);
        assert!(j.get("extra").is_none());
    }

    #[test]
    fn what_is_already_normal_is_kept_as_sent_and_the_rest_normalised() {
        let body = br#"[{"traceId":"00000000000000001234567890abcdef","id":"a1b2c3d4e5f60718",
            "name":"get","localEndpoint":{"serviceName":"web-api","ipv4":"10.0.0.1"},
            "remoteEndpoint":{"serviceName":"DB","ipv4":"010.0.0.1","ipv6":"::1"},
            "tags":{"z":"1","a":true,"m":2.5,"a":false}}]"#;
        let docs = read_spans(body, |s| s.to_json_string()).unwrap();
        assert_eq!(
            docs[0],
            r#"{"traceId":"1234567890abcdef","id":"a1b2c3d4e5f60718","name":"get","localEndpoint":{"serviceName":"web-api","ipv4":"10.0.0.1"},"remoteEndpoint":{"serviceName":"db","ipv6":"::1"},"tags":{"a":"false","m":"2.5","z":"1"}}"#
        );
        let owned = parse_spans(body).unwrap();
        assert_eq!(owned[0].to_json_string(), docs[0]);
        assert_eq!(owned[0].tags.len(), 3);
    }

    #[test]
    fn ids_are_normalised() {
        let s = &parse_spans(br#"[{"traceId":"abc","id":"1"}]"#).unwrap()[0];
        assert_eq!(s.trace_id, "0000000000000abc");
        assert_eq!(s.id, "0000000000000001");
        let s = &parse_spans(br#"[{"traceId":"0000000000000000463ac35c9f6413ad","id":"1"}]"#)
            .unwrap()[0];
        assert_eq!(s.trace_id, "463ac35c9f6413ad");
        let s = &parse_spans(br#"[{"traceId":"1463ac35c9f6413ad48485a3953bb612","id":"1"}]"#)
            .unwrap()[0];
        assert_eq!(s.trace_id.len(), 32);
    }

    #[test]
    fn invalid_spans_fail_the_request_naming_the_span() {
        for (body, want) in [
            (&br#"[{"id":"1"}]"#[..], "traceId is required"),
            (
                br#"[{"traceId":"1","id":"1"},{"traceId":"XYZ","id":"1"}]"#,
                "span 1: traceId",
            ),
            (br#"[{"traceId":"0","id":"1"}]"#, "all zeros"),
            (br#"[{"traceId":"1","id":"1","kind":"WEIRD"}]"#, "kind"),
            (br#"[{"traceId":"1","id":"1","tags":{"a":null}}]"#, "tag"),
            (
                br#"[{"traceId":"1","id":"1","duration":"long"}]"#,
                "span 0: duration must be a number",
            ),
            (
                br#"[{"traceId":"1","id":"1","tags":[1,2]}]"#,
                "tags must be an object",
            ),
            (
                br#"[{"traceId":"1","id":"1","annotations":"x"}]"#,
                "annotations must be an array",
            ),
            (br#"{"traceId":"1"}"#, "array"),
            (b"[", "not JSON"),
        ] {
            let e = parse_spans(body).unwrap_err().to_string();
            assert!(e.contains(want), "{e} lacks {want}");
        }
    }
}
