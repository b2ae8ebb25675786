//! Distributed Request Tracing with Zipkin: a request's spans make one tree, in either span
//! model the book's tracers use.

use super::super::scenario::{BoxFut, Ctx, Record};
use super::hub::*;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The spans of a trace, merged by id into nodes: a node is one span id (under Zipkin's
/// shared-span model, a client half and a server half share it), with the services that
/// reported it and the parent any half names.
pub(super) struct Node {
    id: String,
    parent: Option<String>,
    services: std::collections::BTreeSet<String>,
    names: Vec<String>,
}

pub(super) fn nodes(spans: &[Value]) -> Vec<Node> {
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
            super::super::scenario::list(roots.iter().map(|n| format!(
                "{} of {}",
                n.names.join("/"),
                super::super::scenario::list(&n.services)
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
                super::super::scenario::list(&n.services),
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

pub(super) fn tracing<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
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
            // B3 for the book's zipkin-lite, W3C Trace Context for an OpenTelemetry SDK (the
            // same 64-bit id, zero-padded: the hub keeps it as the B3 one).
            let traceparent = format!("00-{trace_id:0>32}-{root}-01");
            let headers = [
                ("x-b3-traceid", trace_id.as_str()),
                ("x-b3-spanid", root.as_str()),
                ("x-b3-sampled", "1"),
                ("traceparent", traceparent.as_str()),
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
                rec.note(format!("{svc} sent no span for trace {trace_id}"));
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
            let services: std::collections::BTreeSet<String> = span_services(&spans);
            rec.figure(
                format!("{svc} spans in the trace"),
                spans.len() as f64,
                "spans",
            );
            rec.expect(
                format!("{svc}: the trace spans the consumer and the producer"),
                services.len() >= 2,
                "spans of 2 services or more",
                format!(
                    "{} spans of {}",
                    spans.len(),
                    super::super::scenario::list(&services)
                ),
            );
            rec.hint("send the B3 headers (X-B3-TraceId, X-B3-SpanId, X-B3-Sampled) or W3C traceparent on the call to TARGET, and report spans to ZIPKIN (or over OTLP to OTEL_EXPORTER_OTLP_ENDPOINT) on both sides");
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
            return Err(super::super::scenario::not_applicable(
                "no consumer sent spans to the hub (Zipkin or OTLP)",
                "consumers and producers that trace as the book's web-api/consumer-http-zipkin.js and recipe-api/producer-http-zipkin.js do (spans to process.env.ZIPKIN), or with an OpenTelemetry SDK (OTLP to OTEL_EXPORTER_OTLP_ENDPOINT)",
            ));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::super::one_tree;
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
