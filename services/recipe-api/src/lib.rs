//! recipe-api, the book's producer. One port serves every protocol of chapter 2:
//!
//! - CPU-bound work: `GET /fibonacci/:limit` (the book's cluster-fibonacci, [`fibonacci`]).
//! - REST/JSON: `GET /recipes/42` → 200 `{"producer_pid": <pid>, "recipe": {...}}`; any other
//!   numeric id → 404 `{"error": "not_found"}`; a non-numeric id → 400 with a JSON error (the
//!   book answers 404; ours is stricter); `GET /health` → `OK`.
//! - gzip: responses are compressed when, and only when, the client sends `Accept-Encoding: gzip`.
//! - GraphQL: `POST /graphql`, `GET /graphql?query=`, a query page at `GET /graphql`
//!   ([`graphql`], contract `contracts/recipe.graphql`).
//! - gRPC: `recipe.RecipeService` over HTTP/2 ([`grpc`], contract `contracts/recipe.proto`).
//!
//! Request bodies are limited to [`BODY_LIMIT`]. The stored recipe's internal field never
//! leaves the service ([`model`]).

pub mod fibonacci;
pub mod graphql;
pub mod grpc;
pub mod model;

use axum::Router;
use axum::extract::{DefaultBodyLimit, Path};
use axum::http::StatusCode;
use axum::routing::get;
use lab_service_kit::JsonError;
use serde::Serialize;

pub use model::RecipeView;

/// Default port, as in the book.
pub const DEFAULT_PORT: u16 = 4000;
/// The largest request body accepted (GraphQL queries are small; anything bigger is refused with 413).
pub const BODY_LIMIT: usize = 64 * 1024;

#[derive(Debug, Serialize)]
struct RecipeResponse {
    producer_pid: u32,
    recipe: RecipeView,
}

/// Every route of the service, CPU work on the event loop (the default, as in Node); tests
/// drive it in-process or on a port-0 listener.
pub fn router() -> Router {
    router_with(false)
}

/// Every route of the service; `offload` moves `/fibonacci` to the blocking pool.
pub fn router_with(offload: bool) -> Router {
    let http = Router::new()
        .route("/recipes/{id}", get(get_recipe))
        .route(
            "/fibonacci/{limit}",
            get(fibonacci::get).with_state(offload),
        )
        .route("/health", get(lab_service_kit::health::handler))
        .route("/graphql", get(graphql::get).post(graphql::post))
        .with_state(graphql::schema())
        .fallback(not_routed)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(lab_service_kit::compression::GzipLayer);
    // gRPC by path (`/recipe.RecipeService/GetRecipe`), outside the compression layer: gRPC
    // compresses per message, never the whole HTTP body.
    http.route_service(
        "/recipe.RecipeService/{method}",
        grpc::RecipeServiceServer::new(grpc::RecipeGrpc),
    )
    .layer(lab_service_kit::telemetry::RequestLogLayer)
}

/// The REST answer for each stored recipe, serialised once: it depends only on the recipe and
/// this process's pid, so serialising it per request would be work done again and again.
static REST_BODIES: std::sync::LazyLock<Vec<(i32, axum::body::Bytes)>> =
    std::sync::LazyLock::new(|| {
        model::all()
            .iter()
            .map(|r| {
                let body = RecipeResponse {
                    producer_pid: lab_service_kit::pid(),
                    recipe: r.into(),
                };
                (
                    r.id,
                    serde_json::to_vec(&body).expect("recipes serialise").into(),
                )
            })
            .collect()
    });

async fn get_recipe(Path(id): Path<String>) -> Result<axum::response::Response, JsonError> {
    use axum::response::IntoResponse;
    let id = model::parse_id(&id)
        .map_err(|m| JsonError::new(StatusCode::BAD_REQUEST, "bad_request", m))?;
    let (_, body) = REST_BODIES
        .iter()
        .find(|(rid, _)| i64::from(*rid) == id)
        .ok_or_else(|| JsonError::new(StatusCode::NOT_FOUND, "not_found", ""))?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body.clone(),
    )
        .into_response())
}

async fn not_routed() -> JsonError {
    JsonError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Run recipe-api from the environment until SIGINT/SIGTERM.
pub fn main() -> Result<(), lab_service_kit::serve::ServiceError> {
    // Traced only, as in the book (web-api alone logs to Logstash and counts in StatsD).
    lab_service_kit::service::run_service_with(
        "recipe-api",
        DEFAULT_PORT,
        lab_service_kit::observe::Parts::TRACES,
        |s| router_with(s.offload),
    )
}

#[cfg(test)]
mod tests;
