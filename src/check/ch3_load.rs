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
