//! `lab serve slow-server`: the book's low-connections.js as a helper for the back-pressure
//! experiment. Every request is answered after `LAB_HOLD_MS` (default 10 s, as in the book);
//! `GET /__lab/in-flight` answers at once with `{"now": N, "max": M}`, the requests held now
//! and at most at once, so a check can see what the proxy let through.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

/// How long each request is held, in milliseconds.
pub const HOLD_MS_ENV: &str = "LAB_HOLD_MS";
/// The path that reports the counts (not held, not counted).
pub const IN_FLIGHT_PATH: &str = "/__lab/in-flight";

pub fn main() -> anyhow::Result<()> {
    let hold = std::env::var(HOLD_MS_ENV)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(Duration::from_secs(10), Duration::from_millis);
    let host = std::env::var("HOST").unwrap_or_else(|_| "127.0.0.1".into());
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3020);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let now = Arc::new(AtomicUsize::new(0));
        let max = Arc::new(AtomicUsize::new(0));
        let (n2, m2) = (now.clone(), max.clone());
        let app = axum::Router::new()
            .route(
                IN_FLIGHT_PATH,
                axum::routing::get(move || {
                    let (now, max) = (now.clone(), max.clone());
                    async move {
                        axum::Json(
                            serde_json::json!({"now": now.load(SeqCst), "max": max.load(SeqCst)}),
                        )
                    }
                }),
            )
            .fallback(move || {
                let (now, max) = (n2.clone(), m2.clone());
                async move {
                    let c = now.fetch_add(1, SeqCst) + 1;
                    max.fetch_max(c, SeqCst);
                    tokio::time::sleep(hold).await;
                    now.fetch_sub(1, SeqCst);
                    "slow\n"
                }
            });
        let listener = tokio::net::TcpListener::bind((host.as_str(), port)).await?;
        axum::serve(listener, app).await?;
        anyhow::Ok(())
    })
}
