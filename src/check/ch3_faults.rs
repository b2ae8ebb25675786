//! Chapter 3 with faults on purpose (issue 18): a slow upstream, through the running lab's
//! fault edges, against the consumer lab.toml declares (the learner's or ours).

use std::time::{Duration, Instant};

use lab_edges::{Direction, EdgeFault, EdgeKind};

use super::ch3_proxy::{frontend, start};
use super::edges::{clear, edged_consumers, inject};
use super::scenario::{BoxFut, Ctx, Record, host_port};

/// The proxy's `timeout server` in the experiment.
const PROXY_SERVER_TIMEOUT: Duration = Duration::from_millis(1000);

/// One GET of `url` with a client limit of `limit`: (status, how long), status `None` when it
/// did not answer within the limit.
async fn timed_get(ctx: &Ctx, url: &str, limit: Duration) -> (Option<u16>, Duration) {
    let t0 = Instant::now();
    let r = ctx.client.get(url, limit).await;
    (r.ok().map(|r| r.status.as_u16()), t0.elapsed())
}

pub fn slow_upstream<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let (edges, consumers) = edged_consumers(ctx)?;
        let c = consumers[0];
        let producer = c.target.clone().expect("an edged consumer has a target");
        rec.subject(c.subject());
        if let Some(p) = ctx.endpoints.iter().find(|e| e.service == producer) {
            rec.subject(p.subject());
        }
        let own = c.upstream_timeout;
        // Longer than the consumer's own timeout and the proxy's, so both must act.
        let delay = own
            .unwrap_or(Duration::from_secs(2))
            .max(PROXY_SERVER_TIMEOUT)
            + Duration::from_millis(1500);
        let fault = EdgeFault {
            kind: EdgeKind::Latency {
                ms: delay.as_millis() as u64,
                jitter_ms: 0,
            },
            direction: Direction::Downstream,
            probability: 1.0,
        };
        let id = inject(
            edges,
            rec,
            &producer,
            fault,
            delay * 4 + Duration::from_secs(10),
            &format!("lab fault latency {producer} {}ms", delay.as_millis()),
        )
        .await?;
        let web = format!("{}/", c.base()?);
        let limit = delay + Duration::from_secs(3);

        // Straight to the consumer.
        let (status, took) = timed_get(ctx, &web, limit).await;
        rec.figure(
            "the consumer answered after",
            took.as_secs_f64() * 1e3,
            "ms",
        );
        rec.check(
            format!(
                "nothing hangs: {} answers while its upstream takes {} ms",
                c.service,
                delay.as_millis()
            ),
            status.is_some(),
            match status {
                Some(s) => format!("status {s} after {:.0} ms", took.as_secs_f64() * 1e3),
                None => format!("no answer within {} ms", limit.as_millis()),
            },
        );
        match own {
            Some(t) => {
                let in_time = took >= t.saturating_sub(Duration::from_millis(100))
                    && took <= t + Duration::from_millis(700);
                rec.check(
                    format!(
                        "its upstream timeout ({} ms, as configured) answers an error, not the slow answer",
                        t.as_millis()
                    ),
                    in_time && status.is_some_and(|s| s >= 500),
                    format!(
                        "status {} after {:.0} ms",
                        status.map_or("-".to_owned(), |s| s.to_string()),
                        took.as_secs_f64() * 1e3
                    ),
                );
                rec.hint("UPSTREAM_TIMEOUT_MS in its env is how long it may wait for its TARGET");
            }
            None if took >= delay => rec.note(format!(
                "{} waited {:.0} ms for the slow upstream: it has no upstream timeout shorter than {} ms (the book's consumer sets none; a timeout keeps one slow dependency from holding every request)",
                c.service,
                took.as_secs_f64() * 1e3,
                delay.as_millis()
            )),
            None => rec.note(format!(
                "{} answered {} after {:.0} ms, before the slow upstream did: it has a timeout of its own",
                c.service,
                status.map_or("-".to_owned(), |s| s.to_string()),
                took.as_secs_f64() * 1e3
            )),
        }

        // Through a proxy whose `timeout server` is shorter than the wait.
        let mut f = frontend("web", &[host_port(&c.base()?).to_owned()]);
        f.server_timeout_ms = PROXY_SERVER_TIMEOUT.as_millis() as u64;
        f.retries = 0;
        let proxy = start(
            ctx,
            rec,
            f,
            "haproxy/load-balance.cfg with `timeout server 1s`",
        )
        .await?;
        let via = format!("http://{}/", proxy.addrs[0]);
        let (status, took) = timed_get(ctx, &via, limit).await;
        rec.figure("the proxy answered after", took.as_secs_f64() * 1e3, "ms");
        let t = PROXY_SERVER_TIMEOUT;
        // When the consumer's own timeout is shorter, its error comes first, through the proxy.
        let first = own.filter(|o| *o < t);
        match first {
            None => rec.check(
                format!("the proxy answers 504 after its server timeout ({} ms)", t.as_millis()),
                status == Some(504)
                    && took >= t.saturating_sub(Duration::from_millis(100))
                    && took <= t + Duration::from_millis(700),
                format!(
                    "status {} after {:.0} ms",
                    status.map_or("-".to_owned(), |s| s.to_string()),
                    took.as_secs_f64() * 1e3
                ),
            ),
            Some(o) => rec.check(
                format!(
                    "{}'s own timeout ({} ms) answers before the proxy's ({} ms), through the proxy",
                    c.service,
                    o.as_millis(),
                    t.as_millis()
                ),
                status.is_some_and(|s| s >= 500) && took < t,
                format!(
                    "status {} after {:.0} ms",
                    status.map_or("-".to_owned(), |s| s.to_string()),
                    took.as_secs_f64() * 1e3
                ),
            ),
        };
        drop(proxy);

        // Cleared: fast again.
        clear(edges, &id).await?;
        let (status, took) = timed_get(ctx, &web, limit).await;
        rec.check(
            "after `lab fault clear` it answers at its usual speed",
            status == Some(200) && took < Duration::from_millis(500),
            format!(
                "status {} after {:.0} ms",
                status.map_or("-".to_owned(), |s| s.to_string()),
                took.as_secs_f64() * 1e3
            ),
        );
        Ok(())
    })
}

