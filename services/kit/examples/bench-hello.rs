//! The reference servers of `scripts/bench-protocols`: one thread (like every lab service), the
//! kit's `serve`, `GET /` → `hello`, nothing else. What recipe-api costs per request beyond
//! this is what its routing, JSON, middleware and logging cost.
//!
//! With `UPSTREAM=http://host:port/` it is the minimal *chain* instead: `GET /` fetches
//! `UPSTREAM` with the kit's keep-alive client and answers its body, which is the least a
//! consumer like web-api can do per request (no JSON, no logging). The bench runs it in front of
//! the hello server to bound what any two-hop chain can reach on the same cores.
//!
//!     cargo run --release -p lab-service-kit --example bench-hello   # PORT=8080 by default
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use lab_service_kit::client::Client;

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let upstream = std::env::var("UPSTREAM").ok();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
        println!("bench-hello on {}", listener.local_addr()?);
        let app = match upstream {
            None => Router::new().route("/", get(|| async { "hello" })),
            Some(url) => Router::new()
                .route("/", get(forward))
                .with_state((Client::new(), std::sync::Arc::<str>::from(url))),
        };
        lab_service_kit::serve::serve(listener, app, lab_service_kit::serve::shutdown_signal())
            .await?;
        Ok(())
    })
}

async fn forward(
    State((client, url)): State<(Client, std::sync::Arc<str>)>,
) -> Result<axum::body::Bytes, StatusCode> {
    match client.get(&url, Duration::from_secs(5)).await {
        Ok(res) => Ok(res.body),
        Err(_) => Err(StatusCode::BAD_GATEWAY),
    }
}
