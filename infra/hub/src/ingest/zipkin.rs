//! Traces in: Zipkin v2 JSON spans, read as leniently as the real server reads them
//! (docs/OBSERVABILITY.md §4, `V2SpanReader`): numbers may arrive as strings (zipkin-lite sends ports
//! that way), bad IPs are dropped, `::ffff:a.b.c.d` becomes ipv4, ids are normalised to lower
//! hex of 16 (or 32) characters, names and service names are lower-cased, unknown fields are
//! ignored. A span without `traceId` or `id`, with a bad id or kind, or a `null` tag is invalid,
//! and fails the whole request (400), as in Zipkin.

use std::collections::BTreeMap;
use std::net::IpAddr;

use serde_json::Value;

use super::lite::J;

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
    let v: J = serde_json::from_slice(body).map_err(|e| SpanError {
        index: 0,
        message: format!("not JSON: {e}"),
    })?;
    let J::Array(items) = v else {
        return Err(SpanError {
            index: 0,
            message: "expected a JSON array of spans".into(),
        });
    };
    items
        .iter()
        .enumerate()
        .map(|(index, item)| parse_span(item).map_err(|message| SpanError { index, message }))
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

fn hex_id(v: &J, max: usize, what: &str) -> Result<String, String> {
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
    let width = if s.len() > 16 { 32 } else { 16 };
    let mut id = format!("{s:0>width$}");
    if width == 32 && id.starts_with("0000000000000000") {
        id = id[16..].to_owned();
    }
    Ok(id)
}

fn endpoint(v: &J) -> Option<Endpoint> {
    let m = v.is_object().then_some(v)?;
    let mut e = Endpoint {
        service_name: m
            .get("serviceName")
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase),
        ..Default::default()
    };
    for key in ["ipv4", "ipv6"] {
        if let Some(ip) = m
            .get(key)
            .and_then(J::as_str)
            .and_then(|s| s.parse::<IpAddr>().ok())
        {
            match ip {
                IpAddr::V4(v4) => e.ipv4 = Some(v4.to_string()),
                IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                    Some(v4) => e.ipv4 = Some(v4.to_string()),
                    None => e.ipv6 = Some(v6.to_string()),
                },
            }
        }
    }
    e.port = m
        .get("port")
        .and_then(as_i64)
        .and_then(|p| u16::try_from(p).ok())
        .filter(|p| *p != 0);
    (e != Endpoint::default()).then_some(e)
}

fn parse_span(v: &J) -> Result<Span, String> {
    let m = v.is_object().then_some(v).ok_or("expected an object")?;
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
            "CLIENT" | "SERVER" | "PRODUCER" | "CONSUMER" => Some(k.to_string()),
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
            annotations.push(Annotation {
                timestamp: ts,
                value: value.to_owned(),
            });
        }
    }
    let mut tags = BTreeMap::new();
    if let Some(t) = m.get("tags").and_then(J::members) {
        for (k, v) in t {
            let v = match v {
                J::Str(s) => s.to_string(),
                J::Number(n) => n.to_string(),
                J::Bool(b) => b.to_string(),
                _ => return Err(format!("tag {k:?} has no string value")),
            };
            tags.insert(k.to_owned(), v);
        }
    }
    Ok(Span {
        trace_id,
        id,
        parent_id,
        name: m
            .get("name")
            .and_then(J::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_lowercase),
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

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct SpanOut<'a> {
    trace_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parent_id: Option<&'a str>,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    timestamp: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    duration: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    debug: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    shared: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local_endpoint: Option<EndpointOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    remote_endpoint: Option<EndpointOut<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    annotations: Vec<AnnotationOut<'a>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    tags: &'a BTreeMap<String, String>,
}

#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EndpointOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    service_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv4: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ipv6: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    port: Option<u16>,
}

impl<'a> From<&'a Endpoint> for EndpointOut<'a> {
    fn from(e: &'a Endpoint) -> Self {
        Self {
            service_name: e.service_name.as_deref(),
            ipv4: e.ipv4.as_deref(),
            ipv6: e.ipv6.as_deref(),
            port: e.port,
        }
    }
}

#[derive(serde::Serialize)]
struct AnnotationOut<'a> {
    timestamp: i64,
    value: &'a str,
}

impl Span {
    /// The span in Zipkin v2 JSON, absent fields left out.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self.as_out()).expect("spans serialise")
    }

    /// [`Span::to_json`] as text, without building a tree first (the store's hot path).
    pub fn to_json_string(&self) -> String {
        serde_json::to_string(&self.as_out()).expect("spans serialise")
    }

    fn as_out(&self) -> SpanOut<'_> {
        SpanOut {
            trace_id: &self.trace_id,
            parent_id: self.parent_id.as_deref(),
            id: &self.id,
            kind: self.kind.as_deref(),
            name: self.name.as_deref(),
            timestamp: self.timestamp,
            duration: self.duration,
            debug: self.debug.filter(|d| *d),
            shared: self.shared.filter(|d| *d),
            local_endpoint: self.local_endpoint.as_ref().map(EndpointOut::from),
            remote_endpoint: self.remote_endpoint.as_ref().map(EndpointOut::from),
            annotations: self
                .annotations
                .iter()
                .map(|a| AnnotationOut {
                    timestamp: a.timestamp,
                    value: &a.value,
                })
                .collect(),
            tags: &self.tags,
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
