//! What a scenario is and works with: [`Scenario`], the [`Ctx`] it runs in (the lab's
//! endpoints, the hub), the [`Record`] it fills (assertions, figures, subjects, cleanups), and
//! the small helpers the chapter files share.

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use lab_net::client::{Client, Response};

use super::contract;
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::model::{Builtin, Serve};

pub type BoxFut<'a> = Pin<Box<dyn Future<Output = anyhow::Result<()>> + Send + 'a>>;

/// One scenario of the registry.
pub struct Scenario {
    /// `chN.name`.
    pub name: &'static str,
    pub chapter: u8,
    /// The book section it exercises.
    pub section: &'static str,
    pub summary: &'static str,
    pub run: for<'a> fn(&'a Ctx, &'a mut Record) -> BoxFut<'a>,
    /// Runs against a proxy engine (`--proxy-engine`): the report names the engine.
    pub proxy: bool,
}

/// A service the scenarios can reach: what lab.toml declares of it and where it runs.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub service: String,
    /// What it plays (`role`, else its builtin, else its name); `None`: no scenario's subject.
    pub role: Option<Builtin>,
    /// Producers: what it answers on its port.
    pub serves: Vec<Serve>,
    pub run: EndpointRun,
    /// How this service calls its target (consumers), as configured.
    pub target_protocol: Option<crate::config::model::TargetProtocol>,
    /// The lab service its `TARGET` names, if any.
    pub target: Option<String>,
    /// How it serves: `http` or `https`.
    pub protocol: crate::config::model::Protocol,
    /// `host:port` of each instance.
    pub addrs: Vec<String>,
    /// The supervised process of each instance (the cluster master, for a cluster), where known.
    pub pids: Vec<Option<u32>>,
    /// Its environment name (`NODE_ENV`).
    pub environment: String,
    /// Cluster workers per instance, and whether its master respawns them (declared).
    pub workers: u32,
    pub respawn: bool,
    /// The path of its http health check, if it is probed over http.
    pub health_path: Option<String>,
    /// How long it waits for its upstream (consumers), when lab.toml says.
    pub upstream_timeout: Option<Duration>,
}

/// What runs behind an [`Endpoint`].
#[derive(Debug, Clone)]
pub enum EndpointRun {
    /// The lab's own service.
    Builtin(Builtin),
    /// The learner's program (`command = [...]`), run from `cwd`.
    Command {
        argv: Vec<String>,
        cwd: std::path::PathBuf,
    },
    /// A service lab did not start (`lab check --endpoint`).
    External,
}

impl Endpoint {
    pub fn builtin(&self) -> Option<Builtin> {
        match self.run {
            EndpointRun::Builtin(b) => Some(b),
            _ => None,
        }
    }

    /// The learner's code (a command, or a service lab did not start), not one of ours.
    pub fn is_learners(&self) -> bool {
        !matches!(self.run, EndpointRun::Builtin(_))
    }

    pub fn serves(&self, s: Serve) -> bool {
        self.serves.contains(&s)
    }

    /// It answers REST/JSON (`GET /recipes/:id`), over either transport.
    pub fn rest(&self) -> bool {
        self.serves(Serve::Http) || self.serves(Serve::Https)
    }

    /// How it calls its target: `target_protocol`, else plain http as the book's consumers do.
    pub fn calls(&self) -> crate::config::model::TargetProtocol {
        self.target_protocol
            .unwrap_or(crate::config::model::TargetProtocol::Http)
    }

    /// The base URL of its first instance.
    pub fn base(&self) -> anyhow::Result<String> {
        let addr = self
            .addrs
            .first()
            .ok_or_else(|| anyhow::anyhow!("`{}` has no running instance", self.service))?;
        Ok(format!("{}://{addr}", self.scheme()))
    }

    /// The base URL of each instance.
    pub fn bases(&self) -> Vec<String> {
        self.addrs
            .iter()
            .map(|a| format!("{}://{a}", self.scheme()))
            .collect()
    }

