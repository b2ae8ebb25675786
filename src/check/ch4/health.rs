//! Health Checks and Alerting with Cabot: the book's three health states, and a rule that fires
//! and resolves.

use super::super::scenario::{BoxFut, Ctx, Record};
use super::hub::*;
use crate::config::model::Builtin;
use std::time::{Duration, Instant};

pub(super) fn health<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let mut redis = super::super::deps::Redis::start().await?;
        let mut pg = super::super::deps::Postgres::start().await?;
        let (r_addr, pg_url) = (redis.addr(), pg.url());
        let svc = super::super::spawn::builtin(
            Builtin::RecipeApi,
            &[
                ("HEALTH_REDIS", r_addr.as_str()),
                ("HEALTH_POSTGRES", pg_url.as_str()),
            ],
        )
        .await?;
        rec.subject(super::super::scenario::Subject::helper(
            "recipe-api",
            format!(
                "the lab's built-in recipe-api (pid {}) with the scenario's own redis-server ({r_addr}) and PostgreSQL behind it, started for this experiment: it stops and starts them, so your services are not involved",
                svc.pid
            ),
        ));
        let base = svc.base.clone();
        let steps: [(&str, (u16, &str)); 4] = [
            ("both dependencies up", (200, "OK")),
            ("Redis (optional) stopped", (200, "DEGRADED")),
            ("PostgreSQL (required) stopped too", (500, "DOWN")),
            ("both back", (200, "OK")),
        ];
        for (i, (what, want)) in steps.into_iter().enumerate() {
            match i {
                1 => redis.stop(),
                2 => pg.stop(),
                3 => {
                    redis.resume().await?;
                    pg.resume().await?;
                }
                _ => {}
            }
            let (ok, seen, took) = health_until(ctx, &base, want).await?;
            rec.check(
                format!("{what}: /health answers {} {}", want.0, want.1),
                ok,
                format!("saw {seen}"),
            );
            if i > 0 {
                rec.figure(
                    format!("{} after: {what}", want.1),
                    took.as_secs_f64() * 1e3,
                    "ms",
                );
            }
        }
        drop(svc);
        Ok(())
    })
}

pub(super) fn alerting<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        const HAMMER: usize = 20;
        const THRESHOLD: f64 = 5.0;
        let hub = ctx.hub()?;
        let consumers = ctx.require_consumers()?;
        // The first consumer whose requests move its response-code counters (as ch4.metrics
        // found, when it ran before; else found here).
        let known = ctx.memo.lock().ok().and_then(|m| m.statsd.clone());
        let mut chosen = None;
        match known {
            Some(list) => {
                chosen = list.first().and_then(|(svc, prefix)| {
                    consumers
                        .iter()
                        .find(|c| &c.service == svc)
                        .map(|c| (*c, prefix.clone()))
                });
            }
            None => {
                for c in &consumers {
                    let prefix = prefix_glob(c);
                    let key = format!("sumSeries(stats_counts.{prefix}.inbound.response_code.200)");
                    let from = std::time::SystemTime::now()
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(0, |d| d.as_secs() as i64)
                        - 1;
                    let before = graphite_sum(ctx, hub, &key, from).await?;
                    for _ in 0..3 {
                        let _ = ctx.get(&c.base()?, "/").await?;
                    }
                    let moved = until(hub.flush + Duration::from_millis(2500), || async {
                        Ok((graphite_sum(ctx, hub, &key, from).await? > before).then_some(()))
                    })
                    .await?;
                    if moved.is_some() {
                        chosen = Some((*c, prefix));
                        break;
                    }
                }
            }
        }
        let Some((c, prefix)) = chosen else {
            return Err(super::super::scenario::not_applicable(
                format!(
                    "no consumer's response codes reach the hub as StatsD counters{}",
                    statsd_note(ctx)
                ),
                "a consumer that counts as the book's web-api/consumer-http-metrics.js does (StatsD to localhost:8125, prefix web-api)",
            ));
        };
        rec.subject(c.subject());
        let web = c.base()?;
        // The scenario's own rule, added over the hub's API, said to be the check's, and
        // removed after whatever happens.
        // Two flushes and two evaluations at least, so a burst is never between them.
        let window_s = rule_window(hub);
        let target = format!("sumSeries(stats_counts.{prefix}.inbound.response_code.500)");
        let rule = add_rule(ctx, rec, hub, "ch4.alerting", &target, THRESHOLD, window_s).await?;
        let name = rule.name.clone();
        let t0 = Instant::now();
        for _ in 0..HAMMER {
            let _ = ctx.get(&web, "/error").await?;
        }
        expect_fires(
            ctx,
            rec,
            hub,
            &rule,
            &format!("{HAMMER}×/error fires `{target} > {THRESHOLD}`"),
            t0,
        )
        .await?;
        rec.hint("GET /error must answer 500 and count inbound.response_code.500");
        check_resolves(ctx, rec, hub, &rule, window_s).await?;
        // The hub writes its alert lines through the same store as every log, so the
        // resolution may land a moment after the status flips: wait for it, bounded.
        let query = format!("app:hub and type:alert and fields.rule:\"{name}\"");
        let states_now = || async {
            let events = search(ctx, hub, &query, "10m").await?;
            anyhow::Ok(
                events
                    .iter()
                    .rev()
                    .filter_map(|e| e["fields"]["state"].as_str().map(str::to_owned))
                    .collect::<Vec<String>>(),
            )
        };
        let states = match until(LOG_WAIT, || async {
            let st = states_now().await?;
            Ok((st.len() >= 2).then_some(st))
        })
        .await?
        {
            Some(st) => st,
            None => states_now().await?,
        };
        rec.expect(
            "the firing and the resolution are both in the log store",
            states == ["FIRING", "resolved"],
            "FIRING, resolved",
            super::super::scenario::list(&states),
        );
        Ok(())
    })
}
