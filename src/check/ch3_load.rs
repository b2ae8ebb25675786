//! Chapter 3's "SLA and Load Testing": short `lab load` runs against the lab, with their
//! figures in the report (and so in `--json` and JUnit).

use std::time::Duration;

use lab_loadgen::run::Live;
use lab_loadgen::{Plan, Report, Stop, Target};

use super::scenario::{BoxFut, Ctx, Record};
use crate::config::model::{Builtin, Serve};

/// Each measured run: short enough for CI, long enough for whole-second samples.
const RUN: Duration = Duration::from_secs(2);

/// Run `plan` on its own threads (the load generator has its own runtime) and report.
async fn load(plan: Plan) -> anyhow::Result<Report> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let out = lab_loadgen::run::run(&plan, std::sync::Arc::new(Live::default()))
            .map(|o| Report::new(&plan, &o));
        let _ = tx.send(out);
    });
    Ok(rx.await??)
}

fn plan(url: &str) -> anyhow::Result<Plan> {
    let mut p = Plan::new(Target::parse(url)?);
    p.connections = 10;
    p.workers = 1;
    p.stop = Stop::Duration(RUN);
    p.timeout = Duration::from_secs(5);
    Ok(p)
}

fn figures(rec: &mut Record, label: &str, r: &Report) {
    rec.figure(format!("{label} req/s"), r.rps(), "req/s");
    rec.figure(format!("{label} latency p50"), r.latency.p("p50"), "ms");
    rec.figure(format!("{label} latency p97.5"), r.latency.p("p97_5"), "ms");
    rec.figure(format!("{label} latency p99"), r.latency.p("p99"), "ms");
    rec.figure(format!("{label} latency max"), r.latency.max, "ms");
}

fn clean(rec: &mut Record, label: &str, r: &Report) {
    rec.check(
        format!("{label}: no errors, no timeouts, every answer 2xx"),
        r.errors == 0 && r.timeouts == 0 && r.non2xx == 0 && r.requests.dist.total > 0.0,
        format!(
            "{} answered, {} errors{}, {} timeouts, {} non-2xx",
            r.requests.dist.total,
            r.errors,
            if r.errors_by_kind.is_empty() {
                String::new()
            } else {
                format!(
                    " ({})",
                    super::scenario::list(r.errors_by_kind.iter().map(|(k, n)| format!("{k} {n}")))
                )
            },
            r.timeouts,
            r.non2xx
        ),
    );
}

pub fn load_baseline<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.rest_producers();
        if producers.is_empty() {
            return Err(super::scenario::not_applicable(
                "no service of role recipe-api answers REST/JSON to load",
                "a producer with `serves = [\"http\"]` (the default for a `command` producer)",
            ));
        }
        // The book loads one producer; the others are named, not loaded.
        for other in &producers[1..] {
            rec.note(format!(
                "{} not loaded (one producer is the baseline)",
                other.service
            ));
        }
        for p in &producers[..1] {
            rec.subject(p.subject());
            let mut plan = plan(&format!("{}/recipes/42", p.base()?))?;
            if p.scheme() == "https" {
                let ca = ctx
                    .tls_ca
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("the lab has no CA"))?;
                plan.tls = Some(lab_net::tls::client_config(ca)?);
            }
            let r = load(plan).await?;
            clean(
                rec,
                &format!("{}: GET /recipes/42, 10 connections, 2 s", p.service),
                &r,
            );
            figures(rec, &p.service, &r);
        }
        Ok(())
    })
}

