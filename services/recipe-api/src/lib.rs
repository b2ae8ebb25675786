//! recipe-api, the book's producer: `GET /recipes/:id` answers recipe 42 with the producer's pid.
//!
//! Behaviour (the contract `lab check` holds any producer to, and then ours):
//! - `GET /recipes/42` → 200 `{"producer_pid": <pid>, "recipe": {...}}`;
//! - any other numeric id → 404 `{"error": "not_found"}`;
//! - a non-numeric id → 400 with a JSON error (the book answers 404; ours is stricter);
//! - `GET /health` → `OK`.

use axum::extract::Path;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use lab_service_kit::JsonError;
use serde::Serialize;

/// Default port, as in the book.
pub const DEFAULT_PORT: u16 = 4000;

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Ingredient {
    pub id: u32,
    pub name: &'static str,
    pub quantity: &'static str,
}

#[derive(Debug, Serialize, PartialEq, Eq)]
pub struct Recipe {
    pub id: i64,
    pub name: &'static str,
    pub steps: &'static str,
    pub ingredients: Vec<Ingredient>,
}

/// The one recipe the book's producer knows.
pub fn recipe_42() -> Recipe {
    Recipe {
        id: 42,
        name: "Chicken Tikka Masala",
        steps: "Throw it in a pot...",
        ingredients: vec![
            Ingredient {
                id: 1,
                name: "Chicken",
                quantity: "1 lb",
            },
            Ingredient {
                id: 2,
                name: "Sauce",
                quantity: "2 cups",
            },
        ],
    }
}

#[derive(Debug, Serialize)]
struct RecipeResponse {
    producer_pid: u32,
    recipe: Recipe,
}

/// The service's routes; tests drive it in-process or on a port-0 listener.
pub fn router() -> Router {
    Router::new()
        .route("/recipes/{id}", get(get_recipe))
        .route("/health", get(health))
        .fallback(not_routed)
        .layer(axum::middleware::from_fn(
            lab_service_kit::telemetry::request_log,
        ))
}

async fn get_recipe(Path(id): Path<String>) -> Result<Json<RecipeResponse>, JsonError> {
    let id: i64 = id.parse().map_err(|_| {
        JsonError::new(
            StatusCode::BAD_REQUEST,
            "bad_request",
            format!("recipe id must be an integer, got {id:?}"),
        )
    })?;
    if id != 42 {
        return Err(JsonError::new(StatusCode::NOT_FOUND, "not_found", ""));
    }
    Ok(Json(RecipeResponse {
        producer_pid: std::process::id(),
        recipe: recipe_42(),
    }))
}

async fn health() -> &'static str {
    "OK"
}

async fn not_routed() -> JsonError {
    JsonError::new(StatusCode::NOT_FOUND, "not_found", "no such route")
}

/// Run recipe-api from the environment until SIGINT/SIGTERM.
pub fn main() -> Result<(), lab_service_kit::serve::ServiceError> {
    lab_service_kit::serve::run_service("recipe-api", DEFAULT_PORT, |_| router())
}

#[cfg(test)]
mod tests {
    use super::*;
    use lab_service_kit::client;
    use std::time::Duration;

    async fn start() -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(lab_service_kit::serve::serve(
            listener,
            router(),
            std::future::pending(),
        ));
        format!("http://{addr}")
    }

    const T: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn recipe_42_has_the_books_body() {
        let base = start().await;
        let r = client::get(&format!("{base}/recipes/42"), T).await.unwrap();
        assert_eq!(r.status, 200);
        let v = r.json().unwrap();
        assert_eq!(v["producer_pid"], std::process::id());
        assert_eq!(
            v["recipe"],
            serde_json::json!({"id": 42, "name": "Chicken Tikka Masala", "steps": "Throw it in a pot...",
                "ingredients": [{"id": 1, "name": "Chicken", "quantity": "1 lb"}, {"id": 2, "name": "Sauce", "quantity": "2 cups"}]})
        );
    }

    #[tokio::test]
    async fn other_ids_are_not_found_and_words_are_bad_requests() {
        let base = start().await;
        let r = client::get(&format!("{base}/recipes/7"), T).await.unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.json().unwrap(), serde_json::json!({"error": "not_found"}));
        let r = client::get(&format!("{base}/recipes/abc"), T)
            .await
            .unwrap();
        assert_eq!(r.status, 400);
        assert_eq!(r.json().unwrap()["error"], "bad_request");
        let r = client::get(&format!("{base}/health"), T).await.unwrap();
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "OK"));
    }
}
