//! Lowering a validated config to a supervisor plan: concrete ports (checked before anything
//! binds, with the holder of a taken one named), `TARGET` resolved to an address, the
//! environment every instance gets.

use std::path::PathBuf;

use lab_service_kit::settings::env as vars;
use lab_service_kit::tls::env as tls_vars;
use lab_supervisor::{HealthCheck, InstanceSpec, Plan, ServiceSpec, ports};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::raw::Protocol;
use super::raw::{ProxyEngine, TargetProtocol};
use super::validate::{
    HUB_SERVICE, Hub, HubListener, LabConfig, PROXY_SERVICE, Ports, Proxy, Run, Target,
};

/// How `lab up` treats the ports lab.toml asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum PortMode {
    /// Use the configured ports; a taken one is an error naming its holder.
    #[default]
    Strict,
    /// Use the configured ports, shifting each taken one to a free port.
    Auto,
    /// Ignore the configured ports: every instance gets a free one (tests, parallel labs).
    Ephemeral,
}

pub struct LowerOptions {
    pub ports: PortMode,
    pub state_dir: PathBuf,
    /// The `lab` binary that runs built-in services (`lab serve NAME`).
    pub exe: PathBuf,
    /// What runs the instances (lab.toml's `runtime`, or `lab up --runtime`).
    pub runtime: super::raw::RuntimeKind,
    /// With `PortMode::Ephemeral`: keep the hub's StatsD on its configured port when that is
    /// free (the book's consumer-http-metrics.js sends to localhost:8125 whatever STATSD says).
    pub keep_statsd: bool,
}

/// A plan, plus notes for the user (ports shifted by `--ports auto`).
pub struct Lowered {
    pub plan: Plan,
    pub notes: Vec<String>,
}

/// The address to connect to for a service bound on `host`.
fn connect_host(host: &str) -> &str {
    match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    }
}

