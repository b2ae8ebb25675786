//! The serde mirror of `lab.toml`: every field optional, spans kept, unknown keys refused.
//! Nothing outside `config/` sees these types; [`super::validate`] turns them into `LabConfig`.
//!
//! Doc comments here become the descriptions in the JSON Schema (`lab config schema`).

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use toml::Spanned;

mod faults;
pub use faults::*;

/// A lab: the services to run and how.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "lab.toml")]
pub struct RawLab {
    /// The lab's name, used to label what it starts. Default: the name of the folder holding lab.toml.
    #[schemars(with = "Option<String>")]
    pub name: Option<Spanned<String>>,
    /// Environment name handed to every service as `LAB_ENV` and `NODE_ENV`. Default: `development`.
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// What runs the instances: `process` (local processes, the default) or `docker`
    /// (containers on one network per lab, through the local Docker engine; built-in parts
    /// run the images `lab images build` makes). `lab up --runtime` overrides it.
    #[schemars(with = "Option<RuntimeKind>")]
    pub runtime: Option<Spanned<RuntimeKind>>,
    /// The services, by name. They start in dependency order, each gated on its health check.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawService>")]
    pub services: IndexMap<Spanned<String>, RawService>,
    /// A reverse proxy in front of services (chapter 3): the builtin one, or the real HAProxy.
    pub proxy: Option<RawProxy>,
    /// The observability hub (chapter 4): Logstash UDP logs, StatsD metrics, Zipkin traces,
    /// queried with `lab logs --query`, the Graphite render API, Prometheus and the Zipkin API.
    pub hub: Option<RawHub>,
    /// Alert rules evaluated by the hub (chapter 4, Cabot's job): over a metric, an HTTP
    /// endpoint, or a service's health. Needs `[hub]`.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawAlert>")]
    pub alerts: IndexMap<Spanned<String>, RawAlert>,
    /// Named `lab load` runs: `lab load NAME` runs one (flags given on the command line win).
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawLoad>")]
    pub load: IndexMap<Spanned<String>, RawLoad>,
    /// Faults on purpose (`lab fault`, chapters 3 and 4).
    pub faults: Option<RawFaults>,
}

/// A `lab load` preset.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawLoad {
    /// A URL, or `SERVICE[/path]` of the running lab, e.g. `"recipe-api/recipes/42"`.
    #[schemars(with = "String")]
    pub target: Spanned<String>,
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub connections: Option<Spanned<u32>>,
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub pipelining: Option<Spanned<u32>>,
    /// e.g. `"10s"`. Default: `10s` (unless `amount`).
    #[schemars(with = "Option<String>")]
    pub duration: Option<Spanned<String>>,
    /// Requests to send instead of a duration.
    #[schemars(with = "Option<u64>", range(min = 1))]
    pub amount: Option<Spanned<u64>>,
    /// Requests per second to hold (wrk2-style, latency from when each was due).
    #[schemars(with = "Option<f64>")]
    pub rate: Option<Spanned<f64>>,
    #[schemars(with = "Option<String>")]
    pub method: Option<Spanned<String>>,
    #[schemars(with = "Option<IndexMap<String, String>>")]
    pub headers: Option<IndexMap<String, String>>,
    #[schemars(with = "Option<String>")]
    pub body: Option<Spanned<String>>,
    /// HTTP/2 (h2c, or ALPN on https).
    #[schemars(with = "Option<bool>")]
    pub http2: Option<Spanned<bool>>,
    /// e.g. `"2s"`. Default: `10s`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Bounds that decide the exit code, e.g. `"p99<20ms,errors<0.1%,rps>5000"`.
    #[schemars(with = "Option<String>")]
    pub sla: Option<Spanned<String>>,
}

