//! Dangers of Serializing POJOs: exactly the contract's fields, in every protocol served.

use super::super::contract::{self, GET_RECIPE};
use super::super::scenario::{BoxFut, Ctx, Record, not_applicable};
use super::super::wire::grpc_unary_on;
use super::common::*;
use crate::config::model::{Builtin, Serve};
use serde_json::{Value, json};

/// The fields a GraphQL type reports by introspection.
pub(super) async fn gql_type_fields(
    client: &lab_net::client::Client,
    ctx: &Ctx,
    base: &str,
    ty: &str,
) -> anyhow::Result<Vec<String>> {
    let q = json!({"query": format!("{{ __type(name: \"{ty}\") {{ fields {{ name }} }} }}")});
    let (_, v, _) = gql(client, ctx, base, q).await?;
    Ok(v["data"]["__type"]["fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .filter_map(|x| x["name"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default())
}

pub(super) fn exactly(have: &[String], contract: &[&str]) -> (Vec<String>, Vec<String>) {
    let extra = have
        .iter()
        .filter(|h| !contract.contains(&h.as_str()))
        .cloned()
        .collect();
    let missing = contract
        .iter()
        .filter(|c| !have.iter().any(|h| h == *c))
        .map(|c| (*c).to_owned())
        .collect();
    (extra, missing)
}

pub(super) fn serialization<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producers = ctx.playing(Builtin::RecipeApi);
        if producers.is_empty() {
            return Err(not_applicable(
                "no service plays recipe-api (the producer)",
                "[services.recipe-api] with `builtin = \"recipe-api\"`, or your producer's `command = [...]`",
            ));
        }
        let hint = "serialize what you mean to send: build the answer from the contract's fields, not from the stored object";
        let expected_recipe = format!(
            "recipe fields {}; ingredient fields {}",
            contract::RECIPE_FIELDS.join(", "),
            contract::INGREDIENT_FIELDS.join(", ")
        );
        for p in producers {
            rec.subject(p.subject());
            let svc = &p.service;
            let base = p.base()?;
            if p.rest() {
                let (r, _) = ctx.get(&base, "/recipes/42").await?;
                let v = r.json().unwrap_or(Value::Null);
                let (mut extra, mut missing) =
                    contract::extra_and_missing(&v["recipe"], &contract::RECIPE_FIELDS);
                for (i, ing) in v["recipe"]["ingredients"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let (e, m) = contract::extra_and_missing(ing, &contract::INGREDIENT_FIELDS);
                    extra.extend(e.into_iter().map(|f| format!("ingredients.{i}.{f}")));
                    missing.extend(m.into_iter().map(|f| format!("ingredients.{i}.{f}")));
                }
                rec.expect(
                    format!("{svc} REST: the recipe carries exactly the contract's fields"),
                    r.status == 200 && extra.is_empty() && missing.is_empty(),
                    expected_recipe.clone(),
                    format!(
                        "status {}; extra: {}; missing: {}",
                        r.status,
                        names(&extra),
                        names(&missing)
                    ),
                );
                rec.hint(hint);
            }
            if p.serves(Serve::Graphql) {
                let client = tls_client(ctx, p)?;
                let recipe = gql_type_fields(&client, ctx, &base, "Recipe").await?;
                let ingredient = gql_type_fields(&client, ctx, &base, "Ingredient").await?;
                let (mut extra, mut missing) = exactly(&recipe, &contract::RECIPE_FIELDS);
                let (e, m) = exactly(&ingredient, &contract::INGREDIENT_FIELDS);
                extra.extend(e.into_iter().map(|f| format!("Ingredient.{f}")));
                missing.extend(m.into_iter().map(|f| format!("Ingredient.{f}")));
                rec.expect(
                    format!("{svc} GraphQL: the schema's Recipe and Ingredient have exactly the contract's fields"),
                    extra.is_empty() && missing.is_empty(),
                    expected_recipe.clone(),
                    format!("extra: {}; missing: {}", names(&extra), names(&missing)),
                );
                rec.hint("serve the contract's schema file unchanged (shared/graphql-schema.gql)");
            }
            if p.serves(Serve::Grpc) {
                let addr = p.addrs.first().cloned().unwrap_or_default();
                let reply = grpc_unary_on(
                    &addr,
                    GET_RECIPE,
                    &contract::recipe_request(42),
                    ctx.timeout,
                    grpc_tls(ctx, p)?,
                )
                .await?;
                // Raw bytes: a generated decoder would drop unknown fields silently.
                let decoded = contract::decode_recipe(&reply.body);
                rec.expect(
                    format!("{svc} gRPC: the Recipe message has no field the proto lacks"),
                    reply.status == 0 && decoded.as_ref().is_ok_and(|d| d.unknown.is_empty()),
                    "fields 1-4 of Recipe, 1-3 of Ingredient",
                    match &decoded {
                        Ok(d) => format!(
                            "grpc-status {}, {} bytes; unknown fields: {}",
                            reply.status,
                            reply.body.len(),
                            names(&d.unknown)
                        ),
                        Err(e) => format!("grpc-status {}, undecodable: {e}", reply.status),
                    },
                );
                rec.hint(hint);
            }
            if !p.rest() && !p.serves(Serve::Graphql) && !p.serves(Serve::Grpc) {
                rec.note(format!("{svc} serves no protocol this scenario reads"));
            }
        }
        Ok(())
    })
}
