//! The dashboard's pages, rendered and escaped.

use super::util::*;
use serde_json::{Value, json};
use std::net::UdpSocket;

#[test]
pub(super) fn the_dashboard_pages_render_and_escape_what_services_send() {
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
pub(super) fn a_trace_opens_as_a_waterfall_with_escaped_names() {
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
pub(super) fn load_results_are_kept_listed_and_compared_escaped() {
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
pub(super) fn the_metrics_page_charts_a_service_from_its_statsd_counters() {
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