/// `[hub]`: the embedded observability hub, on the book's ports by default. Services are told
/// where to send through `LOGSTASH`, `STATSD` and `ZIPKIN` (`host:port`). Each of logs, metrics
/// and traces can instead go to a real endpoint (`logstash`, `statsd`, `zipkin`), and flushed
/// metrics can be forwarded to a real carbon (`graphite`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    /// Address the hub listens on. Default: `127.0.0.1`.
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    /// Logstash UDP JSON input. Default: 7777 (the book's). 0: a free port.
    #[schemars(with = "Option<u16>")]
    pub logs_port: Option<Spanned<u16>>,
    /// StatsD UDP input. Default: 8125.
    #[schemars(with = "Option<u16>")]
    pub statsd_port: Option<Spanned<u16>>,
    /// Zipkin v2 API. Default: 9411.
    #[schemars(with = "Option<u16>")]
    pub zipkin_port: Option<Spanned<u16>>,
    /// Graphite render/find, Prometheus `/metrics`, log search. Default: 8080 (the book's Graphite).
    #[schemars(with = "Option<u16>")]
    pub http_port: Option<Spanned<u16>>,
    /// OTLP/HTTP input (`/v1/traces`, `/v1/logs`, `/v1/metrics`, protobuf or JSON), for
    /// OpenTelemetry-instrumented services. Default: 4318 (OTLP's).
    #[schemars(with = "Option<u16>")]
    pub otlp_http_port: Option<Spanned<u16>>,
    /// OTLP/gRPC input (the three `Export` services). Default: 4317 (OTLP's).
    #[schemars(with = "Option<u16>")]
    pub otlp_grpc_port: Option<Spanned<u16>>,
    /// Carbon plaintext (TCP) input, for a real StatsD daemon flushing into the hub. Default: 2003.
    #[schemars(with = "Option<u16>")]
    pub carbon_port: Option<Spanned<u16>>,
    /// StatsD flush interval, e.g. `"10s"` (etsy's default). At least 1s.
    #[schemars(with = "Option<String>")]
    pub flush_interval: Option<Spanned<String>>,
    /// Graphite names: `legacy` (`stats_counts.K`, the book's dashboards) or `modern`
    /// (`stats.counters.K.count`).
    #[schemars(with = "Option<String>")]
    pub namespace: Option<Spanned<String>>,
    /// Timer percentiles (`upper_90` …). Default: `[90]`.
    #[schemars(with = "Option<Vec<f64>>")]
    pub percent_thresholds: Option<Spanned<Vec<f64>>>,
    /// How often the hub polls every instance's health endpoint (OK / DEGRADED / DOWN),
    /// e.g. `"2s"` (the default).
    #[schemars(with = "Option<String>")]
    pub health_interval: Option<Spanned<String>>,
    /// Daily log index prefix. Default: `nodejs-` (the book's `udp.conf`).
    #[schemars(with = "Option<String>")]
    pub index_prefix: Option<Spanned<String>>,
    /// How often alert rules are evaluated. Default: `5s`.
    #[schemars(with = "Option<String>")]
    pub alert_interval: Option<Spanned<String>>,
    /// POST each firing and resolved alert here as JSON.
    #[schemars(with = "Option<String>")]
    pub alert_webhook: Option<Spanned<String>>,
    /// Send services' logs to this Logstash (`host:port`) instead of the hub.
    #[schemars(with = "Option<String>")]
    pub logstash: Option<Spanned<String>>,
    /// Send services' StatsD metrics to this daemon (`host:port`) instead of the hub.
    #[schemars(with = "Option<String>")]
    pub statsd: Option<Spanned<String>>,
    /// Send services' spans to this Zipkin (`host:port`) instead of the hub.
    #[schemars(with = "Option<String>")]
    pub zipkin: Option<Spanned<String>>,
    /// Also write the hub's flushed series to this carbon plaintext endpoint (`host:port`).
    #[schemars(with = "Option<String>")]
    pub graphite: Option<Spanned<String>>,
    /// What the hub's store keeps: `{ max_size = "1GB", max_age = "7d" }` (the defaults). The
    /// oldest logs, points and spans go first, by age and by size, checked every 30 s.
    pub retention: Option<RawRetention>,
}

