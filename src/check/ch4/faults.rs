//! Scenarios that break something on purpose and watch the lab react (issue 18): what `lab
//! fault` does by hand, as an experiment with assertions. Each runs against copies of the
//! learner's service when lab.toml has one (`command = [...]`), else against the lab's built-in
//! one, and says which.

use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use lab_proxy::config::Check;

use super::super::ch3_proxy::{
    STATS_URI, frontend, light_load, record_return, server_row, start, stats_rows, status_until,
};
use super::super::scenario::{BoxFut, Ctx, EndpointRun, Record, Subject};
use super::super::spawn::{self, Spawned};
use crate::config::model::{Builtin, ProxyEngine};

/// Two instances of the lab's recipe-api for an experiment that freezes one: copies of the
/// learner's command when it is one, else the built-in service; named among the subjects.
async fn two_producers(
    ctx: &Ctx,
    rec: &mut Record,
) -> anyhow::Result<(Spawned, Spawned, Option<String>)> {
    let learners = ctx
        .playing(Builtin::RecipeApi)
        .into_iter()
        .find(|e| e.rest() && matches!(e.run, EndpointRun::Command { .. }));
    match learners {
        Some(e) => {
            let a = spawn::command_copy(e, &[]).await?;
            let b = spawn::command_copy(e, &[]).await?;
            let mut s = e.subject();
            s.what = format!(
                "{}: two copies (pids {}, {}) started for this experiment, so the lab's own instances are not frozen",
                s.what, a.pid, b.pid
            );
            rec.subject(s);
            Ok((a, b, e.health_path.clone()))
        }
        None => {
            let a = spawn::builtin(Builtin::RecipeApi, &[]).await?;
            let b = spawn::builtin(Builtin::RecipeApi, &[]).await?;
            rec.subject(Subject::helper(
                "recipe-api",
                format!(
                    "the lab's built-in recipe-api ×2 (pids {}, {}), started for this experiment (lab.toml has no recipe-api of your own)",
                    a.pid, b.pid
                ),
            ));
            Ok((a, b, Some("/health".into())))
        }
    }
}

/// The requests the proxy sent `server` so far (`stot`).
async fn sent_to(ctx: &Ctx, addr: &str, server: &str) -> anyhow::Result<u64> {
    let rows = stats_rows(ctx, addr).await?;
    Ok(server_row(&rows, server)
        .and_then(|r| r.get("stot"))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0))
}

