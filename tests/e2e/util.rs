//! Shared by the e2e modules.

pub use lab_testkit::{LabDir, alive, http_get, listening, poll, require};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_lab");
/// The repository's default lab, as a newcomer runs it.
pub const DEFAULT_LAB: &str = include_str!("../../lab.toml");

pub const DEADLINE: Duration = Duration::from_secs(20);
pub const EVERY: Duration = Duration::from_millis(25);

/// Instances of the default lab: hub, recipe-api ×2, web-api ×2, proxy.
pub const DEFAULT_INSTANCES: usize = 6;

/// A lab folder holding the default lab.toml.
pub fn default_lab() -> LabDir {
    LabDir::new(BIN, DEFAULT_LAB)
}

/// (pid, address) of every instance that `lab status --json` reports.
pub fn pids_and_addrs(lab: &LabDir) -> Vec<(u64, String)> {
    lab.instances()
        .iter()
        .map(|i| {
            (
                i["pid"].as_u64().expect("pid"),
                i["address"].as_str().expect("address").to_owned(),
            )
        })
        .collect()
}

/// Wait until every instance is healthy; panics with the status if the deadline passes.
pub fn wait_all_healthy(lab: &LabDir, n: usize) -> Vec<serde_json::Value> {
    poll(DEADLINE, EVERY, || {
        let inst = lab.instances();
        (inst.len() == n && inst.iter().all(|i| i["health"] == "healthy")).then_some(inst)
    })
    .unwrap_or_else(|| panic!("not all {n} instances became healthy: {:#}", lab.status()))
}

/// Assert no process and no port of `before` is left.
pub fn assert_all_gone(before: &[(u64, String)]) {
    for (pid, addr) in before {
        let gone = poll(Duration::from_secs(5), EVERY, || {
            (!alive(*pid) && !listening(addr)).then_some(())
        });
        assert!(
            gone.is_some(),
            "pid {pid} alive={} or {addr} listening={} after down",
            alive(*pid),
            listening(addr)
        );
    }
}

/// SIGKILL `pid`.
pub fn sigkill(pid: u64) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("kill");
}

/// SIGKILL instance `n` of `service` and wait for the supervisor to bring it back healthy under
/// a new pid; returns its `lab status` entry.
pub fn kill_and_wait_restart(lab: &LabDir, service: &str, n: u64) -> serde_json::Value {
    let find = |i: &serde_json::Value| i["service"] == service && i["instance"] == n;
    let old = lab.instances().into_iter().find(find).expect("instance")["pid"]
        .as_u64()
        .expect("pid");
    sigkill(old);
    let back = poll(DEADLINE, EVERY, || {
        lab.instances().into_iter().find(|i| {
            find(i) && i["health"] == "healthy" && i["pid"].as_u64().is_some_and(|p| p != old)
        })
    })
    .unwrap_or_else(|| panic!("{service}#{n} not restarted: {:#}", lab.status()));
    assert!(!alive(old), "the killed process is gone");
    back
}

/// `address` of the first instance of `service` in a `lab status --json` instance list.
pub fn addr_of(instances: &[serde_json::Value], service: &str) -> String {
    let i = instances
        .iter()
        .find(|i| i["service"] == service)
        .unwrap_or_else(|| panic!("no {service} in {instances:?}"));
    i["address"].as_str().expect("address").to_owned()
}

/// GET `http://addr{path}` expecting 200 and a JSON body.
pub fn get_json_200(addr: &str, path: &str) -> serde_json::Value {
    let (status, body) = http_get(addr, path).unwrap_or_else(|e| panic!("GET {addr}{path}: {e}"));
    assert_eq!(status, 200, "GET {addr}{path}: {body}");
    serde_json::from_str(body.trim())
        .unwrap_or_else(|e| panic!("GET {addr}{path} is not JSON ({e}): {body:?}"))
}

/// Run `lab ARGS` (a `logs -f`) in the background; its stdout lines arrive on the receiver.
/// Kill and wait for the child when done.
pub fn follow_lines(
    lab: &LabDir,
    args: &[&str],
) -> (std::process::Child, std::sync::mpsc::Receiver<String>) {
    let mut child = lab
        .cmd(args)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// `lab up --detach --ports ephemeral`, then wait until all `n` instances are healthy.
pub fn up_detached(lab: &LabDir, n: usize) -> Vec<serde_json::Value> {
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    wait_all_healthy(lab, n)
}