/// `[hub] retention`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawRetention {
    /// The most the store's file may use, e.g. `"1GB"`, `"500MB"`, `"2GiB"`. At least 10MB.
    #[schemars(with = "Option<String>")]
    pub max_size: Option<Spanned<String>>,
    /// How long data is kept, e.g. `"7d"`, `"12h"`. At least 1h.
    #[schemars(with = "Option<String>")]
    pub max_age: Option<Spanned<String>>,
}

/// One alert rule: exactly one of `metric`, `http` and `health`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// A Graphite target, e.g. `"sumSeries(stats_counts.web-api.inbound.response_code.500)"`;
    /// the rule fails when it compares true (`check`, `value`) over the last `window`.
    #[schemars(with = "Option<String>")]
    pub metric: Option<Spanned<String>>,
    /// `>`, `>=`, `<`, `<=` or `==` (Cabot's: the max of each series for `>`, the min for `<`).
    #[schemars(with = "Option<String>")]
    pub check: Option<Spanned<String>>,
    /// The threshold of a metric rule.
    #[schemars(with = "Option<f64>")]
    pub value: Option<Spanned<f64>>,
    /// How far back a metric rule looks, e.g. `"1min"`. Default: `1min`.
    #[schemars(with = "Option<String>")]
    pub window: Option<Spanned<String>>,
    /// A URL: the rule fails when `GET` does not answer `status` (and a body matching `text`).
    #[schemars(with = "Option<String>")]
    pub http: Option<Spanned<String>>,
    /// Expected status of an http rule. Default: 200.
    #[schemars(with = "Option<u16>")]
    pub status: Option<Spanned<u16>>,
    /// A regex the body of an http rule must match.
    #[schemars(with = "Option<String>")]
    pub text: Option<Spanned<String>>,
    /// Time limit of an http rule's request. Default: `2s`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// A service: the rule fails when one of its instances is at `state` or worse.
    #[schemars(with = "Option<String>")]
    pub health: Option<Spanned<String>>,
    /// `DEGRADED` or `DOWN` (default) for a health rule.
    #[schemars(with = "Option<String>")]
    pub state: Option<Spanned<String>>,
    /// How long the rule must keep failing before it fires, e.g. `"30s"`. Default: `0s`.
    #[serde(rename = "for")]
    #[schemars(with = "Option<String>")]
    pub for_: Option<Spanned<String>>,
    /// `WARNING`, `ERROR` (default) or `CRITICAL`.
    #[schemars(with = "Option<String>")]
    pub importance: Option<Spanned<String>>,
}

/// `[proxy]`: frontends, each balancing one service's instances. The same section runs the
/// lab's own proxy (`engine = "builtin"`) or HAProxy (`engine = "haproxy"`, from an
/// `haproxy.cfg` rendered into `.lab/proxy/`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// `builtin` (default) or `haproxy` (the `haproxy` program must be installed).
    #[schemars(with = "Option<ProxyEngine>")]
    pub engine: Option<Spanned<ProxyEngine>>,
    /// The frontends, by name.
    #[serde(default)]
    #[schemars(with = "IndexMap<String, RawFrontend>")]
    pub frontends: IndexMap<Spanned<String>, RawFrontend>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum ProxyEngine {
    /// The lab's own proxy (hyper + tokio), run as `lab serve proxy`.
    Builtin,
    /// HAProxy, run as `haproxy -f .lab/proxy/haproxy.cfg -db`.
    Haproxy,
}

impl ProxyEngine {
    pub fn as_str(self) -> &'static str {
        match self {
            ProxyEngine::Builtin => "builtin",
            ProxyEngine::Haproxy => "haproxy",
        }
    }
}

