//! RPC with gRPC: the contract's service over HTTP/2, a status for unknown ids.

use super::super::contract::{self, GET_META, GET_RECIPE, UNKNOWN_ID};
use super::super::scenario::{BoxFut, Ctx, Record, median_max_ms};
use super::super::wire::grpc_unary_on;
use super::common::*;
use crate::config::model::Serve;
use serde_json::{Value, json};
use std::time::Instant;

pub(super) fn grpc<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.require_serving(
            Serve::Grpc,
            "a producer with `serves = [\"grpc\"]` serving recipe.RecipeService from the contract proto (the book's recipe-api/producer-grpc.js)",
        )?;
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let addr = p
                .addrs
                .first()
                .ok_or_else(|| anyhow::anyhow!("`{svc}` has no instance"))?
                .clone();
            let tls = grpc_tls(ctx, p)?;
            let call = |path: &'static str, msg: Vec<u8>| {
                let (addr, tls) = (addr.clone(), tls.clone());
                async move { grpc_unary_on(&addr, path, &msg, ctx.timeout, tls).await }
            };
            let r = call(GET_RECIPE, contract::recipe_request(42)).await?;
            rec.expect(
                format!("{svc}: GetRecipe(42) is OK"),
                r.status == 0,
                "grpc-status 0",
                format!("grpc-status {} {}", r.status, r.message),
            );
            let decoded = contract::decode_recipe(&r.body);
            let shape = decoded
                .as_ref()
                .map_err(Clone::clone)
                .and_then(|d| contract::recipe_42(&json!({"recipe": d.fields}), "recipe", false));
            rec.expect(
                format!("{svc}: GetRecipe(42) returns the recipe with 2 ingredients"),
                r.status == 0 && shape.is_ok(),
                "Recipe {id: 42, name: \"Chicken Tikka Masala\", ingredients ×2}",
                match (&decoded, &shape) {
                    (Ok(d), Ok(())) => Value::Object(d.fields.clone()).to_string(),
                    (_, Err(e)) => e.clone(),
                    (Err(e), _) => e.clone(),
                },
            );
            let m = call(GET_META, Vec::new()).await?;
            let pid = contract::decode_meta_pid(&m.body);
            rec.expect(
                format!("{svc}: GetMetaData returns a pid (field 2)"),
                m.status == 0 && matches!(pid, Ok(Some(p)) if p > 0),
                "Meta {pid > 0}",
                match pid {
                    Ok(Some(p)) => format!("grpc-status {}, pid {p}", m.status),
                    Ok(None) => format!("grpc-status {}, no pid field", m.status),
                    Err(e) => format!("grpc-status {}, {e}", m.status),
                },
            );
            // The book's producer answers an unknown id with a plain error: status 2
            // (UNKNOWN) and its message; any status but OK, with a message, keeps the contract.
            let nf = call(GET_RECIPE, contract::recipe_request(UNKNOWN_ID as i32)).await?;
            rec.expect(
                format!("{svc}: GetRecipe({UNKNOWN_ID}) is an error status with a message"),
                nf.status > 0 && !nf.message.is_empty(),
                "a non-OK grpc-status (e.g. 2 UNKNOWN or 5 NOT_FOUND) and a grpc-message",
                format!("grpc-status {}, message \"{}\"", nf.status, nf.message),
            );
            rec.hint(
                "call the callback with an Error for an id other than 42 (`cb(new Error(...))`)",
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                let t0 = Instant::now();
                call(GET_RECIPE, contract::recipe_request(42)).await?;
                lat.push(t0.elapsed());
            }
            rec.figure(
                format!("{svc} GetRecipe latency p50 (new connection each)"),
                median_max_ms(lat).0,
                "ms",
            );
            rec.figure(
                format!("{svc} GetRecipe message size"),
                r.body.len() as f64,
                "bytes",
            );
        }
        Ok(())
    })
}
