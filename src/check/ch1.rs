//! Chapter 1, "Why Distributed?": the sample application (producer and consumer).

use std::collections::BTreeSet;

use serde_json::json;

use super::{BoxFut, Ctx, Record, Scenario, median_max_ms};
use crate::config::raw::Builtin;

/// Requests per instance when measuring latency: enough for a stable median, quick to run.
const SAMPLES: usize = 20;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ch1.sample-app",
            chapter: 1,
            section: "Sample Applications › Service Relationship",
            summary: "web-api fetches recipe 42 from recipe-api; consumer and producer pids differ",
            run: sample_app,
            proxy: false,
        },
        Scenario {
            name: "ch1.not-found",
            chapter: 1,
            section: "Sample Applications › Producer Service",
            summary: "recipe-api answers an unknown recipe id with 404 {\"error\":\"not_found\"}",
            run: not_found,
            proxy: false,
        },
        Scenario {
            name: "ch1.event-loop",
            chapter: 1,
            section: "The Node.js Event Loop › Event Loop Tips",
            summary: "a long fibonacci starves /health on a one-thread instance; with offload it does not",
            run: event_loop,
            proxy: false,
        },
    ]
}

fn sample_app<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let consumer = ctx.role(Builtin::WebApi)?;
        let mut producer_pids = BTreeSet::new();
        let mut consumer_pids = BTreeSet::new();
        let mut latencies = Vec::new();
        for host in &consumer.addrs {
            let url = format!("{}://{host}", consumer.scheme());
            let addr = &url;
            let (r, _) = ctx.get(addr, "/").await?;
            let body = r.json().unwrap_or(serde_json::Value::Null);
            rec.check(
                format!("GET {addr}/ answers 200"),
                r.status == 200,
                format!("status {}", r.status),
            );
            let cpid = body["consumer_pid"].as_u64();
            let ppid = body["producer_data"]["producer_pid"].as_u64();
            let recipe = &body["producer_data"]["recipe"];
            rec.check(
                format!("{addr}: producer_data.recipe is recipe 42"),
                recipe["id"] == json!(42) && recipe["name"] == json!("Chicken Tikka Masala"),
                format!("recipe id {} name {}", recipe["id"], recipe["name"]),
            );
            match (cpid, ppid) {
                (Some(c), Some(p)) if ctx.containers && c == p => {
                    // Each container has its own pid namespace: both are its first process.
                    rec.check(
                        format!("{addr}: consumer and producer are separate processes"),
                        c == 1,
                        format!(
                            "consumer_pid {c}, producer_pid {p}: each is pid 1 of its own container"
                        ),
                    );
                    consumer_pids.insert(super::answered_by(&r, "consumer_pid"));
                    producer_pids.insert(format!("pid {p}"));
                }
                (Some(c), Some(p)) => {
                    rec.check(
                        format!("{addr}: consumer and producer pids differ"),
                        c != p,
                        format!("consumer_pid {c}, producer_pid {p}"),
                    );
                    consumer_pids.insert(super::answered_by(&r, "consumer_pid"));
                    producer_pids.insert(format!("pid {p}"));
                }
                _ => {
                    rec.check(
                        format!("{addr}: body has consumer_pid and producer_data.producer_pid"),
                        false,
                        body.to_string(),
                    );
                }
            }
            for _ in 0..SAMPLES {
                let (r, took) = ctx.get(addr, "/").await?;
                if r.status == 200 {
                    latencies.push(took);
                }
            }
        }
        let (p50, max) = median_max_ms(latencies);
        rec.figure(
            "chain latency p50 (consumer → producer → consumer)",
            p50,
            "ms",
        );
        rec.figure("chain latency max", max, "ms");
        rec.figure(
            "consumer processes answering",
            consumer_pids.len() as f64,
            "count",
        );
        rec.figure(
            "producer processes seen",
            producer_pids.len() as f64,
            "count",
        );
        Ok(())
    })
}

fn not_found<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producer = ctx.role(Builtin::RecipeApi)?;
        let addr = producer
            .addrs
            .first()
            .ok_or_else(|| anyhow::anyhow!("recipe-api has no instance"))?;
        let (r, took) = ctx.get(addr, "/recipes/1337").await?;
        rec.check(
            "GET /recipes/1337 answers 404",
            r.status == 404,
            format!("status {}", r.status),
        );
        let body = r.json().ok();
        rec.check(
            "body is {\"error\":\"not_found\"}",
            body.as_ref() == Some(&json!({"error": "not_found"})),
            r.text(),
        );
        rec.figure("404 latency", took.as_secs_f64() * 1e3, "ms");
        // The book's producer answers 404 for a non-numeric id too; any 4xx keeps the contract.
        let (r, _) = ctx.get(addr, "/recipes/abc").await?;
        rec.check(
            "GET /recipes/abc is a client error (4xx)",
            r.status.is_client_error(),
            format!("status {}", r.status),
        );
        let (r, _) = ctx.get(addr, "/recipes/42").await?;
        rec.check(
            "GET /recipes/42 still answers 200",
            r.status == 200,
            format!("status {}", r.status),
        );
        Ok(())
    })
}

