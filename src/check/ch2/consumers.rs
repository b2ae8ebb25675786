//! The consumers of each protocol: the book's response shapes from web-api, web-api-graphql
//! and web-api-grpc.

use super::super::contract::{self};
use super::super::scenario::{BoxFut, Ctx, Endpoint, Record, Subject, median_max_ms};
use super::common::*;
use crate::config::model::{Builtin, Serve, TargetProtocol};
use serde_json::Value;

/// What a consumer calling over `p` needs its producer to serve.
pub(super) fn serve_for(p: TargetProtocol) -> Serve {
    match p {
        TargetProtocol::Http => Serve::Http,
        TargetProtocol::Https => Serve::Https,
        TargetProtocol::Graphql => Serve::Graphql,
        TargetProtocol::Grpc => Serve::Grpc,
    }
}

/// Check one consumer's `GET /` by the shape of its protocol; figures its chain latency.
pub(super) async fn check_consumer(
    ctx: &Ctx,
    rec: &mut Record,
    who: &str,
    base: &str,
    p: TargetProtocol,
) -> anyhow::Result<()> {
    let (r, _) = ctx.get(base, "/").await?;
    let v = r.json().unwrap_or(Value::Null);
    let shape = if r.status == 200 {
        contract::consumer_answer(p, &v).map(|_| ())
    } else {
        Err(format!("status {}", r.status))
    };
    rec.expect(
        format!("{who} ({} consumer) returns recipe 42", p.as_str()),
        shape.is_ok(),
        contract::consumer_shape(p),
        match &shape {
            Ok(()) => truncate(&v.to_string(), 200),
            Err(e) => format!("{e}; the body: {}", r.text()),
        },
    );
    rec.hint(format!(
        "answer GET / with {}, the shape of the book's {} consumer",
        contract::consumer_shape(p),
        p.as_str()
    ));
    let mut lat = Vec::new();
    for _ in 0..SAMPLES {
        lat.push(ctx.get(base, "/").await?.1);
    }
    rec.figure(
        format!("{who} {} chain latency p50", p.as_str()),
        median_max_ms(lat).0,
        "ms",
    );
    Ok(())
}

pub(super) fn consumers<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let consumers = ctx.require_consumers()?;
        let mut called = Vec::new();
        for c in &consumers {
            rec.subject(c.subject());
            let p = c.calls();
            called.push(p);
            check_consumer(ctx, rec, &c.service, &c.base()?, p).await?;
        }
        // The protocols the lab's producers serve that no consumer calls.
        let missing: Vec<(TargetProtocol, &Endpoint)> = [
            TargetProtocol::Http,
            TargetProtocol::Https,
            TargetProtocol::Graphql,
            TargetProtocol::Grpc,
        ]
        .into_iter()
        .filter(|p| !called.contains(p))
        .filter_map(|p| {
            // The consumers call GraphQL and gRPC over plain HTTP only (as the book's do).
            let plain_only = matches!(p, TargetProtocol::Graphql | TargetProtocol::Grpc);
            ctx.serving(serve_for(p))
                .into_iter()
                .find(|e| !plain_only || e.scheme() == "http")
                .map(|e| (p, e))
        })
        .collect();
        for (p, producer) in missing {
            if ctx.learner_plays(Builtin::WebApi) {
                rec.note(format!(
                    "no consumer calls {0} (`{1}` serves it): add one with `role = \"web-api\"`, `target_protocol = \"{0}\"`, `env = {{ TARGET = \"{1}\" }}`",
                    p.as_str(),
                    producer.service
                ));
                continue;
            }
            // Only built-in consumers here: one more of ours shows this producer's protocol.
            let target = super::super::scenario::host_port(&producer.base()?).to_owned();
            let ca = ctx.tls_ca.as_ref().map(|c| c.display().to_string());
            let mut env = vec![("TARGET", target.as_str()), ("TARGET_PROTOCOL", p.as_str())];
            if let (TargetProtocol::Https, Some(ca)) = (p, &ca) {
                env.push(("TLS_CA", ca.as_str()));
            }
            let helper = super::super::spawn::builtin(Builtin::WebApi, &env).await?;
            rec.subject(producer.subject());
            rec.subject(Subject::helper(
                "web-api",
                format!(
                    "the lab's built-in web-api calling {} over {} (pid {}), started because no consumer of the lab calls {}",
                    producer.service,
                    p.as_str(),
                    helper.pid,
                    p.as_str()
                ),
            ));
            check_consumer(
                ctx,
                rec,
                &format!("built-in web-api → {}", producer.service),
                &helper.base,
                p,
            )
            .await?;
        }
        Ok(())
    })
}
