//! `lab export compose`: the same lab as a Compose file, in the book's shape (chapter 5): one
//! service per instance on the default network (replicas share their service's name as a
//! network alias, so `TARGET=recipe-api:4000` resolves as in the book's docker-compose.yml),
//! ports published on 127.0.0.1 only, the environment `lab up` gives, healthchecks that run
//! `/lab probe` (the lab image has no shell), and `depends_on` with `service_healthy`.
//!
//! Built-in services, the proxy and the hub run the one lab image (`lab/lab:<version>`, entry
//! point `/lab`) with `serve NAME`; the proxy and the hub get their configuration inline (the
//! JSON `lab serve … --config` also accepts), so the file needs nothing beside it. The hub's
//! data lives in a named volume. A `command` service exports with its `image` and/or `build`
//! folder (Compose builds it; Kubernetes needs the image). Not exported yet (a clear error):
//! https services and HAProxy as the engine.

use docker_compose_types as dc;
use indexmap::IndexMap;

use crate::config::raw::{Builtin, Protocol, ProxyEngine};
use crate::config::validate::{HUB_SERVICE, LabConfig, PROXY_SERVICE, Ports, Run, Service, Target};
use lab_supervisor::{HealthCheck, RestartPolicy};

/// The image every built-in part runs.
pub use crate::config::containers::lab_image;

#[derive(Debug, thiserror::Error)]
#[error("lab export: {0}")]
pub struct ExportError(pub String);

/// The port each instance of `s` listens on inside its container (they have a network of
/// their own each, so replicas share it): the first configured port, else the built-in default.
fn container_port(s: &Service) -> u16 {
    match (&s.ports, &s.run) {
        (Ports::Fixed(p), _) if p.first().is_some_and(|p| *p != 0) => p[0],
        (_, Run::Builtin(Builtin::WebApi)) => 3000,
        _ => 4000,
    }
}

/// Compose service names of `s`'s instances.
fn instance_names(s: &Service) -> Vec<String> {
    if s.replicas == 1 {
        vec![s.name.clone()]
    } else {
        (1..=s.replicas)
            .map(|i| format!("{}-{i}", s.name))
            .collect()
    }
}

