//! The edges over real sockets: an HTTP/1.1 keep-alive server behind one edge, a blocking
//! client in front, and each fault written into a faults file as `lab fault` writes it, seen by
//! the edge on the connection already open.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

mod common;
use common::free_port;

use lab_edges::{EdgeSpec, EdgesConfig};

/// A keep-alive server: every request (head only) is answered 200 with `body`.
fn server(body: &'static str) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                loop {
                    while let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..at + 4);
                        let reply = format!(
                            "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        if s.write_all(reply.as_bytes()).is_err() {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

struct Edge {
    addr: String,
    control: String,
    faults: PathBuf,
    _dir: tempfile::TempDir,
}

fn edge(body: &'static str) -> Edge {
    let upstream = server(body);
    let dir = tempfile::tempdir().unwrap();
    let (port, control) = (free_port(), free_port());
    let cfg = EdgesConfig {
        edges: vec![EdgeSpec {
            name: "recipe-api#1".into(),
            service: "recipe-api".into(),
            listen: format!("127.0.0.1:{port}"),
            upstream: upstream.to_string(),
            http: true,
        }],
        control: format!("127.0.0.1:{control}"),
        faults_file: dir.path().join("faults.json"),
        seed: 7,
        zipkin: None,
    };
    let faults = cfg.faults_file.clone();
    common::run_edges(cfg);
    let e = Edge {
        addr: format!("127.0.0.1:{port}"),
        control: format!("127.0.0.1:{control}"),
        faults,
        _dir: dir,
    };
    poll(|| TcpStream::connect(&e.control).ok().map(|_| ())).expect("the edge listens");
    e
}

fn poll<T>(mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(10) {
        if let Some(v) = f() {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    None
}

/// Write the faults file as `lab fault` does (`edge` faults on `target`), and wait until the
/// edge's control listener reports them.
fn set(e: &Edge, faults: &[(&str, serde_json::Value)]) {
    let active: Vec<serde_json::Value> = faults
        .iter()
        .enumerate()
        .map(|(i, (target, edge))| {
            serde_json::json!({"id": format!("f{}", i + 1), "kind": "x", "instance": target,
                "since_ms": 0, "edge": edge})
        })
        .collect();
    write_atomic(
        &e.faults,
        &serde_json::json!({ "active": active }).to_string(),
    );
    let want: Vec<String> = faults
        .iter()
        .map(|(_, f)| {
            serde_json::from_value::<lab_edges::EdgeFault>(f.clone())
                .unwrap()
                .describe()
        })
        .collect();
    poll(|| {
        let seen: Vec<String> = control_faults(e)
            .iter()
            .map(|f| f["fault"].as_str().unwrap().to_owned())
            .collect();
        (seen == want).then_some(())
    })
    .expect("the edge sees the faults");
}

fn write_atomic(p: &Path, text: &str) {
    let tmp = p.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, p).unwrap();
}

fn control_faults(e: &Edge) -> Vec<serde_json::Value> {
    let mut s = TcpStream::connect(&e.control).unwrap();
    s.write_all(b"GET /faults HTTP/1.1\r\n\r\n").unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    let body = &out[out.find("\r\n\r\n").unwrap() + 4..];
    serde_json::from_str::<Vec<serde_json::Value>>(body).unwrap()
}

/// One request on `s`: (status, headers and body as text), or the error reading it.
fn request(s: &mut TcpStream) -> std::io::Result<(u16, String)> {
    s.write_all(b"GET /recipes/42 HTTP/1.1\r\nhost: x\r\n\r\n")?;
    let mut got = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(at) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..at]).to_string();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length: "))
                .map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= at + 4 + len {
                let code = head[9..12].parse().unwrap();
                return Ok((code, String::from_utf8_lossy(&got).to_string()));
            }
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                String::from_utf8_lossy(&got).to_string(),
            ));
        }
        got.extend_from_slice(&chunk[..n]);
    }
}

