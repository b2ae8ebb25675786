//! One lowering for every shape: labs lowered for processes and for export, and what
//! `lab export` prints held to exactly what was lowered (env, ports, routes).

use std::collections::HashMap;
use std::path::Path;

use super::*;
use crate::config::{LabConfig, parse};

fn lab(src: &str) -> LabConfig {
    parse(src, Path::new("/x/lab.toml"), "lab.toml").unwrap_or_else(|e| panic!("{e}"))
}

/// Lowered with the ports as written (nothing checked on this machine), for `shape`.
fn lowered(cfg: &LabConfig, shape: Shape, state: &Path) -> Lowered {
    let opts = LowerOptions {
        ports: PortMode::Declared,
        state_dir: state.to_path_buf(),
        exe: "lab".into(),
        shape,
        keep_statsd: false,
    };
    let m = prepare(cfg, &opts).unwrap_or_else(|e| panic!("{e}"));
    build(cfg, &opts, &m).unwrap_or_else(|e| panic!("{e}"))
}

fn env_of(v: &[(String, String)]) -> HashMap<String, String> {
    v.iter().cloned().collect()
}

/// Who listens on each host port of a process lowering: `recipe-api#2`, `proxy`, `hub`.
fn owners(plan: &Plan, hub: Option<&lab_hub::HubConfig>) -> HashMap<u16, String> {
    let mut m = HashMap::new();
    for s in &plan.services {
        for i in &s.instances {
            m.insert(i.port, format!("{}#{}", s.name, i.index));
        }
    }
    if let Some(h) = hub {
        for p in [
            h.logs_port,
            h.statsd_port,
            h.zipkin_port,
            h.http_port,
            h.otlp_http_port,
            h.otlp_grpc_port,
        ]
        .into_iter()
        .chain(h.carbon_port)
        {
            m.insert(p, HUB_SERVICE.to_owned());
        }
    }
    m
}

const DEFAULT: &str = include_str!("../../../lab.toml");

const CUSTOM_HUB: &str = r#"
name = "custom"
[services.recipe-api]
builtin = "recipe-api"
port = 14000
[services.web-api]
builtin = "web-api"
port = 13000
env = { TARGET = "recipe-api" }
[hub]
logs_port = 17777
statsd_port = 18125
zipkin_port = 19411
http_port = 18080
carbon_port = 12003
"#;

const GRPC_TCP: &str = r#"
name = "grpc"
[services.recipe-api]
builtin = "recipe-api"
replicas = 2
port = "4000-4001"
[services.web-api]
builtin = "web-api"
port = 3000
target_protocol = "grpc"
env = { TARGET = "recipe-api" }
[proxy.frontends.recipes]
service = "recipe-api"
port = 5000
mode = "tcp"
"#;

const COMMANDS: &str = r#"
name = "mine"
[services.recipe-api]
command = ["node", "producer-http-basic.js"]
image = "me/recipe:1"
port = 4000
[services.web-api]
command = ["node", "consumer-http-basic.js"]
image = "me/web:1"
port = 3000
env = { TARGET = "recipe-api", EXTRA = "kept" }
"#;

