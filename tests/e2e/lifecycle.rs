//! up / status / check / restart / down of the default lab, and the SIGKILL recovery paths.

use std::process::Stdio;
use std::time::Duration;

use crate::util::*;

#[test]
fn default_lab_up_check_down_on_free_ports() {
    let lab = default_lab();
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    assert!(
        up.stdout.contains("critical chain"),
        "startup breakdown missing: {up}"
    );
    assert!(up.stdout.contains("startup: all healthy in"), "{up}");

    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    for i in &inst {
        let addr = i["address"].as_str().unwrap();
        assert!(addr.starts_with("127.0.0.1:"), "{addr}");
        assert!(
            i["pid"].as_u64().is_some() && i["instance"].as_u64().is_some(),
            "{i}"
        );
        assert!(
            ["hub", "recipe-api", "web-api", "proxy"].contains(&i["service"].as_str().unwrap()),
            "{i}"
        );
    }
    // The chain works over the wire, directly and through the proxy's frontend.
    let web = addr_of(&inst, "web-api");
    let v = get_json_200(&web, "/");
    assert_eq!(v["producer_data"]["recipe"]["name"], "Chicken Tikka Masala");
    let front = addr_of(&inst, "proxy");
    let v = get_json_200(&front, "/");
    assert_eq!(v["producer_data"]["recipe"]["name"], "Chicken Tikka Masala");

    // A second `up` is refused while this one runs.
    let again = lab.run(&["up", "--detach"]);
    assert_eq!(again.code, 2, "{again}");
    assert!(again.stderr.contains("already running"), "{again}");

    // The chapter 1 checks pass against the running lab, in every output form.
    let junit = lab.path().join("report.xml");
    let check = lab.run(&["check", "ch1", "--json", "--junit", junit.to_str().unwrap()]);
    assert_eq!(check.code, 0, "{check}");
    let report: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(report["source"], "running");
    assert_eq!(report["passed"], 3, "{report:#}");
    assert!(
        report["scenarios"][0]["figures"]
            .as_array()
            .is_some_and(|f| !f.is_empty())
    );
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains("<testcase classname=\"ch1\" name=\"ch1.sample-app\""),
        "{xml}"
    );
    assert!(!xml.contains("<failure"), "{xml}");

    // (Service logs reach the file within a flush interval: poll.)
    let logged = poll(DEADLINE, EVERY, || {
        lab.run(&["logs", "web-api", "-n", "50"])
            .stdout
            .lines()
            .any(|l| l.starts_with("web-api#1 | ") && l.contains("path=/ "))
            .then_some(())
    });
    assert!(
        logged.is_some(),
        "{}",
        lab.run(&["logs", "web-api", "-n", "50"])
    );

    let before = pids_and_addrs(&lab);
    let down = lab.run(&["down"]);
    assert_eq!(down.code, 0, "{down}");
    assert_all_gone(&before);
    assert!(!lab.state_file().exists());
    assert!(lab.run(&["status"]).stdout.contains("no lab is running"));
}

#[test]
fn a_killed_instance_is_restarted_with_a_new_pid() {
    let lab = default_lab();
    up_detached(&lab, DEFAULT_INSTANCES);
    let restarted = kill_and_wait_restart(&lab, "recipe-api", 1);
    assert_eq!(restarted["restarts"], 1, "{restarted}");
    assert_eq!(restarted["last_exit"], "signal 9 (SIGKILL)", "{restarted}");

    let before = pids_and_addrs(&lab);
    assert_eq!(lab.run(&["down"]).code, 0);
    assert_all_gone(&before);
}

