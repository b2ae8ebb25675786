//! Lowering: a validated [`LabConfig`] becomes what runs it, for one [`Shape`]: local processes,
//! containers on the docker runtime, or the Compose file and Kubernetes manifests `lab export`
//! prints. `up`, `check`, `hub` and `export` all consume this one lowering, so the ports, the
//! environment, `TARGET` routing and the hub's and proxy's configs are worked out once.
//!
//! Two steps, so the second is pure:
//! 1. [`prepare`] asks the machine what lowering needs: the ports (checked, free ones picked:
//!    [`ports`]), the lab CA's certificates, the `haproxy` program.
//! 2. [`build`] turns the config and those answers into a [`Lowered`]: the supervisor plan, the
//!    hub's and proxy's configs, the files to write under `.lab/`, notes for the user. It does
//!    no I/O; [`Lowered::write_files`] writes the files.
//!
//! Rooms: [`ports`] (the one resolver), [`net`] (addresses per shape and every instance's
//! environment), [`proxy`], [`hub`] and [`edges`] (their configs and plan entries),
//! [`docker`] (each instance as a container).

pub mod docker;
pub mod edges;
mod hub;
pub mod net;
pub mod ports;
mod proxy;
pub mod shape;

use std::collections::HashMap;
use std::path::PathBuf;

use lab_supervisor::{HealthCheck, InstanceSpec, Plan, ServiceSpec};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::model::Target;
use super::model::{Builtin, Protocol, ProxyEngine};
use super::model::{EDGES_SERVICE, HUB_SERVICE, HubListener, LabConfig, PROXY_SERVICE, Ports, Run};
pub use net::{Layout, Net};
pub use ports::PortMode;
pub use shape::{FileToWrite, LowerOptions, Lowered, Machine, Shape, Tls};

/// The errors of `cfg`'s file.
fn diagnostics(cfg: &LabConfig, items: Vec<Diagnostic>) -> Diagnostics {
    Diagnostics {
        path: cfg.display_path.clone(),
        source: cfg.source.clone(),
        items,
    }
}

fn whole_file(message: String, hint: Option<&str>) -> Diagnostic {
    Diagnostic {
        span: None,
        message,
        hint: hint.map(str::to_owned),
    }
}

/// Lower `cfg` to run on this machine: [`prepare`], [`build`], then write the files.
pub fn lower(cfg: &LabConfig, opts: &LowerOptions) -> Result<Lowered, Diagnostics> {
    let machine = prepare(cfg, opts)?;
    let lowered = build(cfg, opts, &machine)?;
    lowered
        .write_files()
        .map_err(|e| diagnostics(cfg, vec![whole_file(e.to_string(), None)]))?;
    Ok(lowered)
}

/// Every port `cfg` listens on, in [`Layout`]'s order: each service's instances, each frontend,
/// each hub listener, and (`edges`) each fault edge and the edges' control listener.
pub fn port_requests(cfg: &LabConfig, keep_statsd: bool, edges: bool) -> Vec<ports::Request> {
    let mut out = Vec::new();
    for s in &cfg.services {
        let fallback = match s.run {
            Run::Builtin(Builtin::WebApi) => 3000,
            _ => 4000,
        };
        for i in 0..s.replicas {
            let id = format!("{}#{}", s.name, i + 1);
            out.push(ports::Request {
                host: s.host.clone(),
                port: match &s.ports {
                    Ports::Fixed(p) => p[i],
                    Ports::Auto => 0,
                },
                udp: false,
                keep_when_free: None,
                label: id.clone(),
                subject: id,
                hint: ports::SERVICE_HINT,
                span: Some(s.port_span.clone().unwrap_or(s.name_span.clone())),
                // Replicas share the first one in a container of their own each.
                fallback,
            });
        }
    }
    for f in cfg.proxy.iter().flat_map(|p| &p.frontends) {
        out.push(ports::Request {
            host: f.host.clone(),
            port: f.port,
            udp: false,
            keep_when_free: None,
            label: format!("frontend {}", f.name),
            subject: format!("frontend {}", f.name),
            hint: ports::SERVICE_HINT,
            span: f.port_span.clone(),
            fallback: 8000,
        });
    }
    if let Some(h) = &cfg.hub {
        let defaults = lab_hub::HubConfig::default();
        for p in &h.ports {
            let keep = keep_statsd && p.what == HubListener::Statsd;
            out.push(ports::Request {
                host: h.config.host.to_string(),
                port: p.port,
                udp: p.what.udp(),
                keep_when_free: keep.then(|| format!(
                    "the hub's StatsD port {} is taken: it gets a free port, so a service that sends to localhost:{} whatever STATSD says (the book's consumer-http-metrics.js) is not counted",
                    p.port, p.port
                )),
                label: p.what.describe().to_owned(),
                subject: format!("the {}", p.what.describe()),
                hint: ports::HUB_HINT,
                span: p.span.clone(),
                fallback: match p.what {
                    HubListener::Logs => defaults.logs_port,
                    HubListener::Statsd => defaults.statsd_port,
                    HubListener::Zipkin => defaults.zipkin_port,
                    HubListener::Http => defaults.http_port,
                    HubListener::Carbon => 2003,
                    HubListener::OtlpHttp => defaults.otlp_http_port,
                    HubListener::OtlpGrpc => defaults.otlp_grpc_port,
                },
            });
        }
    }
    if edges {
        let edge = |label: String| ports::Request {
            host: "127.0.0.1".into(),
            port: 0,
            udp: false,
            keep_when_free: None,
            subject: label.clone(),
            label,
            hint: ports::SERVICE_HINT,
            span: None,
            fallback: 0,
        };
        for (s, on) in cfg.services.iter().zip(net::edged(cfg)) {
            if on {
                out.extend(
                    (0..s.replicas)
                        .map(|i| edge(format!("the fault edge of {}#{}", s.name, i + 1))),
                );
            }
        }
        out.push(edge("the fault edges' control listener".into()));
    }
    out
}

