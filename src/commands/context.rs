//! The context scenarios run in, made from a lab: lab.toml and a running lab's state (what
//! `lab check` and `lab bench protocols` both measure), or `--endpoint` URLs.

use std::time::Duration;

use lab_net::client::Client;
use lab_supervisor::state::State;

use crate::check::{Ctx, Endpoint, EndpointRun};
use crate::config::{LabConfig, Run};

/// The endpoint lab.toml declares for `s` (no addresses yet).
fn declared(s: &crate::config::Service) -> Endpoint {
    Endpoint {
        service: s.name.clone(),
        role: s.role,
        serves: s.serves.clone(),
        run: match &s.run {
            Run::Builtin(b) => EndpointRun::Builtin(*b),
            Run::Command { argv, cwd } => EndpointRun::Command {
                argv: argv.clone(),
                cwd: cwd.clone(),
            },
        },
        target_protocol: s.target_protocol,
        target: match &s.target {
            Some(crate::config::Target::Service(t)) => Some(t.clone()),
            _ => None,
        },
        protocol: s.protocol,
        addrs: Vec::new(),
        pids: Vec::new(),
        environment: s.environment.clone(),
        workers: s.process.workers,
        respawn: s.process.respawn,
        health_path: match &s.health.check {
            lab_supervisor::HealthCheck::Http { path }
            | lab_supervisor::HealthCheck::Https { path, .. } => Some(path.clone()),
            _ => None,
        },
        upstream_timeout: upstream_timeout(s),
    }
}

/// How long a consumer waits for its upstream, when lab.toml says: `UPSTREAM_TIMEOUT_MS` in its
/// env (the built-in web-api's setting, which a learner's code may read too), else the
/// built-in's default.
fn upstream_timeout(s: &crate::config::Service) -> Option<Duration> {
    let set = s
        .env
        .iter()
        .find(|(k, _)| k == lab_service_kit::settings::env::UPSTREAM_TIMEOUT_MS)
        .and_then(|(_, v)| v.parse::<u64>().ok())
        .map(Duration::from_millis);
    match (&s.run, set) {
        (_, Some(t)) => Some(t),
        (Run::Builtin(crate::config::model::Builtin::WebApi), None) => {
            Some(lab_service_kit::settings::DEFAULT_UPSTREAM_TIMEOUT)
        }
        _ => None,
    }
}

/// A client trusting the lab CA under `tls_dir` when there is one.
fn client_for(tls_dir: &std::path::Path) -> anyhow::Result<(Client, Option<std::path::PathBuf>)> {
    let ca = tls_dir.join("ca.crt");
    Ok(if ca.exists() {
        (
            Client::with_tls(lab_net::tls::client_config(&ca)?),
            Some(ca),
        )
    } else {
        (Client::new(), None)
    })
}

/// The endpoints of `state`'s instances, with what lab.toml declares of each service.
pub fn ctx_from(
    cfg: &LabConfig,
    state: &State,
    tls_dir: &std::path::Path,
    proxy_engine: crate::config::model::ProxyEngine,
) -> anyhow::Result<Ctx> {
    let mut endpoints: Vec<Endpoint> = cfg.services.iter().map(declared).collect();
    for r in &state.instances {
        if let Some(e) = endpoints.iter_mut().find(|e| e.service == r.service) {
            e.addrs.push(r.address.clone());
            e.pids.push(r.process.map(|p| p.pid));
        }
    }
    let (client, tls_ca) = client_for(tls_dir)?;
    let hub_running = state
        .instances
        .iter()
        .any(|i| i.service == crate::config::model::HUB_SERVICE);
    let hub = tls_dir
        .parent()
        .and_then(super::running::running_config)
        .filter(|_| cfg.hub.is_some() && hub_running)
        .map(|h| {
            let host = if h.host.is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                h.host.to_string()
            };
            crate::check::HubInfo {
                http: format!("{host}:{}", h.http_port),
                statsd_port: Some(h.statsd_port),
                zipkin: format!("{host}:{}", h.zipkin_port),
                flush: Duration::from_millis(h.flush_interval_ms),
                alert_interval: Duration::from_millis(h.alert_interval_ms),
            }
        });
    let mut ctx = ctx(
        client,
        tls_ca,
        endpoints,
        proxy_engine,
        tls_dir.to_path_buf(),
        hub,
        state.docker.is_some(),
    );
    ctx.edges = tls_dir.parent().and_then(|dir| lab_edges_of(dir, state));
    Ok(ctx)
}

