//! `lab check all` against a reader's own code written the book's way: the book-style fixtures
//! of `tests/fixtures/book-style/` (one producer and one consumer file per protocol, each a
//! `command` service probed over tcp). Every applicable scenario passes against the fixture
//! itself (its pid in the evidence), the rest are named not applicable, and the scenarios that
//! compare process models say the learner's code was not involved.

use std::collections::BTreeSet;
use std::path::Path;

use crate::util::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/book-style");
const CONTRACTS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/services/recipe-api/contracts");

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            if e.file_name() != "__pycache__" {
                copy_dir(&e.path(), &dest);
            }
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A reader's checkout: the fixtures, and the contract files in `shared/` under the book's names.
pub fn book_checkout() -> LabDir {
    let toml = std::fs::read_to_string(format!("{FIXTURES}/lab.toml")).unwrap();
    // The hub on free ports, but StatsD where the book's metrics consumer sends it.
    let toml = toml.replace(
        "[hub]\n",
        "[hub]\nstatsd_port = 8125\nlogs_port = 0\nzipkin_port = 0\nhttp_port = 0\ncarbon_port = 0\notlp_http_port = 0\notlp_grpc_port = 0\n",
    );

    let lab = LabDir::new(BIN, &toml);
    for d in ["lib", "recipe-api", "web-api"] {
        copy_dir(&Path::new(FIXTURES).join(d), &lab.path().join(d));
    }
    std::fs::create_dir_all(lab.path().join("shared")).unwrap();
    std::fs::copy(
        format!("{CONTRACTS}/recipe.proto"),
        lab.path().join("shared/grpc-recipe.proto"),
    )
    .unwrap();
    std::fs::copy(
        format!("{CONTRACTS}/recipe.graphql"),
        lab.path().join("shared/graphql-schema.gql"),
    )
    .unwrap();
    lab
}

pub fn python_book_peers() -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import grpc, grpc_tools, graphql"])
        .status()
        .is_ok_and(|s| s.success());
    require(
        "python3 with grpcio, grpcio-tools and graphql-core",
        ok,
        "the book-style fixtures are Python (scripts/install-deps installs them)",
    )
}

/// Scenarios whose subject is the learner's role: each must name one of the fixtures.
const ON_THE_FIXTURES: &[&str] = &[
    "ch1.sample-app",
    "ch1.not-found",
    "ch2.http-json",
    "ch2.https",
    "ch2.graphql",
    "ch2.grpc",
    "ch2.consumers",
    "ch2.serialization",
    "ch3.cluster",
    "ch3.round-robin",
    "ch3.compression",
    "ch3.tls-termination",
    "ch3.stats",
    "ch3.load-baseline",
    "ch3.proxy-concerns",
    "ch3.protocol-concerns",
    "ch4.environment",
    "ch4.logs",
    "ch4.metrics",
    "ch4.alerting",
    "ch4.tracing",
    "ch4.pause",
    "ch4.fault-alert",
    "ch3.slow-upstream",
    "ch3.retry",
];

/// Scenarios that compare process models or break things on parts of their own: they say so.
const ON_HELPERS: &[&str] = &[
    "ch1.event-loop",
    "ch3.cluster-scaling",
    "ch3.health-failover",
    "ch3.backpressure",
    "ch4.health",
];

