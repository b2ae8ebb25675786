//! Chapter 1, "Why Distributed?": the sample application (producer and consumer).

use std::collections::BTreeSet;

use serde_json::json;

use super::contract;
use super::scenario::{BoxFut, Ctx, Record, Scenario, Subject, median_max_ms};
use crate::config::model::Builtin;

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
        let consumers = ctx.require_consumers()?;
        let mut producer_pids = BTreeSet::new();
        let mut consumer_pids = BTreeSet::new();
        for consumer in consumers {
            rec.subject(consumer.subject());
            let p = consumer.calls();
            let mut latencies = Vec::new();
            for base in consumer.bases() {
                let (r, _) = ctx.get(&base, "/").await?;
                let body = r.json().unwrap_or(serde_json::Value::Null);
                rec.expect(
                    format!("{} GET {base}/ answers 200", consumer.service),
                    r.status == 200,
                    "200",
                    format!("status {}", r.status),
                );
                let shape = contract::consumer_answer(p, &body);
                let shape_ok = shape.is_ok();
                rec.expect(
                    format!(
                        "{}: the answer has the book's {} consumer shape with recipe 42",
                        consumer.service,
                        p.as_str()
                    ),
                    shape_ok,
                    contract::consumer_shape(p),
                    match &shape {
                        Ok(_) => body.to_string(),
                        Err(e) => format!("{e}; the body: {body}"),
                    },
                );
                rec.hint(format!(
                    "answer GET / with {} (target_protocol = \"{}\")",
                    contract::consumer_shape(p),
                    p.as_str()
                ));
                if let Ok(a) = shape {
                    let (c, pr) = (a.consumer_pid, a.producer_pid);
                    if c == pr && (ctx.containers || c == 1) {
                        // Each container has its own pid namespace: both are its first process.
                        rec.check(
                            format!("{}: consumer and producer are separate processes", consumer.service),
                            c == 1,
                            format!("consumer_pid {c}, producer_pid {pr}: each is pid 1 of its own container"),
                        );
                    } else {
                        rec.expect(
                            format!("{}: consumer and producer pids differ", consumer.service),
                            c != pr,
                            "two processes",
                            format!("consumer_pid {c}, producer_pid {pr}"),
                        );
                        rec.hint("the consumer reports its own process.pid, the producer_pid comes from the producer's answer");
                    }
                    consumer_pids
                        .insert(super::scenario::answered_by(&r, &["consumer_pid", "pid"]));
                    producer_pids.insert(format!("pid {pr}"));
                }
                for _ in 0..SAMPLES {
                    let (r, took) = ctx.get(&base, "/").await?;
                    if r.status == 200 {
                        latencies.push(took);
                    }
                }
            }
            let (p50, max) = median_max_ms(latencies);
            rec.figure(
                format!(
                    "{} chain latency p50 ({} consumer → producer → consumer)",
                    consumer.service,
                    p.as_str()
                ),
                p50,
                "ms",
            );
            rec.figure(format!("{} chain latency max", consumer.service), max, "ms");
        }
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
        let producers = ctx.rest_producers();
        if producers.is_empty() {
            return Err(super::scenario::not_applicable(
                "no service of role recipe-api answers REST/JSON (`serves` http or https)",
                "`serves = [\"http\"]` on your producer (the default for a `command` producer), or [services.recipe-api] with `builtin = \"recipe-api\"`",
            ));
        }
        for producer in producers {
            rec.subject(producer.subject());
            let base = producer.base()?;
            let svc = &producer.service;
            let (r, took) = ctx.get(&base, "/recipes/1337").await?;
            rec.expect(
                format!("{svc}: GET /recipes/1337 answers 404"),
                r.status == 404,
                "404",
                format!("status {}", r.status),
            );
            let body = r.json().ok();
            rec.expect(
                format!("{svc}: the body is the book's not-found error"),
                body.as_ref() == Some(&json!({"error": "not_found"})),
                "{\"error\":\"not_found\"}",
                r.text(),
            );
            rec.hint(
                "answer any id but 42 with status 404 and the JSON {\"error\": \"not_found\"}",
            );
            rec.figure(format!("{svc} 404 latency"), took.as_secs_f64() * 1e3, "ms");
            // The book's producer answers 404 for a non-numeric id too; any 4xx keeps the contract.
            let (r, _) = ctx.get(&base, "/recipes/abc").await?;
            rec.expect(
                format!("{svc}: GET /recipes/abc is a client error"),
                r.status.is_client_error(),
                "4xx",
                format!("status {}", r.status),
            );
            let (r, _) = ctx.get(&base, "/recipes/42").await?;
            rec.expect(
                format!("{svc}: GET /recipes/42 still answers 200"),
                r.status == 200,
                "200",
                format!("status {}", r.status),
            );
        }
        Ok(())
    })
}

/// The least time one fibonacci should take for the event-loop experiment to show anything.
const FIB_AT_LEAST: std::time::Duration = std::time::Duration::from_millis(250);

/// The largest `/fibonacci/N` the built-in recipe-api computes.
const FIBONACCI_MAX: u64 = 1_000_000;

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
        if took >= at_least || limit * 2 > FIBONACCI_MAX {
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
        rec.subject(Subject::helper(
            "recipe-api",
            format!(
                "the lab's built-in recipe-api ×2, started for this experiment (pids {} with one thread, {} with offload): it compares process models, so your services are not involved",
                blocking.pid, offloaded.pid
            ),
        ));
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
        // Offloaded: the loop stays free, so probes keep answering all along: their median is
        // a small share of the fibonacci, and even the slowest beats the starved one. (A busy
        // machine may delay one probe; the order and the median still show the lesson.)
        rec.check(
            "offload: /health stays responsive during fibonacci",
            f50 < 0.25 * fib_b_ms && fmax < smax && free.len() >= 3,
            format!(
                "/health median {f50:.1} ms, slowest {fmax:.1} ms ({} probes) during a {fib_b_ms:.0} ms fibonacci; {smax:.0} ms on one thread",
                free.len()
            ),
        );
        Ok(())
    })
}