/// The fault edges of the running lab under `dir`, when it has them.
fn lab_edges_of(dir: &std::path::Path, state: &State) -> Option<crate::check::LabEdges> {
    state
        .instances
        .iter()
        .any(|i| i.service == crate::config::model::EDGES_SERVICE)
        .then_some(())?;
    let cfg = lab_edges::EdgesConfig::of_lab(dir)?;
    let mut services: Vec<String> = cfg.edges.iter().map(|e| e.service.clone()).collect();
    services.dedup();
    Some(crate::check::LabEdges {
        state_dir: dir.to_path_buf(),
        control: cfg.control,
        services,
        instances: cfg
            .edges
            .iter()
            .map(|e| (e.name.clone(), e.service.clone(), e.listen.clone()))
            .collect(),
        hub_logs: super::running::running_config(dir)
            .map(|c| super::running::connect(&c, c.logs_port)),
    })
}

/// A context with the scenarios' defaults (5 s per request, nothing found yet).
pub fn ctx(
    client: Client,
    tls_ca: Option<std::path::PathBuf>,
    endpoints: Vec<Endpoint>,
    proxy_engine: crate::config::model::ProxyEngine,
    tls_dir: std::path::PathBuf,
    hub: Option<crate::check::HubInfo>,
    containers: bool,
) -> Ctx {
    Ctx {
        edges: None,
        client,
        tls_ca,
        endpoints,
        timeout: Duration::from_secs(5),
        proxy_engine,
        tls_dir,
        hub,
        containers,
        memo: Default::default(),
    }
}

/// Endpoints at the addresses of `--endpoint`: lab.toml's declaration of each service when it
/// has one, else the role its name says and plain REST (or https by the URL).
pub fn ctx_from_endpoints(
    cfg: Option<&LabConfig>,
    given: &[(String, String)],
    tls_dir: &std::path::Path,
    scratch: &std::path::Path,
    proxy_engine: crate::config::model::ProxyEngine,
) -> anyhow::Result<Ctx> {
    use crate::config::model::{Builtin, Protocol, Serve};
    let mut endpoints: Vec<Endpoint> = Vec::new();
    for (svc, url) in given {
        let tls = url.starts_with("https://");
        let addr = url
            .split_once("://")
            .map_or(url.as_str(), |(_, r)| r)
            .to_owned();
        if let Some(e) = endpoints.iter_mut().find(|e| &e.service == svc) {
            e.addrs.push(addr);
            e.pids.push(None);
            continue;
        }
        let mut e = match cfg.and_then(|c| c.service(svc)) {
            Some(s) => declared(s),
            None => {
                let role = [Builtin::RecipeApi, Builtin::WebApi]
                    .into_iter()
                    .find(|b| b.as_str() == svc);
                Endpoint {
                    service: svc.clone(),
                    role,
                    serves: match (role, tls) {
                        (Some(Builtin::RecipeApi), false) => vec![Serve::Http],
                        (Some(Builtin::RecipeApi), true) => vec![Serve::Https],
                        _ => Vec::new(),
                    },
                    run: EndpointRun::External,
                    target_protocol: None,
                    target: None,
                    protocol: if tls { Protocol::Https } else { Protocol::Http },
                    addrs: Vec::new(),
                    pids: Vec::new(),
                    environment: cfg.map_or("development".to_owned(), |c| {
                        c.services
                            .first()
                            .map_or("development".to_owned(), |s| s.environment.clone())
                    }),
                    workers: 1,
                    respawn: false,
                    health_path: None,
                    upstream_timeout: None,
                }
            }
        };
        e.run = EndpointRun::External;
        e.protocol = if tls { Protocol::Https } else { Protocol::Http };
        e.addrs.push(addr);
        e.pids.push(None);
        endpoints.push(e);
    }
    let (client, tls_ca) = client_for(tls_dir)?;
    let tls_dir = if tls_dir.join("ca.crt").exists() {
        tls_dir.to_path_buf()
    } else {
        scratch.to_path_buf()
    };
    Ok(ctx(
        client,
        tls_ca,
        endpoints,
        proxy_engine,
        tls_dir,
        None,
        false,
    ))
}
