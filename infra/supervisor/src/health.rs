//! One health probe.

use std::time::Duration;

use lab_net::client::Client;

use crate::plan::HealthCheck;

/// The client a check needs: one trusting the check's CA for `https`, else `plain`.
pub fn client_for(check: &HealthCheck, plain: &Client) -> Result<Client, String> {
    match check {
        HealthCheck::Https { ca, .. } => lab_net::tls::client_config(ca)
            .map(Client::with_tls)
            .map_err(|e| e.to_string()),
        _ => Ok(plain.clone()),
    }
}

/// The URL an http(s) check asks (IPv6 hosts in brackets).
fn health_url(check: &HealthCheck, host: &str, port: u16, path: &str) -> String {
    let scheme = if matches!(check, HealthCheck::Https { .. }) {
        "https"
    } else {
        "http"
    };
    if host.contains(':') {
        format!("{scheme}://[{host}]:{port}{path}")
    } else {
        format!("{scheme}://{host}:{port}{path}")
    }
}

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
        HealthCheck::Http { path } | HealthCheck::Https { path, .. } => {
            let url = health_url(check, host, port, path);
            match client.get(&url, timeout).await {
                Ok(r) if r.status.is_success() => Ok(()),
                Ok(r) => Err(format!("GET {path} answered {}", r.status)),
                Err(e) => Err(e.to_string()),
            }
        }
    }
}

/// The book's state of an instance now: `OK`, `DEGRADED` (a 2xx `DEGRADED` body) or `DOWN`
/// (any other answer, or none), with what was seen.
pub async fn level(
    client: &Client,
    check: &HealthCheck,
    host: &str,
    port: u16,
    timeout: Duration,
) -> (lab_service_kit::health::Level, String) {
    use lab_service_kit::health::{Level, classify};
    match check {
        HealthCheck::Http { path } | HealthCheck::Https { path, .. } => {
            let url = health_url(check, host, port, path);
            match client.get(&url, timeout).await {
                Ok(r) => {
                    let body = r.text();
                    (
                        classify(r.status.as_u16(), &body),
                        format!("{} {}", r.status.as_u16(), body.trim()),
                    )
                }
                Err(e) => (Level::Down, e.to_string()),
            }
        }
        other => match probe(client, other, host, port, timeout).await {
            Ok(()) => (Level::Ok, "accepts connections".into()),
            Err(e) => (Level::Down, e),
        },
    }
}
