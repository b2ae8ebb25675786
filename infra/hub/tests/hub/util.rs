//! Starting a hub on ports 0 and calling it.

use lab_hub::{HubConfig, Running};
use lab_net::client::{Client, Response};
use std::time::{Duration, Instant};

pub(super) fn config(dir: &std::path::Path) -> HubConfig {
    HubConfig {
        data_dir: dir.to_owned(),
        logs_port: 0,
        statsd_port: 0,
        zipkin_port: 0,
        http_port: 0,
        carbon_port: Some(0),
        otlp_http_port: 0,
        otlp_grpc_port: 0,
        flush_interval_ms: 1000,
        ..HubConfig::default()
    }
}

pub(super) fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

pub(super) fn get(url: &str) -> Response {
    rt().block_on(Client::new().get(url, Duration::from_secs(5)))
        .unwrap()
}

pub(super) fn post(url: &str, headers: &[(&str, &str)], ctype: &str, body: Vec<u8>) -> Response {
    rt().block_on(Client::new().request(
        hyper::Method::POST,
        url,
        headers,
        Some((ctype, body.into())),
        Duration::from_secs(5),
    ))
    .unwrap()
}

/// Poll until `f` returns Some, or fail after a deadline (no sleeping for readiness).
pub(super) fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

pub(super) fn api(hub: &Running, path: &str) -> String {
    format!("http://{}{path}", hub.addrs.http)
}

pub(super) fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Yesterday's date (`YYYY-MM-DD`, UTC): documents dated then are inside the store's default
/// retention (7 days) whenever the tests run.
pub(super) fn yesterday() -> String {
    let d = (time::OffsetDateTime::now_utc() - time::Duration::days(1)).date();
    format!("{:04}-{:02}-{:02}", d.year(), u8::from(d.month()), d.day())
}