/// One frontend: a port in front of a service's instances (HAProxy's frontend + backend).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawFrontend {
    /// The service whose instances are the servers. Consumers whose `TARGET` names it go
    /// through this frontend when it speaks their protocol.
    #[schemars(with = "String")]
    pub service: Spanned<String>,
    /// Port to listen on; 0 (default) picks a free one at start.
    #[schemars(with = "Option<u16>")]
    pub port: Option<Spanned<u16>>,
    /// Interface to bind. Default: `127.0.0.1`.
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    /// `http` (default): a reverse proxy; `tcp`: bytes passed through (TLS, gRPC).
    #[schemars(with = "Option<FrontendMode>")]
    pub mode: Option<Spanned<FrontendMode>>,
    /// `roundrobin` (default) or `leastconn`.
    #[schemars(with = "Option<BalanceKind>")]
    pub balance: Option<Spanned<BalanceKind>>,
    /// Terminate TLS here with a certificate from the lab CA; plain HTTP to the servers.
    #[schemars(with = "Option<bool>")]
    pub tls: Option<Spanned<bool>>,
    /// Content types to gzip for clients that accept it (compression offload), e.g.
    /// `["application/json", "text/plain"]`. Default: none.
    #[schemars(with = "Option<Vec<String>>")]
    pub compression: Option<Spanned<Vec<String>>>,
    /// Concurrent client connections (more wait in the listen backlog). Default: 2000.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub maxconn: Option<Spanned<u32>>,
    /// Concurrent requests per server; excess requests queue. Default: no limit.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub server_maxconn: Option<Spanned<u32>>,
    /// How long a queued request waits before a 503. Default: `5s`.
    #[schemars(with = "Option<String>")]
    pub queue_timeout: Option<Spanned<String>>,
    /// Default: `2s`.
    #[schemars(with = "Option<String>")]
    pub connect_timeout: Option<Spanned<String>>,
    /// Idle client connections and slow request headers are cut off after this. Default: `30s`.
    #[schemars(with = "Option<String>")]
    pub client_timeout: Option<Spanned<String>>,
    /// A server must answer within this (504 past it). Default: `30s`.
    #[schemars(with = "Option<String>")]
    pub server_timeout: Option<Spanned<String>>,
    /// Other servers tried after a failed connection. Default: 2.
    #[schemars(with = "Option<u32>")]
    pub retries: Option<Spanned<u32>>,
    /// The most bytes of request line and headers a client may send (431 past it). Default:
    /// 65536 (builtin engine).
    #[schemars(with = "Option<u32>", range(min = 8192))]
    pub max_header_bytes: Option<Spanned<u32>>,
    /// The most header fields in one request (431 past it). Default: 100 (builtin engine).
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_headers: Option<Spanned<u32>>,
    /// Serve the stats page here, e.g. `"/admin?stats"` (`;csv` appended gives CSV). HTTP mode.
    #[schemars(with = "Option<String>")]
    pub stats_uri: Option<Spanned<String>>,
    /// Active health checks of the servers.
    pub check: Option<RawProxyCheck>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FrontendMode {
    Http,
    Tcp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum BalanceKind {
    Roundrobin,
    Leastconn,
}

/// Active checks (HAProxy's `check inter rise fall`).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawProxyCheck {
    /// `false` turns checks off (servers always count as up). Default: `true`.
    #[schemars(with = "Option<bool>")]
    pub enabled: Option<Spanned<bool>>,
    /// `GET` this path (2xx/3xx = up). Default: the service's health path (`/health`); in tcp
    /// mode a connect check.
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Default: `2s`.
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    /// Default: `1s`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// Successes in a row to come back. Default: 2.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub rise: Option<Spanned<u32>>,
    /// Failures in a row to go out. Default: 3.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub fall: Option<Spanned<u32>>,
}