#[test]
fn down_after_up_was_killed_leaves_nothing() {
    let lab = default_lab();
    // A foreground `lab up`, killed with SIGKILL once the lab is up: no chance to clean up.
    let mut up = lab
        .cmd(&["up", "--ports", "ephemeral"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = lab.state_file();
    poll(DEADLINE, EVERY, || {
        let s = std::fs::read_to_string(&state).ok()?;
        let v: serde_json::Value = serde_json::from_str(&s).ok()?;
        (v["phase"] == "up").then_some(())
    })
    .expect("lab up did not come up");
    let before = pids_and_addrs(&lab);
    assert_eq!(before.len(), DEFAULT_INSTANCES);
    up.kill().unwrap();
    up.wait().unwrap();

    // The instances outlive their supervisor...
    assert!(before.iter().all(|(pid, _)| alive(*pid)));
    let status = lab.status();
    assert_eq!(status["supervisor"]["alive"], false, "{status:#}");

    // ...until `lab down` stops them from the recorded state.
    let down = lab.run(&["down", "--grace", "3s"]);
    assert_eq!(down.code, 0, "{down}");
    assert!(down.stdout.contains("without a supervisor"), "{down}");
    assert_all_gone(&before);
    assert!(!state.exists());
}

#[test]
fn taken_port_is_named_and_auto_shifts_it() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port();
    let toml = format!("[services.recipe-api]\nbuiltin = \"recipe-api\"\nport = {port}\n");
    let lab = LabDir::new(BIN, &toml);

    let up = lab.run(&["up", "--detach"]);
    assert_eq!(up.code, 2, "{up}");
    let want = format!(
        "lab.toml:3:8: port {port} (recipe-api#1) is taken by pid {}",
        std::process::id()
    );
    assert!(up.stderr.contains(&want), "want {want:?} in {up}");
    assert!(up.stderr.contains("--ports auto"), "{up}");
    assert!(!lab.state_file().exists(), "nothing may start");

    let up = lab.run(&["up", "--detach", "--ports", "auto"]);
    assert_eq!(up.code, 0, "{up}");
    assert!(up.stdout.contains(&format!("port {port} is taken")), "{up}");
    let inst = wait_all_healthy(&lab, 1);
    assert_ne!(inst[0]["address"], format!("127.0.0.1:{port}"));
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn check_starts_its_own_lab_when_none_runs() {
    let lab = default_lab();
    let check = lab.run(&["check", "ch1.not-found"]);
    assert_eq!(check.code, 0, "{check}");
    assert!(
        check.stdout.contains("starting sample-app on free ports"),
        "{check}"
    );
    assert!(check.stdout.contains("✓ ch1.not-found"), "{check}");
    assert!(check.stdout.contains("1 passed, 0 failed"), "{check}");
    assert!(!lab.state_file().exists());

    let unknown = lab.run(&["check", "ch1.sample"]);
    assert_eq!(unknown.code, 2, "{unknown}");
    assert!(
        unknown.stderr.contains("did you mean `ch1.sample-app`"),
        "{unknown}"
    );
}

#[test]
fn ctrl_c_stops_the_foreground_lab_in_reverse_order() {
    let lab = default_lab();
    let up = lab
        .cmd(&["up", "--ports", "ephemeral"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    poll(DEADLINE, EVERY, || {
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(lab.state_file()).ok()?).ok()?;
        (v["phase"] == "up").then_some(())
    })
    .expect("lab up did not come up");
    let before = pids_and_addrs(&lab);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(up.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = lab_testkit::Run::from(up.wait_with_output().unwrap());
    assert_eq!(out.code, 0, "{out}");
    // Logs were streamed with instance prefixes while it ran.
    assert!(out.stdout.contains("recipe-api#1 | "), "{out}");
    let web = out
        .stdout
        .find("stopping web-api")
        .expect("web-api stopped");
    let recipe = out
        .stdout
        .find("stopping recipe-api")
        .expect("recipe-api stopped");
    assert!(web < recipe, "consumers stop before producers: {out}");
    let hub = out.stdout.find("stopping hub").expect("hub stopped");
    assert!(
        recipe < hub,
        "the hub stops last, after what reports to it: {out}"
    );
    assert!(out.stdout.contains("✓ stopped"), "{out}");
    assert_all_gone(&before);
    assert!(!lab.state_file().exists());
}

#[test]
fn logs_follow_shows_new_requests() {
    let lab = default_lab();
    assert_eq!(lab.run(&["up", "--detach", "--ports", "ephemeral"]).code, 0);
    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    let recipe = inst
        .iter()
        .find(|i| i["service"] == "recipe-api" && i["instance"] == 2)
        .unwrap();
    let addr = recipe["address"].as_str().unwrap().to_owned();

    let (mut follow, rx) = follow_lines(&lab, &["logs", "recipe-api#2", "-f", "-n", "0"]);
    // Keep asking for a marker path until the follower shows it (it may attach after the first).
    let seen = poll(DEADLINE, Duration::from_millis(100), || {
        let _ = http_get(&addr, "/recipes/777");
        rx.try_iter()
            .find(|l| l.starts_with("recipe-api#2 | ") && l.contains("/recipes/777"))
    });
    follow.kill().unwrap();
    follow.wait().unwrap();
    assert!(seen.is_some(), "lab logs -f never showed the request");
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn up_after_a_killed_supervisor_cleans_up_first() {
    let lab = default_lab();
    assert_eq!(lab.run(&["up", "--detach", "--ports", "ephemeral"]).code, 0);
    let old = pids_and_addrs(&lab);
    let supervisor = lab.status()["supervisor"]["pid"].as_u64().unwrap();
    sigkill(supervisor);
    poll(DEADLINE, EVERY, || (!alive(supervisor)).then_some(())).expect("supervisor died");

    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    assert!(up.stdout.contains("was not stopped"), "{up}");
    // (Only pids: the new lab may be handed one of the old free ports again.)
    assert!(
        old.iter().all(|(pid, _)| !alive(*pid)),
        "an old instance survived: {old:?}"
    );
    let fresh = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    assert!(
        fresh
            .iter()
            .all(|i| old.iter().all(|(p, _)| i["pid"].as_u64() != Some(*p)))
    );
    assert_eq!(lab.run(&["down"]).code, 0);
}

#[test]
fn probe_exits_0_only_for_a_2xx_answer() {
    let lab = LabDir::new(
        BIN,
        "[services.recipe-api]\nbuiltin = \"recipe-api\"\nport = 0\n",
    );
    assert_eq!(lab.run(&["up", "--detach"]).code, 0);
    let addr = wait_all_healthy(&lab, 1)[0]["address"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        lab.run(&["probe", &format!("http://{addr}/health")]).code,
        0
    );
    let missing = lab.run(&["probe", &format!("http://{addr}/nope")]);
    assert_eq!(missing.code, 1, "{missing}");
    assert!(missing.stderr.contains("404"), "{missing}");
    assert_eq!(lab.run(&["down"]).code, 0);
    let gone = lab.run(&[
        "probe",
        &format!("http://{addr}/health"),
        "--timeout",
        "500ms",
    ]);
    assert_eq!(gone.code, 1, "{gone}");
}