pub fn lower(cfg: &LabConfig, opts: &LowerOptions) -> Result<Lowered, Diagnostics> {
    let mut errors = Vec::new();
    let mut notes = Vec::new();

    // Decide every port first; free ones are picked together so none repeats.
    let mut wanted: Vec<Vec<Option<u16>>> = Vec::new();
    let mut free_needed = 0;
    for s in &cfg.services {
        let mut ports_of = Vec::new();
        for i in 0..s.replicas {
            let configured = match (&s.ports, opts.ports) {
                (_, PortMode::Ephemeral) | (Ports::Auto, _) => None,
                (Ports::Fixed(p), mode) => match ports::check(&s.host, p[i]) {
                    Ok(()) => Some(p[i]),
                    Err(holder) => {
                        let who = holder.map_or("another process".to_owned(), |h| {
                            format!("pid {} ({})", h.pid, h.command)
                        });
                        if mode == PortMode::Auto {
                            notes.push(format!(
                                "port {} is taken by {who}; {}#{} gets a free port",
                                p[i],
                                s.name,
                                i + 1
                            ));
                            None
                        } else {
                            errors.push(
                                Diagnostic::new(
                                    s.port_span.clone().unwrap_or(s.name_span.clone()),
                                    format!("port {} ({}#{}) is taken by {who}", p[i], s.name, i + 1),
                                )
                                .hint("stop that process, choose another port, or run `lab up --ports auto` to shift to free ones"),
                            );
                            Some(p[i])
                        }
                    }
                },
            };
            free_needed += usize::from(configured.is_none());
            ports_of.push(configured);
        }
        wanted.push(ports_of);
    }
    let frontends = cfg.proxy.as_ref().map_or(&[][..], |p| &p.frontends[..]);
    let mut wanted_fe: Vec<Option<u16>> = Vec::new();
    for f in frontends {
        let configured = match (f.port, opts.ports) {
            (0, _) | (_, PortMode::Ephemeral) => None,
            (p, mode) => match ports::check(&f.host, p) {
                Ok(()) => Some(p),
                Err(holder) => {
                    let who = holder.map_or("another process".to_owned(), |h| {
                        format!("pid {} ({})", h.pid, h.command)
                    });
                    if mode == PortMode::Auto {
                        notes.push(format!(
                            "port {p} is taken by {who}; frontend {} gets a free port",
                            f.name
                        ));
                        None
                    } else {
                        errors.push(
                            Diagnostic::new(
                                f.port_span.clone().unwrap_or_default(),
                                format!("port {p} (frontend {}) is taken by {who}", f.name),
                            )
                            .hint("stop that process, choose another port, or run `lab up --ports auto` to shift to free ones"),
                        );
                        Some(p)
                    }
                }
            },
        };
        free_needed += usize::from(configured.is_none());
        wanted_fe.push(configured);
    }
    let hub_ports = cfg.hub.as_ref().map_or(&[][..], |h| &h.ports[..]);
    let mut wanted_hub: Vec<Option<u16>> = Vec::new();
    for p in hub_ports {
        let host = cfg
            .hub
            .as_ref()
            .map_or("127.0.0.1".to_owned(), |h| h.config.host.to_string());
        let configured = match (p.port, opts.ports) {
            (port, PortMode::Ephemeral)
                if opts.keep_statsd && port != 0 && p.what == HubListener::Statsd =>
            {
                match std::net::UdpSocket::bind((host.as_str(), port)) {
                    Ok(_) => Some(port),
                    Err(_) => {
                        notes.push(format!(
                            "the hub's StatsD port {port} is taken: it gets a free port, so a service that sends to localhost:{port} whatever STATSD says (the book's consumer-http-metrics.js) is not counted"
                        ));
                        None
                    }
                }
            }
            (0, _) | (_, PortMode::Ephemeral) => None,
            (port, mode) => {
                let taken = if p.what.udp() {
                    std::net::UdpSocket::bind((host.as_str(), port))
                        .err()
                        .map(|_| None)
                } else {
                    ports::check(&host, port)
                        .err()
                        .map(|holder| holder.map(|h| format!("pid {} ({})", h.pid, h.command)))
                };
                match taken {
                    None => Some(port),
                    Some(who) => {
                        let who = who.unwrap_or_else(|| "another process".to_owned());
                        if mode == PortMode::Auto {
                            notes.push(format!(
                                "port {port} is taken by {who}; the {} gets a free port",
                                p.what.describe()
                            ));
                            None
                        } else {
                            errors.push(
                                Diagnostic::new(
                                    p.span.clone().unwrap_or_default(),
                                    format!("port {port} ({}) is taken by {who}", p.what.describe()),
                                )
                                .hint("stop that process (another lab's hub?), set another port in [hub], or run `lab up --ports auto`"),
                            );
                            Some(port)
                        }
                    }
                }
            }
        };
        free_needed += usize::from(configured.is_none());
        wanted_hub.push(configured);
    }
    if !errors.is_empty() {
        return Err(Diagnostics {
            path: cfg.display_path.clone(),
            source: cfg.source.clone(),
            items: errors,
        });
    }
    let mut free = ports::pick_free("127.0.0.1", free_needed)
        .map_err(|e| Diagnostics {
            path: cfg.display_path.clone(),
            source: cfg.source.clone(),
            items: vec![Diagnostic {
                span: None,
                message: format!("cannot find free ports: {e}"),
                hint: None,
            }],
        })?
        .into_iter();
    let ports: Vec<Vec<u16>> = wanted
        .into_iter()
        .map(|ps| {
            ps.into_iter()
                .map(|p| p.unwrap_or_else(|| free.next().expect("enough free ports")))
                .collect()
        })
        .collect();
    let fe_ports: Vec<u16> = wanted_fe
        .into_iter()
        .map(|p| p.unwrap_or_else(|| free.next().expect("enough free ports")))
        .collect();
    let hub_ports: Vec<(HubListener, u16)> = hub_ports
        .iter()
        .zip(wanted_hub)
        .map(|(p, w)| {
            (
                p.what,
                w.unwrap_or_else(|| free.next().expect("enough free ports")),
            )
        })
        .collect();
    let hub_port = |what: HubListener| {
        hub_ports
            .iter()
            .find(|(w, _)| *w == what)
            .map_or(0, |(_, p)| *p)
    };

    // TLS: the lab CA and a certificate per https service, made on first use.
    let tls_error = |e: crate::tls::CaError| Diagnostics {
        path: cfg.display_path.clone(),
        source: cfg.source.clone(),
        items: vec![Diagnostic {
            span: None,
            message: format!("cannot prepare TLS certificates: {e}"),
            hint: None,
        }],
    };
    let ca = if cfg.services.iter().any(|s| s.protocol == Protocol::Https)
        || frontends.iter().any(|f| f.tls)
    {
        Some(crate::tls::LabCa::ensure(&opts.state_dir.join("tls")).map_err(tls_error)?)
    } else {
        None
    };

    let addr_of = |svc: usize, instance: usize| {
        let s = &cfg.services[svc];
        let host = connect_host(&s.host);
        let port = ports[svc][instance % s.replicas];
        if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        }
    };

    let mut services = Vec::new();
    for (si, s) in cfg.services.iter().enumerate() {
        let issued = match (&ca, s.protocol) {
            (Some(ca), Protocol::Https) => Some(ca.server_cert(&s.name).map_err(tls_error)?),
            _ => None,
        };
        let mut health = s.health.clone();
        if let (Some(ca), Some(_), HealthCheck::Http { path }) = (&ca, &issued, &health.check) {
            health.check = HealthCheck::Https {
                path: path.clone(),
                ca: ca.ca_cert(),
            };
        }
        let mut instances = Vec::new();
        #[allow(clippy::needless_range_loop)]
        // i is the replica number, also used for TARGET pinning
        for i in 0..s.replicas {
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
            let mut env = vec![
                (vars::HOST.to_owned(), s.host.clone()),
                (vars::PORT.to_owned(), ports[si][i].to_string()),
                (vars::LAB_ENV.to_owned(), s.environment.clone()),
                (vars::NODE_ENV.to_owned(), s.environment.clone()),
                ("LAB_SERVICE".to_owned(), s.name.clone()),
            ];
            match &s.target {
                // Through a proxy frontend fronting the target in this consumer's protocol;
                // else consumer #i is pinned to producer #i (mod n).
                Some(Target::Service(t)) => {
                    let ti = cfg
                        .services
                        .iter()
                        .position(|x| &x.name == t)
                        .expect("validated");
                    let via = route_via(frontends, t, s.target_protocol, cfg.services[ti].protocol);
                    match via {
                        Some(fi) => env.push((
                            vars::TARGET.to_owned(),
                            join_host_port(connect_host(&frontends[fi].host), fe_ports[fi]),
                        )),
                        None => env.push((vars::TARGET.to_owned(), addr_of(ti, i))),
                    }
                }
                Some(Target::Addr(a)) => env.push((vars::TARGET.to_owned(), a.clone())),
                None => {}
            }
            if let Some(i) = &issued {
                env.push((tls_vars::TLS_CERT.to_owned(), i.cert.display().to_string()));
                env.push((tls_vars::TLS_KEY.to_owned(), i.key.display().to_string()));
            }
            if let Some(ca) = &ca {
                // Node.js code trusts the lab CA too, unchanged (consumer-https-basic.js).
                env.push((
                    tls_vars::TLS_CA.to_owned(),
                    ca.ca_cert().display().to_string(),
                ));
                env.push((
                    "NODE_EXTRA_CA_CERTS".to_owned(),
                    ca.ca_cert().display().to_string(),
                ));
            }
            if matches!(s.run, Run::Builtin(_)) {
                let m = &s.process;
                let defaults = super::validate::ProcessModel::default();
                if m.threads != defaults.threads {
                    env.push((vars::LAB_THREADS.to_owned(), m.threads.to_string()));
                }
                if m.offload {
                    env.push((vars::LAB_OFFLOAD.to_owned(), "1".to_owned()));
                }
                if m.workers != defaults.workers {
                    env.push((vars::LAB_WORKERS.to_owned(), m.workers.to_string()));
                }
                if m.respawn {
                    env.push((vars::LAB_RESPAWN.to_owned(), "1".to_owned()));
                }
            }
            if let Some(p) = s.target_protocol {
                env.push((vars::TARGET_PROTOCOL.to_owned(), p.as_str().to_owned()));
            }
            if let Some(h) = &cfg.hub {
                let at =
                    |what| join_host_port(connect_host(&h.config.host.to_string()), hub_port(what));
                let pick =
                    |external: &Option<String>, what| external.clone().unwrap_or_else(|| at(what));
                env.push((
                    vars::LOGSTASH.to_owned(),
                    pick(&h.logstash, HubListener::Logs),
                ));
                env.push((
                    vars::STATSD.to_owned(),
                    pick(&h.statsd, HubListener::Statsd),
                ));
                env.push((
                    vars::ZIPKIN.to_owned(),
                    pick(&h.zipkin, HubListener::Zipkin),
                ));
            }
            env.extend(s.env.iter().cloned());
            instances.push(InstanceSpec {
                service: s.name.clone(),
                index: i + 1,
                program,
                args,
                cwd,
                env,
                host: connect_host(&s.host).to_owned(),
                port: ports[si][i],
                container: None,
            });
        }
        let mut depends_on = s.depends_on.clone();
        if cfg.hub.is_some() {
            // The hub first, so a service's first log lines and spans have somewhere to go.
            depends_on.push(HUB_SERVICE.to_owned());
        }
        if let Some(Target::Service(t)) = &s.target {
            let ti = cfg
                .services
                .iter()
                .position(|x| &x.name == t)
                .expect("validated");
            if route_via(frontends, t, s.target_protocol, cfg.services[ti].protocol).is_some() {
                depends_on.push(PROXY_SERVICE.to_owned());
            }
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
    if let Some(proxy) = &cfg.proxy {
        let (spec, config) = proxy_service(cfg, proxy, opts, &fe_ports, ca.as_ref(), &addr_of)?;
        services.insert(0, spec);
        proxy_config = Some(config);
    }
    let mut hub_config = None;
    if let Some(hub) = &cfg.hub {
        // The hub polls every instance with an HTTP health check (the proxy's are TCP checks).
        let targets = services
            .iter()
            .flat_map(|s| {
                s.instances.iter().filter_map(move |i| {
                    let (scheme, path, ca) = match &s.health.check {
                        HealthCheck::Http { path } => ("http", path, None),
                        HealthCheck::Https { path, ca } => ("https", path, Some(ca.clone())),
                        _ => return None,
                    };
                    Some(lab_hub::HealthTarget {
                        service: s.name.clone(),
                        instance: i.index,
                        url: format!("{scheme}://{}{path}", join_host_port(&i.host, i.port)),
                        ca,
                    })
                })
            })
            .collect();
        // Every instance's output (as the supervisor writes it) is tailed into the log store.
        let tail = services
            .iter()
            .flat_map(|s| s.instances.iter())
            .map(|i| lab_hub::tail::TailFile {
                environment: cfg.service(&i.service).map(|s| s.environment.clone()),
                service: i.service.clone(),
                instance: i.index,
                path: opts
                    .state_dir
                    .join("logs")
                    .join(lab_supervisor::logs::log_file_name(&i.service, i.index)),
            })
            .collect();
        // The overview shows the proxy's servers from the stats page of each frontend with one.
        let proxy_stats = proxy_config
            .iter()
            .flat_map(|c| c.frontends.iter())
            .filter_map(|f| {
                let uri = f.stats_uri.as_ref()?;
                let (host, port) = f.bind.rsplit_once(':')?;
                let scheme = if f.tls.is_some() { "https" } else { "http" };
                Some(lab_hub::ProxyStatsTarget {
                    frontend: f.name.clone(),
                    url: format!(
                        "{scheme}://{}{uri};csv",
                        join_host_port(connect_host(host), port.parse().ok()?)
                    ),
                    ca: f.tls.as_ref().and(ca.as_ref()).map(|ca| ca.ca_cert()),
                })
            })
            .collect();
        let (spec, config) = hub_service(cfg, hub, opts, &hub_port, targets, tail, proxy_stats)?;
        services.insert(0, spec);
        hub_config = Some(config);
    }
    let mut plan = Plan {
        name: cfg.name.clone(),
        state_dir: opts.state_dir.clone(),
        config_path: cfg.path.clone(),
        services,
        docker: None,
    };
    if opts.runtime == super::raw::RuntimeKind::Docker {
        super::containers::containerize(
            cfg,
            &mut plan,
            hub_config.as_ref(),
            proxy_config.as_ref(),
        )?;
    }
    Ok(Lowered { plan, notes })
}

fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// The frontend a consumer calling `target` over `how` goes through, if one fronts `target` in
/// a way that consumer can speak: http(s)/GraphQL through an http frontend of the same TLS-ness,
/// anything (gRPC too) through a tcp frontend when the producer serves what the consumer speaks.
fn route_via(
    frontends: &[super::validate::ProxyFrontend],
    target: &str,
    how: Option<TargetProtocol>,
    producer: Protocol,
) -> Option<usize> {
    use lab_proxy::config::Mode;
    let wants_tls = how == Some(TargetProtocol::Https);
    frontends.iter().position(|f| {
        f.service == target
            && match f.settings.mode {
                Mode::Http => how != Some(TargetProtocol::Grpc) && f.tls == wants_tls,
                Mode::Tcp => (producer == Protocol::Https) == wants_tls,
            }
    })
}

/// The proxy as one more service of the plan: its config written under `.lab/proxy/`, run as
/// `lab serve proxy` or `haproxy`, ready when its first frontend accepts connections.
fn proxy_service(
    cfg: &LabConfig,
    proxy: &Proxy,
    opts: &LowerOptions,
    fe_ports: &[u16],
    ca: Option<&crate::tls::LabCa>,
    addr_of: &dyn Fn(usize, usize) -> String,
) -> Result<(ServiceSpec, lab_proxy::config::ProxyConfig), Diagnostics> {
    let fail =
        |span: Option<std::ops::Range<usize>>, message: String, hint: Option<&str>| Diagnostics {
            path: cfg.display_path.clone(),
            source: cfg.source.clone(),
            items: vec![Diagnostic {
                span,
                message,
                hint: hint.map(str::to_owned),
            }],
        };
    let dir = opts.state_dir.join("proxy");
    std::fs::create_dir_all(&dir)
        .map_err(|e| fail(None, format!("cannot create {}: {e}", dir.display()), None))?;
    let tls_files = match (ca, proxy.frontends.iter().any(|f| f.tls)) {
        (Some(ca), true) => {
            let issued = ca.server_cert(PROXY_SERVICE).map_err(|e| {
                fail(
                    None,
                    format!("cannot prepare the proxy's TLS certificate: {e}"),
                    None,
                )
            })?;
            Some(lab_proxy::config::TlsFiles {
                cert: issued.cert,
                key: issued.key,
            })
        }
        _ => None,
    };
    let mut frontends = Vec::new();
    for (fi, f) in proxy.frontends.iter().enumerate() {
        let si = cfg
            .services
            .iter()
            .position(|s| s.name == f.service)
            .expect("validated");
        let svc = &cfg.services[si];
        let mut fe = f.settings.clone();
        fe.bind = join_host_port(&f.host, fe_ports[fi]);
        fe.servers = (0..svc.replicas)
            .map(|i| lab_proxy::config::Server {
                name: format!("{}-{}", svc.name, i + 1),
                addr: addr_of(si, i),
            })
            .collect();
        fe.tls = if f.tls { tls_files.clone() } else { None };
        frontends.push(fe);
    }
    let config = lab_proxy::config::ProxyConfig { frontends };
    let write = |path: &std::path::Path, text: &[u8]| {
        std::fs::write(path, text)
            .map_err(|e| fail(None, format!("cannot write {}: {e}", path.display()), None))
    };
    let (program, args) = match proxy.engine {
        ProxyEngine::Builtin => {
            let path = dir.join("proxy.json");
            write(
                &path,
                &serde_json::to_vec_pretty(&config).expect("proxy config serialises"),
            )?;
            (
                opts.exe.clone(),
                vec![
                    "serve".into(),
                    "proxy".into(),
                    "--config".into(),
                    path.display().to_string(),
                ],
            )
        }
        ProxyEngine::Haproxy => {
            let Some(haproxy) = find_program("haproxy") else {
                return Err(fail(
                    proxy.engine_span.clone(),
                    "engine \"haproxy\" needs the `haproxy` program, which is not installed".into(),
                    Some(
                        "install it (Debian: `apt-get install haproxy`, or `scripts/install-deps`), or use engine = \"builtin\"",
                    ),
                ));
            };
            let pem = dir.join("proxy.pem");
            if let Some(t) = &tls_files {
                lab_proxy::haproxy::write_pem(t, &pem).map_err(|e| {
                    fail(None, format!("cannot write {}: {e}", pem.display()), None)
                })?;
            }
            let path = dir.join("haproxy.cfg");
            write(
                &path,
                lab_proxy::haproxy::render(&config, |_| pem.clone()).as_bytes(),
            )?;
            (
                haproxy,
                vec!["-f".into(), path.display().to_string(), "-db".into()],
            )
        }
    };
    // The proxy starts once the services it balances are healthy, so no engine ever sees a
    // server down at its start; except services that reach their own TARGET through the proxy,
    // which start after it instead (else the two would wait for each other).
    let mut depends_on: Vec<String> = Vec::new();
    for f in &proxy.frontends {
        let svc = cfg.service(&f.service).expect("validated");
        let via_proxy = match &svc.target {
            Some(Target::Service(t)) => {
                let producer = cfg.service(t).expect("validated").protocol;
                route_via(&proxy.frontends, t, svc.target_protocol, producer).is_some()
            }
            _ => false,
        };
        if !via_proxy && !depends_on.contains(&f.service) {
            depends_on.push(f.service.clone());
        }
    }
    let first = &proxy.frontends[0];
    let spec = ServiceSpec {
        name: PROXY_SERVICE.to_owned(),
        depends_on,
        instances: vec![InstanceSpec {
            service: PROXY_SERVICE.to_owned(),
            index: 1,
            program,
            args,
            cwd: dir.clone(),
            env: vec![
                ("LAB_SERVICE".to_owned(), PROXY_SERVICE.to_owned()),
                (
                    "LAB_PROXY_ENGINE".to_owned(),
                    proxy.engine.as_str().to_owned(),
                ),
            ],
            host: connect_host(&first.host).to_owned(),
            port: fe_ports[0],
            container: None,
        }],
        health: lab_supervisor::HealthSpec {
            check: HealthCheck::Tcp,
            ..Default::default()
        },
        restart: lab_supervisor::RestartSpec {
            policy: lab_supervisor::RestartPolicy::OnFailure,
            backoff: lab_supervisor::Backoff::default(),
        },
        stop_grace: std::time::Duration::from_secs(10),
    };
    Ok((spec, config))
}

/// The hub as one more service of the plan: its config written to `.lab/hub/hub.json`, run as
/// `lab serve hub`, ready when its HTTP API answers `/health`.
fn hub_service(
    cfg: &LabConfig,
    hub: &Hub,
    opts: &LowerOptions,
    port: &dyn Fn(HubListener) -> u16,
    health_targets: Vec<lab_hub::HealthTarget>,
    tail: Vec<lab_hub::tail::TailFile>,
    proxy_stats: Vec<lab_hub::ProxyStatsTarget>,
) -> Result<(ServiceSpec, lab_hub::HubConfig), Diagnostics> {
    let dir = opts.state_dir.join("hub");
    let mut config = hub.config.clone();
    config.data_dir = dir.clone();
    config.logs_port = port(HubListener::Logs);
    config.statsd_port = port(HubListener::Statsd);
    config.zipkin_port = port(HubListener::Zipkin);
    config.http_port = port(HubListener::Http);
    config.carbon_port = Some(port(HubListener::Carbon));
    config.health_targets = health_targets;
    config.tail = tail;
    config.state_file = Some(lab_supervisor::state::state_file(&opts.state_dir));
    config.proxy_stats = proxy_stats;
    let path = dir.join("hub.json");
    std::fs::create_dir_all(&dir)
        .and_then(|()| {
            std::fs::write(
                &path,
                serde_json::to_vec_pretty(&config).expect("hub config serialises"),
            )
        })
        .map_err(|e| Diagnostics {
            path: cfg.display_path.clone(),
            source: cfg.source.clone(),
            items: vec![Diagnostic {
                span: None,
                message: format!("cannot write {}: {e}", path.display()),
                hint: None,
            }],
        })?;
    let spec = ServiceSpec {
        name: HUB_SERVICE.to_owned(),
        depends_on: Vec::new(),
        instances: vec![InstanceSpec {
            service: HUB_SERVICE.to_owned(),
            index: 1,
            program: opts.exe.clone(),
            args: vec![
                "serve".into(),
                "hub".into(),
                "--config".into(),
                path.display().to_string(),
            ],
            cwd: dir,
            env: vec![("LAB_SERVICE".to_owned(), HUB_SERVICE.to_owned())],
            host: connect_host(&config.host.to_string()).to_owned(),
            port: config.http_port,
            container: None,
        }],
        health: lab_supervisor::HealthSpec {
            check: HealthCheck::Http {
                path: "/health".into(),
            },
            ..Default::default()
        },
        restart: lab_supervisor::RestartSpec {
            policy: lab_supervisor::RestartPolicy::OnFailure,
            backoff: lab_supervisor::Backoff::default(),
        },
        stop_grace: std::time::Duration::from_secs(10),
    };
    Ok((spec, config))
}

/// The full path of `program`: on PATH, else in the sbin folders Debian puts daemons in
/// (`/usr/sbin/haproxy` is not on a normal user's PATH).
pub fn find_program(program: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/local/sbin", "/usr/sbin", "/sbin"].map(PathBuf::from))
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}
