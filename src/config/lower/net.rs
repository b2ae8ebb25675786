//! Addresses: where each instance, frontend and hub listener answers in a [`Shape`], and the
//! environment every instance gets (`HOST`, `PORT`, `TARGET`, the hub's addresses, …), written
//! once for every shape.

use lab_net::tls::env as tls_vars;
use lab_service_kit::settings::env as vars;

use super::ports::Resolved;
use super::shape::{Shape, Tls};
use crate::config::model::{
    HUB_SERVICE, HubListener, LabConfig, PROXY_SERVICE, ProcessModel, Protocol, ProxyFrontend, Run,
    Target, consumed,
};

/// The decided ports, by what listens on them.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Each service's instances' ports (host ports; a container's own in [`Shape::Docker`]).
    pub services: Vec<Vec<u16>>,
    /// No port was configured: the engine publishes any host port (export only).
    pub any_host_port: Vec<Vec<bool>>,
    pub frontends: Vec<u16>,
    pub frontends_any: Vec<bool>,
    pub hub: Vec<(HubListener, u16, bool)>,
    /// Each service's instances' fault edges (none where it has no edges).
    pub edges: Vec<Vec<u16>>,
    /// The edges' control listener, when the lab has edges.
    pub edges_control: Option<u16>,
}

impl Layout {
    /// Split `resolved` (in [`super::port_requests`]'s order) by owner; `edges`: it holds
    /// the fault edges' ports too.
    pub fn new(cfg: &LabConfig, resolved: &Resolved, edges: bool) -> Self {
        let mut at = 0;
        let mut take = |n: usize| {
            let r = (
                resolved.ports[at..at + n].to_vec(),
                resolved.any_host_port[at..at + n].to_vec(),
            );
            at += n;
            r
        };
        let (mut services, mut any_host_port) = (Vec::new(), Vec::new());
        for s in &cfg.services {
            let (p, a) = take(s.replicas);
            services.push(p);
            any_host_port.push(a);
        }
        let n_fe = cfg.proxy.as_ref().map_or(0, |p| p.frontends.len());
        let (frontends, frontends_any) = take(n_fe);
        let hub = match &cfg.hub {
            Some(h) => {
                let (p, a) = take(h.ports.len());
                h.ports
                    .iter()
                    .zip(p.into_iter().zip(a))
                    .map(|(hp, (port, any))| (hp.what, port, any))
                    .collect()
            }
            None => Vec::new(),
        };
        let (mut edge_ports, mut edges_control) = (Vec::new(), None);
        if edges {
            for (s, on) in cfg.services.iter().zip(edged(cfg)) {
                edge_ports.push(if on { take(s.replicas).0 } else { Vec::new() });
            }
            edges_control = take(1).0.first().copied();
        } else {
            edge_ports.resize(cfg.services.len(), Vec::new());
        }
        Self {
            services,
            any_host_port,
            frontends,
            frontends_any,
            hub,
            edges: edge_ports,
            edges_control,
        }
    }

    pub fn hub_port(&self, what: HubListener) -> u16 {
        self.hub
            .iter()
            .find(|(w, _, _)| *w == what)
            .map_or(0, |(_, p, _)| *p)
    }
}

/// For each service: whether its instances get edges (something consumes it).
pub fn edged(cfg: &LabConfig) -> Vec<bool> {
    cfg.services
        .iter()
        .map(|s| consumed(&cfg.services, cfg.proxy.as_ref(), &s.name))
        .collect()
}

/// The address to connect to for a service bound on `host`.
pub fn connect_host(host: &str) -> &str {
    match host {
        "0.0.0.0" | "" => "127.0.0.1",
        "::" | "[::]" => "::1",
        h => h,
    }
}

pub fn join_host_port(host: &str, port: u16) -> String {
    if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    }
}

/// An instance's name on a container network: the service's name for a single instance (the
/// book's `recipe-api:4000`), `NAME-N` for replicas (the service's name then answers for all).
pub fn alias(service: &str, replicas: usize, index: usize) -> String {
    if replicas == 1 {
        service.to_owned()
    } else {
        format!("{service}-{index}")
    }
}

/// The addresses of one shape of the lab.
pub struct Net<'a> {
    pub cfg: &'a LabConfig,
    pub layout: &'a Layout,
    pub shape: Shape,
}