    /// What a report says this endpoint is.
    pub fn subject(&self) -> Subject {
        let role = self
            .role
            .map_or_else(|| "none".to_owned(), |r| r.as_str().to_owned());
        let (kind, what) = match &self.run {
            EndpointRun::Command { argv, .. } => (
                SubjectKind::Yours,
                format!("{} (your command: {})", self.service, argv.join(" ")),
            ),
            EndpointRun::Builtin(b) => (
                SubjectKind::Builtin,
                if self.service == b.as_str() {
                    format!("{} (the lab's built-in service)", self.service)
                } else {
                    format!("{} (the lab's built-in {})", self.service, b.as_str())
                },
            ),
            EndpointRun::External => (
                SubjectKind::Endpoint,
                format!("{} at {} (--endpoint)", self.service, self.addrs.join(", ")),
            ),
        };
        Subject {
            role,
            service: Some(self.service.clone()),
            kind,
            what,
        }
    }
}

/// Whom a scenario's result is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SubjectKind {
    /// The learner's own program (`command = [...]`).
    Yours,
    /// One of the lab's built-in services, declared in lab.toml.
    Builtin,
    /// A part the scenario started for its own experiment (not the learner's code).
    Helper,
    /// A service at an address given with `--endpoint`.
    Endpoint,
}

/// What a scenario ran against, named so that a pass never hides whose code it was.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
pub struct Subject {
    /// `recipe-api`, `web-api`, or the part's job (`proxy`, `helper`).
    pub role: String,
    /// The lab service, when it is one.
    pub service: Option<String>,
    pub kind: SubjectKind,
    /// One line: `recipe-api (your command: node recipe-api/producer-grpc.js)`.
    pub what: String,
}

impl Subject {
    /// A part the scenario starts itself: `what` names it and why.
    pub fn helper(role: &str, what: impl Into<String>) -> Self {
        Subject {
            role: role.into(),
            service: None,
            kind: SubjectKind::Helper,
            what: what.into(),
        }
    }
}

/// Why a scenario does not apply to this lab, and the line of lab.toml that would make it.
#[derive(Debug, Clone, thiserror::Error, Serialize, JsonSchema)]
#[error("not applicable: {why}")]
pub struct NotApplicable {
    pub why: String,
    /// What to write in lab.toml (or pass) for it to apply.
    pub fix: String,
}

/// A scenario's way out when nothing in the lab is what it checks.
pub fn not_applicable(why: impl Into<String>, fix: impl Into<String>) -> anyhow::Error {
    NotApplicable {
        why: why.into(),
        fix: fix.into(),
    }
    .into()
}

/// What a scenario gets: the lab's endpoints and a client.
pub struct Ctx {
    /// Trusts the lab's CA (when the lab has one) for `https://` URLs.
    pub client: Client,
    /// The lab's CA certificate, if any service serves https.
    pub tls_ca: Option<std::path::PathBuf>,
    pub endpoints: Vec<Endpoint>,
    pub timeout: Duration,
    /// The engine proxy scenarios run (`--proxy-engine`, else the lab's `[proxy]`, else builtin).
    pub proxy_engine: crate::config::model::ProxyEngine,
    /// The lab's TLS folder (CA and certificates), for scenarios that need a certificate.
    pub tls_dir: std::path::PathBuf,
    /// The lab's observability hub, when it has one running (chapter 4).
    pub hub: Option<HubInfo>,
    /// The lab runs as containers, where every service is pid 1 of its own namespace.
    pub containers: bool,
    /// What one scenario found that a later one can use (which consumers send StatsD).
    pub memo: std::sync::Mutex<Memo>,
    /// The running lab's fault edges, when it has them (`[faults] edges = true`).
    pub edges: Option<LabEdges>,
}

/// A running lab's fault edges: where its faults are recorded and which services they front.
#[derive(Debug, Clone)]
pub struct LabEdges {
    /// The lab's state dir (`.lab/`), holding `faults.json`.
    pub state_dir: std::path::PathBuf,
    /// The edges' control listener (`GET /faults`).
    pub control: String,
    /// The services some edge leads to.
    pub services: Vec<String>,
    /// Each edge: the instance behind it (`recipe-api#1`), its service, and where it listens.
    pub instances: Vec<(String, String, String)>,
    /// The hub's log input, for the faults' documents.
    pub hub_logs: Option<String>,
}

/// Findings kept across the scenarios of one run.
#[derive(Debug, Default)]
pub struct Memo {
    /// Consumers whose requests move StatsD counters, with the key prefix they use.
    pub statsd: Option<Vec<(String, String)>>,
}

