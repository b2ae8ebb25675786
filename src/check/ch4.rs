//! Chapter 4, "Observability": the services' logs, metrics and traces, read back from the lab's
//! hub over its wire APIs (log search, Graphite render, Zipkin), as a person would find them in
//! Kibana, Grafana and Zipkin. They hold a learner's own services to the book's instrumentation.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BoxFut, Ctx, HubInfo, Record, Scenario};
use crate::config::raw::Builtin;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ch4.environment",
            chapter: 4,
            section: "Environments",
            summary: "every service's log documents carry the environment lab.toml gives it (NODE_ENV)",
            run: environment,
            proxy: false,
        },
        Scenario {
            name: "ch4.logs",
            chapter: 4,
            section: "Logging with ELK",
            summary: "a request yields request-incoming and request-outgoing logs, /error a request-failure with a stack, all found by query",
            run: logs,
            proxy: false,
        },
        Scenario {
            name: "ch4.metrics",
            chapter: 4,
            section: "Metrics with Graphite, StatsD, and Grafana",
            summary: "N requests and M failures move web-api's StatsD counters and timers by exactly N and M",
            run: metrics,
            proxy: false,
        },
        Scenario {
            name: "ch4.health",
            chapter: 4,
            section: "Health Checks",
            summary: "recipe-api's /health goes OK → DEGRADED (Redis stopped) → DOWN (PostgreSQL stopped) → OK, probed for real",
            run: health,
            proxy: false,
        },
        Scenario {
            name: "ch4.alerting",
            chapter: 4,
            section: "Alerting with Cabot",
            summary: "a rule on web-api's 500s fires within its window while /error is hammered, and resolves after",
            run: alerting,
            proxy: false,
        },
        Scenario {
            name: "ch4.tracing",
            chapter: 4,
            section: "Distributed Request Tracing with Zipkin",
            summary: "one request is one trace of ≥3 spans across both services, each span's parent the one that called it",
            run: tracing,
            proxy: false,
        },
    ]
}

/// Log documents matching a KQL query in the last `since`.
async fn search(ctx: &Ctx, hub: &HubInfo, query: &str, since: &str) -> anyhow::Result<Vec<Value>> {
    search_newest(ctx, hub, query, since, 1000).await
}

/// The newest `limit` log documents matching a KQL query in the last `since`.
async fn search_newest(
    ctx: &Ctx,
    hub: &HubInfo,
    query: &str,
    since: &str,
    limit: usize,
) -> anyhow::Result<Vec<Value>> {
    let url = format!(
        "http://{}/api/logs?query={}&since={since}&limit={limit}",
        hub.http,
        crate::url_encode(query)
    );
    let r = ctx.client.get(&url, ctx.timeout).await?;
    anyhow::ensure!(
        r.status == 200,
        "the hub's log search answered {}: {}",
        r.status,
        r.text()
    );
    let v = r.json()?;
    Ok(v["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|h| h["_source"].clone())
        .collect())
}

/// Poll `f` every 200 ms until it yields, or give up after `within`.
async fn until<T, F: std::future::Future<Output = anyhow::Result<Option<T>>>>(
    within: Duration,
    mut f: impl FnMut() -> F,
) -> anyhow::Result<Option<T>> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = f().await? {
            return Ok(Some(v));
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long UDP logs may take to be searchable (send, hub parse, store commit).
const LOG_WAIT: Duration = Duration::from_secs(5);

fn environment<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let hub = ctx.hub()?;
        // Every service logs at least its `listen` line; a request makes sure of web-api.
        let web = ctx.first(Builtin::WebApi)?;
        let _ = ctx.get(&web, "/").await?;
        // The consumer logs (the book's web-api); others may (a learner's may, ours trace only).
        let consumer = ctx.role(Builtin::WebApi)?.service.clone();
        for e in &ctx.endpoints {
            // The newest documents: the store keeps earlier runs of the lab too.
            // What the service sent itself (not its output lines, which the hub labels).
            let q = format!(
                "app:\"{}\" and not tags:_jsonparsefailure and not type:output",
                e.service
            );
            let wait = if e.service == consumer {
                LOG_WAIT
            } else {
                Duration::ZERO
            };
            let docs = until(wait, || async {
                Ok(Some(search_newest(ctx, hub, &q, "1d", 20).await?).filter(|d| !d.is_empty()))
            })
            .await?
            .unwrap_or_default();
            if docs.is_empty() && e.service != consumer {
                rec.figure(
                    format!("log documents from {} (it sends none)", e.service),
                    0.0,
                    "documents",
                );
                continue;
            }
            let envs: std::collections::BTreeSet<String> = docs
                .iter()
                .map(|d| d["environment"].as_str().unwrap_or("(none)").to_owned())
                .collect();
            rec.check(
                format!("{}'s logs say environment {:?}", e.service, e.environment),
                !docs.is_empty() && envs.len() == 1 && envs.contains(&e.environment),
                format!("{} documents, environments seen: {envs:?}", docs.len()),
            );
        }
        Ok(())
    })
}

