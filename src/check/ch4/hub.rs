//! What chapter 4's scenarios ask of the hub: log searches, waits with a deadline, Graphite
//! sums, health states, and the names a service's documents and metrics go under.

use super::super::scenario::{Ctx, Endpoint, HubInfo};
use serde_json::Value;
use std::time::{Duration, Instant};

/// Log documents matching a KQL query in the last `since`.
pub(super) async fn search(
    ctx: &Ctx,
    hub: &HubInfo,
    query: &str,
    since: &str,
) -> anyhow::Result<Vec<Value>> {
    search_newest(ctx, hub, query, since, 1000).await
}

/// The newest `limit` log documents matching a KQL query in the last `since`.
pub(super) async fn search_newest(
    ctx: &Ctx,
    hub: &HubInfo,
    query: &str,
    since: &str,
    limit: usize,
) -> anyhow::Result<Vec<Value>> {
    let v = hub_json(
        ctx,
        "the hub's log search",
        format!(
            "http://{}/api/logs?query={}&since={since}&limit={limit}",
            hub.http,
            crate::check::wire::url_encode(query)
        ),
    )
    .await?;
    Ok(v["hits"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|h| h["_source"].clone())
        .collect())
}

/// Poll `f` every 200 ms until it yields, or give up after `within`.
pub(super) async fn until<T, F: std::future::Future<Output = anyhow::Result<Option<T>>>>(
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
pub(super) const LOG_WAIT: Duration = Duration::from_secs(5);

/// The `app` names a consumer's documents may carry: its own name, and its role's (the book's
/// logging helper says `app: "web-api"` whatever the service is called).
pub(super) fn app_names(e: &Endpoint) -> Vec<String> {
    let mut v = vec![e.service.clone()];
    if let Some(r) = e.role
        && r.as_str() != e.service
    {
        v.push(r.as_str().to_owned());
    }
    v
}

/// KQL: `app` is one of `names`.
pub(super) fn app_query(names: &[String]) -> String {
    let q: Vec<String> = names.iter().map(|n| format!("app:\"{n}\"")).collect();
    format!("({})", q.join(" or "))
}

/// Where the hub takes logs, for notes.
pub(super) fn logstash_note(ctx: &Ctx) -> String {
    ctx.hub.as_ref().map_or_else(String::new, |h| {
        format!(" (the hub's HTTP API is {})", h.http)
    })
}

/// The sum of a Graphite target's points in the last `minutes`.
pub(super) async fn graphite_sum(
    ctx: &Ctx,
    hub: &HubInfo,
    target: &str,
    from: i64,
) -> anyhow::Result<f64> {
    let v = hub_json(
        ctx,
        "render",
        format!(
            "http://{}/render?target={}&from={from}&format=json",
            hub.http,
            crate::check::wire::url_encode(target)
        ),
    )
    .await?;
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
pub(super) fn prefix_glob(e: &Endpoint) -> String {
    let names = app_names(e);
    if names.len() == 1 {
        names[0].clone()
    } else {
        format!("{{{}}}", names.join(","))
    }
}

/// Where the hub takes StatsD, for notes (the book's metrics consumer sends to localhost:8125).
pub(super) fn statsd_note(ctx: &Ctx) -> String {
    match ctx.hub.as_ref().and_then(|h| h.statsd_port) {
        Some(8125) | None => String::new(),
        Some(p) => format!(
            "; its StatsD is on port {p}, and the book's consumer-http-metrics.js sends to localhost:8125 whatever STATSD says"
        ),
    }
}

/// Ask `/health` until it answers `want` (status and body), or give up after 5 s.
pub(super) async fn health_until(
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

/// A JSON answer of the hub's HTTP API (`what` names it in the error of any other status).
async fn hub_json(ctx: &Ctx, what: &str, url: String) -> anyhow::Result<Value> {
    let r = ctx.client.get(&url, ctx.timeout).await?;
    anyhow::ensure!(
        r.status == 200,
        "{what} answered {}: {}",
        r.status,
        r.text()
    );
    Ok(r.json()?)
}

/// A run-time alert rule a scenario added to the hub (removed by its cleanup).
pub(super) struct Rule {
    pub(super) name: String,
    /// The hub's `/api/alerts`.
    pub(super) url: String,
}

/// The window of a scenario's rule: two flushes and two evaluations at least, so a burst is
/// never between them.
pub(super) fn rule_window(hub: &HubInfo) -> i64 {
    (hub.flush.as_secs() * 2)
        .max(hub.alert_interval.as_secs() * 2)
        .max(3) as i64
}

/// Add the scenario's own rule `target > threshold` over `window_s` to the hub, named as the
/// check's, a subject of the report and removed after whatever happens.
pub(super) async fn add_rule(
    ctx: &Ctx,
    rec: &mut super::super::scenario::Record,
    hub: &HubInfo,
    scenario: &str,
    target: &str,
    threshold: f64,
    window_s: i64,
) -> anyhow::Result<Rule> {
    let name = format!("lab-check-{:08x}", fastrand::u32(..));
    let rule = serde_json::json!({
        "name": name, "kind": "metric",
        "target": target,
        "check": ">", "value": threshold, "window_s": window_s, "for_ms": 0, "importance": "ERROR",
        "origin": format!("lab check {scenario}"),
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
    rec.cleanups.push(super::super::scenario::Cleanup::Delete {
        url: format!("{url}/{name}"),
        what: format!("the alert rule {name}"),
    });
    rec.subject(super::super::scenario::Subject::helper(
        "alert rule",
        format!("the scenario's own rule {name} on {target}, added to the hub and removed after"),
    ));
    Ok(Rule { name, url })
}

/// A rule's status (`ok`, `firing`) and detail, as the hub reports it now.
pub(super) async fn rule_status(
    ctx: &Ctx,
    rule: &Rule,
) -> anyhow::Result<Option<(String, String)>> {
    let v = ctx.client.get(&rule.url, ctx.timeout).await?.json()?;
    let st = v.as_array().and_then(|a| {
        a.iter()
            .find(|s| s["rule"]["name"] == rule.name.as_str())
            .cloned()
    });
    Ok(st.map(|s| {
        (
            s["status"].as_str().unwrap_or("?").to_owned(),
            s["detail"].as_str().unwrap_or("").to_owned(),
        )
    }))
}

/// Wait until `rule` fires (two flushes and an evaluation, with slack), as `claim` expects;
/// the figure is from `t0`. Whether it fired.
pub(super) async fn expect_fires(
    ctx: &Ctx,
    rec: &mut super::super::scenario::Record,
    hub: &HubInfo,
    rule: &Rule,
    claim: &str,
    t0: Instant,
) -> anyhow::Result<bool> {
    let within = hub.flush * 2 + hub.alert_interval + Duration::from_secs(5);
    let fired = until(within, || async {
        Ok(rule_status(ctx, rule).await?.filter(|(s, _)| s == "firing"))
    })
    .await?;
    rec.figure("fired after", t0.elapsed().as_secs_f64() * 1e3, "ms");
    rec.expect(
        format!("{claim} within {}s", within.as_secs()),
        fired.is_some(),
        "status firing",
        fired
            .as_ref()
            .map_or_else(|| "never fired".to_owned(), |(_, d)| d.clone()),
    );
    Ok(fired.is_some())
}

/// Wait until `rule` (over `window_s`) resolves, and check it did.
pub(super) async fn check_resolves(
    ctx: &Ctx,
    rec: &mut super::super::scenario::Record,
    hub: &HubInfo,
    rule: &Rule,
    window_s: i64,
) -> anyhow::Result<bool> {
    let t1 = Instant::now();
    let within = Duration::from_secs(window_s as u64)
        + hub.flush * 2
        + hub.alert_interval
        + Duration::from_secs(5);
    let resolved = until(within, || async {
        Ok(rule_status(ctx, rule).await?.filter(|(s, _)| s == "ok"))
    })
    .await?;
    rec.figure("resolved after", t1.elapsed().as_secs_f64() * 1e3, "ms");
    rec.check(
        format!("it resolves once the {window_s}s window holds no more failures"),
        resolved.is_some(),
        resolved
            .as_ref()
            .map_or_else(|| "still firing".to_owned(), |(_, d)| d.clone()),
    );
    Ok(resolved.is_some())
}

/// The services whose spans `spans` (a Zipkin trace) holds, as the spans name them.
pub(super) fn span_services<C: FromIterator<String>>(spans: &[Value]) -> C {
    spans
        .iter()
        .filter_map(|s| {
            s["localEndpoint"]["serviceName"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}
