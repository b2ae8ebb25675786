//! `lab fault` (issue 18): kill, pause and restart instances of a running lab on purpose; the
//! faults in effect in `lab fault list` and `lab status`, ended by `clear`, by `--for`, and by
//! `lab down`; each one a `type:fault` document in the hub; bad input refused with a hint.

use std::time::{Duration, Instant};

use crate::util::*;

/// recipe-api, web-api ×2 and the hub, probed every 200 ms so a pause shows within a second.
const FAULT_LAB: &str = r#"
[services.recipe-api]
builtin = "recipe-api"
[services.recipe-api.health]
interval = "200ms"
timeout = "300ms"

[services.web-api]
builtin = "web-api"
replicas = 2
env = { TARGET = "recipe-api" }
backoff = { initial = "50ms" }
[services.web-api.health]
interval = "200ms"
timeout = "300ms"

[hub]
"#;

const INSTANCES: usize = 4;

fn instance<'a>(inst: &'a [serde_json::Value], id: &str) -> &'a serde_json::Value {
    let (service, n) = id.split_once('#').unwrap();
    inst.iter()
        .find(|i| i["service"] == service && i["instance"] == n.parse::<u64>().unwrap())
        .unwrap_or_else(|| panic!("no {id} in {inst:?}"))
}

fn health_of(lab: &LabDir, id: &str) -> String {
    instance(&lab.instances(), id)["health"]
        .as_str()
        .unwrap()
        .to_owned()
}

fn wait_health(lab: &LabDir, id: &str, want: &str) {
    poll(DEADLINE, EVERY, || {
        (health_of(lab, id) == want).then_some(())
    })
    .unwrap_or_else(|| panic!("{id} is not {want}: {:#}", lab.status()));
}

/// The process state letter of `pid` in /proc (`T` when stopped).
fn proc_state(pid: u64) -> char {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    stat.rsplit(')')
        .next()
        .and_then(|r| r.trim().chars().next())
        .unwrap_or('?')
}

fn up(lab: &LabDir) -> Vec<serde_json::Value> {
    up_detached(lab, INSTANCES)
}