fn logs<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let hub = ctx.hub()?;
        let web = ctx.first(Builtin::WebApi)?;
        // A user agent no one else sends marks this scenario's requests.
        let marker = format!("lab-check-{:016x}", fastrand::u64(..));
        let t0 = Instant::now();
        let sent = ctx
            .client
            .request(
                hyper::Method::GET,
                &format!("{web}/"),
                &[("user-agent", marker.as_str())],
                None,
                ctx.timeout,
            )
            .await?;
        rec.check(
            "GET / answers 200",
            sent.status == 200,
            format!("status {}", sent.status),
        );
        let failed = ctx
            .client
            .request(
                hyper::Method::GET,
                &format!("{web}/error"),
                &[("user-agent", marker.as_str())],
                None,
                ctx.timeout,
            )
            .await?;
        rec.check(
            "GET /error answers 500",
            failed.status == 500,
            format!("status {}", failed.status),
        );

        let q_in =
            format!("type:request-incoming and fields.ua:\"{marker}\" and fields.path:\"/\"");
        let incoming = until(LOG_WAIT, || async {
            Ok(search(ctx, hub, &q_in, "5m").await?.into_iter().next())
        })
        .await?;
        rec.figure(
            "log searchable after",
            t0.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        rec.check(
            "request-incoming found by `type:request-incoming and fields.ua:…`",
            incoming
                .as_ref()
                .is_some_and(|d| d["fields"]["method"] == "GET" && d["severity"] == "info"),
            incoming.map_or("not found".into(), |d| d.to_string()),
        );
        let outgoing = search(ctx, hub, "type:request-outgoing and app:web-api", "1m").await?;
        rec.check(
            "request-outgoing names the upstream (`fields.svc`) and its URL",
            outgoing
                .iter()
                .any(|d| d["fields"]["svc"].is_string() && d["fields"]["url"].is_string()),
            format!(
                "{} request-outgoing documents in the last minute",
                outgoing.len()
            ),
        );
        let q_fail = "type:request-failure and fields.path:\"/error\" and severity:error";
        let failure = until(LOG_WAIT, || async {
            Ok(search(ctx, hub, q_fail, "1m").await?.into_iter().next())
        })
        .await?;
        rec.check(
            "request-failure for /error carries a stack",
            failure
                .as_ref()
                .is_some_and(|d| d["fields"]["stack"].as_str().is_some_and(|s| !s.is_empty())),
            failure.map_or("not found".into(), |d| d["fields"].to_string()),
        );
        Ok(())
    })
}

