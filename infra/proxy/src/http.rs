//! HTTP mode: a reverse proxy for one backend.
//!
//! Per request: the stats page if the path asks for it; else the body is read (bounded, under
//! the client timeout) so the request can be retried; hop-by-hop headers are dropped and
//! `X-Forwarded-For`/`-Proto` added; a server slot is taken per the balance (queueing at
//! maxconn, 503 past the queue timeout); the request goes out over a keep-alive pool. A
//! connection failure, or any failure before a response on an idempotent request, is retried
//! on another server (and, with active checks, takes the server out until checks bring it
//! back). A safe request (GET, HEAD, OPTIONS) not answered within ten times the backend's usual
//! answer time (at least 100 ms) is also sent to another server, and the first answer wins: a
//! hung server costs that delay, not the server timeout, and after three such losses in a row
//! it is out of rotation (down until the checks bring it back, else for 2 s). The slot is held
//! until the response body has been sent, so a server's in-flight count is what it is really
//! serving.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::Ordering::*;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::backend::{Backend, NoServer, Slot};
use crate::config::Frontend;
use crate::stats::Stats;

type Upstream = Client<HttpConnector, Full<Bytes>>;

/// What every request of one HTTP frontend shares.
pub struct HttpProxy {
    pub cfg: Frontend,
    pub backend: Arc<Backend>,
    client: Upstream,
    stats: Arc<Stats>,
    tls: bool,
    /// Each server's `host:port` as a URI authority, parsed once.
    authorities: Vec<hyper::http::uri::Authority>,
}

/// The client's address, put on each request by the accept loop.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

