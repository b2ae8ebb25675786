//! What the hub takes in: Logstash datagrams, StatsD, carbon, Zipkin spans; bad input counted.

use super::util::*;
use serde_json::{Value, json};
use std::io::Write as _;
use std::net::UdpSocket;

#[test]
pub(super) fn logstash_datagrams_are_stored_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let day = yesterday();
    let doc = json!({"@timestamp": format!("{day}T10:00:00.000Z"), "@version": 1, "app": "web-api", "environment": "development",
        "severity": "error", "type": "request-failure", "fields": {"stack": "Error: Oh no\n    at x.js:1", "path": "/error", "method": "GET"}, "host": "box"});
    udp.send_to(doc.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();
    udp.send_to(b"{not json", hub.addrs.logs).unwrap();
    let other = json!({"@timestamp": format!("{day}T10:00:01.000Z"), "app": "recipe-api", "severity": "info", "type": "listen"});
    udp.send_to(other.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();

    let q = |query: &str| {
        let url = format!(
            "{}?query={}&from={day}T00:00:00Z&until=now",
            api(&hub, "/api/logs"),
            urlencode(query)
        );
        get(&url).json().unwrap()
    };
    let v = eventually("three stored documents", || {
        let v = q("");
        (v["total"] == 3).then_some(v)
    });
    assert_eq!(v["hits"].as_array().unwrap().len(), 3);
    let v = q("app:web-api AND severity:error");
    assert_eq!(v["total"], 1, "{v:#}");
    let hit = &v["hits"][0];
    assert_eq!(hit["_index"], format!("nodejs-{}", day.replace('-', ".")));
    assert_eq!(hit["_source"]["host"], "box", "host is kept as sent");
    assert_eq!(hit["_meta"]["source_ip"], "127.0.0.1");
    assert_eq!(q("fields.stack:\"oh no\"")["total"], 1);
    assert_eq!(
        q("tags:_jsonparsefailure")["hits"][0]["_source"]["message"],
        "{not json"
    );
    assert_eq!(q("not app:web-api")["total"], 2);
    // A bad query is a 400 naming the column.
    let r = get(&format!(
        "{}?query={}",
        api(&hub, "/api/logs"),
        urlencode("app:(x")
    ));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("column"), "{}", r.text());

    // Durable: a new hub on the same directory still has them.
    hub.stop();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let v = get(&format!(
        "{}?query=app:recipe-api&from=0",
        api(&hub, "/api/logs")
    ))
    .json()
    .unwrap();
    assert_eq!(v["total"], 1);
    hub.stop();
}

