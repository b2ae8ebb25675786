//! TCP mode (`mode = "tcp"`): each client connection is paired with a connection to one server,
//! chosen per the balance (a refused connect is retried on another server), and bytes are
//! copied both ways until either side closes: TLS or gRPC pass through untouched.

use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use tokio::net::TcpStream;

use crate::backend::Backend;
use crate::config::Frontend;

pub async fn handle(cfg: Arc<Frontend>, backend: Arc<Backend>, mut client: TcpStream) {
    let mut tried = Vec::new();
    loop {
        let Ok(slot) = backend.acquire(&tried).await else {
            return; // no server (or queue timeout): close the client connection
        };
        let server = slot.server();
        let connect = tokio::time::timeout(
            Duration::from_millis(cfg.connect_timeout_ms),
            TcpStream::connect(&server.addr),
        )
        .await;
        match connect {
            Ok(Ok(mut upstream)) => {
                let _ = upstream.set_nodelay(true);
                match tokio::io::copy_bidirectional(&mut client, &mut upstream).await {
                    Ok((_, to_client)) => {
                        server.counters.bytes_out.fetch_add(to_client, Relaxed);
                    }
                    Err(_) => {
                        server.counters.resp_errors.fetch_add(1, Relaxed);
                    }
                }
                return;
            }
            _ => {
                server.counters.conn_errors.fetch_add(1, Relaxed);
                if cfg.check.is_some() {
                    backend.set_up(slot.index, false);
                }
                if (tried.len() as u32) >= cfg.retries {
                    return;
                }
                server.counters.retries.fetch_add(1, Relaxed);
                tried.push(slot.index);
            }
        }
    }
}