/// One service: a built-in one, or your own program.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawService {
    /// Run one of the lab's own services. Exactly one of `builtin` and `command` is required.
    #[schemars(with = "Option<Builtin>")]
    pub builtin: Option<Spanned<Builtin>>,
    /// Run your own program, e.g. `["node", "producer-http-basic.js"]`. It gets the same
    /// environment as a built-in service: HOST, PORT, TARGET, LAB_ENV, NODE_ENV.
    #[schemars(with = "Option<Vec<String>>")]
    pub command: Option<Spanned<Vec<String>>>,
    /// Working directory of `command`, relative to lab.toml. Default: lab.toml's folder.
    #[schemars(with = "Option<String>")]
    pub cwd: Option<Spanned<String>>,
    /// `command` services on the docker runtime: the image to run (its own entry point and
    /// `CMD`; it gets the same environment). With `build`, the name the built image gets.
    #[schemars(with = "Option<String>")]
    pub image: Option<Spanned<String>>,
    /// `command` services on the docker runtime: a folder with a `Dockerfile`, relative to
    /// lab.toml, built by `lab up` (the engine's classic builder) before anything starts.
    #[schemars(with = "Option<String>")]
    pub build: Option<Spanned<String>>,
    /// Extra environment variables. `TARGET` may name another service (it is replaced by that
    /// service's address and becomes a dependency) or be a literal `host:port`.
    #[schemars(with = "Option<IndexMap<String, String>>")]
    pub env: Option<IndexMap<Spanned<String>, Spanned<String>>>,
    /// How this service serves: `http` (REST, GraphQL and gRPC on one plain port) or `https`
    /// (the same over TLS, with a certificate from the lab's CA under `.lab/tls/`, handed over
    /// as `TLS_CERT` and `TLS_KEY`). Default: `http`.
    #[schemars(with = "Option<Protocol>")]
    pub protocol: Option<Spanned<Protocol>>,
    /// What this service plays in the book's sample application: `recipe-api` (a producer)
    /// or `web-api` (a consumer). `lab check` holds every service of a role to that role's
    /// contract; several services may share one (the book has a producer file per protocol).
    /// Default: its `builtin`, else its name when that is a role.
    #[schemars(with = "Option<Builtin>")]
    pub role: Option<Spanned<Builtin>>,
    /// Producers: what this service answers on its port, which decides the chapter-2 checks
    /// that apply to it: `http` (REST/JSON, `GET /recipes/:id`), `https` (the same over TLS:
    /// implies `protocol = "https"`), `gzip` (compresses when asked), `graphql`
    /// (`POST /graphql`), `grpc` (`recipe.RecipeService`). Default: the built-in recipe-api
    /// serves all of them (`https` instead of `http` when its protocol is https); a `command`
    /// service `["http"]` (or `["https"]`).
    #[schemars(with = "Option<Vec<Serve>>")]
    pub serves: Option<Spanned<Vec<Serve>>>,
    /// How this service calls its `TARGET` (handed to it as `TARGET_PROTOCOL`): `http`,
    /// `https`, `graphql` or `grpc`. The built-in web-api honours it; your own consumer may read it.
    #[schemars(with = "Option<TargetProtocol>")]
    pub target_protocol: Option<Spanned<TargetProtocol>>,
    /// Event-loop threads of a built-in service. Default: 1, one event loop per process as in
    /// Node, so that scaling by `workers` and `replicas` shows what it shows in the book.
    #[schemars(with = "Option<u32>", range(min = 1, max = 256))]
    pub threads: Option<Spanned<u32>>,
    /// Built-in services: run CPU-bound work (`/fibonacci`) on a blocking thread pool instead
    /// of the event loop, as libuv's thread pool does for Node. Default: `false`.
    #[schemars(with = "Option<bool>")]
    pub offload: Option<Spanned<bool>>,
    /// Worker processes per instance sharing its port, like Node's cluster module (the
    /// instance's process is their master). Built-in services start that many; for a `command`
    /// service it declares what the program forks itself (the book's
    /// producer-http-basic-master.js forks 2), so `lab check ch3.cluster` holds it to that.
    /// Default: 1 (no master).
    #[schemars(with = "Option<u32>", range(min = 1, max = 256))]
    pub workers: Option<Spanned<u32>>,
    /// With `workers`: the master starts a new worker when one exits (the book's
    /// `cluster.fork()` in the exit handler, left commented out there). For a `command`
    /// service, a declaration that its master does so. Default: `false`.
    #[schemars(with = "Option<bool>")]
    pub respawn: Option<Spanned<bool>>,
    /// How many instances to run. Default: 1.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub replicas: Option<Spanned<u32>>,
    /// The first port (instances take consecutive ports), a range `"4000-4009"`, or 0 for free
    /// ports picked at start. Default: 0.
    #[schemars(with = "Option<PortSpec>")]
    pub port: Option<Spanned<PortSpec>>,
    /// Interface the service binds (`HOST`). Default: `127.0.0.1`.
    #[schemars(with = "Option<String>")]
    pub host: Option<Spanned<String>>,
    /// Services that must be healthy before this one starts.
    #[schemars(with = "Option<Vec<String>>")]
    pub depends_on: Option<Vec<Spanned<String>>>,
    /// How the lab decides an instance is ready and alive.
    pub health: Option<RawHealth>,
    /// What to do when an instance exits. Default: `on-failure`.
    #[schemars(with = "Option<RestartPolicy>")]
    pub restart: Option<Spanned<RestartPolicy>>,
    /// Delays between restarts: exponential, capped, reset after a healthy stretch.
    pub backoff: Option<RawBackoff>,
    /// Overrides the lab's `environment` for this service.
    #[schemars(with = "Option<String>")]
    pub environment: Option<Spanned<String>>,
    /// Time between SIGTERM and SIGKILL when stopping, e.g. `"10s"`. Default: `10s`.
    #[schemars(with = "Option<String>")]
    pub stop_grace: Option<Spanned<String>>,
}

