//! `lab export compose|k8s`: the lab for an existing engine, printed from the one lowering
//! (`config::lower` in [`Shape::Compose`] or [`Shape::Kubernetes`]), so the environment, ports,
//! routes and the hub's and proxy's configs are exactly what `lab up` would give, by name.
//!
//! Compose, in the book's shape (chapter 5): one service per instance on the default network
//! (replicas share their service's name as a network alias, so `TARGET=recipe-api:4000`
//! resolves as in the book's docker-compose.yml), ports published on 127.0.0.1 only,
//! healthchecks that run `/lab probe` (the lab image has no shell), and `depends_on` with
//! `service_healthy`. Kubernetes: a Deployment per service behind a Service of its name.
//!
//! Built-in services, the proxy and the hub run the one lab image (`lab/lab:<version>`, entry
//! point `/lab`) with `serve NAME`; the proxy and the hub get their configuration inline (the
//! JSON `lab serve … --config` also accepts), so the file needs nothing beside it. The hub's
//! data lives in a named volume. A `command` service exports with its `image` and/or `build`
//! folder (Compose builds it; Kubernetes needs the image). Not exported yet (a clear error):
//! https services and HAProxy as the engine.

use docker_compose_types as dc;
use indexmap::IndexMap;
use lab_supervisor::plan::{ContainerSpec, MountSpec};
use lab_supervisor::{HealthCheck, InstanceSpec, Plan, RestartPolicy, ServiceSpec};

use crate::config::LabConfig;
use crate::config::lower::{LowerOptions, Shape};
use crate::config::model::{HUB_SERVICE, PROXY_SERVICE, Run};
use crate::config::model::{Protocol, ProxyEngine};

/// The image every built-in part runs.
pub use crate::images::lab_image;

#[derive(Debug, thiserror::Error)]
#[error("lab export: {0}")]
pub struct ExportError(pub String);

fn duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn restart(p: RestartPolicy) -> String {
    match p {
        RestartPolicy::Always => "always",
        RestartPolicy::OnFailure => "on-failure",
        RestartPolicy::Never => "no",
    }
    .into()
}

/// What cannot be exported (yet), as a clear error. `k8s`: a cluster pulls, it cannot build.
fn check_exportable(cfg: &LabConfig, k8s: bool) -> Result<(), ExportError> {
    if cfg.services.is_empty() {
        return Err(ExportError(
            "the lab has no services to export (`lab hub` runs a hub alone)".into(),
        ));
    }
    for s in &cfg.services {
        if let Run::Command { .. } = s.run {
            match (&s.image, &s.build) {
                (None, None) => {
                    return Err(ExportError(format!(
                        "`{}` runs a command; a container needs an image for it: add `image = \"…\"` or `build = \"dir\"` (a folder with a Dockerfile) to [services.{}]",
                        s.name, s.name
                    )));
                }
                (None, Some(_)) if k8s => {
                    return Err(ExportError(format!(
                        "`{}` is built from a Dockerfile, and a cluster cannot build: add `image = \"registry/name:tag\"` (pushed where the cluster pulls from)",
                        s.name
                    )));
                }
                _ => {}
            }
        }
        if s.protocol == Protocol::Https {
            return Err(ExportError(format!(
                "`{}` serves https; TLS is not exported yet",
                s.name
            )));
        }
    }
    if let Some(p) = &cfg.proxy {
        if p.engine == ProxyEngine::Haproxy {
            return Err(ExportError(
                "the HAProxy engine is not exported yet; use engine = \"builtin\"".into(),
            ));
        }
        if p.frontends.iter().any(|f| f.tls) {
            return Err(ExportError("TLS frontends are not exported yet".into()));
        }
    }
    Ok(())
}

/// The lab lowered for `shape`, after [`check_exportable`].
pub fn lowered(cfg: &LabConfig, shape: Shape) -> Result<Plan, ExportError> {
    check_exportable(cfg, shape == Shape::Kubernetes)?;
    let opts = LowerOptions::export(shape);
    let machine =
        crate::config::lower::prepare(cfg, &opts).map_err(|d| ExportError(d.to_string()))?;
    let lowered = crate::config::lower::build(cfg, &opts, &machine)
        .map_err(|d| ExportError(d.to_string()))?;
    Ok(lowered.plan)
}

