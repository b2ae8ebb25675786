//! One health probe.

use std::time::Duration;

use lab_service_kit::client::Client;

use crate::plan::HealthCheck;

/// Probe `host:port`; `Err` carries a short reason for the log and the status table.
pub async fn probe(
    client: &Client,
    check: &HealthCheck,
    host: &str,
    port: u16,
    timeout: Duration,
) -> Result<(), String> {
    match check {
        HealthCheck::None => Ok(()),
        HealthCheck::Tcp => {
            match tokio::time::timeout(timeout, tokio::net::TcpStream::connect((host, port))).await
            {
                Ok(Ok(_)) => Ok(()),
                Ok(Err(e)) => Err(format!("connect: {e}")),
                Err(_) => Err(format!("connect: no answer within {timeout:?}")),
            }
        }
        HealthCheck::Http { path } => {
            let url = format!("http://{host}:{port}{path}");
            match client.get(&url, timeout).await {
                Ok(r) if r.status.is_success() => Ok(()),
                Ok(r) => Err(format!("GET {path} answered {}", r.status)),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}
