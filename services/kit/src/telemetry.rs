//! Tracing for services: one `EnvFilter` knob (`RUST_LOG`) and one log line per request.
//!
//! Log lines go to stderr through a small buffer that a background thread flushes every
//! [`FLUSH_EVERY`] (and at once past [`FLUSH_AT`] bytes, and on [`flush`]): one write per
//! batch instead of one per request, which is most of what a per-request log costs. A process
//! killed with SIGKILL loses at most the last [`FLUSH_EVERY`] of lines.

use std::io::Write;
use std::sync::{Mutex, Once};
use std::time::{Duration, Instant};

use axum::extract::Request;
use axum::middleware::Next;
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
    let pending = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|e| e.into_inner()));
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

/// Middleware: log method, path, status and latency of every request, once, when it completes.
pub async fn request_log(req: Request, next: Next) -> Response {
    let method = req.method().clone();
    let uri = req.uri().clone(); // shares its bytes; cheaper than copying the path
    let start = Instant::now();
    let response = next.run(req).await;
    tracing::info!(
        %method,
        path = uri.path(),
        status = response.status().as_u16(),
        latency_us = start.elapsed().as_micros() as u64,
        "request"
    );
    response
}