pub(super) fn pause<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let (a, b, health_path) = two_producers(ctx, rec).await?;
        let (interval, timeout, fall, rise) = (200u64, 150u64, 2u32, 2u32);
        let servers = vec![
            super::super::scenario::host_port(&a.base).to_owned(),
            super::super::scenario::host_port(&b.base).to_owned(),
        ];
        let mut f = frontend("recipes", &servers);
        f.check = Some(Check {
            path: Some(health_path.clone().unwrap_or_else(|| "/recipes/42".into())),
            interval_ms: interval,
            timeout_ms: timeout,
            rise,
            fall,
        });
        f.stats_uri = Some(STATS_URI.into());
        if health_path.is_none() {
            rec.note(
                "your recipe-api has no http health check in lab.toml, so the proxy probes GET /recipes/42: a paused process still accepts TCP connections (the kernel answers), so only an HTTP probe sees it frozen",
            );
        }
        let proxy = start(ctx, rec, f, "haproxy/load-balance.cfg").await?;
        let addr = proxy.addrs[0].clone();
        let victim = "recipes-2";

        let load = light_load(ctx, &addr);
        tokio::time::sleep(Duration::from_millis(300)).await; // some traffic before the pause
        b.signal(Signal::SIGSTOP)?;
        let paused = Instant::now();
        let out_limit = Duration::from_millis((interval + timeout) * u64::from(fall + 1))
            + Duration::from_secs(1);
        let out =
            status_until(ctx, &addr, victim, out_limit * 3, |s| s.starts_with("DOWN")).await?;
        match out {
            Some(t) => {
                rec.figure(
                    "paused instance out of rotation after",
                    t.as_secs_f64() * 1e3,
                    "ms",
                );
                rec.check(
                    "the paused instance fails its health check and leaves the rotation within fall × (interval + timeout) (+ slack)",
                    t <= out_limit,
                    format!(
                        "{:.0} ms (fall {fall} × ({interval} + {timeout}) ms; limit {} ms)",
                        t.as_secs_f64() * 1e3,
                        out_limit.as_millis()
                    ),
                );
            }
            None => {
                rec.check(
                    "the paused instance leaves the rotation",
                    false,
                    "still UP in the stats while frozen".to_string(),
                );
            }
        }
        // While it is out, the proxy sends it nothing and the other instance answers.
        let before = sent_to(ctx, &addr, victim).await?;
        let mut answered = 0;
        for _ in 0..10 {
            let (r, _) = ctx.get(&addr, "/recipes/42").await?;
            answered += usize::from(r.status == 200);
        }
        let after = sent_to(ctx, &addr, victim).await?;
        rec.check(
            "while it is paused, requests are answered by the other instance and none is sent to it",
            answered == 10 && after == before,
            format!("{answered} of 10 answered; {} sent to the paused one", after - before),
        );
        let held = paused.elapsed();
        b.signal(Signal::SIGCONT)?;
        rec.figure("paused for", held.as_secs_f64() * 1e3, "ms");
        let back_limit =
            Duration::from_millis(interval * u64::from(rise + 1)) + Duration::from_secs(1);
        let back = status_until(ctx, &addr, victim, back_limit * 3, |s| s == "UP").await?;
        record_return(rec, "resumed", back, back_limit, rise, interval);
        let resumed_at = sent_to(ctx, &addr, victim).await?;
        let asked = Instant::now();
        let mut serves_again = false;
        while !serves_again && asked.elapsed() < Duration::from_secs(5) {
            let _ = ctx.get(&addr, "/recipes/42").await?;
            serves_again = sent_to(ctx, &addr, victim).await? > resumed_at;
        }
        rec.check(
            "the resumed instance is sent requests again",
            serves_again,
            format!("stot of {victim} grew after resume: {serves_again}"),
        );
        load.stop.store(true, SeqCst);
        let (ok, failed, _) = load.task.await?;
        rec.figure(
            "requests during the experiment",
            (ok + failed) as f64,
            "count",
        );
        rec.figure("failed requests (errors seen)", failed as f64, "count");
        if ctx.proxy_engine == ProxyEngine::Builtin && failed > 0 {
            rec.note(format!(
                "{failed} of {} requests failed: those sent to the instance before its health check failed waited for the proxy's timeout",
                ok + failed
            ));
        }
        drop(proxy); // before the servers, so none waits on the proxy's keep-alive connections
        drop((a, b));
        Ok(())
    })
}

/// How many requests `fault-alert` sends while the fault lasts.
const FAULTED: usize = 40;