/// What runs a lab's instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, JsonSchema, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeKind {
    /// Local processes, each in its own process group.
    #[default]
    Process,
    /// Containers through the local Docker engine.
    Docker,
}

impl RuntimeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Process => "process",
            RuntimeKind::Docker => "docker",
        }
    }
}

/// The lab's own services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Builtin {
    /// The book's producer: `GET /recipes/:id`.
    RecipeApi,
    /// The book's consumer: `GET /` calls `http://$TARGET/recipes/42`.
    WebApi,
}

impl Builtin {
    pub fn as_str(self) -> &'static str {
        match self {
            Builtin::RecipeApi => "recipe-api",
            Builtin::WebApi => "web-api",
        }
    }
}

/// How a service serves (chapter 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Protocol {
    /// Plain TCP: HTTP/1.1, and HTTP/2 with prior knowledge for gRPC.
    Http,
    /// TLS with a certificate from the lab's CA.
    Https,
}

/// What a producer answers on its port (chapter 2), for `serves`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Serve {
    /// REST/JSON over plain HTTP: `GET /recipes/:id`.
    Http,
    /// REST/JSON over TLS (the service's `protocol` is https).
    Https,
    /// gzip-compressed answers for clients that send `Accept-Encoding: gzip`.
    Gzip,
    /// `POST /graphql` on the contract's schema.
    Graphql,
    /// gRPC `recipe.RecipeService` from the contract's proto.
    Grpc,
}

impl Serve {
    pub const ALL: [Serve; 5] = [
        Serve::Http,
        Serve::Https,
        Serve::Gzip,
        Serve::Graphql,
        Serve::Grpc,
    ];
    pub fn as_str(self) -> &'static str {
        match self {
            Serve::Http => "http",
            Serve::Https => "https",
            Serve::Gzip => "gzip",
            Serve::Graphql => "graphql",
            Serve::Grpc => "grpc",
        }
    }
}

/// The protocols a consumer can call its producer with (chapter 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TargetProtocol {
    /// `GET /recipes/42`, JSON.
    Http,
    /// `GET https://.../recipes/42`, trusting the lab's CA.
    Https,
    /// `POST /graphql` with the book's kitchenSink query.
    Graphql,
    /// `recipe.RecipeService` over HTTP/2.
    Grpc,
}