/// The least time one fibonacci should take for the event-loop experiment to show anything.
const FIB_AT_LEAST: std::time::Duration = std::time::Duration::from_millis(250);

/// Find a fibonacci limit that keeps `base`'s CPU busy for at least `at_least` (doubling from
/// a small one: the cost grows with the square of the limit, so few steps are needed).
pub async fn calibrate_fibonacci_for(
    ctx: &Ctx,
    base: &str,
    at_least: std::time::Duration,
) -> anyhow::Result<(u64, std::time::Duration)> {
    let mut limit = 1_000;
    loop {
        let (r, took) = ctx.get(base, &format!("/fibonacci/{limit}")).await?;
        anyhow::ensure!(
            r.status == 200,
            "GET /fibonacci/{limit}: status {}",
            r.status
        );
        if took >= at_least || limit * 2 > lab_recipe_api::fibonacci::MAX_LIMIT {
            return Ok((limit, took));
        }
        limit *= 2;
    }
}

/// While one `/fibonacci/{limit}` runs on `base`, probe `/health` back to back: the latencies
/// seen and how long the fibonacci took.
async fn health_during_fibonacci(
    ctx: &Ctx,
    base: &str,
    limit: u64,
) -> anyhow::Result<(Vec<std::time::Duration>, std::time::Duration)> {
    let client = ctx.client.clone();
    let url = format!("{base}/fibonacci/{limit}");
    let timeout = ctx.timeout * 6;
    let fib = tokio::spawn(async move {
        let t0 = std::time::Instant::now();
        let r = client.get(&url, timeout).await;
        (r, t0.elapsed())
    });
    let mut lat = Vec::new();
    while !fib.is_finished() {
        let (r, took) = ctx.get(base, "/health").await?;
        anyhow::ensure!(r.status == 200, "GET /health: status {}", r.status);
        lat.push(took);
        // Probe pacing (not a readiness wait): about a hundred probes a second.
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (r, took) = fib.await?;
    let r = r.map_err(|e| anyhow::anyhow!("GET /fibonacci/{limit}: {e}"))?;
    anyhow::ensure!(
        r.status == 200,
        "GET /fibonacci/{limit}: status {}",
        r.status
    );
    Ok((lat, took))
}

fn event_loop<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let blocking = super::spawn::builtin(Builtin::RecipeApi, &[("LAB_THREADS", "1")]).await?;
        let offloaded = super::spawn::builtin(
            Builtin::RecipeApi,
            &[("LAB_THREADS", "1"), ("LAB_OFFLOAD", "1")],
        )
        .await?;
        let (limit, _) = calibrate_fibonacci_for(ctx, &offloaded.base, FIB_AT_LEAST).await?;
        rec.figure("fibonacci limit", limit as f64, "n");

        let (starved, fib_a) = health_during_fibonacci(ctx, &blocking.base, limit).await?;
        let (free, fib_b) = health_during_fibonacci(ctx, &offloaded.base, limit).await?;
        let (s50, smax) = median_max_ms(starved.clone());
        let (f50, fmax) = median_max_ms(free.clone());
        let fib_a_ms = fib_a.as_secs_f64() * 1e3;
        let fib_b_ms = fib_b.as_secs_f64() * 1e3;
        rec.figure("fibonacci duration, one thread", fib_a_ms, "ms");
        rec.figure("fibonacci duration, offloaded", fib_b_ms, "ms");
        rec.figure("/health max during it, one thread (starved)", smax, "ms");
        rec.figure("/health p50 during it, one thread", s50, "ms");
        rec.figure("/health max during it, offloaded", fmax, "ms");
        rec.figure("/health p50 during it, offloaded", f50, "ms");
        rec.figure(
            "/health probes answered, one thread",
            starved.len() as f64,
            "count",
        );
        rec.figure(
            "/health probes answered, offloaded",
            free.len() as f64,
            "count",
        );
        // Starved: the probe sent while fibonacci runs waits for most of it.
        rec.check(
            "one thread: /health waits while fibonacci holds the event loop",
            smax >= 0.5 * fib_a_ms,
            format!("slowest /health {smax:.1} ms during a {fib_a_ms:.0} ms fibonacci"),
        );
        // Offloaded: the loop stays free; probes keep answering quickly all along.
        rec.check(
            "offload: /health stays responsive during fibonacci",
            fmax < 0.25 * fib_b_ms && free.len() >= 3,
            format!(
                "slowest /health {fmax:.1} ms ({} probes) during a {fib_b_ms:.0} ms fibonacci",
                free.len()
            ),
        );
        Ok(())
    })
}
