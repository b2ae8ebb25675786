//! The docker runtime against this machine's real engine: the default lab as containers (one
//! network, names that resolve, ports on 127.0.0.1, logs in `lab logs`, the hub's data in a
//! volume that outlives `down`), a container killed from outside restarted per policy, and
//! nothing labelled with the lab left after `lab down` — also when `lab up` was SIGKILLed, and
//! when the engine refuses a port halfway through `up`. Leftovers are asked of the engine API.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters as q;

use crate::util::*;

pub(crate) fn engine_here() -> bool {
    std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// (containers, networks, volumes) the engine holds with `lab.project=project`.
fn labelled(project: &str) -> (Vec<String>, Vec<String>, Vec<String>) {
    block_on(async {
        let docker = Docker::connect_with_local_defaults()
            .unwrap()
            .negotiate_version()
            .await
            .unwrap();
        let filters: HashMap<&str, Vec<String>> =
            HashMap::from([("label", vec![format!("lab.project={project}")])]);
        let containers = docker
            .list_containers(Some(
                q::ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .into_iter()
            .flat_map(|c| c.names.unwrap_or_default())
            .collect();
        let networks = docker
            .list_networks(Some(
                q::ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .into_iter()
            .filter_map(|n| n.name)
            .collect();
        let volumes = docker
            .list_volumes(Some(
                q::ListVolumesOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .unwrap()
            .volumes
            .unwrap_or_default()
            .into_iter()
            .map(|v| v.name)
            .collect();
        (containers, networks, volumes)
    })
}

/// The default lab under a name of its own (container names are engine-wide).
pub(crate) fn docker_lab(name: &str) -> LabDir {
    let toml = DEFAULT_LAB.replace(
        "name = \"sample-app\"",
        &format!("name = \"{name}\"\nruntime = \"docker\""),
    );
    assert_ne!(toml, DEFAULT_LAB);
    LabDir::new(BIN, &toml)
}

/// `lab down` leaves no container or network labelled with the lab (then its volumes go too).
pub(crate) fn down_leaves_nothing(lab: &LabDir, name: &str) {
    let down = lab.run(&["down", "--grace", "2s"]);
    assert_eq!(down.code, 0, "{down}");
    let (containers, networks, _) = labelled(name);
    assert!(
        containers.is_empty() && networks.is_empty(),
        "left: {containers:?} {networks:?}\n{down}"
    );
    let _ = lab.run(&["down", "--volumes"]);
}

pub(crate) fn container_of(lab: &LabDir, service: &str, n: u64) -> String {
    lab.instances()
        .into_iter()
        .find(|i| i["service"] == service && i["instance"] == n)
        .and_then(|i| i["container"].as_str().map(str::to_owned))
        .unwrap_or_else(|| panic!("{service}#{n} has no container: {:#}", lab.status()))
}

#[test]
fn the_default_lab_runs_as_containers_and_down_leaves_nothing() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dock-{}", std::process::id());
    let lab = docker_lab(&name);
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    assert!(
        inst.iter().all(|i| i["container"].is_string()),
        "every instance is a container: {inst:#?}"
    );
    let (containers, networks, _) = labelled(&name);
    assert_eq!(containers.len(), DEFAULT_INSTANCES, "{containers:?}");
    assert_eq!(networks, vec![format!("{name}_default")]);

    // Through the proxy's published port to web-api, which reaches recipe-api by its name on
    // the lab's network.
    let proxy = addr_of(&inst, "proxy");
    assert!(proxy.starts_with("127.0.0.1:"), "{proxy}");
    let v = get_json_200(&proxy, "/");
    assert_eq!(v["producer_data"]["recipe"]["id"], 42);
    assert_eq!(
        v["consumer_pid"], 1,
        "web-api is its container's first process"
    );
    // The engine runs lab.toml's health check too (`/lab probe`, the image has no shell).
    let health = poll(Duration::from_secs(30), Duration::from_millis(200), || {
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "--format",
                "{{.State.Health.Status}} {{json .Config.Healthcheck.Test}}",
                &container_of(&lab, "web-api", 1),
            ])
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        text.starts_with("healthy").then_some(text)
    })
    .expect("Docker's own healthcheck reports healthy");
    assert!(
        health.contains(r#""/lab","probe","http://127.0.0.1:"#),
        "{health}"
    );
    let logs = lab.run(&["logs", "web-api"]);
    assert!(logs.stdout.contains("as container"), "{logs}");
    // The request's log document reached the hub (in its own container) from web-api's.
    let found = poll(DEADLINE, Duration::from_millis(200), || {
        let r = lab.run(&["logs", "--query", "type:request-outgoing", "--json"]);
        r.stdout.contains("recipe-api").then_some(r.stdout)
    })
    .expect("web-api's log documents reach the hub");
    assert!(found.contains(":"), "{found}");

    // A container killed from outside is restarted by the supervisor (restart = on-failure).
    let old = container_of(&lab, "recipe-api", 1);
    let kill = std::process::Command::new("docker")
        .args(["kill", &old])
        .output()
        .unwrap();
    assert!(kill.status.success(), "{kill:?}");
    let back = poll(DEADLINE, EVERY, || {
        lab.instances().into_iter().find(|i| {
            i["service"] == "recipe-api"
                && i["instance"] == 1
                && i["health"] == "healthy"
                && i["container"].as_str().is_some_and(|c| c != old)
        })
    })
    .unwrap_or_else(|| panic!("recipe-api#1 not restarted: {:#}", lab.status()));
    assert_eq!(back["restarts"], 1, "{back:#}");
    // The dashboard (the hub in its container reads the state through a mount) shows every
    // instance's container, the restart, and the proxy's servers.
    let dash = up
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("dashboard: http://"))
        .map(|a| a.trim_end_matches('/').to_owned())
        .unwrap_or_else(|| panic!("no dashboard line: {up}"));
    let overview = poll(DEADLINE, Duration::from_millis(200), || {
        let (_, body) = http_get(&dash, "/api/overview").ok()?;
        let v: serde_json::Value = serde_json::from_str(&body).ok()?;
        let rows = v["instances"].as_array()?;
        let restarted = rows.iter().any(|i| {
            i["key"] == "recipe-api#1"
                && i["data"]["restarts"] == 1
                && i["data"]["container"]
                    .as_str()
                    .is_some_and(|c| back["container"].as_str().is_some_and(|b| b.starts_with(c)))
        });
        let servers_up = v["backends"]
            .as_array()?
            .iter()
            .filter(|b| b["data"]["status"] == "UP")
            .count();
        (rows.len() == DEFAULT_INSTANCES && restarted && servers_up == 2).then_some(v)
    })
    .unwrap_or_else(|| panic!("the overview never showed the containers and the restart"));
    assert!(
        overview["instances"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["data"]["container"].is_string() && i["data"]["pid"].is_null()),
        "{overview:#}"
    );
    assert!(
        back["last_exit"]
            .as_str()
            .is_some_and(|e| e.contains("137")),
        "{back:#}"
    );
    let (containers, _, _) = labelled(&name);
    assert_eq!(
        containers.len(),
        DEFAULT_INSTANCES,
        "the killed container was replaced, not kept: {containers:?}"
    );

    // down: no container, no network; the hub's named volume stays for the next `up`.
    let down = lab.run(&["down"]);
    assert_eq!(down.code, 0, "{down}");
    let (containers, networks, volumes) = labelled(&name);
    assert!(
        containers.is_empty() && networks.is_empty(),
        "{containers:?} {networks:?}"
    );
    assert_eq!(volumes, vec![format!("{name}_hub-data")]);

    // The hub's data survived: last run's log documents are found by the next run's hub.
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    let again = lab.run(&["logs", "--query", "type:request-outgoing", "--json"]);
    assert!(again.stdout.contains("recipe-api"), "{again}");

    let down = lab.run(&["down", "--volumes"]);
    assert_eq!(down.code, 0, "{down}");
    let left = labelled(&name);
    assert_eq!(left, (vec![], vec![], vec![]), "{down}");
}

#[test]
fn down_after_lab_up_was_sigkilled_leaves_no_container_or_network() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dockkill-{}", std::process::id());
    let lab = docker_lab(&name);
    // A foreground `lab up`, killed while it is still starting services.
    let mut up = lab
        .cmd(&["up", "--ports", "ephemeral"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let started = poll(Duration::from_secs(60), EVERY, || {
        let (c, _, _) = labelled(&name);
        (c.len() >= 2).then_some(c)
    });
    sigkill(u64::from(up.id()));
    let _ = up.wait();
    assert!(started.is_some(), "lab up started no container");
    let (containers, networks, _) = labelled(&name);
    assert!(!containers.is_empty() && !networks.is_empty());

    down_leaves_nothing(&lab, &name);
}

#[test]
fn a_port_the_engine_cannot_publish_fails_up_and_rolls_back() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dockport-{}", std::process::id());
    // recipe-api first and healthy, then web-api whose port another program takes after the
    // port checks (between `lab` choosing it and the engine publishing it).
    let toml = format!(
        "name = \"{name}\"\nruntime = \"docker\"\n[services.recipe-api]\nbuiltin = \"recipe-api\"\n[services.web-api]\nbuiltin = \"web-api\"\nenv = {{ TARGET = \"recipe-api\" }}\n"
    );
    let lab = LabDir::new(BIN, &toml);
    // Make sure the image exists first, so the race below is only about ports.
    let built = lab.run(&["images", "build"]);
    assert_eq!(built.code, 0, "{built}");
    let up = lab
        .cmd(&["up", "--ports", "ephemeral"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // web-api's port is in the state file as soon as `up` begins; take it before the engine.
    let port = poll(Duration::from_secs(30), Duration::from_millis(2), || {
        let state: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(lab.state_file()).ok()?).ok()?;
        state["instances"]
            .as_array()?
            .iter()
            .find(|i| i["service"] == "web-api")
            .and_then(|i| i["port"].as_u64())
    })
    .expect("lab up records its plan");
    let holder = std::net::TcpListener::bind(("127.0.0.1", port as u16));
    let out = up.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    if holder.is_err() {
        // The engine published it before us: the race was lost, nothing to assert about it.
        eprintln!("note: the engine took port {port} first; the refusal path was not exercised");
        let _ = lab.run(&["down", "--volumes"]);
        return;
    }
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains(&format!("port {port} taken")),
        "the error names the port: {text}"
    );
    assert!(
        text.contains("everything that had started was stopped again"),
        "{text}"
    );
    let left = labelled(&name);
    assert_eq!(left, (vec![], vec![], vec![]), "rolled back: {text}");
}

#[test]
fn every_chapter_check_passes_on_the_docker_runtime() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dockcheck-{}", std::process::id());
    // A 1 s StatsD flush, as in the chapter 4 e2e test, so ch4 does not wait 10 s flushes.
    let toml = DEFAULT_LAB
        .replace(
            "name = \"sample-app\"",
            &format!("name = \"{name}\"\nruntime = \"docker\""),
        )
        .replace(
            "flush_interval = \"10s\"",
            "flush_interval = \"1s\"\nalert_interval = \"500ms\"",
        );
    let lab = LabDir::new(BIN, &toml);
    up_detached(&lab, DEFAULT_INSTANCES);
    let r = lab.run(&["check", "ch1", "ch2", "ch3", "ch4", "ch5", "--json"]);
    let report: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r}"));
    let failed: Vec<String> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["status"] != "pass")
        // Fault edges run on the process runtime only: those scenarios say so on docker.
        .filter(|s| {
            !(s["status"] == "not-applicable"
                && ["ch3.slow-upstream", "ch3.retry", "ch4.fault-alert"]
                    .contains(&s["name"].as_str().unwrap_or("")))
        })
        .map(|s| format!("{:#}", s))
        .collect();
    assert!(
        failed.is_empty(),
        "failed on docker: {failed:#?}\n{}",
        r.stderr
    );
    assert_eq!(r.code, 0, "{r}");
    let chapters: std::collections::BTreeSet<u64> = report["scenarios"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["chapter"].as_u64())
        .collect();
    assert_eq!(chapters, (1..=5).collect(), "{}", r.stdout);
    assert_eq!(
        report["source"], "running",
        "the checks ran against the docker lab"
    );
    let down = lab.run(&["down", "--volumes"]);
    assert_eq!(down.code, 0, "{down}");
    assert_eq!(labelled(&name), (vec![], vec![], vec![]));
}

#[test]
fn a_command_service_runs_from_its_own_image_built_from_a_dockerfile() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dockbuild-{}", std::process::id());
    let v = env!("CARGO_PKG_VERSION");
    // A learner's producer, containerised by their own Dockerfile (here on top of the lab's
    // recipe-api image, since this engine cannot pull node:20); web-api reaches it by name.
    let toml = format!(
        "name = \"{name}\"\nruntime = \"docker\"\n\
         [services.recipe-api]\ncommand = [\"node\", \"producer-http-basic.js\"]\nbuild = \"recipe\"\n\
         [services.web-api]\nbuiltin = \"web-api\"\nenv = {{ TARGET = \"recipe-api\" }}\n"
    );
    let lab = LabDir::new(BIN, &toml);
    std::fs::create_dir(lab.path().join("recipe")).unwrap();
    lab.write(
        "recipe/Dockerfile",
        &format!("FROM lab/recipe-api:{v}\nLABEL made.by=learner\n"),
    );
    let built = lab.run(&["images", "build"]);
    assert_eq!(built.code, 0, "{built}");
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    assert!(
        up.stdout
            .contains(&format!("building lab-{name}-recipe-api:latest")),
        "the build is shown: {up}"
    );
    let inst = wait_all_healthy(&lab, 2);
    let web = addr_of(&inst, "web-api");
    let v = get_json_200(&web, "/");
    assert_eq!(v["producer_data"]["recipe"]["id"], 42, "{v}");
    let down = lab.run(&["down", "--volumes"]);
    assert_eq!(down.code, 0, "{down}");
    assert_eq!(labelled(&name), (vec![], vec![], vec![]));
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &format!("lab-{name}-recipe-api:latest")])
        .output();
}

