//! `/api/alerts`: the rules (from lab.toml and added at run time) with their states; run-time
//! rules are added (`POST`, bounded and parsed first) and removed (`DELETE`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::shared::Shared;

use crate::http::params::{bad_request, internal_error};
use crate::query::graphite;

/// `GET /api/alerts`: every rule with its standing.
pub(crate) async fn list(State(s): State<Arc<Shared>>) -> Response {
    let all = s.alerts.lock().map(|a| a.clone()).unwrap_or_default();
    axum::Json(all).into_response()
}

/// `POST /api/alerts` with a rule (JSON): added, or replacing a run-time rule of that name.
pub(crate) async fn add(State(s): State<Arc<Shared>>, body: Bytes) -> Response {
    let rule: crate::alerts::Rule = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => return bad_request(format!("not a rule: {e}")),
    };
    // A target the hub could not evaluate is refused now, not at the next evaluation.
    if let crate::alerts::Check::Metric { target, .. } = &rule.check
        && let Err(e) = graphite::parse_target(target)
    {
        return bad_request(format!("the rule's target: {e}"));
    }
    let kept = {
        let mut all = s.alerts.lock().unwrap_or_else(|p| p.into_inner());
        if all.iter().any(|a| a.rule.name == rule.name && !a.runtime) {
            return (
                StatusCode::CONFLICT,
                format!("{} is a rule of lab.toml", rule.name),
            )
                .into_response();
        }
        all.retain(|a| a.rule.name != rule.name);
        let kept = crate::store::Write::RuntimeRule {
            name: rule.name.clone(),
            rule: serde_json::to_string(&rule).ok(),
        };
        all.push(crate::alerts::RuleState::new(rule, true));
        kept
    };
    // Kept in the store, so a restarted hub evaluates it still.
    if !s
        .store
        .write_within(kept, std::time::Duration::from_secs(2))
        .await
    {
        return internal_error("keeping the rule", &"the store's queue is full");
    }
    StatusCode::CREATED.into_response()
}

/// `DELETE /api/alerts/{name}`: remove a run-time rule.
pub(crate) async fn remove(
    State(s): State<Arc<Shared>>,
    axum::extract::Path(name): axum::extract::Path<String>,
) -> Response {
    let removed = {
        let mut all = s.alerts.lock().unwrap_or_else(|p| p.into_inner());
        let before = all.len();
        all.retain(|a| !(a.rule.name == name && a.runtime));
        all.len() != before
    };
    if !removed {
        return (StatusCode::NOT_FOUND, format!("no run-time rule {name}")).into_response();
    }
    let gone = crate::store::Write::RuntimeRule { name, rule: None };
    if !s
        .store
        .write_within(gone, std::time::Duration::from_secs(2))
        .await
    {
        return internal_error("forgetting the rule", &"the store's queue is full");
    }
    StatusCode::NO_CONTENT.into_response()
}
