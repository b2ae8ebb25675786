//! Chapter 4 end to end: the default lab's services report to the lab's hub — logs found with
//! `lab logs --query`, one trace across both services, StatsD counters in Graphite and Prometheus.

use crate::util::*;
use lab_testkit::{http_get, poll};

/// The default lab with a 1 s StatsD flush (the default 10 s would make this test wait).
fn fast_flush_lab() -> lab_testkit::LabDir {
    let toml = DEFAULT_LAB.replace(
        "flush_interval = \"10s\"",
        "flush_interval = \"1s\"\nalert_interval = \"500ms\"",
    );
    assert_ne!(
        toml, DEFAULT_LAB,
        "the default lab.toml sets flush_interval"
    );
    lab_testkit::LabDir::new(BIN, &toml)
}

fn hub_http(lab: &lab_testkit::LabDir) -> String {
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.path().join(".lab/hub/hub.json")).unwrap(),
    )
    .unwrap();
    format!("127.0.0.1:{}", cfg["http_port"])
}

pub fn hub_zipkin(lab: &lab_testkit::LabDir) -> String {
    let cfg: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(lab.path().join(".lab/hub/hub.json")).unwrap(),
    )
    .unwrap();
    format!("127.0.0.1:{}", cfg["zipkin_port"])
}

pub fn json_of(addr: &str, path: &str) -> Option<serde_json::Value> {
    let (status, body) = http_get(addr, path).ok()?;
    (status == 200)
        .then(|| serde_json::from_str(&body).ok())
        .flatten()
}

