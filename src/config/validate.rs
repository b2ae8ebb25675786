//! Raw → validated: every problem is collected (with its span) before anything starts; later
//! code only ever sees [`LabConfig`].

use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use lab_supervisor::{Backoff, HealthCheck, HealthSpec, RestartPolicy, RestartSpec};
use toml::Spanned;

use super::diagnostic::{Diagnostic, did_you_mean};
use super::raw::{Builtin, CheckKind, PortSpec, RawBackoff, RawHealth, RawLab, RawService, Serve};

/// A lab.toml that passed validation.
#[derive(Debug, Clone)]
pub struct LabConfig {
    pub name: String,
    /// lab.toml, absolute.
    pub path: PathBuf,
    /// lab.toml as the user named it, for messages.
    pub display_path: String,
    /// The file's text, for diagnostics found later (taken ports at `up`).
    pub source: String,
    /// The folder holding lab.toml: relative paths resolve against it.
    pub dir: PathBuf,
    /// In a valid start order: every service after what it depends on.
    pub services: Vec<Service>,
    /// `[proxy]`, if the lab has one with at least one frontend.
    pub proxy: Option<Proxy>,
    /// `[load.NAME]` presets, by name.
    pub load: Vec<LoadPreset>,
    /// `[hub]`, if the lab has one.
    pub hub: Option<Hub>,
    /// What runs the instances (`runtime`, or `lab up --runtime`).
    pub runtime: super::raw::RuntimeKind,
}

/// The validated `[hub]`: the hub's settings (ports as configured; lowering picks free ones
/// for 0 and fills in the data dir) and where services send what.
#[derive(Debug, Clone)]
pub struct Hub {
    pub config: lab_hub::HubConfig,
    /// The configured listeners, for port checks at `up`.
    pub ports: Vec<HubPort>,
    /// External endpoints the services use instead of the hub (`host:port`).
    pub logstash: Option<String>,
    pub statsd: Option<String>,
    pub zipkin: Option<String>,
}

#[derive(Debug, Clone)]
pub struct HubPort {
    pub what: HubListener,
    pub port: u16,
    pub span: Option<Range<usize>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HubListener {
    Logs,
    Statsd,
    Zipkin,
    Http,
    Carbon,
}

impl HubListener {
    pub fn describe(self) -> &'static str {
        match self {
            Self::Logs => "hub logs (UDP)",
            Self::Statsd => "hub StatsD (UDP)",
            Self::Zipkin => "hub Zipkin API",
            Self::Http => "hub HTTP API",
            Self::Carbon => "hub carbon (TCP)",
        }
    }
    pub fn udp(self) -> bool {
        matches!(self, Self::Logs | Self::Statsd)
    }
}

/// The name the hub runs under (as a service of the plan, in logs and status).
pub const HUB_SERVICE: &str = "hub";

/// A validated `[load.NAME]`.
#[derive(Debug, Clone)]
pub struct LoadPreset {
    pub name: String,
    pub target: String,
    pub connections: Option<usize>,
    pub pipelining: Option<usize>,
    pub duration: Option<Duration>,
    pub amount: Option<u64>,
    pub rate: Option<f64>,
    pub method: Option<String>,
    pub headers: Vec<(String, String)>,
    pub body: Option<String>,
    pub http2: bool,
    pub timeout: Option<Duration>,
    pub sla: Option<String>,
}

/// The validated `[proxy]` section.
#[derive(Debug, Clone)]
pub struct Proxy {
    pub engine: super::raw::ProxyEngine,
    pub engine_span: Option<Range<usize>>,
    pub frontends: Vec<ProxyFrontend>,
}

/// One frontend; `settings` holds everything but its bind address, servers and TLS files,
/// which lowering fills in.
#[derive(Debug, Clone)]
pub struct ProxyFrontend {
    pub name: String,
    pub service: String,
    pub host: String,
    /// 0: a free port at start.
    pub port: u16,
    pub port_span: Option<Range<usize>>,
    pub tls: bool,
    pub settings: lab_proxy::config::Frontend,
}

/// The name the proxy runs under (as a service of the plan, in logs and status).
pub const PROXY_SERVICE: &str = "proxy";

impl LabConfig {
    pub fn service(&self, name: &str) -> Option<&Service> {
        self.services.iter().find(|s| s.name == name)
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub name_span: Range<usize>,
    pub run: Run,
    /// Where `command` is written, for diagnostics about the program.
    pub command_span: Option<Range<usize>>,
    pub replicas: usize,
    pub ports: Ports,
    pub port_span: Option<Range<usize>>,
    pub host: String,
    /// The user's variables (TARGET excluded: see `target`).
    pub env: Vec<(String, String)>,
    pub target: Option<Target>,
    /// How it serves.
    pub protocol: super::raw::Protocol,
    /// How it calls `target` (`TARGET_PROTOCOL`), if set.
    pub target_protocol: Option<super::raw::TargetProtocol>,
    /// What it plays in the book's application (`role`, else its builtin, else its name when
    /// that is a role); `None`: no chapter scenario holds it to a contract.
    pub role: Option<Builtin>,
    /// Producers: what it answers on its port (`serves`, or the default for its kind), in
    /// [`Serve::ALL`] order; empty for consumers.
    pub serves: Vec<Serve>,
    /// `serves` was written in lab.toml (not a default).
    pub serves_declared: bool,
    /// Declared dependencies plus the service `TARGET` names.
    pub depends_on: Vec<String>,
    pub health: HealthSpec,
    pub restart: RestartSpec,
    pub stop_grace: Duration,
    pub environment: String,
    /// Built-in services' process model (`LAB_THREADS`, `LAB_OFFLOAD`, `LAB_WORKERS`, `LAB_RESPAWN`).
    pub process: ProcessModel,
    /// `command` services on the docker runtime: the image, and the folder it is built from.
    pub image: Option<String>,
    pub build: Option<PathBuf>,
}

/// How a built-in service runs inside its instance: threads, offload, cluster workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessModel {
    pub threads: u32,
    pub offload: bool,
    pub workers: u32,
    pub respawn: bool,
}

