//! The proxy as one more service of the plan: its frontends' config (binds, servers, TLS files)
//! for a shape, its file under `.lab/proxy/`, run as `lab serve proxy` or `haproxy`, ready when
//! its first frontend accepts connections.

use lab_proxy::config::{ProxyConfig, Server, TlsFiles};
use lab_supervisor::{HealthCheck, InstanceSpec, ServiceSpec};

use super::net::{Net, connect_host};
use super::shape::{FileToWrite, LowerOptions, Machine};
use crate::config::model::ProxyEngine;
use crate::config::model::{LabConfig, PROXY_SERVICE, Proxy};

/// The proxy's TLS files, when a frontend terminates TLS.
pub fn tls_files(m: &Machine) -> Option<TlsFiles> {
    let issued = m.tls.as_ref()?.certs.get(PROXY_SERVICE)?;
    Some(TlsFiles {
        cert: issued.cert.clone(),
        key: issued.key.clone(),
    })
}

/// The frontends with their binds and servers as `net` addresses them.
pub fn config(cfg: &LabConfig, proxy: &Proxy, net: &Net, tls: Option<&TlsFiles>) -> ProxyConfig {
    let frontends = proxy
        .frontends
        .iter()
        .enumerate()
        .map(|(fi, f)| {
            let si = cfg
                .services
                .iter()
                .position(|s| s.name == f.service)
                .expect("validated");
            let svc = &cfg.services[si];
            let mut fe = f.settings.clone();
            fe.bind = net.frontend_bind(fi);
            let mut servers: Vec<Server> = Vec::new();
            for i in 0..svc.replicas {
                let addr = net.served(si, i);
                // Kubernetes: replicas are one Service, one server.
                if !servers.iter().any(|s| s.addr == addr) {
                    servers.push(Server {
                        name: format!("{}-{}", svc.name, i + 1),
                        addr,
                    });
                }
            }
            fe.servers = servers;
            fe.tls = if f.tls { tls.cloned() } else { None };
            fe
        })
        .collect();
    ProxyConfig { frontends }
}

/// The proxy's plan entry (as local processes run it), its config, and its files.
pub fn service(
    cfg: &LabConfig,
    proxy: &Proxy,
    opts: &LowerOptions,
    host: &Net,
    m: &Machine,
) -> (ServiceSpec, ProxyConfig, Vec<FileToWrite>) {
    let dir = opts.state_dir.join("proxy");
    let tls = tls_files(m);
    let config = config(cfg, proxy, host, tls.as_ref());
    let mut files = Vec::new();
    let (program, args) = match proxy.engine {
        ProxyEngine::Builtin => {
            let path = dir.join("proxy.json");
            files.push(FileToWrite {
                path: path.clone(),
                contents: serde_json::to_vec_pretty(&config).expect("proxy config serialises"),
            });
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
            let pem = dir.join("proxy.pem");
            if let Some(bytes) = m.tls.as_ref().and_then(|t| t.proxy_pem.clone()) {
                files.push(FileToWrite {
                    path: pem.clone(),
                    contents: bytes,
                });
            }
            let path = dir.join("haproxy.cfg");
            files.push(FileToWrite {
                path: path.clone(),
                contents: lab_proxy::haproxy::render(&config, |_| pem.clone()).into_bytes(),
            });
            (
                // Found by `prepare` for the process runtime; a container runs its own.
                m.haproxy.clone().unwrap_or_else(|| "haproxy".into()),
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
        if host.via_frontend(svc).is_none() && !depends_on.contains(&f.service) {
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
            cwd: dir,
            env: vec![
                ("LAB_SERVICE".to_owned(), PROXY_SERVICE.to_owned()),
                (
                    "LAB_PROXY_ENGINE".to_owned(),
                    proxy.engine.as_str().to_owned(),
                ),
            ],
            host: connect_host(&first.host).to_owned(),
            port: host.layout.frontends[0],
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
    (spec, config, files)
}
