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
