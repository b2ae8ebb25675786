//! B3 propagation (openzipkin/b3-propagation): read the single `b3` header or the multi
//! `X-B3-*` headers (single wins), write all four multi headers (the book's zipkin-lite reads
//! nothing else, and treats a request as traced only when `X-B3-Sampled` is present) plus `b3`.
//! W3C Trace Context too, OpenTelemetry's default: `traceparent` is read when no B3 header is
//! there and written beside them, so a service instrumented with OTel joins the same trace
//! (a 128-bit id with a zero high half is the 64-bit B3 id, as Zipkin normalises it).

use axum::http::HeaderMap;

/// What an incoming request carried.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub trace_id: String,
    pub span_id: String,
    pub parent_id: Option<String>,
    /// None: the caller left the decision to us.
    pub sampled: Option<bool>,
    pub debug: bool,
}

fn hex_ok(s: &str, lens: &[usize]) -> bool {
    lens.contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_hexdigit())
        && s.bytes().any(|b| b != b'0')
}

fn sampled(v: &str) -> Option<bool> {
    match v {
        "1" | "true" => Some(true),
        "0" | "false" => Some(false),
        "d" => Some(true),
        _ => None,
    }
}

/// The trace context of a request, if it carries a valid one. `b3: 0` alone (no ids) means
/// "do not sample" and is returned as a context without ids (empty trace id).
pub fn extract(h: &HeaderMap) -> Option<Incoming> {
    let get = |name: &str| h.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(single) = get("b3") {
        let parts: Vec<&str> = single.split('-').collect();
        if parts.len() == 1 {
            return sampled(parts[0]).map(|s| Incoming {
                trace_id: String::new(),
                span_id: String::new(),
                parent_id: None,
                sampled: Some(s),
                debug: parts[0] == "d",
            });
        }
        if parts.len() >= 2 && hex_ok(parts[0], &[16, 32]) && hex_ok(parts[1], &[16]) {
            return Some(Incoming {
                trace_id: parts[0].to_ascii_lowercase(),
                span_id: parts[1].to_ascii_lowercase(),
                sampled: parts.get(2).and_then(|s| sampled(s)),
                debug: parts.get(2) == Some(&"d"),
                parent_id: parts
                    .get(3)
                    .filter(|p| hex_ok(p, &[16]))
                    .map(|p| p.to_ascii_lowercase()),
            });
        }
    }
    let Some(trace_id) = get("x-b3-traceid").filter(|t| hex_ok(t, &[16, 32])) else {
        return get("traceparent").and_then(traceparent);
    };
    let span_id = get("x-b3-spanid").filter(|t| hex_ok(t, &[16]))?;
    Some(Incoming {
        trace_id: trace_id.to_ascii_lowercase(),
        span_id: span_id.to_ascii_lowercase(),
        parent_id: get("x-b3-parentspanid")
            .filter(|t| hex_ok(t, &[16]))
            .map(str::to_ascii_lowercase),
        sampled: get("x-b3-sampled").and_then(sampled),
        debug: get("x-b3-flags") == Some("1"),
    })
}

/// `traceparent: 00-<trace id>-<parent span id>-<flags>` (W3C Trace Context, version 00 or a
/// later one read the same way).
fn traceparent(v: &str) -> Option<Incoming> {
    let parts: Vec<&str> = v.split('-').collect();
    let [version, trace, span, flags, ..] = parts[..] else {
        return None;
    };
    if version.len() != 2 || version == "ff" || !hex_ok(trace, &[32]) || !hex_ok(span, &[16]) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    let trace = trace.to_ascii_lowercase();
    let trace_id = match trace.strip_prefix("0000000000000000") {
        Some(low) => low.to_owned(),
        None => trace,
    };
    Some(Incoming {
        trace_id,
        span_id: span.to_ascii_lowercase(),
        parent_id: None,
        sampled: Some(flags & 1 == 1),
        debug: false,
    })
}

/// A fresh 64-bit id as 16 lower-hex characters (never all zeros).
pub fn new_id() -> String {
    loop {
        let v = fastrand::u64(..);
        if v != 0 {
            return format!("{v:016x}");
        }
    }
}

