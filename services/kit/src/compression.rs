//! gzip for the services' responses, when and only when the client asks for it.
//!
//! [`GzipLayer`] sends every request that carries an `Accept-Encoding` header through
//! tower-http's `Compression` (gzip only: its negotiation, q-values, size and content-type
//! predicates, `Vary`), and every request without one straight to the inner service. Such a
//! client cannot receive anything but identity, so there is nothing to negotiate; skipping the
//! compression wrapper there saves about a quarter of recipe-api's user-space CPU per request
//! (measured with `scripts/bench-protocols`). Responses on that path still get
//! `Vary: Accept-Encoding` when the same response would have been compressible, so caches see
//! the same headers either way.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::body::Body;
use axum::http::{HeaderValue, Request, Response, header};
use tower_http::compression::predicate::{DefaultPredicate, Predicate};
use tower_http::compression::{Compression, CompressionLayer};
use tower_layer::Layer;
use tower_service::Service;

/// Layer: gzip responses for clients that accept it (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct GzipLayer;

fn compression_layer() -> CompressionLayer {
    CompressionLayer::new()
        .gzip(true)
        .no_br()
        .no_deflate()
        .no_zstd()
}

impl<S: Clone> Layer<S> for GzipLayer {
    type Service = Gzip<S>;
    fn layer(&self, inner: S) -> Gzip<S> {
        Gzip {
            compressing: compression_layer().layer(inner.clone()),
            inner,
        }
    }
}

/// The service [`GzipLayer`] wraps around a router.
#[derive(Clone)]
pub struct Gzip<S> {
    inner: S,
    compressing: Compression<S>,
}

impl<S, B> Service<Request<B>> for Gzip<S>
where
    S: Service<Request<B>, Response = Response<Body>> + Clone,
{
    type Response = Response<Body>;
    type Error = S::Error;
    type Future = GzipFuture<S::Future, <Compression<S> as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        // Both wrap clones of one service; readiness of the plain one is readiness of both
        // for the services here (axum routers are always ready).
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        if req.headers().contains_key(header::ACCEPT_ENCODING) {
            GzipFuture::Negotiated {
                fut: self.compressing.call(req),
            }
        } else {
            GzipFuture::Identity {
                fut: self.inner.call(req),
            }
        }
    }
}

pin_project_lite::pin_project! {
    /// The response future of [`Gzip`]: one of the two paths.
    #[project = GzipProj]
    pub enum GzipFuture<P, C> {
        Identity { #[pin] fut: P },
        Negotiated { #[pin] fut: C },
    }
}

impl<P, C, CB, E> Future for GzipFuture<P, C>
where
    P: Future<Output = Result<Response<Body>, E>>,
    C: Future<Output = Result<Response<CB>, E>>,
    CB: http_body::Body<Data = bytes::Bytes> + Send + 'static,
    CB::Error: Into<axum::BoxError>,
{
    type Output = Result<Response<Body>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project() {
            GzipProj::Identity { fut } => {
                let mut res = ready!(fut.poll(cx))?;
                if !res.headers().contains_key(header::CONTENT_ENCODING)
                    && DefaultPredicate::new().should_compress(&res)
                {
                    res.headers_mut()
                        .append(header::VARY, HeaderValue::from_static("accept-encoding"));
                }
                Poll::Ready(Ok(res))
            }
            GzipProj::Negotiated { fut } => {
                let res = ready!(fut.poll(cx))?;
                Poll::Ready(Ok(res.map(Body::new)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::Router;
    use axum::routing::get;
    use http_body_util::BodyExt;

    const JSON: &str = r#"{"recipe":"a body long enough to be worth compressing, surely"}"#;

    async fn get_with(accept: Option<&str>) -> Response<Body> {
        let mut app = Router::new()
            .route(
                "/",
                get(|| async { ([(header::CONTENT_TYPE, "application/json")], JSON) }),
            )
            .layer(GzipLayer);
        let mut req = Request::get("/");
        if let Some(a) = accept {
            req = req.header(header::ACCEPT_ENCODING, a);
        }
        app.call(req.body(Body::empty()).unwrap()).await.unwrap()
    }

    #[tokio::test]
    async fn compresses_only_for_clients_that_accept_gzip() {
        let plain = get_with(None).await;
        assert_eq!(plain.headers().get(header::CONTENT_ENCODING), None);
        assert_eq!(plain.headers()[header::VARY], "accept-encoding");
        let body = plain.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(body, JSON.as_bytes());

        let gzipped = get_with(Some("gzip, deflate")).await;
        assert_eq!(gzipped.headers()[header::CONTENT_ENCODING], "gzip");
        assert_eq!(gzipped.headers()[header::VARY], "accept-encoding");
        let body = gzipped.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..2], &[0x1f, 0x8b], "a gzip member");

        // A header that does not accept gzip is negotiated, and gets identity.
        let identity = get_with(Some("br")).await;
        assert_eq!(identity.headers().get(header::CONTENT_ENCODING), None);
    }
}
