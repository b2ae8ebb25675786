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
        },
        Scenario {
            name: "ch1.not-found",
            chapter: 1,
            section: "Sample Applications › Producer Service",
            summary: "recipe-api answers an unknown recipe id with 404 {\"error\":\"not_found\"}",
            run: not_found,
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
                (Some(c), Some(p)) => {
                    rec.check(
                        format!("{addr}: consumer and producer pids differ"),
                        c != p,
                        format!("consumer_pid {c}, producer_pid {p}"),
                    );
                    consumer_pids.insert(c);
                    producer_pids.insert(p);
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
