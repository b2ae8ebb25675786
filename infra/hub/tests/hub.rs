//! The hub in-process on ephemeral ports, driven over its real sockets: UDP logs and StatsD,
//! Zipkin over HTTP, carbon over TCP, and the query APIs read back.

use std::io::Write as _;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use lab_hub::{HubConfig, Running};
use lab_service_kit::client::{Client, Response};
use serde_json::{Value, json};

fn config(dir: &std::path::Path) -> HubConfig {
    HubConfig {
        data_dir: dir.to_owned(),
        logs_port: 0,
        statsd_port: 0,
        zipkin_port: 0,
        http_port: 0,
        carbon_port: Some(0),
        flush_interval_ms: 1000,
        ..HubConfig::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

fn get(url: &str) -> Response {
    rt().block_on(Client::new().get(url, Duration::from_secs(5)))
        .unwrap()
}

fn post(url: &str, headers: &[(&str, &str)], ctype: &str, body: Vec<u8>) -> Response {
    rt().block_on(Client::new().request(
        hyper::Method::POST,
        url,
        headers,
        Some((ctype, body.into())),
        Duration::from_secs(5),
    ))
    .unwrap()
}

/// Poll until `f` returns Some, or fail after a deadline (no sleeping for readiness).
fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn api(hub: &Running, path: &str) -> String {
    format!("http://{}{path}", hub.addrs.http)
}

#[test]
fn logstash_datagrams_are_stored_and_searchable() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let doc = json!({"@timestamp": "2026-11-25T10:00:00.000Z", "@version": 1, "app": "web-api", "environment": "development",
        "severity": "error", "type": "request-failure", "fields": {"stack": "Error: Oh no\n    at x.js:1", "path": "/error", "method": "GET"}, "host": "box"});
    udp.send_to(doc.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();
    udp.send_to(b"{not json", hub.addrs.logs).unwrap();
    let other = json!({"@timestamp": "2026-11-25T10:00:01.000Z", "app": "recipe-api", "severity": "info", "type": "listen"});
    udp.send_to(other.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();

    let q = |query: &str| {
        let url = format!(
            "{}?query={}&from=2026-11-25T00:00:00Z&until=now",
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
    assert_eq!(hit["_index"], "nodejs-2026.11.25");
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

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

#[test]
fn statsd_is_aggregated_into_graphite_names_and_served() {
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
fn carbon_plaintext_lands_as_points() {
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
fn zipkin_collects_and_answers_queries() {
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
fn a_taken_port_fails_the_whole_start() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let cfg = HubConfig {
        http_port: taken.local_addr().unwrap().port(),
        ..config(dir.path())
    };
    let err = lab_hub::start(cfg).err().expect("must fail");
    let msg = err.to_string();
    assert!(
        msg.contains("HTTP API") && msg.contains(&taken.local_addr().unwrap().to_string()),
        "{msg}"
    );
}

#[test]
fn bad_and_huge_input_is_counted_and_ingestion_goes_on() {
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
        br#"{"app":"after","@timestamp":"2026-11-25T00:00:00Z"}"#,
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

#[test]
fn a_firing_rule_posts_to_the_webhook() {
    // The webhook: a listener of this test that records each POST body.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", hook.local_addr().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<String>();
    std::thread::spawn(move || {
        use std::io::{BufRead, BufReader, Read};
        for conn in hook.incoming() {
            let Ok(mut conn) = conn else { return };
            let mut reader = BufReader::new(conn.try_clone().unwrap());
            let mut len = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut body = vec![0; len];
            reader.read_exact(&mut body).unwrap();
            conn.write_all(
                b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            )
            .unwrap();
            let _ = tx.send(String::from_utf8(body).unwrap());
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = HubConfig {
        alert_interval_ms: 100,
        alert_webhook: Some(url),
        ..config(dir.path())
    };
    let hub = lab_hub::start(cfg).unwrap();
    // A rule that fails at once (constantLine(100) > 50), added over the API.
    let rule = json!({"name": "always", "kind": "metric", "target": "constantLine(100)", "check": ">", "value": 50, "window_s": 60, "importance": "WARNING"});
    let r = post(
        &api(&hub, "/api/alerts"),
        &[],
        "application/json",
        rule.to_string().into_bytes(),
    );
    assert_eq!(r.status, 201);
    let fired: Value = serde_json::from_str(
        &rx.recv_timeout(Duration::from_secs(10))
            .expect("a webhook call"),
    )
    .unwrap();
    assert_eq!(fired["rule"], "always");
    assert_eq!(fired["state"], "FIRING");
    assert_eq!(fired["importance"], "WARNING");
    let list: Value = get(&api(&hub, "/api/alerts")).json().unwrap();
    assert_eq!(list[0]["status"], "firing");
    // The alerts page keeps the firing in its history.
    let page = eventually("the firing in the alerts page's history", || {
        let t = get(&api(&hub, "/alerts")).text();
        t.contains("1 firing and resolved event(s)").then_some(t)
    });
    assert!(
        page.contains("<td>always</td><td class=\"firing\">FIRING</td><td>WARNING</td>"),
        "{page}"
    );
    // A rule of lab.toml cannot be replaced over the API; a run-time one can be removed.
    let r = rt()
        .block_on(Client::new().request(
            hyper::Method::DELETE,
            &api(&hub, "/api/alerts/always"),
            &[],
            None,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(r.status, 204);
    let list: Value = get(&api(&hub, "/api/alerts")).json().unwrap();
    assert_eq!(list, json!([]));
    hub.stop();
}

#[test]
fn the_dashboard_pages_render_and_escape_what_services_send() {
    let dir = tempfile::tempdir().unwrap();
    let mut c = config(dir.path());
    c.health_targets = vec![lab_hub::HealthTarget {
        service: "<script>svc</script>".into(),
        instance: 1,
        url: "http://127.0.0.1:9/health".into(),
        ca: None,
    }];
    // The supervisor's state names the polled instance's process, and one more the hub does
    // not poll (a TCP-checked proxy): both are on the overview, with their restarts.
    let state = dir.path().join("state.json");
    std::fs::write(
        &state,
        json!({"name": "t-lab", "instances": [
            {"service": "proxy", "instance": 1, "address": "127.0.0.1:3000",
             "process": {"pid": 4242, "start_time": 1}, "health": "healthy", "restarts": 3,
             "last_exit": "killed by signal 9"},
            {"service": "<script>svc</script>", "instance": 1, "address": "127.0.0.1:9",
             "process": null, "container": "0123456789abcdef0123", "health": "starting", "restarts": 0}
        ]})
        .to_string(),
    )
    .unwrap();
    c.state_file = Some(state);
    let hub = lab_hub::start(c).unwrap();
    let overview = get(&api(&hub, "/"));
    assert_eq!(overview.status, 200);
    let html = overview.text();
    assert!(html.contains("&lt;script&gt;svc&lt;/script&gt;"), "{html}");
    assert!(
        !html.contains("<script>svc"),
        "a service name became markup: {html}"
    );
    assert!(html.contains("<h1>Overview of t-lab</h1>"), "{html}");
    assert!(
        html.contains("The hub&#39;s store:") && html.contains("of 1073.7 MB, keeping 168 h"),
        "the store's bounds on the overview: {html}"
    );
    assert!(html.contains("<td>127.0.0.1:9</td>"), "{html}");
    assert!(
        html.contains("<td class=\"process\">pid 4242</td>"),
        "{html}"
    );
    assert!(html.contains("<td class=\"restarts\">3</td>"), "{html}");
    assert!(
        html.contains("<td class=\"process\">ctr 0123456789ab</td>"),
        "{html}"
    );
    let o: Value = get(&api(&hub, "/api/overview")).json().unwrap();
    let keys: Vec<&str> = o["instances"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["proxy#1", "<script>svc</script>#1"], "{o}");
    assert_eq!(
        o["instances"][0]["data"]["health"],
        Value::Null,
        "not polled: {o}"
    );
    assert_eq!(o["instances"][1]["data"]["health"], "PENDING", "{o}");
    assert!(
        !html.contains("src=\"http") && !html.contains("href=\"http"),
        "nothing is fetched from elsewhere: {html}"
    );

    // A log line carrying markup is shown as text on the logs page.
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let now = time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let doc = json!({"@timestamp": now, "app": "web-api", "severity": "error",
        "type": "request-failure", "message": "<script>alert('log')</script>"});
    udp.send_to(doc.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();
    let html = eventually("the document on the logs page", || {
        let r = get(&format!(
            "{}?query={}&since=1h",
            api(&hub, "/logs"),
            urlencode("app:web-api")
        ));
        let t = r.text();
        (r.status == 200 && t.contains("1 match")).then_some(t)
    });
    assert!(
        html.contains("&lt;script&gt;alert(&#39;log&#39;)&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert"), "a log line became markup");
    assert!(
        html.contains("class=\"sev-error\""),
        "severity colour: {html}"
    );
    // A bad query is told on the page, escaped.
    let bad = get(&format!(
        "{}?query={}",
        api(&hub, "/logs"),
        urlencode("app:(<b>")
    ));
    assert_eq!(bad.status, 200);
    assert!(bad.text().contains("class=\"DOWN\""), "{}", bad.text());
    assert!(!bad.text().contains("(<b>"), "{}", bad.text());
    let alerts = get(&api(&hub, "/alerts"));
    assert_eq!(alerts.status, 200);
    assert!(alerts.text().contains("0 rule(s)"), "{}", alerts.text());
    hub.stop();
}

#[test]
fn a_trace_opens_as_a_waterfall_with_escaped_names() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let now_us = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    let trace = "5af7183fb1d4cf5f";
    let spans = json!([
        {"traceId": trace, "id": "0000000000000001", "kind": "SERVER", "name": "get /", "timestamp": now_us, "duration": 4000,
         "localEndpoint": {"serviceName": "web-api"}},
        {"traceId": trace, "id": "0000000000000002", "parentId": "0000000000000001", "kind": "CLIENT",
         "name": "<script>span</script>", "timestamp": now_us + 500, "duration": 2000,
         "localEndpoint": {"serviceName": "web-api"}, "tags": {"http.path": "<i>/recipes/42</i>"}},
        {"traceId": trace, "id": "0000000000000003", "parentId": "0000000000000002", "kind": "SERVER", "name": "get_recipe",
         "timestamp": now_us + 1000, "duration": 1000, "localEndpoint": {"serviceName": "recipe-api"}},
    ]);
    let r = post(
        &format!("http://{}/api/v2/spans", hub.addrs.zipkin),
        &[],
        "application/json",
        spans.to_string().into_bytes(),
    );
    assert_eq!(r.status, 202);
    let list = eventually("the trace in the list", || {
        let t = get(&api(&hub, "/traces?service=recipe-api")).text();
        t.contains(trace).then_some(t)
    });
    assert!(
        list.contains("4.000 ms"),
        "duration of the whole trace: {list}"
    );
    assert!(list.contains("recipe-api, web-api"), "{list}");
    // Filtered out by a minimum duration above it.
    let none = get(&api(&hub, "/traces?min_ms=10")).text();
    assert!(none.contains("0 trace(s)"), "{none}");

    let page = get(&api(&hub, &format!("/traces/{trace}")));
    assert_eq!(page.status, 200);
    let html = page.text();
    assert_eq!(html.matches("<tr class=\"span\">").count(), 3, "{html}");
    // Parent, then child, then grandchild, indented by depth, bars placed by time.
    let at = |s: &str| html.find(s).unwrap_or_else(|| panic!("{s} in {html}"));
    assert!(at("get /") < at("&lt;script&gt;span") && at("&lt;script&gt;span") < at("get_recipe"));
    assert!(
        html.contains("padding-left:42px"),
        "depth 2 indented: {html}"
    );
    assert!(html.contains("left:25.00%;width:25.00%"), "{html}");
    assert!(
        !html.contains("<script>span") && !html.contains("<i>/recipes"),
        "{html}"
    );
    assert!(
        html.contains("/logs?query=fields.trace_id%3A5af7183fb1d4cf5f"),
        "{html}"
    );
    assert_eq!(get(&api(&hub, "/traces/0000000000000bad")).status, 404);
    hub.stop();
}

#[test]
fn load_results_are_kept_listed_and_compared_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let empty = get(&api(&hub, "/load")).text();
    assert!(empty.contains("No run kept yet"), "{empty}");
    let run = |url: &str, p99: f64, ok: bool| {
        json!({
            "report": {"url": url, "connections": 2, "duration": 2.0, "start": "1795645690.0",
                       "finish": "1795645692.0", "errors": 0, "timeouts": 0, "non2xx": 0,
                       "requests": {"average": 500.0, "total": 1000},
                       "latency": {"p50": 1.5, "p99": p99, "max": p99 * 2.0}},
            "sla": [{"bound": "p99<5ms", "measured": format!("{p99} ms"), "ok": ok}],
            "per_second": [500, 500, 3],
            "percentiles": [[0.0, 1.0], [1.0, 1.4], [2.0, p99]],
        })
        .to_string()
        .into_bytes()
    };
    let mut ids = Vec::new();
    for (url, p99, ok) in [
        ("http://127.0.0.1:1/<script>x</script>", 4.0, true),
        ("http://127.0.0.1:2/", 9.0, false),
    ] {
        let r = post(
            &api(&hub, "/api/loads"),
            &[],
            "application/json",
            run(url, p99, ok),
        );
        assert_eq!(r.status, 201, "{}", r.text());
        ids.push(r.json().unwrap()["id"].as_i64().unwrap());
    }
    // Not a result: refused, nothing kept.
    let bad = post(
        &api(&hub, "/api/loads"),
        &[],
        "application/json",
        b"{\"x\":1}".to_vec(),
    );
    assert_eq!(bad.status, 400);
    let list: Value = get(&api(&hub, "/api/loads")).json().unwrap();
    assert_eq!(list.as_array().unwrap().len(), 2, "{list}");
    assert_eq!(list[0]["id"], ids[1], "newest first");

    let html = get(&api(&hub, &format!("/load?run={}&run={}", ids[0], ids[1]))).text();
    assert!(
        !html.contains("<script>x"),
        "a target became markup: {html}"
    );
    assert!(html.contains("&lt;script&gt;x&lt;/script&gt;"), "{html}");
    assert_eq!(html.matches("<th>run #").count(), 2, "side by side: {html}");
    // Two charts (latency by percentile, answers per second), a line per run in each.
    assert_eq!(html.matches("<path class=\"line\"").count(), 4, "{html}");
    assert!(
        html.contains("<td class=\"DOWN\">FAIL p99&lt;5ms (measured 9 ms)</td>"),
        "{html}"
    );
    assert!(
        html.contains("2026-11-25 22:28:10 UTC"),
        "start as a time: {html}"
    );
    let missing = get(&api(&hub, "/load?run=999")).text();
    assert!(missing.contains("no run #999"), "{missing}");
    hub.stop();
}

#[test]
fn the_metrics_page_charts_a_service_from_its_statsd_counters() {
    let dir = tempfile::tempdir().unwrap();
    // Flushed every second, one point a second: the page's totals are rate × step.
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let lines = "web-api.inbound.response_code.200:8|c\nweb-api.inbound.response_code.500:2|c\n\
                 web-api.inbound.response_code.GET_root.200:8|c\nweb-api.inbound.response_time.GET_root:12|ms\n\
                 <b>odd.series:1|c";
    udp.send_to(lines.as_bytes(), hub.addrs.statsd).unwrap();
    let html = eventually("web-api on the metrics page", || {
        let t = get(&api(&hub, "/graphs?minutes=5")).text();
        t.contains("10 request(s), 2 answered 5xx (20.00%)")
            .then_some(t)
    });
    assert!(html.contains("data-service=\"web-api\""), "{html}");
    assert!(
        html.matches("<path class=\"line\"").count() >= 3,
        "rates and latency drawn: {html}"
    );
    assert!(
        !html.contains("<b>odd"),
        "a series name became markup: {html}"
    );
    // The searchable list: a search narrows it, a pick charts the series.
    let found = get(&api(&hub, &format!("/graphs?q={}", urlencode("odd")))).text();
    // (StatsD keys are sanitised as etsy's are: `<b>odd` is stored as `bodd`.)
    assert!(found.contains("stats.bodd.series"), "{found}");
    assert!(found.contains(" series match"), "{found}");
    let picked = get(&api(
        &hub,
        &format!(
            "/graphs?series={}",
            urlencode("stats_counts.web-api.inbound.response_code.500")
        ),
    ))
    .text();
    assert!(picked.contains("<h2>Picked series</h2>"), "{picked}");
    hub.stop();
}

/// Each repro of issue 15's hostile requests: a 4xx naming the limit (never a panic's text),
/// and afterwards the hub still answers and still has what it stored before.
#[test]
fn hostile_queries_are_refused_and_the_hub_keeps_answering_with_its_data() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    udp.send_to(b"x.counter:1|c", hub.addrs.statsd).unwrap();
    let doc = json!({"app": "web-api", "type": "marker", "severity": "info"});
    udp.send_to(doc.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();
    let stored = || {
        let v = get(&format!(
            "{}?query={}&since=1h",
            api(&hub, "/api/logs"),
            urlencode("type:marker")
        ))
        .json()
        .unwrap();
        v["total"] == 1
    };
    eventually("the marker stored", || stored().then_some(()));
    eventually("the counter flushed", || {
        let r = get(&api(
            &hub,
            "/render?target=stats_counts.x.counter&from=-5min&format=json",
        ));
        r.text().contains("stats_counts.x.counter").then_some(())
    });

    let deep_target = format!(
        "{}stats_counts.x.counter{}",
        "sumSeries(".repeat(3000),
        ")".repeat(3000)
    );
    let deep_kql = format!("{}a:b{}", "(".repeat(2000), ")".repeat(2000));
    let many: String = (0..1000).map(|_| "target=x&").collect();
    let cases: Vec<(String, &str)> = vec![
        (
            format!(
                "/render?target={}&from=-100y",
                urlencode("summarize(stats_counts.x.counter,\"1s\")")
            ),
            "at most",
        ),
        (
            "/render?target=stats_counts.x.counter&from=-1y".into(),
            "at most 100000",
        ),
        (
            "/render?target=stats_counts.x.counter&from=-1000000d".into(),
            "at most 100000",
        ),
        (
            "/render?target=stats_counts.x.counter&from=-99999999999y".into(),
            "at most 100000",
        ),
        (
            format!("/render?target={}", urlencode(&deep_target)),
            "deeper than 32",
        ),
        (format!("/render?{many}"), "at most 100"),
        (
            format!("/api/logs?query={}", urlencode(&deep_kql)),
            "deeper than 32",
        ),
    ];
    for (path, says) in &cases {
        let r = get(&api(&hub, path));
        let text = r.text();
        assert!(
            r.status.is_client_error(),
            "{}: {} {text}",
            &path[..path.len().min(80)],
            r.status
        );
        assert!(
            text.contains(says),
            "{}: {text}",
            &path[..path.len().min(80)]
        );
        assert!(!text.contains("panicked"), "{text}");
    }
    // Wide whitespace in a target is whitespace: an answer, not a char-boundary panic.
    for t in [
        "sumSeries(\u{3000}stats_counts.x.counter\u{3000})",
        "stats_counts\u{3000}",
    ] {
        let r = get(&api(
            &hub,
            &format!("/render?target={}&from=-5min", urlencode(t)),
        ));
        assert!(
            !r.status.is_server_error(),
            "{t}: {} {}",
            r.status,
            r.text()
        );
    }
    // A rule with a target the hub cannot evaluate is refused at once.
    let rule = json!({"name": "deep", "kind": "metric", "target": deep_target, "check": ">", "value": 1, "window_s": 60});
    let r = post(
        &api(&hub, "/api/alerts"),
        &[],
        "application/json",
        rule.to_string().into_bytes(),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    // A large answer streams (chunked) and reads back whole: two series of ~97k points.
    udp.send_to(b"y.counter:1|c", hub.addrs.statsd).unwrap();
    eventually("the second counter flushed", || {
        let r = get(&api(
            &hub,
            "/render?target=stats_counts.y.counter&from=-5min&format=json",
        ));
        r.text().contains("stats_counts.y.counter").then_some(())
    });
    let r = get(&api(
        &hub,
        "/render?target=stats_counts.*.counter&from=-27h&format=json",
    ));
    assert_eq!(r.status, 200);
    assert!(r.headers.get("content-length").is_none(), "streamed");
    let v: Value = r.json().unwrap();
    assert_eq!(v.as_array().unwrap().len(), 2, "{}", &r.text()[..200]);
    assert!(v[0]["datapoints"].as_array().unwrap().len() > 90_000);
    let raw = get(&api(
        &hub,
        "/render?target=stats_counts.*.counter&from=-27h&format=raw",
    ))
    .text();
    assert_eq!(raw.lines().count(), 2);
    // Still up, nothing lost.
    assert!(stored());
    let r = get(&api(
        &hub,
        "/render?target=stats_counts.x.counter&from=-5min&format=json",
    ));
    assert_eq!(r.status, 200);
}

/// A web page cannot drive the hub: foreign `Host` (DNS rebinding), foreign `Origin`, or a
/// body that is not JSON on a state-changing route are refused; lab's own clients still work.
#[test]
fn a_web_page_cannot_drive_the_hub() {
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let rule = json!({"name": "r", "kind": "metric", "target": "x.y", "check": ">", "value": 1, "window_s": 60});
    let body = || rule.to_string().into_bytes();
    let url = api(&hub, "/api/alerts");
    let evil = [("origin", "http://evil.example"), ("host", "evil.example")];
    assert_eq!(post(&url, &evil, "text/plain", body()).status, 403);
    assert_eq!(
        post(&url, &evil[..1], "application/json", body()).status,
        403
    );
    assert_eq!(post(&url, &[], "text/plain", body()).status, 415);
    let loads = api(&hub, "/api/loads");
    assert_eq!(
        post(&loads, &evil[..1], "application/json", b"{}".to_vec()).status,
        403
    );
    let r = rt()
        .block_on(Client::new().request(
            hyper::Method::GET,
            &api(&hub, "/api/logs"),
            &[("host", "evil.example")],
            None,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(
        r.status,
        403,
        "a rebound DNS name gets nothing: {}",
        r.text()
    );
    // lab's own clients (no Origin, JSON) and the hub's own pages (same origin) are served.
    let own = format!("http://{}", hub.addrs.http);
    assert_eq!(post(&url, &[], "application/json", body()).status, 201);
    let r = rt()
        .block_on(Client::new().request(
            hyper::Method::DELETE,
            &api(&hub, "/api/alerts/r"),
            &[("origin", "http://evil.example")],
            None,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(r.status, 403);
    let r = rt()
        .block_on(Client::new().request(
            hyper::Method::DELETE,
            &api(&hub, "/api/alerts/r"),
            &[("origin", own.as_str())],
            None,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(r.status, 204, "{}", r.text());
    let r = rt()
        .block_on(Client::new().request(
            hyper::Method::GET,
            &api(&hub, "/api/logs"),
            &[("host", "localhost")],
            None,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(r.status, 200);
}

/// Zipkin's edges: fields of the wrong type are a 400 naming the span and field; the body limit
/// the hub states is the one it enforces (3 MB is taken; past 16 MiB, 413 naming the limit).
#[test]
fn zipkin_rejects_mistyped_spans_and_enforces_its_stated_body_limit() {
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

/// Retention: what is older than `max_age` goes, and past `max_size` the oldest goes until
/// the store is under it; the newest stays, and `/api/status` says what was deleted.
#[test]
fn retention_bounds_the_store_by_age_and_size() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.retention = lab_hub::store::Retention {
        max_age_ms: 3_600_000,
        max_bytes: 600_000,
        every_ms: 100,
    };
    let hub = lab_hub::start(cfg).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let old = json!({"@timestamp": "2020-01-01T00:00:00.000Z", "type": "ancient", "app": "x"});
    udp.send_to(old.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();
    let filler = "f".repeat(900);
    for i in 0..3000 {
        let d = json!({"type": "filler", "n": i, "pad": filler});
        udp.send_to(d.to_string().as_bytes(), hub.addrs.logs)
            .unwrap();
        if i % 200 == 0 {
            std::thread::sleep(Duration::from_millis(5)); // pacing: UDP, not a readiness wait
        }
    }
    let newest = json!({"type": "newest", "app": "x"});
    udp.send_to(newest.to_string().as_bytes(), hub.addrs.logs)
        .unwrap();
    let count = |q: &str| -> i64 {
        let v: Value = get(&format!(
            "{}?query={}&from=2019-01-01T00:00:00Z&until=now",
            api(&hub, "/api/logs"),
            urlencode(q)
        ))
        .json()
        .unwrap();
        v["total"].as_i64().unwrap_or(-1)
    };
    eventually("the newest document stored", || {
        (count("type:newest") == 1).then_some(())
    });
    let status = eventually("the store under its size", || {
        let v: Value = get(&api(&hub, "/api/status")).json().unwrap();
        let used = v["store"]["used_bytes"].as_u64()?;
        (used <= 600_000 && count("type:ancient") == 0).then_some(v)
    });
    assert!(
        status["store"]["pruned"]["logs"].as_u64().unwrap() > 1,
        "{status}"
    );
    assert_eq!(count("type:newest"), 1, "the newest stays");
    assert!(count("type:filler") < 3000, "the oldest fillers went first");
}

/// A rule added over the API outlives the hub: a restarted hub on the same store evaluates it
/// still; a removed one stays removed.
#[test]
fn run_time_alert_rules_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let rule = |name: &str| {
        json!({"name": name, "kind": "metric", "target": "x.y", "check": ">", "value": 1, "window_s": 60, "origin": "a test"})
            .to_string()
            .into_bytes()
    };
    let hub = lab_hub::start(config(dir.path())).unwrap();
    for n in ["kept", "removed"] {
        let r = post(&api(&hub, "/api/alerts"), &[], "application/json", rule(n));
        assert_eq!(r.status, 201, "{}", r.text());
    }
    let r = rt()
        .block_on(Client::new().request(
            hyper::Method::DELETE,
            &api(&hub, "/api/alerts/removed"),
            &[],
            None,
            Duration::from_secs(5),
        ))
        .unwrap();
    assert_eq!(r.status, 204);
    hub.stop();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let v: Value = get(&api(&hub, "/api/alerts")).json().unwrap();
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["rule"]["name"].as_str())
        .collect();
    assert_eq!(names, ["kept"], "{v:#}");
    assert_eq!(v[0]["runtime"], true);
    assert_eq!(v[0]["rule"]["origin"], "a test");
    hub.stop();
}
