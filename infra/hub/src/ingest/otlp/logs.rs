//! OTLP log records → log documents in the book's shape, so KQL, the logs page and `lab check
//! ch4.logs` read them as they read a Logstash document:
//!
//! | document field | from |
//! |---|---|
//! | `@timestamp` | `timeUnixNano`, else `observedTimeUnixNano`, else arrival |
//! | `app` | resource `service.name` |
//! | `environment` | resource `deployment.environment.name` (or `deployment.environment`) |
//! | `severity` | `severityNumber` as a level (`trace` `debug` `info` `warn` `error` `fatal`), else `severityText` lower-cased |
//! | `message` | the body (a string as it is, anything else as JSON) |
//! | `type` | attribute `type`, else `eventName` |
//! | `fields` | every attribute, and `trace_id` / `span_id` when the record has them |
//! | `resource` | every resource attribute |
//! | `otel` | `severity_number`, `severity_text`, `scope`, `flags` as sent |

use serde_json::{Map, Value};
use time::OffsetDateTime;

use super::{
    ExportLogsServiceRequest, Rejected, attr_text, attrs_json, service_name, span_id, trace_id,
};
use crate::ingest::logs::{LogEvent, stamped};

/// The level a severity number stands for (OTel's ranges of four).
pub fn level(number: i32) -> Option<&'static str> {
    Some(match number {
        1..=4 => "trace",
        5..=8 => "debug",
        9..=12 => "info",
        13..=16 => "warn",
        17..=20 => "error",
        21..=24 => "fatal",
        _ => return None,
    })
}

/// The request's records as documents (`now`: when it arrived); none is rejected: a record
/// with a bad trace or span id keeps its other fields.
pub fn documents(
    req: &ExportLogsServiceRequest,
    now: OffsetDateTime,
    prefix: &str,
) -> (Vec<LogEvent>, Rejected) {
    let mut out = Vec::new();
    for rl in &req.resource_logs {
        let res_attrs = rl.resource.as_ref().map_or(&[][..], |r| &r.attributes[..]);
        let app = service_name(rl.resource.as_ref());
        let environment = attr_text(res_attrs, "deployment.environment.name")
            .or_else(|| attr_text(res_attrs, "deployment.environment"));
        let resource = attrs_json(res_attrs);
        for sl in &rl.scope_logs {
            let scope = sl
                .scope
                .as_ref()
                .map(|s| s.name.clone())
                .filter(|n| !n.is_empty());
            for r in &sl.log_records {
                let mut doc = Map::new();
                doc.insert("app".into(), Value::String(app.clone()));
                if let Some(e) = &environment {
                    doc.insert("environment".into(), Value::String(e.clone()));
                }
                let severity = level(r.severity_number).map(str::to_owned).or_else(|| {
                    (!r.severity_text.is_empty()).then(|| r.severity_text.to_lowercase())
                });
                if let Some(s) = severity {
                    doc.insert("severity".into(), Value::String(s));
                }
                if let Some(b) = &r.body {
                    doc.insert("message".into(), Value::String(super::text(b)));
                }
                let mut fields = attrs_json(&r.attributes);
                let ty = fields
                    .get("type")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| (!r.event_name.is_empty()).then(|| r.event_name.clone()));
                if let Some(t) = ty {
                    doc.insert("type".into(), Value::String(t));
                }
                if let Some(t) = trace_id(&r.trace_id) {
                    fields.insert("trace_id".into(), Value::String(t));
                }
                if let Some(s) = span_id(&r.span_id) {
                    fields.insert("span_id".into(), Value::String(s));
                }
                doc.insert("fields".into(), Value::Object(fields));
                if !resource.is_empty() {
                    doc.insert("resource".into(), Value::Object(resource.clone()));
                }
                let mut otel = Map::new();
                otel.insert("severity_number".into(), r.severity_number.into());
                if !r.severity_text.is_empty() {
                    otel.insert(
                        "severity_text".into(),
                        Value::String(r.severity_text.clone()),
                    );
                }
                if let Some(s) = &scope {
                    otel.insert("scope".into(), Value::String(s.clone()));
                }
                if r.flags != 0 {
                    otel.insert("flags".into(), r.flags.into());
                }
                doc.insert("otel".into(), Value::Object(otel));
                let nanos = if r.time_unix_nano != 0 {
                    r.time_unix_nano
                } else {
                    r.observed_time_unix_nano
                };
                let ts = (nanos != 0)
                    .then(|| OffsetDateTime::from_unix_timestamp_nanos(nanos as i128).ok())
                    .flatten()
                    .unwrap_or(now);
                out.push(stamped(doc, None, ts, prefix));
            }
        }
    }
    (out, Rejected::default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp::json::decode;

    #[test]
    fn a_record_reads_as_the_books_document() {
        let body = r#"{"resourceLogs":[{"resource":{"attributes":[
            {"key":"service.name","value":{"stringValue":"web-api"}},
            {"key":"deployment.environment.name","value":{"stringValue":"production"}}]},
          "scopeLogs":[{"scope":{"name":"app"},"logRecords":[
            {"timeUnixNano":"1795000000123000000","severityNumber":17,"severityText":"ERROR",
             "body":{"stringValue":"oh no"},
             "attributes":[{"key":"type","value":{"stringValue":"request-failure"}},
                           {"key":"path","value":{"stringValue":"/error"}},
                           {"key":"http.status","value":{"intValue":"500"}}],
             "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174"},
            {"severityText":"Weird","body":{"kvlistValue":{"values":[{"key":"a","value":{"boolValue":true}}]}}}]}]}]}"#;
        let req: ExportLogsServiceRequest = decode(body.as_bytes()).unwrap();
        let now = OffsetDateTime::from_unix_timestamp(1_795_000_100).unwrap();
        let (docs, rejected) = documents(&req, now, "nodejs-");
        assert_eq!(rejected.count, 0);
        let d = &docs[0].doc;
        assert_eq!(d["app"], "web-api");
        assert_eq!(d["environment"], "production");
        assert_eq!(d["severity"], "error");
        assert_eq!(d["message"], "oh no");
        assert_eq!(d["type"], "request-failure");
        assert_eq!(d["fields"]["path"], "/error");
        assert_eq!(d["fields"]["http.status"], 500);
        assert_eq!(d["fields"]["trace_id"], "5b8efff798038103d269b633813fc60c");
        assert_eq!(d["@timestamp"], "2026-11-18T11:06:40.123Z");
        assert_eq!(docs[0].index, "nodejs-2026.11.18");
        assert_eq!(docs[0].ts_ms, 1_795_000_000_123);
        let d = &docs[1].doc;
        assert_eq!(d["severity"], "weird");
        assert_eq!(d["message"], r#"{"a":true}"#);
        assert_eq!(docs[1].ts_ms, 1_795_000_100_000, "no time: the arrival's");
    }
}
