//! A span for every traced request a fault hits: the edge reads the request's trace context
//! (B3 multi or single headers, or W3C `traceparent`) and sends the hub a Zipkin span in that
//! trace, child of the caller's span, tagged `lab.fault=latency:200ms` (and `lab.fault.id`,
//! `lab.edge`), so the trace of a slow or failed request shows what the lab did to it.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

/// The caller's trace context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Context {
    pub trace_id: String,
    pub parent_id: String,
}

/// The trace context of a request head, if it carries one.
pub fn context(head: &[u8]) -> Option<Context> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut req = httparse::Request::new(&mut headers);
    req.parse(head).ok()?;
    let get = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(str::trim)
    };
    let hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    if let (Some(t), Some(s)) = (get("x-b3-traceid"), get("x-b3-spanid"))
        && hex(t)
        && hex(s)
    {
        return Some(Context {
            trace_id: t.to_ascii_lowercase(),
            parent_id: s.to_ascii_lowercase(),
        });
    }
    if let Some(b3) = get("b3") {
        let mut p = b3.split('-');
        if let (Some(t), Some(s)) = (p.next(), p.next())
            && hex(t)
            && hex(s)
        {
            return Some(Context {
                trace_id: t.to_ascii_lowercase(),
                parent_id: s.to_ascii_lowercase(),
            });
        }
    }
    let tp = get("traceparent")?;
    let p: Vec<&str> = tp.split('-').collect();
    (p.len() == 4 && hex(p[1]) && hex(p[2])).then(|| Context {
        trace_id: p[1].to_ascii_lowercase(),
        parent_id: p[2].to_ascii_lowercase(),
    })
}

/// A span begun when a fault hit a traced request.
#[derive(Debug, Clone)]
pub struct Begun {
    pub seq: u64,
    pub ctx: Context,
    pub start_us: u64,
    pub started: std::time::Instant,
    pub labels: Vec<String>,
    pub ids: Vec<String>,
}

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

impl Begun {
    pub fn new(seq: u64, ctx: Context, labels: Vec<String>, ids: Vec<String>) -> Self {
        Self {
            seq,
            ctx,
            start_us: now_us(),
            started: std::time::Instant::now(),
            labels,
            ids,
        }
    }

    /// The span as Zipkin v2 JSON, ended now.
    pub fn finish(&self, edge: &str, service: &str, id: u64) -> String {
        serde_json::json!({
            "traceId": self.ctx.trace_id,
            "parentId": self.ctx.parent_id,
            "id": format!("{id:016x}"),
            "name": "lab fault",
            "timestamp": self.start_us,
            "duration": (self.started.elapsed().as_micros() as u64).max(1),
            "localEndpoint": { "serviceName": "edges" },
            "remoteEndpoint": { "serviceName": service },
            "tags": {
                "lab.fault": self.labels.join(","),
                "lab.fault.id": self.ids.join(","),
                "lab.edge": edge,
            },
        })
        .to_string()
    }
}

/// Where finished spans go: batched, posted to the hub's Zipkin API every 200 ms.
#[derive(Clone)]
pub struct Sink {
    tx: Option<mpsc::UnboundedSender<String>>,
}

impl Sink {
    /// `zipkin`: the hub's Zipkin `host:port`; `None`: spans are dropped (no hub).
    pub fn new(zipkin: Option<String>) -> Self {
        let Some(addr) = zipkin else {
            return Self { tx: None };
        };
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(post_batches(addr, rx));
        Self { tx: Some(tx) }
    }

    pub fn send(&self, span: String) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(span);
        }
    }

    pub fn enabled(&self) -> bool {
        self.tx.is_some()
    }
}

async fn post_batches(addr: String, mut rx: mpsc::UnboundedReceiver<String>) {
    while let Some(first) = rx.recv().await {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut batch = vec![first];
        while let Ok(more) = rx.try_recv() {
            batch.push(more);
        }
        let body = format!("[{}]", batch.join(","));
        let req = format!(
            "POST /api/v2/spans HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            body.len()
        );
        match tokio::net::TcpStream::connect(&addr).await {
            Ok(mut s) => {
                if s.write_all(req.as_bytes()).await.is_ok() {
                    let mut sink = Vec::new();
                    let _ = tokio::time::timeout(Duration::from_secs(2), s.read_to_end(&mut sink))
                        .await;
                }
            }
            Err(e) => tracing::debug!(error = %e, "cannot send fault spans"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_context_comes_from_b3_or_traceparent() {
        let b3 = b"GET / HTTP/1.1\r\nX-B3-TraceId: 00000000000000AB\r\nX-B3-SpanId: 00000000000000cd\r\n\r\n";
        assert_eq!(
            context(b3),
            Some(Context {
                trace_id: "00000000000000ab".into(),
                parent_id: "00000000000000cd".into()
            })
        );
        let single =
            b"GET / HTTP/1.1\r\nb3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1\r\n\r\n";
        assert_eq!(context(single).unwrap().parent_id, "e457b5a2e4d86bd1");
        let w3c = b"GET / HTTP/1.1\r\ntraceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\r\n\r\n";
        assert_eq!(
            context(w3c).unwrap().trace_id,
            "4bf92f3577b34da6a3ce929d0e0e4736"
        );
        assert_eq!(context(b"GET / HTTP/1.1\r\nhost: x\r\n\r\n"), None);
    }
}
