//! OTLP in, on two ports of their own (docs/OBSERVABILITY.md §11): OTLP/HTTP ([`http`],
//! protobuf and JSON, `[hub] otlp_http_port`, default 4318) and OTLP/gRPC ([`grpc`], the three
//! `Export` services, `[hub] otlp_grpc_port`, default 4317). Both decode into the crate's
//! types and hand them to the same three functions here, which convert (`ingest::otlp`) and
//! queue into the store.

pub mod grpc;
pub mod http;

use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

use crate::ingest::otlp::{
    self, ExportLogsServiceRequest, ExportMetricsServiceRequest, ExportTraceServiceRequest,
    Rejected,
};
use crate::shared::Shared;
use crate::store::Write;

/// The largest body taken, as sent and after gunzip (413 / RESOURCE_EXHAUSTED past it).
pub const MAX_BODY: usize = 16 << 20;

/// How long a request waits for room in the store's queue before it is refused as
/// unavailable (the exporter retries: OTLP's back-pressure).
pub const PATIENCE: Duration = Duration::from_millis(500);

/// How long an exporter is asked to wait before retrying a refused request.
pub const RETRY_AFTER_S: u64 = 1;

/// What became of one export request.
#[derive(Debug)]
pub enum Outcome {
    /// Taken; some items may have been rejected (partial success).
    Taken(Rejected),
    /// Every item was bad: nothing to retry.
    Invalid(String),
    /// The store's queue stayed full: retry later.
    Full,
}

async fn queue(s: &Shared, w: Write, n: u64, rejected: Rejected) -> Outcome {
    s.counters
        .otlp_rejected
        .fetch_add(rejected.count as u64, Relaxed);
    if n > 0 && !s.store.write_within(w, PATIENCE).await {
        s.counters.otlp_dropped_queue.fetch_add(n, Relaxed);
        return Outcome::Full;
    }
    Outcome::Taken(rejected)
}

/// A request whose every item was rejected: counted, and invalid as a whole.
fn all_bad(s: &Shared, n: usize, rejected: &Rejected) -> Option<Outcome> {
    if n > 0 || rejected.count == 0 {
        return None;
    }
    s.counters
        .otlp_rejected
        .fetch_add(rejected.count as u64, Relaxed);
    Some(Outcome::Invalid(rejected.message()))
}

pub async fn traces(s: &Shared, req: ExportTraceServiceRequest) -> Outcome {
    let (spans, rejected) = otlp::traces::spans(&req);
    if let Some(o) = all_bad(s, spans.len(), &rejected) {
        return o;
    }
    let n = spans.len() as u64;
    s.counters.otlp_spans.fetch_add(n, Relaxed);
    queue(s, Write::spans(spans), n, rejected).await
}

pub async fn logs(s: &Shared, req: ExportLogsServiceRequest) -> Outcome {
    let now = time::OffsetDateTime::now_utc();
    let (docs, rejected) = otlp::logs::documents(&req, now, &s.config.index_prefix);
    let n = docs.len() as u64;
    s.counters.otlp_log_records.fetch_add(n, Relaxed);
    queue(s, Write::logs(docs), n, rejected).await
}

pub async fn metrics(s: &Shared, req: ExportMetricsServiceRequest) -> Outcome {
    let (points, rejected) = {
        let mut st = s.otlp_metrics.lock().unwrap_or_else(|p| p.into_inner());
        otlp::metrics::points(&req, &mut st, crate::clock::now_s())
    };
    if let Some(o) = all_bad(s, points.len(), &rejected) {
        return o;
    }
    let n = points.len() as u64;
    s.counters.otlp_points.fetch_add(n, Relaxed);
    queue(s, Write::Points(points), n, rejected).await
}
