//! Chapter 3's proxy through the real binary: `[proxy]` in lab.toml with both engines, the
//! `lab check ch3` proxy scenarios with both engines, and a SIGKILL under load.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};

use crate::util::*;

/// HAProxy is installed (Debian puts it in /usr/sbin).
fn haproxy_available() -> bool {
    ["/usr/sbin/haproxy", "/usr/local/sbin/haproxy"]
        .iter()
        .any(|p| std::path::Path::new(p).is_file())
        || std::process::Command::new("haproxy")
            .arg("-v")
            .output()
            .is_ok_and(|o| o.status.success())
}

fn ch3_proxy_scenarios_pass_with(engine: &str) {
    let lab = default_lab();
    let r = lab.run(&["check", "ch3", "--proxy-engine", engine, "--json"]);
    assert_eq!(r.code, 0, "{r}");
    let report: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    let proxied: Vec<&serde_json::Value> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["engine"].is_string())
        .collect();
    let names: Vec<&str> = proxied
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "ch3.round-robin",
            "ch3.health-failover",
            "ch3.slow-upstream",
            "ch3.retry",
            "ch3.compression",
            "ch3.tls-termination",
            "ch3.backpressure",
            "ch3.stats",
            "ch3.proxy-concerns",
            "ch3.protocol-concerns"
        ]
    );
    assert!(proxied.iter().all(|s| s["engine"] == engine), "{report:#}");
    // The default lab has no fault edges: the scenarios that need them say so, and how.
    for s in &proxied {
        let edges = ["ch3.slow-upstream", "ch3.retry"].contains(&s["name"].as_str().unwrap());
        let want = if edges { "not-applicable" } else { "pass" };
        assert_eq!(s["status"], want, "{s:#}");
        if edges {
            assert!(
                s["not_applicable"]["fix"]
                    .as_str()
                    .unwrap()
                    .contains("[faults] edges = true"),
                "{s:#}"
            );
        }
    }
    // The human table names the engine too.
    let r = lab.run(&["check", "ch3.round-robin", "--proxy-engine", engine]);
    assert!(
        r.stdout.contains(&format!("ch3.round-robin  [{engine}]")),
        "{r}"
    );
}

#[test]
fn ch3_proxy_scenarios_pass_with_the_builtin_proxy() {
    ch3_proxy_scenarios_pass_with("builtin");
}

#[test]
fn ch3_proxy_scenarios_pass_with_haproxy() {
    if !require(
        "haproxy",
        haproxy_available(),
        "apt-get install haproxy (scripts/install-deps)",
    ) {
        return;
    }
    ch3_proxy_scenarios_pass_with("haproxy");
}

fn proxied_lab(engine: &str) -> String {
    format!(
        r#"
[proxy]
engine = "{engine}"

[services.recipe-api]
builtin = "recipe-api"

[services.web-api]
builtin = "web-api"
replicas = 2
env = {{ TARGET = "recipe-api" }}
backoff = {{ initial = "50ms" }}

[proxy.frontends.web]
service = "web-api"
stats_uri = "/admin?stats"
check = {{ interval = "200ms", rise = 1, fall = 2 }}
"#
    )
}

/// `lab up` with a `[proxy]`: the frontend balances web-api; `lab down` leaves nothing.
fn up_balance_down(engine: &str) {
    let lab = LabDir::new(BIN, &proxied_lab(engine));
    let inst = up_detached(&lab, 4);
    let proxy = inst
        .iter()
        .find(|i| i["service"] == "proxy")
        .expect("proxy instance");
    let front = proxy["address"].as_str().unwrap().to_owned();
    let mut consumers = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (code, body) = http_get(&front, "/").unwrap();
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        consumers.insert(v["consumer_pid"].as_u64().unwrap());
    }
    assert_eq!(
        consumers.len(),
        2,
        "both web-api instances answer through {engine}"
    );
    let (code, csv) = http_get(&front, "/admin?stats;csv").unwrap();
    assert_eq!(code, 200);
    assert!(
        csv.contains("web-api-1") && csv.contains("web-api-2"),
        "{csv}"
    );
    let before = pids_and_addrs(&lab);
    let down = lab.run(&["down"]);
    assert_eq!(down.code, 0, "{down}");
    assert_all_gone(&before);
}

#[test]
fn lab_up_runs_the_builtin_proxy_from_lab_toml() {
    up_balance_down("builtin");
}

#[test]
fn lab_up_runs_haproxy_from_lab_toml() {
    if !require(
        "haproxy",
        haproxy_available(),
        "apt-get install haproxy (scripts/install-deps)",
    ) {
        return;
    }
    up_balance_down("haproxy");
}

