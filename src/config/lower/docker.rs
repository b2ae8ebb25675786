//! Each instance of the plan as a container: its image and command, its environment with
//! addresses by name on the lab's network ([`Net`] in a container shape), what it publishes on
//! 127.0.0.1, what it mounts, its engine healthcheck.
//!
//! [`Shape::Docker`] (the docker runtime) publishes every port at the same number inside and
//! out, so an address differs between the runtimes only by its host (`127.0.0.1:4000` becomes
//! `recipe-api:4000`), and mounts `.lab/` (certificates, logs, state). The export shapes
//! ([`Shape::Compose`], [`Shape::Kubernetes`]) mount nothing of this machine.
//!
//! Built-in services, the builtin proxy and the hub run the lab image (`lab serve NAME`); a
//! `command` service runs its `image` (or the image built from its `build` folder).

use std::path::Path;

use lab_supervisor::plan::{ContainerSpec, DockerSpec, MountSpec, PublishedPort};
use lab_supervisor::{HealthCheck, Plan};

use super::hub::{DATA_IN_CONTAINER, LOGS_IN_CONTAINER, STATE_IN_CONTAINER};
use super::net::{Net, alias};
use super::shape::{FileToWrite, Machine, Shape};
use crate::config::diagnostic::{Diagnostic, Diagnostics};
use crate::config::model::ProxyEngine;
use crate::config::model::{HUB_SERVICE, HubListener, LabConfig, PROXY_SERVICE, Run};
use crate::images::{built_image, haproxy_image, lab_image};

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

/// The hub's volume as an export names it (Compose prefixes it with the project itself).
pub const EXPORT_HUB_VOLUME: &str = "hub-data";

