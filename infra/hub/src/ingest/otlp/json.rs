//! OTLP/JSON bodies: the protobuf JSON mapping with OTLP's exceptions (ids as hex, enums as
//! integers, unknown fields ignored), through the crate's serde types. Ids sent the plain
//! protobuf-JSON way (base64, as some exporters do) are accepted too: they are turned into hex
//! before decoding.

use base64::Engine as _;
use serde::de::DeserializeOwned;
use serde_json::Value;

/// The keys whose values are ids (bytes: hex in OTLP/JSON).
const ID_KEYS: [&str; 4] = ["traceId", "spanId", "parentSpanId", "trace_id"];

/// Decode an export request from OTLP/JSON.
pub fn decode<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    match serde_json::from_slice::<T>(body) {
        Ok(v) => Ok(v),
        Err(first) => {
            // Not JSON at all: say so. JSON that did not decode: maybe base64 ids.
            let mut v: Value =
                serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
            if !ids_to_hex(&mut v, 0) {
                return Err(first.to_string());
            }
            serde_json::from_value(v).map_err(|e| e.to_string())
        }
    }
}

/// Rewrite base64 ids as hex, in place; true if any was rewritten. Depth-bounded: OTLP's
/// own nesting is shallow, and an attacker's is not followed.
fn ids_to_hex(v: &mut Value, depth: usize) -> bool {
    if depth > 64 {
        return false;
    }
    let mut changed = false;
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if ID_KEYS.contains(&k.as_str())
                    && let Value::String(s) = v
                {
                    if let Some(h) = base64_to_hex(s) {
                        *s = h;
                        changed = true;
                    }
                } else {
                    changed |= ids_to_hex(v, depth + 1);
                }
            }
        }
        Value::Array(items) => {
            for i in items {
                changed |= ids_to_hex(i, depth + 1);
            }
        }
        _ => {}
    }
    changed
}

/// `Some(hex)` when `s` is not already hex but is base64 of 8 or 16 bytes.
fn base64_to_hex(s: &str) -> Option<String> {
    if s.is_empty() || (s.len().is_multiple_of(2) && s.bytes().all(|b| b.is_ascii_hexdigit())) {
        return None;
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    let bytes = engines.iter().find_map(|e| e.decode(s).ok())?;
    matches!(bytes.len(), 8 | 16).then(|| super::hex(&bytes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::otlp::ExportTraceServiceRequest;

    const HEX: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
        "spanId":"eee19b7ec3c1b174","name":"x","kind":2,"startTimeUnixNano":"1544712660000000000",
        "endTimeUnixNano":1544712661000000000,"unknownField":true}]}]}]}"#;

    #[test]
    fn hex_ids_and_string_or_number_times_decode() {
        let r: ExportTraceServiceRequest = decode(HEX.as_bytes()).unwrap();
        let s = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            crate::ingest::otlp::hex(&s.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(s.start_time_unix_nano, 1_544_712_660_000_000_000);
        assert_eq!(s.end_time_unix_nano, 1_544_712_661_000_000_000);
        assert_eq!(s.kind, 2);
    }

    #[test]
    fn base64_ids_are_accepted_too() {
        let b64 = HEX
            .replace(
                "5b8efff798038103d269b633813fc60c",
                "W47/95gDgQPSabYzgT/GDA==",
            )
            .replace("eee19b7ec3c1b174", "7uGbfsPBsXQ=");
        let r: ExportTraceServiceRequest = decode(b64.as_bytes()).unwrap();
        let s = &r.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(
            crate::ingest::otlp::hex(&s.trace_id),
            "5b8efff798038103d269b633813fc60c"
        );
        assert_eq!(crate::ingest::otlp::hex(&s.span_id), "eee19b7ec3c1b174");
    }

    #[test]
    fn bad_bodies_are_errors_not_panics() {
        for body in [
            "",
            "[",
            "{\"resourceSpans\":3}",
            "{\"resourceSpans\":[{\"scopeSpans\":[{\"spans\":[{\"traceId\":\"zz\"}]}]}]}",
        ] {
            assert!(
                decode::<ExportTraceServiceRequest>(body.as_bytes()).is_err(),
                "{body}"
            );
        }
    }
}
