//! OpenTelemetry in (OTLP, docs/OBSERVABILITY.md §11): the three signals' export requests, as
//! the `opentelemetry-proto` crate decodes them from protobuf or JSON, turned into what the
//! store already keeps — spans into Zipkin v2 spans ([`traces`]), log records into log
//! documents ([`logs`]), sums, gauges and histograms into Graphite points and Prometheus samples
//! ([`metrics`]). Pure functions over decoded messages (fuzzed, unit tested); the listeners are
//! in `api::otlp`.

pub mod json;
pub mod logs;
pub mod metrics;
pub mod traces;

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use serde_json::{Map, Value};

/// What a request's items came to: how many were rejected, and why (the first reasons).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Rejected {
    pub count: i64,
    pub reasons: Vec<String>,
}

impl Rejected {
    pub(crate) fn add(&mut self, why: String) {
        self.count += 1;
        if self.reasons.len() < 3 {
            self.reasons.push(why);
        }
    }

    /// The partial-success message: empty when nothing was rejected.
    pub fn message(&self) -> String {
        if self.count == 0 {
            return String::new();
        }
        let more = if self.count as usize > self.reasons.len() {
            format!(" (and {} more)", self.count as usize - self.reasons.len())
        } else {
            String::new()
        };
        format!("{}{more}", self.reasons.join("; "))
    }
}

/// `service.name` of a resource; OTel's own default when a resource has none.
pub fn service_name(resource: Option<&Resource>) -> String {
    resource
        .and_then(|r| attr(&r.attributes, "service.name"))
        .and_then(|v| match &v.value {
            Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        })
        .unwrap_or_else(|| "unknown_service".into())
}

/// The value of attribute `key`, if set.
pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The string form of attribute `key`, if set (numbers and booleans as text).
pub fn attr_text(attrs: &[KeyValue], key: &str) -> Option<String> {
    attr(attrs, key).map(text)
}

/// An attribute value as JSON: strings, numbers, booleans as they are; arrays and key-value
/// lists nested; bytes as lower hex.
pub fn to_json(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => Value::from(*i),
        Some(any_value::Value::DoubleValue(d)) => serde_json::Number::from_f64(*d)
            .map_or_else(|| Value::String(d.to_string()), Value::Number),
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(to_json).collect())
        }
        Some(any_value::Value::KvlistValue(l)) => Value::Object(attrs_json(&l.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex(b)),
        Some(any_value::Value::StringValueStrindex(i)) => Value::from(*i),
    }
}

/// An attribute value as text: a string as it is, anything else as its JSON.
pub fn text(v: &AnyValue) -> String {
    match &v.value {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        _ => to_json(v).to_string(),
    }
}

/// Attributes as one JSON object (keys as they are, dotted keys flat, as KQL finds them).
pub fn attrs_json(attrs: &[KeyValue]) -> Map<String, Value> {
    attrs
        .iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, to_json),
            )
        })
        .collect()
}

/// Lower hex.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

/// A trace id as the store keeps Zipkin's: 32 hex characters, or 16 when the high half is zero
/// (Zipkin's normalisation, so a B3 64-bit id and its OTel padding are one trace). `None` when
/// it is not 16 bytes or all zero (invalid in OTLP).
pub fn trace_id(bytes: &[u8]) -> Option<String> {
    if bytes.len() != 16 || bytes.iter().all(|b| *b == 0) {
        return None;
    }
    if bytes[..8].iter().all(|b| *b == 0) {
        Some(hex(&bytes[8..]))
    } else {
        Some(hex(bytes))
    }
}

/// A span id: 16 hex characters; `None` when not 8 bytes or all zero.
pub fn span_id(bytes: &[u8]) -> Option<String> {
    (bytes.len() == 8 && bytes.iter().any(|b| *b != 0)).then(|| hex(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_follow_zipkins_normalisation() {
        let mut t = [0u8; 16];
        t[15] = 0xab;
        assert_eq!(trace_id(&t).as_deref(), Some("00000000000000ab"));
        t[0] = 1;
        assert_eq!(trace_id(&t).unwrap().len(), 32);
        assert_eq!(trace_id(&[0; 16]), None);
        assert_eq!(trace_id(&[1; 8]), None);
        assert_eq!(
            span_id(&[0, 0, 0, 0, 0, 0, 0, 9]).as_deref(),
            Some("0000000000000009")
        );
        assert_eq!(span_id(&[0; 8]), None);
    }

    #[test]
    fn the_partial_success_message_names_the_first_reasons() {
        let mut r = Rejected::default();
        assert_eq!(r.message(), "");
        for i in 0..5 {
            r.add(format!("span {i}: bad"));
        }
        assert_eq!(r.count, 5);
        assert_eq!(
            r.message(),
            "span 0: bad; span 1: bad; span 2: bad (and 2 more)"
        );
    }
}
