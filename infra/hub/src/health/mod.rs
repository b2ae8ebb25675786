//! Health: the hub polls every instance's health endpoint and keeps the book's three states
//! (OK / DEGRADED / DOWN, docs/OBSERVABILITY.md §5). Each poll records the gauges
//! `hub.health.<service>.<instance>` and `hub.health.<service>` (the worst instance; 2/1/0);
//! each change of state is also a log document (`app:hub and type:health`), so it can be
//! searched and alerted on. Probes carry B3 headers with `X-B3-Sampled: 0`: a zipkin-lite
//! service refuses requests without them, and a probe is not worth a trace.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use lab_net::client::Client;
use lab_service_kit::health::{Level, classify};
use serde_json::json;

use crate::ingest::statsd::Sample;
use crate::store::Write;
pub mod entry;

use crate::config::HealthTarget;
use crate::shared::Shared;
pub use entry::*;

/// After the hub starts, how long an instance that never answered is "not up yet" rather than
/// DOWN (the hub starts first, and a service may take its health deadline to come up).
pub const STARTUP_GRACE: Duration = Duration::from_secs(30);

/// A probe's time limit.
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

async fn probe(client: &Client, url: &str) -> (Level, String) {
    let trace = lab_service_kit::observe::b3::new_id();
    let headers = [
        ("x-b3-traceid", trace.as_str()),
        ("x-b3-spanid", trace.as_str()),
        ("x-b3-sampled", "0"),
        ("user-agent", "lab-hub health probe"),
    ];
    match client
        .request(hyper::Method::GET, url, &headers, None, PROBE_TIMEOUT)
        .await
    {
        Ok(r) => {
            let body = r.text();
            let body = body.trim();
            let short: String = body.chars().take(60).collect();
            (
                classify(r.status.as_u16(), body),
                format!("{} {short}", r.status.as_u16()),
            )
        }
        Err(e) => (Level::Down, e.to_string()),
    }
}

/// A client for one target: trusting `ca` for https (plain when it cannot be read: the probe
/// then reports the TLS failure).
pub fn client_for(ca: Option<&std::path::Path>) -> Client {
    match ca {
        Some(ca) => lab_net::tls::client_config(ca)
            .map(Client::with_tls)
            .unwrap_or_else(|_| Client::new()),
        None => Client::new(),
    }
}

/// Poll every target each interval until `stop`.
pub async fn poll(shared: Arc<Shared>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let targets = shared.config.health_targets.clone();
    if targets.is_empty() {
        return;
    }
    let clients: Vec<Client> = targets
        .iter()
        .map(|t| client_for(t.ca.as_deref()))
        .collect();
    let every = Duration::from_millis(shared.config.health_interval_ms.max(100));
    loop {
        let results = futures_join(&targets, &clients).await;
        record(&shared, &targets, results);
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.wait_for(|s| *s) => return,
        }
    }
}

async fn futures_join(targets: &[HealthTarget], clients: &[Client]) -> Vec<(Level, String)> {
    let mut set = tokio::task::JoinSet::new();
    for (i, (t, c)) in targets.iter().zip(clients).enumerate() {
        let (url, c) = (t.url.clone(), c.clone());
        set.spawn(async move { (i, probe(&c, &url).await) });
    }
    let mut out = vec![(Level::Down, "probe lost".to_owned()); targets.len()];
    while let Some(r) = set.join_next().await {
        if let Ok((i, v)) = r {
            out[i] = v;
        }
    }
    out
}

fn record(shared: &Shared, targets: &[HealthTarget], results: Vec<(Level, String)>) {
    let now_ms = crate::clock::now_ms();
    let mut changes = Vec::new();
    let mut worst: BTreeMap<String, Level> = BTreeMap::new();
    {
        let mut entries = shared.health.lock().unwrap_or_else(|p| p.into_inner());
        let starting = shared.started.elapsed().unwrap_or_default() < STARTUP_GRACE;
        for ((e, (level, detail)), t) in entries.iter_mut().zip(results).zip(targets) {
            // The hub starts before the services: an instance not up yet is not news.
            if e.state.is_none() && level == Level::Down && starting {
                e.detail = format!("not up yet: {detail}");
                e.probes += 1;
                continue;
            }
            if e.state != Some(level) {
                changes.push((
                    t.service.clone(),
                    t.instance,
                    e.state,
                    level,
                    detail.clone(),
                ));
                e.state = Some(level);
                e.since_ms = Some(now_ms);
            }
            e.detail = detail;
            e.probes += 1;
            let w = worst.entry(t.service.clone()).or_insert(Level::Ok);
            if level.value() < w.value() {
                *w = level;
            }
        }
    }
    {
        let mut agg = shared.statsd.lock().unwrap_or_else(|p| p.into_inner());
        let entries = shared.health.lock().unwrap_or_else(|p| p.into_inner());
        for e in entries.iter() {
            if let Some(l) = e.state {
                agg.add(Sample::Gauge {
                    key: format!("hub.health.{}.{}", e.service, e.instance),
                    value: l.value(),
                    delta: false,
                });
            }
        }
        for (svc, l) in &worst {
            agg.add(Sample::Gauge {
                key: format!("hub.health.{svc}"),
                value: l.value(),
                delta: false,
            });
        }
    }
    if changes.is_empty() {
        return;
    }
    let at = time::OffsetDateTime::now_utc();
    let events = changes
        .into_iter()
        .map(|(service, instance, from, to, detail)| {
            let severity = match to {
                Level::Ok => "info",
                Level::Degraded => "warn",
                Level::Down => "error",
            };
            let mut doc = serde_json::Map::new();
            doc.insert("app".into(), "hub".into());
            doc.insert("severity".into(), severity.into());
            doc.insert("type".into(), "health".into());
            doc.insert(
                "fields".into(),
                json!({"service": service, "instance": instance, "from": from.map(Level::as_str), "to": to.as_str(), "detail": detail}),
            );
            doc.insert("message".into(), format!("{service}#{instance} is {}", to.as_str()).into());
            let mut e = crate::ingest::logs::parse_datagram(b"{}", None, at, &shared.config.index_prefix).remove(0);
            e.doc.extend(doc);
            e
        })
        .collect();
    let _ = shared.store.try_write(Write::logs(events));
}