/// Which instance answered `r`: its `x-lab-instance` header (every lab service sends it), else
/// `pid N` from the first of the body's `pid_fields` that holds one (a learner's service tells
/// itself apart by pid, as in the book).
pub fn answered_by(r: &lab_net::client::Response, pid_fields: &[&str]) -> String {
    if let Some(v) = r
        .headers
        .get(lab_service_kit::service::INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return v.to_owned();
    }
    let body = r.json().unwrap_or(serde_json::Value::Null);
    match contract::number_at_any(&body, pid_fields) {
        Ok(p) => format!("pid {p}"),
        Err(_) => "unknown".to_owned(),
    }
}

/// Where the lab's hub answers.
#[derive(Debug, Clone)]
pub struct HubInfo {
    /// `host:port` of its HTTP API (log search, Graphite, Prometheus).
    pub http: String,
    /// Its StatsD port, when known.
    pub statsd_port: Option<u16>,
    /// `host:port` of its Zipkin API.
    pub zipkin: String,
    /// Its StatsD flush interval.
    pub flush: Duration,
    /// How often it evaluates alert rules.
    pub alert_interval: Duration,
}

impl Ctx {
    /// The hub, or an error telling how to get one.
    pub fn hub(&self) -> anyhow::Result<&HubInfo> {
        self.hub.as_ref().ok_or_else(|| {
            anyhow::anyhow!(
                "the lab has no running hub: add `[hub]` to lab.toml (the default lab has one)"
            )
        })
    }
}

impl Ctx {
    /// Every service playing `role` that has a running instance, in lab.toml's start order.
    pub fn playing(&self, role: Builtin) -> Vec<&Endpoint> {
        self.endpoints
            .iter()
            .filter(|e| e.role == Some(role) && !e.addrs.is_empty())
            .collect()
    }

    /// The producers that serve `s`.
    pub fn serving(&self, s: Serve) -> Vec<&Endpoint> {
        self.playing(Builtin::RecipeApi)
            .into_iter()
            .filter(|e| e.serves(s))
            .collect()
    }

    /// The producers that answer REST/JSON, plain HTTP first.
    pub fn rest_producers(&self) -> Vec<&Endpoint> {
        let mut v: Vec<&Endpoint> = self
            .playing(Builtin::RecipeApi)
            .into_iter()
            .filter(|e| e.rest())
            .collect();
        v.sort_by_key(|e| e.serves(Serve::Https));
        v
    }

    /// The producers that answer REST/JSON over plain HTTP (what a proxy is put in front of).
    pub fn plain_rest_producers(&self) -> Vec<&Endpoint> {
        self.serving(Serve::Http)
    }

    /// The learner's own code plays `role` here: no built-in may stand in for it.
    pub fn learner_plays(&self, role: Builtin) -> bool {
        self.endpoints
            .iter()
            .any(|e| e.role == Some(role) && e.is_learners())
    }

    /// The producers that answer `s`, or not applicable with `fix`.
    pub fn require_serving(&self, s: Serve, fix: &str) -> anyhow::Result<Vec<&Endpoint>> {
        let v = self.serving(s);
        if v.is_empty() {
            return Err(not_applicable(
                format!("no service of role recipe-api serves {}", s.as_str()),
                fix,
            ));
        }
        Ok(v)
    }

    /// Every consumer, or not applicable.
    pub fn require_consumers(&self) -> anyhow::Result<Vec<&Endpoint>> {
        let v = self.playing(Builtin::WebApi);
        if v.is_empty() {
            return Err(not_applicable(
                "no service plays web-api (the consumer)",
                "[services.web-api] with `builtin = \"web-api\"`, or your consumer's `command = [...]` with `role = \"web-api\"` and `env = { TARGET = \"recipe-api\" }`",
            ));
        }
        Ok(v)
    }

    /// GET `url` twice: without and with `Accept-Encoding: gzip` (bodies as sent).
    pub async fn get_plain_and_gzip(&self, url: &str) -> anyhow::Result<(Response, Response)> {
        let plain = self.client.get(url, self.timeout).await?;
        let gz = self
            .client
            .request(
                hyper::Method::GET,
                url,
                &[("accept-encoding", "gzip")],
                None,
                self.timeout,
            )
            .await?;
        Ok((plain, gz))
    }

    /// GET `base{path}`, timing it; `base` is a URL or a bare `host:port` (plain HTTP).
    pub async fn get(&self, base: &str, path: &str) -> anyhow::Result<(Response, Duration)> {
        let t0 = Instant::now();
        let url = if base.contains("://") {
            format!("{base}{path}")
        } else {
            format!("http://{base}{path}")
        };
        let r = self
            .client
            .get(&url, self.timeout)
            .await
            .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
        Ok((r, t0.elapsed()))
    }
}

