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
