//! The request middleware: one incoming log document, span and StatsD timing per request,
//! B3 propagation, the outbound calls a handler makes ([`Outbound`]), route names, times.

use super::b3;
use super::telemetry::*;
use super::wire::*;
use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// Wrap `router` with the per-request instrumentation (nothing when telemetry is off).
pub fn apply(router: Router, t: Arc<Telemetry>) -> Router {
    if !t.enabled() {
        return router;
    }
    router.layer(axum::middleware::from_fn_with_state(t, middleware))
}

/// What a handler needs to instrument its upstream calls (a request extension).
#[derive(Clone)]
pub struct RequestCtx {
    pub telemetry: Arc<Telemetry>,
    pub trace_id: String,
    /// The SERVER span of this request.
    pub span_id: String,
    pub sampled: bool,
}

/// The Express-style route name statsd-client uses: `GET_root`, `GET_recipes_id`; requests
/// no route matched are `unknown_express_route`.
pub fn route_name(method: &str, matched: Option<&str>) -> String {
    match matched {
        None => "unknown_express_route".into(),
        Some("/") => format!("{method}_root"),
        Some(p) => {
            let cleaned: String = p
                .chars()
                .filter(|c| !matches!(c, '{' | '}' | ':'))
                .collect();
            format!(
                "{method}_{}",
                cleaned.trim_matches('/').replace(['/', '.'], "_")
            )
        }
    }
}

/// The text a failed request's log carries as its `stack`, set by [`crate::JsonError`].
#[derive(Debug, Clone)]
pub struct FailureNote(pub String);

pub(super) async fn middleware(
    State(t): State<Arc<Telemetry>>,
    mut req: Request,
    next: Next,
) -> Response {
    let path = req.uri().path().to_owned();
    if path == "/health" {
        return next.run(req).await;
    }
    let start = Instant::now();
    let ts = now_us();
    let method = req.method().as_str().to_owned();
    let route = route_name(
        &method,
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let incoming = b3::extract(req.headers());
    let sampled = incoming.as_ref().and_then(|i| i.sampled).unwrap_or(true);
    let trace_id = incoming
        .as_ref()
        .map(|i| i.trace_id.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(b3::new_id);
    let parent_id = incoming
        .as_ref()
        .map(|i| i.span_id.clone())
        .filter(|s| !s.is_empty());
    let span_id = b3::new_id();
    // (A block: a borrow of the request must not live across an await, the body is not Sync.)
    let (ip, ua) = {
        let header = |name: &str| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let ip = header("x-forwarded-for")
            .and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()));
        (ip, header("user-agent"))
    };
    t.log(
        "info",
        "request-incoming",
        IncomingFields {
            path: &path,
            method: &method,
            ip: ip.as_deref(),
            ua: ua.as_deref(),
            trace_id: &trace_id,
        },
    );
    req.extensions_mut().insert(RequestCtx {
        telemetry: t.clone(),
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        sampled,
    });
    let resp = next.run(req).await;
    let status = resp.status().as_u16();
    let ms = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        let stack = resp.extensions().get::<FailureNote>().map_or_else(
            || {
                format!(
                    "Error: {method} {path} answered {status}\n    at {} ({})",
                    route, t.service
                )
            },
            |n| n.0.clone(),
        );
        t.log(
            "error",
            "request-failure",
            FailureFields {
                stack: &stack,
                path: &path,
                method: &method,
                trace_id: &trace_id,
            },
        );
    }
    t.increment(&format!("inbound.response_code.{status}"), 1);
    t.increment(&format!("inbound.response_code.{route}.{status}"), 1);
    t.timing(&format!("inbound.response_time.{route}"), ms);
    if sampled && t.tracing_enabled() {
        let name = route.to_lowercase();
        t.span(SpanOut {
            trace_id: &trace_id,
            parent_id: parent_id.as_deref(),
            id: &span_id,
            kind: "SERVER",
            name: &name,
            timestamp: ts,
            duration: (start.elapsed().as_micros() as i64).max(1),
            local_endpoint: t.local_endpoint(),
            remote_endpoint: ip.as_deref().map(|ip| RemoteEndpoint {
                service_name: None,
                ipv4: Some(ip),
            }),
            tags: Tags {
                method: Some(&method),
                path: Some(&path),
                status: Some(status.to_string()),
                error: (status >= 500).then(|| status.to_string()),
            },
        });
    }
    resp
}

/// One upstream call made while serving a request: its B3 headers, then [`Outbound::finish`].
pub struct Outbound {
    ctx: RequestCtx,
    svc: String,
    span_id: String,
    start: Instant,
    ts: i64,
}

impl RequestCtx {
    /// Start a call to `svc` at `url`: logs `request-outgoing` (as the book, before the call).
    pub fn outbound(&self, svc: &str, url: &str) -> Outbound {
        self.telemetry.log(
            "info",
            "request-outgoing",
            OutgoingFields {
                url,
                svc,
                trace_id: &self.trace_id,
            },
        );
        Outbound {
            ctx: self.clone(),
            svc: svc.to_owned(),
            span_id: b3::new_id(),
            start: Instant::now(),
            ts: now_us(),
        }
    }
}

impl Outbound {
    /// The headers to send: all four multi B3 headers and `b3`.
    pub fn headers(&self) -> [(&'static str, String); 6] {
        b3::headers(
            &self.ctx.trace_id,
            &self.span_id,
            &self.ctx.span_id,
            self.ctx.sampled,
        )
    }

    /// Record the call: the outbound timer and counter, and its CLIENT span.
    pub fn finish(self, status: Option<u16>) {
        let t = &self.ctx.telemetry;
        let ms = self.start.elapsed().as_secs_f64() * 1000.0;
        t.timing(&format!("outbound.{}.request-time", self.svc), ms);
        t.increment(&format!("outbound.{}.request-count", self.svc), 1);
        if self.ctx.sampled && t.tracing_enabled() {
            let name = format!("call_{}", self.svc);
            t.span(SpanOut {
                trace_id: &self.ctx.trace_id,
                parent_id: Some(&self.ctx.span_id),
                id: &self.span_id,
                kind: "CLIENT",
                name: &name,
                timestamp: self.ts,
                duration: (self.start.elapsed().as_micros() as i64).max(1),
                local_endpoint: t.local_endpoint(),
                remote_endpoint: Some(RemoteEndpoint {
                    service_name: Some(&self.svc),
                    ipv4: None,
                }),
                tags: Tags {
                    method: None,
                    path: None,
                    status: status.map(|s| s.to_string()),
                    error: match status {
                        Some(s) if s >= 500 => Some(s.to_string()),
                        Some(_) => None,
                        None => Some("no answer".into()),
                    },
                },
            });
        }
    }
}
