//! Active health checks: every `interval`, each server of a backend is probed (`GET path`
//! answering 2xx/3xx, or a TCP connect); `fall` failures in a row take it out of rotation and
//! `rise` successes in a row bring it back, as HAProxy's `check inter rise fall` do.

use std::sync::Arc;
use std::sync::atomic::Ordering::*;
use std::time::Duration;

use lab_net::client::Client;

use crate::backend::Backend;
use crate::config::Check;

/// Probe every server of `backend` per `check` until the task is dropped (one task per server).
pub fn spawn(backend: Arc<Backend>, check: Check, tasks: &mut tokio::task::JoinSet<()>) {
    let client = Client::new();
    for i in 0..backend.servers.len() {
        let (backend, check, client) = (backend.clone(), check.clone(), client.clone());
        tasks.spawn(async move {
            let (mut ok_streak, mut fail_streak) = (0u32, 0u32);
            let mut tick = tokio::time::interval(Duration::from_millis(check.interval_ms.max(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let server = &backend.servers[i];
                let result = probe(&client, &server.addr, &check).await;
                *server.last_check.lock().unwrap_or_else(|e| e.into_inner()) = match &result {
                    Ok(what) => what.clone(),
                    Err(why) => why.clone(),
                };
                match result {
                    Ok(_) => {
                        fail_streak = 0;
                        ok_streak += 1;
                        if !server.up.load(Acquire) && ok_streak >= check.rise {
                            backend.set_up(i, true);
                        }
                    }
                    Err(_) => {
                        ok_streak = 0;
                        fail_streak += 1;
                        server.check_fails.fetch_add(1, Relaxed);
                        if server.up.load(Acquire) && fail_streak >= check.fall {
                            backend.set_up(i, false);
                        }
                    }
                }
            }
        });
    }
}

async fn probe(client: &Client, addr: &str, check: &Check) -> Result<String, String> {
    let timeout = Duration::from_millis(check.timeout_ms.max(1));
    match &check.path {
        Some(path) => match client.get(&format!("http://{addr}{path}"), timeout).await {
            Ok(r) if r.status.is_success() || r.status.is_redirection() => {
                Ok(format!("L7OK/{}", r.status.as_u16()))
            }
            Ok(r) => Err(format!("L7STS/{}", r.status.as_u16())),
            Err(e) => Err(format!("L4CON {}", e.kind())),
        },
        None => match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(_)) => Ok("L4OK".into()),
            Ok(Err(e)) => Err(format!("L4CON {e}")),
            Err(_) => Err("L4TOUT".into()),
        },
    }
}