impl Net<'_> {
    pub fn frontends(&self) -> &[ProxyFrontend] {
        self.cfg
            .proxy
            .as_ref()
            .map_or(&[][..], |p| &p.frontends[..])
    }

    /// The port instance `i` of service `si` listens on: its own, or (Compose, Kubernetes) the
    /// service's first, shared by replicas in containers of their own.
    pub fn listen_port(&self, si: usize, i: usize) -> u16 {
        match self.shape {
            Shape::Compose | Shape::Kubernetes => self.layout.services[si][0],
            Shape::Processes | Shape::Docker => self.layout.services[si][i],
        }
    }

    /// Where instance `i` of service `si` itself answers (health probes, proxy servers).
    pub fn instance(&self, si: usize, i: usize) -> String {
        let s = &self.cfg.services[si];
        let port = self.listen_port(si, i);
        match self.shape {
            Shape::Processes => join_host_port(connect_host(&s.host), port),
            Shape::Docker | Shape::Compose => {
                format!("{}:{port}", alias(&s.name, s.replicas, i + 1))
            }
            Shape::Kubernetes => format!("{}:{port}", s.name),
        }
    }

    /// Where a consumer reaches instance `i` of service `si`: its fault edge, if it has one,
    /// else the instance itself.
    pub fn served(&self, si: usize, i: usize) -> String {
        match self.layout.edges[si].get(i) {
            Some(port) if self.shape == Shape::Processes => join_host_port("127.0.0.1", *port),
            _ => self.instance(si, i),
        }
    }

    /// What consumer #`i` is given as the address of service `si`: producer #`i` (mod its
    /// replicas) where instances have addresses of their own, else the service's name.
    pub fn reach(&self, si: usize, i: usize) -> String {
        let s = &self.cfg.services[si];
        match self.shape {
            Shape::Processes | Shape::Docker => self.served(si, i % s.replicas),
            Shape::Compose | Shape::Kubernetes => {
                format!("{}:{}", s.name, self.layout.services[si][0])
            }
        }
    }

    pub fn frontend(&self, fi: usize) -> String {
        let port = self.layout.frontends[fi];
        match self.shape {
            Shape::Processes => join_host_port(connect_host(&self.frontends()[fi].host), port),
            _ => format!("{PROXY_SERVICE}:{port}"),
        }
    }

    /// Where frontend `fi` binds.
    pub fn frontend_bind(&self, fi: usize) -> String {
        let port = self.layout.frontends[fi];
        match self.shape {
            Shape::Processes => join_host_port(&self.frontends()[fi].host, port),
            _ => format!("0.0.0.0:{port}"),
        }
    }

    pub fn hub(&self, what: HubListener) -> String {
        let port = self.layout.hub_port(what);
        match (self.shape, &self.cfg.hub) {
            (Shape::Processes, Some(h)) => {
                join_host_port(connect_host(&h.config.host.to_string()), port)
            }
            _ => format!("{HUB_SERVICE}:{port}"),
        }
    }

    /// Where a service bound on `host` binds in this shape.
    pub fn bind_host<'h>(&self, host: &'h str) -> &'h str {
        match self.shape {
            Shape::Processes => host,
            _ => "0.0.0.0",
        }
    }

    fn service_index(&self, name: &str) -> usize {
        self.cfg
            .services
            .iter()
            .position(|s| s.name == name)
            .expect("validated")
    }

    /// The environment instance `i` of service `si` gets: what the book's code reads, the lab's
    /// own knobs, the hub's addresses, the user's `env` last.
    pub fn env(&self, si: usize, i: usize, tls: Option<&Tls>) -> Vec<(String, String)> {
        let s = &self.cfg.services[si];
        let mut env = vec![
            (vars::HOST.to_owned(), self.bind_host(&s.host).to_owned()),
            (vars::PORT.to_owned(), self.listen_port(si, i).to_string()),
            (vars::LAB_ENV.to_owned(), s.environment.clone()),
            (vars::NODE_ENV.to_owned(), s.environment.clone()),
            ("LAB_SERVICE".to_owned(), s.name.clone()),
        ];
        match &s.target {
            // Through a proxy frontend fronting the target in this consumer's protocol;
            // else consumer #i is pinned to producer #i (mod n).
            Some(Target::Service(t)) => {
                let to = match self.via_frontend(s) {
                    Some(fi) => self.frontend(fi),
                    None => self.reach(self.service_index(t), i),
                };
                env.push((vars::TARGET.to_owned(), to));
            }
            Some(Target::Addr(a)) => env.push((vars::TARGET.to_owned(), a.clone())),
            None => {}
        }
        if let Some(tls) = tls {
            if let Some(issued) = tls.certs.get(&s.name) {
                env.push((
                    tls_vars::TLS_CERT.to_owned(),
                    issued.cert.display().to_string(),
                ));
                env.push((
                    tls_vars::TLS_KEY.to_owned(),
                    issued.key.display().to_string(),
                ));
            }
            // Node.js code trusts the lab CA too, unchanged (consumer-https-basic.js).
            env.push((tls_vars::TLS_CA.to_owned(), tls.ca.display().to_string()));
            env.push((
                "NODE_EXTRA_CA_CERTS".to_owned(),
                tls.ca.display().to_string(),
            ));
        }
        if matches!(s.run, Run::Builtin(_)) {
            let m = &s.process;
            let defaults = ProcessModel::default();
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
        if let Some(h) = &self.cfg.hub {
            let pick = |external: &Option<String>, what| {
                external.clone().unwrap_or_else(|| self.hub(what))
            };
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
            // OpenTelemetry's own variables: an OTel SDK exports traces, logs and metrics to
            // the hub's OTLP/HTTP input (its default protocol) under the service's name.
            env.push((
                vars::OTEL_EXPORTER_OTLP_ENDPOINT.to_owned(),
                format!("http://{}", self.hub(HubListener::OtlpHttp)),
            ));
            env.push((vars::OTEL_SERVICE_NAME.to_owned(), s.name.clone()));
        }
        env.extend(s.env.iter().cloned());
        env
    }
}

impl Net<'_> {
    /// The frontend `s` reaches its `TARGET` service through, if one fronts it in a way `s`
    /// can speak.
    pub fn via_frontend(&self, s: &crate::config::model::Service) -> Option<usize> {
        let Some(Target::Service(t)) = &s.target else {
            return None;
        };
        let producer = self.cfg.service(t).expect("validated").protocol;
        route_via(self.frontends(), t, s.target_protocol, producer)
    }
}

/// The frontend a consumer calling `target` over `how` goes through, if one fronts `target` in
/// a way that consumer can speak: http(s)/GraphQL through an http frontend of the same TLS-ness,
/// anything (gRPC too) through a tcp frontend when the producer serves what the consumer speaks.
fn route_via(
    frontends: &[ProxyFrontend],
    target: &str,
    how: Option<crate::config::model::TargetProtocol>,
    producer: Protocol,
) -> Option<usize> {
    use crate::config::model::TargetProtocol;
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