#[test]
fn lab_check_all_holds_book_style_services_to_the_book_and_names_what_it_ran_against() {
    if !python_book_peers() {
        return;
    }
    let lab = book_checkout();
    // Fault edges on every TARGET, so `lab check ch4.fault-alert` breaks what a consumer calls.
    let toml = std::fs::read_to_string(lab.path().join("lab.toml")).unwrap();
    // And two recipe-api instances, so `ch3.retry` has another server to retry on.
    let toml = toml.replacen(
        "[services.recipe-api]\n",
        "[services.recipe-api]\nreplicas = 2\n",
        1,
    );
    lab.write("lab.toml", &format!("{toml}\n[faults]\nedges = true\n"));
    let up = lab.run(&["up", "--detach", "--ports", "auto"]);
    assert_eq!(up.code, 0, "{up}");
    assert!(
        !up.stdout.contains("StatsD port 8125 is taken")
            && !up.stdout.contains("port 8125 is taken"),
        "the book's metrics consumer needs the hub's StatsD on 8125: {up}"
    );
    let inst = wait_all_healthy(&lab, 18); // the fixtures (recipe-api ×2), the hub and the edges
    let pid = |svc: &str| -> u64 {
        inst.iter().find(|i| i["service"] == svc).unwrap()["pid"]
            .as_u64()
            .unwrap()
    };

    let r = lab
        .cmd(&["check", "all", "--json"])
        .env("RUST_BACKTRACE", "1")
        .output()
        .unwrap();
    let r = lab_testkit::Run::from(r);
    for bad in ["stack backtrace", "panicked", "RUST_BACKTRACE"] {
        assert!(
            !r.stdout.contains(bad) && !r.stderr.contains(bad),
            "{bad} in: {r}"
        );
    }
    let v: serde_json::Value =
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r}"));
    let scenarios = v["scenarios"].as_array().unwrap();
    let status = |name: &str| -> String {
        scenarios.iter().find(|s| s["name"] == name).unwrap()["status"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    let failing: Vec<String> = scenarios
        .iter()
        .filter(|s| s["status"] == "fail")
        .map(|s| serde_json::to_string_pretty(s).unwrap())
        .collect();
    assert!(failing.is_empty(), "failing:\n{}", failing.join("\n"));
    assert_eq!(r.code, 0, "{}", r.stderr);

    // Only what the lab declares nothing for is not applicable, each with its lab.toml line.
    let na: BTreeSet<&str> = scenarios
        .iter()
        .filter(|s| s["status"] == "not-applicable")
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(na, BTreeSet::from(["ch2.gzip"]), "{}", r.stderr);
    let gzip = scenarios.iter().find(|s| s["name"] == "ch2.gzip").unwrap();
    assert!(
        gzip["not_applicable"]["fix"]
            .as_str()
            .unwrap()
            .contains("\"gzip\" to `serves`"),
        "{gzip}"
    );

    let subjects = |name: &str| -> Vec<serde_json::Value> {
        scenarios.iter().find(|s| s["name"] == name).unwrap()["subjects"]
            .as_array()
            .cloned()
            .unwrap()
    };
    for name in ON_THE_FIXTURES {
        assert_eq!(status(name), "pass", "{name}");
        let s = subjects(name);
        assert!(
            s.iter().any(|x| x["kind"] == "yours"
                && x["what"]
                    .as_str()
                    .unwrap()
                    .contains("your command: python3")),
            "{name} names the fixture it ran against: {s:?}"
        );
        assert!(
            !s.iter().any(|x| x["kind"] == "builtin"),
            "{name}: no built-in stands in for the learner: {s:?}"
        );
    }
    for name in ON_HELPERS {
        let s = subjects(name);
        assert!(
            !s.is_empty() && s.iter().all(|x| x["kind"] == "helper"),
            "{name} ran on parts of its own and says so: {s:?}"
        );
    }
    let evidence = |name: &str| -> String {
        scenarios.iter().find(|s| s["name"] == name).unwrap()["assertions"].to_string()
    };
    // The fixtures' own pids are in the evidence.
    for svc in ["web-api", "web-graphql", "web-grpc", "web-zipkin"] {
        assert!(
            evidence("ch1.sample-app").contains(&format!("consumer_pid {}", pid(svc))),
            "{svc}'s pid in ch1.sample-app"
        );
    }
    assert!(evidence("ch2.grpc").contains(&format!("pid {}", pid("recipe-grpc"))));
    assert!(evidence("ch2.grpc").contains("grpc-status 2, message \\\"unknown recipe 7\\\""));
    assert!(evidence("ch2.graphql").contains(&pid("recipe-graphql").to_string()));
    assert!(evidence("ch4.tracing").contains("shared spans"));
    let by = |name: &str| -> Vec<String> {
        subjects(name)
            .iter()
            .filter_map(|x| x["service"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(by("ch4.metrics"), ["web-metrics"]);
    assert_eq!(by("ch4.logs"), ["web-logs"]);
    assert_eq!(by("ch4.tracing"), ["web-zipkin"]);
    assert_eq!(by("ch3.cluster"), ["recipe-cluster"]);
    assert_eq!(by("ch3.round-robin"), ["web-health"]);

    // The check removed its alert rule.
    let hub = inst.iter().find(|i| i["service"] == "hub").unwrap()["address"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, rules) = http_get(&hub, "/api/alerts").unwrap();
    assert!(!rules.contains("lab-check-"), "{rules}");
    // ...and its events say that a check caused them.
    let history = lab.run(&["alerts", "--history"]);
    assert!(
        history.stdout.contains("a rule of lab check ch4.alerting"),
        "{history}"
    );

    // Progress per chapter, kept and shown.
    let p = lab.run(&["check", "--progress"]);
    assert_eq!(p.code, 0, "{p}");
    assert!(
        p.stdout.contains("ch2  6/7 passing · 1 not applicable"),
        "{p}"
    );
    assert!(p.stdout.contains("next: `lab check ch2.gzip`"), "{p}");
    // --strict counts not applicable as failure.
    let strict = lab.run(&["check", "ch2.gzip", "--strict"]);
    assert_eq!(strict.code, 1, "{strict}");
    assert!(strict.stdout.contains("to apply it:"), "{strict}");
    assert_eq!(lab.run(&["down"]).code, 0);
}

/// Lines from `rx` until one contains `want` (or the deadline passes); all of them.
fn lines_until(
    rx: &std::sync::mpsc::Receiver<String>,
    want: &str,
    within: std::time::Duration,
) -> (bool, Vec<String>) {
    let t0 = std::time::Instant::now();
    let mut seen = Vec::new();
    while let Some(left) = within.checked_sub(t0.elapsed()) {
        match rx.recv_timeout(left) {
            Ok(l) => {
                let hit = l.contains(want);
                seen.push(l);
                if hit {
                    return (true, seen);
                }
            }
            Err(_) => break,
        }
    }
    (false, seen)
}

const ONE_PRODUCER: &str = r#"
[services.recipe-api]
command = ["python3", "-u", "recipe-api/producer-http-basic.py"]
"#;

#[test]
fn watch_runs_again_when_the_learners_file_changes_and_next_picks_what_does_not_pass() {
    if !python_book_peers() {
        return;
    }
    let lab = book_checkout();
    lab.write("lab.toml", ONE_PRODUCER);
    let (mut child, rx) = follow_lines(&lab, &["check", "--watch", "ch1.not-found"]);
    let (ok, seen) = lines_until(&rx, "watching", std::time::Duration::from_secs(60));
    assert!(ok, "{seen:#?}");
    assert!(
        seen.iter().any(|l| l.starts_with("✓ ch1.not-found")),
        "{seen:#?}"
    );
    // The learner breaks the not-found answer: the next run fails, and says what to change.
    let file = lab.path().join("recipe-api/producer-http-basic.py");
    let code = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        code.replace(
            "return 404, {\"error\": \"not_found\"}",
            "return 404, {\"err\": \"nope\"}",
        ),
    )
    .unwrap();
    let (ok, seen) = lines_until(&rx, "watching", std::time::Duration::from_secs(60));
    assert!(ok, "{seen:#?}");
    let text = seen.join("\n");
    assert!(text.contains("changed: recipe-api"), "{text}");
    assert!(text.contains("x ch1.not-found"), "{text}");
    assert!(
        text.contains("expected: {\"error\":\"not_found\"}"),
        "{text}"
    );
    assert!(text.contains("hint:"), "{text}");
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    let status = child.wait().unwrap();
    assert!(status.code().is_some(), "exits on Ctrl-C: {status}");
    assert!(!lab.state_file().exists(), "no lab left running");

    // --next: the failing scenario first; once fixed, the next not yet run.
    let next = lab.run(&["check", "--next"]);
    assert!(
        next.stdout
            .contains("next: ch1.sample-app (it has not run yet)"),
        "{next}"
    );
    assert!(
        next.stdout.contains("not applicable"),
        "no consumer in this lab: {next}"
    );
    let p = lab.run(&["check", "--progress"]);
    assert!(
        p.stdout
            .contains("ch1  0/3 passing · 1 failing · 1 not applicable · 1 not run"),
        "{p}"
    );
}

#[test]
fn a_command_probed_over_http_without_the_route_is_told_about_the_tcp_check() {
    if !python_book_peers() {
        return;
    }
    let lab = book_checkout();
    lab.write(
        "lab.toml",
        &format!(
            "{ONE_PRODUCER}[services.recipe-api.health]\ncheck = \"http\"\ndeadline = \"2s\"\n"
        ),
    );
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 1, "{up}");
    assert!(up.stdout.contains("GET /health answered 404"), "{up}");
    assert!(
        up.stdout
            .contains("set `health = { check = \"tcp\" }` on [services.recipe-api]"),
        "{up}"
    );
    // Without the http check it is probed over tcp, as the book's producer can answer.
    lab.write("lab.toml", ONE_PRODUCER);
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    assert_eq!(lab.run(&["down"]).code, 0);
}

/// A consumer instrumented with the OpenTelemetry SDK (tests/fixtures/book-style/web-api/
/// consumer-http-otel.py: OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT, W3C traceparent) in front of
/// the built-in recipe-api: `lab check ch4.tracing` and `ch4.logs` hold it to the book's contract
/// and pass on the learner's own process, its trace joined by the built-in through traceparent.
#[test]
fn an_otel_instrumented_consumer_passes_the_books_tracing_and_logging_checks() {
    let sdk = std::process::Command::new("python3")
        .args([
            "-c",
            "import opentelemetry.sdk, opentelemetry.exporter.otlp.proto.http",
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !require(
        "python3 with the OpenTelemetry SDK and its OTLP/HTTP exporter",
        sdk,
        "scripts/install-deps installs opentelemetry-sdk and opentelemetry-exporter-otlp-proto-http",
    ) {
        return;
    }
    let toml = r#"name = "otel-style"
[hub]
flush_interval = "1s"
[services.recipe-api]
builtin = "recipe-api"
[services.web-otel]
command = ["python3", "-u", "web-api/consumer-http-otel.py"]
role = "web-api"
env = { TARGET = "recipe-api" }
"#;
    let lab = LabDir::new(BIN, toml);
    for d in ["lib", "web-api"] {
        copy_dir(&Path::new(FIXTURES).join(d), &lab.path().join(d));
    }
    up_detached(&lab, 3);
    for scenario in ["ch4.tracing", "ch4.logs"] {
        let r = lab.run(&["check", scenario, "--json"]);
        let v: serde_json::Value =
            serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r}"));
        let s = &v["scenarios"][0];
        assert_eq!(
            s["status"],
            "pass",
            "{scenario}: {}",
            serde_json::to_string_pretty(s).unwrap()
        );
        assert_eq!(r.code, 0, "{r}");
        let subjects = s["subjects"].as_array().unwrap();
        assert!(
            subjects.iter().any(|x| x["kind"] == "yours"
                && x["service"] == "web-otel"
                && x["what"]
                    .as_str()
                    .unwrap()
                    .contains("your command: python3")),
            "{scenario} names the learner's service: {subjects:?}"
        );
        assert!(
            !subjects.iter().any(|x| x["kind"] == "builtin"),
            "{scenario}: no built-in stands in for the learner: {subjects:?}"
        );
        if scenario == "ch4.tracing" {
            // The learner's spans and the built-in's, in one trace.
            assert!(
                s["assertions"]
                    .to_string()
                    .contains("spans of recipe-api, web-otel"),
                "{s}"
            );
        }
    }
    let down = lab.run(&["down"]);
    assert_eq!(down.code, 0, "{down}");
}
