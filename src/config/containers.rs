//! Lowering for the docker runtime: the same plan, each instance also described as a container
//! on the lab's own network. Host ports stay what the process runtime would use (published on
//! 127.0.0.1, so `lab status`, `lab load` and `lab check` reach the same addresses), and each
//! container listens on that same port inside, so an address differs between the runtimes only
//! by its host: `127.0.0.1:4000` becomes `recipe-api:4000`, as in the book's docker-compose.yml.
//!
//! Built-in services, the builtin proxy and the hub run the lab image (`lab serve NAME`); a
//! `command` service runs its `image` (or the image built from its `build` folder).

use std::collections::HashMap;
use std::path::Path;

use lab_supervisor::plan::{ContainerSpec, DockerSpec, MountSpec, PublishedPort};
use lab_supervisor::{HealthCheck, Plan};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::raw::ProxyEngine;
use super::validate::{HUB_SERVICE, LabConfig, PROXY_SERVICE, Run};

/// Where the hub's data lives inside its container (a named volume of the lab).
const HUB_DATA: &str = "/data";
/// Where the hub reads the instances' log files inside its container (bind-mounted `.lab/logs`).
const HUB_LOGS: &str = "/lab-logs";
/// Where the hub container sees the lab's state directory.
const HUB_STATE: &str = "/lab-state";

/// The image built-in parts run: `lab/lab:<version>`.
pub fn lab_image() -> String {
    format!("lab/lab:{}", env!("CARGO_PKG_VERSION"))
}

/// The tag a `build = "dir"` service's image gets when it names no `image`.
pub fn built_image(project: &str, service: &str) -> String {
    format!("lab-{project}-{service}:latest")
}

/// The lab-wide Docker objects of `cfg` with state in `state_dir`.
/// Objects are named after the lab (`NAME-recipe-api-1`, `NAME_default`, Compose's shape);
/// a lab whose state is not in `.lab` (the one `lab check` starts) adds that folder's name,
/// so that it can run beside the lab `lab up` started.
pub fn docker_spec(cfg: &LabConfig, state_dir: &Path) -> DockerSpec {
    let dir = std::path::absolute(state_dir).unwrap_or_else(|_| state_dir.to_path_buf());
    let prefix = match dir.file_name().and_then(|f| f.to_str()) {
        Some(".lab") | None => cfg.name.clone(),
        Some(f) => format!("{}-{}", cfg.name, f.trim_start_matches('.')),
    };
    DockerSpec {
        project: cfg.name.clone(),
        dir: dir.display().to_string(),
        network: format!("{prefix}_default"),
        volumes: cfg
            .hub
            .as_ref()
            .map(|_| vec![hub_volume(&prefix)])
            .unwrap_or_default(),
        prefix,
    }
}

fn hub_volume(prefix: &str) -> String {
    format!("{prefix}_hub-data")
}