/// Ask the machine what [`build`] needs: ports, certificates, programs.
pub fn prepare(cfg: &LabConfig, opts: &LowerOptions) -> Result<Machine, Diagnostics> {
    let requests = port_requests(cfg, opts.keep_statsd, edges::on(cfg, opts.shape));
    let ports = ports::resolve(&requests, opts.ports).map_err(|e| diagnostics(cfg, e))?;
    let frontends = cfg.proxy.as_ref().map_or(&[][..], |p| &p.frontends[..]);
    let needs_tls = cfg.services.iter().any(|s| s.protocol == Protocol::Https)
        || frontends.iter().any(|f| f.tls);
    let tls_error = |e: crate::tls::CaError| {
        diagnostics(
            cfg,
            vec![whole_file(
                format!("cannot prepare TLS certificates: {e}"),
                None,
            )],
        )
    };
    let tls = if needs_tls && opts.shape.local() {
        let ca = crate::tls::LabCa::ensure(&opts.state_dir.join("tls")).map_err(tls_error)?;
        let mut certs = HashMap::new();
        for s in cfg
            .services
            .iter()
            .filter(|s| s.protocol == Protocol::Https)
        {
            certs.insert(s.name.clone(), ca.server_cert(&s.name).map_err(tls_error)?);
        }
        let mut proxy_pem = None;
        if frontends.iter().any(|f| f.tls) {
            let issued = ca.server_cert(PROXY_SERVICE).map_err(tls_error)?;
            let read = |p: &std::path::Path| {
                std::fs::read(p).map_err(|e| {
                    diagnostics(
                        cfg,
                        vec![whole_file(
                            format!("cannot read {}: {e}", p.display()),
                            None,
                        )],
                    )
                })
            };
            let mut pem = read(&issued.cert)?;
            if !pem.ends_with(b"\n") {
                pem.push(b'\n');
            }
            pem.extend(read(&issued.key)?);
            proxy_pem = Some(pem);
            certs.insert(PROXY_SERVICE.to_owned(), issued);
        }
        Some(Tls {
            ca: ca.ca_cert(),
            certs,
            proxy_pem,
        })
    } else {
        None
    };
    let haproxy = match &cfg.proxy {
        Some(p) if p.engine == ProxyEngine::Haproxy && opts.shape == Shape::Processes => {
            Some(crate::programs::find("haproxy").ok_or_else(|| {
                diagnostics(
                    cfg,
                    vec![Diagnostic {
                        span: p.engine_span.clone(),
                        message: "engine \"haproxy\" needs the `haproxy` program, which is not installed".into(),
                        hint: Some("install it (Debian: `apt-get install haproxy`, or `scripts/install-deps`), or use engine = \"builtin\"".into()),
                    }],
                )
            })?)
        }
        _ => None,
    };
    Ok(Machine {
        ports,
        tls,
        haproxy,
    })
}

/// The hub of `cfg` on its own, as `lab hub` runs it for services of one's own: `[hub]`'s
/// listeners as configured (0: a free one), data under `state_dir`, none of the lab's
/// instances to poll or tail. `None`: the lab has no `[hub]`.
pub fn hub_alone(cfg: &LabConfig, state_dir: &std::path::Path) -> Option<lab_hub::HubConfig> {
    let h = cfg.hub.as_ref()?;
    let requests = port_requests(cfg, false, false);
    let resolved = ports::Resolved {
        ports: requests.iter().map(|r| r.port).collect(),
        any_host_port: vec![false; requests.len()],
        notes: Vec::new(),
    };
    let layout = Layout::new(cfg, &resolved, false);
    let net = Net {
        cfg,
        layout: &layout,
        shape: Shape::Processes,
    };
    let mut c = hub::config(cfg, h, &net, &[], state_dir, None);
    c.proxy_stats.clear();
    c.state_file = None;
    Some(c)
}