#[test]
fn what_export_prints_is_exactly_what_was_lowered() {
    let tmp = tempfile::tempdir().unwrap();
    for src in [DEFAULT, CUSTOM_HUB, GRPC_TCP, COMMANDS] {
        let cfg = lab(src);
        let compose = crate::export::compose(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let plan = lowered(&cfg, Shape::Compose, tmp.path()).plan;
        let mut printed = 0;
        for s in &plan.services {
            for i in &s.instances {
                let c = i.container.as_ref().unwrap();
                let svc = compose.services.0[&c.aliases[0]].as_ref().unwrap();
                let docker_compose_types::Environment::KvPair(env) = &svc.environment else {
                    panic!("{}: env as a list", cfg.name)
                };
                let env: HashMap<String, String> = env
                    .iter()
                    .map(|(k, v)| (k.clone(), v.as_ref().unwrap().to_string()))
                    .collect();
                let mut want = env_of(&c.env);
                if cfg.service(&s.name).is_some() {
                    want.insert("LAB_INSTANCE".into(), i.id());
                }
                assert_eq!(env, want, "{}: {}", cfg.name, c.aliases[0]);
                let docker_compose_types::Ports::Short(ports) = &svc.ports else {
                    panic!()
                };
                let want: Vec<String> = c
                    .ports
                    .iter()
                    .map(|p| {
                        let udp = if p.udp { "/udp" } else { "" };
                        format!("127.0.0.1:{}:{}{udp}", p.host, p.container)
                    })
                    .collect();
                assert_eq!(ports, &want, "{}: {}", cfg.name, c.aliases[0]);
                assert_eq!(
                    svc.command.as_ref().map(|c| match c {
                        docker_compose_types::Command::Args(a) => a.clone(),
                        docker_compose_types::Command::Simple(s) => vec![s.clone()],
                    }),
                    c.cmd,
                    "{}: {}",
                    cfg.name,
                    c.aliases[0]
                );
                printed += 1;
            }
        }
        assert_eq!(printed, compose.services.0.len(), "{}", cfg.name);

        // Kubernetes: a Deployment per service, carrying the Kubernetes lowering's env.
        let (deployments, _) = crate::export::k8s(&cfg).unwrap_or_else(|e| panic!("{e}"));
        let kplan = lowered(&cfg, Shape::Kubernetes, tmp.path()).plan;
        for s in &kplan.services {
            let d = deployments
                .iter()
                .find(|d| d.metadata.name.as_deref() == Some(&s.name))
                .unwrap();
            assert_eq!(d.spec.replicas, Some(s.instances.len() as i32));
            let container = &d.spec.template.spec.as_ref().unwrap().containers[0];
            let env: HashMap<String, String> = container
                .env
                .iter()
                .flatten()
                .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
                .collect();
            let want = env_of(&s.instances[0].container.as_ref().unwrap().env);
            assert_eq!(env, want, "{}: k8s {}", cfg.name, s.name);
        }
    }
}

#[test]
fn every_shape_routes_each_consumer_to_the_same_place() {
    let tmp = tempfile::tempdir().unwrap();
    for src in [DEFAULT, CUSTOM_HUB, GRPC_TCP, COMMANDS] {
        let cfg = lab(src);
        let host = lowered(&cfg, Shape::Processes, tmp.path());
        let at = owners(&host.plan, host.hub.as_ref());
        for shape in [Shape::Docker, Shape::Compose] {
            let net = lowered(&cfg, shape, tmp.path());
            for s in &host.plan.services {
                let theirs = net.plan.service(&s.name).unwrap();
                for (i, j) in s.instances.iter().zip(&theirs.instances) {
                    let there = env_of(&j.container.as_ref().unwrap().env);
                    for (k, v) in &i.env {
                        // A URL's address the same way (OTEL_EXPORTER_OTLP_ENDPOINT).
                        let (v, there_v) = match v.strip_prefix("http://") {
                            Some(rest) => (rest, there[k].strip_prefix("http://").unwrap_or("")),
                            None => (v.as_str(), there[k].as_str()),
                        };
                        let Some(port) = v
                            .strip_prefix("127.0.0.1:")
                            .and_then(|p| p.parse::<u16>().ok())
                        else {
                            if k != "HOST" && k != "PORT" {
                                assert_eq!(there_v, v, "{} {shape:?} {}: {k}", cfg.name, i.id());
                            }
                            continue;
                        };
                        // The same listener, by its name on the network.
                        let owner = &at[&port];
                        let (name, _) = there_v.rsplit_once(':').unwrap();
                        let (svc, idx) = owner.split_once('#').unwrap_or((owner, "1"));
                        let expect = match (shape, net.plan.service(svc)) {
                            (Shape::Docker, Some(o)) if o.instances.len() > 1 => {
                                format!("{svc}-{idx}")
                            }
                            _ => svc.to_owned(),
                        };
                        assert_eq!(name, expect, "{} {shape:?} {}: {k}={v}", cfg.name, i.id());
                    }
                }
            }
        }
    }
}

#[test]
fn grpc_consumers_go_through_a_tcp_frontend_in_every_shape() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lab(GRPC_TCP);
    let target = |shape| {
        let l = lowered(&cfg, shape, tmp.path());
        let web = l.plan.service("web-api").unwrap();
        let i = &web.instances[0];
        let env = match shape {
            Shape::Processes => env_of(&i.env),
            _ => env_of(&i.container.as_ref().unwrap().env),
        };
        (env["TARGET"].clone(), web.depends_on.clone())
    };
    let (t, deps) = target(Shape::Processes);
    assert_eq!(t, "127.0.0.1:5000");
    assert!(deps.contains(&PROXY_SERVICE.to_owned()), "{deps:?}");
    assert_eq!(target(Shape::Compose).0, "proxy:5000");
    assert_eq!(target(Shape::Kubernetes).0, "proxy:5000");
    assert_eq!(target(Shape::Docker).0, "proxy:5000");
}

