//! Lowering a validated config to a supervisor plan: concrete ports (checked before anything
//! binds, with the holder of a taken one named), `TARGET` resolved to an address, the
//! environment every instance gets.

use std::path::PathBuf;

use lab_service_kit::settings::env as vars;
use lab_service_kit::tls::env as tls_vars;
use lab_supervisor::{HealthCheck, InstanceSpec, Plan, ServiceSpec, ports};

use super::diagnostic::{Diagnostic, Diagnostics};
use super::raw::Protocol;
use super::validate::{LabConfig, Ports, Run, Target};

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
    let ca = if cfg.services.iter().any(|s| s.protocol == Protocol::Https) {
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
                // Until a proxy fronts a replicated service, consumer #i is pinned to producer #i (mod n).
                Some(Target::Service(t)) => {
                    let ti = cfg
                        .services
                        .iter()
                        .position(|x| &x.name == t)
                        .expect("validated");
                    env.push((vars::TARGET.to_owned(), addr_of(ti, i)));
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
            });
        }
        services.push(ServiceSpec {
            name: s.name.clone(),
            depends_on: s.depends_on.clone(),
            instances,
            health,
            restart: s.restart.clone(),
            stop_grace: s.stop_grace,
        });
    }
    Ok(Lowered {
        plan: Plan {
            name: cfg.name.clone(),
            state_dir: opts.state_dir.clone(),
            config_path: cfg.path.clone(),
            services,
        },
        notes,
    })
}