#[test]
fn pause_is_listed_seen_unhealthy_and_cleared() {
    let lab = LabDir::new(BIN, FAULT_LAB);
    let inst = up(&lab);
    let pid = instance(&inst, "web-api#1")["pid"].as_u64().unwrap();
    let addr = instance(&inst, "web-api#1")["address"]
        .as_str()
        .unwrap()
        .to_owned();

    let r = lab.run(&["fault", "pause", "web-api#1"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout.contains("f1") && r.stdout.contains("SIGSTOP"),
        "{r}"
    );
    assert_eq!(proc_state(pid), 'T', "the instance is stopped");
    wait_health(&lab, "web-api#1", "unhealthy");
    assert_eq!(
        health_of(&lab, "web-api#2"),
        "healthy",
        "the other is not hit"
    );

    let list = lab.run(&["fault", "list", "--json"]);
    assert_eq!(list.code, 0, "{list}");
    let active: serde_json::Value = serde_json::from_str(&list.stdout).unwrap();
    assert_eq!(active[0]["id"], "f1", "{active}");
    assert_eq!(active[0]["kind"], "pause");
    assert_eq!(active[0]["instance"], "web-api#1");
    assert_eq!(lab.status()["faults"][0]["id"], "f1", "lab status shows it");
    let text = lab.run(&["status"]);
    assert!(
        text.stdout.contains("pause") && text.stdout.contains("f1"),
        "{text}"
    );
    // The dashboard's overview has it too.
    let hub = addr_of(&inst, "hub");
    let o = get_json_200(&hub, "/api/overview");
    assert_eq!(o["faults"][0]["data"]["id"], "f1", "{o:#}");
    assert_eq!(o["faults"][0]["data"]["what"], "SIGSTOP", "{o:#}");
    let (code, page) = http_get(&hub, "/").unwrap();
    assert_eq!(code, 200);
    assert!(
        page.contains("Faults in effect") && page.contains("web-api#1"),
        "{page}"
    );

    // Pausing it twice is refused; the fault stays as it was.
    let again = lab.run(&["fault", "pause", "web-api#1"]);
    assert_eq!(again.code, 1, "{again}");
    assert!(again.stdout.contains("already paused"), "{again}");

    let clear = lab.run(&["fault", "clear", "f1"]);
    assert_eq!(clear.code, 0, "{clear}");
    assert!(
        clear.stdout.contains("f1") && clear.stdout.contains("ended"),
        "{clear}"
    );
    assert_ne!(proc_state(pid), 'T', "resumed");
    wait_health(&lab, "web-api#1", "healthy");
    assert_eq!(
        instance(&lab.instances(), "web-api#1")["pid"].as_u64(),
        Some(pid),
        "a pause ends with the same process, not a restart"
    );
    let (code, _) = http_get(&addr, "/").unwrap();
    assert_eq!(code, 200);
    let none = lab.run(&["fault", "list"]);
    assert!(none.stdout.contains("no fault in effect"), "{none}");

    // Each fault is a log document in the hub: the pause and its end.
    let docs = poll(DEADLINE, Duration::from_millis(200), || {
        let r = lab.run(&["logs", "--query", "type:fault", "--json"]);
        let docs: Vec<serde_json::Value> = r
            .stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect();
        (docs.len() >= 2).then_some(docs)
    })
    .expect("two type:fault documents in the hub");
    let actions: Vec<&str> = docs
        .iter()
        .map(|d| d["action"].as_str().unwrap_or(""))
        .collect();
    assert!(
        actions.contains(&"injected") && actions.contains(&"cleared"),
        "{docs:?}"
    );
    assert!(
        docs.iter()
            .all(|d| d["target"] == "web-api#1" && d["fault_id"] == "f1"),
        "{docs:?}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn pause_for_a_while_ends_by_itself_and_kill_restart_bring_new_processes() {
    let lab = LabDir::new(BIN, FAULT_LAB);
    let inst = up(&lab);
    let pid = instance(&inst, "recipe-api#1")["pid"].as_u64().unwrap();

    let t0 = Instant::now();
    let r = lab.run(&["fault", "pause", "recipe-api", "--for", "1s"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("for 1s"), "{r}");
    assert_eq!(proc_state(pid), 'T');
    poll(DEADLINE, EVERY, || (proc_state(pid) != 'T').then_some(()))
        .expect("the pause ends by itself");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "not before its time: {:?}",
        t0.elapsed()
    );
    poll(DEADLINE, EVERY, || {
        lab.run(&["fault", "list", "--json"])
            .stdout
            .trim()
            .eq("[]")
            .then_some(())
    })
    .expect("an expired pause leaves the list");

    // kill: the supervisor brings it back as after a crash, with a new pid.
    let old = instance(&lab.instances(), "web-api#2")["pid"]
        .as_u64()
        .unwrap();
    let r = lab.run(&["fault", "kill", "web-api#2"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("SIGKILL"), "{r}");
    let back = poll(DEADLINE, EVERY, || {
        let i = lab.instances();
        let w = instance(&i, "web-api#2").clone();
        (w["health"] == "healthy" && w["pid"].as_u64() != Some(old)).then_some(w)
    })
    .unwrap_or_else(|| panic!("web-api#2 back after kill: {:#}", lab.status()));
    assert!(!alive(old));
    assert_eq!(back["restarts"], 1, "{back}");

    // restart: stopped and started at once; the command waits until it is healthy again.
    let old = back["pid"].as_u64().unwrap();
    let r = lab.run(&["fault", "restart", "web-api#2"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("is back"), "{r}");
    let now = instance(&lab.instances(), "web-api#2").clone();
    assert_ne!(now["pid"].as_u64(), Some(old), "{now}");
    assert_eq!(now["health"], "healthy");
    assert_eq!(now["restarts"], 2, "{now}");
    assert!(!alive(old));
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn down_ends_every_pause_and_leaves_nothing() {
    let lab = LabDir::new(BIN, FAULT_LAB);
    up(&lab);
    let r = lab.run(&["fault", "pause", "web-api"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("f1") && r.stdout.contains("f2"), "{r}");
    let before = pids_and_addrs(&lab);
    let t0 = Instant::now();
    let down = lab.run(&["down", "--grace", "5s"]);
    assert_eq!(down.code, 0, "{down}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "paused instances are resumed to take their SIGTERM, not waited on for the grace: {:?}",
        t0.elapsed()
    );
    assert_all_gone(&before);
    assert!(!lab.path().join(".lab/faults.json").exists());
}

#[test]
fn a_sigkilled_supervisor_leaves_no_paused_process_after_down() {
    let lab = LabDir::new(BIN, FAULT_LAB);
    up(&lab);
    let r = lab.run(&["fault", "pause", "recipe-api#1"]);
    assert_eq!(r.code, 0, "{r}");
    let before = pids_and_addrs(&lab);
    let sup = lab.status()["supervisor"]["pid"]
        .as_u64()
        .expect("supervisor pid");
    sigkill(sup);
    poll(DEADLINE, EVERY, || (!alive(sup)).then_some(())).expect("the supervisor is gone");
    let refused = lab.run(&["fault", "kill", "web-api#1"]);
    assert_eq!(refused.code, 2, "{refused}");
    assert!(refused.stderr.contains("supervisor"), "{refused}");
    let down = lab.run(&["down"]);
    assert_eq!(down.code, 0, "{down}");
    assert_all_gone(&before);
}

#[test]
fn bad_fault_input_is_refused_with_a_hint() {
    let lab = LabDir::new(BIN, FAULT_LAB);
    let none = lab.run(&["fault", "kill", "web-api"]);
    assert_eq!(none.code, 2, "{none}");
    assert!(none.stderr.contains("no lab is running"), "{none}");
    up(&lab);
    for (args, want) in [
        (&["fault", "kill", "web-apl"][..], "did you mean web-api"),
        (&["fault", "pause", "web-api#7"][..], "web-api#1, web-api#2"),
        (&["fault", "pause", "web-api#x"][..], "SERVICE#N"),
        (&["fault", "pause", "web-api", "--for", "soon"][..], "5s"),
        (&["fault", "clear", "f9"][..], "none is in effect"),
    ] {
        let r = lab.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r}");
        assert!(r.stderr.contains(want), "{args:?} wants {want:?}: {r}");
        assert!(!r.stderr.contains("panicked") && !r.stderr.contains("Error {"));
    }
    // Nothing was injected by any of them.
    assert!(lab.instances().iter().all(|i| i["health"] == "healthy"));
    assert_eq!(lab.run(&["fault", "list", "--json"]).stdout.trim(), "[]");
    assert_eq!(lab.run(&["down"]).code, 0);
}

/// recipe-api behind web-api, with fault edges: web-api's TARGET is recipe-api's edge.
const EDGE_LAB: &str = r#"
[services.recipe-api]
builtin = "recipe-api"

[services.web-api]
builtin = "web-api"
env = { TARGET = "recipe-api" }

[faults]
edges = true
seed = 7
"#;

/// `lab load ADDR -a N -c C --json` run against web-api.
fn load(lab: &LabDir, target: &str, args: &[&str]) -> serde_json::Value {
    let mut all = vec!["load", target, "--json", "--no-record"];
    all.extend_from_slice(args);
    let r = lab.run(&all);
    assert!(r.code == 0 || r.code == 1, "{r}");
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r}"))
}

#[test]
fn edge_latency_adds_its_amount_to_p50_and_clear_takes_it_away() {
    let lab = LabDir::new(BIN, EDGE_LAB);
    let inst = up_detached(&lab, 3);
    let web = format!("http://{}/", addr_of(&inst, "web-api"));
    let p50 = |v: &serde_json::Value| v["latency"]["p50"].as_f64().unwrap();
    let base = p50(&load(&lab, &web, &["-d", "2s", "-c", "2"]));
    let r = lab.run(&["fault", "latency", "recipe-api", "100ms"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(
        r.stdout
            .contains("f1  latency:100ms downstream on recipe-api (1 edge)"),
        "{r}"
    );
    let slow = load(&lab, &web, &["-d", "2s", "-c", "2"]);
    assert_eq!(slow["non2xx"], 0, "{slow:#}");
    let added = p50(&slow) - base;
    assert!(
        (90.0..=110.0).contains(&added),
        "p50 {base} → {} ms",
        p50(&slow)
    );
    let list = lab.run(&["fault", "list"]);
    assert!(list.stdout.contains("latency:100ms downstream"), "{list}");
    assert_eq!(lab.run(&["fault", "clear"]).code, 0);
    let after = p50(&load(&lab, &web, &["-d", "1s", "-c", "2"]));
    assert!(
        after < base + 20.0,
        "p50 back after clear: {base} → {after} ms"
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn a_seeded_status_fault_fails_the_same_requests_every_time_and_about_its_share() {
    let lab = LabDir::new(BIN, EDGE_LAB);
    let inst = up_detached(&lab, 3);
    let web = addr_of(&inst, "web-api");
    let run = || {
        let r = lab.run(&["fault", "status", "recipe-api", "503", "-p", "20%"]);
        assert_eq!(r.code, 0, "{r}");
        let failed: Vec<bool> = (0..300)
            .map(|_| http_get(&web, "/").unwrap().0 != 200)
            .collect();
        assert_eq!(lab.run(&["fault", "clear"]).code, 0);
        failed
    };
    let first = run();
    assert_eq!(first, run(), "seed 7: the same requests fail again");
    let n = first.iter().filter(|f| **f).count();
    // Binomial(300, 0.2): mean 60, sd 6.9; ±5 sd.
    assert!((26..=94).contains(&n), "{n} of 300 failed");
    // Through lab load too: about a fifth are not 2xx.
    let r = lab.run(&["fault", "status", "recipe-api", "503", "-p", "0.2"]);
    assert_eq!(r.code, 0, "{r}");
    let v = load(&lab, &format!("http://{web}/"), &["-a", "1000", "-c", "4"]);
    let non2xx = v["non2xx"].as_u64().unwrap();
    assert!((126..=274).contains(&non2xx), "{non2xx} of 1000: {v:#}");
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn edge_reset_and_timeout_fail_the_consumer_as_they_name() {
    let lab = LabDir::new(BIN, EDGE_LAB);
    let inst = up_detached(&lab, 3);
    let web = addr_of(&inst, "web-api");
    let r = lab.run(&["fault", "reset", "recipe-api"]);
    assert_eq!(r.code, 0, "{r}");
    let (code, body) = http_get(&web, "/").unwrap();
    assert_eq!(code, 502, "{body}");
    assert!(body.contains("reset"), "{body}");
    assert_eq!(lab.run(&["fault", "clear"]).code, 0);
    assert_eq!(http_get(&web, "/").unwrap().0, 200);
    let r = lab.run(&["fault", "timeout", "recipe-api", "--for", "1s"]);
    assert_eq!(r.code, 0, "{r}");
    let t0 = Instant::now();
    let (code, _) = http_get(&web, "/").unwrap();
    assert_ne!(code, 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "{:?}",
        t0.elapsed()
    );
    poll(DEADLINE, EVERY, || {
        (http_get(&web, "/").ok()?.0 == 200).then_some(())
    })
    .expect("the chain answers again once the timeout ended");
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn edge_faults_say_what_they_need() {
    // A lab without edges: the hint names the setting.
    let lab = LabDir::new(BIN, FAULT_LAB);
    up(&lab);
    let r = lab.run(&["fault", "latency", "recipe-api", "100ms"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(
        r.stderr.contains("[faults] edges = true") && r.stderr.contains("lab up --faults"),
        "{r}"
    );
    assert_eq!(lab.run(&["down"]).code, 0);

    let lab = LabDir::new(BIN, EDGE_LAB);
    up_detached(&lab, 3);
    for (args, want) in [
        (
            &["fault", "latency", "web-api", "1s"][..],
            "nothing reaches web-api through an edge",
        ),
        (
            &["fault", "reset", "recipe-api", "--direction", "upstream"][..],
            "has no direction",
        ),
        (
            &["fault", "status", "recipe-api", "503", "-p", "1.5"][..],
            "between 0 and 1",
        ),
        (&["fault", "status", "recipe-api", "42"][..], "100..=599"),
        (&["fault", "latency", "recipe-api", "soon"][..], "500ms"),
    ] {
        let r = lab.run(args);
        assert_eq!(r.code, 2, "{args:?}: {r}");
        assert!(r.stderr.contains(want), "{args:?} wants {want:?}: {r}");
    }
    assert_eq!(lab.run(&["fault", "list", "--json"]).stdout.trim(), "[]");
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn a_fault_on_a_traced_request_is_a_tagged_span_and_lab_load_names_it() {
    let lab = LabDir::new(BIN, &format!("{EDGE_LAB}\n[hub]\n"));
    let inst = up_detached(&lab, 4);
    let web = addr_of(&inst, "web-api");
    let r = lab.run(&["fault", "latency", "recipe-api", "50ms"]);
    assert_eq!(r.code, 0, "{r}");
    let load = lab.run(&[
        "load",
        &format!("http://{web}/"),
        "-a",
        "20",
        "-c",
        "1",
        "--no-record",
    ]);
    assert_eq!(load.code, 0, "{load}");
    assert!(
        load.stdout
            .contains("faults were in effect during this run")
            && load
                .stdout
                .contains("f1 latency:50ms downstream on recipe-api from the start on"),
        "{load}"
    );
    let zipkin = crate::observe::hub_zipkin(&lab);
    let trace = poll(DEADLINE, Duration::from_millis(200), || {
        let traces = crate::observe::json_of(&zipkin, "/api/v2/traces?serviceName=edges&limit=5")?;
        traces.as_array()?.first().cloned()
    })
    .expect("a trace with the edge's span");
    let spans = trace.as_array().unwrap();
    let edge = spans
        .iter()
        .find(|s| s["localEndpoint"]["serviceName"] == "edges")
        .unwrap();
    assert_eq!(edge["tags"]["lab.fault"], "latency:50ms", "{edge:#}");
    assert_eq!(edge["tags"]["lab.fault.id"], "f1");
    assert_eq!(edge["tags"]["lab.edge"], "recipe-api#1");
    assert!(edge["duration"].as_u64().unwrap() >= 50_000, "{edge:#}");
    let client = spans
        .iter()
        .find(|s| s["localEndpoint"]["serviceName"] == "web-api" && s["kind"] == "CLIENT")
        .unwrap_or_else(|| panic!("web-api's CLIENT span in {trace:#}"));
    assert_eq!(
        edge["parentId"], client["id"],
        "a child of the call it slowed"
    );
    assert_eq!(lab.run(&["fault", "clear"]).code, 0);
    let load = lab.run(&[
        "load",
        &format!("http://{web}/"),
        "-a",
        "20",
        "-c",
        "1",
        "--no-record",
    ]);
    assert!(!load.stdout.contains("faults were in effect"), "{load}");
    assert_eq!(lab.run(&["down"]).code, 0);
}

/// recipe-api's edge address (what web-api's TARGET is).
fn edge_of(lab: &LabDir) -> String {
    let text = std::fs::read_to_string(lab.path().join(".lab/edges/edges.json")).unwrap();
    let cfg: serde_json::Value = serde_json::from_str(&text).unwrap();
    cfg["edges"][0]["listen"].as_str().unwrap().to_owned()
}

#[test]
fn a_partition_refuses_or_black_holes_the_edge_and_heals_when_it_ends() {
    let lab = LabDir::new(BIN, EDGE_LAB);
    let inst = up_detached(&lab, 3);
    let web = addr_of(&inst, "web-api");
    let edge = edge_of(&lab);
    assert_eq!(http_get(&web, "/").unwrap().0, 200);
    // refuse: the edge stops listening, web-api's pooled connection is reset.
    let r = lab.run(&["fault", "partition", "recipe-api"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("partition:refuse on recipe-api"), "{r}");
    poll(DEADLINE, EVERY, || {
        let e = std::net::TcpStream::connect(&edge).err()?;
        (e.kind() == std::io::ErrorKind::ConnectionRefused).then_some(())
    })
    .expect("connecting to the partitioned edge is refused");
    let (code, body) = http_get(&web, "/").unwrap();
    assert_eq!(code, 502, "{body}");
    assert_eq!(lab.run(&["fault", "clear"]).code, 0);
    poll(DEADLINE, EVERY, || {
        (http_get(&web, "/").ok()?.0 == 200).then_some(())
    })
    .expect("the chain heals once the partition is cleared");
    assert!(listening(&edge), "the edge listens again");
    // drop: connections are taken and nothing answers until the partition ends (1 s).
    let r = lab.run(&[
        "fault",
        "partition",
        "recipe-api",
        "--mode",
        "drop",
        "--for",
        "1s",
    ]);
    assert_eq!(r.code, 0, "{r}");
    let t0 = Instant::now();
    assert!(
        std::net::TcpStream::connect(&edge).is_ok(),
        "a black hole takes the connection"
    );
    let (code, _) = http_get(&web, "/").unwrap();
    assert_ne!(code, 200);
    assert!(
        t0.elapsed() >= Duration::from_millis(700),
        "{:?}",
        t0.elapsed()
    );
    poll(DEADLINE, EVERY, || {
        (http_get(&web, "/").ok()?.0 == 200).then_some(())
    })
    .expect("the chain heals once the black hole ends");
    let r = lab.run(&["fault", "partition", "web-api"]);
    assert_eq!(r.code, 2, "nothing consumes web-api: {r}");
    assert!(r.stderr.contains("nothing reaches web-api"), "{r}");
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn scheduled_faults_come_due_after_the_lab_is_up_and_end_by_themselves() {
    let lab = LabDir::new(
        BIN,
        r#"
[services.recipe-api]
builtin = "recipe-api"

[services.web-api]
builtin = "web-api"
env = { TARGET = "recipe-api" }

[faults.slow-recipes]
fault = "latency"
target = "recipe-api"
delay = "200ms"
after = "1s"
for = "2s"
"#,
    );
    let inst = up_detached(&lab, 3);
    let up_at = Instant::now();
    let web = addr_of(&inst, "web-api");
    let timed = || {
        let t = Instant::now();
        let (code, _) = http_get(&web, "/").unwrap();
        (code, t.elapsed())
    };
    let (code, fast) = timed();
    assert_eq!(code, 200);
    assert!(
        fast < Duration::from_millis(150),
        "before it is due: {fast:?}"
    );
    let listed = poll(DEADLINE, EVERY, || {
        let r = lab.run(&["fault", "list", "--json"]);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).ok()?;
        v.as_array()?.first().cloned()
    })
    .expect("the scheduled fault comes due");
    assert!(
        up_at.elapsed() >= Duration::from_millis(500),
        "not before `after`"
    );
    assert_eq!(listed["name"], "slow-recipes", "{listed:#}");
    assert_eq!(listed["kind"], "latency");
    // The edges apply it within 100 ms of its record.
    poll(DEADLINE, EVERY, || {
        let (code, took) = timed();
        (code == 200 && took >= Duration::from_millis(190)).then_some(())
    })
    .expect("requests take the fault's 200 ms while it lasts");
    let table = lab.run(&["fault", "list"]);
    assert!(table.stdout.contains("(slow-recipes)"), "{table}");
    poll(DEADLINE, EVERY, || {
        let r = lab.run(&["fault", "list", "--json"]);
        (r.stdout.trim() == "[]").then_some(())
    })
    .expect("it ends after `for`");
    poll(DEADLINE, EVERY, || {
        (timed().1 < Duration::from_millis(150)).then_some(())
    })
    .expect("fast again once it ended");
    assert_eq!(lab.run(&["down"]).code, 0);
}
