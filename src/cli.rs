//! The command line (clap derive). The help text is the reference: keep it exact.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::config::lower::PortMode;

#[derive(Debug, Parser)]
#[command(
    name = "lab",
    version,
    about = "The all-in-one distributed-systems lab: run, load and check the services of Distributed Systems with Node.js",
    after_help = "Exit codes: 0 ok, 1 a check failed or the lab could not start, 2 usage or config error."
)]
pub struct Cli {
    /// The lab file (before the subcommand, as with docker compose: `lab -f my.toml up`).
    #[arg(
        short = 'f',
        long = "file",
        default_value = "lab.toml",
        env = "LAB_FILE"
    )]
    pub file: PathBuf,
    /// Where state and logs live. Default: `.lab` beside the lab file.
    #[arg(long, global = true, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// No colour (also when NO_COLOR is set or output is not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the lab: services in dependency order, each gated on its health check.
    Up(UpArgs),
    /// Stop the lab recorded under the state dir (also after `lab up` was killed).
    Down(DownArgs),
    /// Show what runs where, with live health.
    Status(StatusArgs),
    /// Show instance logs.
    Logs(LogsArgs),
    /// Break the lab on purpose: kill, pause or restart an instance; list and clear faults.
    #[command(subcommand)]
    Fault(FaultCommand),
    /// Run the chapter scenarios against the running lab (or one started for them).
    Check(CheckArgs),
    /// Load-test a URL or a service of the running lab (autocannon's habits; wrk2's fixed rate).
    Load(Box<LoadArgs>),
    /// The container image of the lab (`lab images build`), made from this binary, no registry.
    #[command(subcommand)]
    Images(ImagesCommand),
    /// The same lab for an existing engine: `lab export compose > docker-compose.yml`.
    #[command(subcommand)]
    Export(ExportCommand),
    /// Exit 0 when `GET URL` answers 2xx within the timeout, else 1: a health probe for
    /// containers whose image has no shell or curl (`["CMD", "/lab", "probe", URL]`).
    Probe(ProbeArgs),
    /// Benchmarks against the running lab: `lab bench protocols` (the book's protocol table).
    #[command(subcommand)]
    Bench(BenchCommand),
    /// Run the observability hub alone in the foreground, on `[hub]`'s ports (defaults: the book's).
    Hub(HubArgs),
    /// The alert rules the hub evaluates, their state, and (with --history) past events.
    Alerts(AlertsArgs),
    /// Run one built-in service in the foreground (what `lab up` spawns).
    Serve(ServeArgs),
    /// Inspect lab.toml: its JSON Schema, or whether a file is valid.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Write a commented lab.toml: the default lab, or one for a book section of your own code.
    Init(InitArgs),
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// A book section (`lab init --list` names them), e.g. `ch2-graphql`; none: the default lab
    /// (the lab's own services).
    pub section: Option<String>,
    /// Name the sections and the book's files each one runs.
    #[arg(long)]
    pub list: bool,
    /// Overwrite an existing lab.toml.
    #[arg(long)]
    pub force: bool,
    /// Print the file instead of writing it.
    #[arg(long)]
    pub stdout: bool,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Return once every instance is healthy, leaving a supervisor running in the background.
    #[arg(short, long)]
    pub detach: bool,
    /// strict: configured ports, a taken one is an error; auto: shift taken ports to free ones;
    /// ephemeral: free ports for every instance.
    #[arg(long, value_enum, default_value_t = PortMode::Strict)]
    pub ports: PortMode,
    /// What runs the instances; overrides lab.toml's `runtime` (default: process).
    #[arg(long, value_enum)]
    pub runtime: Option<crate::config::model::RuntimeKind>,
    /// Put a fault edge on every address a consumer is given, as `[faults] edges = true`
    /// does, so `lab fault latency|status|…` can hit what passes (process runtime).
    #[arg(long)]
    pub faults: bool,
    /// Internal: run as the detached supervisor (used by --detach).
    #[arg(long, hide = true)]
    pub supervise: bool,
}

