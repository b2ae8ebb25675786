//! The builtin proxy in-process on port 0, in front of small axum servers on port 0.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use lab_net::client::Client;
use lab_proxy::config::{Check, Frontend, Mode, ProxyConfig, Server};

/// A backend server answering `GET /` with its name, `/health`, `/json` (compressible), `/ip`
/// (the X-Forwarded-For it received) and `/slow` (holds 300 ms, counting concurrent calls).
struct Origin {
    addr: String,
    task: tokio::task::JoinHandle<()>,
    inflight_max: Arc<AtomicUsize>,
}

async fn origin(name: &'static str) -> Origin {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let now = Arc::new(AtomicUsize::new(0));
    let max = Arc::new(AtomicUsize::new(0));
    let (n2, m2) = (now.clone(), max.clone());
    let app = Router::new()
        .route("/", get(move || async move { name }))
        .route("/health", get(|| async { "OK" }))
        .route(
            "/json",
            get(|| async {
                (
                    [("content-type", "application/json")],
                    format!("{{\"pad\":\"{}\"}}", "x".repeat(2000)),
                )
            }),
        )
        .route(
            "/ip",
            get(|h: axum::http::HeaderMap| async move {
                format!(
                    "{}|{}|{}",
                    h.get("x-forwarded-for")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                    h.get("x-forwarded-proto")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or(""),
                    h.get("accept-encoding")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                )
            }),
        )
        .route(
            "/slow",
            get(move || {
                let (now, max) = (n2.clone(), m2.clone());
                async move {
                    let c = now.fetch_add(1, SeqCst) + 1;
                    max.fetch_max(c, SeqCst);
                    tokio::time::sleep(Duration::from_millis(300)).await;
                    now.fetch_sub(1, SeqCst);
                    "slow"
                }
            }),
        );
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Origin {
        addr,
        task,
        inflight_max: max,
    }
}

fn servers(origins: &[&Origin]) -> Vec<Server> {
    origins
        .iter()
        .enumerate()
        .map(|(i, o)| Server {
            name: format!("s{}", i + 1),
            addr: o.addr.clone(),
        })
        .collect()
}

async fn proxy(f: Frontend) -> (lab_proxy::Running, String) {
    let running = lab_proxy::start(ProxyConfig { frontends: vec![f] })
        .await
        .unwrap();
    let base = format!("http://{}", running.addrs[0]);
    (running, base)
}

const T: Duration = Duration::from_secs(5);

#[tokio::test]
async fn round_robin_alternates_between_servers() {
    let (a, b) = (origin("a").await, origin("b").await);
    let (_p, base) = proxy(Frontend::new("web", "127.0.0.1:0", servers(&[&a, &b]))).await;
    let c = Client::new();
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(c.get(&format!("{base}/"), T).await.unwrap().text());
    }
    assert_eq!(seen, ["a", "b", "a", "b", "a", "b"]);
}

#[tokio::test]
async fn forwarded_headers_are_added_and_accept_encoding_dropped_when_compressing() {
    let a = origin("a").await;
    let mut f = Frontend::new("web", "127.0.0.1:0", servers(&[&a]));
    f.compression = vec!["application/json".into()];
    let (_p, base) = proxy(f).await;
    let c = Client::new();
    let r = c
        .request(
            hyper::Method::GET,
            &format!("{base}/ip"),
            &[("accept-encoding", "gzip"), ("x-forwarded-for", "10.0.0.9")],
            None,
            T,
        )
        .await
        .unwrap();
    assert_eq!(r.text(), "10.0.0.9, 127.0.0.1|http|");
    // Compression offload: JSON is gzipped for a client that accepts it, and only then.
    let gz = c
        .request(
            hyper::Method::GET,
            &format!("{base}/json"),
            &[("accept-encoding", "gzip")],
            None,
            T,
        )
        .await
        .unwrap();
    assert_eq!(gz.headers.get("content-encoding").unwrap(), "gzip");
    assert!(gz.body.len() < 200, "{} bytes", gz.body.len());
    let plain = c.get(&format!("{base}/json"), T).await.unwrap();
    assert!(plain.headers.get("content-encoding").is_none());
    assert!(plain.body.len() > 2000);
    // A type not listed is not compressed.
    let text = c
        .request(
            hyper::Method::GET,
            &format!("{base}/"),
            &[("accept-encoding", "gzip")],
            None,
            T,
        )
        .await
        .unwrap();
    assert!(text.headers.get("content-encoding").is_none());
}

