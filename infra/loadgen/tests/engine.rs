//! The engine against local servers that count what they receive.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::time::Duration;

use lab_loadgen::run::{Live, run};
use lab_loadgen::{Plan, Report, Stop, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A raw HTTP/1.1 server on its own runtime thread: answers each request (counted) after
/// `delay`, with `status`; records the most requests it held unanswered on one connection
/// and how many connections are open.
struct Server {
    addr: String,
    requests: Arc<AtomicUsize>,
    max_pipelined: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
}

fn server(delay: Duration, status: u16) -> Server {
    let (tx, rx) = std::sync::mpsc::channel();
    let requests = Arc::new(AtomicUsize::new(0));
    let max_pipelined = Arc::new(AtomicUsize::new(0));
    let open = Arc::new(AtomicUsize::new(0));
    let (r2, m2, o2) = (requests.clone(), max_pipelined.clone(), open.clone());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(l.local_addr().unwrap().to_string()).unwrap();
            loop {
                let (mut s, _) = l.accept().await.unwrap();
                let (r, m, o) = (r2.clone(), m2.clone(), o2.clone());
                o.fetch_add(1, SeqCst);
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    let mut chunk = [0u8; 8192];
                    loop {
                        let n = match s.read(&mut chunk).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => n,
                        };
                        buf.extend_from_slice(&chunk[..n]);
                        // Complete requests in the buffer (GETs: no bodies).
                        let mut count = 0;
                        while let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            buf.drain(..i + 4);
                            count += 1;
                        }
                        if count == 0 {
                            continue;
                        }
                        m.fetch_max(count, SeqCst);
                        if !delay.is_zero() {
                            tokio::time::sleep(delay).await;
                        }
                        let body = "hello";
                        let one = format!(
                            "HTTP/1.1 {status} X\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        r.fetch_add(count, SeqCst);
                        if s.write_all(one.repeat(count).as_bytes()).await.is_err() {
                            break;
                        }
                    }
                    o.fetch_sub(1, SeqCst);
                });
            }
        });
    });
    let addr = rx.recv().unwrap();
    Server {
        addr,
        requests,
        max_pipelined,
        open,
    }
}

fn plan(addr: &str) -> Plan {
    let mut p = Plan::new(Target::parse(&format!("http://{addr}/x")).unwrap());
    p.workers = 2;
    p.connections = 4;
    p
}

fn go(p: &Plan) -> Report {
    p.validate().unwrap();
    let o = run(p, Arc::new(Live::default())).unwrap();
    Report::new(p, &o)
}

#[test]
fn amount_is_exact() {
    let s = server(Duration::ZERO, 200);
    let mut p = plan(&s.addr);
    p.stop = Stop::Amount(1234);
    let r = go(&p);
    assert_eq!(r.requests.dist.total, 1234.0);
    assert_eq!(r.requests.sent, 1234);
    assert_eq!(s.requests.load(SeqCst), 1234);
    assert_eq!((r.errors, r.timeouts, r.non2xx, r.s2xx), (0, 0, 0, 1234));
}

#[test]
fn pipelining_depth_is_respected() {
    let s = server(Duration::from_millis(2), 200);
    let mut p = plan(&s.addr);
    p.pipelining = 4;
    p.connections = 2;
    p.stop = Stop::Amount(400);
    let r = go(&p);
    assert_eq!(r.requests.dist.total, 400.0);
    assert_eq!(
        s.max_pipelined.load(SeqCst),
        4,
        "4 requests in flight per connection, never more"
    );
}

#[test]
fn a_fixed_rate_is_held_within_two_percent() {
    let s = server(Duration::ZERO, 200);
    let mut p = plan(&s.addr);
    p.rate = Some(500.0);
    p.stop = Stop::Duration(Duration::from_secs(2));
    let r = go(&p);
    let got = r.requests.dist.total;
    assert!(
        (got - 1000.0).abs() <= 20.0,
        "{got} requests at 500/s for 2 s"
    );
}

#[test]
fn injected_latency_is_reported_and_the_run_stops_clean() {
    let s = server(Duration::from_millis(50), 200);
    let mut p = plan(&s.addr);
    p.stop = Stop::Duration(Duration::from_secs(1));
    let r = go(&p);
    let p50 = r.latency.p("p50");
    assert!(
        (50.0..60.0).contains(&p50),
        "p50 {p50} ms for a 50 ms server"
    );
    assert!(
        r.requests.dist.total >= 4.0 * 15.0,
        "{}",
        r.requests.dist.total
    );
    // Nothing left in flight or open once run() returned.
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(s.open.load(SeqCst), 0, "connections left open");
    assert!(r.duration < 1.2, "stopped at {} s", r.duration);
}

#[test]
fn coordinated_omission_is_corrected_at_a_fixed_rate() {
    // One connection, 100 req/s due, but each answer takes 50 ms: requests fall behind their
    // schedule, and latency counts from when each was due (it grows past 50 ms).
    let s = server(Duration::from_millis(50), 200);
    let mut p = plan(&s.addr);
    p.connections = 1;
    p.rate = Some(100.0);
    p.stop = Stop::Duration(Duration::from_secs(1));
    let r = go(&p);
    assert!(
        r.latency.max > 500.0,
        "max {} ms: the backlog shows as latency",
        r.latency.max
    );
}

#[test]
fn non2xx_errors_and_timeouts_are_counted_by_kind() {
    let s = server(Duration::ZERO, 503);
    let mut p = plan(&s.addr);
    p.stop = Stop::Amount(100);
    let r = go(&p);
    assert_eq!((r.non2xx, r.s5xx, r.errors), (100, 100, 0));

    // A server that never answers: timeouts.
    let slow = server(Duration::from_secs(30), 200);
    let mut p = plan(&slow.addr);
    p.timeout = Duration::from_millis(200);
    p.connections = 2;
    p.stop = Stop::Duration(Duration::from_millis(500));
    let r = go(&p);
    assert!(r.timeouts >= 2, "{}", r.timeouts);
    assert_eq!(r.requests.dist.total, 0.0);

    // Nothing listening: connect errors.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut p = plan(&format!("127.0.0.1:{port}"));
    p.stop = Stop::Duration(Duration::from_millis(200));
    let r = go(&p);
    assert!(
        r.errors_by_kind.get("connect").copied().unwrap_or(0) > 0,
        "{:?}",
        r.errors_by_kind
    );
}