impl HttpProxy {
    pub fn new(cfg: Frontend, backend: Arc<Backend>, stats: Arc<Stats>) -> Arc<Self> {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_millis(cfg.connect_timeout_ms)));
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(1024)
            .build(connector);
        let authorities = backend
            .servers
            .iter()
            .map(|s| {
                s.addr
                    .parse()
                    .unwrap_or_else(|_| hyper::http::uri::Authority::from_static("invalid.invalid"))
            })
            .collect();
        Arc::new(Self {
            tls: cfg.tls.is_some(),
            cfg,
            backend,
            client,
            stats,
            authorities,
        })
    }

    /// The whole request → response of the proxy; never fails (errors are responses).
    pub async fn handle(
        self: Arc<Self>,
        req: Request<Body>,
        peer: Option<SocketAddr>,
    ) -> Result<Response<Body>, Infallible> {
        if let Some(page) = self.stats_page(req.uri()) {
            return Ok(page);
        }
        // RFC 9112 §3.2: an HTTP/1.1 request has exactly one Host (HTTP/2 carries :authority);
        // a proxy does not tunnel (CONNECT), as HAProxy in http mode does not.
        if req.method() == Method::CONNECT {
            return Ok(error(
                StatusCode::METHOD_NOT_ALLOWED,
                "CONNECT is not proxied: this is a reverse proxy",
            ));
        }
        if req.version() == Version::HTTP_11 {
            let hosts = req.headers().get_all(header::HOST).iter().count();
            if hosts != 1 {
                return Ok(error(
                    StatusCode::BAD_REQUEST,
                    if hosts == 0 {
                        "an HTTP/1.1 request needs a Host header"
                    } else {
                        "a request may carry one Host header only"
                    },
                ));
            }
        }
        let (parts, body) = req.into_parts();
        let body = match self.read_body(&parts.headers, body).await {
            Ok(b) => b,
            Err(resp) => return Ok(resp),
        };
        let headers = self.upstream_headers(&parts, peer);
        let idempotent = matches!(
            parts.method,
            Method::GET
                | Method::HEAD
                | Method::PUT
                | Method::DELETE
                | Method::OPTIONS
                | Method::TRACE
        );
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| hyper::http::uri::PathAndQuery::from_static("/"));

        let mut tried: Vec<usize> = Vec::new();
        loop {
            let slot = match self.backend.acquire(&tried).await {
                Ok(s) => s,
                Err(NoServer::QueueTimeout) => {
                    return Ok(error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "queue timeout: every server is at its maxconn",
                    ));
                }
                Err(NoServer::NoneAvailable) => {
                    return Ok(error(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "no server is available to handle this request",
                    ));
                }
            };
            let request_to = |index: usize| -> Option<Request<Full<Bytes>>> {
                let uri = Uri::builder()
                    .scheme(hyper::http::uri::Scheme::HTTP)
                    .authority(self.authorities[index].clone())
                    .path_and_query(path.clone())
                    .build()
                    .ok()?;
                let mut up = Request::new(Full::new(body.clone()));
                *up.method_mut() = parts.method.clone();
                *up.uri_mut() = uri;
                *up.version_mut() = Version::HTTP_11;
                *up.headers_mut() = headers.clone();
                Some(up)
            };
            let Some(up) = request_to(slot.index) else {
                return Ok(error(StatusCode::BAD_REQUEST, "invalid request target"));
            };
            let timeout = Duration::from_millis(self.cfg.server_timeout_ms);
            let sent = std::time::Instant::now();
            let first = self.client.request(up);
            tokio::pin!(first);
            // A safe request not answered in ten times the usual time is asked of another
            // server too, and the first answer is taken: a hung server (SIGSTOPped, say) costs
            // its requests that delay, not the client's timeout, and after a few such losses in
            // a row it is out of rotation.
            let hedge = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS)
                && self.backend.servers.len() > 1;
            let (got, slot) = if hedge {
                let hedge_after = self.backend.hedge_after(timeout);
                let left = timeout.saturating_sub(hedge_after);
                match tokio::time::timeout(hedge_after, &mut first).await {
                    Ok(r) => (Got::Answer(r), slot),
                    Err(_) => {
                        let mut others = tried.clone();
                        others.push(slot.index);
                        let second = self
                            .backend
                            .take_now(&others)
                            .and_then(|s| Some((request_to(s.index)?, s)));
                        match second {
                            Some((up2, slot2)) => {
                                slot2.server().counters.retries.fetch_add(1, Relaxed);
                                let second = self.client.request(up2);
                                let raced = tokio::time::timeout(left, async {
                                    tokio::select! {
                                        r = &mut first => (r, true),
                                        r = second => (r, false),
                                    }
                                })
                                .await;
                                match raced {
                                    Ok((r, true)) => (Got::Answer(r), slot),
                                    Ok((r, false)) => {
                                        self.backend.hedge_lost(slot.index);
                                        (Got::Answer(r), slot2)
                                    }
                                    Err(_) => (Got::TimedOut, slot),
                                }
                            }
                            None => match tokio::time::timeout(left, &mut first).await {
                                Ok(r) => (Got::Answer(r), slot),
                                Err(_) => (Got::TimedOut, slot),
                            },
                        }
                    }
                }
            } else {
                match tokio::time::timeout(timeout, &mut first).await {
                    Ok(r) => (Got::Answer(r), slot),
                    Err(_) => (Got::TimedOut, slot),
                }
            };
            let server = slot.server();
            match got {
                Got::Answer(Ok(resp)) => {
                    self.backend.answered(slot.index, sent.elapsed());
                    return Ok(self.respond(resp, slot).await);
                }
                Got::Answer(Err(e)) => {
                    let connect = e.is_connect();
                    if connect {
                        server.counters.conn_errors.fetch_add(1, Relaxed);
                        // Passive check: out of rotation until the active checks bring it back.
                        if self.cfg.check.is_some() {
                            self.backend.set_up(slot.index, false);
                        }
                    } else {
                        server.counters.resp_errors.fetch_add(1, Relaxed);
                    }
                    let retry = (connect || idempotent) && (tried.len() as u32) < self.cfg.retries;
                    tracing::info!(backend = %self.backend.name, server = %server.name, error = %e, retry, "upstream request failed");
                    if retry {
                        server.counters.retries.fetch_add(1, Relaxed);
                        tried.push(slot.index);
                        continue;
                    }
                    server.counters.status(502);
                    return Ok(error(
                        StatusCode::BAD_GATEWAY,
                        "the server failed to answer",
                    ));
                }
                Got::TimedOut => {
                    server.counters.resp_errors.fetch_add(1, Relaxed);
                    server.counters.status(504);
                    return Ok(error(
                        StatusCode::GATEWAY_TIMEOUT,
                        "the server did not answer in time",
                    ));
                }
            }
        }
    }

    fn stats_page(&self, uri: &Uri) -> Option<Response<Body>> {
        let want = self.cfg.stats_uri.as_deref()?;
        let got = uri.path_and_query()?.as_str();
        let format = got.strip_prefix(want)?;
        let (ctype, body) = match format {
            "" => ("text/html; charset=utf-8", self.stats.html()),
            ";csv" => ("text/plain; charset=utf-8", self.stats.csv()),
            ";json" => ("application/json", self.stats.json()),
            _ => return None,
        };
        Some(
            Response::builder()
                .header(header::CONTENT_TYPE, ctype)
                .header(header::CACHE_CONTROL, "no-cache")
                .body(Body::from(body))
                .expect("static response"),
        )
    }

    /// The request body, whole, within the limits; or the error response to send instead.
    async fn read_body(&self, headers: &HeaderMap, body: Body) -> Result<Bytes, Response<Body>> {
        use hyper::body::Body as _;
        if body.is_end_stream() {
            return Ok(Bytes::new());
        }
        if let Some(len) = headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<usize>().ok())
            && len > self.cfg.max_body_bytes
        {
            return Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            ));
        }
        let limited = Limited::new(body, self.cfg.max_body_bytes);
        let timeout = Duration::from_millis(self.cfg.client_timeout_ms);
        match tokio::time::timeout(timeout, limited.collect()).await {
            Ok(Ok(c)) => Ok(c.to_bytes()),
            Ok(Err(e)) if e.is::<http_body_util::LengthLimitError>() => Err(error(
                StatusCode::PAYLOAD_TOO_LARGE,
                "request body too large",
            )),
            Ok(Err(_)) => Err(error(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )),
            Err(_) => Err(error(
                StatusCode::REQUEST_TIMEOUT,
                "the request body took too long",
            )),
        }
    }

    /// The client's headers minus hop-by-hop ones, plus `Host` (from HTTP/2's authority) and
    /// the `X-Forwarded-*` pair; `Accept-Encoding` is dropped when the proxy compresses itself.
    fn upstream_headers(
        &self,
        parts: &hyper::http::request::Parts,
        peer: Option<SocketAddr>,
    ) -> HeaderMap {
        let mut h = parts.headers.clone();
        strip_hop_by_hop(&mut h);
        if !h.contains_key(header::HOST)
            && let Some(a) = parts.uri.authority()
            && let Ok(v) = HeaderValue::from_str(a.as_str())
        {
            h.insert(header::HOST, v);
        }
        if let Some(peer) = peer {
            let ip = peer.ip().to_string();
            let value = match h.get("x-forwarded-for").and_then(|v| v.to_str().ok()) {
                Some(prev) => format!("{prev}, {ip}"),
                None => ip,
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                h.insert(HeaderName::from_static("x-forwarded-for"), v);
            }
        }
        h.insert(
            HeaderName::from_static("x-forwarded-proto"),
            HeaderValue::from_static(if self.tls { "https" } else { "http" }),
        );
        if !self.cfg.compression.is_empty() {
            h.remove(header::ACCEPT_ENCODING);
        }
        h
    }

    /// The response to send: a small body (known length up to [`BUFFER_UP_TO`]) is read whole
    /// first, so headers and body leave in one write, as the server sent them, instead of a
    /// write for the headers and another for the body (twice the packets on the client side);
    /// a larger or unknown-length body streams, holding the slot until it is sent.
    async fn respond(&self, resp: Response<Incoming>, slot: Slot) -> Response<Body> {
        use hyper::body::Body as _;
        slot.server().counters.status(resp.status().as_u16());
        let (mut parts, body) = resp.into_parts();
        strip_hop_by_hop(&mut parts.headers);
        let small = body.size_hint().exact().is_some_and(|n| n <= BUFFER_UP_TO);
        if small {
            let timeout = Duration::from_millis(self.cfg.server_timeout_ms);
            return match tokio::time::timeout(timeout, body.collect()).await {
                Ok(Ok(c)) => {
                    let bytes = c.to_bytes();
                    slot.server()
                        .counters
                        .bytes_out
                        .fetch_add(bytes.len() as u64, Relaxed);
                    Response::from_parts(parts, Body::from(bytes))
                }
                _ => {
                    slot.server().counters.resp_errors.fetch_add(1, Relaxed);
                    error(StatusCode::BAD_GATEWAY, "the server's response body failed")
                }
            };
        }
        Response::from_parts(
            parts,
            Body::new(SlotBody {
                inner: body,
                slot: Some(slot),
            }),
        )
    }
}

