//! `lab check`: a registry of named scenarios, each a real experiment over the wire that makes
//! assertions and reports measured figures.
//!
//! Scenarios only talk to services over HTTP, so they hold a learner's own implementation
//! (`command = [...]`) to the book's contract exactly as they hold ours; behaviour that is
//! stricter in our services than in the book is covered by our own tests, never here.

pub mod ch1;
pub mod ch2;
pub mod ch3;
pub mod ch3_load;
pub mod ch3_proxy;
pub mod ch4;
pub mod ch5;
pub mod deps;
pub mod spawn;
pub mod wire;

use std::future::Future;
use std::pin::Pin;
use std::time::{Duration, Instant};

use lab_service_kit::client::{Client, Response};
use schemars::JsonSchema;
use serde::Serialize;

use crate::config::raw::Builtin;

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

/// Every scenario, in chapter order.
pub fn registry() -> Vec<Scenario> {
    let mut all = ch1::scenarios();
    all.extend(ch2::scenarios());
    all.extend(ch3::scenarios());
    all.extend(ch4::scenarios());
    all.extend(ch5::scenarios());
    all.sort_by_key(|s| s.chapter);
    all
}

/// Pick scenarios by `all`, chapters (`ch1`) or names (`ch1.sample-app`), each once, in the
/// order the selectors are given.
pub fn select_many(mut all: Vec<Scenario>, whats: &[String]) -> Result<Vec<Scenario>, String> {
    let mut picked = Vec::new();
    for what in whats {
        let names: Vec<&str> = select(registry(), what)?.iter().map(|s| s.name).collect();
        let (take, keep): (Vec<Scenario>, Vec<Scenario>) =
            all.into_iter().partition(|s| names.contains(&s.name));
        picked.extend(take);
        all = keep;
    }
    Ok(picked)
}

/// Pick scenarios by `all`, a chapter (`ch1`) or a name (`ch1.sample-app`).
pub fn select(all: Vec<Scenario>, what: &str) -> Result<Vec<Scenario>, String> {
    let picked: Vec<Scenario> = all.into_iter().filter(|s| matches(s, what)).collect();
    if picked.is_empty() {
        let names: Vec<&str> = registry().iter().map(|s| s.name).collect();
        let hint = crate::config::diagnostic::did_you_mean(what, names.iter().copied())
            .map(|b| format!("did you mean `{b}`? "))
            .unwrap_or_default();
        return Err(format!(
            "no scenario matches {what:?}; {hint}`lab check --list` shows them all"
        ));
    }
    Ok(picked)
}

fn matches(s: &Scenario, what: &str) -> bool {
    what == "all"
        || s.name == what
        || what.strip_prefix("ch").and_then(|n| n.parse::<u8>().ok()) == Some(s.chapter)
}

/// A service the scenarios can reach.
#[derive(Debug, Clone)]
pub struct Endpoint {
    pub service: String,
    pub builtin: Option<Builtin>,
    /// How this service calls its target (consumers), as configured.
    pub target_protocol: Option<crate::config::raw::TargetProtocol>,
    /// How it serves: `http` or `https`.
    pub protocol: crate::config::raw::Protocol,
    /// `host:port` of each instance.
    pub addrs: Vec<String>,
    /// Its environment name (`NODE_ENV`).
    pub environment: String,
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
    pub proxy_engine: crate::config::raw::ProxyEngine,
    /// The lab's TLS folder (CA and certificates), for scenarios that need a certificate.
    pub tls_dir: std::path::PathBuf,
    /// The lab's observability hub, when it has one running (chapter 4).
    pub hub: Option<HubInfo>,
    /// The lab runs as containers, where every service is pid 1 of its own namespace.
    pub containers: bool,
}

