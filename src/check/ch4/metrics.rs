//! Metrics with Graphite, StatsD, and Grafana: the book's counters and timers arrive, and
//! add up to what was sent.

use super::super::scenario::{BoxFut, Ctx, Record};
use super::hub::*;
use std::time::{Duration, Instant};

pub(super) fn metrics<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        const OK: usize = 20;
        const FAILED: usize = 5;
        let hub = ctx.hub()?;
        let consumers = ctx.require_consumers()?;
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        };
        let from = now() - 1;
        let mut emitting = 0;
        let mut found = Vec::new();
        let mut settle_needed = true;
        for c in consumers {
            let prefix = prefix_glob(c);
            let web = c.base()?;
            // The aggregate keys both the book's consumer and ours emit.
            let c200 = format!("sumSeries(stats_counts.{prefix}.inbound.response_code.200)");
            let c500 = format!("sumSeries(stats_counts.{prefix}.inbound.response_code.500)");
            // Requests made just before may still sit in a StatsD buffer or the hub's open
            // interval: wait until the counters hold still for one flush interval.
            let settle = Instant::now();
            let quiet = hub.flush + Duration::from_millis(1500);
            let mut before = (
                graphite_sum(ctx, hub, &c200, from).await?,
                graphite_sum(ctx, hub, &c500, from).await?,
            );
            for _ in 0..if settle_needed { 5 } else { 0 } {
                tokio::time::sleep(quiet).await;
                let now_sums = (
                    graphite_sum(ctx, hub, &c200, from).await?,
                    graphite_sum(ctx, hub, &c500, from).await?,
                );
                if now_sums == before {
                    break;
                }
                before = now_sums;
            }
            let (before_200, before_500) = before;
            let t0 = Instant::now();
            for _ in 0..OK {
                let (r, _) = ctx.get(&web, "/").await?;
                anyhow::ensure!(
                    r.status == 200,
                    "{}: GET / answered {}",
                    c.service,
                    r.status
                );
            }
            for _ in 0..FAILED {
                let _ = ctx.get(&web, "/error").await?;
            }
            // statsd-client flushes within 1 s, the hub every flush interval.
            // A consumer that sends nothing has moved nothing one flush (+ statsd-client's
            // second) later: no need to wait for the whole bound.
            let wait = hub.flush * 2 + Duration::from_secs(3);
            let silent_after = hub.flush + Duration::from_millis(2500);
            let counted = until(wait, || async {
                let a = graphite_sum(ctx, hub, &c200, from).await? - before_200;
                let b = graphite_sum(ctx, hub, &c500, from).await? - before_500;
                let done = (a >= OK as f64 && b >= FAILED as f64)
                    || (a == 0.0 && b == 0.0 && t0.elapsed() >= silent_after);
                Ok(done.then_some((a, b)))
            })
            .await?;
            let (a, b) = match counted {
                Some(x) => x,
                None => (
                    graphite_sum(ctx, hub, &c200, from).await? - before_200,
                    graphite_sum(ctx, hub, &c500, from).await? - before_500,
                ),
            };
            settle_needed = !(a == 0.0 && b == 0.0);
            if a == 0.0 && b == 0.0 {
                rec.note(format!(
                    "{} moved no StatsD counter under {prefix}.inbound.response_code",
                    c.service
                ));
                continue;
            }
            emitting += 1;
            found.push((c.service.clone(), prefix.clone()));
            let svc = &c.service;
            rec.subject(c.subject());
            rec.figure(
                format!("{svc} counters settled after"),
                settle.elapsed().as_secs_f64() * 1e3,
                "ms",
            );
            rec.figure(
                format!("{svc} visible in Graphite after"),
                t0.elapsed().as_secs_f64() * 1e3,
                "ms",
            );
            rec.expect(
                format!("{svc}: stats_counts.{prefix}.inbound.response_code.200 grew by {OK}"),
                a == OK as f64,
                format!("{OK} (one per GET /)"),
                format!("grew by {a}"),
            );
            rec.hint("count `inbound.response_code.<status>` once per request (statsd-client's express middleware does)");
            rec.expect(
                format!("{svc}: stats_counts.{prefix}.inbound.response_code.500 grew by {FAILED}"),
                b == FAILED as f64,
                format!("{FAILED} (one per GET /error)"),
                format!("grew by {b}"),
            );
            // Timers per route where the consumer knows its routes (GET_root), else under
            // unknown_express_route (the book's consumer, fastify under middie): any route.
            let timer = graphite_sum(
                ctx,
                hub,
                &format!("sumSeries(stats.timers.{prefix}.inbound.response_time.*.count)"),
                from,
            )
            .await?;
            rec.expect(
                format!("{svc}: the inbound response-time timer counted every request"),
                timer >= OK as f64,
                format!(
                    "at least {OK} in stats.timers.{prefix}.inbound.response_time.<route>.count"
                ),
                format!("timer count {timer}"),
            );
            let upper = graphite_sum(
                ctx,
                hub,
                &format!("maxSeries(stats.timers.{prefix}.inbound.response_time.*.upper_90)"),
                from,
            )
            .await?;
            rec.figure(
                format!("{svc} GET / upper_90 (sum over intervals)"),
                upper,
                "ms",
            );
            let outbound = graphite_sum(
                ctx,
                hub,
                &format!("sumSeries(stats_counts.{prefix}.outbound.*.request-count)"),
                from,
            )
            .await?;
            rec.expect(
                format!("{svc}: outbound request-count counted the calls to the producer"),
                outbound >= OK as f64,
                format!("at least {OK} in stats_counts.{prefix}.outbound.<upstream>.request-count"),
                format!("outbound calls counted: {outbound}"),
            );
            rec.hint("around each call to TARGET: increment `outbound.<upstream>.request-count` and time `outbound.<upstream>.request-time`");
        }
        if let Ok(mut m) = ctx.memo.lock() {
            m.statsd = Some(found);
        }
        if emitting == 0 {
            return Err(super::super::scenario::not_applicable(
                format!(
                    "no consumer sent StatsD metrics to the hub{}",
                    statsd_note(ctx)
                ),
                "a consumer that counts as the book's web-api/consumer-http-metrics.js does (StatsD to localhost:8125, prefix web-api)",
            ));
        }
        Ok(())
    })
}