#[derive(Debug, Subcommand)]
pub enum FaultCommand {
    /// SIGKILL an instance's process group (`docker kill` on the docker runtime): the supervisor
    /// restarts it as after any crash (its restart policy and backoff apply).
    Kill(FaultTarget),
    /// Freeze an instance (SIGSTOP to its process group; `docker pause`): its sockets stay open
    /// and nothing answers, until `lab fault clear` or `--for` ends it.
    Pause {
        #[command(flatten)]
        target: FaultTarget,
        /// End the pause by itself after this long (`500ms`, `5s`, `1m`).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_fault_duration)]
        lasting: Option<Duration>,
    },
    /// Stop an instance gracefully (SIGTERM; `docker stop`) and start it again at once,
    /// whatever its restart policy; waits until it is healthy again.
    Restart(FaultTarget),
    /// Cut an instance off: on the docker runtime its container leaves the lab's network
    /// (`docker network disconnect`); on the process runtime the fault edges into it refuse
    /// connections (`--mode refuse`) or black-hole them (`--mode drop`). Until `lab fault
    /// clear` or `--for` ends it.
    Partition {
        #[command(flatten)]
        target: FaultTarget,
        /// Process runtime: `refuse` (connecting is refused, open connections reset) or `drop`
        /// (connections taken and then nothing passes, so peers wait for their timeouts).
        /// Default: refuse.
        #[arg(long, value_enum)]
        mode: Option<PartitionModeArg>,
        /// End it by itself after this long (`500ms`, `5s`, `1m`).
        #[arg(long = "for", value_name = "DURATION", value_parser = parse_fault_duration)]
        lasting: Option<Duration>,
    },
    /// Edges: every piece of data waits DELAY (± --jitter) before it is passed on.
    Latency {
        #[command(flatten)]
        target: FaultTarget,
        #[arg(value_parser = parse_fault_duration)]
        delay: Duration,
        /// Each delay varies by up to this much either way.
        #[arg(long, value_parser = humantime::parse_duration)]
        jitter: Option<Duration>,
        #[command(flatten)]
        edge: EdgeOptions,
    },
    /// Edges: at most KB_PER_S kilobytes (1000 bytes) a second pass.
    Bandwidth {
        #[command(flatten)]
        target: FaultTarget,
        #[arg(value_parser = clap::value_parser!(u64).range(1..))]
        kb_per_s: u64,
        #[command(flatten)]
        edge: EdgeOptions,
    },
    /// Edges: hold the data, pass nothing on, so the peer waits until it gives up (the
    /// connection is closed when the fault ends).
    Timeout(EdgeFaultArgs),
    /// Edges: reset connections (RST) at their next exchange.
    Reset(EdgeFaultArgs),
    /// Edges: pass the end of each stream on DELAY late.
    SlowClose(DelayFaultArgs),
    /// Edges: close a connection once BYTES passed in an exchange.
    LimitData {
        #[command(flatten)]
        target: FaultTarget,
        bytes: u64,
        #[command(flatten)]
        edge: EdgeOptions,
    },
    /// Edges, HTTP: answer CODE (e.g. 503) instead of the server, for a share of requests.
    Status {
        #[command(flatten)]
        target: FaultTarget,
        #[arg(value_parser = clap::value_parser!(u16).range(100..=599))]
        code: u16,
        #[command(flatten)]
        edge: EdgeOptions,
    },
    /// Edges, HTTP: answer the first N requests after now with --status (503), or with
    /// --close close their connection with no answer (what a proxy's retries are for).
    FailFirst {
        #[command(flatten)]
        target: FaultTarget,
        n: u64,
        #[arg(long, default_value_t = 503, value_parser = clap::value_parser!(u16).range(100..=599))]
        status: u16,
        /// Close the connection instead of answering.
        #[arg(long, conflicts_with = "status")]
        close: bool,
        #[command(flatten)]
        edge: EdgeOptions,
    },
    /// Edges, HTTP: the response's first byte waits DELAY.
    SlowFirstByte(DelayFaultArgs),
    /// Edges, HTTP: pass the response's head on, then close the connection.
    AbortAfterHeaders(EdgeFaultArgs),
    /// The faults in effect: what, on what, since when, until when.
    List {
        /// One JSON document instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// End faults: one by its id (`f1`, from `lab fault list`), or `all` (the default).
    Clear {
        #[arg(default_value = "all")]
        which: String,
    },
}

#[derive(Debug, Args)]
pub struct FaultTarget {
    /// `SERVICE#N` (one instance, as `lab status` names it) or `SERVICE` (every instance of it).
    #[arg(value_name = "SERVICE[#N]")]
    pub target: String,
}

/// An edge fault with no amount.
#[derive(Debug, Args)]
pub struct EdgeFaultArgs {
    #[command(flatten)]
    pub target: FaultTarget,
    #[command(flatten)]
    pub edge: EdgeOptions,
}

/// An edge fault that delays by DELAY.
#[derive(Debug, Args)]
pub struct DelayFaultArgs {
    #[command(flatten)]
    pub target: FaultTarget,
    #[arg(value_parser = parse_fault_duration)]
    pub delay: Duration,
    #[command(flatten)]
    pub edge: EdgeOptions,
}

/// What every edge fault takes (the lab needs `[faults] edges = true` or `lab up --faults`).
#[derive(Debug, Clone, Args)]
pub struct EdgeOptions {
    /// The share of exchanges it hits (requests on an HTTP edge), 0 to 1; seeded by
    /// `[faults] seed`, so the same requests are hit on every run.
    #[arg(short = 'p', long, default_value_t = 1.0, value_parser = parse_probability)]
    pub probability: f64,
    /// Which way the data it hits flows: latency, bandwidth, timeout, slow-close and
    /// limit-data only. Default: downstream (the responses).
    #[arg(long, value_enum)]
    pub direction: Option<FaultDirection>,
    /// End it by itself after this long (`500ms`, `5s`, `1m`).
    #[arg(long = "for", value_name = "DURATION", value_parser = parse_fault_duration)]
    pub lasting: Option<Duration>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PartitionModeArg {
    /// Connecting is refused (ECONNREFUSED), open connections are reset.
    Refuse,
    /// Connections are taken, then nothing passes either way.
    Drop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum FaultDirection {
    /// From the consumer to the server (requests).
    Upstream,
    /// From the server back to the consumer (responses).
    Downstream,
}

fn parse_probability(text: &str) -> Result<f64, String> {
    match text.trim_end_matches('%').parse::<f64>() {
        Ok(p) if text.ends_with('%') && (0.0..=100.0).contains(&p) => Ok(p / 100.0),
        Ok(p) if !text.ends_with('%') && (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err("a probability is between 0 and 1 (0.2) or a percentage (20%)".into()),
    }
}

/// A fault's duration, with the hint clap alone would not give.
fn parse_fault_duration(text: &str) -> Result<Duration, String> {
    match humantime::parse_duration(text) {
        Ok(d) if d.is_zero() => Err("a fault lasts longer than 0 (e.g. 5s)".into()),
        Ok(d) => Ok(d),
        Err(e) => Err(format!("{e}: write a duration like 500ms, 5s or 1m")),
    }
}

#[derive(Debug, Args)]
pub struct DownArgs {
    /// Time each instance gets between SIGTERM and SIGKILL.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    pub grace: Duration,
    /// Docker runtime: also remove the lab's named volumes (the hub's data).
    #[arg(long)]
    pub volumes: bool,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One JSON document instead of a table.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// A service (`web-api`) or one instance (`web-api#2`). Default: all.
    pub service: Option<String>,
    /// Keep printing new lines as they are written.
    #[arg(short, long)]
    pub follow: bool,
    /// Lines to show from the end of each log first (with --query: the newest N matches).
    #[arg(short = 'n', long, default_value_t = 100)]
    pub tail: usize,
    /// Search the hub's log store instead (KQL: `app:web-api AND severity:error`,
    /// `fields.path:/error`, `"a phrase"`, `status >= 500`, `not type:listen`).
    #[arg(short, long, value_name = "KQL")]
    pub query: Option<String>,
    /// With --query: how far back, e.g. `5m`, `2h`, `1d`. Default: 15m.
    #[arg(long, value_name = "DURATION", requires = "query")]
    pub since: Option<String>,
    /// With --query: print each matching document as one JSON line.
    #[arg(long, requires = "query")]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// `all`, chapters (`ch1`) or scenarios (`ch1.sample-app`); several run in the order given.
    #[arg(default_value = "all")]
    pub target: Vec<String>,
    /// List every scenario with the book section it exercises.
    #[arg(long)]
    pub list: bool,
    /// Print one JSON document (schema: schema/check-report.schema.json).
    #[arg(long)]
    pub json: bool,
    /// The proxy engine the chapter 3 proxy scenarios run: `builtin` or `haproxy`.
    /// Default: the lab's `[proxy] engine`, else builtin.
    #[arg(long, value_enum)]
    pub proxy_engine: Option<crate::config::model::ProxyEngine>,
    /// Also write JUnit XML to this file.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Count a scenario that does not apply to the lab as failed (for CI).
    #[arg(long)]
    pub strict: bool,
    /// Show the progress kept in `.lab/progress.json` per chapter, and run nothing.
    #[arg(long, conflicts_with_all = ["next", "watch"])]
    pub progress: bool,
    /// Run the first scenario, in book order, that does not pass yet.
    #[arg(long)]
    pub next: bool,
    /// Run again whenever a file of a `command` service's folder changes (restarting that
    /// service first); Ctrl-C stops.
    #[arg(long)]
    pub watch: bool,
    /// Check services lab did not start: `SERVICE=URL` (repeat for each instance), e.g.
    /// `--endpoint web-api=http://10.0.0.5:3001`. lab.toml, when there is one, still says
    /// what each service plays and serves.
    #[arg(long, value_name = "SERVICE=URL")]
    pub endpoint: Vec<String>,
}

#[derive(Debug, Args)]
pub struct LoadArgs {
    /// `http(s)://host:port/path`, a service of the running lab (`recipe-api/recipes/42`,
    /// `proxy/` for its first frontend), or the name of a `[load.NAME]` preset of lab.toml.
    #[arg(required_unless_present = "compare")]
    pub target: Option<String>,
    /// Concurrent connections. Default: 10 (or the preset's).
    #[arg(short, long)]
    pub connections: Option<usize>,
    /// Requests written back to back per connection before reading answers (HTTP/1.1).
    /// Default: 1.
    #[arg(short, long)]
    pub pipelining: Option<usize>,
    /// How long to run, e.g. `10s`, `1m`.
    #[arg(short, long, value_parser = humantime::parse_duration, conflicts_with = "amount")]
    pub duration: Option<std::time::Duration>,
    /// Stop after this many requests instead of a duration.
    #[arg(short, long)]
    pub amount: Option<u64>,
    /// Hold this many requests per second overall; latency counts from when each was due (wrk2).
    #[arg(short = 'R', long)]
    pub rate: Option<f64>,
    /// Default: GET.
    #[arg(short, long)]
    pub method: Option<String>,
    /// A request header, `Name: value` (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// The request body.
    #[arg(short, long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// The request body, from a file.
    #[arg(long, value_name = "FILE")]
    pub body_file: Option<PathBuf>,
    /// Send this GraphQL query: POST with a JSON body `{"query", "variables"}` (path default
    /// `/graphql`), e.g. the book's kitchenSink query.
    #[arg(long, value_name = "QUERY", conflicts_with_all = ["body", "body_file"])]
    pub graphql: Option<String>,
    /// Variables for `--graphql`, as JSON.
    #[arg(long, value_name = "JSON", requires = "graphql")]
    pub variables: Option<String>,
    /// HTTP/2 (h2c on http://, ALPN h2 on https://); `--pipelining` is then the concurrent
    /// streams per connection.
    #[arg(long)]
    pub http2: bool,
    /// For https:// targets: trust this CA (PEM). Default: the running lab's CA (.lab/tls/ca.crt).
    #[arg(long, value_name = "FILE", conflicts_with = "insecure")]
    pub ca: Option<PathBuf>,
    /// For https:// targets: accept any certificate.
    #[arg(long)]
    pub insecure: bool,
    /// gRPC unary call of the recipe contract over HTTP/2, e.g. `recipe.RecipeService/GetRecipe`.
    #[arg(long, value_name = "SERVICE/METHOD", conflicts_with_all = ["body", "body_file", "graphql"])]
    pub grpc: Option<String>,
    /// The gRPC request as JSON, e.g. `{"id":42}` for GetRecipe.
    #[arg(long, value_name = "JSON", requires = "grpc")]
    pub data: Option<String>,
    /// A request not answered within this is a timeout. Default: 10s.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub timeout: Option<std::time::Duration>,
    /// Threads driving the connections. Default: one per core.
    #[arg(short, long)]
    pub workers: Option<usize>,
    /// Send load for this long first, unmeasured.
    #[arg(long, value_parser = humantime::parse_duration)]
    pub warmup: Option<std::time::Duration>,
    /// Bounds that decide the exit code, e.g. `p99<20ms,errors<0.1%,rps>5000`.
    #[arg(long)]
    pub sla: Option<String>,
    /// Print one JSON document in autocannon's result shape (plus `sla`).
    #[arg(long)]
    pub json: bool,
    /// Also draw the latency distribution (percentile plot) to this SVG file.
    #[arg(long, value_name = "FILE.svg")]
    pub histogram: Option<PathBuf>,
    /// Do not keep the result on the dashboard. By default a run pointed at the running lab
    /// (one of its services or proxy frontends) is sent to its hub, where the Load page keeps
    /// it beside earlier runs.
    #[arg(long)]
    pub no_record: bool,
    /// The book's protocol table instead: recipe 42 over http, http+gzip, https, GraphQL, gRPC
    /// and through the proxy, against the running lab's recipe-api (TARGET is then `recipe-api`).
    #[arg(long)]
    pub compare: bool,
    /// The proxy engine of `--compare`'s proxied row. Default: the lab's, else builtin.
    #[arg(long, value_enum, requires = "compare")]
    pub proxy_engine: Option<crate::config::model::ProxyEngine>,
}

#[derive(Debug, Subcommand)]
pub enum ImagesCommand {
    /// Import `lab/lab:<version>` (this binary + the libraries it loads) into the local engine.
    Build {
        /// The binary to put in the image. Default: this one.
        #[arg(long, value_name = "PATH")]
        binary: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// A Compose file in the book's shape (one service per instance, ports on 127.0.0.1,
    /// depends_on service_healthy), on stdout.
    Compose,
    /// Kubernetes Services and Deployments (replicas, container port, liveness and readiness
    /// probes), one multi-document YAML on stdout.
    K8s,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    /// `http://host:port/path` (https trusts the lab CA given with --ca, else any certificate).
    pub url: String,
    /// How long to wait for the answer.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "2s")]
    pub timeout: std::time::Duration,
    /// For https: the CA to trust.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct AlertsArgs {
    /// Also list the firing and resolved events of the last day, newest last.
    #[arg(long)]
    pub history: bool,
    /// Print the rules (and history) as JSON.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct HubArgs {
    /// Any free port for every listener instead of the configured ones (printed at start).
    #[arg(long)]
    pub ephemeral_ports: bool,
}

#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// The book's "protocol concerns" table: recipe 42 over http, http+gzip, https, GraphQL,
    /// gRPC and through the proxy, each under the same load (same as `lab load --compare`).
    Protocols(BenchProtocolsArgs),
}

#[derive(Debug, Args)]
pub struct BenchProtocolsArgs {
    /// Concurrent connections per protocol.
    #[arg(short, long, default_value_t = 10)]
    pub connections: usize,
    /// How long each protocol is loaded, e.g. `5s`.
    #[arg(short, long, value_parser = humantime::parse_duration, default_value = "5s")]
    pub duration: std::time::Duration,
    /// The proxy engine of the proxied row. Default: the lab's, else builtin.
    #[arg(long, value_enum)]
    pub proxy_engine: Option<crate::config::model::ProxyEngine>,
    /// One JSON document: `{engine, rows: [{protocol, report}]}` (reports in autocannon's shape).
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Which service. Settings come from the environment: HOST, PORT, TARGET, LAB_ENV/NODE_ENV.
    #[arg(value_enum)]
    pub service: ServeWhich,
    /// The proxy's config (JSON, as `lab up` writes it to .lab/proxy/proxy.json); `proxy`,
    /// `hub` and `edges` only.
    #[arg(long, value_name = "FILE", required_if_eq("service", "proxy"))]
    pub config: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ServeWhich {
    RecipeApi,
    WebApi,
    /// The builtin reverse proxy (`[proxy]` with engine = "builtin").
    Proxy,
    /// The observability hub (`[hub]`).
    Hub,
    /// The fault edges (`[faults] edges = true`, `lab up --faults`).
    Edges,
    /// The book's low-connections.js: every answer after LAB_HOLD_MS (10 s); the back-pressure
    /// experiment's slow server.
    SlowServer,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print the JSON Schema of lab.toml (for editor completion and validation).
    Schema,
    /// Validate the lab file and summarise it; exit 2 with every error if it is invalid.
    Validate,
}

#[cfg(test)]
mod tests {
    #[test]
    fn cli_is_consistent() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }
}