#[tokio::test]
async fn a_dead_server_costs_no_request_and_checks_bring_it_back() {
    let (a, b) = (origin("a").await, origin("b").await);
    let mut f = Frontend::new("web", "127.0.0.1:0", servers(&[&a, &b]));
    f.check = Some(Check {
        path: Some("/health".into()),
        interval_ms: 50,
        timeout_ms: 200,
        rise: 2,
        fall: 2,
    });
    let (p, base) = proxy(f).await;
    let c = Client::new();
    let b_addr = b.addr.clone();
    b.task.abort(); // b stops listening: connections are refused
    let _ = b.task.await;
    for _ in 0..10 {
        let r = c.get(&format!("{base}/"), T).await.unwrap();
        assert_eq!((r.status.as_u16(), r.text().as_str()), (200, "a"));
    }
    let csv = c.get(&format!("{base}/"), T).await.unwrap();
    assert_eq!(csv.status, 200);
    assert!(
        !p.stats.proxies[0].backend.servers[1].up.load(SeqCst),
        "s2 is out of rotation"
    );
    // Bring b back on the same port: the active check returns it to rotation.
    let listener = tokio::net::TcpListener::bind(&b_addr).await.unwrap();
    let app = Router::new()
        .route("/", get(|| async { "b" }))
        .route("/health", get(|| async { "OK" }));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let t0 = Instant::now();
    while !p.stats.proxies[0].backend.servers[1].up.load(SeqCst) {
        assert!(t0.elapsed() < T, "s2 did not come back");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        seen.insert(c.get(&format!("{base}/"), T).await.unwrap().text());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn maxconn_holds_in_flight_requests_and_503s_past_the_queue_timeout() {
    let a = origin("a").await;
    let mut f = Frontend::new("web", "127.0.0.1:0", servers(&[&a]));
    f.server_maxconn = Some(2);
    f.queue_timeout_ms = 400; // 2 at a time, 300 ms each: the 5th and later wait > 400 ms
    let (p, base) = proxy(f).await;
    let c = Client::new();
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (c, url) = (c.clone(), format!("{base}/slow"));
        tasks.push(tokio::spawn(async move {
            c.get(&url, T).await.unwrap().status.as_u16()
        }));
    }
    let mut codes = Vec::new();
    for t in tasks {
        codes.push(t.await.unwrap());
    }
    let ok = codes.iter().filter(|&&c| c == 200).count();
    let unavailable = codes.iter().filter(|&&c| c == 503).count();
    assert_eq!(ok + unavailable, 10, "{codes:?}");
    assert!(ok >= 2 && unavailable >= 1, "{codes:?}");
    assert_eq!(
        a.inflight_max.load(SeqCst),
        2,
        "never more than maxconn at the server"
    );
    assert_eq!(
        p.stats.proxies[0].backend.servers[0]
            .counters
            .max_inflight
            .load(SeqCst),
        2
    );
}

#[tokio::test]
async fn stats_page_in_html_csv_and_json() {
    let a = origin("a").await;
    let mut f = Frontend::new("web", "127.0.0.1:0", servers(&[&a]));
    f.stats_uri = Some("/admin?stats".into());
    let (_p, base) = proxy(f).await;
    let c = Client::new();
    c.get(&format!("{base}/"), T).await.unwrap();
    let html = c.get(&format!("{base}/admin?stats"), T).await.unwrap();
    assert!(html.text().contains("<table>"));
    let csv = c
        .get(&format!("{base}/admin?stats;csv"), T)
        .await
        .unwrap()
        .text();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let s1 = rows.iter().find(|r| r[col("svname")] == "s1").unwrap();
    assert_eq!(s1[col("status")], "no check");
    assert_eq!(s1[col("hrsp_2xx")], "1");
    let json: serde_json::Value = serde_json::from_str(
        &c.get(&format!("{base}/admin?stats;json"), T)
            .await
            .unwrap()
            .text(),
    )
    .unwrap();
    assert_eq!(json["rows"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn tcp_mode_passes_bytes_through() {
    let (a, b) = (origin("a").await, origin("b").await);
    let mut f = Frontend::new("raw", "127.0.0.1:0", servers(&[&a, &b]));
    f.mode = Mode::Tcp;
    let (_p, base) = proxy(f).await;
    let c = Client::new();
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..4 {
        let r = c
            .request(
                hyper::Method::GET,
                &format!("{base}/"),
                &[("connection", "close")],
                None,
                T,
            )
            .await
            .unwrap();
        seen.insert(r.text());
    }
    assert_eq!(seen.len(), 2, "{seen:?}");
}

#[tokio::test]
async fn malformed_requests_get_errors_and_a_slowloris_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = origin("a").await;
    let mut f = Frontend::new("web", "127.0.0.1:0", servers(&[&a]));
    f.client_timeout_ms = 300;
    f.max_body_bytes = 1024;
    let (_p, base) = proxy(f).await;
    let addr = base.trim_start_matches("http://").to_owned();
    // Garbage: a 400 and a closed connection, no panic.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"\x00\x01GARBAGE\r\n\r\n").await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        String::from_utf8_lossy(&buf).starts_with("HTTP/1.1 400"),
        "{:?}",
        String::from_utf8_lossy(&buf)
    );
    // Too large a body: 413.
    let c = Client::new();
    let big = bytes::Bytes::from(vec![b'x'; 4096]);
    let r = c
        .request(
            hyper::Method::POST,
            &format!("{base}/"),
            &[],
            Some(("text/plain", big)),
            T,
        )
        .await
        .unwrap();
    assert_eq!(r.status, 413);
    // Slowloris: headers never finish; the proxy closes within the client timeout.
    let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
    s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let t0 = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut buf))
        .await
        .expect("closed by the proxy");
    assert!(t0.elapsed() < Duration::from_secs(2), "{:?}", t0.elapsed());
    // Still serving.
    assert_eq!(c.get(&format!("{base}/"), T).await.unwrap().text(), "a");
}