/// The sum of a Graphite target's points in the last `minutes`.
async fn graphite_sum(ctx: &Ctx, hub: &HubInfo, target: &str, from: i64) -> anyhow::Result<f64> {
    let url = format!(
        "http://{}/render?target={}&from={from}&format=json",
        hub.http,
        crate::url_encode(target)
    );
    let r = ctx.client.get(&url, ctx.timeout).await?;
    anyhow::ensure!(
        r.status == 200,
        "render answered {}: {}",
        r.status,
        r.text()
    );
    let v = r.json()?;
    Ok(v.as_array()
        .map(|series| {
            series
                .iter()
                .flat_map(|s| s["datapoints"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p[0].as_f64())
                .sum()
        })
        .unwrap_or(0.0))
}

fn metrics<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        const OK: usize = 20;
        const FAILED: usize = 5;
        let hub = ctx.hub()?;
        let web = ctx.first(Builtin::WebApi)?;
        let now = || {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64)
        };
        // Start on a flush boundary's far side, so every request lands in a counted interval.
        let from = now() - 1;
        let route_200 = "stats_counts.web-api.inbound.response_code.GET_root.200";
        let route_500 = "stats_counts.web-api.inbound.response_code.GET_error.500";
        // Requests made just before (other scenarios, people) may still sit in a StatsD buffer or
        // the hub's open interval: wait until the counters hold still for one flush interval,
        // so that what moves them next is only this scenario.
        let settle = Instant::now();
        let quiet = hub.flush + Duration::from_millis(1500);
        let mut before = (
            graphite_sum(ctx, hub, route_200, from).await?,
            graphite_sum(ctx, hub, route_500, from).await?,
        );
        for _ in 0..5 {
            tokio::time::sleep(quiet).await;
            let now_sums = (
                graphite_sum(ctx, hub, route_200, from).await?,
                graphite_sum(ctx, hub, route_500, from).await?,
            );
            if now_sums == before {
                break;
            }
            before = now_sums;
        }
        rec.figure(
            "counters settled after",
            settle.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        let (before_200, before_500) = before;
        let t0 = Instant::now();
        for _ in 0..OK {
            let (r, _) = ctx.get(&web, "/").await?;
            anyhow::ensure!(r.status == 200, "GET / answered {}", r.status);
        }
        for _ in 0..FAILED {
            let _ = ctx.get(&web, "/error").await?;
        }
        // statsd-client flushes within 1 s, the hub every flush interval.
        let wait = hub.flush * 2 + Duration::from_secs(3);
        let counted = until(wait, || async {
            let a = graphite_sum(ctx, hub, route_200, from).await? - before_200;
            let b = graphite_sum(ctx, hub, route_500, from).await? - before_500;
            Ok((a >= OK as f64 && b >= FAILED as f64).then_some((a, b)))
        })
        .await?;
        rec.figure(
            "visible in Graphite after",
            t0.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        let (a, b) = counted.unwrap_or((
            graphite_sum(ctx, hub, route_200, from).await? - before_200,
            graphite_sum(ctx, hub, route_500, from).await? - before_500,
        ));
        rec.check(
            format!("{route_200} grew by {OK}"),
            a == OK as f64,
            format!("grew by {a}"),
        );
        rec.check(
            format!("{route_500} grew by {FAILED}"),
            b == FAILED as f64,
            format!("grew by {b}"),
        );
        let timer = graphite_sum(
            ctx,
            hub,
            "stats.timers.web-api.inbound.response_time.GET_root.count",
            from,
        )
        .await?;
        rec.check(
            "the GET_root response-time timer counted every request",
            timer >= OK as f64,
            format!("timer count {timer}"),
        );
        let upper = graphite_sum(
            ctx,
            hub,
            "maxSeries(stats.timers.web-api.inbound.response_time.GET_root.upper_90)",
            from,
        )
        .await?;
        rec.figure("web-api GET / upper_90 (sum over intervals)", upper, "ms");
        let outbound = graphite_sum(
            ctx,
            hub,
            "stats_counts.web-api.outbound.*.request-count",
            from,
        )
        .await?;
        rec.check(
            "outbound request-count counted the calls to recipe-api",
            outbound >= OK as f64,
            format!("outbound calls counted: {outbound}"),
        );
        Ok(())
    })
}

