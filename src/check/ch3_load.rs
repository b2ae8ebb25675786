//! Chapter 3's "SLA and Load Testing": short `lab load` runs against the lab, with their
//! figures in the report (and so in `--json` and JUnit).

use std::time::Duration;

use lab_loadgen::run::Live;
use lab_loadgen::{Plan, Report, Stop, Target};

use super::{BoxFut, Ctx, Record};
use crate::config::raw::Builtin;

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
            "{} answered, {} errors {:?}, {} timeouts, {} non-2xx",
            r.requests.dist.total, r.errors, r.errors_by_kind, r.timeouts, r.non2xx
        ),
    );
}

pub fn load_baseline<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        anyhow::ensure!(
            base.starts_with("http://"),
            "the load baseline runs over plain HTTP; recipe-api serves {base}"
        );
        let r = load(plan(&format!("{base}/recipes/42"))?).await?;
        clean(rec, "GET /recipes/42, 10 connections, 2 s", &r);
        figures(rec, "recipe-api", &r);
        Ok(())
    })
}

pub fn proxy_concerns<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let base = ctx.first(Builtin::RecipeApi)?;
        anyhow::ensure!(
            base.starts_with("http://"),
            "this scenario proxies plain HTTP; recipe-api serves {base}"
        );
        let server = super::host_port(&base).to_owned();
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
        for (name, r) in protocol_table(ctx, PROTOCOL_RUN, 10).await? {
            clean(rec, name, &r);
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

/// The protocol table's runs, in order: http, http+gzip, https, graphql, grpc, http through
/// the proxy (the `ctx.proxy_engine`), each `run` long with `connections` connections.
pub async fn protocol_table(
    ctx: &Ctx,
    run: Duration,
    connections: usize,
) -> anyhow::Result<Vec<(&'static str, Report)>> {
    {
        let base = ctx.first(Builtin::RecipeApi)?;
        anyhow::ensure!(
            base.starts_with("http://"),
            "the protocol table starts from a plain-HTTP recipe-api; the lab's serves {base}"
        );
        let server = super::host_port(&base).to_owned();
        // https: a recipe-api started here with a certificate from the lab CA.
        let ca = crate::tls::LabCa::ensure(&ctx.tls_dir)?;
        let issued = ca.server_cert("recipe-api-check")?;
        let ca_path = ca.ca_cert();
        let (cert, key, ca_s) = (
            issued.cert.display().to_string(),
            issued.key.display().to_string(),
            ca_path.display().to_string(),
        );
        let https = super::spawn::builtin(
            Builtin::RecipeApi,
            &[
                ("TLS_CERT", cert.as_str()),
                ("TLS_KEY", key.as_str()),
                ("TLS_CA", ca_s.as_str()),
            ],
        )
        .await?;
        let proxy = super::spawn::proxy(
            ctx.proxy_engine,
            lab_proxy::config::ProxyConfig {
                frontends: vec![lab_proxy::config::Frontend::new(
                    "recipes",
                    "127.0.0.1:0",
                    vec![lab_proxy::config::Server {
                        name: "recipes-1".into(),
                        addr: server,
                    }],
                )],
            },
        )
        .await?;

        let short = |url: &str| -> anyhow::Result<Plan> {
            let mut p = plan(url)?;
            p.stop = Stop::Duration(run);
            p.connections = connections;
            Ok(p)
        };
        let mut cases: Vec<(&'static str, Plan)> = Vec::new();
        cases.push(("http", short(&format!("{base}/recipes/42"))?));
        let mut gz = short(&format!("{base}/recipes/42"))?;
        gz.headers.push(("Accept-Encoding".into(), "gzip".into()));
        cases.push(("http+gzip", gz));
        let mut tls = short(&format!("{}/recipes/42", https.base))?;
        tls.tls = Some(lab_service_kit::tls::client_config(&ca_path)?);
        cases.push(("https", tls));
        let mut gql = short(&format!("{base}/graphql"))?;
        gql.method = "POST".into();
        gql.headers
            .push(("Content-Type".into(), "application/json".into()));
        gql.body = serde_json::to_vec(&serde_json::json!({
            "query": "query kitchenSink ($id:ID) { recipe(id: $id) { id name ingredients { name quantity } } pid }",
            "variables": {"id": "42"}
        }))?
        .into();
        cases.push(("graphql", gql));
        let mut grpc = short(&format!("{base}/recipe.RecipeService/GetRecipe"))?;
        let msg =
            super::wire::grpc_message("recipe.RecipeService/GetRecipe", Some(r#"{"id":42}"#))?;
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
        cases.push(("grpc", grpc));
        cases.push((
            "http through the proxy",
            short(&format!("http://{}/recipes/42", proxy.addrs[0]))?,
        ));

        let mut out = Vec::new();
        for (name, p) in cases {
            out.push((name, load(p).await?));
        }
        drop((https, proxy));
        Ok(out)
    }
}
