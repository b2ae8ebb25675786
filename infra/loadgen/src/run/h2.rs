//! HTTP/2 jobs (and gRPC over them): one multiplexed connection, streams up to the
//! connection count, gRPC statuses sorted into kinds.

use super::shared::*;
use super::stream::*;
use crate::plan::Plan;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

/// One HTTP/2 connection (h2c, prior knowledge) carrying `pipelining` concurrent streams,
/// each a loop of requests; a failed connection is replaced.
pub(super) struct H2Job {
    pub(super) plan: Arc<Plan>,
    pub(super) schedule: Arc<Schedule>,
    pub(super) live: Arc<Live>,
}

impl H2Job {
    pub(super) async fn drive(self) -> Measured {
        let mut total = Measured::new();
        loop {
            if self.schedule.stopped.load(Relaxed) || self.schedule.exhausted() {
                break;
            }
            let sender = match tokio::time::timeout(self.plan.timeout, h2_connect(&self.plan)).await
            {
                Ok(Ok(s)) => s,
                failed => {
                    let kind = match failed {
                        Ok(Err(kind)) => kind,
                        _ => "connect",
                    };
                    // One ticket per failed attempt, so a dead target still ends the run.
                    if let Some((n, _)) = self.schedule.take(1) {
                        *total.errors.entry(kind).or_default() += n as u64;
                        self.live.failed.fetch_add(n as u64, Relaxed);
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            let mut streams = tokio::task::JoinSet::new();
            for _ in 0..self.plan.pipelining {
                let (plan, schedule, live, sender) = (
                    self.plan.clone(),
                    self.schedule.clone(),
                    self.live.clone(),
                    sender.clone(),
                );
                streams.spawn(h2_stream(plan, schedule, live, sender));
            }
            while let Some(done) = streams.join_next().await {
                if let Ok(m) = done {
                    total.merge(&m);
                }
            }
        }
        total
    }
}

pub(super) type H2Sender =
    hyper::client::conn::http2::SendRequest<http_body_util::Full<bytes::Bytes>>;

pub(super) async fn h2_connect(plan: &Plan) -> Result<H2Sender, &'static str> {
    let stream = open(plan, b"h2").await?;
    let (sender, conn) =
        hyper::client::conn::http2::Builder::new(hyper_util::rt::TokioExecutor::new())
            .handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .map_err(|_| "h2-handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// One stream's loop: take a ticket, send, read the whole answer (and trailers), record.
/// Returns when the schedule is exhausted or the connection failed (the caller reconnects).
pub(super) async fn h2_stream(
    plan: Arc<Plan>,
    schedule: Arc<Schedule>,
    live: Arc<Live>,
    mut sender: H2Sender,
) -> Measured {
    use http_body_util::BodyExt;
    let mut m = Measured::new();
    let uri: hyper::Uri = match plan.target.url().parse() {
        Ok(u) => u,
        Err(_) => return m,
    };
    while let Some((n, due)) = schedule.take(1) {
        debug_assert_eq!(n, 1);
        if let Some(due) = due {
            tokio::time::sleep_until(due.into()).await;
        }
        let mut req = hyper::Request::builder()
            .method(plan.method.as_str())
            .uri(uri.clone());
        for (k, v) in &plan.headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let req = match req.body(http_body_util::Full::new(plan.body.clone())) {
            Ok(r) => r,
            Err(_) => return m,
        };
        let sent_at = Instant::now();
        m.sent += 1;
        let fail = |m: &mut Measured, kind: &'static str| {
            *m.errors.entry(kind).or_default() += 1;
            live.failed.fetch_add(1, Relaxed);
        };
        if sender.ready().await.is_err() {
            fail(&mut m, "closed");
            return m;
        }
        let exchange = async {
            let resp = sender.send_request(req).await?;
            let status = resp.status().as_u16();
            let (parts, body) = resp.into_parts();
            let collected = body.collect().await?;
            let trailers = collected.trailers().cloned();
            let grpc_status = trailers
                .as_ref()
                .and_then(|t| t.get("grpc-status"))
                .or_else(|| parts.headers.get("grpc-status"))
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u16>().ok());
            Ok::<_, hyper::Error>((status, collected.to_bytes().len(), grpc_status))
        };
        match tokio::time::timeout(plan.timeout, exchange).await {
            Ok(Ok((status, bytes, grpc_status))) => {
                let now = Instant::now();
                if plan.grpc && grpc_status != Some(0) {
                    // A gRPC failure rides on HTTP 200: count it by its gRPC status.
                    fail(&mut m, grpc_kind(grpc_status));
                    continue;
                }
                let second = now.duration_since(schedule.start).as_secs() as usize;
                m.answered(
                    second,
                    now.duration_since(due.unwrap_or(sent_at)),
                    status,
                    bytes,
                );
                live.answered.fetch_add(1, Relaxed);
            }
            Ok(Err(_)) => {
                fail(&mut m, "reset");
                return m;
            }
            Err(_) => {
                m.timeouts += 1;
                live.failed.fetch_add(1, Relaxed);
                return m;
            }
        }
    }
    m
}

pub(super) fn grpc_kind(status: Option<u16>) -> &'static str {
    match status {
        None => "grpc-no-status",
        Some(1) => "grpc-cancelled",
        Some(3) => "grpc-invalid-argument",
        Some(4) => "grpc-deadline-exceeded",
        Some(5) => "grpc-not-found",
        Some(8) => "grpc-resource-exhausted",
        Some(12) => "grpc-unimplemented",
        Some(13) => "grpc-internal",
        Some(14) => "grpc-unavailable",
        Some(_) => "grpc-other",
    }
}