fn tracing<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let hub = ctx.hub()?;
        let web = ctx.first(Builtin::WebApi)?;
        // Our own trace id (sampled) so the trace is found by id, as a caller's would be.
        let trace_id = format!("{:016x}", fastrand::u64(1..));
        let root = format!("{:016x}", fastrand::u64(1..));
        let headers = [
            ("x-b3-traceid", trace_id.as_str()),
            ("x-b3-spanid", root.as_str()),
            ("x-b3-sampled", "1"),
        ];
        let t0 = Instant::now();
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
        rec.check(
            "GET / with B3 headers answers 200",
            r.status == 200,
            format!("status {}", r.status),
        );
        let url = format!("http://{}/api/v2/trace/{trace_id}", hub.zipkin);
        let spans = until(Duration::from_secs(10), || async {
            let r = ctx.client.get(&url, ctx.timeout).await?;
            let spans = if r.status == 200 {
                r.json()?.as_array().cloned().unwrap_or_default()
            } else {
                Vec::new()
            };
            let services: std::collections::BTreeSet<&str> = spans
                .iter()
                .filter_map(|s| s["localEndpoint"]["serviceName"].as_str())
                .collect();
            Ok((spans.len() >= 3 && services.len() >= 2).then_some(spans.clone()))
        })
        .await?
        .unwrap_or_default();
        rec.figure(
            "trace complete after",
            t0.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        rec.figure("spans in the trace", spans.len() as f64, "spans");
        rec.check(
            "the trace has ≥3 spans",
            spans.len() >= 3,
            format!("{} spans", spans.len()),
        );
        let by_id = |id: &Value| {
            spans
                .iter()
                .find(|s| &s["id"] == id && !s["shared"].as_bool().unwrap_or(false))
        };
        let web_server = spans.iter().find(|s| s["parentId"] == root.as_str());
        rec.check(
            "web-api's server span is the child of the caller's span",
            web_server.is_some(),
            web_server.map_or("no span has the caller's span id as parent".into(), |s| {
                format!("{} ({})", s["name"], s["localEndpoint"]["serviceName"])
            }),
        );
        // Each span other than the first has a parent inside the trace.
        let orphans: Vec<String> = spans
            .iter()
            .filter(|s| s["parentId"] != root.as_str())
            .filter(|s| s["parentId"].is_null() || by_id(&s["parentId"]).is_none())
            .map(|s| format!("{} of {}", s["name"], s["localEndpoint"]["serviceName"]))
            .collect();
        rec.check(
            "every other span's parent is in the trace",
            orphans.is_empty() && !spans.is_empty(),
            format!("orphans: {orphans:?}"),
        );
        let crosses = spans.iter().any(|s| {
            let svc = &s["localEndpoint"]["serviceName"];
            s["parentId"].is_string()
                && by_id(&s["parentId"]).is_some_and(|p| &p["localEndpoint"]["serviceName"] != svc)
        });
        rec.check(
            "a span of one service is the child of a span of the other",
            crosses,
            format!("{} spans", spans.len()),
        );
        Ok(())
    })
}

