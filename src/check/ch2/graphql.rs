//! GraphQL: the contract's schema, the book's queries, errors for unknown ids.

use super::super::contract::{self, KITCHEN_SINK, UNKNOWN_ID};
use super::super::scenario::{BoxFut, Ctx, Record, median_max_ms};
use super::common::*;
use crate::config::model::Serve;
use serde_json::json;

pub(super) fn graphql<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.require_serving(
            Serve::Graphql,
            "a producer with `serves = [\"graphql\"]` answering POST /graphql on the contract's schema (the book's recipe-api/producer-graphql.js)",
        )?;
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let client = tls_client(ctx, p)?;
            let base = p.base()?;
            let sink = json!({"query": KITCHEN_SINK, "variables": {"id": "42"}});
            let (s, v, _) = gql(&client, ctx, &base, sink.clone()).await?;
            rec.expect(
                format!("{svc}: kitchenSink answers 200"),
                s == 200,
                "200",
                format!("status {s}"),
            );
            let shape = contract::recipe_42(&v, "data.recipe", true);
            rec.expect(
                format!("{svc}: kitchenSink returns recipe 42 and its ingredients"),
                shape.is_ok(),
                "{data: {recipe: {id: \"42\", name, ingredients: [{name, quantity}] ×2}, pid}}",
                match &shape {
                    Ok(()) => v["data"]["recipe"].to_string(),
                    Err(e) => format!("{e}; the body: {v}"),
                },
            );
            rec.hint(
                "resolve `recipe(id: ID)` from the contract's schema (shared/graphql-schema.gql)",
            );
            let pid = contract::number_at(&v, "data.pid");
            rec.expect(
                format!("{svc}: kitchenSink returns the producer's pid"),
                pid.is_ok(),
                "data.pid, a whole number",
                pid.map_or_else(|e| e, |p| p.to_string()),
            );
            let (s, v, _) = gql(
                &client,
                ctx,
                &base,
                json!({"query": KITCHEN_SINK, "variables": {"id": UNKNOWN_ID.to_string()}}),
            )
            .await?;
            // The book's producer throws: HTTP 200 with an `errors` entry.
            let has_error = v["errors"]
                .as_array()
                .is_some_and(|e| !e.is_empty() && e.iter().all(|x| x["message"].is_string()));
            rec.expect(
                format!("{svc}: unknown id {UNKNOWN_ID} → HTTP 200 with a GraphQL error"),
                s == 200 && has_error,
                "200 {\"errors\": [{\"message\": …}]}",
                format!("status {s}: {}", truncate(&v.to_string(), 300)),
            );
            rec.hint("throw from the recipe resolver for an id other than 42; the GraphQL server turns it into an `errors` entry");
            let (_, v, _) = gql(
                &client,
                ctx,
                &base,
                json!({"query": "{ __schema { queryType { name } types { name } } }"}),
            )
            .await?;
            let types: Vec<&str> = v["data"]["__schema"]["types"]
                .as_array()
                .map(|t| t.iter().filter_map(|t| t["name"].as_str()).collect())
                .unwrap_or_default();
            rec.expect(
                format!("{svc}: introspection lists Query, Recipe and Ingredient"),
                v["data"]["__schema"]["queryType"]["name"] == "Query"
                    && types.contains(&"Recipe")
                    && types.contains(&"Ingredient"),
                "types Query, Recipe, Ingredient",
                format!("{} types", types.len()),
            );
            let mut lat = Vec::new();
            for _ in 0..SAMPLES {
                lat.push(gql(&client, ctx, &base, sink.clone()).await?.2);
            }
            rec.figure(
                format!("{svc} kitchenSink latency p50"),
                median_max_ms(lat).0,
                "ms",
            );
        }
        Ok(())
    })
}
