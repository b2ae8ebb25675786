//! Request and Response with HTTP: payloads, status codes, and gzip only when asked for.

use super::super::contract::{self};
use super::super::scenario::{BoxFut, Ctx, Record, median_max_ms, not_applicable};
use super::super::wire::gunzip;
use super::common::*;
use crate::config::model::Serve;
use serde_json::Value;

pub(super) fn http_json<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.rest_producers();
        if producers.is_empty() {
            return Err(not_applicable(
                "no service of role recipe-api answers REST/JSON",
                "`serves = [\"http\"]` on your producer (the default for a `command` producer)",
            ));
        }
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let base = p.base()?;
            let (r, _) = ctx.get(&base, "/recipes/42").await?;
            rec.expect(
                format!("{svc}: GET /recipes/42 answers 200"),
                r.status == 200,
                "200",
                format!("status {}", r.status),
            );
            let ctype = content_type(&r);
            rec.expect(
                format!("{svc}: content-type is JSON"),
                ctype.starts_with("application/json"),
                "application/json",
                if ctype.is_empty() {
                    "none".into()
                } else {
                    ctype
                },
            );
            rec.hint("send the body with `Content-Type: application/json` (fastify's reply does so for objects)");
            let v = r.json().unwrap_or(Value::Null);
            let shape = contract::recipe_42(&v, "recipe", false).and_then(|()| {
                contract::at(&v, "recipe.steps").and_then(|s| {
                    s.is_string()
                        .then_some(())
                        .ok_or_else(|| "recipe.steps: not a string".into())
                })
            });
            rec.expect(
                format!("{svc}: the body holds recipe 42 with its steps and 2 ingredients"),
                shape.is_ok(),
                "{producer_pid, recipe: {id: 42, name: \"Chicken Tikka Masala\", steps, ingredients: [{id, name, quantity}] ×2}}",
                match &shape {
                    Ok(()) => v["recipe"].to_string(),
                    Err(e) => format!("{e}; the body: {v}"),
                },
            );
            let pid = contract::number_at(&v, "producer_pid");
            rec.expect(
                format!("{svc}: producer_pid is a number"),
                pid.is_ok(),
                "a whole number (process.pid)",
                match pid {
                    Ok(p) => p.to_string(),
                    Err(e) => e,
                },
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                lat.push(ctx.get(&base, "/recipes/42").await?.1);
            }
            rec.figure(format!("{svc} latency p50"), median_max_ms(lat).0, "ms");
            rec.figure(format!("{svc} response size"), r.body.len() as f64, "bytes");
        }
        Ok(())
    })
}

pub(super) fn gzip<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.require_serving(
            Serve::Gzip,
            "add \"gzip\" to `serves` of a producer that compresses when the client sends `Accept-Encoding: gzip` (the book compresses in server-gzip.js and in HAProxy: see ch3.compression)",
        )?;
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let url = format!("{}/recipes/42", p.base()?);
            let (plain, gz) = ctx.get_plain_and_gzip(&url).await?;
            let enc =
                |r: &lab_net::client::Response| match super::super::scenario::content_encoding(r) {
                    e if e.is_empty() => "none".to_owned(),
                    e => e,
                };
            rec.expect(
                format!("{svc}: no Accept-Encoding, not compressed"),
                enc(&plain) == "none",
                "no content-encoding",
                format!("content-encoding {}", enc(&plain)),
            );
            rec.hint("compress only for clients whose Accept-Encoding names gzip");
            rec.expect(
                format!("{svc}: Accept-Encoding: gzip → gzip"),
                enc(&gz) == "gzip",
                "content-encoding gzip",
                format!("content-encoding {}", enc(&gz)),
            );
            let unzipped = gunzip(&gz.body);
            rec.check(
                format!("{svc}: the gzip body decodes"),
                unzipped.is_ok(),
                match &unzipped {
                    Ok(u) => format!("{} bytes decompressed", u.len()),
                    Err(e) => format!("{e:#}"),
                },
            );
            let same = unzipped
                .ok()
                .and_then(|u| serde_json::from_slice::<Value>(&u).ok())
                .map(|v| v["recipe"].clone());
            let want = plain.json().ok().map(|v| v["recipe"].clone());
            rec.check(
                format!("{svc}: decompressed JSON equals the plain JSON"),
                same.is_some() && same == want,
                "recipe compared",
            );
            rec.check(
                format!("{svc}: compressed bytes are fewer"),
                gz.body.len() < plain.body.len(),
                format!("{} gzip bytes vs {} plain", gz.body.len(), plain.body.len()),
            );
            rec.figure(
                format!("{svc} plain body"),
                plain.body.len() as f64,
                "bytes",
            );
            rec.figure(format!("{svc} gzip body"), gz.body.len() as f64, "bytes");
            rec.figure(
                format!("{svc} gzip / plain"),
                gz.body.len() as f64 / plain.body.len().max(1) as f64,
                "ratio",
            );
        }
        Ok(())
    })
}
