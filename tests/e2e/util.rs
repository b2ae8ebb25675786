//! Shared by the e2e modules.

pub use lab_testkit::{LabDir, alive, http_get, listening, poll, require};
use std::time::Duration;

pub const BIN: &str = env!("CARGO_BIN_EXE_lab");
/// The repository's default lab, as a newcomer runs it.
pub const DEFAULT_LAB: &str = include_str!("../../lab.toml");

pub const DEADLINE: Duration = Duration::from_secs(20);
pub const EVERY: Duration = Duration::from_millis(25);

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