pub(super) fn fault_alert<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        use super::hub::{
            LOG_WAIT, add_rule, check_resolves, expect_fires, prefix_glob, rule_window, search,
            until,
        };
        let hub = ctx.hub()?;
        let (edges, edged) = super::super::edges::edged_consumers(ctx)?;
        // The alert is on StatsD counters: a consumer ch4.metrics found counting, when it ran.
        let counting: Vec<String> = ctx
            .memo
            .lock()
            .ok()
            .and_then(|m| m.statsd.clone())
            .unwrap_or_default()
            .into_iter()
            .map(|(svc, _)| svc)
            .collect();
        let c = edged
            .iter()
            .find(|c| counting.contains(&c.service))
            .unwrap_or(&edged[0]);
        let producer = c.target.clone().expect("found by its target");
        rec.subject(c.subject());
        if let Some(p) = ctx.endpoints.iter().find(|e| e.service == producer) {
            rec.subject(p.subject());
        }
        let web = c.base()?;
        let prefix = prefix_glob(c);
        let target = format!("sumSeries(stats_counts.{prefix}.inbound.response_code.5*)");
        let window_s = rule_window(hub);
        let threshold = 3.0;
        let rule = add_rule(
            ctx,
            rec,
            hub,
            "ch4.fault-alert",
            &target,
            threshold,
            window_s,
        )
        .await?;

        // What `lab fault status PRODUCER 500 -p 50%` does.
        let fault = lab_edges::EdgeFault {
            kind: lab_edges::EdgeKind::Status { code: 500 },
            direction: lab_edges::Direction::Downstream,
            probability: 0.5,
        };
        let id = super::super::edges::inject(
            edges,
            rec,
            &producer,
            fault.clone(),
            Duration::from_secs(120),
            &format!("lab fault status {producer} 500 -p 50%"),
        )
        .await?;
        // Requests with a trace of our own each, so the failed ones' traces can be asked for.
        let t0 = Instant::now();
        let mut failed_traces = Vec::new();
        for _ in 0..FAULTED {
            let trace = format!("{:016x}", fastrand::u64(1..));
            let span = format!("{:016x}", fastrand::u64(1..));
            let headers = [
                ("x-b3-traceid", trace.as_str()),
                ("x-b3-spanid", span.as_str()),
                ("x-b3-sampled", "1"),
            ];
            let r = ctx
                .client
                .request(
                    hyper::Method::GET,
                    &format!("{web}/"),
                    &headers,
                    None,
                    ctx.timeout,
                )
                .await?;
            if !r.status.is_success() {
                failed_traces.push(trace);
            }
        }
        let failed = failed_traces.len();
        // Binomial(40, 0.5): mean 20, sd 3.2; ±4 sd.
        rec.figure(
            "requests failed while the fault lasted",
            failed as f64,
            "count",
        );
        rec.check(
            format!("about half of {FAULTED} requests fail while its upstream answers 500 at 50%"),
            (7..=33).contains(&failed),
            format!("{failed} of {FAULTED} were not 2xx"),
        );
        rec.hint(format!(
            "{} must answer an error when {producer} answers 500, as the book's consumer does (got throws, the route answers 500)",
            c.service
        ));
        expect_fires(
            ctx,
            rec,
            hub,
            &rule,
            &format!("`{target} > {threshold}` fires"),
            t0,
        )
        .await?;

        // A failed request's trace holds the edge's span, tagged with the fault.
        let label = fault.kind.label();
        let tagged = until(LOG_WAIT, || async {
            for trace in &failed_traces {
                let url = format!("http://{}/api/v2/trace/{trace}", hub.zipkin);
                let Ok(r) = ctx.client.get(&url, ctx.timeout).await else {
                    continue;
                };
                if r.status != 200 {
                    continue;
                }
                let spans = r.json().unwrap_or_default();
                let spans = spans.as_array().cloned().unwrap_or_default();
                let hit = spans
                    .iter()
                    .any(|s| s["tags"]["lab.fault"] == label.as_str());
                if hit {
                    let services: Vec<String> = super::hub::span_services(&spans);
                    return Ok(Some((trace.clone(), services)));
                }
            }
            Ok(None)
        })
        .await?;
        match &tagged {
            Some((trace, services)) => {
                rec.check(
                    format!("a failed request's trace carries the fault (lab.fault={label})"),
                    true,
                    format!(
                        "trace {trace}: spans of {}",
                        super::super::scenario::list(services)
                    ),
                );
            }
            None => {
                // A consumer that sends no spans at all has no trace to tag: ch4.tracing's
                // part, not this one's.
                let mut traced = false;
                for trace in &failed_traces {
                    let url = format!("http://{}/api/v2/trace/{trace}", hub.zipkin);
                    if let Ok(r) = ctx.client.get(&url, ctx.timeout).await {
                        traced |= r.status == 200
                            && r.json()
                                .ok()
                                .and_then(|v| v.as_array().map(|a| !a.is_empty()))
                                == Some(true);
                    }
                }
                if traced {
                    rec.check(
                        format!("a failed request's trace carries the fault (lab.fault={label})"),
                        false,
                        format!(
                            "no trace of the {failed} failed requests has the edge's span: does {} pass its B3 headers on to {producer}?",
                            c.service
                        ),
                    );
                } else {
                    rec.note(format!(
                        "{} sends no spans, so no trace of a failed request could carry the fault's tag (ch4.tracing is about tracing)",
                        c.service
                    ));
                }
            }
        }

        // The fault is in the logs.
        let query = format!("type:fault and fault_id:{id}");
        let injected = until(LOG_WAIT, || async {
            let docs = search(ctx, hub, &query, "10m").await?;
            Ok(docs.iter().any(|d| d["action"] == "injected").then_some(()))
        })
        .await?;
        rec.check(
            "the fault's injection is a log document (type:fault)",
            injected.is_some(),
            format!("query `{query}`"),
        );

        // Cleared: everything answers again and the alert resolves.
        super::super::edges::clear(edges, &id).await?;
        let mut ok_after = 0;
        for _ in 0..10 {
            let (r, _) = ctx.get(&web, "/").await?;
            ok_after += usize::from(r.status.is_success());
        }
        rec.check(
            "after `lab fault clear`, every request answers again",
            ok_after == 10,
            format!("{ok_after} of 10 were 2xx"),
        );
        check_resolves(ctx, rec, hub, &rule, window_s).await?;
        let cleared = until(LOG_WAIT, || async {
            let docs = search(ctx, hub, &query, "10m").await?;
            Ok(docs
                .iter()
                .any(|d| d["action"] == "cleared by lab check")
                .then_some(()))
        })
        .await?;
        rec.check(
            "its end is a log document too",
            cleared.is_some(),
            format!("query `{query}`"),
        );
        Ok(())
    })
}