/// Give every instance of `plan` its container as `net` (a container shape) addresses the lab.
/// Returns the files the containers need beside the plan (HAProxy's config on the docker runtime).
pub fn containerize(
    cfg: &LabConfig,
    plan: &mut Plan,
    net: &Net,
    m: &Machine,
) -> Result<Vec<FileToWrite>, Diagnostics> {
    let fail = |span: Option<std::ops::Range<usize>>, message: String, hint: &str| Diagnostics {
        path: cfg.display_path.clone(),
        source: cfg.source.clone(),
        items: vec![Diagnostic {
            span,
            message,
            hint: Some(hint.to_owned()),
        }],
    };
    let runtime = net.shape == Shape::Docker;
    let lab = docker_spec(cfg, &plan.state_dir);
    let abs = |p: &Path| std::path::absolute(p).unwrap_or(p.to_path_buf());
    let tls_dir = abs(&plan.state_dir.join("tls"));
    let logs_dir = abs(&plan.logs_dir());
    let state_dir = abs(&plan.state_dir);
    let mut files = Vec::new();
    // The hub's and the proxy's configs in this shape.
    let hub_json = cfg.hub.as_ref().map(|h| {
        let c = super::hub::config(
            cfg,
            h,
            net,
            &plan.services,
            &plan.state_dir,
            m.tls.as_ref().map(|t| t.ca.as_path()),
        );
        serde_json::to_string(&c).expect("hub config serialises")
    });
    let proxy = cfg.proxy.as_ref().map(|p| {
        let c = super::proxy::config(cfg, p, net, super::proxy::tls_files(m).as_ref());
        (p, c)
    });
    for spec in &mut plan.services {
        let replicas = spec.instances.len();
        let check = spec.health.check.clone();
        let si = cfg.services.iter().position(|s| s.name == spec.name);
        for inst in &mut spec.instances {
            let i = inst.index - 1;
            let mut mounts = Vec::new();
            if runtime && m.tls.is_some() {
                // Certificates at the very paths TLS_CERT, TLS_KEY and TLS_CA name.
                mounts.push(MountSpec::Bind {
                    source: tls_dir.clone(),
                    target: tls_dir.display().to_string(),
                });
            }
            let mut env = inst.env.clone();
            let (image, cmd, builtin, ports, listen) = if spec.name == HUB_SERVICE {
                let json = hub_json.clone().expect("a hub service comes from [hub]");
                if runtime {
                    mounts.push(MountSpec::Bind {
                        source: state_dir.clone(),
                        target: STATE_IN_CONTAINER.into(),
                    });
                    mounts.push(MountSpec::Volume {
                        name: hub_volume(&lab.prefix),
                        target: DATA_IN_CONTAINER.into(),
                    });
                    mounts.push(MountSpec::Bind {
                        source: logs_dir.clone(),
                        target: LOGS_IN_CONTAINER.into(),
                    });
                } else {
                    mounts.push(MountSpec::Volume {
                        name: EXPORT_HUB_VOLUME.into(),
                        target: DATA_IN_CONTAINER.into(),
                    });
                }
                let ports = net
                    .layout
                    .hub
                    .iter()
                    .map(|(what, port, any)| PublishedPort {
                        host: if *any { 0 } else { *port },
                        container: *port,
                        udp: what.udp(),
                    })
                    .collect();
                (
                    lab_image(),
                    Some(vec!["serve".into(), "hub".into(), "--config".into(), json]),
                    true,
                    ports,
                    net.layout.hub_port(HubListener::Http),
                )
            } else if spec.name == PROXY_SERVICE {
                let (proxy, c) = proxy.as_ref().expect("a proxy service comes from [proxy]");
                let ports = net
                    .layout
                    .frontends
                    .iter()
                    .zip(&net.layout.frontends_any)
                    .map(|(p, any)| PublishedPort {
                        host: if *any { 0 } else { *p },
                        container: *p,
                        udp: false,
                    })
                    .collect();
                let listen = net.layout.frontends[0];
                if proxy.engine == ProxyEngine::Haproxy {
                    // The real HAProxy from its own image, its config beside the process
                    // runtime's (same folder, mounted at the same path, with the TLS pem).
                    let dir = abs(&inst.cwd);
                    let path = dir.join("haproxy.docker.cfg");
                    let pem = dir.join("proxy.pem");
                    files.push(FileToWrite {
                        path: path.clone(),
                        contents: lab_proxy::haproxy::render(c, |_| pem.clone()).into_bytes(),
                    });
                    mounts.push(MountSpec::Bind {
                        source: dir.clone(),
                        target: dir.display().to_string(),
                    });
                    (
                        haproxy_image(),
                        Some(vec!["-f".into(), path.display().to_string(), "-db".into()]),
                        false,
                        ports,
                        listen,
                    )
                } else {
                    let json = serde_json::to_string(&c).expect("proxy config serialises");
                    (
                        lab_image(),
                        Some(vec![
                            "serve".into(),
                            "proxy".into(),
                            "--config".into(),
                            json,
                        ]),
                        true,
                        ports,
                        listen,
                    )
                }
            } else {
                let si = si.expect("a service of the plan is a service of the lab");
                let svc = &cfg.services[si];
                env = net.env(si, i, m.tls.as_ref());
                let listen = net.listen_port(si, i);
                let ports = vec![PublishedPort {
                    host: if net.layout.any_host_port[si][i] {
                        0
                    } else {
                        net.layout.services[si][i]
                    },
                    container: listen,
                    udp: false,
                }];
                let (image, cmd, builtin) = match &svc.run {
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
                };
                (image, cmd, builtin, ports, listen)
            };
            if runtime {
                env.push(("LAB_RUNTIME".into(), "docker".into()));
            }
            // The lab image has `/lab probe`; an image of the user's own may have no such thing.
            let healthcheck = match (&check, builtin) {
                (HealthCheck::Http { path }, true) => Some(vec![
                    "CMD".into(),
                    "/lab".into(),
                    "probe".into(),
                    format!("http://127.0.0.1:{listen}{path}"),
                ]),
                (HealthCheck::Https { path, ca }, true) => Some(vec![
                    "CMD".into(),
                    "/lab".into(),
                    "probe".into(),
                    "--ca".into(),
                    ca.display().to_string(),
                    format!("https://localhost:{listen}{path}"),
                ]),
                _ => None,
            };
            let mut aliases = vec![alias(&spec.name, replicas, inst.index)];
            if replicas > 1 {
                aliases.push(spec.name.clone());
            }
            inst.container = Some(ContainerSpec {
                name: format!("{}-{}-{}", lab.prefix, spec.name, inst.index),
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
    Ok(files)
}
