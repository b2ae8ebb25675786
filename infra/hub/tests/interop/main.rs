//! The hub against independent implementations available on this machine: Python's py_zipkin
//! (PyPI) as a Zipkin client, and Debian's graphite-carbon (whisper files) as the carbon the
//! hub forwards to. Missing parts print `skipped:` (a failure under CI=true).

mod otel;

use std::net::UdpSocket;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use lab_hub::HubConfig;
use lab_net::client::Client;
use serde_json::Value;

fn config(dir: &std::path::Path) -> HubConfig {
    HubConfig {
        data_dir: dir.to_owned(),
        logs_port: 0,
        statsd_port: 0,
        zipkin_port: 0,
        http_port: 0,
        carbon_port: None,
        otlp_http_port: 0,
        otlp_grpc_port: 0,
        flush_interval_ms: 1000,
        ..HubConfig::default()
    }
}

fn get(url: &str) -> Value {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(Client::new().get(url, Duration::from_secs(5)))
        .unwrap()
        .json()
        .unwrap_or(Value::Null)
}

fn eventually<T>(what: &str, secs: u64, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn require(part: &str, ok: bool, why: &str) -> bool {
    if ok {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{part} is required in CI but missing: {why}"
    );
    eprintln!("skipped: {part} missing: {why}");
    false
}

fn python_has(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const PY_ZIPKIN: &str = r#"
import sys, urllib.request
from py_zipkin.zipkin import zipkin_span
from py_zipkin.transport import BaseTransportHandler
from py_zipkin.encoding import Encoding

URL = sys.argv[1]

class Http(BaseTransportHandler):
    def get_max_payload_bytes(self):
        return None
    def send(self, payload):
        data = payload.encode() if isinstance(payload, str) else payload
        req = urllib.request.Request(URL, data=data, headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req) as r:
            assert r.status == 202, r.status

with zipkin_span(service_name="py-svc", span_name="outer", sample_rate=100.0,
                 transport_handler=Http(), encoding=Encoding.V2_JSON) as outer:
    with zipkin_span(service_name="py-svc", span_name="inner") as inner:
        inner.update_binary_annotations({"answer": "42"})
print("sent")
"#;

#[test]
fn py_zipkin_spans_are_accepted_and_queryable() {
    if !require(
        "python3 with py_zipkin",
        python_has("py_zipkin"),
        "pip install py_zipkin (scripts/install-deps)",
    ) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let url = format!("http://{}/api/v2/spans", hub.addrs.zipkin);
    let out = Command::new("python3")
        .args(["-c", PY_ZIPKIN, &url])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "py_zipkin failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let z = |p: &str| format!("http://{}{p}", hub.addrs.zipkin);
    let traces = eventually("py_zipkin's trace", 10, || {
        let t = get(&z("/api/v2/traces?serviceName=py-svc"));
        (t.as_array()?.first()?.as_array()?.len() == 2).then_some(t)
    });
    let spans = traces[0].as_array().unwrap();
    let outer = spans
        .iter()
        .find(|s| s["name"] == "outer")
        .expect("outer span");
    let inner = spans
        .iter()
        .find(|s| s["name"] == "inner")
        .expect("inner span");
    assert_eq!(inner["parentId"], outer["id"]);
    assert_eq!(inner["tags"]["answer"], "42");
    assert_eq!(
        get(&z("/api/v2/spans?serviceName=py-svc")),
        serde_json::json!(["inner", "outer"])
    );
    hub.stop();
}

#[test]
fn carbon_forwarding_lands_in_real_whisper_files() {
    // Debian's tools (their own /usr/bin/python3, whatever python3 is first on PATH).
    let have = std::path::Path::new("/usr/bin/carbon-cache").exists()
        && std::path::Path::new("/usr/bin/whisper-fetch").exists();
    if !require(
        "graphite-carbon and python3-whisper",
        have,
        "apt-get install graphite-carbon python3-whisper (scripts/install-deps)",
    ) {
        return;
    }
    let d = tempfile::tempdir().unwrap();
    let free = || {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    };
    let (line, pickle, cache) = (free(), free(), free());
    for sub in ["whisper", "log", "pid"] {
        std::fs::create_dir_all(d.path().join(sub)).unwrap();
    }
    let root = d.path().display();
    std::fs::write(
        d.path().join("carbon.conf"),
        format!(
            "[cache]\nSTORAGE_DIR = {root}\nLOCAL_DATA_DIR = {root}/whisper\nLOG_DIR = {root}/log\nPID_DIR = {root}/pid\n\
             CONF_DIR = {root}\nLINE_RECEIVER_INTERFACE = 127.0.0.1\nLINE_RECEIVER_PORT = {line}\n\
             ENABLE_UDP_LISTENER = False\nPICKLE_RECEIVER_INTERFACE = 127.0.0.1\nPICKLE_RECEIVER_PORT = {pickle}\n\
             CACHE_QUERY_INTERFACE = 127.0.0.1\nCACHE_QUERY_PORT = {cache}\nWHISPER_AUTOFLUSH = True\n\
             MAX_CREATES_PER_MINUTE = inf\nMAX_UPDATES_PER_SECOND = inf\nUSER =\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.path().join("storage-schemas.conf"),
        "[default]\npattern = .*\nretentions = 1s:1h\n",
    )
    .unwrap();
    let carbon = Command::new("/usr/bin/carbon-cache")
        .args([&format!("--config={root}/carbon.conf"), "--debug", "start"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Killed however the test ends.
    let _carbon = KillOnDrop(carbon);
    eventually("carbon-cache listening", 20, || {
        std::net::TcpStream::connect(("127.0.0.1", line)).ok()
    });

    let dir = tempfile::tempdir().unwrap();
    // Only this test's flushes (no periodic one writing a 0 into the same 1 s whisper bucket).
    let cfg = HubConfig {
        forward_graphite: Some(format!("127.0.0.1:{line}")),
        flush_interval_ms: 3_600_000,
        ..config(dir.path())
    };
    let hub = lab_hub::start(cfg).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = || {
        rt.block_on(Client::new().get(
            &format!("http://{}/metrics", hub.addrs.http),
            Duration::from_secs(5),
        ))
        .unwrap()
        .text()
    };
    let wsp = d.path().join("whisper/stats_counts/interop/hits.wsp");
    // Each round: 7 hits, a flush forwarded to carbon, then look in the whisper file (a slow
    // carbon start only costs rounds; every flush writes its own 1 s bucket).
    let mut sent = 0;
    let value = eventually("the whisper file with the value", 60, || {
        udp.send_to(b"interop.hits:7|c", hub.addrs.statsd).unwrap();
        sent += 7;
        let want = format!("statsd_count_total{{name=\"interop.hits\"}} {sent}");
        eventually("the counter aggregated", 10, || {
            metrics().contains(&want).then_some(())
        });
        hub.flush_now();
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs()
            - 600;
        let out = Command::new("/usr/bin/whisper-fetch")
            .arg(format!("--from={since}"))
            .arg(&wsp)
            .output()
            .ok()?;
        // Lines `<epoch>\t<value or None>`; the counter's flush wrote 7 in one of them.
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
            .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
            .filter(|v| *v >= 7.0)
    });
    assert_eq!(value, 7.0);
    hub.stop();
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `promtool check metrics` on an exposition: `None` when promtool is missing (skipped, or a
/// failure under CI=true); else its verdict (exit 0: the format parses and the lint — naming,
/// units, HELP/TYPE — has nothing to say), its report as the error.
pub(crate) fn promtool_check(text: &str) -> Option<Result<(), String>> {
    if !require(
        "promtool",
        Command::new("promtool")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success()),
        "apt-get install prometheus (scripts/install-deps)",
    ) {
        return None;
    }
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(if out.status.success() {
        Ok(())
    } else {
        Err(report)
    })
}

#[test]
fn promtool_accepts_the_exposition() {
    if promtool_check("").is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let hub = lab_hub::start(config(dir.path())).unwrap();
    let udp = UdpSocket::bind("127.0.0.1:0").unwrap();
    // Names and values that need escaping or special forms.
    udp.send_to(
        b"a.b:1|c\nweird name\"q:2|c\nt:3|ms\nt:5|ms\ng:-1|g\nu:x|s\nh:1|h",
        hub.addrs.statsd,
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let body = eventually("the metrics aggregated", 10, || {
        let m = rt
            .block_on(Client::new().get(
                &format!("http://{}/metrics", hub.addrs.http),
                Duration::from_secs(5),
            ))
            .unwrap()
            .text();
        m.contains("statsd_count_total{name=\"h\"} 1").then_some(m)
    });
    hub.flush_now();
    let body = rt
        .block_on(Client::new().get(
            &format!("http://{}/metrics", hub.addrs.http),
            Duration::from_secs(5),
        ))
        .map(|r| r.text())
        .unwrap_or(body);
    let verdict = promtool_check(&body).expect("promtool was there a moment ago");
    assert!(
        verdict.is_ok(),
        "promtool: {}\n---\n{body}",
        verdict.unwrap_err()
    );
    hub.stop();
}
