//! The hub's OTLP inputs against OpenTelemetry's own Python SDK and exporters (PyPI:
//! opentelemetry-sdk, -exporter-otlp-proto-http, -exporter-otlp-proto-grpc): what they send over
//! OTLP/HTTP and OTLP/gRPC comes out of the Zipkin API, log search, Graphite render and
//! `/metrics` (checked with promtool where it is installed); and OTLP/HTTP's answers to bad
//! requests, JSON with base64 ids, gzip.

use std::process::Command;

use lab_net::client::Client;
use serde_json::{Value, json};

use super::{config, eventually, get, python_has, require};

const PEER: &str = include_str!("otel_peer.py");

fn sdk_present() -> bool {
    require(
        "python3 with the OpenTelemetry SDK and OTLP exporters",
        python_has(
            "opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http, opentelemetry.exporter.otlp.proto.grpc",
        ),
        "pip install opentelemetry-sdk opentelemetry-exporter-otlp-proto-http opentelemetry-exporter-otlp-proto-grpc (scripts/install-deps)",
    )
}

fn peer(transport: &str, endpoint: &str, service: &str, run: &str) -> String {
    let out = Command::new("python3")
        .args(["-c", PEER, transport, endpoint, service, run])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "the OTel peer ({transport}) failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Everything one SDK run sent, read back through the hub's query APIs.
fn assert_arrived(hub: &lab_hub::Running, service: &str, run: &str, trace: &str) {
    let zipkin = |p: &str| format!("http://{}{p}", hub.addrs.zipkin);
    let spans = eventually("the SDK's trace in the Zipkin API", 10, || {
        let t = get(&zipkin(&format!("/api/v2/trace/{trace}")));
        (t.as_array()?.len() == 2).then_some(t)
    });
    let spans = spans.as_array().unwrap();
    let root = spans
        .iter()
        .find(|s| s["kind"] == "SERVER")
        .expect("the server span");
    let child = spans
        .iter()
        .find(|s| s["kind"] == "CLIENT")
        .expect("the client span");
    assert_eq!(root["name"], "get /recipes");
    assert_eq!(root["localEndpoint"]["serviceName"], service);
    assert_eq!(root["tags"]["run"], run);
    assert_eq!(child["parentId"], root["id"]);
    assert_eq!(child["remoteEndpoint"]["serviceName"], "recipe-api");
    assert_eq!(child["tags"]["error"], "upstream said no");
    assert!(child["duration"].as_i64().unwrap() >= 1);

    let q = urlencode(&format!("app:\"{service}\" and fields.run:\"{run}\""));
    let api = |p: &str| format!("http://{}{p}", hub.addrs.http);
    let doc = eventually("the SDK's log record in log search", 10, || {
        let r = get(&api(&format!("/api/logs?query={q}&since=1h")));
        r["hits"].as_array()?.first().map(|h| h["_source"].clone())
    });
    assert_eq!(doc["severity"], "warn", "{doc}");
    assert_eq!(doc["message"], "slow upstream");
    assert_eq!(doc["type"], "request-outgoing");
    assert_eq!(doc["environment"], "staging");
    assert_eq!(
        doc["fields"]["trace_id"], trace,
        "the record carries its span's trace: {doc}"
    );

    let target = format!("otel.{service}.orders.route._recipes");
    let points = eventually("the SDK's counter in Graphite render", 10, || {
        let r = get(&api(&format!(
            "/render?target={}&from=-10min&format=json",
            urlencode(&target)
        )));
        let pts = r.as_array()?.first()?["datapoints"].as_array()?.clone();
        pts.iter().any(|p| p[0] == 7.0).then_some(pts)
    });
    assert!(!points.is_empty());
    let count = get(&api(&format!(
        "/render?target={}&from=-10min&format=json",
        urlencode(&format!("otel.{service}.latency.count"))
    )));
    assert!(
        count[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p[0] == 3.0),
        "{count}"
    );
}

#[test]
fn the_otel_sdk_over_otlp_http_and_grpc_lands_in_every_api() {
    if !sdk_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let run = format!("{:x}", std::process::id());
    let http = format!("http://{}", hub.addrs.otlp_http);
    let trace = peer("http", &http, "otel-http", &run);
    assert_arrived(&hub, "otel-http", &run, &trace);
    let trace = peer("grpc", &hub.addrs.otlp_grpc.to_string(), "otel-grpc", &run);
    assert_arrived(&hub, "otel-grpc", &run, &trace);

    // /metrics carries both services' families, and promtool finds nothing to say.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let text = rt
        .block_on(Client::new().get(
            &format!("http://{}/metrics", hub.addrs.http),
            std::time::Duration::from_secs(5),
        ))
        .unwrap()
        .text();
    assert!(
        text.contains("otel_orders_total{service_name=\"otel-http\",route=\"/recipes\"} 7\n"),
        "{text}"
    );
    assert!(
        text.contains("otel_latency_count{service_name=\"otel-grpc\"} 3\n"),
        "{text}"
    );
    if let Some(verdict) = super::promtool_check(&text) {
        assert!(
            verdict.is_ok(),
            "promtool: {}\n---\n{text}",
            verdict.unwrap_err()
        );
    }
    hub.stop();
}

/// Bytes that are not an export request, sent by grpcio (the exporters' own transport) to each
/// `Export`: `INVALID_ARGUMENT` (tonic alone would say `INTERNAL`, which exporters retry).
const GRPC_BAD: &str = r#"
import sys, grpc
ch = grpc.insecure_channel(sys.argv[1])
for svc in ("trace", "logs", "metrics"):
    name = {"trace": "TraceService", "logs": "LogsService", "metrics": "MetricsService"}[svc]
    call = ch.unary_unary(f"/opentelemetry.proto.collector.{svc}.v1.{name}/Export")
    for comp in (grpc.Compression.NoCompression, grpc.Compression.Gzip):
        try:
            call(b"\xff\xff\xff", timeout=5, compression=comp)
            print(svc, "OK")
        except grpc.RpcError as e:
            print(svc, e.code().name)
"#;

#[test]
fn otlp_grpc_answers_undecodable_requests_invalid_argument() {
    if !sdk_present() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let out = Command::new("python3")
        .args(["-c", GRPC_BAD, &hub.addrs.otlp_grpc.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines = String::from_utf8_lossy(&out.stdout).into_owned();
    let want = "trace INVALID_ARGUMENT\ntrace INVALID_ARGUMENT\nlogs INVALID_ARGUMENT\n\
                logs INVALID_ARGUMENT\nmetrics INVALID_ARGUMENT\nmetrics INVALID_ARGUMENT\n";
    assert_eq!(lines, want);
    hub.stop();
}

fn post(
    url: &str,
    ctype: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> lab_net::client::Response {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(Client::new().request(
        hyper::Method::POST,
        url,
        headers,
        Some((ctype, body.into())),
        std::time::Duration::from_secs(5),
    ))
    .unwrap()
}

fn ctype(r: &lab_net::client::Response) -> &str {
    r.headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

#[test]
fn otlp_http_answers_json_gzip_and_bad_requests_as_the_spec_says() {
    use prost::Message as _;
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let url = format!("http://{}/v1/traces", hub.addrs.otlp_http);
    // JSON, gzip, ids in base64 (as a generic protobuf-JSON encoder writes them); one span bad.
    let body = json!({"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "json-svc"}}]},
        "scopeSpans": [{"spans": [
            {"traceId": "W47/95gDgQPSabYzgT/GDA==", "spanId": "7uGbfsPBsXQ=", "name": "ok", "kind": 2,
             "startTimeUnixNano": "1795000000000000000", "endTimeUnixNano": "1795000000002000000"},
            {"traceId": "", "spanId": "7uGbfsPBsXQ=", "name": "no trace"}]}]}]});
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, body.to_string().as_bytes()).unwrap();
    let r = post(
        &url,
        "application/json",
        &[("content-encoding", "gzip")],
        gz.finish().unwrap(),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(ctype(&r).starts_with("application/json"));
    let answer: Value = r.json().unwrap();
    // int64 as the crate writes it (a number; proto3 JSON also allows "1").
    let rejected = &answer["partialSuccess"]["rejectedSpans"];
    assert!(rejected == 1 || rejected == "1", "{answer}");
    assert!(
        answer["partialSuccess"]["errorMessage"]
            .as_str()
            .unwrap()
            .contains("span 1: traceId"),
        "{answer}"
    );
    let spans = eventually("the JSON span", 10, || {
        let t = get(&format!(
            "http://{}/api/v2/trace/5b8efff798038103d269b633813fc60c",
            hub.addrs.zipkin
        ));
        (t.as_array()?.len() == 1).then_some(t)
    });
    assert_eq!(spans[0]["localEndpoint"]["serviceName"], "json-svc");
    assert_eq!(spans[0]["duration"], 2000);

    // Bad data: 400 with a google.rpc.Status, in the request's content type.
    let r = post(
        &url,
        "application/x-protobuf",
        &[],
        b"\xff\xff\xff".to_vec(),
    );
    assert_eq!(r.status, 400);
    assert_eq!(ctype(&r), "application/x-protobuf");
    let st = lab_hub::api::otlp::http::RpcStatus::decode(r.body.clone()).unwrap();
    assert_eq!(st.code, 3, "INVALID_ARGUMENT");
    assert!(st.message.contains("protobuf"), "{}", st.message);
    let r = post(
        &url,
        "application/json",
        &[],
        b"{\"resourceSpans\": 3}".to_vec(),
    );
    assert_eq!(r.status, 400);
    let st: Value = r.json().unwrap();
    assert_eq!(st["code"], 3);
    // Every span bad: nothing to retry.
    let r = post(
        &url,
        "application/json",
        &[],
        br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"name":"x"}]}]}]}"#.to_vec(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // Another content type: 415; too large: 413; only POST.
    let r = post(&url, "text/plain", &[], b"hi".to_vec());
    assert_eq!(r.status, 415);
    let huge = vec![b' '; lab_hub::api::otlp::MAX_BODY + 1];
    let r = post(&url, "application/json", &[], huge);
    assert_eq!(r.status, 413);
    let r = get(&format!("http://{}/v1/logs", hub.addrs.otlp_http));
    assert!(r.is_null(), "GET is not an export: {r}");
    // What was refused is counted.
    let status = get(&format!("http://{}/api/status", hub.addrs.http));
    assert_eq!(
        status["counters"]["hub.dropped.otlp_requests"], 5,
        "{status}"
    );
    assert_eq!(status["counters"]["hub.dropped.otlp_items"], 2, "{status}");
    hub.stop();
}