#[test]
fn the_hub_listens_where_hub_says_in_every_shape_and_alone() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lab(CUSTOM_HUB);
    let host = lowered(&cfg, Shape::Processes, tmp.path());
    let h = host.hub.as_ref().unwrap();
    assert_eq!(
        (
            h.logs_port,
            h.statsd_port,
            h.zipkin_port,
            h.http_port,
            h.carbon_port
        ),
        (17777, 18125, 19411, 18080, Some(12003))
    );
    let web = &host.plan.service("web-api").unwrap().instances[0];
    assert_eq!(env_of(&web.env)["LOGSTASH"], "127.0.0.1:17777");
    let yaml = crate::export::compose_yaml(&cfg).unwrap();
    for published in [
        "127.0.0.1:17777:17777/udp",
        "127.0.0.1:18125:18125/udp",
        "127.0.0.1:19411:19411",
        "127.0.0.1:18080:18080",
        "STATSD: hub:18125",
    ] {
        assert!(yaml.contains(published), "{published} missing:\n{yaml}");
    }
    for book in ["7777", "8125", "9411", "8080"] {
        assert!(
            !yaml.contains(&format!(":{book}")),
            "the book's {book} leaked:\n{yaml}"
        );
    }
    let alone = hub_alone(&cfg, tmp.path()).unwrap();
    assert_eq!((alone.logs_port, alone.http_port), (17777, 18080));
    assert!(alone.health_targets.is_empty() && alone.tail.is_empty());
    // A lab of only [hub] is valid for `lab hub`, refused by `lab up`.
    let only = lab("[hub]\nhttp_port = 18081\n");
    assert_eq!(hub_alone(&only, tmp.path()).unwrap().http_port, 18081);
    let d = crate::config::unrunnable(&only, crate::config::model::RuntimeKind::Process).unwrap();
    assert!(
        d.to_string().contains("`lab hub` runs the [hub] alone"),
        "{d}"
    );
}

#[test]
fn labs_export_cannot_print_still_lower_for_this_machine() {
    let tmp = tempfile::tempdir().unwrap();
    let https = lab(
        "[services.recipe-api]\nbuiltin = \"recipe-api\"\nprotocol = \"https\"\n[services.web-api]\nbuiltin = \"web-api\"\ntarget_protocol = \"https\"\nenv = { TARGET = \"recipe-api\" }\n",
    );
    let l = lowered(&https, Shape::Processes, tmp.path());
    let env = env_of(&l.plan.service("web-api").unwrap().instances[0].env);
    assert!(env["TLS_CA"].ends_with("tls/ca.crt"), "{env:?}");
    let recipe = l.plan.service("recipe-api").unwrap();
    assert!(matches!(recipe.health.check, HealthCheck::Https { .. }));
    assert!(env_of(&recipe.instances[0].env).contains_key("TLS_CERT"));
    let e = crate::export::compose(&https).unwrap_err();
    assert!(e.to_string().contains("TLS is not exported yet"), "{e}");

    let haproxy = lab(&DEFAULT.replace("engine = \"builtin\"", "engine = \"haproxy\""));
    // The docker runtime runs HAProxy's own image, its config a file beside the plan.
    let l = lowered(&haproxy, Shape::Docker, tmp.path());
    assert!(
        l.files
            .iter()
            .any(|f| f.path.ends_with("haproxy.docker.cfg")),
        "{:?}",
        l.files.iter().map(|f| &f.path).collect::<Vec<_>>()
    );
    let e = crate::export::k8s(&haproxy).unwrap_err();
    assert!(
        e.to_string().contains("HAProxy engine is not exported"),
        "{e}"
    );
}