#[test]
pub(super) fn statsd_is_aggregated_into_graphite_names_and_served() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(
        b"web-api.inbound.response_code.200:1|c\nweb-api.inbound.response_code.200:1|c",
        hub.addrs.statsd,
    )
    .unwrap();
    udp.send_to(
        b"web-api.outbound.recipe-api.request-time:12|ms\nweb-api.server.conn:3|g\nbroken line",
        hub.addrs.statsd,
    )
    .unwrap();
    eventually("both datagrams aggregated", || {
        let s: Value = get(&api(&hub, "/api/status")).json().unwrap();
        (s["counters"]["hub.received.statsd_datagrams"] == 2
            && s["counters"]["hub.dropped.statsd"] == 1)
            .then_some(())
    });
    // Wait for the aggregator thread to have taken both (its counter moves after it reads).
    eventually("aggregated", || {
        let m = get(&api(&hub, "/metrics")).text();
        m.contains("statsd_last_value{name=\"web-api.server.conn\"} 3")
            .then_some(())
    });
    hub.flush_now();
    let render = |target: &str| -> Value {
        get(&format!(
            "{}?target={}&from=-1min&format=json",
            api(&hub, "/render"),
            urlencode(target)
        ))
        .json()
        .unwrap()
    };
    let last = |v: &Value| {
        v[0]["datapoints"]
            .as_array()
            .unwrap()
            .iter()
            .rev()
            .find_map(|p| p[0].as_f64())
    };
    let v = render("stats_counts.web-api.inbound.response_code.200");
    assert_eq!(last(&v), Some(2.0), "{v}");
    assert_eq!(
        v[0]["tags"]["name"],
        "stats_counts.web-api.inbound.response_code.200"
    );
    let v = render("aliasByNode(stats.timers.web-api.outbound.*.request-time.upper_90, 4)");
    assert_eq!(v[0]["target"], "recipe-api");
    assert_eq!(last(&v), Some(12.0));
    assert_eq!(last(&render("stats.gauges.web-api.server.conn")), Some(3.0));
    assert_eq!(
        last(&render("stats_counts.statsd.bad_lines_seen")),
        Some(1.0)
    );
    // Grafana's "Save & test": a form POST of constantLine.
    let r = post(
        &api(&hub, "/render"),
        &[],
        "application/x-www-form-urlencoded",
        b"target=constantLine(100)&from=-1h&until=now&format=json".to_vec(),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json().unwrap()[0]["datapoints"][0][0], 100.0);
    // Unknown function: 400 naming it.
    let r = get(&format!("{}?target=nope(a.b)", api(&hub, "/render")));
    assert_eq!(r.status, 400);
    assert!(r.text().contains("nope"));
    // find, with and without the trailing slash, GET and POST.
    let f: Value = get(&format!(
        "{}?query=stats_counts.web-api.inbound.response_code.*",
        api(&hub, "/metrics/find")
    ))
    .json()
    .unwrap();
    assert_eq!(f[0]["id"], "stats_counts.web-api.inbound.response_code.200");
    assert_eq!(f[0]["leaf"], 1);
    let f: Value = post(
        &api(&hub, "/metrics/find/"),
        &[],
        "application/x-www-form-urlencoded",
        b"query=stats_counts.*&format=completer".to_vec(),
    )
    .json()
    .unwrap();
    assert!(
        f["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["path"] == "stats_counts.web-api."),
        "{f}"
    );
    // Prometheus: content type, counters since start, timers as summaries.
    let r = get(&api(&hub, "/metrics"));
    assert_eq!(
        r.headers["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = r.text();
    assert!(
        text.contains("statsd_count_total{name=\"web-api.inbound.response_code.200\"} 2\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "statsd_timer_seconds_count{name=\"web-api.outbound.recipe-api.request-time\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains("hub_dropped_total{what=\"statsd\"} 1\n"),
        "{text}"
    );
    assert!(text.ends_with('\n'));
    hub.stop();
}

#[test]
pub(super) fn carbon_plaintext_lands_as_points() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let mut s = std::net::TcpStream::connect(hub.addrs.carbon.unwrap()).unwrap();
    write!(
        s,
        "from.carbon.a 41 {now}\nfrom.carbon.a 42 {now}\nbad line\n"
    )
    .unwrap();
    // A line that is not UTF-8, and one past the length limit: skipped and counted; the
    // lines after them still land.
    s.write_all(b"from.carbon.\xff\xfe 1 1\n").unwrap();
    s.write_all(&vec![b'x'; 100_000]).unwrap();
    write!(s, "\nfrom.carbon.b 7 {now}\n").unwrap();
    drop(s);
    eventually("the line after the bad ones", || {
        let v: Value = get(&format!(
            "{}?target=from.carbon.b&from=-1min",
            api(&hub, "/render")
        ))
        .json()
        .unwrap();
        v[0]["datapoints"]
            .as_array()?
            .iter()
            .find_map(|p| p[0].as_f64())
            .filter(|x| *x == 7.0)
    });
    let status: Value = get(&api(&hub, "/api/status")).json().unwrap();
    assert_eq!(
        status["counters"]["hub.dropped.carbon"], 3,
        "the bad line, the non-UTF-8 one and the long one: {status}"
    );
    let v = eventually("the carbon point", || {
        let v: Value = get(&format!(
            "{}?target=from.carbon.a&from=-1min",
            api(&hub, "/render")
        ))
        .json()
        .unwrap();
        v[0]["datapoints"]
            .as_array()?
            .iter()
            .rev()
            .find_map(|p| p[0].as_f64())
    });
    assert_eq!(v, 42.0, "last write in a bucket wins");
    hub.stop();
}

#[test]
pub(super) fn zipkin_collects_and_answers_queries() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let z = |path: &str| format!("http://{}{path}", hub.addrs.zipkin);
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let trace = "463ac35c9f6413ad";
    let spans = json!([
        {"traceId": trace, "id": "0000000000000001", "kind": "SERVER", "name": "get /", "timestamp": now_us, "duration": 3000,
         "localEndpoint": {"serviceName": "web-api", "port": "3000"}},
        {"traceId": trace, "id": "0000000000000002", "parentId": "0000000000000001", "kind": "CLIENT", "name": "get_recipe",
         "timestamp": now_us + 100, "duration": 2000, "localEndpoint": {"serviceName": "web-api"}, "remoteEndpoint": {"serviceName": "recipe-api"}},
    ]);
    let r = post(
        &z("/api/v2/spans"),
        &[],
        "application/json",
        spans.to_string().into_bytes(),
    );
    assert_eq!(r.status, 202);
    assert!(r.body.is_empty());
    assert_eq!(r.headers["access-control-allow-origin"], "*");
    // The child service's span, gzipped.
    let child = json!([{"traceId": trace, "id": "0000000000000003", "parentId": "0000000000000002", "kind": "SERVER", "name": "get_recipe",
        "timestamp": now_us + 200, "duration": 1500, "localEndpoint": {"serviceName": "recipe-api"}, "tags": {"http.path": "/recipes/42"}}]);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(child.to_string().as_bytes()).unwrap();
    let r = post(
        &z("/api/v2/spans"),
        &[("content-encoding", "gzip")],
        "application/json",
        gz.finish().unwrap(),
    );
    assert_eq!(r.status, 202);
    // Invalid: 400, counted.
    let r = post(
        &z("/api/v2/spans"),
        &[],
        "application/json",
        b"[{\"id\":\"1\"}]".to_vec(),
    );
    assert_eq!(r.status, 400);

    let t = eventually("the whole trace", || {
        let r = get(&z(&format!("/api/v2/trace/{trace}")));
        let v = r.json().ok()?;
        (v.as_array()?.len() == 3).then_some(v)
    });
    assert_eq!(t[2]["localEndpoint"]["serviceName"], "recipe-api");
    assert_eq!(
        get(&z("/api/v2/services")).json().unwrap(),
        json!(["recipe-api", "web-api"])
    );
    assert_eq!(
        get(&z("/api/v2/spans?serviceName=web-api")).json().unwrap(),
        json!(["get /", "get_recipe"])
    );
    assert_eq!(
        get(&z("/api/v2/remoteServices?serviceName=web-api"))
            .json()
            .unwrap(),
        json!(["recipe-api"])
    );
    let traces = get(&z(
        "/api/v2/traces?serviceName=recipe-api&annotationQuery=http.path%3D%2Frecipes%2F42",
    ))
    .json()
    .unwrap();
    assert_eq!(traces.as_array().unwrap().len(), 1);
    assert_eq!(traces[0].as_array().unwrap().len(), 3);
    assert_eq!(
        get(&z("/api/v2/traces?minDuration=999999")).json().unwrap(),
        json!([])
    );
    assert_eq!(
        get(&z("/api/v2/dependencies?lookback=3600000"))
            .json()
            .unwrap(),
        json!([{"parent": "web-api", "child": "recipe-api", "callCount": 1}])
    );
    let r = get(&z("/api/v2/trace/00000000000000ff"));
    assert_eq!(r.status, 404);
    let s: Value = get(&api(&hub, "/api/status")).json().unwrap();
    assert_eq!(s["counters"]["hub.received.spans"], 3);
    assert_eq!(s["counters"]["hub.dropped.spans"], 1);
    hub.stop();
}

#[test]
pub(super) fn bad_and_huge_input_is_counted_and_ingestion_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The largest loopback datagram, of garbage, to both UDP inputs; then a valid one each.
    let huge = vec![b'{'; 65_000];
    udp.send_to(&huge, hub.addrs.logs).unwrap();
    udp.send_to(&huge, hub.addrs.statsd).unwrap();
    udp.send_to(b"\xff\xfe:1|c\nok.after:1|c", hub.addrs.statsd)
        .unwrap();
    udp.send_to(
        format!(
            r#"{{"app":"after","@timestamp":"{}T00:00:00Z"}}"#,
            yesterday()
        )
        .as_bytes(),
        hub.addrs.logs,
    )
    .unwrap();
    let s = eventually("everything counted", || {
        let s: Value = get(&api(&hub, "/api/status")).json().unwrap();
        (s["counters"]["hub.received.log_documents"] == 2
            && s["counters"]["hub.received.statsd_datagrams"] == 2)
            .then_some(s)
    });
    assert_eq!(s["counters"]["hub.dropped.log_json"], 1, "{s:#}");
    eventually("the bad StatsD lines counted", || {
        let s: Value = get(&api(&hub, "/api/status")).json().unwrap();
        (s["counters"]["hub.dropped.statsd"].as_u64() >= Some(2)).then_some(())
    });
    // Received is counted before the store's writer commits: wait for the document itself.
    eventually("the valid document after the garbage", || {
        let v: Value = get(&format!(
            "{}?query=app:after&from=0",
            api(&hub, "/api/logs")
        ))
        .json()
        .unwrap();
        (v["total"] == 1).then_some(())
    });
    let m = eventually("the valid metric after the garbage", || {
        let m = get(&api(&hub, "/metrics")).text();
        m.contains("statsd_count_total{name=\"ok.after\"} 1")
            .then_some(m)
    });
    assert!(m.contains("hub_dropped_total{what=\"log_json\"} 1"), "{m}");
    hub.stop();
}

/// Zipkin's edges: fields of the wrong type are a 400 naming the span and field; the body limit
/// the hub states is the one it enforces (3 MB is taken; past 16 MiB, 413 naming the limit).
#[test]
pub(super) fn zipkin_rejects_mistyped_spans_and_enforces_its_stated_body_limit() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let url = format!("http://{}/api/v2/spans", hub.addrs.zipkin);
    for (span, says) in [
        (
            json!({"traceId": "1", "id": "1", "duration": "long"}),
            "duration must be a number",
        ),
        (
            json!({"traceId": "1", "id": "1", "tags": [1, 2]}),
            "tags must be an object",
        ),
        (
            json!({"traceId": "1", "id": "1", "annotations": "x"}),
            "annotations must be an array",
        ),
    ] {
        let r = post(
            &url,
            &[],
            "application/json",
            json!([span]).to_string().into_bytes(),
        );
        assert_eq!(r.status, 400, "{span}");
        assert!(r.text().contains(says), "{}", r.text());
    }
    // About 3 MB of spans: under the limit, taken.
    let big: Vec<Value> = (0..12_000)
        .map(|i| json!({"traceId": format!("{:016x}", i + 1), "id": "1", "name": "x".repeat(200)}))
        .collect();
    let body = serde_json::to_vec(&big).unwrap();
    assert!(body.len() > 3_000_000, "{}", body.len());
    let r = post(&url, &[], "application/json", body);
    assert_eq!(r.status, 202, "{}", r.text());
    let r = post(&url, &[], "application/json", vec![b' '; 17 << 20]);
    assert_eq!(r.status, 413);
    assert!(r.text().contains("at most 16 MiB"), "{}", r.text());
}