fn duration(d: std::time::Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn env(pairs: Vec<(String, String)>) -> dc::Environment {
    dc::Environment::KvPair(
        pairs
            .into_iter()
            .map(|(k, v)| (k, Some(dc::SingleValue::String(v))))
            .collect(),
    )
}

fn probe(port: u16, path: &str, h: &lab_supervisor::HealthSpec) -> dc::Healthcheck {
    dc::Healthcheck {
        test: Some(dc::HealthcheckTest::Multiple(vec![
            "CMD".into(),
            "/lab".into(),
            "probe".into(),
            format!("http://127.0.0.1:{port}{path}"),
        ])),
        interval: Some(duration(h.interval)),
        timeout: Some(duration(h.timeout)),
        retries: 3,
        start_period: Some(duration(h.deadline)),
        ..Default::default()
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

/// The environment an instance of `s` gets in a container (what `lab up` gives, with
/// addresses by service name) and the services it waits for (`names` maps a service to the
/// names its instances run under).
fn service_env(
    cfg: &LabConfig,
    s: &Service,
    names: &dyn Fn(&Service) -> Vec<String>,
) -> (Vec<(String, String)>, Vec<String>) {
    let frontends = cfg.proxy.as_ref().map_or(&[][..], |p| &p.frontends[..]);
    let mut e = vec![
        ("HOST".to_owned(), "0.0.0.0".to_owned()),
        ("PORT".to_owned(), container_port(s).to_string()),
        ("LAB_ENV".to_owned(), s.environment.clone()),
        ("NODE_ENV".to_owned(), s.environment.clone()),
        ("LAB_SERVICE".to_owned(), s.name.clone()),
    ];
    let mut deps: Vec<String> = Vec::new();
    for d in &s.depends_on {
        deps.extend(names(cfg.service(d).expect("validated")));
    }
    match &s.target {
        Some(Target::Service(t)) => {
            let producer = cfg.service(t).expect("validated");
            let via = frontends.iter().find(|f| {
                &f.service == t
                    && s.target_protocol.is_none_or(|p| p.as_str() != "grpc")
                    && f.settings.mode == lab_proxy::config::Mode::Http
            });
            match via {
                Some(f) => {
                    e.push(("TARGET".into(), format!("{PROXY_SERVICE}:{}", f.port)));
                    deps.push(PROXY_SERVICE.into());
                }
                None => {
                    e.push((
                        "TARGET".into(),
                        format!("{}:{}", producer.name, container_port(producer)),
                    ));
                    deps.extend(names(producer));
                }
            }
        }
        Some(Target::Addr(a)) => e.push(("TARGET".into(), a.clone())),
        None => {}
    }
    if let Some(p) = s.target_protocol {
        e.push(("TARGET_PROTOCOL".into(), p.as_str().into()));
    }
    let m = &s.process;
    let d = crate::config::validate::ProcessModel::default();
    if m.threads != d.threads {
        e.push(("LAB_THREADS".into(), m.threads.to_string()));
    }
    if m.offload {
        e.push(("LAB_OFFLOAD".into(), "1".into()));
    }
    if m.workers != d.workers {
        e.push(("LAB_WORKERS".into(), m.workers.to_string()));
    }
    if m.respawn {
        e.push(("LAB_RESPAWN".into(), "1".into()));
    }
    if let Some(h) = &cfg.hub {
        let c = &h.config;
        e.push((
            "LOGSTASH".into(),
            h.logstash
                .clone()
                .unwrap_or(format!("{HUB_SERVICE}:{}", c.logs_port)),
        ));
        e.push((
            "STATSD".into(),
            h.statsd
                .clone()
                .unwrap_or(format!("{HUB_SERVICE}:{}", c.statsd_port)),
        ));
        e.push((
            "ZIPKIN".into(),
            h.zipkin
                .clone()
                .unwrap_or(format!("{HUB_SERVICE}:{}", c.zipkin_port)),
        ));
        deps.push(HUB_SERVICE.into());
    }
    e.extend(s.env.iter().cloned());
    deps.dedup();
    (e, deps)
}

/// The hub's config inside a container: data in `/data`, every interface, no files to tail,
/// and every instance (named by `names`) polled by its service name.
fn hub_in_container(
    cfg: &LabConfig,
    hub: &crate::config::validate::Hub,
    names: &dyn Fn(&Service) -> Vec<String>,
) -> lab_hub::HubConfig {
    let mut c = hub.config.clone();
    c.data_dir = "/data".into();
    c.host = std::net::Ipv4Addr::UNSPECIFIED.into();
    c.carbon_port = hub
        .ports
        .iter()
        .find(|p| p.what == crate::config::validate::HubListener::Carbon)
        .map(|p| p.port);
    c.tail = Vec::new();
    c.health_targets = cfg
        .services
        .iter()
        .filter_map(|s| match &s.health.check {
            HealthCheck::Http { path } => Some((s, path)),
            _ => None,
        })
        .flat_map(|(s, path)| {
            names(s)
                .into_iter()
                .enumerate()
                .map(move |(i, n)| lab_hub::HealthTarget {
                    service: s.name.clone(),
                    instance: i + 1,
                    url: format!("http://{n}:{}{path}", container_port(s)),
                    ca: None,
                })
        })
        .collect();
    // The overview's proxy servers, from each frontend's stats page (TLS frontends are not
    // exported).
    c.proxy_stats = cfg
        .proxy
        .iter()
        .flat_map(|p| p.frontends.iter())
        .filter_map(|f| {
            Some(lab_hub::ProxyStatsTarget {
                frontend: f.settings.name.clone(),
                url: format!(
                    "http://{PROXY_SERVICE}:{}{};csv",
                    f.port,
                    f.settings.stats_uri.as_ref()?
                ),
                ca: None,
            })
        })
        .collect();
    c
}

/// The proxy's frontends inside a container (binding every interface, servers by the names
/// `names` gives), and the names it waits for.
fn proxy_in_container(
    cfg: &LabConfig,
    proxy: &crate::config::validate::Proxy,
    names: &dyn Fn(&Service) -> Vec<String>,
) -> (Vec<lab_proxy::config::Frontend>, Vec<String>) {
    let mut deps = Vec::new();
    let fes = proxy
        .frontends
        .iter()
        .map(|f| {
            let s = cfg.service(&f.service).expect("validated");
            let mut settings = f.settings.clone();
            settings.bind = format!("0.0.0.0:{}", f.port);
            settings.servers = names(s)
                .into_iter()
                .map(|n| lab_proxy::config::Server {
                    addr: format!("{n}:{}", container_port(s)),
                    name: n,
                })
                .collect();
            deps.extend(names(s));
            settings
        })
        .collect();
    (fes, deps)
}

/// What cannot be exported (yet), as a clear error. `k8s`: a cluster pulls, it cannot build.
fn check_exportable(cfg: &LabConfig, k8s: bool) -> Result<(), ExportError> {
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

/// The Compose model of the lab.
pub fn compose(cfg: &LabConfig) -> Result<dc::Compose, ExportError> {
    check_exportable(cfg, false)?;
    let healthy = |names: &[String]| -> dc::DependsOnOptions {
        dc::DependsOnOptions::Conditional(
            names
                .iter()
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
        )
    };
    let mut services: IndexMap<String, Option<dc::Service>> = IndexMap::new();

    // The hub first, as `lab up` starts it.
    if let Some(hub) = &cfg.hub {
        let c = hub_in_container(cfg, hub, &instance_names);
        let mut ports = vec![
            format!("127.0.0.1:{0}:{0}/udp", c.logs_port),
            format!("127.0.0.1:{0}:{0}/udp", c.statsd_port),
            format!("127.0.0.1:{0}:{0}", c.zipkin_port),
            format!("127.0.0.1:{0}:{0}", c.http_port),
        ];
        if let Some(p) = c.carbon_port {
            ports.push(format!("127.0.0.1:{p}:{p}"));
        }
        let json = serde_json::to_string(&c).map_err(|e| ExportError(e.to_string()))?;
        services.insert(
            HUB_SERVICE.into(),
            Some(dc::Service {
                image: Some(lab_image()),
                command: Some(dc::Command::Args(vec![
                    "serve".into(),
                    "hub".into(),
                    "--config".into(),
                    json,
                ])),
                ports: dc::Ports::Short(ports),
                volumes: vec![dc::Volumes::Simple("hub-data:/data".into())],
                healthcheck: Some(probe(
                    c.http_port,
                    "/health",
                    &lab_supervisor::HealthSpec::default(),
                )),
                restart: Some("on-failure".into()),
                labels: dc::Labels::Map(
                    [
                        ("lab.project".to_owned(), cfg.name.clone()),
                        ("lab.service".to_owned(), HUB_SERVICE.to_owned()),
                    ]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            }),
        );
    }

    for s in &cfg.services {
        let port = container_port(s);
        let names = instance_names(s);
        for (i, name) in names.iter().enumerate() {
            let (mut e, deps) = service_env(cfg, s, &instance_names);
            // As `lab up` gives it: where every instance is pid 1, the lab's services tell
            // themselves apart by it (`x-lab-instance`), and so can `lab check --endpoint`.
            e.push(("LAB_INSTANCE".to_owned(), format!("{}#{}", s.name, i + 1)));
            let published = match &s.ports {
                Ports::Fixed(p) if p[i] != 0 => format!("127.0.0.1:{}:{port}", p[i]),
                _ => format!("127.0.0.1::{port}"),
            };
            // The lab image has `/lab probe`; an image of the user's own may have no such thing.
            let (image, build, command, healthcheck) = match &s.run {
                Run::Builtin(b) => (
                    Some(lab_image()),
                    None,
                    Some(dc::Command::Args(vec!["serve".into(), b.as_str().into()])),
                    match &s.health.check {
                        HealthCheck::Http { path } => Some(probe(port, path, &s.health)),
                        _ => None,
                    },
                ),
                Run::Command { .. } => (
                    s.image.clone(),
                    s.build.as_ref().map(|dir| {
                        let rel = dir.strip_prefix(&cfg.dir).unwrap_or(dir);
                        dc::BuildStep::Simple(format!("./{}", rel.display()))
                    }),
                    None,
                    None,
                ),
            };
            let networks = if s.replicas > 1 {
                let mut m = IndexMap::new();
                m.insert(
                    "default".to_owned(),
                    dc::MapOrEmpty::Map(dc::AdvancedNetworkSettings {
                        aliases: vec![s.name.clone()],
                        ..Default::default()
                    }),
                );
                dc::Networks::Advanced(dc::AdvancedNetworks(m))
            } else {
                dc::Networks::default()
            };
            let labels: IndexMap<String, String> = [
                ("lab.project".to_owned(), cfg.name.clone()),
                ("lab.service".to_owned(), s.name.clone()),
                ("lab.instance".to_owned(), (i + 1).to_string()),
            ]
            .into_iter()
            .collect();
            services.insert(
                name.clone(),
                Some(dc::Service {
                    image,
                    build_: build,
                    command,
                    environment: env(e),
                    ports: dc::Ports::Short(vec![published]),
                    healthcheck,
                    depends_on: healthy(&deps),
                    restart: Some(restart(s.restart.policy)),
                    stop_grace_period: Some(duration(s.stop_grace)),
                    networks,
                    labels: dc::Labels::Map(labels),
                    ..Default::default()
                }),
            );
        }
    }

    if let Some(proxy) = &cfg.proxy {
        let (fes, deps) = proxy_in_container(cfg, proxy, &instance_names);
        let ports: Vec<String> = proxy
            .frontends
            .iter()
            .map(|f| format!("127.0.0.1:{0}:{0}", f.port))
            .collect();
        let json = serde_json::to_string(&lab_proxy::config::ProxyConfig { frontends: fes })
            .map_err(|e| ExportError(e.to_string()))?;
        services.insert(
            PROXY_SERVICE.into(),
            Some(dc::Service {
                image: Some(lab_image()),
                command: Some(dc::Command::Args(vec![
                    "serve".into(),
                    "proxy".into(),
                    "--config".into(),
                    json,
                ])),
                ports: dc::Ports::Short(ports),
                depends_on: healthy(&deps),
                restart: Some("on-failure".into()),
                labels: dc::Labels::Map(
                    [
                        ("lab.project".to_owned(), cfg.name.clone()),
                        ("lab.service".to_owned(), PROXY_SERVICE.to_owned()),
                    ]
                    .into_iter()
                    .collect(),
                ),
                ..Default::default()
            }),
        );
    }

    let mut volumes = IndexMap::new();
    if cfg.hub.is_some() {
        volumes.insert("hub-data".to_owned(), dc::MapOrEmpty::Empty);
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
    check_exportable(cfg, true)?;
    let one = |s: &Service| vec![s.name.clone()];
    let (mut deployments, mut services) = (Vec::new(), Vec::new());
    if let Some(hub) = &cfg.hub {
        let c = hub_in_container(cfg, hub, &one);
        let json = serde_json::to_string(&c).map_err(|e| ExportError(e.to_string()))?;
        let mut ports = vec![
            (c.logs_port, "UDP"),
            (c.statsd_port, "UDP"),
            (c.zipkin_port, "TCP"),
            (c.http_port, "TCP"),
        ];
        if let Some(p) = c.carbon_port {
            ports.push((p, "TCP"));
        }
        let probe = http_probe(
            "/health",
            c.http_port,
            &lab_supervisor::HealthSpec::default(),
        );
        let (d, s) = workload(
            cfg,
            HUB_SERVICE,
            &lab_image(),
            1,
            vec!["serve".into(), "hub".into(), "--config".into(), json],
            Vec::new(),
            &ports,
            Some(probe),
            Some("/data"),
        );
        deployments.push(d);
        services.push(s);
    }
    for s in &cfg.services {
        let (env, _) = service_env(cfg, s, &one);
        let port = container_port(s);
        let probe = match &s.health.check {
            HealthCheck::Http { path } => Some(http_probe(path, port, &s.health)),
            _ => None,
        };
        let (image, args) = match &s.run {
            Run::Builtin(b) => (lab_image(), vec!["serve".into(), b.as_str().into()]),
            Run::Command { .. } => (s.image.clone().expect("checked"), Vec::new()),
        };
        let (d, svc) = workload(
            cfg,
            &s.name,
            &image,
            s.replicas,
            args,
            env,
            &[(port, "TCP")],
            probe,
            None,
        );
        deployments.push(d);
        services.push(svc);
    }
    if let Some(proxy) = &cfg.proxy {
        let (fes, _) = proxy_in_container(cfg, proxy, &one);
        let ports: Vec<(u16, &str)> = proxy.frontends.iter().map(|f| (f.port, "TCP")).collect();
        let json = serde_json::to_string(&lab_proxy::config::ProxyConfig { frontends: fes })
            .map_err(|e| ExportError(e.to_string()))?;
        let (d, s) = workload(
            cfg,
            PROXY_SERVICE,
            &lab_image(),
            1,
            vec!["serve".into(), "proxy".into(), "--config".into(), json],
            Vec::new(),
            &ports,
            None,
            None,
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