pub fn proxy_concerns<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producer = ctx.plain_rest_producers().into_iter().next().ok_or_else(|| {
            super::scenario::not_applicable(
                "no service of role recipe-api answers REST over plain HTTP, which the proxy is put in front of",
                "a producer with `serves = [\"http\"]`",
            )
        })?;
        rec.subject(producer.subject());
        let base = producer.base()?;
        let server = super::scenario::host_port(&base).to_owned();
        let f = lab_proxy::config::Frontend::new(
            "recipes",
            "127.0.0.1:0",
            vec![lab_proxy::config::Server {
                name: "recipes-1".into(),
                addr: server,
            }],
        );
        let proxy = super::spawn::proxy(
            ctx.proxy_engine,
            lab_proxy::config::ProxyConfig { frontends: vec![f] },
        )
        .await?;
        rec.subject(super::scenario::Subject::helper(
            "proxy",
            format!(
                "a {} proxy started for this experiment on {} (the book's haproxy/benchmark-basic.cfg)",
                ctx.proxy_engine.as_str(),
                proxy.addrs[0]
            ),
        ));
        let direct = load(plan(&format!("{base}/recipes/42"))?).await?;
        let proxied = load(plan(&format!("http://{}/recipes/42", proxy.addrs[0]))?).await?;
        clean(rec, "direct", &direct);
        clean(rec, "through the proxy", &proxied);
        figures(rec, "direct", &direct);
        figures(rec, "through the proxy", &proxied);
        rec.figure(
            "throughput through the proxy / direct",
            proxied.rps() / direct.rps().max(f64::MIN_POSITIVE),
            "x",
        );
        rec.figure(
            "latency the proxy adds (p50)",
            proxied.latency.p("p50") - direct.latency.p("p50"),
            "ms",
        );
        Ok(())
    })
}

/// The book's "protocol concerns" table under load: GET recipe 42 over http, http+gzip,
/// https, GraphQL and gRPC, direct and through the proxy, each for [`PROTOCOL_RUN`].
const PROTOCOL_RUN: Duration = Duration::from_secs(1);

pub fn protocol_concerns<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let table = protocol_table(ctx, PROTOCOL_RUN, 10).await?;
        for s in table.subjects {
            rec.subject(s);
        }
        for n in table.notes {
            rec.note(n);
        }
        if table.rows.is_empty() {
            return Err(super::scenario::not_applicable(
                "no producer of the lab serves a protocol of the table",
                "a producer with `serves = [\"http\"]`",
            ));
        }
        for row in &table.rows {
            let (name, r) = (row.name.as_str(), &row.report);
            clean(rec, name, r);
            rec.figure(format!("{name} req/s"), r.rps(), "req/s");
            rec.figure(format!("{name} latency p50"), r.latency.p("p50"), "ms");
            rec.figure(format!("{name} latency p99"), r.latency.p("p99"), "ms");
            rec.figure(
                format!("{name} bytes per answer"),
                r.throughput.total / r.requests.dist.total.max(1.0),
                "bytes",
            );
        }
        Ok(())
    })
}

/// One row of the protocol table.
pub struct Row {
    pub name: String,
    /// What the row shows, in a line.
    pub shows: String,
    /// The service it loaded.
    pub server: String,
    pub report: Report,
}

/// The protocol table: its rows, what they ran against, and what was left out.
pub struct Table {
    pub rows: Vec<Row>,
    pub subjects: Vec<super::scenario::Subject>,
    pub notes: Vec<String>,
}

