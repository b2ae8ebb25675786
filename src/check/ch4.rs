//! Chapter 4, "Observability": the services' logs, metrics and traces, read back from the lab's
//! hub over its wire APIs (log search, Graphite render, Zipkin), as a person would find them in
//! Kibana, Grafana and Zipkin. They hold a learner's own services to the book's instrumentation.

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{BoxFut, Ctx, Endpoint, HubInfo, Record, Scenario};
use crate::config::model::Builtin;

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

/// The `app` names a consumer's documents may carry: its own name, and its role's (the book's
/// logging helper says `app: "web-api"` whatever the service is called).
fn app_names(e: &Endpoint) -> Vec<String> {
    let mut v = vec![e.service.clone()];
    if let Some(r) = e.role
        && r.as_str() != e.service
    {
        v.push(r.as_str().to_owned());
    }
    v
}

/// KQL: `app` is one of `names`.
fn app_query(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("app:\"{n}\"")).collect();
    format!("({})", q.join(" or "))
}

/// Where the hub takes logs, for notes.
fn logstash_note(ctx: &Ctx) -> String {
    ctx.hub.as_ref().map_or_else(String::new, |h| {
        format!(" (the hub's HTTP API is {})", h.http)
    })
}

fn environment<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let hub = ctx.hub()?;
        // Each consumer's documents are told apart by a user agent of its own (the book's
        // consumers all say `app: "web-api"`); other services by their `app` alone.
        let run = format!("{:012x}", fastrand::u64(..));
        for c in ctx.playing(Builtin::WebApi) {
            let ua = format!("lab-check-{run}-{}", c.service);
            let _ = ctx
                .client
                .request(
                    hyper::Method::GET,
                    &format!("{}/", c.base()?),
                    &[("user-agent", ua.as_str())],
                    None,
                    ctx.timeout,
                )
                .await;
        }
        let mut any = false;
        let mut waited = false;
        for e in ctx.endpoints.iter().filter(|e| !e.addrs.is_empty()) {
            let consumer = e.role == Some(Builtin::WebApi);
            let q = if consumer {
                format!("fields.ua:\"lab-check-{run}-{}\"", e.service)
            } else {
                // What the service sent itself (not its output lines, which the hub labels).
                format!(
                    "app:\"{}\" and not tags:_jsonparsefailure and not type:output",
                    e.service
                )
            };
            // UDP logs take a moment to be searchable: wait once, for the first consumer.
            let wait = if consumer && !waited {
                LOG_WAIT
            } else {
                Duration::ZERO
            };
            waited |= consumer;
            let docs = until(wait, || async {
                Ok(Some(search_newest(ctx, hub, &q, "1d", 20).await?).filter(|d| !d.is_empty()))
            })
            .await?
            .unwrap_or_default();
            if docs.is_empty() {
                rec.note(format!("{} sent no log document to LOGSTASH", e.service));
                continue;
            }
            any = true;
            rec.subject(e.subject());
            let envs: std::collections::BTreeSet<String> = docs
                .iter()
                .map(|d| d["environment"].as_str().unwrap_or("(none)").to_owned())
                .collect();
            rec.expect(
                format!("{}'s logs say environment \"{}\"", e.service, e.environment),
                envs.len() == 1 && envs.contains(&e.environment),
                format!(
                    "environment: \"{}\" (NODE_ENV) in every document",
                    e.environment
                ),
                format!(
                    "{} documents, environments seen: {}",
                    docs.len(),
                    super::list(&envs)
                ),
            );
            rec.hint(
                "set `environment` in each document from process.env.NODE_ENV, which the lab sets",
            );
        }
        if !any {
            return Err(super::not_applicable(
                format!(
                    "no service of the lab sent a log document to LOGSTASH{}",
                    logstash_note(ctx)
                ),
                "a consumer that logs as the book's web-api/consumer-http-logs.js does (UDP JSON to process.env.LOGSTASH)",
            ));
        }
        Ok(())
    })
}