/// Raw HTTP/1.1 to `addr`; the status line of the answer.
async fn raw_status(addr: &str, request: &[u8]) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let _ = s.write_all(request).await;
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    String::from_utf8_lossy(&buf[..n])
        .lines()
        .next()
        .unwrap_or("")
        .to_owned()
}

#[tokio::test]
async fn headers_are_held_to_rfc_9112_and_bounded() {
    let a = origin("a").await;
    let f = Frontend::new("web", "127.0.0.1:0", servers(&[&a]));
    let (_p, base) = proxy(f).await;
    let addr = base.trim_start_matches("http://").to_owned();
    let ok = raw_status(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    let two = raw_status(&addr, b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n").await;
    assert!(two.starts_with("HTTP/1.1 400"), "two Hosts: {two}");
    let none = raw_status(&addr, b"GET / HTTP/1.1\r\n\r\n").await;
    assert!(none.starts_with("HTTP/1.1 400"), "no Host: {none}");
    let connect = raw_status(
        &addr,
        b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n",
    )
    .await;
    assert!(connect.starts_with("HTTP/1.1 405"), "CONNECT: {connect}");
    // 410 KB of headers, and 200 header fields: refused (431), not forwarded.
    let mut big = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..410 {
        big.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "p".repeat(1000)).as_bytes());
    }
    big.extend_from_slice(b"\r\n");
    let r = raw_status(&addr, &big).await;
    assert!(
        r.starts_with("HTTP/1.1 431") || r.is_empty(),
        "410 KB of headers: {r}"
    );
    let mut many = b"GET / HTTP/1.1\r\nHost: x\r\n".to_vec();
    for i in 0..200 {
        many.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
    }
    many.extend_from_slice(b"\r\n");
    let r = raw_status(&addr, &many).await;
    assert!(r.starts_with("HTTP/1.1 431"), "200 headers: {r}");
    // Still serving.
    let ok = raw_status(&addr, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").await;
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
}

/// A CA and a certificate for 127.0.0.1 signed by it, as PEM files in `dir`.
fn test_pki(dir: &std::path::Path) -> (std::path::PathBuf, lab_proxy::config::TlsFiles) {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".into(), "localhost".into()])
        .unwrap()
        .signed_by(&leaf_key, &issuer)
        .unwrap();
    let (ca, cert, key) = (
        dir.join("ca.crt"),
        dir.join("proxy.crt"),
        dir.join("proxy.key"),
    );
    std::fs::write(&ca, ca_cert.pem()).unwrap();
    std::fs::write(&cert, leaf.pem()).unwrap();
    std::fs::write(&key, leaf_key.serialize_pem()).unwrap();
    (ca, lab_proxy::config::TlsFiles { cert, key })
}

#[tokio::test]
async fn tls_termination_speaks_http2_to_clients_that_offer_it() {
    let a = origin("a").await;
    let dir = tempfile::tempdir().unwrap();
    let (ca, files) = test_pki(dir.path());
    let mut f = Frontend::new("tls", "127.0.0.1:0", servers(&[&a]));
    f.tls = Some(files);
    let (p, _) = proxy(f).await;
    let url = format!("https://{}/ip", p.addrs[0]);
    let c = Client::with_tls(lab_net::tls::client_config(&ca).unwrap());
    let r = c.get(&url, T).await.unwrap();
    assert_eq!(r.version, hyper::Version::HTTP_2, "ALPN picked HTTP/2");
    assert_eq!(
        r.text(),
        "127.0.0.1|https|",
        "plain HTTP/1.1 to the server, marked https"
    );
    // Plain HTTP on the TLS port gets nothing.
    assert!(
        Client::new()
            .get(&format!("http://{}/", p.addrs[0]), T)
            .await
            .is_err()
    );
}

/// A server that takes connections and reads requests but never answers (as a SIGSTOPped
/// process's accepted sockets behave).
async fn hung() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    (addr, task)
}

#[tokio::test]
async fn a_hung_server_costs_safe_requests_a_hedge_not_the_timeout_and_is_ejected() {
    let a = origin("a").await;
    let (stuck, _t) = hung().await;
    let mut f = Frontend::new(
        "web",
        "127.0.0.1:0",
        vec![
            Server {
                name: "a".into(),
                addr: a.addr.clone(),
            },
            Server {
                name: "stuck".into(),
                addr: stuck,
            },
        ],
    );
    f.server_timeout_ms = 30_000;
    let (p, base) = proxy(f).await;
    let c = Client::new();
    let t0 = Instant::now();
    for _ in 0..20 {
        let r = c.get(&format!("{base}/"), T).await.unwrap();
        assert_eq!((r.status.as_u16(), r.text()), (200, "a".to_owned()));
    }
    // Far less than one server timeout: each request to the hung server was hedged after
    // ~100 ms, and after three such it left the rotation.
    assert!(t0.elapsed() < Duration::from_secs(10), "{:?}", t0.elapsed());
    drop(p);
}
