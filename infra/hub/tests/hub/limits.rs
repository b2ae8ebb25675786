//! What keeps the hub standing and honest: a taken port fails the start, hostile queries are
//! refused, a web page cannot drive it, retention bounds the store, alerts fire and survive a restart.

use super::util::*;
use lab_hub::HubConfig;
use lab_net::client::Client;
use serde_json::{Value, json};
use std::io::Write as _;
use std::net::UdpSocket;
use std::time::Duration;

#[test]
pub(super) fn a_taken_port_fails_the_whole_start() {
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
pub(super) fn a_firing_rule_posts_to_the_webhook() {
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

/// Each repro of issue 15's hostile requests: a 4xx naming the limit (never a panic's text),
/// and afterwards the hub still answers and still has what it stored before.
#[test]
pub(super) fn hostile_queries_are_refused_and_the_hub_keeps_answering_with_its_data() {
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
pub(super) fn a_web_page_cannot_drive_the_hub() {
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

/// Retention: what is older than `max_age` goes, and past `max_size` the oldest goes until
/// the store is under it; the newest stays, and `/api/status` says what was deleted.
#[test]
pub(super) fn retention_bounds_the_store_by_age_and_size() {
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
    // Padding that does not compress (the store keeps log documents LZ4-compressed).
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    let mut noise = || -> String {
        (0..900)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                char::from(b'!' + (seed % 90) as u8)
            })
            .collect()
    };
    for i in 0..3000 {
        let d = json!({"type": "filler", "n": i, "pad": noise()});
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
pub(super) fn run_time_alert_rules_survive_a_restart() {
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
