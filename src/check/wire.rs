//! Raw wire helpers for scenarios that must see exactly what travelled: a gRPC unary call over
//! plain HTTP/2 returning the undecoded message bytes (a decoder would silently drop unknown
//! fields, hiding a leak), and gzip decoding.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};

/// What a gRPC unary call returned on the wire.
#[derive(Debug)]
pub struct GrpcReply {
    /// `grpc-status` (0 = OK), from the trailers or the headers of a trailers-only reply.
    pub status: i32,
    pub message: String,
    /// The response message, still protobuf-encoded (empty on error).
    pub body: Vec<u8>,
}

/// Call `path` (`/recipe.RecipeService/GetRecipe`) on `addr` with an encoded request message,
/// over plain HTTP/2 (prior knowledge).
pub async fn grpc_unary(
    addr: &str,
    path: &str,
    request: &[u8],
    timeout: Duration,
) -> anyhow::Result<GrpcReply> {
    grpc_unary_on(addr, path, request, timeout, None).await
}

/// [`grpc_unary`], over TLS (ALPN h2) when `tls` is given.
pub async fn grpc_unary_on(
    addr: &str,
    path: &str,
    request: &[u8],
    timeout: Duration,
    tls: Option<std::sync::Arc<rustls::ClientConfig>>,
) -> anyhow::Result<GrpcReply> {
    let scheme = if tls.is_some() { "https" } else { "http" };
    let work = async {
        let tcp = tokio::net::TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let (mut send, conn_task) = match tls {
            None => {
                let (send, conn) =
                    hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tcp))
                        .await?;
                (
                    send,
                    tokio::spawn(async move {
                        let _ = conn.await;
                    }),
                )
            }
            Some(cfg) => {
                let mut cfg = (*cfg).clone();
                cfg.alpn_protocols = vec![b"h2".to_vec()];
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_owned())?;
                let stream = tokio_rustls::TlsConnector::from(std::sync::Arc::new(cfg))
                    .connect(name, tcp)
                    .await?;
                let (send, conn) = hyper::client::conn::http2::handshake(
                    TokioExecutor::new(),
                    TokioIo::new(stream),
                )
                .await?;
                (
                    send,
                    tokio::spawn(async move {
                        let _ = conn.await;
                    }),
                )
            }
        };
        let mut frame = Vec::with_capacity(request.len() + 5);
        frame.push(0u8);
        frame.extend_from_slice(&(request.len() as u32).to_be_bytes());
        frame.extend_from_slice(request);
        let req = hyper::Request::post(format!("{scheme}://{addr}{path}"))
            .header("content-type", "application/grpc")
            .header("te", "trailers")
            .body(Full::new(Bytes::from(frame)))?;
        let resp = send.send_request(req).await?;
        let (parts, body) = resp.into_parts();
        let collected = body.collect().await?;
        let trailers = collected.trailers().cloned().unwrap_or_default();
        let data = collected.to_bytes();
        conn_task.abort();
        let field = |name: &str| {
            trailers
                .get(name)
                .or_else(|| parts.headers.get(name))
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        let status = field("grpc-status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(-1);
        let message = percent_decode(&field("grpc-message").unwrap_or_default());
        let body = if data.len() >= 5 {
            data[5..].to_vec()
        } else {
            Vec::new()
        };
        anyhow::Ok(GrpcReply {
            status,
            message,
            body,
        })
    };
    tokio::time::timeout(timeout, work).await.map_err(|_| {
        anyhow::anyhow!(
            "gRPC {path} on {addr}: no answer within {} ms",
            timeout.as_millis()
        )
    })?
}

/// Decode a gzip body.
pub fn gunzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(bytes).read_to_end(&mut out)?;
    Ok(out)
}

/// `grpc-message` is percent-encoded on the wire.
fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The protobuf request of a method of the recipe contract (`contracts/recipe.proto`), from JSON.
pub fn grpc_message(method: &str, data: Option<&str>) -> anyhow::Result<Vec<u8>> {
    let json: serde_json::Value = match data {
        Some(d) => {
            serde_json::from_str(d).map_err(|e| anyhow::anyhow!("--data is not JSON: {e}"))?
        }
        None => serde_json::json!({}),
    };
    match method.trim_start_matches('/') {
        "recipe.RecipeService/GetRecipe" => {
            let id = json["id"]
                .as_i64()
                .or_else(|| json["id"].as_str().and_then(|s| s.parse().ok()))
                .and_then(|i| i32::try_from(i).ok())
                .ok_or_else(|| anyhow::anyhow!("GetRecipe needs --data '{{\"id\":42}}'"))?;
            Ok(super::contract::recipe_request(id))
        }
        "recipe.RecipeService/GetMetaData" => Ok(Vec::new()),
        other => anyhow::bail!(
            "\"{other}\" is not a method of the recipe contract: use recipe.RecipeService/GetRecipe or recipe.RecipeService/GetMetaData"
        ),
    }
}

/// A value for a URL query string (`app:web-api and x` → `app%3Aweb-api+and+x`).
pub fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn grpc_messages_are_percent_decoded() {
        assert_eq!(
            super::percent_decode("no%20recipe%20with%20id%207"),
            "no recipe with id 7"
        );
        assert_eq!(super::percent_decode("100%"), "100%");
    }
}
