//! The reference server of `scripts/bench-protocols`: one thread (like every lab service), the
//! kit's `serve`, `GET /` → `hello`, nothing else. What recipe-api costs per request beyond
//! this is what its routing, JSON, middleware and logging cost.
//!
//!     cargo run --release -p lab-service-kit --example bench-hello   # PORT=8080 by default
use axum::Router;
use axum::routing::get;

fn main() -> std::io::Result<()> {
    let port = std::env::var("PORT").unwrap_or_else(|_| "8080".into());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(format!("127.0.0.1:{port}")).await?;
        println!("bench-hello on {}", listener.local_addr()?);
        let app = Router::new().route("/", get(|| async { "hello" }));
        lab_service_kit::serve::serve(listener, app, lab_service_kit::serve::shutdown_signal())
            .await?;
        Ok(())
    })
}