impl TargetProtocol {
    pub fn as_str(self) -> &'static str {
        match self {
            TargetProtocol::Http => "http",
            TargetProtocol::Https => "https",
            TargetProtocol::Graphql => "graphql",
            TargetProtocol::Grpc => "grpc",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RestartPolicy {
    /// Restart whenever the instance exits.
    Always,
    /// Restart when it exits with a non-zero code or a signal.
    OnFailure,
    /// Never restart.
    Never,
}

/// A port number (0 = pick free ports) or an inclusive range `"A-B"`.
#[derive(Debug, Clone, PartialEq, Eq, JsonSchema)]
#[schemars(untagged)]
pub enum PortSpec {
    Number(u16),
    Range(String),
}

impl<'de> Deserialize<'de> for PortSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = PortSpec;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a port number 0-65535 or a range like \"4000-4009\"")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<PortSpec, E> {
                u16::try_from(v)
                    .map(PortSpec::Number)
                    .map_err(|_| E::custom(format!("port {v} is out of range 0-65535")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<PortSpec, E> {
                self.visit_i64(i64::try_from(v).unwrap_or(i64::MAX))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<PortSpec, E> {
                Ok(PortSpec::Range(v.to_owned()))
            }
        }
        d.deserialize_any(V)
    }
}

/// Health check settings. Durations are written like `"100ms"`, `"2s"`, `"1m"`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    /// `http` (GET `path` answers 2xx), `tcp` (the port accepts), or `none`. Default: `http`
    /// for built-in services; for a `command` service `tcp` (the book's producers have no
    /// `/health` route), or `http` when it sets `path`.
    #[schemars(with = "Option<CheckKind>")]
    pub check: Option<Spanned<CheckKind>>,
    /// Path for the `http` check. Default: `/health`.
    #[schemars(with = "Option<String>")]
    pub path: Option<Spanned<String>>,
    /// Probe period while an instance starts. Default: `5ms`.
    #[schemars(with = "Option<String>")]
    pub start_interval: Option<Spanned<String>>,
    /// Probe period once healthy. Default: `2s`.
    #[schemars(with = "Option<String>")]
    pub interval: Option<Spanned<String>>,
    /// Time limit of one probe. Default: `1s`.
    #[schemars(with = "Option<String>")]
    pub timeout: Option<Spanned<String>>,
    /// How long a starting instance may take to become healthy. Default: `30s`.
    #[schemars(with = "Option<String>")]
    pub deadline: Option<Spanned<String>>,
    /// A required PostgreSQL, probed by `/health` with `SELECT 'ACK'` (the book's
    /// basic-http-healthcheck): down means `500 DOWN`. A URL `postgres://user@host:port/db`
    /// (trust or password auth), handed to the service as `HEALTH_POSTGRES`.
    #[schemars(with = "Option<String>")]
    pub postgres: Option<Spanned<String>>,
    /// An optional Redis, probed by `/health` with `PING`: down means `200 DEGRADED`.
    /// `host:port`, handed to the service as `HEALTH_REDIS`.
    #[schemars(with = "Option<String>")]
    pub redis: Option<Spanned<String>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    Http,
    Tcp,
    None,
}

/// Restart delays: `initial × factor^n`, at most `max`, back to `initial` after `reset_after`
/// of uptime. Defaults (pm2's): 100ms, 1.5, 15s, 30s.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RawBackoff {
    #[schemars(with = "Option<String>")]
    pub initial: Option<Spanned<String>>,
    #[schemars(with = "Option<f64>")]
    pub factor: Option<Spanned<f64>>,
    #[schemars(with = "Option<String>")]
    pub max: Option<Spanned<String>>,
    #[schemars(with = "Option<String>")]
    pub reset_after: Option<Spanned<String>>,
}

/// The JSON Schema of lab.toml, pretty-printed.
pub fn schema_json() -> String {
    let schema = schemars::schema_for!(RawLab);
    let mut s = serde_json::to_string_pretty(&schema).expect("schema serialises");
    s.push('\n');
    s
}
