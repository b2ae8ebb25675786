//! GraphQL over HTTP: `POST /graphql` (JSON body), `GET /graphql?query=...&variables=...`, and a
//! small offline query page at `GET /graphql` (no CDN: the lab runs without internet).
//! The schema is contracts/recipe.graphql; a test keeps them equal.

use async_graphql::{Context, EmptyMutation, EmptySubscription, ID, Object, Schema, SimpleObject};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use crate::model;

pub type RecipeSchema = Schema<QueryRoot, EmptyMutation, EmptySubscription>;

/// The contract, as committed.
pub const CONTRACT_SDL: &str = include_str!("../contracts/recipe.graphql");

pub fn schema() -> RecipeSchema {
    Schema::build(QueryRoot, EmptyMutation, EmptySubscription)
        .limit_depth(16)
        .limit_complexity(256)
        .finish()
}

pub struct QueryRoot;

#[derive(SimpleObject)]
#[graphql(name = "Recipe")]
pub struct GqlRecipe {
    id: ID,
    name: String,
    steps: Option<String>,
    ingredients: Vec<Option<GqlIngredient>>,
}

#[derive(SimpleObject)]
#[graphql(name = "Ingredient")]
pub struct GqlIngredient {
    id: ID,
    name: String,
    quantity: Option<String>,
}

#[Object(name = "Query")]
impl QueryRoot {
    async fn recipe(
        &self,
        _ctx: &Context<'_>,
        id: Option<ID>,
    ) -> async_graphql::Result<Option<GqlRecipe>> {
        let Some(id) = id else {
            return Err("argument `id` is required to find a recipe".into());
        };
        let n = model::parse_id(&id)?;
        let r = model::find(n).ok_or_else(|| format!("not_found: no recipe with id {n}"))?;
        Ok(Some(GqlRecipe {
            id: ID(r.id.to_string()),
            name: r.name.into(),
            steps: Some(r.steps.into()),
            ingredients: r
                .ingredients
                .iter()
                .map(|i| {
                    Some(GqlIngredient {
                        id: ID(i.id.to_string()),
                        name: i.name.into(),
                        quantity: Some(i.quantity.into()),
                    })
                })
                .collect(),
        }))
    }

    async fn pid(&self) -> Option<i32> {
        i32::try_from(lab_service_kit::pid()).ok()
    }
}

/// A GraphQL-shaped error body for requests that never reached execution.
fn request_error(status: StatusCode, message: String) -> Response {
    (
        status,
        axum::Json(serde_json::json!({ "errors": [{ "message": message }] })),
    )
        .into_response()
}

/// Parsed documents by query text: consumers send the same few queries again and again, and
/// parsing is a large part of answering one. Bounded; cleared when full.
static PARSED: std::sync::LazyLock<
    std::sync::Mutex<
        std::collections::HashMap<String, async_graphql::parser::types::ExecutableDocument>,
    >,
> = std::sync::LazyLock::new(Default::default);
const PARSED_MAX: usize = 256;

async fn execute(schema: &RecipeSchema, mut req: async_graphql::Request) -> Response {
    let cached = PARSED.lock().ok().and_then(|c| c.get(&req.query).cloned());
    match cached {
        Some(doc) => req.set_parsed_query(doc),
        None => {
            // A query that does not parse is left for `execute` to report as GraphQL errors.
            if let Ok(doc) = req.parsed_query().cloned()
                && let Ok(mut c) = PARSED.lock()
            {
                if c.len() >= PARSED_MAX {
                    c.clear();
                }
                c.insert(req.query.clone(), doc);
            }
        }
    }
    let resp = schema.execute(req).await;
    axum::Json(resp).into_response()
}

pub async fn post(State(schema): State<RecipeSchema>, body: Bytes) -> Response {
    match serde_json::from_slice::<async_graphql::Request>(&body) {
        Ok(req) => execute(&schema, req).await,
        Err(e) => request_error(
            StatusCode::BAD_REQUEST,
            format!("invalid GraphQL request body: {e}"),
        ),
    }
}

#[derive(Debug, Deserialize)]
pub struct GetParams {
    query: Option<String>,
    variables: Option<String>,
    #[serde(rename = "operationName")]
    operation_name: Option<String>,
}

pub async fn get(State(schema): State<RecipeSchema>, Query(p): Query<GetParams>) -> Response {
    let Some(query) = p.query else {
        return Html(PLAYGROUND).into_response();
    };
    let mut req = async_graphql::Request::new(query);
    if let Some(v) = p.variables.filter(|v| !v.trim().is_empty()) {
        match serde_json::from_str::<async_graphql::Variables>(&v) {
            Ok(vars) => req = req.variables(vars),
            Err(e) => {
                return request_error(
                    StatusCode::BAD_REQUEST,
                    format!("invalid `variables` JSON: {e}"),
                );
            }
        }
    }
    if let Some(op) = p.operation_name {
        req = req.operation_name(op);
    }
    let mut resp = execute(&schema, req).await;
    resp.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    resp
}

/// The book's consumer query, preloaded in the page.
pub const KITCHEN_SINK: &str =
    "query kitchenSink ($id:ID) { recipe(id: $id) { id name ingredients { name quantity } } pid }";

const PLAYGROUND: &str = r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>recipe-api GraphQL</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:60em}textarea{width:100%;font:13px monospace}
pre{background:#f4f4f4;padding:1em;overflow:auto}button{font-size:14px;padding:.4em 1.2em}</style></head>
<body><h1>recipe-api · GraphQL</h1>
<p>POST <code>/graphql</code> with <code>{"query", "variables"}</code>. This page runs offline.</p>
<label>Query<textarea id="q" rows="6">query kitchenSink ($id:ID) { recipe(id: $id) { id name ingredients { name quantity } } pid }</textarea></label>
<label>Variables<textarea id="v" rows="2">{"id": "42"}</textarea></label>
<p><button id="run">Run</button></p><pre id="out"></pre>
<script>
document.getElementById('run').onclick = async () => {
  const out = document.getElementById('out');
  let variables;
  try { variables = JSON.parse(document.getElementById('v').value || '{}'); }
  catch (e) { out.textContent = 'variables: ' + e; return; }
  const r = await fetch('/graphql', {method: 'POST', headers: {'content-type': 'application/json'},
    body: JSON.stringify({query: document.getElementById('q').value, variables})});
  out.textContent = JSON.stringify(await r.json(), null, 2);
};
</script></body></html>
"#;

/// The type definitions of an SDL as a set of `Type.field: Type` lines, so two schemas can be
/// compared regardless of order, comments, descriptions and directives.
pub fn normalized_sdl(sdl: &str) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut current: Option<String> = None;
    let mut in_description = false;
    for raw in sdl.lines() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.starts_with("\"\"\"") {
            // A line that opens and closes a description on its own leaves the state as it was.
            let one_line = line.len() > 3 && line.ends_with("\"\"\"");
            in_description = !(in_description || one_line);
            continue;
        }
        if in_description || line.is_empty() || line.starts_with('"') {
            continue;
        }
        if let Some(rest) = line.strip_prefix("type ") {
            let name = rest.trim_end_matches('{').trim().to_owned();
            out.insert(format!("type {name}"));
            current = Some(name);
        } else if line == "}" {
            current = None;
        } else if let Some(t) = &current {
            out.insert(format!(
                "{t}.{}",
                line.split_whitespace().collect::<Vec<_>>().join(" ")
            ));
        }
    }
    out
}