#[test]
fn services_report_logs_traces_and_metrics_to_the_hub() {
    let lab = fast_flush_lab();
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    assert!(up.stdout.contains("hub: logs udp://127.0.0.1:"), "{up}");
    // The dashboard is announced, and its overview lists every polled instance.
    let dash = up
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("dashboard: http://"))
        .and_then(|a| a.strip_suffix('/'))
        .unwrap_or_else(|| panic!("no dashboard line: {up}"))
        .to_owned();
    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    let (status, page) = http_get(&dash, "/").unwrap();
    assert_eq!(status, 200);
    for svc in ["recipe-api", "web-api"] {
        assert!(page.contains(&format!("<td>{svc}</td>")), "{svc}: {page}");
    }
    // What it refreshes from: every instance of the state with its pid, the hub's probe OK,
    // and the proxy's two servers UP by their checks.
    let overview = poll(DEADLINE, EVERY, || {
        let (status, body) = http_get(&dash, "/api/overview").ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let all_ok = v["instances"]
            .as_array()?
            .iter()
            .filter(|i| i["data"]["health"].is_string())
            .all(|i| i["data"]["health"] == "OK");
        let up = v["backends"]
            .as_array()?
            .iter()
            .filter(|b| b["data"]["status"] == "UP")
            .count();
        (status == 200 && all_ok && up == 2).then_some(v)
    })
    .unwrap_or_else(|| panic!("overview never all OK with 2 servers UP"));
    let instances = overview["instances"].as_array().unwrap();
    for r in &inst {
        let row = instances
            .iter()
            .find(|i| {
                i["data"]["service"] == r["service"] && i["data"]["instance"] == r["instance"]
            })
            .unwrap_or_else(|| panic!("{r} not on the overview: {overview}"));
        assert!(row["data"]["pid"].as_u64().is_some(), "{row}");
        assert_eq!(row["data"]["restarts"], 0, "{row}");
    }
    let servers: Vec<&str> = overview["backends"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["data"]["server"].as_str().unwrap())
        .collect();
    assert_eq!(servers, ["web-api-1", "web-api-2"], "{overview}");
    let web = addr_of(&inst, "web-api");
    let v = get_json_200(&web, "/");
    assert_eq!(v["producer_data"]["recipe"]["id"], 42);
    let (status, _) = http_get(&web, "/error").unwrap();
    assert_eq!(status, 500);

    // Logs: the three request types and the listen lines, by query.
    let q = |query: &str| {
        let r = lab.run(&["logs", "--query", query, "--json"]);
        assert_eq!(r.code, 0, "{r}");
        r.stdout
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .collect::<Vec<_>>()
    };
    let failure = poll(DEADLINE, EVERY, || {
        q("app:web-api and type:request-failure")
            .into_iter()
            .find(|d| d["fields"]["path"] == "/error")
    })
    .expect("a request-failure log for /error");
    assert_eq!(failure["severity"], "error");
    assert!(
        failure["fields"]["stack"]
            .as_str()
            .unwrap()
            .contains("internal_error"),
        "{failure}"
    );
    assert!(!q("app:web-api and type:request-incoming and fields.path:\"/\"").is_empty());
    let outgoing = q("type:request-outgoing");
    assert!(
        outgoing.iter().any(|d| d["fields"]["svc"] == "recipe-api"),
        "{outgoing:?}"
    );
    assert_eq!(
        q("type:listen and app:web-api").len(),
        2,
        "one listen line per instance"
    );
    assert!(
        q("app:recipe-api and not type:output").is_empty(),
        "recipe-api traces only, as in the book"
    );
    // The services' own output lines too (tailed from the supervisor's files), with their level.
    let out = poll(DEADLINE, EVERY, || {
        let d = q("type:output and app:recipe-api and listening");
        (d.len() == 2).then_some(d)
    })
    .expect("recipe-api's two `listening` lines in the store");
    assert!(
        out.iter()
            .all(|d| d["severity"] == "info" && d["instance"].is_u64()),
        "{out:?}"
    );
    assert!(
        q("type:output and \"request: method=\"").is_empty(),
        "the kit's request lines are skipped"
    );
    // A bad query is a usage error naming the column.
    let r = lab.run(&["logs", "--query", "app:("]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("column"), "{r}");
    // Table output, coloured by nothing here (not a TTY), one line per document.
    let r = lab.run(&["logs", "--query", "type:request-failure", "--since", "5m"]);
    assert!(r.stdout.contains("web-api error request-failure"), "{r}");

    // Traces: web-api's SERVER span → its CLIENT span → recipe-api's SERVER span.
    let zipkin = hub_zipkin(&lab);
    let trace = poll(DEADLINE, EVERY, || {
        let traces = json_of(&zipkin, "/api/v2/traces?serviceName=recipe-api&limit=50")?;
        traces
            .as_array()?
            .iter()
            .find(|t| t.as_array().is_some_and(|s| s.len() >= 3))
            .cloned()
    })
    .expect("a trace of three spans");
    let spans = trace.as_array().unwrap();
    let find = |svc: &str, kind: &str| {
        spans
            .iter()
            .find(|s| s["localEndpoint"]["serviceName"] == svc && s["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} span of {svc} in {trace:#}"))
    };
    let (web_server, web_client, recipe_server) = (
        find("web-api", "SERVER"),
        find("web-api", "CLIENT"),
        find("recipe-api", "SERVER"),
    );
    assert_eq!(web_client["parentId"], web_server["id"]);
    assert_eq!(recipe_server["parentId"], web_client["id"]);
    assert!(
        web_server.get("parentId").is_none(),
        "the web-api span is the root"
    );
    assert_eq!(recipe_server["tags"]["http.path"], "/recipes/42");
    let services = json_of(&zipkin, "/api/v2/services").unwrap();
    assert_eq!(services, serde_json::json!(["recipe-api", "web-api"]));

    // Metrics: the book's names, in Graphite and Prometheus.
    let http = hub_http(&lab);
    let count = poll(DEADLINE, EVERY, || {
        let v = json_of(
            &http,
            "/render?target=sumSeries(stats_counts.web-api.inbound.response_code.500)&from=-5min",
        )?;
        let total: f64 = v[0]["datapoints"]
            .as_array()?
            .iter()
            .filter_map(|p| p[0].as_f64())
            .sum();
        (total >= 1.0).then_some(total)
    })
    .expect("the 500 counted in Graphite");
    assert_eq!(count, 1.0);
    let names = json_of(&http, "/metrics/index.json").unwrap();
    let names: Vec<&str> = names
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    for want in [
        "stats_counts.web-api.inbound.response_code.GET_root.200",
        "stats.timers.web-api.inbound.response_time.GET_root.upper_90",
        "stats.timers.web-api.outbound.recipe-api.request-time.upper_90",
        "stats_counts.web-api.outbound.recipe-api.request-count",
    ] {
        assert!(names.contains(&want), "{want} missing from {names:?}");
    }
    let (_, prom) = http_get(&http, "/metrics").unwrap();
    assert!(
        prom.contains("statsd_count_total{name=\"web-api.inbound.response_code.500\"} 1"),
        "{prom}"
    );

    // The chapter 4 checks pass against it, with their figures in the JSON report.
    let check = lab.run(&["check", "ch4", "--json"]);
    assert_eq!(check.code, 0, "{check}");
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    // Every one but ch4.fault-alert, which needs fault edges this lab has not.
    assert_eq!(report["passed"], 7, "{report:#}");
    let na: Vec<&str> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] == "not-applicable")
        .filter_map(|s| s["name"].as_str())
        .collect();
    assert_eq!(na, ["ch4.fault-alert"], "{report:#}");
    // The lab's own rule on 5xx fired too (ch4.alerting hammered /error), and `lab alerts` says so.
    let alerts = lab.run(&["alerts", "--history", "--json"]);
    assert_eq!(alerts.code, 0, "{alerts}");
    let v: serde_json::Value = serde_json::from_str(&alerts.stdout).unwrap();
    let rule = v["rules"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["rule"]["name"] == "web-api-errors")
        .unwrap();
    assert!(rule["fired"].as_u64() >= Some(1), "{rule:#}");
    assert!(
        v["history"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["fields"]["rule"] == "web-api-errors"),
        "{v:#}"
    );
    assert!(
        !v["rules"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["rule"]["name"]
                .as_str()
                .unwrap()
                .starts_with("lab-check-")),
        "the scenario removes its own rule"
    );
    let tracing = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "ch4.tracing")
        .unwrap();
    assert!(
        tracing["figures"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["name"] == "web-api spans in the trace" && f["value"].as_f64() >= Some(3.0)),
        "{tracing:#}"
    );

    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn the_hub_and_status_show_the_books_health_states() {
    let lab = fast_flush_lab();
    let toml = std::fs::read_to_string(lab.path().join("lab.toml")).unwrap();
    // Probed every 200 ms; a killed web-api stays down for a second before its restart.
    let toml = toml.replace("[hub]", "[hub]\nhealth_interval = \"200ms\"")
        + "\n[services.web-api.backoff]\ninitial = \"1s\"\n";
    lab.write("lab.toml", &toml);
    assert_eq!(lab.run(&["up", "--detach", "--ports", "ephemeral"]).code, 0);
    wait_all_healthy(&lab, DEFAULT_INSTANCES);
    let http = hub_http(&lab);
    let state_of = |svc: &str, n: u64| {
        let v = json_of(&http, "/api/health")?;
        v.as_array()?
            .iter()
            .find(|e| e["service"] == svc && e["instance"] == n)
            .and_then(|e| e["state"].as_str().map(str::to_owned))
    };
    poll(DEADLINE, EVERY, || {
        (state_of("web-api", 1)? == "OK").then_some(())
    })
    .expect("web-api#1 OK in the hub");
    let status = lab.status();
    assert!(
        status["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["state"] == "OK"),
        "{status:#}"
    );
    // Killed: DOWN in the hub (a log document says so), then OK once the supervisor restarts it.
    let pid = lab
        .instances()
        .iter()
        .find(|i| i["service"] == "web-api" && i["instance"] == 1)
        .unwrap()["pid"]
        .as_u64()
        .unwrap();
    sigkill(pid);
    let down = poll(DEADLINE, std::time::Duration::from_millis(20), || {
        let r = lab.run(&[
            "logs",
            "--query",
            "app:hub and type:health and fields.service:web-api and fields.to:DOWN",
            "--json",
        ]);
        (!r.stdout.trim().is_empty()).then_some(r.stdout)
    });
    assert!(down.is_some(), "no DOWN event for web-api#1");
    poll(DEADLINE, EVERY, || {
        (state_of("web-api", 1)? == "OK").then_some(())
    })
    .expect("web-api#1 back to OK");
    let (_, prom) = http_get(&http, "/metrics").unwrap();
    assert!(
        prom.contains("lab_health_status{service=\"web-api\",instance=\"1\"} 2"),
        "{prom}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn check_ch4_health_drives_real_redis_and_postgres() {
    let pg = std::path::Path::new("/usr/lib/postgresql").exists();
    if !lab_testkit::require(
        "redis-server and PostgreSQL",
        lab_testkit::has_program("redis-server") && pg,
        "scripts/install-deps installs both",
    ) {
        return;
    }
    let lab = fast_flush_lab();
    let r = lab.run(&["check", "ch4.health", "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = v["scenarios"][0]["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["detail"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "saw 200 OK",
            "saw 200 DEGRADED",
            "saw 500 DOWN",
            "saw 200 OK"
        ]
    );
}

#[test]
fn lab_hub_alone_serves_a_learners_own_service() {
    // No lab.toml here: the book's defaults, on free ports.
    let lab = lab_testkit::LabDir::new(BIN, "");
    std::fs::remove_file(lab.path().join("lab.toml")).unwrap();
    let mut hub = lab
        .cmd(&["hub", "--ephemeral-ports"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(hub.stdout.take().unwrap()),
        &mut first,
    )
    .unwrap();
    let port = |name: &str| -> u16 {
        let at = first
            .find(&format!("{name} "))
            .unwrap_or_else(|| panic!("{name} in {first}"));
        let rest = &first[at..];
        let colon = rest.find("127.0.0.1:").unwrap() + "127.0.0.1:".len();
        rest[colon..]
            .split(|c: char| !c.is_ascii_digit())
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    // What the book's logstash.js would send, from "someone else's" socket.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    // Dated now: inside the store's retention whenever the test runs.
    let stamp = lab_hub::ymd_hms(time::OffsetDateTime::now_utc()).replace(' ', "T") + ".000Z";
    let doc = serde_json::json!({"@timestamp": stamp, "@version": 1, "app": "my-node-app",
        "severity": "info", "type": "listen", "fields": {"port": 1234}, "host": "laptop"});
    udp.send_to(doc.to_string().as_bytes(), ("127.0.0.1", port("logs")))
        .unwrap();
    let found = poll(DEADLINE, EVERY, || {
        let r = lab.run(&[
            "logs",
            "--query",
            "app:my-node-app",
            "--since",
            "1000d",
            "--json",
        ]);
        (r.code == 0 && r.stdout.contains("laptop")).then_some(r.stdout)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(hub.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(hub.wait().unwrap().success());
    assert!(
        found.is_some(),
        "lab logs --query did not find the document sent to `lab hub`"
    );
}

#[test]
fn external_mode_points_services_at_a_real_logstash() {
    // "Logstash": a UDP socket of this test. The hub still runs; services send logs here.
    let logstash = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    logstash
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let toml = DEFAULT_LAB.replace(
        "[hub]",
        &format!("[hub]\nlogstash = \"{}\"", logstash.local_addr().unwrap()),
    );
    let lab = lab_testkit::LabDir::new(BIN, &toml);
    assert_eq!(lab.run(&["up", "--detach", "--ports", "ephemeral"]).code, 0);
    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    let web = addr_of(&inst, "web-api");
    get_json_200(&web, "/");
    let mut buf = [0u8; 65536];
    let mut types = std::collections::BTreeSet::new();
    while !types.contains("request-outgoing") {
        let n = logstash.recv(&mut buf).expect("a Logstash datagram");
        // A document, or several as one JSON array: Logstash's json codec makes an event of each.
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        for doc in v.as_array().cloned().unwrap_or_else(|| vec![v.clone()]) {
            types.insert(doc["type"].as_str().unwrap().to_owned());
        }
    }
    assert!(
        types.contains("listen") && types.contains("request-incoming"),
        "{types:?}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn logs_query_follow_prints_new_matches() {
    let lab = fast_flush_lab();
    assert_eq!(lab.run(&["up", "--detach", "--ports", "ephemeral"]).code, 0);
    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    let web = addr_of(&inst, "web-api");
    let (mut follow, rx) = follow_lines(
        &lab,
        &["logs", "--query", "type:request-failure", "-f", "-n", "0"],
    );
    // Keep failing until the follower shows a failure (it may attach after the first).
    let seen = poll(DEADLINE, std::time::Duration::from_millis(200), || {
        let _ = http_get(&web, "/error");
        rx.try_iter()
            .find(|l| l.contains("web-api error request-failure"))
    });
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert!(
        seen.is_some(),
        "lab logs --query -f never showed the failure"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn a_lab_of_only_hub_runs_with_lab_hub_on_its_own_ports() {
    // Free ports, read back from port 0 (held together so none repeats).
    let held: Vec<std::net::TcpListener> = (0..4)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0").unwrap())
        .collect();
    let p: Vec<u16> = held
        .iter()
        .map(|l| l.local_addr().unwrap().port())
        .collect();
    drop(held);
    let toml = format!(
        "[hub]\nlogs_port = {}\nstatsd_port = {}\nzipkin_port = {}\nhttp_port = {}\ncarbon_port = 0\notlp_http_port = 0\notlp_grpc_port = 0\n",
        p[0], p[1], p[2], p[3]
    );
    let lab = lab_testkit::LabDir::new(BIN, &toml);
    let v = lab.run(&["config", "validate"]);
    assert_eq!(v.code, 0, "{v}");
    assert!(v.stdout.contains("`lab hub` runs it"), "{v}");
    let up = lab.run(&["up"]);
    assert_eq!(up.code, 2, "{up}");
    assert!(up.stderr.contains("`lab hub` runs the [hub] alone"), "{up}");
    // The hub's output read to its end by a thread (a closed pipe would fail its next line).
    let (mut hub, lines) = follow_lines(&lab, &["hub"]);
    let first = lines
        .recv_timeout(DEADLINE)
        .expect("`lab hub` prints its endpoints");
    for (what, port) in [("logs", p[0]), ("statsd", p[1]), ("zipkin", p[2])] {
        assert!(
            first.contains(&format!("{what} ")) && first.contains(&format!("127.0.0.1:{port}")),
            "{what} not on {port}: {first}"
        );
    }
    let health = poll(DEADLINE, EVERY, || {
        http_get(&format!("127.0.0.1:{}", p[3]), "/health")
            .ok()
            .filter(|(status, _)| *status == 200)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(hub.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = hub.wait().unwrap();
    assert!(
        health.is_some(),
        "the hub never answered on [hub]'s http_port {}",
        p[3]
    );
    assert!(status.success(), "`lab hub` after SIGTERM: {status}");
}
