//! A fuzz target per parser (proptest: random and mutated inputs, many cases per run): none
//! panics on any input, and what is valid is read right.

use lab_hub::ingest::{logs, statsd, zipkin};
use lab_hub::query::{graphite, kql};
use proptest::prelude::*;

fn now() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_795_000_000).unwrap()
}

/// Bytes that look like the protocol more often than noise does.
fn statsd_like() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop_oneof![
            Just(b"a.b:1|c".to_vec()),
            Just(b"t:12.5|ms|@0.1".to_vec()),
            Just(b"g:-3|g".to_vec()),
            Just(b"s:x|s".to_vec()),
            Just(b"|#".to_vec()),
            Just(b":".to_vec()),
            Just(b"|".to_vec()),
            Just(b"@".to_vec()),
            Just(b"\n".to_vec()),
            prop::collection::vec(any::<u8>(), 0..8),
        ],
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn statsd_never_panics_and_counts_every_line(packet in statsd_like()) {
        let mut a = statsd::Aggregator::new();
        let bad = a.ingest(&packet);
        let lines = String::from_utf8_lossy(&packet).split('\n').filter(|l| !l.is_empty()).count();
        prop_assert!(bad <= lines * 64);
        prop_assert_eq!(a.metrics_received as usize, lines);
        let out = a.flush(10.0, statsd::Namespace::Legacy, &[90.0, -50.0]);
        prop_assert!(out.iter().all(|(k, _)| !k.contains('\n')));
    }

    #[test]
    fn a_datagram_counts_as_its_lines_one_by_one(packet in statsd_like()) {
        // The aggregator's allocation-free path for clean lines agrees with the general parse.
        let mut whole = statsd::Aggregator::new();
        let bad = whole.ingest(&packet);
        let mut one_by_one = statsd::Aggregator::new();
        let text = String::from_utf8_lossy(&packet).into_owned();
        let (mut samples, mut bads) = (Vec::new(), Vec::new());
        for line in text.split('\n').filter(|l| !l.is_empty()) {
            statsd::parse_line(line, &mut samples, &mut bads);
            for s in samples.drain(..) {
                one_by_one.add(s);
            }
        }
        prop_assert_eq!(bad, bads.len());
        let flush = |a: &mut statsd::Aggregator| {
            let mut out = a.flush(10.0, statsd::Namespace::Legacy, &[90.0]);
            out.retain(|(k, _)| !k.contains(".statsd.") && !k.starts_with("statsd."));
            out.sort_by(|x, y| x.0.cmp(&y.0));
            out
        };
        prop_assert_eq!(flush(&mut whole), flush(&mut one_by_one));
        prop_assert_eq!(&whole.totals.counters, &one_by_one.totals.counters);
        prop_assert_eq!(&whole.totals.gauges, &one_by_one.totals.gauges);
    }

    #[test]
    fn valid_counters_sum_exactly(values in prop::collection::vec(1u32..1000, 1..50)) {
        let packet: Vec<String> = values.iter().map(|v| format!("k:{v}|c")).collect();
        let mut a = statsd::Aggregator::new();
        prop_assert_eq!(a.ingest(packet.join("\n").as_bytes()), 0);
        let out: std::collections::BTreeMap<_, _> = a.flush(10.0, statsd::Namespace::Legacy, &[90.0]).into_iter().collect();
        prop_assert_eq!(out["stats_counts.k"], values.iter().map(|v| f64::from(*v)).sum::<f64>());
    }

    #[test]
    fn logs_keep_every_datagram(payload in prop::collection::vec(any::<u8>(), 0..2000)) {
        let events = logs::parse_datagram(&payload, None, now(), "nodejs-");
        prop_assert!(!events.is_empty(), "Logstash keeps what it cannot parse");
        for e in events {
            prop_assert!(e.index.starts_with("nodejs-"));
            prop_assert!(e.doc.contains_key("@timestamp"));
        }
    }

    #[test]
    fn logs_read_any_json_object(doc in prop::collection::btree_map("[a-z@_]{1,8}", "[ -~]{0,12}", 0..8)) {
        let bytes = serde_json::to_vec(&doc).unwrap();
        let events = logs::parse_datagram(&bytes, None, now(), "x-");
        prop_assert_eq!(events.len(), 1);
        for (k, v) in &doc {
            if k != "@timestamp" && k != "tags" {
                prop_assert_eq!(events[0].doc[k].as_str(), Some(v.as_str()));
            }
        }
    }

    #[test]
    fn spans_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
        let _ = zipkin::parse_spans(&body);
    }

    #[test]
    fn span_json_mutations_never_panic(
        trace in "[0-9a-fA-Fz]{0,34}", id in "[0-9a-f]{0,18}", ts in any::<i64>(), port in any::<i64>(),
        kind in prop_oneof![Just("SERVER"), Just("CLIENT"), Just("x"), Just("")],
    ) {
        let body = format!(r#"[{{"traceId":"{trace}","id":"{id}","timestamp":{ts},"kind":"{kind}","localEndpoint":{{"serviceName":"A","port":{port}}}}}]"#);
        if let Ok(spans) = zipkin::parse_spans(body.as_bytes()) {
            let s = &spans[0];
            prop_assert!(s.trace_id.len() == 16 || s.trace_id.len() == 32);
            prop_assert_eq!(s.id.len(), 16);
            prop_assert!(s.trace_id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        }
    }

    #[test]
    fn kql_never_panics(q in "[a-z:*\"()<>= .0-9\u{3000}]{0,40}|(and|or|not| |x:1|\\(|\\)|\"){0,40}") {
        if let Ok(query) = kql::parse(&q) {
            let doc = serde_json::json!({"x": 1, "a": "b c", "n": {"m": [1, "z"]}});
            let _ = kql::matches(&query, doc.as_object().unwrap(), 0);
        }
    }

    #[test]
    fn graphite_targets_never_panic(t in "[a-zA-Z(),.*{}\\[\\]0-9'\" \u{3000}-]{0,50}|(sumSeries\\(|summarize\\(a.b,'1s'\\)|a.b|,|\\)){0,60}") {
        struct Empty;
        impl graphite::Source for Empty {
            fn names(&self) -> Vec<String> { vec!["a.b".into(), "a.c".into()] }
            fn points(&self, _: &str, from: i64, _: i64) -> Vec<(i64, f64)> { vec![(from - from % 10 + 10, 1.0)] }
            fn step(&self) -> i64 { 10 }
        }
        if let Ok(e) = graphite::parse_target(&t) {
            let _ = graphite::eval(&graphite::Ctx::new(&Empty, 0, 100), &e);
        }
        let _ = graphite::parse_time(&t, 1000);
        let _ = graphite::find(&["a.b".into()], &t);
    }
}

mod otlp {
    //! OTLP's parsers (protobuf by prost, JSON by serde, then the conversions): no body crashes
    //! the hub, and every span of a decodable request is either kept or counted as rejected.

    use lab_hub::ingest::otlp::{self, json};
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
    use proptest::prelude::*;
    use prost::Message;

    fn now() -> time::OffsetDateTime {
        super::now()
    }

    fn all_three(bytes: &[u8]) {
        if let Ok(r) = otlp::ExportTraceServiceRequest::decode(bytes) {
            let _ = otlp::traces::spans(&r);
        }
        if let Ok(r) = otlp::ExportLogsServiceRequest::decode(bytes) {
            let _ = otlp::logs::documents(&r, now(), "nodejs-");
        }
        if let Ok(r) = otlp::ExportMetricsServiceRequest::decode(bytes) {
            let _ = otlp::metrics::points(&r, &mut Default::default(), 0);
        }
        if let Ok(r) = json::decode::<otlp::ExportTraceServiceRequest>(bytes) {
            let _ = otlp::traces::spans(&r);
        }
        if let Ok(r) = json::decode::<otlp::ExportLogsServiceRequest>(bytes) {
            let _ = otlp::logs::documents(&r, now(), "nodejs-");
        }
        if let Ok(r) = json::decode::<otlp::ExportMetricsServiceRequest>(bytes) {
            let _ = otlp::metrics::points(&r, &mut Default::default(), 0);
        }
    }

    fn span() -> impl Strategy<Value = Span> {
        (
            prop::collection::vec(any::<u8>(), 0..18),
            prop::collection::vec(any::<u8>(), 0..10),
            prop::collection::vec(any::<u8>(), 0..10),
            any::<u64>(),
            any::<u64>(),
            -1i32..7,
            "[ -~]{0,10}",
        )
            .prop_map(
                |(trace_id, span_id, parent_span_id, start, end, kind, name)| Span {
                    trace_id,
                    span_id,
                    parent_span_id,
                    start_time_unix_nano: start,
                    end_time_unix_nano: end,
                    kind,
                    attributes: vec![KeyValue {
                        key: name.clone(),
                        value: Some(AnyValue {
                            value: Some(any_value::Value::IntValue(start as i64)),
                        }),
                        ..KeyValue::default()
                    }],
                    name,
                    ..Span::default()
                },
            )
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn random_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..600)) {
            all_three(&body);
        }

        #[test]
        fn json_mutations_never_panic(
            id in "[0-9a-fA-F+/=z]{0,34}", t in "[0-9a-z\"-]{0,22}", kind in -3i64..9, v in "[ -~]{0,12}",
        ) {
            let body = format!(r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"{id}","spanId":"{id}","startTimeUnixNano":"{t}","kind":{kind},"attributes":[{{"key":"k","value":{{"stringValue":"{v}"}}}}]}}]}}]}}],
                "resourceLogs":[{{"scopeLogs":[{{"logRecords":[{{"timeUnixNano":"{t}","severityNumber":{kind},"body":{{"stringValue":"{v}"}},"traceId":"{id}"}}]}}]}}],
                "resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{{"name":"{v}","sum":{{"aggregationTemporality":{kind},"dataPoints":[{{"asInt":"{t}"}}]}}}}]}}]}}]}}"#);
            all_three(body.as_bytes());
        }

        #[test]
        fn every_span_is_kept_or_counted(spans in prop::collection::vec(span(), 0..12), service in "[a-zA-Z -]{0,8}") {
            let req = otlp::ExportTraceServiceRequest {
                resource_spans: vec![ResourceSpans {
                    resource: Some(Resource {
                        attributes: vec![KeyValue {
                            key: "service.name".into(),
                            value: Some(AnyValue { value: Some(any_value::Value::StringValue(service)) }),
                            ..KeyValue::default()
                        }],
                        ..Resource::default()
                    }),
                    scope_spans: vec![ScopeSpans { spans: spans.clone(), ..ScopeSpans::default() }],
                    ..ResourceSpans::default()
                }],
            };
            // Over the wire and back, as the hub receives it.
            let back = otlp::ExportTraceServiceRequest::decode(&req.encode_to_vec()[..]).unwrap();
            let (kept, rejected) = otlp::traces::spans(&back);
            prop_assert_eq!(kept.len() + rejected.count as usize, spans.len());
            for s in &kept {
                prop_assert!(s.trace_id.len() == 16 || s.trace_id.len() == 32);
                prop_assert_eq!(s.id.len(), 16);
                prop_assert!(s.duration.is_none_or(|d| d >= 1));
                // What the store keeps reads back through the Zipkin parser.
                let again = lab_hub::ingest::zipkin::parse_spans(format!("[{}]", s.to_json_string()).as_bytes());
                prop_assert!(again.is_ok(), "{:?}", again);
            }
        }
    }
}
