//! OTLP spans → Zipkin v2 spans, the way OpenTelemetry's own Zipkin exporter maps them: the
//! resource's `service.name` is the local endpoint, `peer.service` the remote one, kind INTERNAL
//! is no kind, attributes become tags (with `otel.scope.name`, `otel.status_code` and `error`),
//! events become annotations, times go from nanoseconds to microseconds.

use std::collections::BTreeMap;

use opentelemetry_proto::tonic::trace::v1::{Span as OtlpSpan, span::SpanKind, status::StatusCode};

use super::{
    ExportTraceServiceRequest, Rejected, attr_text, service_name, span_id, text, trace_id,
};
use crate::ingest::zipkin::{Annotation, Endpoint, Span};

/// The request's spans, and what was rejected (a span without a valid trace or span id).
pub fn spans(req: &ExportTraceServiceRequest) -> (Vec<Span>, Rejected) {
    let mut out = Vec::new();
    let mut rejected = Rejected::default();
    let mut index = 0usize;
    for rs in &req.resource_spans {
        let service = service_name(rs.resource.as_ref()).to_lowercase();
        for ss in &rs.scope_spans {
            let scope = ss.scope.as_ref();
            for s in &ss.spans {
                match span(s, &service, scope) {
                    Ok(z) => out.push(z),
                    Err(why) => rejected.add(format!("span {index}: {why}")),
                }
                index += 1;
            }
        }
    }
    (out, rejected)
}

fn span(
    s: &OtlpSpan,
    service: &str,
    scope: Option<&opentelemetry_proto::tonic::common::v1::InstrumentationScope>,
) -> Result<Span, String> {
    let trace = trace_id(&s.trace_id).ok_or("traceId must be 16 bytes, not all zero")?;
    let id = span_id(&s.span_id).ok_or("spanId must be 8 bytes, not all zero")?;
    let parent = if s.parent_span_id.is_empty() {
        None
    } else {
        Some(span_id(&s.parent_span_id).ok_or("parentSpanId must be 8 bytes when set")?)
    };
    let kind = match SpanKind::try_from(s.kind).unwrap_or(SpanKind::Unspecified) {
        SpanKind::Server => Some("SERVER"),
        SpanKind::Client => Some("CLIENT"),
        SpanKind::Producer => Some("PRODUCER"),
        SpanKind::Consumer => Some("CONSUMER"),
        SpanKind::Internal | SpanKind::Unspecified => None,
    };
    let mut tags = BTreeMap::new();
    for kv in &s.attributes {
        if let Some(v) = &kv.value {
            tags.insert(kv.key.clone(), text(v));
        }
    }
    if let Some(sc) = scope.filter(|sc| !sc.name.is_empty()) {
        tags.insert("otel.scope.name".into(), sc.name.clone());
        if !sc.version.is_empty() {
            tags.insert("otel.scope.version".into(), sc.version.clone());
        }
    }
    if let Some(st) = &s.status {
        match StatusCode::try_from(st.code).unwrap_or(StatusCode::Unset) {
            StatusCode::Ok => {
                tags.insert("otel.status_code".into(), "OK".into());
            }
            StatusCode::Error => {
                tags.insert("otel.status_code".into(), "ERROR".into());
                tags.insert("error".into(), st.message.clone());
            }
            StatusCode::Unset => {}
        }
    }
    let start_us = (s.start_time_unix_nano / 1000) as i64;
    let duration_us = (s.end_time_unix_nano.saturating_sub(s.start_time_unix_nano) / 1000) as i64;
    let remote = attr_text(&s.attributes, "peer.service").map(|p| Endpoint {
        service_name: Some(p.to_lowercase()),
        ..Endpoint::default()
    });
    let annotations = s
        .events
        .iter()
        .map(|e| Annotation {
            timestamp: (e.time_unix_nano / 1000) as i64,
            value: if e.attributes.is_empty() {
                e.name.clone()
            } else {
                serde_json::json!({ e.name.clone(): super::attrs_json(&e.attributes) }).to_string()
            },
        })
        .collect();
    Ok(Span {
        trace_id: trace,
        id,
        parent_id: parent,
        name: (!s.name.is_empty()).then(|| s.name.to_lowercase()),
        kind: kind.map(str::to_owned),
        timestamp: (start_us > 0).then_some(start_us),
        // Zipkin reads 0 as "unknown": a span that took under a microsecond took one.
        duration: (start_us > 0).then_some(duration_us.max(1)),
        debug: None,
        shared: None,
        local_endpoint: Some(Endpoint {
            service_name: Some(service.to_owned()),
            ..Endpoint::default()
        }),
        remote_endpoint: remote,
        annotations,
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp::json::decode;

    #[test]
    fn a_server_span_reads_as_zipkins_exporter_writes_it() {
        let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"Shop"}}]},
          "scopeSpans":[{"scope":{"name":"flask","version":"1.0"},"spans":[
            {"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173",
             "name":"GET /recipes","kind":2,"startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712660001500000",
             "attributes":[{"key":"http.status_code","value":{"intValue":"500"}},{"key":"peer.service","value":{"stringValue":"Recipe-API"}}],
             "events":[{"timeUnixNano":"1544712660000100000","name":"retry"}],
             "status":{"code":2,"message":"boom"}},
            {"traceId":"","spanId":"eee19b7ec3c1b174","name":"bad"}]}]}]}"#;
        let req: ExportTraceServiceRequest = decode(body.as_bytes()).unwrap();
        let (spans, rejected) = spans(&req);
        assert_eq!(rejected.count, 1);
        assert!(
            rejected.message().contains("span 1: traceId"),
            "{}",
            rejected.message()
        );
        let s = &spans[0];
        assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.parent_id.as_deref(), Some("eee19b7ec3c1b173"));
        assert_eq!(s.name.as_deref(), Some("get /recipes"));
        assert_eq!(s.kind.as_deref(), Some("SERVER"));
        assert_eq!(s.timestamp, Some(1_544_712_660_000_000));
        assert_eq!(s.duration, Some(1500));
        assert_eq!(s.service(), Some("shop"));
        assert_eq!(s.remote_service(), Some("recipe-api"));
        assert_eq!(s.tags["http.status_code"], "500");
        assert_eq!(s.tags["error"], "boom");
        assert_eq!(s.tags["otel.scope.name"], "flask");
        assert_eq!(s.annotations[0].value, "retry");
        assert_eq!(s.annotations[0].timestamp, 1_544_712_660_000_100);
    }
}