/// The hub first (as `lab up` starts it), the lab's services, the proxy last.
fn in_export_order(plan: &Plan) -> Vec<&ServiceSpec> {
    let rank = |s: &&ServiceSpec| match s.name.as_str() {
        HUB_SERVICE => 0,
        PROXY_SERVICE => 2,
        _ => 1,
    };
    let mut v: Vec<&ServiceSpec> = plan.services.iter().collect();
    v.sort_by_key(rank);
    v
}

fn container(i: &InstanceSpec) -> &ContainerSpec {
    i.container
        .as_ref()
        .expect("a container shape gives every instance its container")
}

/// The port an instance's probe reaches inside its container.
fn probe_port(cfg: &LabConfig, spec: &ServiceSpec, i: &InstanceSpec) -> u16 {
    match (cfg.service(&spec.name), container(i).ports.first()) {
        (Some(_), Some(p)) => p.container,
        _ => i.port,
    }
}

fn labels(cfg: &LabConfig, spec: &ServiceSpec, i: &InstanceSpec) -> dc::Labels {
    let mut l: IndexMap<String, String> = [
        ("lab.project".to_owned(), cfg.name.clone()),
        ("lab.service".to_owned(), spec.name.clone()),
    ]
    .into_iter()
    .collect();
    if cfg.service(&spec.name).is_some() {
        l.insert("lab.instance".to_owned(), i.index.to_string());
    }
    dc::Labels::Map(l)
}

/// The Compose model of the lab.
pub fn compose(cfg: &LabConfig) -> Result<dc::Compose, ExportError> {
    let plan = lowered(cfg, Shape::Compose)?;
    // A service's name → its instances' Compose names.
    let names = |service: &str| -> Vec<String> {
        plan.service(service)
            .map(|s| {
                s.instances
                    .iter()
                    .map(|i| container(i).aliases[0].clone())
                    .collect()
            })
            .unwrap_or_default()
    };
    let mut services: IndexMap<String, Option<dc::Service>> = IndexMap::new();
    let mut volumes = IndexMap::new();
    for spec in in_export_order(&plan) {
        let replicas = spec.instances.len();
        let mut deps: Vec<String> = Vec::new();
        for d in &spec.depends_on {
            for n in names(d) {
                if !deps.contains(&n) {
                    deps.push(n);
                }
            }
        }
        let depends_on = dc::DependsOnOptions::Conditional(
            deps.iter()
                .map(|n| {
                    // The proxy has no health endpoint of its own to probe: started is what
                    // can be waited for (its own checks keep unready servers out).
                    let c = if n == PROXY_SERVICE {
                        "service_started"
                    } else {
                        "service_healthy"
                    };
                    (n.clone(), dc::DependsCondition::new(c))
                })
                .collect(),
        );
        let svc = cfg.service(&spec.name);
        for inst in &spec.instances {
            let c = container(inst);
            let mut env = c.env.clone();
            if svc.is_some() {
                // As `lab up` gives it: where every instance is pid 1, the lab's services tell
                // themselves apart by it (`x-lab-instance`), and so can `lab check --endpoint`.
                env.push(("LAB_INSTANCE".to_owned(), inst.id()));
            }
            let ports = c
                .ports
                .iter()
                .map(|p| {
                    let udp = if p.udp { "/udp" } else { "" };
                    match p.host {
                        0 => format!("127.0.0.1::{}{udp}", p.container),
                        h => format!("127.0.0.1:{h}:{}{udp}", p.container),
                    }
                })
                .collect();
            let mut mounted = Vec::new();
            for m in &c.mounts {
                if let MountSpec::Volume { name, target } = m {
                    volumes.insert(name.clone(), dc::MapOrEmpty::Empty);
                    mounted.push(dc::Volumes::Simple(format!("{name}:{target}")));
                }
            }
            // A `command` service: its image, or the folder Compose builds it from.
            let (image, build) = match svc.map(|s| (&s.run, s)) {
                Some((Run::Command { .. }, s)) => (
                    s.image.clone(),
                    s.build.as_ref().map(|dir| {
                        let rel = dir.strip_prefix(&cfg.dir).unwrap_or(dir);
                        dc::BuildStep::Simple(format!("./{}", rel.display()))
                    }),
                ),
                _ => (Some(c.image.clone()), None),
            };
            let h = &spec.health;
            let healthcheck = c.healthcheck.as_ref().map(|test| dc::Healthcheck {
                test: Some(dc::HealthcheckTest::Multiple(test.clone())),
                interval: Some(duration(h.interval)),
                timeout: Some(duration(h.timeout)),
                retries: 3,
                start_period: Some(duration(h.deadline)),
                ..Default::default()
            });
            let networks = if replicas > 1 {
                let mut m = IndexMap::new();
                m.insert(
                    "default".to_owned(),
                    dc::MapOrEmpty::Map(dc::AdvancedNetworkSettings {
                        aliases: c.aliases[1..].to_vec(),
                        ..Default::default()
                    }),
                );
                dc::Networks::Advanced(dc::AdvancedNetworks(m))
            } else {
                dc::Networks::default()
            };
            services.insert(
                c.aliases[0].clone(),
                Some(dc::Service {
                    image,
                    build_: build,
                    command: c.cmd.clone().map(dc::Command::Args),
                    environment: dc::Environment::KvPair(
                        env.into_iter()
                            .map(|(k, v)| (k, Some(dc::SingleValue::String(v))))
                            .collect(),
                    ),
                    ports: dc::Ports::Short(ports),
                    volumes: mounted,
                    healthcheck,
                    depends_on: depends_on.clone(),
                    restart: Some(restart(spec.restart.policy)),
                    stop_grace_period: svc.map(|_| duration(spec.stop_grace)),
                    networks,
                    labels: labels(cfg, spec, inst),
                    ..Default::default()
                }),
            );
        }
    }
    // No top-level `name` (nor healthchecks' `start_interval`): docker-compose 1.29, this
    // machine's, refuses them; the project is named by `-p` or the folder, and every
    // service carries `lab.project`.
    Ok(dc::Compose {
        services: dc::Services(services),
        volumes: dc::TopLevelVolumes(volumes),
        ..Default::default()
    })
}

