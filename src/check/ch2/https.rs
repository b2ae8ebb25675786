//! HTTPS / TLS: the producer over TLS, trusted through the lab's CA, and refused otherwise.

use super::super::contract::{self};
use super::super::scenario::{BoxFut, Ctx, Record, Subject, median_max_ms, not_applicable};
use super::common::*;
use crate::config::model::{Builtin, Serve};
use serde_json::Value;
use std::time::{Duration, Instant};

pub(super) fn https<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let lab_https = ctx.serving(Serve::Https);
        let mut targets: Vec<(String, String, std::path::PathBuf)> = Vec::new();
        let mut _helper = None;
        if lab_https.is_empty() {
            if ctx.learner_plays(Builtin::RecipeApi) {
                return Err(not_applicable(
                    "no service of role recipe-api serves https",
                    "a producer with `serves = [\"https\"]` (the lab issues its certificate from its CA and hands it over as TLS_CERT and TLS_KEY)",
                ));
            }
            let (spawned, ca, dir) = tls_recipe_api_helper().await?;
            rec.subject(Subject::helper(
                "recipe-api",
                format!(
                    "the lab's built-in recipe-api over TLS (pid {}), started because no service of the lab serves https",
                    spawned.pid
                ),
            ));
            targets.push(("built-in recipe-api".into(), spawned.base.clone(), ca));
            _helper = Some((spawned, dir));
        } else {
            let ca = ctx.tls_ca.clone().ok_or_else(|| {
                anyhow::anyhow!(
                    "the lab serves https but has no CA file under {}",
                    ctx.tls_dir.display()
                )
            })?;
            for p in lab_https {
                rec.subject(p.subject());
                targets.push((p.service.clone(), p.base()?, ca.clone()));
            }
        }
        for (svc, base, ca) in targets {
            let trusting = lab_net::client::Client::with_tls(lab_net::tls::client_config(&ca)?);
            let t0 = Instant::now();
            let r = trusting
                .get(&format!("{base}/recipes/42"), ctx.timeout)
                .await;
            let first = t0.elapsed();
            let shape = r.as_ref().map_err(|e| e.to_string()).and_then(|r| {
                if r.status != 200 {
                    return Err(format!("status {}", r.status));
                }
                contract::recipe_42(&r.json().unwrap_or(Value::Null), "recipe", false)
            });
            rec.expect(
                format!(
                    "{svc}: GET https://…/recipes/42, trusting only the lab CA, answers recipe 42"
                ),
                shape.is_ok(),
                "200 with recipe 42 over TLS",
                match shape {
                    Ok(()) => "recipe 42".to_owned(),
                    Err(e) => e,
                },
            );
            rec.hint(
                "serve TLS with the certificate and key the lab hands over as TLS_CERT and TLS_KEY",
            );
            let plain = format!(
                "http://{}/recipes/42",
                super::super::scenario::host_port(&base)
            );
            let p = ctx.client.get(&plain, Duration::from_secs(2)).await;
            rec.check(
                format!("{svc}: plain HTTP on the TLS port gets no answer"),
                !p.as_ref().is_ok_and(|r| r.status.is_success()),
                match &p {
                    Ok(r) => format!("status {}", r.status),
                    Err(e) => format!("{} error", e.kind()),
                },
            );
            let other_dir = tempfile::tempdir()?;
            let other = crate::tls::LabCa::ensure(other_dir.path())?;
            let stranger =
                lab_net::client::Client::with_tls(lab_net::tls::client_config(&other.ca_cert())?);
            let o = stranger
                .get(&format!("{base}/recipes/42"), ctx.timeout)
                .await;
            rec.check(
                format!("{svc}: a client trusting another CA refuses the certificate"),
                matches!(o, Err(lab_net::client::ClientError::Tls(_))),
                match &o {
                    Ok(r) => format!("status {} (should have failed)", r.status),
                    Err(e) => truncate(&e.to_string(), 160),
                },
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                let t0 = Instant::now();
                trusting
                    .get(&format!("{base}/recipes/42"), ctx.timeout)
                    .await?;
                lat.push(t0.elapsed());
            }
            rec.figure(
                format!("{svc} first request incl. TLS handshake"),
                first.as_secs_f64() * 1e3,
                "ms",
            );
            rec.figure(
                format!("{svc} keep-alive latency p50"),
                median_max_ms(lat).0,
                "ms",
            );
        }
        Ok(())
    })
}
