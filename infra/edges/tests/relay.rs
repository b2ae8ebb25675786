//! One edge over real sockets: a server behind it, a client in front, a fault in the faults
//! file. What the e2e tests cannot measure through the book's small answers: a bandwidth fault
//! caps what passes within 10 %.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::{Duration, Instant};

mod common;
use common::free_port;

use lab_edges::{EdgeSpec, EdgesConfig};

/// A server that runs `answer` on every connection once its first bytes came, then closes.
fn server(answer: impl Fn(&mut TcpStream) + Send + Sync + Copy + 'static) -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                let mut first = [0u8; 64];
                let _ = s.read(&mut first);
                answer(&mut s);
            });
        }
    });
    addr
}

/// Answers `size` bytes.
fn sender(size: usize) -> String {
    server(move |s| {
        let _ = s.write_all(&vec![b'x'; size]);
    })
}

/// Answers `a`, then 200 ms later `b`.
fn two_piece_sender(a: &'static [u8], b: &'static [u8]) -> String {
    server(move |s| {
        let _ = s.write_all(a);
        std::thread::sleep(Duration::from_millis(200));
        let _ = s.write_all(b);
    })
}

/// Edges with one edge in front of `upstream` and `fault` (JSON) in effect; the edge's address.
fn edge_with(upstream: String, fault: &str, dir: &std::path::Path) -> String {
    let faults = dir.join("faults.json");
    std::fs::write(
        &faults,
        format!(r#"{{"active":[{{"id":"f1","instance":"sink","since_ms":0,"edge":{fault}}}]}}"#),
    )
    .unwrap();
    let listen = format!("127.0.0.1:{}", free_port());
    let control = format!("127.0.0.1:{}", free_port());
    edges(EdgesConfig {
        edges: vec![EdgeSpec {
            name: "sink#1".into(),
            service: "sink".into(),
            listen: listen.clone(),
            upstream,
            http: false,
        }],
        control: control.clone(),
        faults_file: faults,
        seed: 0,
        zipkin: None,
    });
    assert!(
        lab_edges::wait_for_faults(&control, |ids| ids == ["f1"], Duration::from_secs(2)),
        "the edges apply the fault"
    );
    listen
}

/// Ask through the edge at `listen`: what came back, and how long it took.
fn fetch(listen: &str) -> (Vec<u8>, Duration) {
    let mut c = TcpStream::connect(listen).unwrap();
    c.write_all(b"go").unwrap();
    let t0 = Instant::now();
    let mut got = Vec::new();
    c.read_to_end(&mut got).unwrap();
    (got, t0.elapsed())
}

#[test]
fn latency_delays_each_piece_from_when_it_arrived_not_one_after_another() {
    // A server that writes its head and its body 200 ms apart, behind 400 ms of latency: the
    // body is due 600 ms after the start, not 800 (as when each piece waited for the last).
    let dir = tempfile::tempdir().unwrap();
    let listen = edge_with(
        two_piece_sender(b"head|", b"body"),
        r#"{"kind":"latency","ms":400}"#,
        dir.path(),
    );
    let (got, took) = fetch(&listen);
    assert_eq!(got, b"head|body");
    assert!(
        (Duration::from_millis(560)..Duration::from_millis(760)).contains(&took),
        "{took:?}"
    );
}

/// Start the edges of `cfg` on a runtime of their own; wait until their control answers.
fn edges(cfg: EdgesConfig) {
    let control = cfg.control.clone();
    common::run_edges(cfg);
    let t0 = Instant::now();
    while lab_edges::fault_ids(&control).is_none() {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the edges did not start"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_bandwidth_fault_caps_throughput_within_ten_percent() {
    const SIZE: usize = 1_000_000;
    const KB_PER_S: u64 = 500;
    let dir = tempfile::tempdir().unwrap();
    let listen = edge_with(
        sender(SIZE),
        &format!(r#"{{"kind":"bandwidth","kb_per_s":{KB_PER_S}}}"#),
        dir.path(),
    );
    let (got, took) = fetch(&listen);
    let took = took.as_secs_f64();
    assert_eq!(got.len(), SIZE);
    let rate = SIZE as f64 / took / 1000.0;
    assert!(
        (KB_PER_S as f64 * 0.9..=KB_PER_S as f64 * 1.1).contains(&rate),
        "{rate:.0} KB/s over {took:.2} s (cap {KB_PER_S} KB/s)"
    );
}