/// The Compose file as YAML.
pub fn compose_yaml(cfg: &LabConfig) -> Result<String, ExportError> {
    let c = compose(cfg)?;
    serde_norway::to_string(&c).map_err(|e| ExportError(e.to_string()))
}

// === Kubernetes ===

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1 as core;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;

fn meta(cfg: &LabConfig, name: &str) -> ObjectMeta {
    ObjectMeta {
        name: Some(name.to_owned()),
        labels: Some(
            [
                ("app".to_owned(), name.to_owned()),
                ("lab.project".to_owned(), cfg.name.clone()),
            ]
            .into_iter()
            .collect(),
        ),
        ..Default::default()
    }
}

fn http_probe(path: &str, port: u16, h: &lab_supervisor::HealthSpec) -> core::Probe {
    core::Probe {
        http_get: Some(core::HTTPGetAction {
            path: Some(path.to_owned()),
            port: IntOrString::Int(i32::from(port)),
            ..Default::default()
        }),
        period_seconds: Some(h.interval.as_secs().max(1) as i32),
        timeout_seconds: Some(h.timeout.as_secs().max(1) as i32),
        failure_threshold: Some(3),
        ..Default::default()
    }
}

/// One Deployment running `lab serve ARGS` and the Service in front of it.
#[allow(clippy::too_many_arguments)]
fn workload(
    cfg: &LabConfig,
    name: &str,
    image: &str,
    replicas: usize,
    args: Vec<String>,
    env: Vec<(String, String)>,
    ports: &[(u16, &str)],
    probe: Option<core::Probe>,
    volume: Option<&str>,
) -> (Deployment, core::Service) {
    let selector: std::collections::BTreeMap<String, String> =
        [("app".to_owned(), name.to_owned())].into_iter().collect();
    let container = core::Container {
        name: name.to_owned(),
        image: Some(image.to_owned()),
        // Empty: the image's own command.
        args: (!args.is_empty()).then_some(args),
        env: (!env.is_empty()).then(|| {
            env.into_iter()
                .map(|(k, v)| core::EnvVar {
                    name: k,
                    value: Some(v),
                    ..Default::default()
                })
                .collect()
        }),
        ports: Some(
            ports
                .iter()
                .map(|(p, proto)| core::ContainerPort {
                    container_port: i32::from(*p),
                    protocol: Some((*proto).to_owned()),
                    ..Default::default()
                })
                .collect(),
        ),
        liveness_probe: probe.clone(),
        readiness_probe: probe,
        volume_mounts: volume.map(|v| {
            vec![core::VolumeMount {
                name: "data".into(),
                mount_path: v.to_owned(),
                ..Default::default()
            }]
        }),
        ..Default::default()
    };
    let deployment = Deployment {
        metadata: meta(cfg, name),
        spec: DeploymentSpec {
            replicas: Some(replicas as i32),
            selector: LabelSelector {
                match_labels: Some(selector.clone()),
                ..Default::default()
            },
            template: core::PodTemplateSpec {
                metadata: Some(meta(cfg, name)),
                spec: Some(core::PodSpec {
                    containers: vec![container],
                    volumes: volume.map(|_| {
                        vec![core::Volume {
                            name: "data".into(),
                            empty_dir: Some(Default::default()),
                            ..Default::default()
                        }]
                    }),
                    ..Default::default()
                }),
            },
            ..Default::default()
        },
        ..Default::default()
    };
    let service = core::Service {
        metadata: meta(cfg, name),
        spec: Some(core::ServiceSpec {
            selector: Some(selector),
            ports: Some(
                ports
                    .iter()
                    .map(|(p, proto)| core::ServicePort {
                        name: Some(format!("{}-{p}", proto.to_ascii_lowercase())),
                        port: i32::from(*p),
                        target_port: Some(IntOrString::Int(i32::from(*p))),
                        protocol: Some((*proto).to_owned()),
                        ..Default::default()
                    })
                    .collect(),
            ),
            ..Default::default()
        }),
        ..Default::default()
    };
    (deployment, service)
}