impl Endpoint {
    pub fn scheme(&self) -> &'static str {
        match self.protocol {
            crate::config::model::Protocol::Https => "https",
            crate::config::model::Protocol::Http => "http",
        }
    }
}

/// `Content-Encoding` of a response, `""` when it has none.
pub fn content_encoding(r: &Response) -> String {
    r.headers
        .get("content-encoding")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned()
}

/// `host:port` of a base URL.
pub fn host_port(base: &str) -> &str {
    base.split_once("://").map_or(base, |(_, rest)| rest)
}

/// What a scenario asserted and measured, against whom.
#[derive(Debug, Default, Clone, Serialize, JsonSchema)]
pub struct Record {
    pub assertions: Vec<Assertion>,
    pub figures: Vec<Figure>,
    pub subjects: Vec<Subject>,
    /// What the scenario left out, and why (a consumer it could not check, a row it skipped).
    pub notes: Vec<String>,
    /// What the scenario added to the lab, removed after it whatever happened.
    #[serde(skip)]
    #[schemars(skip)]
    pub cleanups: Vec<Cleanup>,
}

/// Something a scenario added to a running lab, undone when it ends (also when it failed or
/// ran out of time).
#[derive(Debug, Clone)]
pub enum Cleanup {
    /// `DELETE url` (a run-time alert rule).
    Delete { url: String, what: String },
    /// End fault `id` of the lab whose state is in `state_dir` (an injected edge fault).
    ClearFault {
        state_dir: std::path::PathBuf,
        id: String,
    },
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Assertion {
    pub name: String,
    pub ok: bool,
    /// What was seen (on success too, so the report shows the evidence); whole here, cut in the
    /// table.
    pub detail: String,
    /// What the contract wants, where it is not in the name.
    pub expected: Option<String>,
    /// What to change when it fails, in a line.
    pub hint: Option<String>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Figure {
    pub name: String,
    pub value: f64,
    pub unit: String,
}

impl Record {
    pub fn check(&mut self, name: impl Into<String>, ok: bool, detail: impl Into<String>) -> bool {
        self.assertions.push(Assertion {
            name: name.into(),
            ok,
            detail: detail.into(),
            expected: None,
            hint: None,
        });
        ok
    }

    /// An assertion with what was expected beside what was got.
    pub fn expect(
        &mut self,
        name: impl Into<String>,
        ok: bool,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> bool {
        self.check(name, ok, got);
        if let Some(a) = self.assertions.last_mut() {
            a.expected = Some(expected.into());
        }
        ok
    }

    /// The hint of the last assertion: what to change when it fails.
    pub fn hint(&mut self, hint: impl Into<String>) {
        if let Some(a) = self.assertions.last_mut() {
            a.hint = Some(hint.into());
        }
    }

    pub fn figure(&mut self, name: impl Into<String>, value: f64, unit: &str) {
        let value = (value * 1000.0).round() / 1000.0;
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
        });
    }

    /// Name a subject (each once).
    pub fn subject(&mut self, s: Subject) {
        if !self.subjects.contains(&s) {
            self.subjects.push(s);
        }
    }

    pub fn note(&mut self, n: impl Into<String>) {
        self.notes.push(n.into());
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Pass,
    Fail,
    /// Nothing in the lab is what the scenario checks: `not_applicable.fix` says what would be.
    NotApplicable,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pass => "pass",
            Status::Fail => "fail",
            Status::NotApplicable => "not applicable",
        }
    }
}

/// "a, b, c" (or "none") for what a report lists.
pub fn list<T: std::fmt::Display>(items: impl IntoIterator<Item = T>) -> String {
    let v: Vec<String> = items.into_iter().map(|x| x.to_string()).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// At most `n` characters of `s`, with an ellipsis when cut.
pub fn truncate(s: &str, n: usize) -> String {
    match s.char_indices().nth(n) {
        None => s.to_owned(),
        Some((i, _)) => format!("{}…", &s[..i]),
    }
}

/// Median and max of some durations, in milliseconds.
pub fn median_max_ms(mut v: Vec<Duration>) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    (ms(v[v.len() / 2]), ms(*v.last().expect("non-empty")))
}
