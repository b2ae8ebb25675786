//! `lab fault` on the docker runtime (issue 18): the engine's pause, network disconnect and
//! kill, each seen in the lab's health and ended as it should be.

use std::time::Duration;

use crate::docker::{container_of, docker_lab, down_leaves_nothing, engine_here};
use crate::util::*;

/// Poll until `service#n` is reported unhealthy.
fn wait_unhealthy(lab: &LabDir, service: &str, n: u64) {
    let unhealthy = poll(Duration::from_secs(30), EVERY, || {
        lab.instances()
            .into_iter()
            .find(|i| i["service"] == service && i["instance"] == n && i["health"] == "unhealthy")
    });
    assert!(unhealthy.is_some(), "{:#}", lab.status());
}

fn paused(container: &str) -> bool {
    std::process::Command::new("docker")
        .args(["inspect", "--format", "{{.State.Paused}}", container])
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "true")
}

/// `lab fault` on the docker runtime: pause is the engine's pause (seen unhealthy, ended by
/// clear), partition the engine's network disconnect (seen unhealthy, reconnected by clear),
/// kill is the engine's kill (restarted per policy), and `lab down` with a container still
/// paused leaves nothing.
#[test]
fn faults_pause_partition_and_kill_containers_and_down_leaves_nothing() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dockfault-{}", std::process::id());
    let lab = docker_lab(&name);
    up_detached(&lab, DEFAULT_INSTANCES);
    let web1 = container_of(&lab, "web-api", 1);

    let r = lab.run(&["fault", "pause", "web-api#1"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("docker pause"), "{r}");
    assert!(paused(&web1), "the engine reports it paused");
    wait_unhealthy(&lab, "web-api", 1);
    let r = lab.run(&["fault", "clear", "all"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(!paused(&web1), "thawed");
    wait_all_healthy(&lab, DEFAULT_INSTANCES);

    // A partition takes the container off the lab's network: its published port stops
    // answering too (unhealthy); cleared, it is back under its names and healthy.
    let networks = |c: &str| {
        let o = std::process::Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{json .NetworkSettings.Networks}}",
                c,
            ])
            .output()
            .unwrap();
        serde_json::from_slice::<serde_json::Value>(&o.stdout).unwrap_or_default()
    };
    let before = networks(&web1);
    let (net, aliases) = before
        .as_object()
        .and_then(|m| m.iter().next())
        .map(|(n, e)| (n.clone(), e["Aliases"].clone()))
        .unwrap_or_else(|| panic!("{web1} on no network: {before}"));
    let r = lab.run(&["fault", "partition", "web-api#1", "--mode", "drop"]);
    assert_eq!(r.code, 2, "--mode is the process runtime's: {r}");
    let r = lab.run(&["fault", "partition", "web-api#1"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("docker network disconnect"), "{r}");
    assert!(
        networks(&web1).get(&net).is_none(),
        "cut off {net}: {}",
        networks(&web1)
    );
    wait_unhealthy(&lab, "web-api", 1);
    let r = lab.run(&["fault", "clear", "all"]);
    assert_eq!(r.code, 0, "{r}");
    let after = networks(&web1);
    assert_eq!(
        after[&net]["Aliases"], aliases,
        "back under its names: {after}"
    );
    wait_all_healthy(&lab, DEFAULT_INSTANCES);

    let r = lab.run(&["fault", "kill", "recipe-api#2"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("docker kill"), "{r}");
    let back = poll(Duration::from_secs(60), EVERY, || {
        lab.instances().into_iter().find(|i| {
            i["service"] == "recipe-api"
                && i["instance"] == 2
                && i["health"] == "healthy"
                && i["restarts"] == 1
        })
    });
    assert!(
        back.is_some(),
        "restarted after the kill: {:#}",
        lab.status()
    );

    let r = lab.run(&["fault", "pause", "recipe-api#1"]);
    assert_eq!(r.code, 0, "{r}");
    down_leaves_nothing(&lab, &name);
}