/// How many requests `ch3.retry` fails at the edge, and sends.
const FAIL_FIRST: u64 = 4;
const RETRY_REQUESTS: usize = 20;

/// The hits of fault `id` as the edges count them (`GET /faults`).
async fn hits_of(control: &str, id: &str) -> Option<u64> {
    let (control, id) = (control.to_owned(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        lab_edges::faults_now(&control)?
            .into_iter()
            .find(|(f, _)| *f == id)
            .map(|(_, hits)| hits)
    })
    .await
    .ok()
    .flatten()
}

pub fn retry<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let edges = ctx.edges.as_ref().ok_or_else(|| {
            super::scenario::not_applicable(
                "the lab has no fault edges, so nothing can fail what reaches its servers",
                "`[faults] edges = true` in lab.toml (or `lab up --faults`), then `lab down` and `lab up`",
            )
        })?;
        // A producer with two instances behind edges: the proxy's two servers.
        let producer = ctx
            .rest_producers()
            .into_iter()
            .find(|p| edges.instances.iter().filter(|(_, s, _)| *s == p.service).count() >= 2)
            .ok_or_else(|| {
                super::scenario::not_applicable(
                    "no REST producer has two instances behind fault edges (retries need another server)",
                    "`replicas = 2` on your recipe-api, consumed by a service's TARGET or a proxy frontend",
                )
            })?;
        rec.subject(producer.subject());
        let servers: Vec<&(String, String, String)> = edges
            .instances
            .iter()
            .filter(|(_, s, _)| *s == producer.service)
            .take(2)
            .collect();
        let victim = servers[0].0.clone();
        let mut f = frontend(
            "recipes",
            &servers
                .iter()
                .map(|(_, _, l)| l.clone())
                .collect::<Vec<_>>(),
        );
        f.retries = 2;
        f.stats_uri = Some(super::ch3_proxy::STATS_URI.into());
        let proxy = start(ctx, rec, f, "haproxy/load-balance.cfg with `retries 2`").await?;
        let addr = proxy.addrs[0].clone();
        let fault = EdgeFault {
            kind: EdgeKind::FailFirst {
                n: FAIL_FIRST,
                code: lab_edges::fault::CLOSE,
            },
            direction: Direction::Downstream,
            probability: 1.0,
        };
        let id = inject(
            edges,
            rec,
            &victim,
            fault,
            Duration::from_secs(120),
            &format!("lab fault fail-first {victim} {FAIL_FIRST} --close"),
        )
        .await?;
        let mut failed = 0;
        for _ in 0..RETRY_REQUESTS {
            let (r, _) = ctx.get(&addr, "/recipes/42").await?;
            failed += usize::from(r.status != 200);
        }
        let hits = hits_of(&edges.control, &id).await.unwrap_or(0);
        let rows = super::ch3_proxy::stats_rows(ctx, &addr).await?;
        let retried: u64 = rows
            .iter()
            .filter(|r| {
                r.get("svname")
                    .is_some_and(|s| s != "FRONTEND" && s != "BACKEND")
            })
            .filter_map(|r| r.get("wretr").and_then(|v| v.parse::<u64>().ok()))
            .sum();
        clear(edges, &id).await?;
        drop(proxy);
        rec.figure(
            "requests closed unanswered at the edge",
            hits as f64,
            "count",
        );
        rec.figure("retries the proxy counted", retried as f64, "count");
        rec.figure(
            "requests that failed for the client",
            failed as f64,
            "count",
        );
        rec.check(
            format!("the fault closed the first {FAIL_FIRST} requests to {victim} with no answer"),
            hits == FAIL_FIRST,
            format!("{hits} hit at the edge"),
        );
        rec.check(
            format!(
                "the {} proxy retries those idempotent GETs (`retries 2`): none of {RETRY_REQUESTS} fails for the client",
                ctx.proxy_engine.as_str()
            ),
            failed == 0,
            format!("{failed} failed; {retried} retries in the proxy's stats"),
        );
        rec.check(
            "the proxy's stats count the retries",
            retried >= hits,
            format!("wretr {retried}"),
        );
        Ok(())
    })
}
