//! Tracing for services: one `EnvFilter` knob (`RUST_LOG`) and one log line per request
//! ([`RequestLogLayer`]).
//!
//! Log lines go to stderr through a small buffer that a background thread flushes every
//! [`FLUSH_EVERY`] (and at once past [`FLUSH_AT`] bytes, and on [`flush`]): one write per
//! batch instead of one per request, which is most of what a per-request log costs. A process
//! killed with SIGKILL loses at most the last [`FLUSH_EVERY`] of lines.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use axum::response::Response;
use tracing_subscriber::EnvFilter;

/// How often buffered log lines reach stderr.
pub const FLUSH_EVERY: Duration = Duration::from_millis(50);
/// Buffered bytes past which a writer flushes right away.
pub const FLUSH_AT: usize = 32 * 1024;

static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static FLUSHER: Once = Once::new();

/// Write whatever is buffered to stderr now.
pub fn flush() {
    let pending = {
        let mut b = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
        // Hand the next batch a buffer of this one's size, so it does not regrow from empty
        // (a copy per doubling) under steady load.
        let size = b.len().min(FLUSH_AT);
        std::mem::replace(&mut *b, Vec::with_capacity(size))
    };
    if !pending.is_empty() {
        let mut err = std::io::stderr().lock();
        let _ = err.write_all(&pending);
        let _ = err.flush();
    }
}

/// A writer appending to the shared buffer (what the fmt layer writes each event through).
struct Buffered;

impl Write for Buffered {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        let full = {
            let mut b = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
            b.extend_from_slice(bytes);
            b.len() >= FLUSH_AT
        };
        if full {
            flush();
        }
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Install a fmt subscriber writing to stderr (buffered, see the module doc); `RUST_LOG`
/// overrides the default `info`. Calling it twice is harmless (the second call does nothing).
pub fn init(service: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let installed = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| Buffered)
        .with_ansi(false)
        .try_init()
        .is_ok();
    if installed {
        FLUSHER.call_once(|| {
            let spawned = std::thread::Builder::new()
                .name("log-flush".into())
                .spawn(|| {
                    loop {
                        std::thread::sleep(FLUSH_EVERY);
                        flush();
                    }
                });
            if spawned.is_err() {
                eprintln!("{service}: cannot start the log flusher; logs are flushed at exit only");
            }
        });
    }
    tracing::debug!(service, "tracing ready");
}

// === impl RequestLog ===

/// Layer: one log line per completed request (method, path, status, latency), in the format of
/// the fmt subscriber's lines, written straight into the shared buffer. It is on every request's
/// path, so it avoids what a generic middleware costs there: no boxed future, no clone of the
/// inner service, no `tracing` field visitors, and a timestamp formatted with plain digit writes.
/// `RUST_LOG` still governs it: the line is written only when `INFO` for target
/// [`REQUEST_TARGET`] is enabled (checked through `tracing`'s cached callsite interest).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestLogLayer;

/// The `tracing` target the request lines are filtered by (e.g. `RUST_LOG=info,request=off`).
pub const REQUEST_TARGET: &str = "request";

impl<S> tower_layer::Layer<S> for RequestLogLayer {
    type Service = RequestLog<S>;
    fn layer(&self, inner: S) -> RequestLog<S> {
        RequestLog { inner }
    }
}

/// The service [`RequestLogLayer`] wraps around a router.
#[derive(Debug, Clone)]
pub struct RequestLog<S> {
    inner: S,
}

impl<S, B> tower_service::Service<axum::http::Request<B>> for RequestLog<S>
where
    S: tower_service::Service<axum::http::Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = RequestLogFuture<S::Future>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let logged = tracing::enabled!(target: REQUEST_TARGET, tracing::Level::INFO).then(|| {
            // `Method` and `Uri` clones share their bytes: no copy of the path.
            (req.method().clone(), req.uri().clone(), Instant::now())
        });
        RequestLogFuture {
            inner: self.inner.call(req),
            logged,
        }
    }
}

pin_project_lite::pin_project! {
    /// The inner response future, logging the request when it completes.
    pub struct RequestLogFuture<F> {
        #[pin]
        inner: F,
        logged: Option<(axum::http::Method, axum::http::Uri, Instant)>,
    }
}

impl<F, E> std::future::Future for RequestLogFuture<F>
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
        if let (Some((method, uri, start)), Ok(response)) = (this.logged.take(), &out)
            && worth_a_line(uri.path(), response.status().as_u16())
        {
            write_request_line(
                &method,
                uri.path(),
                response.status().as_u16(),
                start.elapsed(),
            );
        }
        std::task::Poll::Ready(out)
    }
}

/// The status of the last `/health` answer, to log changes only.
static LAST_HEALTH: std::sync::atomic::AtomicU16 = std::sync::atomic::AtomicU16::new(0);

/// Every request is a line, but `/health` probes (every 2 s, from the supervisor, the hub and
/// the proxy) only when their answer changes: a learner's `lab logs` shows the traffic and the
/// state changes, not hundreds of identical probes.
fn worth_a_line(path: &str, status: u16) -> bool {
    if path != "/health" {
        return true;
    }
    LAST_HEALTH.swap(status, std::sync::atomic::Ordering::Relaxed) != status
}

/// Append `<rfc3339 µs>  INFO request: method=GET path=/x status=200 latency_us=12`.
fn write_request_line(method: &axum::http::Method, path: &str, status: u16, took: Duration) {
    use std::fmt::Write as _;
    let mut line = String::with_capacity(96 + path.len());
    let _ = writeln!(
        line,
        "{}  INFO {REQUEST_TARGET}: method={method} path={} status={status} latency_us={}",
        humantime::format_rfc3339_micros(std::time::SystemTime::now()),
        PathForLog(path),
        took.as_micros()
    );
    let _ = Buffered.write(line.as_bytes());
}

/// A request path as one log token: bytes that would break the line (control characters,
/// spaces) are percent-escaped, so a crafted path cannot forge a second log line.
struct PathForLog<'a>(&'a str);

impl std::fmt::Display for PathForLog<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.0;
        if !s.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return f.write_str(s);
        }
        for ch in s.chars() {
            if ch.is_control() || ch == ' ' {
                let mut buf = [0u8; 4];
                for b in ch.encode_utf8(&mut buf).bytes() {
                    write!(f, "%{b:02X}")?;
                }
            } else {
                std::fmt::Write::write_char(f, ch)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::PathForLog;

    #[test]
    fn health_probes_are_a_line_only_when_their_answer_changes() {
        use super::worth_a_line;
        assert!(worth_a_line("/recipes/42", 200) && worth_a_line("/recipes/42", 200));
        assert!(worth_a_line("/health", 200), "the first probe");
        assert!(!worth_a_line("/health", 200) && !worth_a_line("/health", 200));
        assert!(worth_a_line("/health", 500), "DOWN is a change");
        assert!(!worth_a_line("/health", 500));
        assert!(worth_a_line("/health", 200), "back");
    }

    #[test]
    fn a_path_cannot_forge_a_log_line() {
        assert_eq!(PathForLog("/recipes/42").to_string(), "/recipes/42");
        assert_eq!(PathForLog("/a b\nc\u{7f}").to_string(), "/a%20b%0Ac%7F");
    }
}
