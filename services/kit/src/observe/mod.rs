//! Chapter 4's instrumentation, as the book's services do it, towards whatever `LOGSTASH`,
//! `STATSD` and `ZIPKIN` name (the lab's hub, or the real ELK / StatsD / Zipkin):
//!
//! - logs: one Logstash UDP JSON document per event (`request-incoming`, `request-outgoing`,
//!   `request-failure`, `listen`), the fields of the book's `logstash.js`;
//! - metrics: StatsD lines with the service's prefix, batched like statsd-client (packets of
//!   at most 1200 bytes, each sent within 20 ms of filling, a partial one every second): per request `inbound.response_code.<status>`,
//!   `inbound.response_code.<route>.<status>`, `inbound.response_time.<route>`; per upstream
//!   call `outbound.<svc>.request-time` and `.request-count`; every 10 s the `server.*` gauges
//!   and the `eventlag` timer;
//! - traces: Zipkin v2 spans (SERVER per request, CLIENT per upstream call) joined through B3
//!   headers ([`b3`]), queued and posted in batches by a background thread, so a request never
//!   waits on Zipkin.
//!
//! With none of the three variables set, [`apply`] leaves the router as it is: no cost.
//! Requests to `/health` are not logged, counted or traced (the supervisor and the hub poll it
//! every few seconds, and those polls would bury the requests people look for).
//!
//! Rooms: [`telemetry`] (the clients, their queues and threads), [`middleware`] (per request),
//! [`wire`] (the documents and spans as sent), [`gauges`] (process gauges).

pub mod b3;
mod gauges;
mod middleware;
mod telemetry;
mod wire;