/// Ask `/health` until it answers `want` (status and body), or give up after 5 s.
async fn health_until(
    ctx: &Ctx,
    base: &str,
    want: (u16, &str),
) -> anyhow::Result<(bool, String, Duration)> {
    let t0 = Instant::now();
    let mut last = String::new();
    while t0.elapsed() < Duration::from_secs(5) {
        match ctx.get(base, "/health").await {
            Ok((r, _)) => {
                let body = r.text();
                last = format!("{} {}", r.status.as_u16(), body.trim());
                if r.status.as_u16() == want.0 && body.trim() == want.1 {
                    return Ok((true, last, t0.elapsed()));
                }
            }
            Err(e) => last = e.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Ok((false, last, t0.elapsed()))
}

fn health<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let mut redis = super::deps::Redis::start().await?;
        let mut pg = super::deps::Postgres::start().await?;
        let (r_addr, pg_url) = (redis.addr(), pg.url());
        let svc = super::spawn::builtin(
            Builtin::RecipeApi,
            &[
                ("HEALTH_REDIS", r_addr.as_str()),
                ("HEALTH_POSTGRES", pg_url.as_str()),
            ],
        )
        .await?;
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

fn alerting<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        const HAMMER: usize = 20;
        const THRESHOLD: f64 = 5.0;
        let hub = ctx.hub()?;
        let web = ctx.first(Builtin::WebApi)?;
        // The scenario's own rule, added over the hub's API (and removed after).
        let name = format!("lab-check-{:08x}", fastrand::u32(..));
        let window_s = (hub.flush.as_secs() * 2).max(3) as i64;
        let rule = serde_json::json!({
            "name": name, "kind": "metric",
            "target": "sumSeries(stats_counts.web-api.inbound.response_code.GET_error.500)",
            "check": ">", "value": THRESHOLD, "window_s": window_s, "for_ms": 0, "importance": "ERROR",
        });
        let url = format!("http://{}/api/alerts", hub.http);
        let r = ctx
            .client
            .request(
                hyper::Method::POST,
                &url,
                &[],
                Some(("application/json", rule.to_string().into())),
                ctx.timeout,
            )
            .await?;
        anyhow::ensure!(
            r.status == 201,
            "the hub refused the rule: {} {}",
            r.status,
            r.text()
        );
        let status_of = || async {
            let v = ctx.client.get(&url, ctx.timeout).await?.json()?;
            let st = v.as_array().and_then(|a| {
                a.iter()
                    .find(|s| s["rule"]["name"] == name.as_str())
                    .cloned()
            });
            anyhow::Ok(st.map(|s| {
                (
                    s["status"].as_str().unwrap_or("?").to_owned(),
                    s["detail"].as_str().unwrap_or("").to_owned(),
                )
            }))
        };
        let result = async {
            let t0 = Instant::now();
            for _ in 0..HAMMER {
                let _ = ctx.get(&web, "/error").await?;
            }
            let fire_within = hub.flush * 2 + hub.alert_interval + Duration::from_secs(5);
            let fired = until(fire_within, || async {
                Ok(status_of().await?.filter(|(s, _)| s == "firing"))
            })
            .await?;
            rec.figure("fired after", t0.elapsed().as_secs_f64() * 1e3, "ms");
            rec.check(
                format!(
                    "{HAMMER}×/error fires `sum of GET_error.500 > {THRESHOLD}` within {}s",
                    fire_within.as_secs()
                ),
                fired.is_some(),
                fired.map_or_else(|| "never fired".to_owned(), |(_, d)| d),
            );
            let t1 = Instant::now();
            let resolve_within = Duration::from_secs(window_s as u64)
                + hub.flush * 2
                + hub.alert_interval
                + Duration::from_secs(5);
            let resolved = until(resolve_within, || async {
                Ok(status_of().await?.filter(|(s, _)| s == "ok"))
            })
            .await?;
            rec.figure("resolved after", t1.elapsed().as_secs_f64() * 1e3, "ms");
            rec.check(
                format!("it resolves once the {window_s}s window holds no more failures"),
                resolved.is_some(),
                resolved.map_or_else(|| "still firing".to_owned(), |(_, d)| d),
            );
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
            rec.check(
                "the firing and the resolution are both in the log store",
                states == ["FIRING", "resolved"],
                format!("{states:?}"),
            );
            anyhow::Ok(())
        }
        .await;
        let _ = ctx
            .client
            .request(
                hyper::Method::DELETE,
                &format!("{url}/{name}"),
                &[],
                None,
                ctx.timeout,
            )
            .await;
        result
    })
}
