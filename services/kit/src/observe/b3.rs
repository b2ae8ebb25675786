//! B3 propagation (openzipkin/b3-propagation): read the single `b3` header or the multi
//! `X-B3-*` headers (single wins), write all four multi headers (the book's zipkin-lite reads
//! nothing else, and treats a request as traced only when `X-B3-Sampled` is present) plus `b3`.

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
    let trace_id = get("x-b3-traceid").filter(|t| hex_ok(t, &[16, 32]))?;
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
) -> [(&'static str, String); 5] {
    let s = if sampled { "1" } else { "0" };
    [
        ("x-b3-traceid", trace_id.to_owned()),
        ("x-b3-spanid", span_id.to_owned()),
        ("x-b3-parentspanid", parent_id.to_owned()),
        ("x-b3-sampled", s.to_owned()),
        ("b3", format!("{trace_id}-{span_id}-{s}-{parent_id}")),
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
    }
}
