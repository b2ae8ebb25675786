//! The request middleware: one incoming log document, span and StatsD timing per request,
//! B3 propagation, the outbound calls a handler makes ([`Outbound`]), route names, times.

use super::b3;
use super::telemetry::*;
use super::wire::*;
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::response::Response;
use std::sync::Arc;
use std::time::Instant;

/// Wrap `router` with the per-request instrumentation (nothing when telemetry is off).
pub fn apply(router: Router, t: Arc<Telemetry>) -> Router {
    if !t.enabled() {
        return router;
    }
    router.layer(InstrumentLayer(t))
}

/// The layer [`apply`] puts on every route: a plain tower service around the route, so a
/// request costs no boxed future and no clone of the router (axum's `from_fn` costs both, a
/// few µs a request on the chain's path; issue 17).
#[derive(Clone)]
struct InstrumentLayer(Arc<Telemetry>);

impl<S> tower_layer::Layer<S> for InstrumentLayer {
    type Service = Instrumented<S>;
    fn layer(&self, inner: S) -> Instrumented<S> {
        Instrumented {
            inner,
            t: self.0.clone(),
        }
    }
}

/// A route with its request instrumented (see [`InstrumentLayer`]).
#[derive(Clone)]
pub struct Instrumented<S> {
    inner: S,
    t: Arc<Telemetry>,
}

impl<S> tower_service::Service<Request> for Instrumented<S>
where
    S: tower_service::Service<Request, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = InstrumentedFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> Self::Future {
        let begun = (req.uri().path() != "/health").then(|| begin(&self.t, &mut req));
        InstrumentedFuture {
            inner: self.inner.call(req),
            begun,
        }
    }
}

pin_project_lite::pin_project! {
    /// The route's response future, recording the request when it completes.
    pub struct InstrumentedFuture<F> {
        #[pin]
        inner: F,
        begun: Option<Begun>,
    }
}

impl<F, E> std::future::Future for InstrumentedFuture<F>
where
    F: std::future::Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let this = self.project();
        let out = std::task::ready!(this.inner.poll(cx));
        if let (Some(b), Ok(resp)) = (this.begun.take(), &out) {
            finish(b, resp);
        }
        std::task::Poll::Ready(out)
    }
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

/// What the start of a request leaves for its end.
pub struct Begun {
    t: Arc<Telemetry>,
    start: Instant,
    ts: i64,
    path: String,
    method: axum::http::Method,
    route: String,
    trace_id: String,
    parent_id: Option<String>,
    span_id: String,
    sampled: bool,
    ip: Option<String>,
}

/// The start of a request: its trace context (B3 in, or a new trace), the incoming log
/// document, and the [`RequestCtx`] its handler reads.
fn begin(t: &Arc<Telemetry>, req: &mut Request) -> Begun {
    let start = Instant::now();
    let ts = now_us();
    let path = req.uri().path().to_owned();
    let method = req.method().clone();
    let route = route_name(
        method.as_str(),
        req.extensions()
            .get::<MatchedPath>()
            .map(MatchedPath::as_str),
    );
    let incoming = b3::extract(req.headers());
    let sampled = incoming.as_ref().and_then(|i| i.sampled).unwrap_or(true);
    let (trace_id, parent_id) = match incoming {
        Some(i) => (
            Some(i.trace_id).filter(|t| !t.is_empty()),
            Some(i.span_id).filter(|s| !s.is_empty()),
        ),
        None => (None, None),
    };
    let trace_id = trace_id.unwrap_or_else(b3::new_id);
    let span_id = b3::new_id();
    let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
    let ip =
        header("x-forwarded-for").and_then(|v| v.split(',').next().map(|s| s.trim().to_owned()));
    t.log(
        "info",
        "request-incoming",
        IncomingFields {
            path: &path,
            method: method.as_str(),
            ip: ip.as_deref(),
            ua: header("user-agent"),
            trace_id: &trace_id,
        },
    );
    req.extensions_mut().insert(RequestCtx {
        telemetry: t.clone(),
        trace_id: trace_id.clone(),
        span_id: span_id.clone(),
        sampled,
    });
    Begun {
        t: t.clone(),
        start,
        ts,
        path,
        method,
        route,
        trace_id,
        parent_id,
        span_id,
        sampled,
        ip,
    }
}

/// The end of a request: a failure's log document, the StatsD lines, the SERVER span.
fn finish(b: Begun, resp: &Response) {
    let (t, path, route, trace_id) = (&b.t, b.path.as_str(), b.route.as_str(), b.trace_id.as_str());
    let method = b.method.as_str();
    let status = resp.status().as_u16();
    let ms = b.start.elapsed().as_secs_f64() * 1000.0;
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
                path,
                method,
                trace_id,
            },
        );
    }
    t.increment(format_args!("inbound.response_code.{status}"), 1);
    t.increment(format_args!("inbound.response_code.{route}.{status}"), 1);
    t.timing(format_args!("inbound.response_time.{route}"), ms);
    if b.sampled && t.tracing_enabled() {
        let name = route.to_lowercase();
        t.span(SpanOut {
            trace_id,
            parent_id: b.parent_id.as_deref(),
            id: &b.span_id,
            kind: "SERVER",
            name: &name,
            timestamp: b.ts,
            duration: (b.start.elapsed().as_micros() as i64).max(1),
            local_endpoint: t.local_endpoint(),
            remote_endpoint: b.ip.as_deref().map(|ip| RemoteEndpoint {
                service_name: None,
                ipv4: Some(ip),
            }),
            tags: Tags {
                method: Some(method),
                path: Some(path),
                status: Some(status.to_string()),
                error: (status >= 500).then(|| status.to_string()),
            },
        });
    }
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
        t.timing(format_args!("outbound.{}.request-time", self.svc), ms);
        t.increment(format_args!("outbound.{}.request-count", self.svc), 1);
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