fn logs<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let hub = ctx.hub()?;
        let consumers = ctx.require_consumers()?;
        // A user agent no one else sends marks each consumer's requests.
        let run = format!("{:012x}", fastrand::u64(..));
        let t0 = Instant::now();
        let mut sent = Vec::new();
        for c in &consumers {
            let marker = format!("lab-check-{run}-{}", c.service);
            let base = c.base()?;
            let ok = ctx
                .client
                .request(
                    hyper::Method::GET,
                    &format!("{base}/"),
                    &[("user-agent", marker.as_str())],
                    None,
                    ctx.timeout,
                )
                .await?;
            let failed = ctx
                .client
                .request(
                    hyper::Method::GET,
                    &format!("{base}/error"),
                    &[("user-agent", marker.as_str())],
                    None,
                    ctx.timeout,
                )
                .await?;
            sent.push((*c, marker, ok.status.as_u16(), failed.status.as_u16()));
        }
        // Which consumers log: their request-incoming carries the marker.
        let found = until(LOG_WAIT, || async {
            let docs = search(
                ctx,
                hub,
                &format!("type:request-incoming and fields.ua:lab-check-{run}-*"),
                "5m",
            )
            .await?;
            let all = sent
                .iter()
                .all(|(_, m, _, _)| docs.iter().any(|d| d["fields"]["ua"] == m.as_str()));
            Ok(all.then(|| docs.clone()))
        })
        .await?;
        let docs = match found {
            Some(d) => d,
            None => {
                search(
                    ctx,
                    hub,
                    &format!("type:request-incoming and fields.ua:lab-check-{run}-*"),
                    "5m",
                )
                .await?
            }
        };
        rec.figure(
            "log searchable after",
            t0.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        let mut checked = 0;
        for (c, marker, ok_status, failed_status) in &sent {
            let svc = &c.service;
            let Some(incoming) = docs.iter().find(|d| d["fields"]["ua"] == marker.as_str()) else {
                rec.note(format!(
                    "{svc} sent no request-incoming document carrying the request's user agent"
                ));
                continue;
            };
            checked += 1;
            rec.subject(c.subject());
            rec.expect(
                format!("{svc}: GET / answers 200 and /error 500"),
                *ok_status == 200 && *failed_status == 500,
                "200 and 500",
                format!("{ok_status} and {failed_status}"),
            );
            rec.hint("GET /error throws (the book's consumer answers 500 {\"error\": \"oh no\"})");
            let f = &incoming["fields"];
            rec.expect(
                format!("{svc}: request-incoming found by `type:request-incoming and fields.ua:…`"),
                f["method"] == "GET" && f["path"].is_string(),
                "fields: path, method, ip, ua",
                incoming.to_string(),
            );
            let apps = app_query(&app_names(c));
            let outgoing =
                search(ctx, hub, &format!("type:request-outgoing and {apps}"), "1m").await?;
            rec.expect(
                format!("{svc}: request-outgoing names the upstream (fields.svc) and its URL (fields.url)"),
                outgoing.iter().any(|d| d["fields"]["svc"].is_string() && d["fields"]["url"].is_string()),
                "fields: url, svc",
                format!("{} request-outgoing documents in the last minute", outgoing.len()),
            );
            rec.hint("log `request-outgoing` with {url, svc} before calling TARGET");
            let q_fail = format!(
                "type:request-failure and fields.path:\"/error\" and severity:error and {apps}"
            );
            let failure = until(LOG_WAIT, || async {
                Ok(search(ctx, hub, &q_fail, "1m").await?.into_iter().next())
            })
            .await?;
            rec.expect(
                format!("{svc}: request-failure for /error carries a stack"),
                failure
                    .as_ref()
                    .is_some_and(|d| d["fields"]["stack"].as_str().is_some_and(|s| !s.is_empty())),
                "severity error, fields: stack, path, method",
                failure.map_or("not found".into(), |d| d["fields"].to_string()),
            );
            rec.hint("log `request-failure` with severity error and {stack, path, method} in the error handler");
        }
        if checked == 0 {
            let any = search(
                ctx,
                hub,
                &format!(
                    "{} and not type:output",
                    app_query(
                        &consumers
                            .iter()
                            .flat_map(|c| app_names(c))
                            .collect::<Vec<_>>()
                    )
                ),
                "1m",
            )
            .await?;
            if any.is_empty() {
                return Err(super::not_applicable(
                    format!(
                        "no consumer sent a log document to LOGSTASH{}",
                        logstash_note(ctx)
                    ),
                    "a consumer that logs as the book's web-api/consumer-http-logs.js does (UDP JSON to process.env.LOGSTASH)",
                ));
            }
            rec.expect(
                "a consumer's request-incoming carries the request's user agent (fields.ua)",
                false,
                "type request-incoming, fields: path, method, ip, ua",
                format!("{} documents from the consumers in the last minute, none a request-incoming with this user agent", any.len()),
            );
            rec.hint("log `request-incoming` with {path, method, ip, ua: req.headers['user-agent']} for each request");
        }
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

/// The StatsD prefixes a consumer's keys may carry: its own name (the lab's services), and
/// its role's (the book's consumer says `web-api`).
fn prefix_glob(e: &Endpoint) -> String {
    let names = app_names(e);
    if names.len() == 1 {
        names[0].clone()
    } else {
        format!("{{{}}}", names.join(","))
    }
}

fn metrics<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
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
            return Err(super::not_applicable(
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

/// Where the hub takes StatsD, for notes (the book's metrics consumer sends to localhost:8125).
fn statsd_note(ctx: &Ctx) -> String {
    match ctx.hub.as_ref().and_then(|h| h.statsd_port) {
        Some(8125) | None => String::new(),
        Some(p) => format!(
            "; its StatsD is on port {p}, and the book's consumer-http-metrics.js sends to localhost:8125 whatever STATSD says"
        ),
    }
}

/// The spans of a trace, merged by id into nodes: a node is one span id (under Zipkin's
/// shared-span model, a client half and a server half share it), with the services that
/// reported it and the parent any half names.
struct Node {
    id: String,
    parent: Option<String>,
    services: std::collections::BTreeSet<String>,
    names: Vec<String>,
}

fn nodes(spans: &[Value]) -> Vec<Node> {
    let mut out: Vec<Node> = Vec::new();
    for s in spans {
        let Some(id) = s["id"].as_str() else { continue };
        let svc = s["localEndpoint"]["serviceName"]
            .as_str()
            .unwrap_or("?")
            .to_owned();
        let name = s["name"].as_str().unwrap_or("?").to_owned();
        let parent = s["parentId"].as_str().map(str::to_owned);
        match out.iter_mut().find(|n| n.id == id) {
            Some(n) => {
                n.services.insert(svc);
                n.names.push(name);
                if n.parent.is_none() {
                    n.parent = parent;
                }
            }
            None => out.push(Node {
                id: id.to_owned(),
                parent,
                services: [svc].into(),
                names: vec![name],
            }),
        }
    }
    out
}

/// One trace is one tree: exactly one root (the caller's span itself under the shared-span
/// model, or the span whose parent is the caller's span, one span per hop), every other node's
/// parent in the trace, no cycle. `Ok` says which model it saw; `Err` what breaks the tree.
pub fn one_tree(spans: &[Value], caller_span: &str) -> Result<String, String> {
    let ns = nodes(spans);
    if ns.is_empty() {
        return Err("no spans".into());
    }
    // Shared spans: the node that is the caller's span id itself is the root (the spans it
    // calls name it as parent). One span per hop: the root names the caller's span as parent.
    let shared = ns.iter().any(|n| n.id == caller_span);
    let is_root = |n: &Node| {
        if shared {
            n.id == caller_span
        } else {
            n.parent.as_deref() == Some(caller_span)
        }
    };
    let roots: Vec<&Node> = ns.iter().filter(|n| is_root(n)).collect();
    if roots.len() != 1 {
        return Err(format!(
            "{} spans take the caller's span {caller_span} as their own id or parent (expected 1): {}",
            roots.len(),
            super::list(roots.iter().map(|n| format!(
                "{} of {}",
                n.names.join("/"),
                super::list(&n.services)
            )))
        ));
    }
    let orphans: Vec<String> = ns
        .iter()
        .filter(|n| !is_root(n))
        .filter(|n| {
            n.parent
                .as_ref()
                .is_none_or(|p| !ns.iter().any(|x| &x.id == p))
        })
        .map(|n| {
            format!(
                "{} of {} (parentId {})",
                n.names.join("/"),
                super::list(&n.services),
                n.parent.as_deref().unwrap_or("none")
            )
        })
        .collect();
    if !orphans.is_empty() {
        return Err(format!(
            "spans whose parent is not in the trace: {}",
            orphans.join("; ")
        ));
    }
    // No cycle: every node reaches the root.
    for n in &ns {
        let mut cur = n;
        for _ in 0..=ns.len() {
            if is_root(cur) {
                break;
            }
            let p = cur.parent.as_deref().unwrap_or("");
            cur = ns.iter().find(|x| x.id == p).expect("checked above");
        }
        if !is_root(cur) {
            return Err(format!("the parents of {} go round in a cycle", n.id));
        }
    }
    Ok(if shared || ns.iter().any(|n| n.services.len() > 1) {
        "shared spans (B3 server span = caller's span id)".into()
    } else {
        "one span per hop".into()
    })
}

fn tracing<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let hub = ctx.hub()?;
        let consumers = ctx.require_consumers()?;
        // Our own trace id (sampled) per consumer, so each trace is found by id, as a caller's
        // would be.
        let mut sent = Vec::new();
        let t0 = Instant::now();
        for c in &consumers {
            let trace_id = format!("{:016x}", fastrand::u64(1..));
            let root = format!("{:016x}", fastrand::u64(1..));
            let headers = [
                ("x-b3-traceid", trace_id.as_str()),
                ("x-b3-spanid", root.as_str()),
                ("x-b3-sampled", "1"),
            ];
            let r = ctx
                .client
                .request(
                    hyper::Method::GET,
                    &format!("{}/", c.base()?),
                    &headers,
                    None,
                    ctx.timeout,
                )
                .await?;
            sent.push((*c, trace_id, root, r.status.as_u16()));
        }
        let fetch = |trace_id: String| async move {
            let url = format!("http://{}/api/v2/trace/{trace_id}", hub.zipkin);
            let r = ctx.client.get(&url, ctx.timeout).await?;
            anyhow::Ok(if r.status == 200 {
                r.json()?.as_array().cloned().unwrap_or_default()
            } else {
                Vec::new()
            })
        };
        // Until every trace spans two services (or the wait is over).
        let _ = until(Duration::from_secs(10), || async {
            for (_, id, _, _) in &sent {
                let spans = fetch(id.clone()).await?;
                let services: std::collections::BTreeSet<&str> = spans
                    .iter()
                    .filter_map(|s| s["localEndpoint"]["serviceName"].as_str())
                    .collect();
                // A consumer that traces nothing has sent nothing after a few seconds.
                let silent = spans.is_empty() && t0.elapsed() > Duration::from_secs(3);
                if services.len() < 2 && !silent {
                    return Ok(None);
                }
            }
            Ok(Some(()))
        })
        .await?;
        rec.figure(
            "traces complete after",
            t0.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        let mut traced = 0;
        for (c, trace_id, root, status) in &sent {
            let spans = fetch(trace_id.clone()).await?;
            let svc = &c.service;
            if spans.is_empty() {
                rec.note(format!("{svc} sent no Zipkin span for trace {trace_id}"));
                continue;
            }
            traced += 1;
            rec.subject(c.subject());
            rec.expect(
                format!("{svc}: GET / with B3 headers answers 200"),
                *status == 200,
                "200",
                format!("status {status}"),
            );
            let services: std::collections::BTreeSet<String> = spans
                .iter()
                .filter_map(|s| {
                    s["localEndpoint"]["serviceName"]
                        .as_str()
                        .map(str::to_owned)
                })
                .collect();
            rec.figure(
                format!("{svc} spans in the trace"),
                spans.len() as f64,
                "spans",
            );
            rec.expect(
                format!("{svc}: the trace spans the consumer and the producer"),
                services.len() >= 2,
                "spans of 2 services or more",
                format!("{} spans of {}", spans.len(), super::list(&services)),
            );
            rec.hint("send the B3 headers (X-B3-TraceId, X-B3-SpanId, X-B3-Sampled) on the call to TARGET, and report spans to ZIPKIN on both sides");
            let tree = one_tree(&spans, root);
            rec.expect(
                format!("{svc}: one tree from the caller's span, every parent inside the trace"),
                tree.is_ok(),
                "a root span taking the caller's X-B3-SpanId (as its id or parentId), every other span's parent in the trace",
                match &tree {
                    Ok(model) => format!("{} spans, {model}", spans.len()),
                    Err(e) => e.clone(),
                },
            );
            rec.hint("the server span takes the incoming X-B3-SpanId (shared span) or names it as parentId; the outgoing call's span id travels on as X-B3-SpanId");
        }
        if traced == 0 {
            return Err(super::not_applicable(
                "no consumer sent Zipkin spans to the hub",
                "consumers and producers that trace as the book's web-api/consumer-http-zipkin.js and recipe-api/producer-http-zipkin.js do (spans to process.env.ZIPKIN)",
            ));
        }
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
        rec.subject(super::Subject::helper(
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

fn alerting<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
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
            return Err(super::not_applicable(
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
        let name = format!("lab-check-{:08x}", fastrand::u32(..));
        // Two flushes and two evaluations at least, so a burst is never between them.
        let window_s = (hub.flush.as_secs() * 2)
            .max(hub.alert_interval.as_secs() * 2)
            .max(3) as i64;
        let target = format!("sumSeries(stats_counts.{prefix}.inbound.response_code.500)");
        let rule = serde_json::json!({
            "name": name, "kind": "metric",
            "target": target,
            "check": ">", "value": THRESHOLD, "window_s": window_s, "for_ms": 0, "importance": "ERROR",
            "origin": "lab check ch4.alerting",
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
        rec.cleanups.push(super::Cleanup::Delete {
            url: format!("{url}/{name}"),
            what: format!("the alert rule {name}"),
        });
        rec.subject(super::Subject::helper(
            "alert rule",
            format!(
                "the scenario's own rule {name} on {target}, added to the hub and removed after"
            ),
        ));
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
        rec.expect(
            format!(
                "{HAMMER}×/error fires `{target} > {THRESHOLD}` within {}s",
                fire_within.as_secs()
            ),
            fired.is_some(),
            "status firing",
            fired.map_or_else(|| "never fired".to_owned(), |(_, d)| d),
        );
        rec.hint("GET /error must answer 500 and count inbound.response_code.500");
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
        rec.expect(
            "the firing and the resolution are both in the log store",
            states == ["FIRING", "resolved"],
            "FIRING, resolved",
            super::list(&states),
        );
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::one_tree;
    use serde_json::json;

    fn span(id: &str, parent: Option<&str>, svc: &str, name: &str) -> serde_json::Value {
        let mut s =
            json!({"traceId": "t", "id": id, "name": name, "localEndpoint": {"serviceName": svc}});
        if let Some(p) = parent {
            s["parentId"] = json!(p);
        }
        s
    }

    #[test]
    fn a_shared_span_trace_is_one_tree() {
        // zipkin-lite: web-api's server span takes the caller's span id S, no parent; its
        // client span C (parent S) is reused by recipe-api as its server span id.
        let spans = [
            span("s", None, "web-api", "get_root"),
            span("c", Some("s"), "web-api", "get"),
            span("c", Some("s"), "recipe-api", "get_recipe"),
        ];
        assert_eq!(
            one_tree(&spans, "s").unwrap(),
            "shared spans (B3 server span = caller's span id)"
        );
        // The producer's half without a parent (no X-B3-ParentSpanId forwarded) is still the
        // client's node.
        let spans = [
            span("s", None, "web-api", "get_root"),
            span("c", Some("s"), "web-api", "get"),
            span("c", None, "recipe-api", "get_recipe"),
        ];
        assert!(one_tree(&spans, "s").is_ok());
    }

    #[test]
    fn a_span_per_hop_trace_is_one_tree_and_orphans_are_named() {
        let spans = [
            span("a", Some("s"), "web-api", "get_root"),
            span("b", Some("a"), "web-api", "get"),
            span("d", Some("b"), "recipe-api", "get_recipe"),
        ];
        assert_eq!(one_tree(&spans, "s").unwrap(), "one span per hop");
        let broken = [
            span("a", Some("s"), "web-api", "get_root"),
            span("d", Some("zz"), "recipe-api", "get_recipe"),
        ];
        let e = one_tree(&broken, "s").unwrap_err();
        assert!(e.contains("get_recipe of recipe-api (parentId zz)"), "{e}");
        assert!(one_tree(&[], "s").is_err());
    }
}