impl Default for ProcessModel {
    fn default() -> Self {
        Self {
            threads: 1,
            offload: false,
            workers: 1,
            respawn: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Run {
    Builtin(Builtin),
    Command { argv: Vec<String>, cwd: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ports {
    /// Free ports picked at start.
    Auto,
    /// One port per instance.
    Fixed(Vec<u16>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Another service of the lab: resolved to one of its instances' address at start.
    Service(String),
    /// A literal `host:port`.
    Addr(String),
}

/// Variables the lab sets itself; setting them in `env` is an error with a hint.
const RESERVED_ENV: &[(&str, &str)] = &[
    ("HOST", "set `host = \"...\"` on the service"),
    ("PORT", "set `port = ...` on the service"),
    (
        "LAB_ENV",
        "set `environment = \"...\"` on the service or the lab",
    ),
    (
        "NODE_ENV",
        "set `environment = \"...\"` on the service or the lab",
    ),
    (
        "TARGET_PROTOCOL",
        "set `target_protocol = \"...\"` on the service",
    ),
    ("LAB_THREADS", "set `threads = N` on the service"),
    ("LAB_OFFLOAD", "set `offload = true` on the service"),
    ("LAB_WORKERS", "set `workers = N` on the service"),
    ("LAB_RESPAWN", "set `respawn = true` on the service"),
    ("LAB_WORKER", "the cluster master sets it on its workers"),
    (
        "TLS_CERT",
        "set `protocol = \"https\"` on the service: the lab issues its certificate",
    ),
    (
        "TLS_KEY",
        "set `protocol = \"https\"` on the service: the lab issues its certificate",
    ),
];

fn valid_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && s.len() <= 63
}

struct Errors(Vec<Diagnostic>);

impl Errors {
    fn push(&mut self, d: Diagnostic) {
        self.0.push(d);
    }
    fn duration(&mut self, v: &Option<Spanned<String>>, default: Duration) -> Duration {
        let Some(v) = v else { return default };
        match humantime::parse_duration(v.get_ref().trim()) {
            Ok(d) => d,
            Err(e) => {
                self.push(
                    Diagnostic::new(v.span(), format!("invalid duration {:?}: {e}", v.get_ref()))
                        .hint("write it like \"250ms\", \"2s\" or \"1m\""),
                );
                default
            }
        }
    }
}

impl Errors {
    /// [`Errors::duration`], refused below `min` (a 0 s probe interval is 1,000 probes a second).
    fn duration_min(
        &mut self,
        v: &Option<Spanned<String>>,
        default: Duration,
        min: Duration,
        what: &str,
    ) -> Duration {
        let d = self.duration(v, default);
        if let Some(s) = v
            && d < min
        {
            self.push(
                Diagnostic::new(
                    s.span(),
                    format!("{what} {:?} is below the least the lab takes", s.get_ref()),
                )
                .hint(format!("write {} or more", humantime::format_duration(min))),
            );
            return min;
        }
        d
    }
}

/// The most instances one service may run (each a process, ports and descriptors of its own).
pub const MAX_REPLICAS: u32 = 256;

/// Validate `raw` (parsed from `source`, the file in `dir`).
pub fn validate(
    raw: RawLab,
    source: &str,
    path: &Path,
    display_path: &str,
) -> Result<LabConfig, Vec<Diagnostic>> {
    let dir = path
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("."));
    let mut errs = Errors(Vec::new());

    let name = match &raw.name {
        Some(n) if !valid_name(n.get_ref()) => {
            errs.push(
                Diagnostic::new(n.span(), format!("invalid lab name {:?}", n.get_ref()))
                    .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
            n.get_ref().clone()
        }
        Some(n) => n.get_ref().clone(),
        None => dir
            .file_name()
            .map(|f| {
                f.to_string_lossy()
                    .to_lowercase()
                    .replace(|c: char| !c.is_ascii_alphanumeric(), "-")
            })
            .filter(|n| valid_name(n))
            .unwrap_or_else(|| "lab".into()),
    };
    let lab_env = raw
        .environment
        .as_ref()
        .map_or("development".to_owned(), |e| e.get_ref().clone());

    // A lab of only `[hub]` is what `lab hub` runs for one's own services; `lab up` refuses
    // it (see `runnable`).
    if raw.services.is_empty() && raw.hub.is_none() {
        errs.push(Diagnostic {
            span: None,
            message: "no services: the lab has nothing to run".into(),
            hint: Some(
                "add a [services.NAME] table with `builtin = \"recipe-api\"` or `command = [...]`"
                    .into(),
            ),
        });
    }
    let names: Vec<&str> = raw.services.keys().map(|k| k.get_ref().as_str()).collect();

    let mut services = Vec::new();
    for (key, svc) in &raw.services {
        if !valid_name(key.get_ref()) {
            errs.push(
                Diagnostic::new(
                    key.span(),
                    format!("invalid service name {:?}", key.get_ref()),
                )
                .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        services.push(service(key, svc, &names, &lab_env, &dir, &mut errs));
    }

    let proxy = raw
        .proxy
        .as_ref()
        .map(|p| proxy(p, &services, &names, &mut errs))
        .filter(|p| !p.frontends.is_empty());
    if proxy.is_some()
        && let Some((key, _)) = raw
            .services
            .iter()
            .find(|(k, _)| k.get_ref() == PROXY_SERVICE)
    {
        errs.push(
            Diagnostic::new(key.span(), "`proxy` is the name of the lab's proxy")
                .hint("rename this service (e.g. `my-proxy`)"),
        );
    }
    let mut hub = raw.hub.as_ref().map(|h| hub(h, &mut errs));
    let rules = alerts(&raw, &services, &names, &mut errs);
    match &mut hub {
        Some(h) => h.config.alerts = rules,
        None if !rules.is_empty() => {
            let (key, _) = raw.alerts.first().expect("rules come from [alerts]");
            errs.push(
                Diagnostic::new(
                    key.span(),
                    "alert rules need the hub, and this lab has no [hub]",
                )
                .hint("add `[hub]` (the hub evaluates the rules)"),
            );
        }
        None => {}
    }
    if hub.is_some()
        && let Some((key, _)) = raw
            .services
            .iter()
            .find(|(k, _)| k.get_ref() == HUB_SERVICE)
    {
        errs.push(
            Diagnostic::new(
                key.span(),
                "`hub` is the name of the lab's observability hub",
            )
            .hint("rename this service (e.g. `my-hub`)"),
        );
    }
    check_duplicate_ports(&services, proxy.as_ref(), hub.as_ref(), &mut errs);
    let load = load_presets(&raw, &mut errs);
    check_tls_pairs(&raw, &services, &mut errs);
    let order = start_order(&raw, &services, &mut errs);

    if !errs.0.is_empty() {
        return Err(errs.0);
    }
    let mut by_name: HashMap<String, Service> =
        services.into_iter().map(|s| (s.name.clone(), s)).collect();
    let services = order
        .into_iter()
        .filter_map(|n| by_name.remove(&n))
        .collect();
    Ok(LabConfig {
        name,
        path: path.to_path_buf(),
        display_path: display_path.to_owned(),
        source: source.to_owned(),
        dir,
        services,
        proxy,
        load,
        hub,
        runtime: raw
            .runtime
            .as_ref()
            .map(|r| *r.get_ref())
            .unwrap_or_default(),
    })
}

fn alerts(
    raw: &RawLab,
    services: &[Service],
    names: &[&str],
    errs: &mut Errors,
) -> Vec<lab_hub::alerts::Rule> {
    use lab_hub::alerts::{Check, Cmp, Rule};
    let mut out = Vec::new();
    for (key, a) in &raw.alerts {
        let name = key.get_ref().clone();
        let kinds = [a.metric.is_some(), a.http.is_some(), a.health.is_some()]
            .iter()
            .filter(|k| **k)
            .count();
        if kinds != 1 {
            errs.push(
                Diagnostic::new(key.span(), format!("alert `{name}` needs exactly one of `metric`, `http` and `health`"))
                    .hint("metric = \"<graphite target>\" with check and value; http = \"<url>\"; or health = \"<service>\""),
            );
            continue;
        }
        let importance = a
            .importance
            .as_ref()
            .map_or("ERROR".to_owned(), |i| i.get_ref().to_ascii_uppercase());
        if !["WARNING", "ERROR", "CRITICAL"].contains(&importance.as_str()) {
            errs.push(Diagnostic::new(
                a.importance.as_ref().map(Spanned::span).unwrap_or_default(),
                format!("importance {importance:?} is not WARNING, ERROR or CRITICAL"),
            ));
        }
        let for_ms = errs.duration(&a.for_, Duration::ZERO).as_millis() as u64;
        let check = if let Some(m) = &a.metric {
            if let Err(e) = lab_hub::query::graphite::parse_target(m.get_ref()) {
                errs.push(Diagnostic::new(
                    m.span(),
                    format!("metric {:?} is not a Graphite target: {e}", m.get_ref()),
                ));
            }
            let cmp = match &a.check {
                Some(c) => Cmp::parse(c.get_ref()).unwrap_or_else(|| {
                    errs.push(Diagnostic::new(
                        c.span(),
                        format!("check {:?} is not one of > >= < <= ==", c.get_ref()),
                    ));
                    Cmp::Gt
                }),
                None => {
                    errs.push(Diagnostic::new(
                        key.span(),
                        format!("metric alert `{name}` needs `check` (> >= < <= ==) and `value`"),
                    ));
                    Cmp::Gt
                }
            };
            let value = match &a.value {
                Some(v) => *v.get_ref(),
                None => {
                    if a.check.is_some() {
                        errs.push(Diagnostic::new(
                            key.span(),
                            format!("metric alert `{name}` needs `value`"),
                        ));
                    }
                    0.0
                }
            };
            let window_s = match &a.window {
                Some(w) => match lab_hub::query::graphite::parse_interval(w.get_ref()) {
                    Some(s) if s > 0 => s,
                    _ => {
                        errs.push(
                            Diagnostic::new(
                                w.span(),
                                format!("window {:?} is not a Graphite interval", w.get_ref()),
                            )
                            .hint("e.g. \"30s\", \"5min\", \"1h\""),
                        );
                        60
                    }
                },
                None => 60,
            };
            Check::Metric {
                target: m.get_ref().clone(),
                check: cmp,
                value,
                window_s,
            }
        } else if let Some(u) = &a.http {
            if !u.get_ref().starts_with("http://") && !u.get_ref().starts_with("https://") {
                errs.push(Diagnostic::new(
                    u.span(),
                    format!("http {:?} is not an http(s):// URL", u.get_ref()),
                ));
            }
            if let Some(t) = &a.text
                && let Err(e) = regex_check(t.get_ref())
            {
                errs.push(Diagnostic::new(
                    t.span(),
                    format!("text is not a regex: {e}"),
                ));
            }
            if let Some(st) = &a.status
                && !(100..=599).contains(st.get_ref())
            {
                errs.push(
                    Diagnostic::new(
                        st.span(),
                        format!("status {} is not an HTTP status", st.get_ref()),
                    )
                    .hint("from 100 to 599, e.g. 200"),
                );
            }
            Check::Http {
                url: u.get_ref().clone(),
                status: a.status.as_ref().map_or(200, |s| *s.get_ref()),
                text: a.text.as_ref().map(|t| t.get_ref().clone()),
                timeout_ms: errs
                    .duration(&a.timeout, Duration::from_secs(2))
                    .as_millis() as u64,
            }
        } else {
            let h = a.health.as_ref().expect("one kind");
            if !services.iter().any(|s| &s.name == h.get_ref()) {
                let mut d = Diagnostic::new(
                    h.span(),
                    format!(
                        "alert `{name}` watches `{}`, which is not a service of this lab",
                        h.get_ref()
                    ),
                );
                d.hint = did_you_mean(h.get_ref(), names.iter().copied())
                    .map(|b| format!("did you mean `{b}`?"));
                errs.push(d);
            }
            let state = match a.state.as_ref().map(|s| s.get_ref().to_ascii_uppercase()) {
                None => lab_service_kit::health::Level::Down,
                Some(s) if s == "DOWN" => lab_service_kit::health::Level::Down,
                Some(s) if s == "DEGRADED" => lab_service_kit::health::Level::Degraded,
                Some(other) => {
                    errs.push(Diagnostic::new(
                        a.state.as_ref().map(Spanned::span).unwrap_or_default(),
                        format!("state {other:?} is not DEGRADED or DOWN"),
                    ));
                    lab_service_kit::health::Level::Down
                }
            };
            Check::Health {
                service: h.get_ref().clone(),
                state,
            }
        };
        out.push(Rule {
            name,
            check,
            for_ms,
            importance,
            origin: None,
        });
    }
    out
}

fn regex_check(re: &str) -> Result<(), String> {
    regex::Regex::new(re).map(|_| ()).map_err(|e| e.to_string())
}

fn hub(raw: &super::raw::RawHub, errs: &mut Errors) -> Hub {
    let mut config = lab_hub::HubConfig::default();
    if let Some(h) = &raw.host {
        match h.get_ref().parse() {
            Ok(ip) => config.host = ip,
            Err(_) => errs.push(
                Diagnostic::new(
                    h.span(),
                    format!("hub host {:?} is not an IP address", h.get_ref()),
                )
                .hint("use 127.0.0.1 (this machine only) or 0.0.0.0 (every interface)"),
            ),
        }
    }
    let mut ports = Vec::new();
    for (what, raw_port, default) in [
        (HubListener::Logs, &raw.logs_port, config.logs_port),
        (HubListener::Statsd, &raw.statsd_port, config.statsd_port),
        (HubListener::Zipkin, &raw.zipkin_port, config.zipkin_port),
        (HubListener::Http, &raw.http_port, config.http_port),
        (HubListener::Carbon, &raw.carbon_port, 2003),
    ] {
        ports.push(HubPort {
            what,
            port: raw_port.as_ref().map_or(default, |p| *p.get_ref()),
            span: raw_port.as_ref().map(Spanned::span),
        });
    }
    // One source of truth: the config carries the ports as configured too (`lab hub` runs it
    // as it is; lowering replaces 0 by a free port).
    let port = |what| {
        ports
            .iter()
            .find(|p: &&HubPort| p.what == what)
            .map_or(0, |p| p.port)
    };
    config.logs_port = port(HubListener::Logs);
    config.statsd_port = port(HubListener::Statsd);
    config.zipkin_port = port(HubListener::Zipkin);
    config.http_port = port(HubListener::Http);
    config.carbon_port = Some(port(HubListener::Carbon));
    let interval = errs.duration(&raw.flush_interval, Duration::from_secs(10));
    if interval < Duration::from_secs(1) {
        errs.push(
            Diagnostic::new(
                raw.flush_interval.as_ref().map(Spanned::span).unwrap_or_default(),
                "the flush interval is shorter than one second",
            )
            .hint("Graphite stores one point per interval: use \"1s\" or more (etsy's default is \"10s\")"),
        );
    }
    config.flush_interval_ms = interval.as_millis() as u64;
    let health = errs.duration(&raw.health_interval, Duration::from_secs(2));
    if health < Duration::from_millis(100) {
        errs.push(
            Diagnostic::new(
                raw.health_interval
                    .as_ref()
                    .map(Spanned::span)
                    .unwrap_or_default(),
                "the health interval is shorter than 100ms",
            )
            .hint("every instance is probed each interval: use \"1s\" or more"),
        );
    }
    config.health_interval_ms = health.as_millis() as u64;
    if let Some(r) = &raw.retention {
        if let Some(s) = &r.max_size {
            match parse_size(s.get_ref()) {
                Some(b) if b >= 10_000_000 => config.retention.max_bytes = b,
                Some(_) => errs.push(
                    Diagnostic::new(s.span(), "retention `max_size` is under 10MB")
                        .hint("a day of the default lab's data takes a few hundred MB"),
                ),
                None => errs.push(
                    Diagnostic::new(s.span(), format!("cannot read the size {:?}", s.get_ref()))
                        .hint("write it like \"1GB\", \"500MB\" or \"2GiB\""),
                ),
            }
        }
        let age = errs.duration_min(
            &r.max_age,
            Duration::from_millis(config.retention.max_age_ms),
            Duration::from_secs(3600),
            "retention `max_age`",
        );
        config.retention.max_age_ms = age.as_millis() as u64;
    }
    config.alert_interval_ms = errs
        .duration(&raw.alert_interval, Duration::from_secs(5))
        .as_millis()
        .max(100) as u64;
    if let Some(w) = &raw.alert_webhook {
        if !w.get_ref().starts_with("http://") && !w.get_ref().starts_with("https://") {
            errs.push(Diagnostic::new(
                w.span(),
                format!("alert_webhook {:?} is not an http(s):// URL", w.get_ref()),
            ));
        }
        config.alert_webhook = Some(w.get_ref().clone());
    }
    if let Some(n) = &raw.namespace {
        match n.get_ref().as_str() {
            "legacy" => config.namespace = lab_hub::ingest::statsd::Namespace::Legacy,
            "modern" => config.namespace = lab_hub::ingest::statsd::Namespace::Modern,
            other => {
                let mut d =
                    Diagnostic::new(n.span(), format!("unknown StatsD namespace {other:?}"));
                d.hint = Some(match did_you_mean(other, ["legacy", "modern"]) {
                    Some(s) => format!("did you mean `{s}`? (legacy or modern)"),
                    None => "use `legacy` (the book's stats_counts.K names) or `modern`".into(),
                });
                errs.push(d);
            }
        }
    }
    if let Some(p) = &raw.percent_thresholds {
        if let Some(bad) = p
            .get_ref()
            .iter()
            .find(|v| **v == 0.0 || v.abs() > 100.0 || !v.is_finite())
        {
            errs.push(
                Diagnostic::new(
                    p.span(),
                    format!("percent threshold {bad} is outside -100..100 (or 0)"),
                )
                .hint("e.g. [90, 99] for upper_90 and upper_99"),
            );
        }
        config.percent_thresholds = p.get_ref().clone();
    }
    if let Some(p) = &raw.index_prefix {
        config.index_prefix = p.get_ref().clone();
    }
    let mut external = |v: &Option<Spanned<String>>, what: &str| -> Option<String> {
        let v = v.as_ref()?;
        let text = v.get_ref().trim();
        let ok = text
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !ok {
            errs.push(
                Diagnostic::new(v.span(), format!("{what} {text:?} is not `host:port`"))
                    .hint("e.g. \"127.0.0.1:7777\" or \"logstash.internal:5000\""),
            );
        }
        Some(text.to_owned())
    };
    let logstash = external(&raw.logstash, "logstash");
    let statsd = external(&raw.statsd, "statsd");
    let zipkin = external(&raw.zipkin, "zipkin");
    config.forward_graphite = external(&raw.graphite, "graphite");
    Hub {
        config,
        ports,
        logstash,
        statsd,
        zipkin,
    }
}

fn load_presets(raw: &RawLab, errs: &mut Errors) -> Vec<LoadPreset> {
    let mut out = Vec::new();
    for (key, l) in &raw.load {
        if !valid_name(key.get_ref()) {
            errs.push(
                Diagnostic::new(
                    key.span(),
                    format!("invalid load preset name {:?}", key.get_ref()),
                )
                .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        if let (Some(_), Some(a)) = (&l.duration, &l.amount) {
            errs.push(
                Diagnostic::new(a.span(), "`amount` and `duration` both end a run")
                    .hint("keep one of them"),
            );
        }
        let positive = |v: &Option<Spanned<u32>>, key: &str, errs: &mut Errors| {
            v.as_ref().map(|v| {
                if *v.get_ref() == 0 {
                    errs.push(
                        Diagnostic::new(v.span(), format!("`{key}` must be at least 1"))
                            .hint("e.g. 10"),
                    );
                }
                (*v.get_ref()).max(1) as usize
            })
        };
        if let Some(r) = &l.rate
            && !(*r.get_ref() > 0.0 && r.get_ref().is_finite())
        {
            errs.push(
                Diagnostic::new(
                    r.span(),
                    "`rate` must be a positive number of requests per second",
                )
                .hint("e.g. 1000"),
            );
        }
        if let Some(sla) = &l.sla
            && let Err(e) = lab_loadgen::sla::parse(sla.get_ref())
        {
            errs.push(
                Diagnostic::new(sla.span(), e.to_string())
                    .hint("e.g. \"p99<20ms,errors<0.1%,rps>5000\""),
            );
        }
        out.push(LoadPreset {
            name: key.get_ref().clone(),
            target: l.target.get_ref().clone(),
            connections: positive(&l.connections, "connections", errs),
            pipelining: positive(&l.pipelining, "pipelining", errs),
            duration: l
                .duration
                .as_ref()
                .map(|_| errs.duration(&l.duration, Duration::from_secs(10))),
            amount: l.amount.as_ref().map(|a| *a.get_ref()),
            rate: l.rate.as_ref().map(|r| *r.get_ref()),
            method: l.method.as_ref().map(|m| m.get_ref().to_ascii_uppercase()),
            headers: l
                .headers
                .iter()
                .flatten()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            body: l.body.as_ref().map(|b| b.get_ref().clone()),
            http2: l.http2.as_ref().is_some_and(|h| *h.get_ref()),
            timeout: l
                .timeout
                .as_ref()
                .map(|_| errs.duration(&l.timeout, Duration::from_secs(10))),
            sla: l.sla.as_ref().map(|s| s.get_ref().clone()),
        });
    }
    out
}

fn proxy(
    raw: &super::raw::RawProxy,
    services: &[Service],
    names: &[&str],
    errs: &mut Errors,
) -> Proxy {
    use super::raw::{BalanceKind, FrontendMode, Protocol};
    use lab_proxy::config::{Balance, Check, Frontend, Mode};
    let mut frontends = Vec::new();
    for (key, f) in &raw.frontends {
        let name = key.get_ref().clone();
        if !valid_name(&name) {
            errs.push(
                Diagnostic::new(key.span(), format!("invalid frontend name {name:?}"))
                    .hint("use letters, digits, '-', '_' or '.', starting with a letter or digit"),
            );
        }
        let svc_name = f.service.get_ref();
        let svc = services.iter().find(|s| &s.name == svc_name);
        if svc.is_none() {
            let mut d = Diagnostic::new(
                f.service.span(),
                format!(
                    "frontend `{name}` balances `{svc_name}`, which is not a service of this lab"
                ),
            );
            d.hint = Some(match did_you_mean(svc_name, names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("services are: {}", names.join(", ")),
            });
            errs.push(d);
        }
        let mut st = Frontend::new(&name, "", Vec::new());
        st.mode = match f.mode.as_ref().map(|m| *m.get_ref()) {
            Some(FrontendMode::Tcp) => Mode::Tcp,
            _ => Mode::Http,
        };
        st.balance = match f.balance.as_ref().map(|b| *b.get_ref()) {
            Some(BalanceKind::Leastconn) => Balance::Leastconn,
            _ => Balance::Roundrobin,
        };
        let tls = f.tls.as_ref().is_some_and(|t| *t.get_ref());
        let http_only = |what: &str, span: Range<usize>, errs: &mut Errors| {
            errs.push(
                Diagnostic::new(span, format!("`{what}` needs `mode = \"http\"`"))
                    .hint("tcp mode passes bytes through untouched; remove it or use http mode"),
            );
        };
        if st.mode == Mode::Tcp {
            if let Some(t) = f.tls.as_ref().filter(|t| *t.get_ref()) {
                http_only("tls", t.span(), errs);
            }
            if let Some(c) = &f.compression {
                http_only("compression", c.span(), errs);
            }
            if let Some(u) = &f.stats_uri {
                http_only("stats_uri", u.span(), errs);
            }
        } else if let Some(s) = svc.filter(|s| s.protocol == Protocol::Https) {
            errs.push(
                Diagnostic::new(
                    f.service.span(),
                    format!("`{}` serves https, but an http frontend talks plain HTTP to its servers", s.name),
                )
                .hint("use `mode = \"tcp\"` to pass TLS through, or serve the service over http and set `tls = true` here"),
            );
        }
        if let Some(c) = &f.compression {
            st.compression = c
                .get_ref()
                .iter()
                .map(|t| t.trim().to_ascii_lowercase())
                .collect();
        }
        if let Some(m) = &f.maxconn {
            st.maxconn = (*m.get_ref()).max(1) as usize;
        }
        st.server_maxconn = f
            .server_maxconn
            .as_ref()
            .map(|m| *m.get_ref() as usize)
            .filter(|&m| m > 0);
        let ms = |d: Duration| d.as_millis() as u64;
        st.queue_timeout_ms =
            ms(errs.duration(&f.queue_timeout, Duration::from_millis(st.queue_timeout_ms)));
        st.connect_timeout_ms = ms(errs.duration(
            &f.connect_timeout,
            Duration::from_millis(st.connect_timeout_ms),
        ));
        st.client_timeout_ms = ms(errs.duration(
            &f.client_timeout,
            Duration::from_millis(st.client_timeout_ms),
        ));
        st.server_timeout_ms = ms(errs.duration(
            &f.server_timeout,
            Duration::from_millis(st.server_timeout_ms),
        ));
        if let Some(r) = &f.retries {
            st.retries = *r.get_ref();
        }
        if let Some(b) = &f.max_header_bytes {
            if *b.get_ref() < 8192 {
                errs.push(
                    Diagnostic::new(b.span(), "`max_header_bytes` is at least 8192")
                        .hint("a browser's request line and headers often take a few KB"),
                );
            }
            st.max_header_bytes = (*b.get_ref()).max(8192) as usize;
        }
        if let Some(n) = &f.max_headers {
            if *n.get_ref() == 0 {
                errs.push(Diagnostic::new(n.span(), "`max_headers` is at least 1"));
            }
            st.max_headers = (*n.get_ref()).max(1) as usize;
        }
        if let Some(u) = &f.stats_uri {
            if !u.get_ref().starts_with('/') {
                errs.push(
                    Diagnostic::new(
                        u.span(),
                        format!("stats_uri {:?} must start with '/'", u.get_ref()),
                    )
                    .hint("e.g. \"/admin?stats\""),
                );
            }
            st.stats_uri = Some(u.get_ref().clone());
        }
        let enabled = f
            .check
            .as_ref()
            .and_then(|c| c.enabled.as_ref())
            .is_none_or(|e| *e.get_ref());
        if enabled {
            let c = f.check.as_ref();
            let service_path = svc.and_then(|s| match &s.health.check {
                HealthCheck::Http { path } | HealthCheck::Https { path, .. } => Some(path.clone()),
                _ => None,
            });
            let path = match c.and_then(|c| c.path.as_ref()) {
                Some(p) if !p.get_ref().starts_with('/') => {
                    errs.push(
                        Diagnostic::new(
                            p.span(),
                            format!("check path {:?} must start with '/'", p.get_ref()),
                        )
                        .hint("e.g. \"/health\""),
                    );
                    None
                }
                Some(p) => Some(p.get_ref().clone()),
                None if st.mode == Mode::Http => service_path.or(Some("/health".into())),
                None => None,
            };
            let count =
                |v: Option<&Spanned<u32>>, default: u32, key: &str, errs: &mut Errors| match v {
                    Some(v) if *v.get_ref() == 0 => {
                        errs.push(
                            Diagnostic::new(v.span(), format!("`{key}` must be at least 1"))
                                .hint("HAProxy's defaults are rise 2, fall 3"),
                        );
                        default
                    }
                    Some(v) => *v.get_ref(),
                    None => default,
                };
            st.check = Some(Check {
                path,
                interval_ms: ms(
                    errs.duration(&c.and_then(|c| c.interval.clone()), Duration::from_secs(2))
                )
                .max(1),
                timeout_ms: ms(
                    errs.duration(&c.and_then(|c| c.timeout.clone()), Duration::from_secs(1))
                )
                .max(1),
                rise: count(c.and_then(|c| c.rise.as_ref()), 2, "rise", errs),
                fall: count(c.and_then(|c| c.fall.as_ref()), 3, "fall", errs),
            });
        }
        frontends.push(ProxyFrontend {
            name,
            service: svc_name.clone(),
            host: f
                .host
                .as_ref()
                .map_or("127.0.0.1".to_owned(), |h| h.get_ref().clone()),
            port: f.port.as_ref().map_or(0, |p| *p.get_ref()),
            port_span: f.port.as_ref().map(|p| p.span()),
            tls,
            settings: st,
        });
    }
    Proxy {
        engine: raw
            .engine
            .as_ref()
            .map_or(super::raw::ProxyEngine::Builtin, |e| *e.get_ref()),
        engine_span: raw.engine.as_ref().map(|e| e.span()),
        frontends,
    }
}

fn service(
    key: &Spanned<String>,
    svc: &RawService,
    names: &[&str],
    lab_env: &str,
    dir: &Path,
    errs: &mut Errors,
) -> Service {
    let name = key.get_ref().clone();
    let run = match (&svc.builtin, &svc.command) {
        (Some(b), None) => Run::Builtin(*b.get_ref()),
        (None, Some(c)) if c.get_ref().is_empty() || c.get_ref()[0].trim().is_empty() => {
            errs.push(
                Diagnostic::new(c.span(), "`command` is empty")
                    .hint("name the program first, e.g. [\"node\", \"server.js\"]"),
            );
            Run::Builtin(Builtin::RecipeApi)
        }
        (None, Some(c)) if c.get_ref().iter().any(|a| a.contains('\0')) => {
            errs.push(
                Diagnostic::new(c.span(), "`command` holds a NUL character")
                    .hint("no program argument can carry one; remove it"),
            );
            Run::Builtin(Builtin::RecipeApi)
        }
        (None, Some(c)) => {
            let cwd = match &svc.cwd {
                None => dir.to_path_buf(),
                Some(cwd) => {
                    let p = dir.join(cwd.get_ref());
                    if !p.is_dir() {
                        errs.push(
                            Diagnostic::new(
                                cwd.span(),
                                format!("`cwd` {:?} is not a folder", cwd.get_ref()),
                            )
                            .hint(format!("paths are relative to {}", dir.display())),
                        );
                    }
                    p
                }
            };
            Run::Command {
                argv: c.get_ref().clone(),
                cwd,
            }
        }
        (Some(b), Some(_)) => {
            errs.push(
                Diagnostic::new(
                    key.span(),
                    format!("service `{name}` has both `builtin` and `command`"),
                )
                .hint(
                    "keep one: `builtin` runs the lab's own service, `command` runs your program",
                ),
            );
            Run::Builtin(*b.get_ref())
        }
        (None, None) => {
            errs.push(
                Diagnostic::new(key.span(), format!("service `{name}` has neither `builtin` nor `command`"))
                    .hint("add `builtin = \"recipe-api\"` (or \"web-api\"), or `command = [\"node\", \"server.js\"]`"),
            );
            Run::Builtin(Builtin::RecipeApi)
        }
    };
    if let (Some(cwd), Run::Builtin(_)) = (&svc.cwd, &run) {
        errs.push(
            Diagnostic::new(cwd.span(), "`cwd` only applies to `command` services")
                .hint("remove it"),
        );
    }
    for (key, value) in [("image", &svc.image), ("build", &svc.build)] {
        if let (Some(v), Run::Builtin(b)) = (value, &run) {
            errs.push(
                Diagnostic::new(
                    v.span(),
                    format!("`{key}` only applies to `command` services"),
                )
                .hint(format!(
                    "built-in {} runs the image `lab images build` makes; remove `{key}`",
                    b.as_str()
                )),
            );
        }
    }
    let image = svc.image.as_ref().map(|i| i.get_ref().clone());
    if let Some(i) = &svc.image
        && (i.get_ref().trim().is_empty() || i.get_ref().contains(char::is_whitespace))
    {
        errs.push(
            Diagnostic::new(i.span(), format!("invalid image name {:?}", i.get_ref()))
                .hint("e.g. \"my-recipe-api:1\""),
        );
    }
    let build = svc.build.as_ref().map(|b| {
        let p = dir.join(b.get_ref());
        if !p.join("Dockerfile").is_file() {
            errs.push(
                Diagnostic::new(
                    b.span(),
                    format!("`build` {:?} has no Dockerfile", b.get_ref()),
                )
                .hint(format!(
                    "a folder holding a Dockerfile, relative to {}",
                    dir.display()
                )),
            );
        }
        p
    });

    let process = process_model(svc, &run, errs);
    let role = match (&svc.role, &run) {
        (Some(r), _) => Some(*r.get_ref()),
        (None, Run::Builtin(b)) => Some(*b),
        (None, Run::Command { .. }) => [Builtin::RecipeApi, Builtin::WebApi]
            .into_iter()
            .find(|b| b.as_str() == name),
    };
    let (protocol, serves) = serves(svc, &run, role, &name, errs);
    let health = health(
        svc.health.as_ref(),
        matches!(run, Run::Command { .. }),
        errs,
    );

    let replicas = match &svc.replicas {
        Some(r) if *r.get_ref() == 0 => {
            errs.push(
                Diagnostic::new(r.span(), "`replicas` must be at least 1")
                    .hint("remove the service to run none of it"),
            );
            1
        }
        Some(r) if *r.get_ref() > MAX_REPLICAS => {
            errs.push(
                Diagnostic::new(r.span(), format!("`replicas` is at most {MAX_REPLICAS}"))
                    .hint("each replica is a process with ports and file descriptors of its own on this machine"),
            );
            MAX_REPLICAS as usize
        }
        Some(r) => *r.get_ref() as usize,
        None => 1,
    };

    let ports = match &svc.port {
        None => Ports::Auto,
        Some(p) => ports(p, replicas, errs),
    };

    let mut env = Vec::new();
    let mut target = None;
    let mut depends_on: Vec<String> = Vec::new();
    for (k, v) in svc.env.iter().flatten() {
        if k.get_ref().is_empty() || k.get_ref().contains(['\0', '=']) || v.get_ref().contains('\0')
        {
            let span = if v.get_ref().contains('\0') {
                v.span()
            } else {
                k.span()
            };
            errs.push(
                Diagnostic::new(
                    span,
                    format!(
                        "`{}` cannot be an environment variable",
                        k.get_ref().replace('\0', "\\0")
                    ),
                )
                .hint("names are non-empty without `=` or NUL; values have no NUL"),
            );
            continue;
        }
        if let Some((_, hint)) = RESERVED_ENV.iter().find(|(r, _)| r == k.get_ref()) {
            errs.push(
                Diagnostic::new(k.span(), format!("`{}` is set by the lab", k.get_ref()))
                    .hint(*hint),
            );
        } else if k.get_ref() == "TARGET" {
            let value = v.get_ref().trim();
            if names.contains(&value) {
                target = Some(Target::Service(value.to_owned()));
                depends_on.push(value.to_owned());
            } else if looks_like_addr(value) {
                target = Some(Target::Addr(value.to_owned()));
            } else {
                let mut d = Diagnostic::new(
                    v.span(),
                    format!("TARGET {value:?} names no service of this lab"),
                );
                d.hint = Some(match did_you_mean(value, names.iter().copied()) {
                    Some(best) => format!("did you mean `{best}`? (or write a literal host:port)"),
                    None => format!(
                        "name one of: {} (or write a literal host:port)",
                        names.join(", ")
                    ),
                });
                errs.push(d);
            }
        } else {
            env.push((k.get_ref().clone(), v.get_ref().clone()));
        }
    }
    if let Some(h) = &svc.health {
        if let Some(pg) = &h.postgres {
            let url = pg.get_ref().trim();
            if !(url.starts_with("postgres://") || url.starts_with("postgresql://")) {
                errs.push(
                    Diagnostic::new(
                        pg.span(),
                        format!("postgres {url:?} is not a postgres:// URL"),
                    )
                    .hint("e.g. \"postgres://postgres@127.0.0.1:5432/postgres\""),
                );
            }
            env.push(("HEALTH_POSTGRES".to_owned(), url.to_owned()));
        }
        if let Some(r) = &h.redis {
            let addr = r
                .get_ref()
                .trim()
                .trim_start_matches("redis://")
                .trim_end_matches('/');
            if addr
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                errs.push(
                    Diagnostic::new(r.span(), format!("redis {addr:?} is not host:port"))
                        .hint("e.g. \"127.0.0.1:6379\""),
                );
            }
            env.push(("HEALTH_REDIS".to_owned(), addr.to_owned()));
        }
    }

    for d in svc.depends_on.iter().flatten() {
        if !names.contains(&d.get_ref().as_str()) {
            let mut diag = Diagnostic::new(
                d.span(),
                format!(
                    "`{name}` depends on `{}`, which is not a service of this lab",
                    d.get_ref()
                ),
            );
            diag.hint = Some(match did_you_mean(d.get_ref(), names.iter().copied()) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("services are: {}", names.join(", ")),
            });
            errs.push(diag);
        } else if !depends_on.contains(d.get_ref()) {
            depends_on.push(d.get_ref().clone());
        }
    }

    Service {
        name,
        name_span: key.span(),
        command_span: svc.command.as_ref().map(|c| c.span()),
        run,
        replicas,
        ports,
        port_span: svc.port.as_ref().map(|p| p.span()),
        host: match &svc.host {
            None => "127.0.0.1".to_owned(),
            Some(h) => {
                let v = h.get_ref().trim();
                if v.parse::<std::net::IpAddr>().is_err() && v != "localhost" {
                    errs.push(
                        Diagnostic::new(h.span(), format!("host {v:?} is not an IP address"))
                            .hint("the address the service binds: \"127.0.0.1\" (this machine only) or \"0.0.0.0\" (every interface)"),
                    );
                }
                v.to_owned()
            }
        },
        env,
        protocol,
        target_protocol: svc.target_protocol.as_ref().map(|p| *p.get_ref()),
        role,
        serves,
        serves_declared: svc.serves.is_some(),
        target,
        depends_on,
        health,
        restart: RestartSpec {
            policy: match svc.restart.as_ref().map(|r| *r.get_ref()) {
                Some(super::raw::RestartPolicy::Always) => RestartPolicy::Always,
                Some(super::raw::RestartPolicy::Never) => RestartPolicy::Never,
                Some(super::raw::RestartPolicy::OnFailure) | None => RestartPolicy::OnFailure,
            },
            backoff: backoff(svc.backoff.as_ref(), errs),
        },
        stop_grace: errs.duration(&svc.stop_grace, Duration::from_secs(10)),
        environment: svc
            .environment
            .as_ref()
            .map_or(lab_env.to_owned(), |e| e.get_ref().clone()),
        process,
        image,
        build,
    }
}

/// `threads`, `offload`, `workers`, `respawn`: built-in services only, in range, consistent.
fn process_model(svc: &RawService, run: &Run, errs: &mut Errors) -> ProcessModel {
    let mut m = ProcessModel::default();
    let builtin_only = |span: Range<usize>, key: &str, errs: &mut Errors| {
        errs.push(
            Diagnostic::new(span, format!("`{key}` only applies to built-in services"))
                .hint("your own program runs its own threads or cluster (e.g. Node's cluster module); remove it"),
        );
    };
    let count = |v: &Spanned<u32>, key: &str, errs: &mut Errors| -> u32 {
        let n = *v.get_ref();
        if !(1..=256).contains(&n) {
            errs.push(
                Diagnostic::new(v.span(), format!("`{key}` must be from 1 to 256"))
                    .hint("one per core is the usual choice"),
            );
            return 1;
        }
        n
    };
    let command = matches!(run, Run::Command { .. });
    if let Some(t) = &svc.threads {
        if command {
            builtin_only(t.span(), "threads", errs);
        }
        m.threads = count(t, "threads", errs);
    }
    // `workers` and `respawn` on a `command` service declare what the program does itself
    // (its own cluster master): the checks hold it to that; the lab passes nothing on.
    if let Some(w) = &svc.workers {
        m.workers = count(w, "workers", errs);
    }
    if let Some(o) = &svc.offload {
        if command {
            builtin_only(o.span(), "offload", errs);
        }
        m.offload = *o.get_ref();
    }
    if let Some(r) = &svc.respawn {
        if *r.get_ref() && m.workers < 2 {
            errs.push(
                Diagnostic::new(r.span(), "`respawn` needs `workers` of 2 or more")
                    .hint("set `workers = 2` (or more): respawn replaces exited cluster workers"),
            );
        }
        m.respawn = *r.get_ref();
    }
    m
}

/// The service's transport and what it serves: `serves` as written (checked against
/// `protocol` and the role), else the default of its kind.
fn serves(
    svc: &RawService,
    run: &Run,
    role: Option<Builtin>,
    name: &str,
    errs: &mut Errors,
) -> (super::raw::Protocol, Vec<Serve>) {
    use super::raw::Protocol;
    let declared = svc.protocol.as_ref().map(|p| *p.get_ref());
    let Some(list) = &svc.serves else {
        let protocol = declared.unwrap_or(Protocol::Http);
        let rest = match protocol {
            Protocol::Http => Serve::Http,
            Protocol::Https => Serve::Https,
        };
        let serves = match (run, role) {
            (Run::Builtin(Builtin::RecipeApi), _) => {
                vec![rest, Serve::Gzip, Serve::Graphql, Serve::Grpc]
            }
            (Run::Command { .. }, Some(Builtin::RecipeApi)) => vec![rest],
            _ => Vec::new(),
        };
        return (protocol, serves);
    };
    let mut serves: Vec<Serve> = Serve::ALL
        .into_iter()
        .filter(|s| list.get_ref().contains(s))
        .collect();
    if serves.is_empty() {
        errs.push(
            Diagnostic::new(list.span(), "`serves` is empty")
                .hint("name what the service answers, e.g. [\"http\"] or [\"graphql\"]"),
        );
    }
    if role == Some(Builtin::WebApi) {
        errs.push(
            Diagnostic::new(
                list.span(),
                format!("`serves` describes a producer, and `{name}` plays web-api"),
            )
            .hint("remove `serves`, or set `role = \"recipe-api\"`"),
        );
    }
    if let Run::Builtin(Builtin::WebApi) = run {
        errs.push(
            Diagnostic::new(list.span(), "the built-in web-api serves none of these")
                .hint("remove `serves`: it is for producers (recipe-api)"),
        );
    }
    let tls = serves.contains(&Serve::Https);
    if tls && serves.contains(&Serve::Http) {
        errs.push(
            Diagnostic::new(
                list.span(),
                "`serves` has both http and https, but a service has one port and one transport",
            )
            .hint("keep one, and run the other as a second service (the book's producer-https-basic.js is its own file)"),
        );
    }
    let protocol = match (declared, tls) {
        (Some(Protocol::Http), true) => {
            let span = svc
                .protocol
                .as_ref()
                .map(|p| p.span())
                .unwrap_or(list.span());
            errs.push(
                Diagnostic::new(span, "`protocol = \"http\"`, but `serves` has https")
                    .hint("set `protocol = \"https\"` (or leave it out: `serves = [\"https\"]` implies it)"),
            );
            Protocol::Http
        }
        (Some(Protocol::Https), false) if serves.contains(&Serve::Http) => {
            errs.push(
                Diagnostic::new(list.span(), "`serves` has http, but `protocol = \"https\"`")
                    .hint("write `https` in `serves` for REST over TLS"),
            );
            Protocol::Https
        }
        (Some(p), _) => p,
        (None, true) => Protocol::Https,
        (None, false) => Protocol::Http,
    };
    if protocol == Protocol::Https && !tls && serves.contains(&Serve::Http) {
        serves.retain(|s| *s != Serve::Http);
    }
    (protocol, serves)
}

/// What `lab up` would trip on that the file alone does not say: a `command` program that is
/// neither a file in the service's folder nor on PATH (the process runtime runs it here; the
/// docker runtime runs the service's image instead). Run by `lab config validate`, `lab up` and
/// a `lab check` that starts the lab.
pub fn runnable(cfg: &LabConfig, runtime: super::raw::RuntimeKind) -> Vec<Diagnostic> {
    let mut out = Vec::new();
    if cfg.services.is_empty() {
        out.push(Diagnostic {
            span: None,
            message: "no services: the lab has nothing to run".into(),
            hint: Some(
                "add a [services.NAME] table with `builtin = \"recipe-api\"` or `command = [...]`; `lab hub` runs the [hub] alone"
                    .into(),
            ),
        });
        return out;
    }
    if runtime == super::raw::RuntimeKind::Docker {
        return out;
    }
    for s in &cfg.services {
        let Run::Command { argv, cwd } = &s.run else {
            continue;
        };
        let program = &argv[0];
        let found = if program.contains('/') {
            cwd.join(program).is_file()
        } else {
            crate::programs::find(program).is_some()
        };
        if !found {
            out.push(
                Diagnostic::new(
                    s.command_span.clone().unwrap_or(s.name_span.clone()),
                    format!(
                        "`{}` runs {program:?}, which is not on PATH or in its folder",
                        s.name
                    ),
                )
                .hint(if program.contains('/') {
                    format!("paths are relative to {}", cwd.display())
                } else {
                    format!("install {program}, or write its path")
                }),
            );
        }
    }
    out
}

/// `1GB`, `500MB`, `2GiB`, `100kB`, or bytes → bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let mult: f64 = match unit.trim() {
        "" | "B" => 1.0,
        "kB" | "KB" | "k" | "K" => 1e3,
        "MB" | "M" => 1e6,
        "GB" | "G" => 1e9,
        "TB" | "T" => 1e12,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        _ => return None,
    };
    let b = n * mult;
    (b.is_finite() && b >= 0.0 && b < 1e18).then_some(b as u64)
}

fn looks_like_addr(v: &str) -> bool {
    matches!(v.rsplit_once(':'), Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok())
}

fn ports(p: &Spanned<PortSpec>, replicas: usize, errs: &mut Errors) -> Ports {
    let (first, last) = match p.get_ref() {
        PortSpec::Number(0) => return Ports::Auto,
        PortSpec::Number(n) => (*n as u32, *n as u32 + replicas as u32 - 1),
        PortSpec::Range(r) => {
            let parsed = r.split_once('-').and_then(|(a, b)| {
                Some((a.trim().parse::<u16>().ok()?, b.trim().parse::<u16>().ok()?))
            });
            match parsed {
                Some((a, b)) if a > 0 && a <= b => {
                    if ((b - a) as usize) + 1 < replicas {
                        errs.push(
                            Diagnostic::new(
                                p.span(),
                                format!(
                                    "port range {r:?} has {} ports for {replicas} replicas",
                                    b - a + 1
                                ),
                            )
                            .hint(format!(
                                "widen it to \"{a}-{}\"",
                                a as u32 + replicas as u32 - 1
                            )),
                        );
                    }
                    (a as u32, a as u32 + replicas as u32 - 1)
                }
                _ => {
                    errs.push(
                        Diagnostic::new(p.span(), format!("invalid port range {r:?}")).hint(
                            "write a number (4000), a range (\"4000-4009\") or 0 for free ports",
                        ),
                    );
                    return Ports::Auto;
                }
            }
        }
    };
    if last > u16::MAX as u32 {
        errs.push(Diagnostic::new(
            p.span(),
            format!("{replicas} replicas from port {first} run past 65535"),
        ));
        return Ports::Auto;
    }
    Ports::Fixed((first..=last).map(|p| p as u16).collect())
}

/// `command` is true for a learner's program: without a declared check (or a `path`) it is
/// probed over tcp, as the book's producers, which have no `/health` route, can answer.
fn health(h: Option<&RawHealth>, command: bool, errs: &mut Errors) -> HealthSpec {
    let d = HealthSpec::default();
    let Some(h) = h else {
        return if command {
            HealthSpec {
                check: HealthCheck::Tcp,
                ..d
            }
        } else {
            d
        };
    };
    let path = match &h.path {
        Some(p) if !p.get_ref().starts_with('/') => {
            errs.push(
                Diagnostic::new(
                    p.span(),
                    format!("health path {:?} must start with '/'", p.get_ref()),
                )
                .hint(format!("write \"/{}\"", p.get_ref())),
            );
            p.get_ref().clone()
        }
        Some(p) => p.get_ref().clone(),
        None => "/health".into(),
    };
    let check = match h.check.as_ref().map(|c| *c.get_ref()) {
        None if command && h.path.is_none() => HealthCheck::Tcp,
        None | Some(CheckKind::Http) => HealthCheck::Http { path },
        Some(CheckKind::Tcp) => HealthCheck::Tcp,
        Some(CheckKind::None) => HealthCheck::None,
    };
    let ms = Duration::from_millis;
    HealthSpec {
        check,
        start_interval: errs.duration_min(
            &h.start_interval,
            d.start_interval,
            ms(1),
            "start_interval",
        ),
        interval: errs.duration_min(&h.interval, d.interval, ms(100), "interval"),
        timeout: errs.duration_min(&h.timeout, d.timeout, ms(10), "timeout"),
        deadline: errs.duration_min(&h.deadline, d.deadline, ms(100), "deadline"),
    }
}

fn backoff(b: Option<&RawBackoff>, errs: &mut Errors) -> Backoff {
    let d = Backoff::default();
    let Some(b) = b else { return d };
    let factor = match &b.factor {
        Some(f) if !(1.0..=100.0).contains(f.get_ref()) => {
            errs.push(
                Diagnostic::new(f.span(), "backoff `factor` must be between 1 and 100")
                    .hint("pm2 uses 1.5"),
            );
            d.factor
        }
        Some(f) => *f.get_ref(),
        None => d.factor,
    };
    let ms = Duration::from_millis;
    let initial = errs.duration_min(&b.initial, d.initial, ms(10), "backoff `initial`");
    let max = errs.duration_min(&b.max, d.max, ms(10), "backoff `max`");
    if let Some(m) = &b.max
        && max < initial
    {
        errs.push(
            Diagnostic::new(m.span(), "backoff `max` is below `initial`")
                .hint("the delay grows from `initial` up to `max`"),
        );
    }
    Backoff {
        initial,
        factor,
        max: max.max(initial),
        reset_after: errs.duration(&b.reset_after, d.reset_after),
    }
}

/// A consumer calling over `https` needs a target that serves TLS, and the other way round.
/// A consumer's `target_protocol` against what its `TARGET` serves: the transport (a TLS
/// producer is called over https, and only then) and the protocol itself.
fn check_tls_pairs(raw: &RawLab, services: &[Service], errs: &mut Errors) {
    use super::raw::{Protocol, TargetProtocol};
    for ((key, r), s) in raw.services.iter().zip(services) {
        let Some(Target::Service(t)) = &s.target else {
            continue;
        };
        let Some(target) = services.iter().find(|x| &x.name == t) else {
            continue;
        };
        let Some(tp) = &r.target_protocol else {
            // Unset: the consumer is taken to call REST over plain HTTP; say so where the
            // producer answers nothing of the kind.
            let rest =
                target.serves.contains(&Serve::Http) || target.serves.contains(&Serve::Https);
            if s.role == Some(Builtin::WebApi)
                && target.role == Some(Builtin::RecipeApi)
                && !target.serves.is_empty()
                && !rest
            {
                let names: Vec<&str> = target.serves.iter().map(|x| x.as_str()).collect();
                errs.push(
                    Diagnostic::new(
                        key.span(),
                        format!(
                            "`{}` calls `{t}` over http (no `target_protocol`), but `{t}` serves {}",
                            s.name,
                            names.join(", ")
                        ),
                    )
                    .hint(format!(
                        "add `target_protocol = \"{}\"` to [services.{}]",
                        names[0], s.name
                    )),
                );
            }
            continue;
        };
        let wanted = match tp.get_ref() {
            TargetProtocol::Http => Serve::Http,
            TargetProtocol::Https => Serve::Https,
            TargetProtocol::Graphql => Serve::Graphql,
            TargetProtocol::Grpc => Serve::Grpc,
        };
        let transport_ok = matches!(
            (tp.get_ref(), target.protocol),
            (TargetProtocol::Https, Protocol::Https)
                | (
                    TargetProtocol::Http | TargetProtocol::Graphql | TargetProtocol::Grpc,
                    Protocol::Http
                )
        );
        if transport_ok
            && target.role == Some(Builtin::RecipeApi)
            && !target.serves.is_empty()
            && !target.serves.contains(&wanted)
        {
            let names: Vec<&str> = target.serves.iter().map(|x| x.as_str()).collect();
            errs.push(
                Diagnostic::new(
                    tp.span(),
                    format!(
                        "`{}` calls `{t}` over {}, but `{t}` serves {}",
                        s.name,
                        wanted.as_str(),
                        names.join(", ")
                    ),
                )
                .hint(format!(
                    "point TARGET at a service that serves {0}, or add \"{0}\" to `serves` of [services.{t}] if it does",
                    wanted.as_str()
                )),
            );
        }
        match (tp.get_ref(), target.protocol) {
            (TargetProtocol::Https, Protocol::Http) => errs.push(
                Diagnostic::new(
                    tp.span(),
                    format!(
                        "`{}` calls `{t}` over https, but `{t}` serves plain http",
                        s.name
                    ),
                )
                .hint(format!(
                    "add `protocol = \"https\"` to [services.{t}], or call it over http"
                )),
            ),
            (
                TargetProtocol::Http | TargetProtocol::Graphql | TargetProtocol::Grpc,
                Protocol::Https,
            ) => errs.push(
                Diagnostic::new(
                    tp.span(),
                    format!(
                        "`{}` calls `{t}` over plain {}, but `{t}` serves https",
                        s.name,
                        tp.get_ref().as_str()
                    ),
                )
                .hint("use `target_protocol = \"https\"`; the lab never falls back to plain HTTP"),
            ),
            _ => {}
        }
    }
}

fn check_duplicate_ports(
    services: &[Service],
    proxy: Option<&Proxy>,
    hub: Option<&Hub>,
    errs: &mut Errors,
) {
    let mut seen: HashMap<u16, &str> = HashMap::new();
    let mut seen_udp: HashMap<u16, &str> = HashMap::new();
    for p in hub.map_or(&[][..], |h| &h.ports[..]) {
        if p.port == 0 {
            continue;
        }
        let map = if p.what.udp() {
            &mut seen_udp
        } else {
            &mut seen
        };
        match map.get(&p.port) {
            Some(other) => errs.push(
                Diagnostic::new(
                    p.span.clone().unwrap_or_default(),
                    format!(
                        "port {} of the {} is also the port of the {other}",
                        p.port,
                        p.what.describe()
                    ),
                )
                .hint("give each hub listener its own port"),
            ),
            None => {
                map.insert(p.port, p.what.describe());
            }
        }
    }
    for f in proxy.map_or(&[][..], |p| &p.frontends[..]) {
        if f.port == 0 {
            continue;
        }
        match seen.get(&f.port) {
            Some(other) => errs.push(
                Diagnostic::new(
                    f.port_span.clone().unwrap_or_default(),
                    format!(
                        "port {} of frontend `{}` is also the port of frontend `{other}`",
                        f.port, f.name
                    ),
                )
                .hint("give each frontend its own port"),
            ),
            None => {
                seen.insert(f.port, &f.name);
            }
        }
    }
    for s in services {
        let Ports::Fixed(ports) = &s.ports else {
            continue;
        };
        for p in ports {
            match seen.get(p) {
                Some(other) => errs.push(
                    Diagnostic::new(
                        s.port_span.clone().unwrap_or(s.name_span.clone()),
                        format!("port {p} of `{}` is also a port of `{other}`", s.name),
                    )
                    .hint("give each service its own ports, or use port = 0 for free ones"),
                ),
                None => {
                    seen.insert(*p, &s.name);
                }
            }
        }
    }
}

/// A start order (file order where dependencies allow); reports every dependency cycle.
fn start_order(raw: &RawLab, services: &[Service], errs: &mut Errors) -> Vec<String> {
    let index: HashMap<&str, usize> = services
        .iter()
        .enumerate()
        .map(|(i, s)| (s.name.as_str(), i))
        .collect();
    // Edges with the span that declares them (a depends_on entry, or the TARGET value).
    let edges: Vec<Vec<(usize, Range<usize>)>> = raw
        .services
        .values()
        .zip(services)
        .map(|(r, s)| {
            let mut e: Vec<(usize, Range<usize>)> = Vec::new();
            for d in r.depends_on.iter().flatten() {
                if let Some(&j) = index.get(d.get_ref().as_str()) {
                    e.push((j, d.span()));
                }
            }
            if let Some(Target::Service(t)) = &s.target {
                let span = r
                    .env
                    .iter()
                    .flatten()
                    .find(|(k, _)| k.get_ref() == "TARGET")
                    .map(|(_, v)| v.span());
                if let (Some(&j), Some(span)) = (index.get(t.as_str()), span)
                    && !e.iter().any(|(k, _)| *k == j)
                {
                    e.push((j, span));
                }
            }
            e
        })
        .collect();

    let n = services.len();
    let mut placed = vec![false; n];
    let mut order = Vec::new();
    while order.len() < n {
        let next = (0..n).find(|&i| !placed[i] && edges[i].iter().all(|(j, _)| placed[*j]));
        match next {
            Some(i) => {
                placed[i] = true;
                order.push(services[i].name.clone());
            }
            None => break,
        }
    }
    if order.len() < n {
        // Find each cycle among the unplaced services and report it once, at its closing edge.
        let mut reported = vec![false; n];
        for start in (0..n).filter(|&i| !placed[i]) {
            if reported[start] {
                continue;
            }
            if let Some((cycle, span)) = find_cycle(start, &edges) {
                let names: Vec<&str> = cycle.iter().map(|&i| services[i].name.as_str()).collect();
                for &i in &cycle {
                    reported[i] = true;
                }
                errs.push(
                    Diagnostic::new(
                        span,
                        format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
                    )
                    .hint("a service cannot wait for itself; remove one of these dependencies"),
                );
            }
        }
    }
    order
}

fn find_cycle(
    start: usize,
    edges: &[Vec<(usize, Range<usize>)>],
) -> Option<(Vec<usize>, Range<usize>)> {
    fn dfs(
        v: usize,
        edges: &[Vec<(usize, Range<usize>)>],
        stack: &mut Vec<usize>,
        done: &mut Vec<bool>,
    ) -> Option<(Vec<usize>, Range<usize>)> {
        stack.push(v);
        for (w, span) in &edges[v] {
            if let Some(pos) = stack.iter().position(|x| x == w) {
                return Some((stack[pos..].to_vec(), span.clone()));
            }
            if !done[*w]
                && let Some(found) = dfs(*w, edges, stack, done)
            {
                return Some(found);
            }
        }
        stack.pop();
        done[v] = true;
        None
    }
    dfs(start, edges, &mut Vec::new(), &mut vec![false; edges.len()])
}