/// The lab as Kubernetes Deployments and Services (the book's recipe-api-deployment.yml shape:
/// replicas, container port, liveness and readiness `httpGet` probes), one per service, the
/// hub and the proxy included. Replicas are one Deployment behind a Service, so `TARGET`
/// stays `recipe-api:4000`.
pub fn k8s(cfg: &LabConfig) -> Result<(Vec<Deployment>, Vec<core::Service>), ExportError> {
    let plan = lowered(cfg, Shape::Kubernetes)?;
    let (mut deployments, mut services) = (Vec::new(), Vec::new());
    for spec in in_export_order(&plan) {
        let inst = &spec.instances[0];
        let c = container(inst);
        let probe = match &spec.health.check {
            HealthCheck::Http { path } => {
                Some(http_probe(path, probe_port(cfg, spec, inst), &spec.health))
            }
            _ => None,
        };
        let ports: Vec<(u16, &str)> = c
            .ports
            .iter()
            .map(|p| (p.container, if p.udp { "UDP" } else { "TCP" }))
            .collect();
        let volume = c.mounts.iter().find_map(|m| match m {
            MountSpec::Volume { target, .. } => Some(target.as_str()),
            MountSpec::Bind { .. } => None,
        });
        let (d, s) = workload(
            cfg,
            &spec.name,
            &c.image,
            spec.instances.len(),
            c.cmd.clone().unwrap_or_default(),
            c.env.clone(),
            &ports,
            probe,
            volume,
        );
        deployments.push(d);
        services.push(s);
    }
    Ok((deployments, services))
}

/// The Kubernetes objects as one multi-document YAML (Services first, as `kubectl apply`
/// likes them before the workloads that use their names).
pub fn k8s_yaml(cfg: &LabConfig) -> Result<String, ExportError> {
    let (deployments, services) = k8s(cfg)?;
    let mut docs = Vec::new();
    for s in &services {
        docs.push(serde_norway::to_string(s).map_err(|e| ExportError(e.to_string()))?);
    }
    for d in &deployments {
        docs.push(serde_norway::to_string(d).map_err(|e| ExportError(e.to_string()))?);
    }
    Ok(docs.join("---\n"))
}