#[test]
fn building_writes_nothing_and_lists_its_files() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = lab(DEFAULT);
    let l = lowered(&cfg, Shape::Processes, tmp.path());
    let names: Vec<String> = l
        .files
        .iter()
        .map(|f| {
            f.path
                .strip_prefix(tmp.path())
                .unwrap()
                .display()
                .to_string()
        })
        .collect();
    assert_eq!(names, ["proxy/proxy.json", "hub/hub.json"]);
    assert!(
        !tmp.path().join("hub").exists(),
        "build wrote to the state folder"
    );
    l.write_files().unwrap();
    let hub: lab_hub::HubConfig =
        serde_json::from_slice(&std::fs::read(tmp.path().join("hub/hub.json")).unwrap()).unwrap();
    assert_eq!(hub.http_port, 8080);
    assert_eq!(hub.health_targets.len(), 4);
    assert_eq!(hub.tail.len(), 5, "four instances and the proxy");
}

#[test]
fn fault_edges_stand_on_every_address_a_consumer_is_given() {
    let src = format!("{DEFAULT}\n[faults]\nedges = true\nseed = 3\n");
    let cfg = lab(&src);
    let dir = tempfile::tempdir().unwrap();
    let opts = LowerOptions {
        ports: PortMode::Ephemeral,
        state_dir: dir.path().to_path_buf(),
        exe: "lab".into(),
        shape: Shape::Processes,
        keep_statsd: false,
    };
    let m = prepare(&cfg, &opts).unwrap_or_else(|e| panic!("{e}"));
    let low = build(&cfg, &opts, &m).unwrap_or_else(|e| panic!("{e}"));
    let edges = low.edges.as_ref().expect("edges");
    assert_eq!(edges.seed, 3);
    let names: Vec<&str> = edges.edges.iter().map(|e| e.name.as_str()).collect();
    assert_eq!(
        names,
        ["recipe-api#1", "recipe-api#2", "web-api#1", "web-api#2"],
        "what a TARGET or a frontend reaches"
    );
    let service = |n: &str| low.plan.services.iter().find(|s| s.name == n).unwrap();
    let addr = |i: &InstanceSpec| format!("{}:{}", i.host, i.port);
    for (k, web) in service("web-api").instances.iter().enumerate() {
        let target = env_of(&web.env)["TARGET"].clone();
        let edge = edges
            .edges
            .iter()
            .find(|e| e.listen == target)
            .expect("TARGET is an edge");
        assert_eq!(edge.upstream, addr(&service("recipe-api").instances[k]));
        assert!(edge.http);
    }
    let servers: Vec<&str> = low.proxy.as_ref().unwrap().frontends[0]
        .servers
        .iter()
        .map(|s| s.addr.as_str())
        .collect();
    let web_edges: Vec<&str> = edges.edges[2..].iter().map(|e| e.listen.as_str()).collect();
    assert_eq!(
        servers, web_edges,
        "the proxy's servers are web-api's edges"
    );
    for s in ["web-api", "proxy"] {
        assert!(
            service(s).depends_on.iter().any(|d| d == EDGES_SERVICE),
            "{s}"
        );
    }
    let mut ports: Vec<u16> = low
        .plan
        .services
        .iter()
        .flat_map(|s| s.instances.iter().map(|i| i.port))
        .chain(
            edges
                .edges
                .iter()
                .map(|e| e.listen.rsplit(':').next().unwrap().parse().unwrap()),
        )
        .collect();
    let n = ports.len();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(ports.len(), n, "no two listeners share a port");

    // The docker runtime has none, and says so.
    let opts = LowerOptions {
        shape: Shape::Docker,
        ..opts
    };
    let m = prepare(&cfg, &opts).unwrap_or_else(|e| panic!("{e}"));
    let low = build(&cfg, &opts, &m).unwrap_or_else(|e| panic!("{e}"));
    assert!(low.edges.is_none());
    assert!(
        low.notes.iter().any(|n| n.contains("process runtime only")),
        "{:?}",
        low.notes
    );
}