#[test]
fn a_missing_image_is_named_before_anything_starts() {
    if !require("a Docker engine", engine_here(), "the docker runtime test") {
        return;
    }
    let name = format!("t-dockmiss-{}", std::process::id());
    let toml = format!(
        "name = \"{name}\"\nruntime = \"docker\"\n\
         [services.recipe-api]\nbuiltin = \"recipe-api\"\n\
         [services.mine]\ncommand = [\"node\", \"server.js\"]\nimage = \"no-such-image-{name}:1\"\n"
    );
    let lab = LabDir::new(BIN, &toml);
    let up = lab.run(&["up", "--ports", "ephemeral"]);
    assert_eq!(up.code, 1, "{up}");
    assert!(
        up.stdout
            .contains(&format!("no image no-such-image-{name}:1")),
        "{up}"
    );
    assert!(up.stdout.contains("cannot pull"), "the hint says why: {up}");
    assert_eq!(labelled(&name), (vec![], vec![], vec![]), "nothing started");
}

#[test]
fn haproxy_runs_as_a_container_from_the_hosts_binary() {
    if !require("a Docker engine", engine_here(), "the docker runtime test")
        || !require(
            "haproxy",
            lab_testkit::has_program("haproxy")
                || std::path::Path::new("/usr/sbin/haproxy").exists(),
            "its image is made from the host's binary",
        )
    {
        return;
    }
    let name = format!("t-dockha-{}", std::process::id());
    let toml = format!(
        "name = \"{name}\"\nruntime = \"docker\"\n\
         [services.recipe-api]\nbuiltin = \"recipe-api\"\nreplicas = 2\n\
         [proxy]\nengine = \"haproxy\"\n\
         [proxy.frontends.recipes]\nservice = \"recipe-api\"\nport = 0\nbalance = \"roundrobin\"\n"
    );
    let lab = LabDir::new(BIN, &toml);
    let inst = up_detached(&lab, 3);
    let proxy = addr_of(&inst, "proxy");
    // Both replicas answer through HAProxy, which found them by name on the lab's network.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..6 {
        let (status, _) = http_get(&proxy, "/recipes/42").unwrap();
        assert_eq!(status, 200);
    }
    for _ in 0..6 {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-D",
                "-",
                "-o",
                "/dev/null",
                &format!("http://{proxy}/recipes/42"),
            ])
            .output()
            .unwrap();
        let head = String::from_utf8_lossy(&out.stdout).to_lowercase();
        if let Some(l) = head.lines().find(|l| l.starts_with("x-lab-instance:")) {
            seen.insert(l.trim().to_owned());
        }
    }
    assert_eq!(seen.len(), 2, "round robin over both containers: {seen:?}");
    let image = std::process::Command::new("docker")
        .args([
            "inspect",
            "--format",
            "{{.Config.Image}}",
            &format!("{name}-proxy-1"),
        ])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&image.stdout).trim(),
        format!("lab/haproxy:{}", env!("CARGO_PKG_VERSION"))
    );
    let down = lab.run(&["down", "--volumes"]);
    assert_eq!(down.code, 0, "{down}");
    assert_eq!(labelled(&name), (vec![], vec![], vec![]));
}

