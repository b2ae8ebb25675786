//! Malformed and hostile input at the builtin proxy: the committed corpus (`tests/corpus/`,
//! request smuggling, broken framing, oversized heads, binary noise) and random mutations of a
//! valid request (proptest). Each is sent on its own connection; the proxy must never panic,
//! never pass a smuggled request on, and keep serving valid requests.
//!
//! A new interesting input goes into `tests/corpus/` as a file: it is replayed from then on.

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use axum::Router;
use lab_proxy::config::{Frontend, ProxyConfig, Server};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

static PANICS: AtomicUsize = AtomicUsize::new(0);
static HOOK: Once = Once::new();

fn count_panics() {
    HOOK.call_once(|| {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            // Count the proxy's panics, not this file's failing assertions.
            if info
                .location()
                .is_none_or(|l| !l.file().ends_with("tests/malformed.rs"))
            {
                PANICS.fetch_add(1, SeqCst);
            }
            default(info);
        }));
    });
}

const VALID: &[u8] = b"POST /recipes/42?x=1 HTTP/1.1\r\nHost: lab\r\nContent-Type: text/plain\r\nContent-Length: 5\r\nX-Forwarded-For: 10.1.2.3\r\n\r\nhello";

/// An origin that records every path it is asked for, and a proxy in front of it.
async fn setup() -> (lab_proxy::Running, String, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let s2 = seen.clone();
    let app = Router::new().fallback(move |uri: axum::http::Uri| {
        let s = s2.clone();
        async move {
            s.lock().unwrap().push(uri.path().to_owned());
            "origin"
        }
    });
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = l.local_addr().unwrap().to_string();
    tokio::spawn(async move { axum::serve(l, app).await.unwrap() });
    let mut f = Frontend::new(
        "web",
        "127.0.0.1:0",
        vec![Server {
            name: "o".into(),
            addr: origin,
        }],
    );
    f.client_timeout_ms = 300; // incomplete requests are cut off quickly
    f.max_body_bytes = 64 * 1024;
    let p = lab_proxy::start(ProxyConfig { frontends: vec![f] })
        .await
        .unwrap();
    let addr = p.addrs[0].to_string();
    (p, addr, seen)
}

/// Send `bytes` on a fresh connection; the first line of whatever comes back (or "" on close).
async fn send(addr: &str, bytes: &[u8]) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    // No write shutdown: a half-closed client gets no answer (hyper's default, as HAProxy's).
    let _ = s.write_all(bytes).await; // the proxy may close before reading it all
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(3), s.read_to_end(&mut buf)).await;
    String::from_utf8_lossy(&buf)
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

async fn still_serves(addr: &str) {
    let first = send(
        addr,
        b"GET /alive HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert_eq!(first, "HTTP/1.1 200 OK");
}

#[tokio::test]
async fn the_corpus_gets_errors_no_panic_and_no_smuggling() {
    count_panics();
    let (_p, addr, seen) = setup().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    files.sort();
    assert!(files.len() >= 20, "corpus at {}", dir.display());
    for f in &files {
        let bytes = std::fs::read(f).unwrap();
        let first = send(&addr, &bytes).await;
        // Either refused at the proxy (4xx/5xx or a closed connection), or a clean answer
        // (HTTP/2 frames for what starts with the HTTP/2 preface).
        assert!(
            first.is_empty()
                || first.starts_with("HTTP/1.1 ")
                || bytes.starts_with(b"PRI * HTTP/2.0"),
            "{}: {first:?}",
            f.display()
        );
        still_serves(&addr).await;
    }
    let paths = seen.lock().unwrap().clone();
    assert!(
        !paths.iter().any(|p| p.contains("smuggled")),
        "a smuggled request reached the origin: {paths:?}"
    );
    assert_eq!(PANICS.load(SeqCst), 0, "the proxy panicked");
}

#[test]
fn random_mutations_of_a_valid_request_never_break_the_proxy() {
    count_panics();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let (p, addr, _seen) = rt.block_on(setup());
    // Up to 8 edits (insert, delete, overwrite) at random places of the valid request.
    let edits = prop::collection::vec((0usize..VALID.len() + 1, 0u8..3, any::<u8>()), 0..8);
    let mut runner = TestRunner::new(Config {
        cases: 96,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&edits, |edits| {
            let mut req = VALID.to_vec();
            for (at, kind, byte) in edits {
                let at = at.min(req.len());
                match kind {
                    0 => req.insert(at, byte),
                    1 if at < req.len() => {
                        req.remove(at);
                    }
                    _ if at < req.len() => req[at] = byte,
                    _ => req.push(byte),
                }
            }
            let first = rt.block_on(send(&addr, &req));
            prop_assert!(
                first.is_empty() || first.starts_with("HTTP/1.1 "),
                "{first:?} for {:?}",
                String::from_utf8_lossy(&req)
            );
            rt.block_on(still_serves(&addr));
            Ok(())
        })
        .unwrap();
    assert_eq!(PANICS.load(SeqCst), 0, "the proxy panicked");
    drop(p);
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_client_timeout() {
    let (_p, addr, _) = setup().await;
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut buf = [0u8; 1024];
    let n = s.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // Now idle: the proxy closes it within the client timeout (300 ms here), with slack.
    let t0 = std::time::Instant::now();
    let closed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "an idle connection was held for 5 s");
    assert!(
        t0.elapsed() >= Duration::from_millis(250),
        "{:?}",
        t0.elapsed()
    );
}