/// The lowered lab, from `cfg` and what [`prepare`] found. No I/O.
pub fn build(cfg: &LabConfig, opts: &LowerOptions, m: &Machine) -> Result<Lowered, Diagnostics> {
    let layout = Layout::new(cfg, &m.ports, edges::on(cfg, opts.shape));
    let host = Net {
        cfg,
        layout: &layout,
        shape: Shape::Processes,
    };
    let mut files = Vec::new();
    let mut services = Vec::new();
    for (si, s) in cfg.services.iter().enumerate() {
        let mut health = s.health.clone();
        if let (Some(tls), Some(_), HealthCheck::Http { path }) = (
            &m.tls,
            m.tls.as_ref().and_then(|t| t.certs.get(&s.name)),
            &health.check,
        ) {
            health.check = HealthCheck::Https {
                path: path.clone(),
                ca: tls.ca.clone(),
            };
        }
        let (program, args, cwd) = match &s.run {
            Run::Builtin(b) => (
                opts.exe.clone(),
                vec!["serve".to_owned(), b.as_str().to_owned()],
                cfg.dir.clone(),
            ),
            Run::Command { argv, cwd } => {
                (PathBuf::from(&argv[0]), argv[1..].to_vec(), cwd.clone())
            }
        };
        let instances = (0..s.replicas)
            .map(|i| InstanceSpec {
                service: s.name.clone(),
                index: i + 1,
                program: program.clone(),
                args: args.clone(),
                cwd: cwd.clone(),
                env: host.env(si, i, m.tls.as_ref()),
                host: net::connect_host(&s.host).to_owned(),
                port: layout.services[si][i],
                container: None,
            })
            .collect();
        let mut depends_on = s.depends_on.clone();
        if cfg.hub.is_some() {
            // The hub first, so a service's first log lines and spans have somewhere to go.
            depends_on.push(HUB_SERVICE.to_owned());
        }
        if host.via_frontend(s).is_some() {
            depends_on.push(PROXY_SERVICE.to_owned());
        } else if matches!(s.target, Some(Target::Service(_))) && layout.edges_control.is_some() {
            // Its TARGET is a fault edge.
            depends_on.push(EDGES_SERVICE.to_owned());
        }
        services.push(ServiceSpec {
            name: s.name.clone(),
            depends_on,
            instances,
            health,
            restart: s.restart.clone(),
            stop_grace: s.stop_grace,
        });
    }
    let mut proxy_config = None;
    if let Some(p) = &cfg.proxy {
        let (mut spec, config, written) = proxy::service(cfg, p, opts, &host, m);
        if layout.edges_control.is_some() {
            // Its servers are fault edges.
            spec.depends_on.push(EDGES_SERVICE.to_owned());
        }
        services.insert(0, spec);
        files.extend(written);
        proxy_config = Some(config);
    }
    let mut edges_config = None;
    if let Some((spec, config, written)) = edges::service(cfg, &host, opts) {
        services.insert(0, spec);
        files.push(written);
        edges_config = Some(config);
    }
    let mut hub_config = None;
    if let Some(h) = &cfg.hub {
        let ca = m.tls.as_ref().map(|t| t.ca.as_path());
        let config = hub::config(cfg, h, &host, &services, &opts.state_dir, ca);
        let (spec, written) = hub::service(&config, opts);
        services.insert(0, spec);
        files.push(written);
        hub_config = Some(config);
    }
    let schedule = edges::schedule(cfg, opts.shape).map_err(|e| {
        diagnostics(
            cfg,
            vec![whole_file(
                e,
                Some("run this lab with `runtime = \"process\"`, or remove the edge faults"),
            )],
        )
    })?;
    let mut plan = Plan {
        name: cfg.name.clone(),
        state_dir: opts.state_dir.clone(),
        config_path: cfg.path.clone(),
        services,
        docker: None,
        faults: schedule,
        hub_logs: cfg.hub.as_ref().map(|_| host.hub(HubListener::Logs)),
    };
    if opts.shape != Shape::Processes {
        let net = Net {
            cfg,
            layout: &layout,
            shape: opts.shape,
        };
        files.extend(docker::containerize(cfg, &mut plan, &net, m)?);
    }
    let mut notes = m.ports.notes.clone();
    if cfg.faults.edges && opts.shape == Shape::Docker {
        notes.push(
            "[faults] edges run with the process runtime only: this docker lab has none (process faults work)"
                .into(),
        );
    }
    Ok(Lowered {
        plan,
        hub: hub_config,
        proxy: proxy_config,
        edges: edges_config,
        files,
        notes,
    })
}

#[cfg(test)]
mod tests;