/// Replace every `127.0.0.1:PORT` in `s` whose port is in `names` by `NAME:PORT`.
fn rewrite(s: &str, names: &HashMap<u16, String>) -> String {
    const HOST: &str = "127.0.0.1:";
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find(HOST) {
        out.push_str(&rest[..at]);
        let after = &rest[at + HOST.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        match after[..digits]
            .parse::<u16>()
            .ok()
            .and_then(|p| names.get(&p))
        {
            Some(name) => out.push_str(&format!("{name}:{}", &after[..digits])),
            None => out.push_str(&rest[at..at + HOST.len() + digits]),
        }
        rest = &after[digits..];
    }
    out.push_str(rest);
    out
}

/// [`rewrite`] applied to every string inside a JSON value.
fn rewrite_json(v: &mut serde_json::Value, names: &HashMap<u16, String>) {
    match v {
        serde_json::Value::String(s) => *s = rewrite(s, names),
        serde_json::Value::Array(a) => a.iter_mut().for_each(|x| rewrite_json(x, names)),
        serde_json::Value::Object(o) => o.values_mut().for_each(|x| rewrite_json(x, names)),
        _ => {}
    }
}

/// Turn the process plan into the docker plan: every instance gets its container.
pub fn containerize(
    cfg: &LabConfig,
    plan: &mut Plan,
    hub: Option<&lab_hub::HubConfig>,
    proxy: Option<&lab_proxy::config::ProxyConfig>,
) -> Result<(), Diagnostics> {
    let fail = |span: Option<std::ops::Range<usize>>, message: String, hint: &str| Diagnostics {
        path: cfg.display_path.clone(),
        source: cfg.source.clone(),
        items: vec![Diagnostic {
            span,
            message,
            hint: Some(hint.to_owned()),
        }],
    };
    let haproxy = cfg
        .proxy
        .as_ref()
        .is_some_and(|p| p.engine == ProxyEngine::Haproxy);
    let lab = docker_spec(cfg, &plan.state_dir);
    // Every address the process plan uses, by port: its name on the lab's network.
    let mut names: HashMap<u16, String> = HashMap::new();
    for s in &plan.services {
        for i in &s.instances {
            names.insert(i.port, alias(&s.name, s.instances.len(), i.index));
        }
    }
    if let Some(p) = proxy {
        for f in &p.frontends {
            if let Some(port) = f.bind.rsplit_once(':').and_then(|(_, p)| p.parse().ok()) {
                names.insert(port, PROXY_SERVICE.to_owned());
            }
        }
    }
    if let Some(h) = hub {
        for p in [h.logs_port, h.statsd_port, h.zipkin_port, h.http_port]
            .into_iter()
            .chain(h.carbon_port)
        {
            names.insert(p, HUB_SERVICE.to_owned());
        }
    }
    let tls = plan.state_dir.join("tls");
    let tls_dir = std::path::absolute(&tls).unwrap_or(tls);
    let logs_dir = std::path::absolute(plan.logs_dir()).unwrap_or(plan.logs_dir());
    let state_dir = std::path::absolute(&plan.state_dir).unwrap_or(plan.state_dir.clone());
    let prefix = lab.prefix.clone();
    for s in &mut plan.services {
        let replicas = s.instances.len();
        let check = s.health.check.clone();
        for inst in &mut s.instances {
            let mut env: Vec<(String, String)> = inst
                .env
                .iter()
                .map(|(k, v)| {
                    let v = if k == "HOST" {
                        "0.0.0.0".to_owned()
                    } else {
                        rewrite(v, &names)
                    };
                    (k.clone(), v)
                })
                .collect();
            let mut mounts = Vec::new();
            if tls_dir.is_dir() {
                // Certificates at the very paths TLS_CERT, TLS_KEY and TLS_CA name.
                mounts.push(MountSpec::Bind {
                    source: tls_dir.clone(),
                    target: tls_dir.display().to_string(),
                });
            }
            let mut ports = vec![PublishedPort {
                host: inst.port,
                container: inst.port,
                udp: false,
            }];
            let (image, cmd, builtin) = if s.name == HUB_SERVICE {
                let mut c = hub.cloned().expect("the hub service comes with its config");
                c.data_dir = HUB_DATA.into();
                c.host = std::net::Ipv4Addr::UNSPECIFIED.into();
                for t in &mut c.tail {
                    let file = t.path.file_name().map(|f| f.to_owned()).unwrap_or_default();
                    t.path = Path::new(HUB_LOGS).join(file);
                }
                // The supervisor's state, for the overview's processes and restarts: the
                // directory, since the file is replaced (renamed over) at every write.
                c.state_file = Some(Path::new(HUB_STATE).join("state.json"));
                mounts.push(MountSpec::Bind {
                    source: state_dir.clone(),
                    target: HUB_STATE.into(),
                });
                let mut json = serde_json::to_value(&c).expect("hub config serialises");
                rewrite_json(&mut json, &names);
                mounts.push(MountSpec::Volume {
                    name: hub_volume(&prefix),
                    target: HUB_DATA.into(),
                });
                mounts.push(MountSpec::Bind {
                    source: logs_dir.clone(),
                    target: HUB_LOGS.into(),
                });
                ports = vec![
                    (c.logs_port, true),
                    (c.statsd_port, true),
                    (c.zipkin_port, false),
                    (c.http_port, false),
                ]
                .into_iter()
                .chain(c.carbon_port.map(|p| (p, false)))
                .map(|(p, udp)| PublishedPort {
                    host: p,
                    container: p,
                    udp,
                })
                .collect();
                (
                    lab_image(),
                    Some(vec![
                        "serve".into(),
                        "hub".into(),
                        "--config".into(),
                        json.to_string(),
                    ]),
                    true,
                )
            } else if s.name == PROXY_SERVICE {
                let mut c = proxy
                    .cloned()
                    .expect("the proxy service comes with its config");
                for f in &mut c.frontends {
                    let port = f.bind.rsplit_once(':').map_or("0", |(_, p)| p).to_owned();
                    f.bind = format!("0.0.0.0:{port}");
                }
                let mut json = serde_json::to_value(&c).expect("proxy config serialises");
                rewrite_json(&mut json, &names);
                let c: lab_proxy::config::ProxyConfig =
                    serde_json::from_value(json.clone()).expect("rewritten config parses");
                ports = c
                    .frontends
                    .iter()
                    .filter_map(|f| f.bind.rsplit_once(':').and_then(|(_, p)| p.parse().ok()))
                    .map(|p| PublishedPort {
                        host: p,
                        container: p,
                        udp: false,
                    })
                    .collect();
                if haproxy {
                    // The real HAProxy from its own image, its config beside the process
                    // runtime's (same folder, mounted at the same path, with the TLS pem).
                    let dir = std::path::absolute(&inst.cwd).unwrap_or(inst.cwd.clone());
                    let path = dir.join("haproxy.docker.cfg");
                    let pem = dir.join("proxy.pem");
                    std::fs::write(&path, lab_proxy::haproxy::render(&c, |_| pem.clone()))
                        .map_err(|e| {
                            fail(
                                None,
                                format!("cannot write {}: {e}", path.display()),
                                "check the permissions of the state folder",
                            )
                        })?;
                    mounts.push(MountSpec::Bind {
                        source: dir.clone(),
                        target: dir.display().to_string(),
                    });
                    (
                        crate::images::haproxy_image(),
                        Some(vec!["-f".into(), path.display().to_string(), "-db".into()]),
                        false,
                    )
                } else {
                    (
                        lab_image(),
                        Some(vec![
                            "serve".into(),
                            "proxy".into(),
                            "--config".into(),
                            json.to_string(),
                        ]),
                        true,
                    )
                }
            } else {
                let svc = cfg.service(&s.name).expect("validated");
                match &svc.run {
                    Run::Builtin(b) => (
                        lab_image(),
                        Some(vec!["serve".into(), b.as_str().into()]),
                        true,
                    ),
                    Run::Command { .. } => {
                        let image = match (&svc.image, &svc.build) {
                            (Some(i), _) => i.clone(),
                            (None, Some(_)) => built_image(&cfg.name, &svc.name),
                            (None, None) => {
                                return Err(fail(
                                    Some(svc.name_span.clone()),
                                    format!(
                                        "`{}` runs a command, and a container needs an image to run it in",
                                        svc.name
                                    ),
                                    "add `image = \"…\"` (an image the engine has) or `build = \"dir\"` (a folder with a Dockerfile), or use the process runtime",
                                ));
                            }
                        };
                        (image, None, false)
                    }
                }
            };
            env.push(("LAB_RUNTIME".into(), "docker".into()));
            let healthcheck = match (&check, builtin) {
                (HealthCheck::Http { path }, true) => Some(vec![
                    "CMD".into(),
                    "/lab".into(),
                    "probe".into(),
                    format!("http://127.0.0.1:{}{path}", inst.port),
                ]),
                (HealthCheck::Https { path, ca }, true) => Some(vec![
                    "CMD".into(),
                    "/lab".into(),
                    "probe".into(),
                    "--ca".into(),
                    ca.display().to_string(),
                    format!("https://localhost:{}{path}", inst.port),
                ]),
                _ => None,
            };
            let mut aliases = vec![alias(&s.name, replicas, inst.index)];
            if replicas > 1 {
                aliases.push(s.name.clone());
            }
            inst.container = Some(ContainerSpec {
                name: format!("{prefix}-{}-{}", s.name, inst.index),
                image,
                cmd,
                env,
                aliases,
                ports,
                mounts,
                healthcheck,
                auto_remove: false,
            });
        }
    }
    plan.docker = Some(lab);
    Ok(())
}

/// An instance's name on the lab's network: the service's name for a single instance (the
/// book's `recipe-api:4000`), `NAME-N` for replicas (the service's name then answers for all).
fn alias(service: &str, replicas: usize, index: usize) -> String {
    if replicas == 1 {
        service.to_owned()
    } else {
        format!("{service}-{index}")
    }
}

/// The images the docker plan needs that `lab images build` makes.
pub fn needs_lab_image(plan: &Plan) -> bool {
    plan.instances()
        .any(|i| i.container.as_ref().is_some_and(|c| c.image == lab_image()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_known_ports_are_renamed() {
        let names: HashMap<u16, String> = [(4000, "recipe-api".to_owned())].into();
        assert_eq!(rewrite("127.0.0.1:4000", &names), "recipe-api:4000");
        assert_eq!(rewrite("127.0.0.1:40001", &names), "127.0.0.1:40001");
        assert_eq!(
            rewrite("http://127.0.0.1:4000/health and 127.0.0.1:5", &names),
            "http://recipe-api:4000/health and 127.0.0.1:5"
        );
        assert_eq!(rewrite("127.0.0.1:", &names), "127.0.0.1:");
    }
}