/// The repository's root (where Cargo.toml is).
fn repo() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn the_dockerfiles_skeleton_is_a_workspace_cargo_accepts() {
    // The dependency stage of infra/docker/lab.Dockerfile builds this skeleton; cargo must
    // accept it as the same workspace (every member, every target file present).
    let out = tempfile::tempdir().unwrap();
    let skeleton = out.path().join("skeleton");
    let run = std::process::Command::new("sh")
        .arg(repo().join("infra/docker/skeleton.sh"))
        .arg(&skeleton)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(run.status.success(), "{run:?}");
    assert!(skeleton.join("Cargo.lock").exists());
    assert!(skeleton.join("services/recipe-api/contracts").is_dir());
    let stub = std::fs::read_to_string(skeleton.join("src/main.rs")).unwrap();
    assert_eq!(stub.trim(), "fn main() {}");
    let metadata = |dir: &std::path::Path| -> serde_json::Value {
        let meta = std::process::Command::new("cargo")
            .args([
                "metadata",
                "--offline",
                "--format-version",
                "1",
                "--no-deps",
            ])
            .current_dir(dir)
            .output()
            .unwrap();
        assert!(
            meta.status.success(),
            "{}",
            String::from_utf8_lossy(&meta.stderr)
        );
        serde_json::from_slice(&meta.stdout).unwrap()
    };
    let v = metadata(&skeleton);
    // Every member of the real workspace.
    let real = metadata(&repo());
    let members = |v: &serde_json::Value| v["workspace_members"].as_array().unwrap().len();
    assert_eq!(members(&v), members(&real), "{v:#}");
    assert!(members(&real) >= 10, "{real:#}");
}