/// Which instance answered `r`: its `x-lab-instance` header (every lab service sends it), else
/// `pid N` from the body's `pid_field` (a learner's service tells itself apart by pid, as in
/// the book).
pub fn answered_by(r: &lab_service_kit::client::Response, pid_field: &str) -> String {
    if let Some(v) = r
        .headers
        .get(lab_service_kit::serve::INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
    {
        return v.to_owned();
    }
    match r.json().ok().and_then(|v| v[pid_field].as_u64()) {
        Some(p) => format!("pid {p}"),
        None => "unknown".to_owned(),
    }
}

/// Where the lab's hub answers.
#[derive(Debug, Clone)]
pub struct HubInfo {
    /// `host:port` of its HTTP API (log search, Graphite, Prometheus).
    pub http: String,
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
    /// The service playing `role`: the one named like it, else the one built in as it.
    pub fn role(&self, role: Builtin) -> anyhow::Result<&Endpoint> {
        self.endpoints
            .iter()
            .find(|e| e.service == role.as_str())
            .or_else(|| self.endpoints.iter().find(|e| e.builtin == Some(role)))
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "the lab has no `{}` service (by name or `builtin`)",
                    role.as_str()
                )
            })
    }

    /// The first instance of the service playing `role`, as a base URL (`http://127.0.0.1:4000`).
    pub fn first(&self, role: Builtin) -> anyhow::Result<String> {
        let e = self.role(role)?;
        let addr = e
            .addrs
            .first()
            .ok_or_else(|| anyhow::anyhow!("`{}` has no running instance", e.service))?;
        Ok(format!("{}://{addr}", e.scheme()))
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
            crate::config::raw::Protocol::Https => "https",
            crate::config::raw::Protocol::Http => "http",
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

/// What a scenario asserted and measured.
#[derive(Debug, Default, Clone, Serialize, JsonSchema)]
pub struct Record {
    pub assertions: Vec<Assertion>,
    pub figures: Vec<Figure>,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Assertion {
    pub name: String,
    pub ok: bool,
    /// What was seen (on success too, so the report shows the evidence).
    pub detail: String,
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
        });
        ok
    }
    pub fn figure(&mut self, name: impl Into<String>, value: f64, unit: &str) {
        let value = (value * 1000.0).round() / 1000.0;
        self.figures.push(Figure {
            name: name.into(),
            value,
            unit: unit.into(),
        });
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    Fail,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScenarioResult {
    pub name: String,
    pub chapter: u8,
    pub section: String,
    pub status: Status,
    /// The proxy engine, for scenarios that exercise one (`builtin` or `haproxy`).
    pub engine: Option<String>,
    pub duration_ms: f64,
    pub assertions: Vec<Assertion>,
    pub figures: Vec<Figure>,
    /// Set when the scenario could not finish (a request failed, a timeout).
    pub error: Option<String>,
}

/// The whole `lab check` result: what `--json` prints and the table and JUnit are drawn from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(title = "lab check report")]
pub struct CheckReport {
    pub lab: String,
    /// `running` (the lab recorded under the state dir) or `started` (brought up for the checks).
    pub source: String,
    pub passed: usize,
    pub failed: usize,
    pub duration_ms: f64,
    pub scenarios: Vec<ScenarioResult>,
}

/// The longest one scenario may run.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// Run `scenarios` one after another against `ctx`.
pub async fn run(ctx: &Ctx, scenarios: &[Scenario], lab: &str, source: &str) -> CheckReport {
    let t0 = Instant::now();
    let mut results = Vec::new();
    for s in scenarios {
        let started = Instant::now();
        let mut rec = Record::default();
        let outcome = tokio::time::timeout(SCENARIO_LIMIT, (s.run)(ctx, &mut rec)).await;
        let error = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(format!("{e:#}")),
            Err(_) => Some(format!(
                "did not finish within {}s",
                SCENARIO_LIMIT.as_secs()
            )),
        };
        let ok =
            error.is_none() && !rec.assertions.is_empty() && rec.assertions.iter().all(|a| a.ok);
        results.push(ScenarioResult {
            name: s.name.into(),
            chapter: s.chapter,
            section: s.section.into(),
            status: if ok { Status::Pass } else { Status::Fail },
            engine: s.proxy.then(|| ctx.proxy_engine.as_str().to_owned()),
            duration_ms: started.elapsed().as_secs_f64() * 1e3,
            assertions: rec.assertions,
            figures: rec.figures,
            error,
        });
    }
    let passed = results.iter().filter(|r| r.status == Status::Pass).count();
    CheckReport {
        lab: lab.into(),
        source: source.into(),
        passed,
        failed: results.len() - passed,
        duration_ms: t0.elapsed().as_secs_f64() * 1e3,
        scenarios: results,
    }
}

/// The JSON Schema of `lab check --json`, pretty-printed.
pub fn report_schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&schemars::schema_for!(CheckReport))
        .expect("schema serialises");
    s.push('\n');
    s
}

/// A task a scenario started (a server of its own), stopped when dropped.
pub(crate) struct AbortOnDrop(pub tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_report_schema_matches_the_report_types() {
        let committed = include_str!("../../schema/check-report.schema.json");
        assert!(
            committed == report_schema_json(),
            "schema/check-report.schema.json is stale: regenerate it with `cargo test -p lab -- --ignored regenerate_schemas`"
        );
    }

    #[test]
    fn selection_by_all_chapter_and_name() {
        assert_eq!(select(registry(), "all").unwrap().len(), registry().len());
        assert!(
            select(registry(), "ch1")
                .unwrap()
                .iter()
                .all(|s| s.chapter == 1)
        );
        assert_eq!(select(registry(), "ch1.not-found").unwrap().len(), 1);
        assert!(select(registry(), "ch9").is_err());
        let names: std::collections::HashSet<_> = registry().iter().map(|s| s.name).collect();
        assert_eq!(names.len(), registry().len(), "scenario names are unique");
    }

    /// Writes both committed schemas from the types: `cargo test -p lab -- --ignored regenerate_schemas`.
    #[test]
    #[ignore]
    fn regenerate_schemas() {
        std::fs::write(
            concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/schema/check-report.schema.json"
            ),
            report_schema_json(),
        )
        .unwrap();
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/schema/lab.schema.json"),
            crate::config::raw::schema_json(),
        )
        .unwrap();
    }
}
