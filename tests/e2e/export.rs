//! `lab export compose`: the default lab as a Compose file that this machine's docker-compose
//! accepts, and that reads back into the same model.

use crate::util::*;

#[test]
fn the_default_lab_exports_to_a_valid_compose_file() {
    let lab = default_lab();
    let r = lab.run(&["export", "compose"]);
    assert_eq!(r.code, 0, "{r}");
    let file = lab.write("docker-compose.yml", &r.stdout);
    // Read back: the same services, in start order, with the book's shape.
    let c: docker_compose_types::Compose = serde_norway::from_str(&r.stdout).unwrap();
    let names: Vec<&str> = c.services.0.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "hub",
            "recipe-api-1",
            "recipe-api-2",
            "web-api-1",
            "web-api-2",
            "proxy"
        ]
    );
    for (name, s) in &c.services.0 {
        let s = s.as_ref().unwrap();
        let docker_compose_types::Ports::Short(ports) = &s.ports else {
            panic!("{name}: long ports")
        };
        assert!(
            ports.iter().all(|p| p.starts_with("127.0.0.1:")),
            "{name}: {ports:?}"
        );
        assert!(
            s.image
                .as_deref()
                .is_some_and(|i| i.starts_with("lab/lab:")),
            "{name}"
        );
    }
    let web = c.services.0["web-api-1"].as_ref().unwrap();
    let docker_compose_types::Environment::KvPair(env) = &web.environment else {
        panic!()
    };
    let var = |k: &str| env[k].as_ref().unwrap().to_string();
    assert_eq!(
        var("TARGET"),
        "recipe-api:4000",
        "the book's service-name address"
    );
    assert_eq!(var("ZIPKIN"), "hub:9411");
    let docker_compose_types::DependsOnOptions::Conditional(deps) = &web.depends_on else {
        panic!()
    };
    assert_eq!(deps["recipe-api-1"].condition, "service_healthy");
    assert_eq!(deps["hub"].condition, "service_healthy");
    let test = match &web.healthcheck.as_ref().unwrap().test {
        Some(docker_compose_types::HealthcheckTest::Multiple(t)) => t.clone(),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        test,
        ["CMD", "/lab", "probe", "http://127.0.0.1:3001/health"]
    );
    // The hub's inline config reads the proxy's stats page by its service name (the overview).
    let hub = c.services.0["hub"].as_ref().unwrap();
    let Some(docker_compose_types::Command::Args(args)) = &hub.command else {
        panic!()
    };
    let hub_cfg: serde_json::Value = serde_json::from_str(&args[3]).unwrap();
    assert_eq!(
        hub_cfg["proxy_stats"][0]["url"], "http://proxy:3000/admin?stats;csv",
        "{hub_cfg}"
    );
    // The proxy's inline config balances the two web-api containers by name.
    let proxy = c.services.0["proxy"].as_ref().unwrap();
    let Some(docker_compose_types::Command::Args(args)) = &proxy.command else {
        panic!()
    };
    let cfg: lab_proxy::config::ProxyConfig = serde_json::from_str(&args[3]).unwrap();
    let servers: Vec<&str> = cfg.frontends[0]
        .servers
        .iter()
        .map(|s| s.addr.as_str())
        .collect();
    assert_eq!(servers, ["web-api-1:3001", "web-api-2:3001"]);

    // What docker-compose itself says of it.
    if require(
        "docker-compose",
        lab_testkit::has_program("docker-compose"),
        "the Compose CLI validates the file",
    ) {
        let out = std::process::Command::new("docker-compose")
            .arg("-f")
            .arg(&file)
            .args(["config", "-q"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker-compose config: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn a_command_service_exports_with_its_image_or_build_and_never_without() {
    let lab = LabDir::new(
        BIN,
        "[services.mine]\ncommand = [\"python3\", \"app.py\"]\nport = 0\n",
    );
    let r = lab.run(&["export", "compose"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("`mine` runs a command"), "{r}");
    assert!(
        r.stderr.contains("`build = \"dir\"`"),
        "the fix is named: {r}"
    );

    // With `build`, Compose builds it (and the file is valid); a cluster cannot.
    let lab = LabDir::new(
        BIN,
        "[services.mine]\ncommand = [\"python3\", \"app.py\"]\nbuild = \"app\"\nport = 4100\n",
    );
    std::fs::create_dir(lab.path().join("app")).unwrap();
    lab.write(
        "app/Dockerfile",
        "FROM python:3.11-slim\nCMD [\"python3\", \"app.py\"]\n",
    );
    let r = lab.run(&["export", "compose"]);
    assert_eq!(r.code, 0, "{r}");
    let c: docker_compose_types::Compose = serde_norway::from_str(&r.stdout).unwrap();
    let mine = c.services.0["mine"].as_ref().unwrap();
    assert_eq!(
        mine.build_,
        Some(docker_compose_types::BuildStep::Simple("./app".into()))
    );
    assert!(
        mine.command.is_none() && mine.healthcheck.is_none(),
        "{mine:?}"
    );
    if lab_testkit::has_program("docker-compose") {
        lab.write("docker-compose.yml", &r.stdout);
        let ok = std::process::Command::new("docker-compose")
            .args(["config", "-q"])
            .current_dir(lab.path())
            .output()
            .unwrap();
        assert!(ok.status.success(), "{ok:?}\n{}", r.stdout);
    }
    let r = lab.run(&["export", "k8s"]);
    assert_eq!(r.code, 2, "{r}");
    assert!(r.stderr.contains("a cluster cannot build"), "{r}");

    // With `image`, both.
    let lab = LabDir::new(
        BIN,
        "[services.mine]\ncommand = [\"python3\", \"app.py\"]\nimage = \"me/mine:1\"\nport = 4100\n",
    );
    let r = lab.run(&["export", "k8s"]);
    assert_eq!(r.code, 0, "{r}");
    assert!(r.stdout.contains("image: me/mine:1"), "{r}");
}

#[test]
fn the_default_lab_exports_to_valid_kubernetes_manifests() {
    let lab = default_lab();
    let r = lab.run(&["export", "k8s"]);
    assert_eq!(r.code, 0, "{r}");
    // Round trip through the typed model: four Services, then four Deployments.
    let docs: Vec<&str> = r.stdout.split("---\n").collect();
    let kinds: Vec<String> = docs
        .iter()
        .map(|d| {
            serde_norway::from_str::<serde_json::Value>(d).unwrap()["kind"]
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "Service",
            "Service",
            "Service",
            "Service",
            "Deployment",
            "Deployment",
            "Deployment",
            "Deployment"
        ]
    );
    let recipe: k8s_openapi::api::apps::v1::Deployment = serde_norway::from_str(
        docs.iter()
            .find(|d| d.contains("kind: Deployment") && d.contains("name: recipe-api"))
            .unwrap(),
    )
    .unwrap();
    assert_eq!(recipe.spec.replicas, Some(2));
    let c = &recipe.spec.template.spec.as_ref().unwrap().containers[0];
    assert_eq!(
        c.args.as_deref(),
        Some(&["serve".to_owned(), "recipe-api".to_owned()][..])
    );
    let live = c
        .liveness_probe
        .as_ref()
        .unwrap()
        .http_get
        .as_ref()
        .unwrap();
    assert_eq!(live.path.as_deref(), Some("/health"));
    assert_eq!(
        live.port,
        k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(4000)
    );
    assert!(c.readiness_probe.is_some());
    let web: k8s_openapi::api::apps::v1::Deployment = serde_norway::from_str(
        docs.iter()
            .find(|d| d.contains("kind: Deployment") && d.contains("name: web-api"))
            .unwrap(),
    )
    .unwrap();
    let env = web.spec.template.spec.unwrap().containers[0]
        .env
        .clone()
        .unwrap();
    let target = env.iter().find(|e| e.name == "TARGET").unwrap();
    assert_eq!(
        target.value.as_deref(),
        Some("recipe-api:4000"),
        "a Service name, as in the book"
    );

    if !require(
        "kubernetes-validate",
        lab_testkit::has_program("kubernetes-validate"),
        "pip install kubernetes-validate (scripts/install-deps)",
    ) {
        return;
    }
    let file = lab.write("k8s.yml", &r.stdout);
    let check = |f: &std::path::Path| {
        std::process::Command::new("kubernetes-validate")
            .args(["-k", "1.37.0", "--strict"])
            .arg(f)
            .output()
            .unwrap()
    };
    let out = check(&file);
    assert!(
        out.status.success(),
        "kubernetes-validate: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The validator is not a rubber stamp: a wrong type fails it.
    let bad = lab.write(
        "bad.yml",
        &r.stdout.replacen("replicas: 2", "replicas: two", 1),
    );
    assert!(!check(&bad).status.success(), "a bad manifest passed");
}

/// The default lab's services (no hub or proxy, on ports of their own so that nothing else
/// here collides), for a deployment lab did not start.
const COMPOSE_LAB: &str = r#"
name = "endpoints"

[services.recipe-api]
builtin = "recipe-api"
replicas = 2
port = "14000-14001"

[services.web-api]
builtin = "web-api"
replicas = 2
port = "13001-13002"
env = { TARGET = "recipe-api" }
"#;

#[test]
fn lab_check_runs_against_a_compose_deployment_it_did_not_start() {
    let engine = std::process::Command::new("docker")
        .args(["version", "--format", "{{.Server.Version}}"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !require(
        "a Docker engine",
        engine,
        "the deployment under test runs as containers",
    ) || !require(
        "docker-compose",
        lab_testkit::has_program("docker-compose"),
        "the exported lab is brought up by docker-compose",
    ) {
        return;
    }
    let lab = LabDir::new(BIN, COMPOSE_LAB);
    let built = lab.run(&["images", "build"]);
    assert_eq!(built.code, 0, "{built}");
    let r = lab.run(&["export", "compose"]);
    assert_eq!(r.code, 0, "{r}");
    lab.write("docker-compose.yml", &r.stdout);
    let project = format!("labendpoints{}", std::process::id());
    let compose = |args: &[&str]| {
        std::process::Command::new("docker-compose")
            .args(["-p", &project])
            .args(args)
            .current_dir(lab.path())
            .output()
            .unwrap()
    };
    struct Down<'a>(&'a dyn Fn(&[&str]) -> std::process::Output);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            let _ = (self.0)(&["down", "-v", "--remove-orphans"]);
        }
    }
    let _down = Down(&compose);
    let up = compose(&["up", "-d"]);
    assert!(
        up.status.success(),
        "{}",
        String::from_utf8_lossy(&up.stderr)
    );
    for addr in [
        "127.0.0.1:14000",
        "127.0.0.1:14001",
        "127.0.0.1:13001",
        "127.0.0.1:13002",
    ] {
        let ok = poll(std::time::Duration::from_secs(60), EVERY, || {
            http_get(addr, "/health").ok().filter(|(s, _)| *s == 200)
        });
        assert!(ok.is_some(), "{addr} never answered /health");
    }
    // Nothing of lab runs here: the services are the engine's.
    assert!(!lab.state_file().exists());
    let check = lab.run(&[
        "check",
        "ch1",
        "ch2",
        "ch3.round-robin",
        "--json",
        "--endpoint",
        "recipe-api=http://127.0.0.1:14000",
        "--endpoint",
        "recipe-api=http://127.0.0.1:14001",
        "--endpoint",
        "web-api=http://127.0.0.1:13001",
        "--endpoint",
        "web-api=http://127.0.0.1:13002",
    ]);
    assert_eq!(check.code, 0, "{check}");
    let v: serde_json::Value = serde_json::from_str(&check.stdout).unwrap();
    assert_eq!(v["source"], "endpoints");
    let scenarios = v["scenarios"].as_array().unwrap();
    let status = |n: &str| {
        scenarios.iter().find(|s| s["name"] == n).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    for n in [
        "ch1.sample-app",
        "ch1.not-found",
        "ch2.http-json",
        "ch2.gzip",
        "ch2.graphql",
        "ch2.grpc",
        "ch2.consumers",
        "ch2.serialization",
        "ch3.round-robin",
    ] {
        assert_eq!(status(n), "pass", "{n}: {check}");
        let s = &scenarios.iter().find(|s| s["name"] == n).unwrap()["subjects"];
        assert!(
            s.as_array()
                .unwrap()
                .iter()
                .any(|x| x["kind"] == "endpoint"
                    && x["what"].as_str().unwrap().contains("(--endpoint)")),
            "{n} ran against the deployment: {s}"
        );
    }
    // What lab cannot start a copy of over there does not apply.
    assert_eq!(status("ch2.https"), "not-applicable", "{check}");
}