fn connect(e: &Edge) -> TcpStream {
    let s = TcpStream::connect(&e.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

#[test]
fn status_and_fail_first_answer_on_an_open_connection_and_clear() {
    let e = edge("{\"id\":42}");
    let mut s = connect(&e);
    assert_eq!(request(&mut s).unwrap().0, 200);
    set(
        &e,
        &[(
            "recipe-api",
            serde_json::json!({"kind": "status", "code": 503}),
        )],
    );
    let (code, text) = request(&mut s).unwrap();
    assert_eq!(code, 503, "{text}");
    assert!(text.contains("x-lab-fault: status:503"), "{text}");
    assert_eq!(request(&mut s).unwrap().0, 503, "the same connection again");
    set(
        &e,
        &[(
            "recipe-api#1",
            serde_json::json!({"kind": "fail-first", "n": 2, "code": 500}),
        )],
    );
    let codes: Vec<u16> = (0..4).map(|_| request(&mut s).unwrap().0).collect();
    assert_eq!(codes, [500, 500, 200, 200]);
    let hits = control_faults(&e);
    assert_eq!(hits[0]["hits"], 2, "{hits:?}");
    assert_eq!(hits[0]["exchanges"], 4, "{hits:?}");
    set(&e, &[]);
    assert_eq!(request(&mut s).unwrap().0, 200);
    // A fault on another service leaves this edge alone.
    set(
        &e,
        &[(
            "web-api",
            serde_json::json!({"kind": "status", "code": 503}),
        )],
    );
    assert_eq!(request(&mut s).unwrap().0, 200);
}

#[test]
fn a_seeded_share_fails_the_same_requests_every_run() {
    let run = || {
        let e = edge("ok");
        set(
            &e,
            &[(
                "recipe-api",
                serde_json::json!({"kind": "status", "code": 503, "probability": 0.2}),
            )],
        );
        let mut s = connect(&e);
        (0..300)
            .map(|_| request(&mut s).unwrap().0 == 503)
            .collect::<Vec<bool>>()
    };
    let a = run();
    assert_eq!(a, run(), "seed 7 fails the same requests");
    let failed = a.iter().filter(|f| **f).count();
    // Binomial(300, 0.2): mean 60, sd 6.9; ±5 sd.
    assert!((26..=94).contains(&failed), "{failed}");
}

#[test]
fn latency_adds_its_amount_and_slow_first_byte_waits() {
    let e = edge("ok");
    let mut s = connect(&e);
    let timed = |s: &mut TcpStream| {
        let t0 = Instant::now();
        assert_eq!(request(s).unwrap().0, 200);
        t0.elapsed()
    };
    let base = timed(&mut s);
    set(
        &e,
        &[(
            "recipe-api",
            serde_json::json!({"kind": "latency", "ms": 150}),
        )],
    );
    let slow = timed(&mut s);
    assert!(
        slow >= Duration::from_millis(150)
            && slow < Duration::from_millis(150) + base * 4 + Duration::from_millis(60),
        "{slow:?} (base {base:?})"
    );
    set(
        &e,
        &[(
            "recipe-api",
            serde_json::json!({"kind": "slow-first-byte", "ms": 120}),
        )],
    );
    assert!(timed(&mut s) >= Duration::from_millis(120));
}

#[test]
fn reset_timeout_limit_and_abort_end_connections_as_they_name() {
    let e = edge("0123456789abcdefghij");
    set(&e, &[("recipe-api", serde_json::json!({"kind": "reset"}))]);
    let err = request(&mut connect(&e)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");

    set(
        &e,
        &[("recipe-api", serde_json::json!({"kind": "timeout"}))],
    );
    let mut s = connect(&e);
    s.set_read_timeout(Some(Duration::from_millis(400)))
        .unwrap();
    let err = request(&mut s).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    set(&e, &[]);
    // Ended with the fault: the held connection is closed.
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    assert_eq!(s.read_to_end(&mut rest).unwrap_or(0), 0);

    set(
        &e,
        &[(
            "recipe-api",
            serde_json::json!({"kind": "limit-data", "bytes": 30}),
        )],
    );
    let err = request(&mut connect(&e)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof, "{err}");
    assert_eq!(err.to_string().len(), 30, "{err}");

    set(
        &e,
        &[(
            "recipe-api",
            serde_json::json!({"kind": "abort-after-headers"}),
        )],
    );
    let err = request(&mut connect(&e)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::UnexpectedEof);
    assert!(
        err.to_string().ends_with("\r\n\r\n"),
        "the head alone: {err:?}"
    );
}

#[test]
fn bandwidth_caps_what_passes() {
    let body: &'static str = Box::leak("x".repeat(40_000).into_boxed_str());
    let e = edge(body);
    set(
        &e,
        &[(
            "recipe-api",
            serde_json::json!({"kind": "bandwidth", "kb_per_s": 40}),
        )],
    );
    let mut s = connect(&e);
    let t0 = Instant::now();
    assert_eq!(request(&mut s).unwrap().0, 200);
    let took = t0.elapsed().as_secs_f64();
    // 40 KB at 40 KB/s: one second, within 10%.
    assert!((0.9..=1.1).contains(&took), "{took}");
}