#[test]
fn the_dockerfiles_prebuilt_stage_builds_and_runs_here() {
    if !require("a Docker engine", engine_here(), "the Dockerfile test") {
        return;
    }
    // A context as the Dockerfile describes it: rootfs/lab and its libraries.
    let ctx = tempfile::tempdir().unwrap();
    let rootfs = ctx.path().join("rootfs");
    std::fs::create_dir_all(&rootfs).unwrap();
    let strip = std::process::Command::new("strip")
        .args(["--strip-debug", "-o"])
        .arg(rootfs.join("lab"))
        .arg(BIN)
        .status()
        .unwrap();
    assert!(strip.success());
    let ldd = std::process::Command::new("ldd").arg(BIN).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .lines()
        .filter_map(|l| l.split("=>").last()?.split_whitespace().next())
        .filter(|p| p.starts_with('/'))
    {
        let to = rootfs.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, &to).unwrap();
    }
    let tag = format!("lab-dockerfile-test:{}", std::process::id());
    let build = std::process::Command::new("docker")
        .args(["build", "-q", "--target", "prebuilt", "-t", &tag, "-f"])
        .arg(repo().join("infra/docker/lab.Dockerfile"))
        .arg(ctx.path())
        .output()
        .unwrap();
    assert!(
        build.status.success(),
        "{}",
        String::from_utf8_lossy(&build.stderr)
    );
    let probe = std::process::Command::new("docker")
        .args([
            "run",
            "--rm",
            &tag,
            "probe",
            "http://127.0.0.1:9/",
            "--timeout",
            "1s",
        ])
        .output()
        .unwrap();
    let _ = std::process::Command::new("docker")
        .args(["rmi", "-f", &tag])
        .output();
    assert_eq!(
        probe.status.code(),
        Some(1),
        "the binary runs from the image and reports the closed port: {}",
        String::from_utf8_lossy(&probe.stderr)
    );
}