/// The headers a call made from inside span `parent` (as child span `span`) carries.
pub fn headers(
    trace_id: &str,
    span_id: &str,
    parent_id: &str,
    sampled: bool,
) -> [(&'static str, String); 6] {
    let s = if sampled { "1" } else { "0" };
    [
        ("x-b3-traceid", trace_id.to_owned()),
        ("x-b3-spanid", span_id.to_owned()),
        ("x-b3-parentspanid", parent_id.to_owned()),
        ("x-b3-sampled", s.to_owned()),
        ("b3", format!("{trace_id}-{span_id}-{s}-{parent_id}")),
        ("traceparent", format!("00-{trace_id:0>32}-{span_id}-0{s}")),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn multi_headers() {
        let i = extract(&map(&[
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            ("X-B3-ParentSpanId", "0020000000000001"),
            ("X-B3-Sampled", "1"),
        ]))
        .unwrap();
        assert_eq!(i.trace_id, "463ac35c9f6413ad");
        assert_eq!(i.parent_id.as_deref(), Some("0020000000000001"));
        assert_eq!(i.sampled, Some(true));
        assert!(extract(&map(&[("X-B3-TraceId", "zz")])).is_none());
    }

    #[test]
    fn single_header_wins() {
        let i = extract(&map(&[
            (
                "b3",
                "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-0-05e3ac9a4f6e3b90",
            ),
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
        ]))
        .unwrap();
        assert_eq!(i.trace_id.len(), 32);
        assert_eq!(i.sampled, Some(false));
        assert_eq!(i.parent_id.as_deref(), Some("05e3ac9a4f6e3b90"));
        let deny = extract(&map(&[("b3", "0")])).unwrap();
        assert_eq!(deny.sampled, Some(false));
    }

    #[test]
    fn w3c_traceparent_is_read_when_no_b3_header_is_there() {
        let i = extract(&map(&[(
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        )]))
        .unwrap();
        assert_eq!(i.trace_id, "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(i.span_id, "b7ad6b7169203331");
        assert_eq!(i.sampled, Some(true));
        let short = extract(&map(&[(
            "traceparent",
            "00-0000000000000000463ac35c9f6413ad-b7ad6b7169203331-00",
        )]))
        .unwrap();
        assert_eq!(
            short.trace_id, "463ac35c9f6413ad",
            "as Zipkin normalises it"
        );
        assert_eq!(short.sampled, Some(false));
        for bad in [
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "garbage",
        ] {
            assert!(extract(&map(&[("traceparent", bad)])).is_none(), "{bad}");
        }
        // B3 wins when both are there.
        let both = extract(&map(&[
            ("X-B3-TraceId", "463ac35c9f6413ad"),
            ("X-B3-SpanId", "a2fb4a1d1a96d312"),
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
        ]))
        .unwrap();
        assert_eq!(both.trace_id, "463ac35c9f6413ad");
    }

    #[test]
    fn written_headers_read_back() {
        let h: HeaderMap = headers(
            "463ac35c9f6413ad",
            "a2fb4a1d1a96d312",
            "0020000000000001",
            true,
        )
        .iter()
        .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
        .collect();
        let i = extract(&h).unwrap();
        assert_eq!(
            (i.span_id.as_str(), i.sampled),
            ("a2fb4a1d1a96d312", Some(true))
        );
        assert_eq!(h["x-b3-sampled"], "1");
        assert_eq!(
            h["traceparent"],
            "00-0000000000000000463ac35c9f6413ad-a2fb4a1d1a96d312-01"
        );
        let mut w3c = h.clone();
        for k in [
            "x-b3-traceid",
            "x-b3-spanid",
            "x-b3-parentspanid",
            "x-b3-sampled",
            "b3",
        ] {
            w3c.remove(k);
        }
        let i = extract(&w3c).unwrap();
        assert_eq!(
            (i.trace_id.as_str(), i.span_id.as_str()),
            ("463ac35c9f6413ad", "a2fb4a1d1a96d312")
        );
    }
}