pub use gauges::*;
pub use middleware::*;
pub use telemetry::*;

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::net::UdpSocket;
    use std::sync::Arc;
    use std::time::{Duration, Instant, SystemTime};

    #[test]
    fn route_names_are_express_style() {
        assert_eq!(route_name("GET", Some("/")), "GET_root");
        assert_eq!(route_name("GET", Some("/recipes/{id}")), "GET_recipes_id");
        assert_eq!(route_name("GET", None), "unknown_express_route");
    }

    #[test]
    fn iso_matches_javascript() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_600_000_123);
        assert_eq!(iso(t), "2026-11-25T09:46:40.123Z");
        assert_eq!(
            iso(SystemTime::UNIX_EPOCH + Duration::from_secs(951_782_400)),
            "2000-02-29T00:00:00.000Z"
        );
    }

    #[test]
    fn statsd_lines_are_batched_under_the_packet_size() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = rx.local_addr().unwrap().to_string();
        let t = Telemetry::new("web-api", "test", None, Some(&to), None);
        for i in 0..100 {
            t.increment(format_args!("inbound.response_code.GET_root.{i}"), 1);
        }
        t.flush_statsd();
        let mut buf = [0u8; 65536];
        let mut lines = 0;
        while lines < 100 {
            let n = rx.recv(&mut buf).unwrap();
            assert!(n <= STATSD_BUFFER, "{n} bytes");
            let text = std::str::from_utf8(&buf[..n]).unwrap();
            assert!(text.lines().all(|l| l.starts_with("web-api.inbound.response_code.") && l.ends_with(":1|c")), "{text}");
            lines += text.lines().count();
        }
        assert_eq!(lines, 100);
    }

    #[tokio::test]
    async fn gauges_report_the_books_server_series() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let to = rx.local_addr().unwrap().to_string();
        let t = Arc::new(Telemetry::new("web-api", "test", None, Some(&to), None));
        // The first tick is at once; then flush what it buffered.
        let task = tokio::spawn(gauges(t.clone()));
        let mut text = String::new();
        let deadline = Instant::now() + Duration::from_secs(5);
        while !text.contains("eventlag") && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
            t.flush_statsd();
            let mut buf = [0u8; 65536];
            rx.set_nonblocking(true).unwrap();
            while let Ok(n) = rx.recv(&mut buf) {
                text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
                text.push('\n');
            }
        }
        task.abort();
        for want in [
            "server.conn:",
            "server.memory.used:",
            "server.memory.total:",
            "server.heap.size:",
            "server.heap.limit:",
            "server.descriptors:",
            "eventlag:",
        ] {
            assert!(
                text.contains(&format!("web-api.{want}")),
                "{want} missing in {text}"
            );
        }
        let rss: f64 = text
            .lines()
            .find_map(|l| {
                l.strip_prefix("web-api.server.memory.used:")?
                    .strip_suffix("|g")?
                    .parse()
                    .ok()
            })
            .unwrap();
        assert!(rss > 1e6, "resident memory of a live process: {rss}");
    }

    #[test]
    fn logstash_documents_have_the_books_shape() {
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        rx.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let to = rx.local_addr().unwrap().to_string();
        let t = Telemetry::new("web-api", "production", Some(&to), None, None);
        t.log(
            "info",
            "request-incoming",
            json!({"path": "/", "method": "GET", "ip": null, "ua": "curl"}),
        );
        t.flush_logs();
        let mut buf = [0u8; 65536];
        let n = rx.recv(&mut buf).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&buf[..n]).unwrap();
        for k in [
            "@timestamp",
            "@version",
            "app",
            "environment",
            "severity",
            "type",
            "fields",
            "host",
        ] {
            assert!(v.get(k).is_some(), "{k} missing: {v}");
        }
        assert_eq!(v["@version"], 1);
        assert_eq!(v["environment"], "production");
        assert_eq!(v["fields"]["ua"], "curl");
    }

    #[test]
    fn queued_logs_go_several_to_a_datagram_as_a_json_array() {
        let doc = |n: usize| format!("{{\"n\":{n},\"pad\":\"{}\"}}", "x".repeat(1000)).into_bytes();
        // One alone goes as it is.
        assert_eq!(pack_logs([&doc(1)[..]]), vec![doc(1)]);
        // Many: arrays, each under the datagram limit, every document once and in order.
        let docs: Vec<Vec<u8>> = (0..150).map(doc).collect();
        let packets = pack_logs(docs.iter().map(Vec::as_slice));
        assert!(
            packets.len() >= 3 && packets.len() < 10,
            "{}",
            packets.len()
        );
        let mut seen = Vec::new();
        for p in &packets {
            assert!(p.len() <= LOG_DATAGRAM, "{}", p.len());
            let v: serde_json::Value = serde_json::from_slice(p).unwrap();
            seen.extend(
                v.as_array()
                    .unwrap()
                    .iter()
                    .map(|d| d["n"].as_u64().unwrap()),
            );
        }
        assert_eq!(seen, (0..150).collect::<Vec<u64>>());
        // One too large to share goes alone.
        let big = format!("{{\"pad\":\"{}\"}}", "y".repeat(LOG_DATAGRAM)).into_bytes();
        assert_eq!(pack_logs([&doc(1)[..], &big, &doc(2)]).len(), 3);
    }

    /// A Zipkin stand-in on 127.0.0.1: per accepted connection, the spans of each POST it
    /// read; answers 202, and closes after each answer when `close` is set.
    fn zipkin_sink(close: bool) -> (String, Arc<std::sync::Mutex<Vec<Vec<usize>>>>) {
        use std::io::{Read, Write};
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap().to_string();
        let seen: Arc<std::sync::Mutex<Vec<Vec<usize>>>> = Arc::default();
        let out = seen.clone();
        std::thread::spawn(move || {
            for conn in l.incoming() {
                let Ok(mut c) = conn else { return };
                let me = {
                    let mut s = seen.lock().unwrap();
                    s.push(Vec::new());
                    s.len() - 1
                };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 65536];
                'requests: loop {
                    let end = loop {
                        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break at + 4;
                        }
                        match c.read(&mut chunk) {
                            Ok(0) | Err(_) => break 'requests,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .unwrap()
                        .trim()
                        .parse()
                        .unwrap();
                    while buf.len() < end + len {
                        let n = c.read(&mut chunk).unwrap();
                        buf.extend_from_slice(&chunk[..n]);
                    }
                    let spans: Vec<serde_json::Value> =
                        serde_json::from_slice(&buf[end..end + len]).unwrap();
                    seen.lock().unwrap()[me].push(spans.len());
                    buf.drain(..end + len);
                    let answer = if close {
                        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    } else {
                        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n"
                    };
                    c.write_all(answer.as_bytes()).unwrap();
                    if close {
                        break;
                    }
                }
            }
        });
        (addr, out)
    }

    #[test]
    fn spans_are_posted_on_one_kept_connection_or_anew_when_the_server_closes() {
        for close in [false, true] {
            let (addr, seen) = zipkin_sink(close);
            let t = Arc::new(Telemetry::new("web-api", "test", None, None, Some(&addr)));
            t.start();
            let total = |seen: &std::sync::Mutex<Vec<Vec<usize>>>| -> usize {
                seen.lock().unwrap().iter().flatten().sum()
            };
            let mut want = 0;
            for wave in 0..3 {
                for i in 0..(wave + 1) * 10 {
                    t.span(json!({"traceId": format!("{:016x}", i + 1), "id": "1"}));
                }
                want += (wave + 1) * 10;
                let deadline = Instant::now() + Duration::from_secs(10);
                while total(&seen) < want {
                    assert!(
                        Instant::now() < deadline,
                        "{:?} of {want}",
                        seen.lock().unwrap()
                    );
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
            let posts = seen.lock().unwrap().clone();
            assert_eq!(total(&seen), 60);
            let posts_made: usize = posts.iter().map(Vec::len).sum();
            assert!(posts_made >= 3, "{posts:?}");
            if close {
                assert_eq!(posts.len(), posts_made, "a connection per POST: {posts:?}");
            } else {
                assert_eq!(posts.len(), 1, "one connection for every POST: {posts:?}");
            }
        }
    }
}