/// The issue's bar: steady load through the builtin proxy, SIGKILL of one web-api instance,
/// zero failed requests, and the restarted instance back in rotation.
#[test]
fn sigkill_of_an_instance_behind_the_builtin_proxy_fails_no_request() {
    let lab = LabDir::new(BIN, &proxied_lab("builtin"));
    let inst = up_detached(&lab, 4);
    let front = inst.iter().find(|i| i["service"] == "proxy").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim = inst
        .iter()
        .find(|i| i["service"] == "web-api" && i["instance"] == 1)
        .unwrap()["pid"]
        .as_u64()
        .unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let seen = Arc::new(std::sync::Mutex::new(Vec::<u64>::new()));
    let load = {
        let (stop, ok, failed, seen, front) = (
            stop.clone(),
            ok.clone(),
            failed.clone(),
            seen.clone(),
            front.clone(),
        );
        std::thread::spawn(move || {
            while !stop.load(SeqCst) {
                match http_get(&front, "/") {
                    Ok((200, body)) => {
                        ok.fetch_add(1, SeqCst);
                        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&body) {
                            seen.lock()
                                .unwrap()
                                .push(v["consumer_pid"].as_u64().unwrap_or(0));
                        }
                    }
                    other => {
                        eprintln!("failed request: {other:?}");
                        failed.fetch_add(1, SeqCst);
                    }
                }
            }
        })
    };
    poll(DEADLINE, EVERY, || (ok.load(SeqCst) > 50).then_some(())).expect("load runs");
    sigkill(victim);
    // The supervisor restarts it; the proxy's checks put the new process back in rotation.
    let new_pid = poll(DEADLINE, EVERY, || {
        lab.instances()
            .iter()
            .find(|i| i["service"] == "web-api" && i["instance"] == 1 && i["health"] == "healthy")
            .and_then(|i| i["pid"].as_u64())
            .filter(|p| *p != victim)
    })
    .expect("web-api#1 restarted");
    poll(DEADLINE, EVERY, || {
        seen.lock().unwrap().contains(&new_pid).then_some(())
    })
    .expect("the restarted instance answers through the proxy");
    stop.store(true, SeqCst);
    load.join().unwrap();
    assert_eq!(failed.load(SeqCst), 0, "{} ok", ok.load(SeqCst));
    assert!(ok.load(SeqCst) > 50);
}

/// Issue 15: a hung replica (SIGSTOP, one of two) under `lab load -c 20` through the builtin
/// proxy costs no request: safe requests it holds are hedged to the other one, and it leaves
/// the rotation. The per-second rate through it is reported, not asserted (a bench's figure).
#[test]
fn a_sigstopped_instance_behind_the_builtin_proxy_fails_no_request() {
    let lab = LabDir::new(BIN, &proxied_lab("builtin"));
    let inst = up_detached(&lab, 4);
    let front = inst.iter().find(|i| i["service"] == "proxy").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let victim = inst
        .iter()
        .find(|i| i["service"] == "web-api" && i["instance"] == 1)
        .unwrap()["pid"]
        .as_u64()
        .unwrap();
    let load = lab
        .cmd(&[
            "load",
            &format!("http://{front}/"),
            "-c",
            "20",
            "-d",
            "6s",
            "--json",
            "--no-record",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = nix::unistd::Pid::from_raw(victim as i32);
    // The experiment's timeline (not readiness waits): 1.5 s of load, 3 s stopped, the rest.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGSTOP).unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGCONT).unwrap();
    let out = load.wait_with_output().unwrap();
    let v: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    eprintln!(
        "SIGSTOP 3 s of 6 s, builtin proxy: req/s average {}, lowest second {}, p99 {} ms",
        v["requests"]["average"], v["requests"]["min"], v["latency"]["p99"]
    );
    assert_eq!(v["errors"], 0, "{v:#}");
    assert_eq!(v["timeouts"], 0, "{v:#}");
    assert_eq!(v["non2xx"], 0, "{v:#}");
    assert!(v["2xx"].as_u64().unwrap() > 100, "{v:#}");
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn proxy_config_errors_are_reported_with_their_place() {
    let lab = LabDir::new(
        BIN,
        r#"
[services.recipe-api]
builtin = "recipe-api"

[proxy.frontends.raw]
service = "recipe-apx"
mode = "tcp"
tls = true
"#,
    );
    let r = lab.run(&["up", "--detach"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr
            .contains("lab.toml:6:11: frontend `raw` balances `recipe-apx`"),
        "{r}"
    );
    assert!(r.stderr.contains("did you mean `recipe-api`?"), "{r}");
    assert!(
        r.stderr
            .contains("lab.toml:8:7: `tls` needs `mode = \"http\"`"),
        "{r}"
    );
    assert!(!lab.state_file().exists());
}

/// A tcp frontend passes gRPC (HTTP/2) through: a gRPC consumer's TARGET goes through it.
#[test]
fn grpc_consumers_go_through_a_tcp_frontend() {
    let lab = LabDir::new(
        BIN,
        r#"
[services.recipe-api]
builtin = "recipe-api"
replicas = 2

[services.web-api]
builtin = "web-api"
target_protocol = "grpc"
env = { TARGET = "recipe-api" }

[proxy.frontends.recipes-grpc]
service = "recipe-api"
mode = "tcp"
"#,
    );
    let inst = up_detached(&lab, 4);
    let web = inst.iter().find(|i| i["service"] == "web-api").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut producers = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (code, body) = http_get(&web, "/").unwrap();
        assert_eq!(code, 200, "{body}");
        let v: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(v["recipe"]["id"], 42, "{v}");
        producers.insert(v["producer_data"]["pid"].as_u64().unwrap());
    }
    // One HTTP/2 connection from web-api is one TCP session: it stays on one producer.
    assert_eq!(producers.len(), 1, "{producers:?}");
    // web-api's TARGET is the frontend, not a recipe-api instance.
    let front = inst.iter().find(|i| i["service"] == "proxy").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    // (Service logs reach the file within a flush interval: poll.)
    let want = format!("target=Some(\"{front}\")");
    let found = poll(DEADLINE, EVERY, || {
        lab.run(&["logs", "web-api", "-n", "200"])
            .stdout
            .contains(&want)
            .then_some(())
    });
    assert!(
        found.is_some(),
        "{}",
        lab.run(&["logs", "web-api", "-n", "200"])
    );
}
