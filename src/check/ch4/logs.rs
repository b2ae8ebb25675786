//! Environments and Logging with ELK: every document of a service carries its environment;
//! the book's request-incoming, request-outgoing and request-failure documents arrive.

use super::super::scenario::{BoxFut, Ctx, Record};
use super::hub::*;
use crate::config::model::Builtin;
use std::time::{Duration, Instant};

pub(super) fn environment<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
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
                    super::super::scenario::list(&envs)
                ),
            );
            rec.hint(
                "set `environment` in each document from process.env.NODE_ENV, which the lab sets",
            );
        }
        if !any {
            return Err(super::super::scenario::not_applicable(
                format!(
                    "no service of the lab sent a log document to LOGSTASH{}",
                    logstash_note(ctx)
                ),
                "a consumer that logs as the book's web-api/consumer-http-logs.js does (UDP JSON to process.env.LOGSTASH), or with an OpenTelemetry SDK (log records over OTLP, attributes as the book's fields)",
            ));
        }
        Ok(())
    })
}

pub(super) fn logs<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
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
                return Err(super::super::scenario::not_applicable(
                    format!(
                        "no consumer sent a log document to LOGSTASH{}",
                        logstash_note(ctx)
                    ),
                    "a consumer that logs as the book's web-api/consumer-http-logs.js does (UDP JSON to process.env.LOGSTASH), or with an OpenTelemetry SDK (log records over OTLP, attributes as the book's fields)",
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
