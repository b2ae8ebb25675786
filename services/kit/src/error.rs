//! JSON error bodies: `{"error": "<code>", "message": "..."}` with the matching HTTP status.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error a handler returns; it renders as a JSON body with its status.
#[derive(Debug, Clone)]
pub struct JsonError {
    pub status: StatusCode,
    /// Stable machine-readable code, e.g. `not_found` (the book's body for an unknown recipe).
    pub code: &'static str,
    /// Human explanation; omitted from the body when empty so `{"error":"not_found"}` stays exact.
    pub message: String,
}

impl JsonError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for JsonError {
    fn into_response(self) -> Response {
        let body = if self.message.is_empty() {
            serde_json::json!({ "error": self.code })
        } else {
            serde_json::json!({ "error": self.code, "message": self.message })
        };
        let mut r = (self.status, axum::Json(body)).into_response();
        if self.status.is_server_error() {
            // What the request-failure log shows as the error's stack.
            r.extensions_mut()
                .insert(crate::observe::FailureNote(format!(
                    "Error: {} ({}): {}",
                    self.code,
                    self.status.as_u16(),
                    self.message
                )));
        }
        r
    }
}
