//! A small HTTP/1.1 client with a deadline: enough for web-api's upstream call, health probes
//! and the wire-only scenarios of `lab check`. Every failure is sorted into a kind.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::StatusCode;
use hyper::header::HeaderMap;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: StatusCode,
    /// HTTP/1.1, or HTTP/2 when TLS negotiated it (ALPN).
    pub version: hyper::Version,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Response {
    /// The body as JSON.
    pub fn json(&self) -> Result<serde_json::Value, serde_json::Error> {
        serde_json::from_slice(&self.body)
    }
    /// The body as (lossy) UTF-8 text.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request got no response.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("invalid URL {url:?}: {reason}")]
    Url { url: String, reason: String },
    #[error("connection refused or failed: {0}")]
    Connect(String),
    /// The TLS handshake failed (unknown CA, expired or wrong-name certificate, plain HTTP on
    /// the other end). Never retried over plain HTTP.
    #[error("TLS handshake failed: {0}")]
    Tls(String),
    #[error("no response within {0:?}")]
    Timeout(Duration),
    #[error("request failed: {0}")]
    Other(String),
}

impl ClientError {
    /// A short stable name, for counting errors by kind.
    pub fn kind(&self) -> &'static str {
        match self {
            ClientError::Url { .. } => "url",
            ClientError::Connect(_) => "connect",
            ClientError::Tls(_) => "tls",
            ClientError::Timeout(_) => "timeout",
            ClientError::Other(_) => "other",
        }
    }
}

/// A pooled HTTP/1.1 client for `http://` and `https://` URLs; cheap to clone. HTTPS trusts
/// only the CAs of its TLS config (by default none).
#[derive(Clone)]
pub struct Client {
    inner: HyperClient<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Default for Client {
    fn default() -> Self {
        Self::new()
    }
}

impl Client {
    /// A client for plain HTTP (HTTPS URLs fail: it trusts no CA).
    pub fn new() -> Self {
        Self::with_tls(crate::tls::client_config_trusting_nothing())
    }

    /// A client whose HTTPS trusts what `tls` trusts (e.g. [`crate::tls::client_config`] of the lab CA).
    pub fn with_tls(tls: std::sync::Arc<rustls::ClientConfig>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        connector.enforce_http(false);
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config((*tls).clone())
            .https_or_http()
            .enable_http1()
            // Over TLS, ALPN lets a server that speaks HTTP/2 multiplex every request on one
            // connection (recipe-api does); plain http:// stays HTTP/1.1, as the book's peers speak.
            .enable_http2()
            .wrap_connector(connector);
        let inner = HyperClient::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Self { inner }
    }

    /// GET `url`, reading the whole body, all within `timeout`.
    pub async fn get(&self, url: &str, timeout: Duration) -> Result<Response, ClientError> {
        self.request(hyper::Method::GET, url, &[], None, timeout)
            .await
    }

    /// POST `body` as JSON to `url`, reading the whole answer, all within `timeout`.
    pub async fn post_json(
        &self,
        url: &str,
        body: &serde_json::Value,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let bytes = Bytes::from(serde_json::to_vec(body).expect("JSON values serialise"));
        self.request(
            hyper::Method::POST,
            url,
            &[],
            Some(("application/json", bytes)),
            timeout,
        )
        .await
    }

    /// One request with extra `headers` and an optional `(content type, body)`, all within
    /// `timeout`. Bodies are returned as sent (no decompression).
    pub async fn request(
        &self,
        method: hyper::Method,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, Bytes)>,
        timeout: Duration,
    ) -> Result<Response, ClientError> {
        let uri: hyper::Uri =
            url.parse()
                .map_err(|e: hyper::http::uri::InvalidUri| ClientError::Url {
                    url: url.to_owned(),
                    reason: e.to_string(),
                })?;
        let mut req = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some((ctype, _)) = &body {
            req = req.header(hyper::header::CONTENT_TYPE, *ctype);
        }
        let req = req
            .body(Full::new(body.map(|(_, b)| b).unwrap_or_default()))
            .map_err(|e| ClientError::Url {
                url: url.to_owned(),
                reason: e.to_string(),
            })?;
        let work = async {
            let resp = self.inner.request(req).await.map_err(|e| {
                let chain = source_chain(&e);
                if is_tls_failure(&chain) {
                    ClientError::Tls(format!("{url}: {chain}"))
                } else if e.is_connect() {
                    ClientError::Connect(format!("{url}: {}", source_chain(&e)))
                } else {
                    ClientError::Other(format!("{url}: {}", source_chain(&e)))
                }
            })?;
            let (parts, body) = resp.into_parts();
            let body = body
                .collect()
                .await
                .map_err(|e| ClientError::Other(format!("{url}: reading body: {e}")))?
                .to_bytes();
            Ok(Response {
                status: parts.status,
                version: parts.version,
                headers: parts.headers,
                body,
            })
        };
        tokio::time::timeout(timeout, work)
            .await
            .map_err(|_| ClientError::Timeout(timeout))?
    }
}

/// rustls reports certificate and handshake faults in words; sort them out of connect errors.
fn is_tls_failure(chain: &str) -> bool {
    [
        "certificate",
        "handshake",
        "InvalidContentType",
        "CorruptMessage",
        "received corrupt message",
        "tls",
    ]
    .iter()
    .any(|w| chain.contains(w))
}

fn source_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(inner) = cur {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        cur = inner.source();
    }
    s
}

/// One GET with a fresh client; for one-off probes.
pub async fn get(url: &str, timeout: Duration) -> Result<Response, ClientError> {
    Client::new().get(url, timeout).await
}