/// The protocol table's runs, like with like: the HTTP/1.1 rows first (REST in clear, gzip,
/// REST over TLS on the same kind of server, GraphQL, through the proxy), then the HTTP/2 ones
/// (gRPC), each `run` long with `connections` connections, each on a producer of the lab that
/// serves it. Where no producer of the lab serves https and no learner's producer plays
/// recipe-api, the http and https rows run on two of ours started alike (plain and TLS), so
/// TLS is the only difference between them.
pub async fn protocol_table(ctx: &Ctx, run: Duration, connections: usize) -> anyhow::Result<Table> {
    let short = |url: &str| -> anyhow::Result<Plan> {
        let mut p = plan(url)?;
        p.stop = Stop::Duration(run);
        p.connections = connections;
        Ok(p)
    };
    let mut table = Table {
        rows: Vec::new(),
        subjects: Vec::new(),
        notes: Vec::new(),
    };
    let mut cases: Vec<(String, String, String, Plan)> = Vec::new();
    let http_row = |h: &super::scenario::Endpoint,
                    shows: &str|
     -> anyhow::Result<(String, String, String, Plan)> {
        Ok((
            "http".into(),
            shows.into(),
            h.service.clone(),
            short(&format!("{}/recipes/42", h.base()?))?,
        ))
    };
    let first = |s: Serve| ctx.serving(s).into_iter().next();
    let lab_ca = ctx.tls_ca.clone();
    let mut keep = Vec::new();

    // http vs https, alike.
    let lab_https = first(Serve::Https);
    match (first(Serve::Http), lab_https) {
        (http, Some(https)) => {
            if let Some(h) = http {
                table.subjects.push(h.subject());
                cases.push(http_row(h, "REST/JSON over HTTP/1.1 in clear")?);
            }
            table.subjects.push(https.subject());
            let mut tls = short(&format!("{}/recipes/42", https.base()?))?;
            let ca = lab_ca
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("the lab has no CA"))?;
            tls.tls = Some(lab_net::tls::client_config(ca)?);
            cases.push((
                "https".into(),
                "the same over HTTP/1.1 with TLS".into(),
                https.service.clone(),
                tls,
            ));
        }
        (Some(h), None) if ctx.learner_plays(Builtin::RecipeApi) => {
            table.subjects.push(h.subject());
            cases.push(http_row(h, "REST/JSON over HTTP/1.1 in clear")?);
            table.notes.push("no producer serves https: the https row is left out (`serves = [\"https\"]` on a producer adds it)".into());
        }
        (Some(_), None) => {
            // Two of ours started alike, so that TLS is all that differs.
            let ca = crate::tls::LabCa::ensure(&ctx.tls_dir)?;
            let issued = ca.server_cert("recipe-api-check")?;
            let ca_path = ca.ca_cert();
            let (cert, key, ca_s) = (
                issued.cert.display().to_string(),
                issued.key.display().to_string(),
                ca_path.display().to_string(),
            );
            let plain = super::spawn::builtin(Builtin::RecipeApi, &[]).await?;
            let https = super::spawn::builtin(
                Builtin::RecipeApi,
                &[
                    ("TLS_CERT", cert.as_str()),
                    ("TLS_KEY", key.as_str()),
                    ("TLS_CA", ca_s.as_str()),
                ],
            )
            .await?;
            table.subjects.push(super::scenario::Subject::helper(
                "recipe-api",
                format!(
                    "the lab's built-in recipe-api ×2 alike, one plain (pid {}) and one over TLS (pid {}), both without telemetry, started because no service of the lab serves https",
                    plain.pid, https.pid
                ),
            ));
            cases.push((
                "http (alike)".into(),
                "REST/JSON over HTTP/1.1 in clear, on the twin of the https row's server".into(),
                "built-in recipe-api".into(),
                short(&format!("{}/recipes/42", plain.base))?,
            ));
            let mut tls = short(&format!("{}/recipes/42", https.base))?;
            tls.tls = Some(lab_net::tls::client_config(&ca_path)?);
            cases.push((
                "https (alike)".into(),
                "the same over HTTP/1.1 with TLS: the handshake and encryption are all that differs".into(),
                "built-in recipe-api".into(),
                tls,
            ));
            keep.push(plain);
            keep.push(https);
        }
        (None, None) => {}
    }
    if let Some(h) = first(Serve::Http).filter(|_| !cases.iter().any(|c| c.0 == "http")) {
        table.subjects.push(h.subject());
        cases.push(http_row(
            h,
            "REST/JSON over HTTP/1.1 in clear, on the lab's producer (with its telemetry, if any)",
        )?);
    }
    if let Some(g) = first(Serve::Gzip).filter(|e| e.scheme() == "http") {
        table.subjects.push(g.subject());
        let mut gz = short(&format!("{}/recipes/42", g.base()?))?;
        gz.headers.push(("Accept-Encoding".into(), "gzip".into()));
        cases.push((
            "http+gzip".into(),
            "REST/JSON over HTTP/1.1, gzip-compressed: fewer bytes for some CPU".into(),
            g.service.clone(),
            gz,
        ));
    } else {
        table
            .notes
            .push("no producer serves gzip over plain HTTP: the http+gzip row is left out".into());
    }
    if let Some(g) = first(Serve::Graphql).filter(|e| e.scheme() == "http") {
        table.subjects.push(g.subject());
        let mut gql = short(&format!("{}/graphql", g.base()?))?;
        gql.method = "POST".into();
        gql.headers
            .push(("Content-Type".into(), "application/json".into()));
        gql.body = serde_json::to_vec(&serde_json::json!({
            "query": super::contract::KITCHEN_SINK,
            "variables": {"id": "42"}
        }))?
        .into();
        cases.push((
            "graphql".into(),
            "POST /graphql over HTTP/1.1: the query is parsed and resolved on every request".into(),
            g.service.clone(),
            gql,
        ));
    } else {
        table
            .notes
            .push("no producer serves graphql over plain HTTP: the graphql row is left out".into());
    }
    let mut _proxy = None;
    if let Some(h) = first(Serve::Http) {
        let proxy = super::spawn::proxy(
            ctx.proxy_engine,
            lab_proxy::config::ProxyConfig {
                frontends: vec![lab_proxy::config::Frontend::new(
                    "recipes",
                    "127.0.0.1:0",
                    vec![lab_proxy::config::Server {
                        name: "recipes-1".into(),
                        addr: super::scenario::host_port(&h.base()?).to_owned(),
                    }],
                )],
            },
        )
        .await?;
        table.subjects.push(super::scenario::Subject::helper(
            "proxy",
            format!(
                "a {} proxy started for the table on {}",
                ctx.proxy_engine.as_str(),
                proxy.addrs[0]
            ),
        ));
        cases.push((
            "http through the proxy".into(),
            format!(
                "the http row through a {} proxy: one more hop over HTTP/1.1",
                ctx.proxy_engine.as_str()
            ),
            h.service.clone(),
            short(&format!("http://{}/recipes/42", proxy.addrs[0]))?,
        ));
        _proxy = Some(proxy);
    }
    if let Some(g) = first(Serve::Grpc).filter(|e| e.scheme() == "http") {
        table.subjects.push(g.subject());
        let mut grpc = short(&format!("{}/recipe.RecipeService/GetRecipe", g.base()?))?;
        let msg = super::contract::recipe_request(42);
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(msg.len() as u32).to_be_bytes());
        framed.extend_from_slice(&msg);
        grpc.method = "POST".into();
        grpc.body = framed.into();
        grpc.headers
            .push(("content-type".into(), "application/grpc".into()));
        grpc.headers.push(("te".into(), "trailers".into()));
        grpc.http2 = true;
        grpc.grpc = true;
        grpc.pipelining = 4;
        cases.push((
            "grpc".into(),
            "HTTP/2 (4 streams per connection), protobuf: GetRecipe(42)".into(),
            g.service.clone(),
            grpc,
        ));
    } else {
        table
            .notes
            .push("no producer serves grpc over plain HTTP/2: the grpc row is left out".into());
    }
    for (name, shows, server, p) in cases {
        let report = load(p).await?;
        table.rows.push(Row {
            name,
            shows,
            server,
            report,
        });
    }
    drop(keep);
    let mut seen = Vec::new();
    table.subjects.retain(|s| {
        let new = !seen.contains(s);
        seen.push(s.clone());
        new
    });
    Ok(table)
}