/// What came of sending a request to a server within the server timeout.
enum Got {
    Answer(Result<Response<Incoming>, hyper_util::client::legacy::Error>),
    TimedOut,
}

/// Response bodies of known length up to this are read whole before the answer is sent.
const BUFFER_UP_TO: u64 = 64 * 1024;

/// Headers that describe one connection, never forwarded (RFC 9110 §7.6.1), plus any header
/// the `Connection` header names.
pub fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in [
        header::CONNECTION,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        header::UPGRADE,
        header::PROXY_AUTHENTICATE,
        header::PROXY_AUTHORIZATION,
    ] {
        h.remove(n);
    }
}

/// A small plain-text error in HAProxy's manner.
fn error(status: StatusCode, why: &str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from(format!(
            "{} {}: {why}\n",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        )))
        .expect("static response")
}

/// The server's response body, holding the server slot until it has been sent in full (or
/// the client went away and dropped it).
struct SlotBody {
    inner: Incoming,
    slot: Option<Slot>,
}

impl hyper::body::Body for SlotBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let polled = Pin::new(&mut self.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(f))) => {
                if let (Some(d), Some(slot)) = (f.data_ref(), &self.slot) {
                    slot.server()
                        .counters
                        .bytes_out
                        .fetch_add(d.len() as u64, Relaxed);
                }
                if self.inner.is_end_stream() {
                    self.slot = None;
                }
            }
            Poll::Ready(_) => self.slot = None,
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_the_ones_connection_names_are_dropped() {
        let mut h = HeaderMap::new();
        h.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-secret-hop"),
        );
        h.insert("x-secret-hop", HeaderValue::from_static("1"));
        h.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        h.insert(
            header::TRANSFER_ENCODING,
            HeaderValue::from_static("chunked"),
        );
        h.insert(header::TE, HeaderValue::from_static("trailers"));
        h.insert("x-kept", HeaderValue::from_static("yes"));
        strip_hop_by_hop(&mut h);
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x-kept"]);
    }
}
