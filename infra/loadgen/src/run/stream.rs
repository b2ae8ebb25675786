//! A connection to the target: plain TCP or TLS (with the ALPN asked for).

use crate::plan::Plan;
use std::sync::Arc;
use tokio::net::TcpStream;

/// A connection to the target: plain TCP or TLS over it.
pub(super) enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl tokio::io::AsyncRead for Stream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl tokio::io::AsyncWrite for Stream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_flush(cx),
        }
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => std::pin::Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => std::pin::Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// Connect to the plan's target, with TLS (ALPN `alpn`) for https. Errors are a kind name.
pub(super) async fn open(plan: &Plan, alpn: &[u8]) -> Result<Stream, &'static str> {
    let tcp = TcpStream::connect(plan.target.addr())
        .await
        .map_err(|_| "connect")?;
    let _ = tcp.set_nodelay(true);
    if !plan.target.tls {
        return Ok(Stream::Plain(tcp));
    }
    let mut cfg = plan.tls.as_deref().ok_or("tls")?.clone();
    cfg.alpn_protocols = vec![alpn.to_vec()];
    let name =
        rustls_pki_types::ServerName::try_from(plan.target.host.clone()).map_err(|_| "tls")?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(cfg))
        .connect(name, tcp)
        .await
        .map_err(|_| "tls")?;
    Ok(Stream::Tls(Box::new(tls)))
}
