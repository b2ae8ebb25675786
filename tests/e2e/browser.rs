//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver) from Rust with fantoccini, against a real default lab. Screenshots of every
//! step are saved under `target/browser-screenshots/`.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

use crate::util::*;

/// How long the browser waits for the page to show something.
const PAGE_DEADLINE: Duration = Duration::from_secs(30);

/// chromedriver on a free port of its choosing, stopped on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Option<Self> {
        let found = Command::new("chromedriver")
            .arg("--version")
            .output()
            .is_ok()
            && Command::new("chromium").arg("--version").output().is_ok();
        if !require(
            "chromium + chromium-driver",
            found,
            "scripts/install-deps installs Debian's chromium and chromium-driver",
        ) {
            return None;
        }
        let mut child = Command::new("chromedriver")
            .arg("--port=0")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        // It says where it listens: "ChromeDriver was started successfully on port N."
        let out = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("successfully on port ").nth(1) {
                    let _ = tx.send(rest.trim_end_matches('.').trim().to_owned());
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("chromedriver tells its port");
        Some(Self {
            child,
            url: format!("http://127.0.0.1:{port}"),
        })
    }

    async fn browser(&self) -> Client {
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": ["--headless", "--no-sandbox", "--disable-gpu",
                         "--disable-background-networking", "--disable-dev-shm-usage",
                         "--window-size=1280,1100"],
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn screenshot_dir() -> PathBuf {
    // target/debug/deps/e2e-HASH → target/
    let exe = std::env::current_exe().expect("test binary path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("browser-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    dir
}

async fn shot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    let path = screenshot_dir().join(format!("{name}.png"));
    std::fs::write(&path, png).expect("write screenshot");
    eprintln!("screenshot: {}", path.display());
}

/// Poll `f` (which reads the page) until it gives Some, or panic with `what` and the page text.
async fn until<T, F, Fut>(c: &Client, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PAGE_DEADLINE;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if Instant::now() > deadline {
            let text = match c.find(Locator::Css("main")).await {
                Ok(m) => m.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            panic!("the browser never saw {what}; the page says:\n{text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Text of the cell `class` of the overview row `key` (`service#instance`).
async fn cell(c: &Client, key: &str, class: &str) -> Option<String> {
    let css = format!("tr[data-key=\"{key}\"] td.{class}");
    c.find(Locator::Css(&css)).await.ok()?.text().await.ok()
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("cannot click {css}: {e}"));
}

/// The texts of the elements matching `css`; none at all when any of them went stale under a
/// navigation (an element of the page being left reads as an error, not as an empty text).
async fn texts(c: &Client, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for e in c.find_all(Locator::Css(css)).await.unwrap_or_default() {
        match e.text().await {
            Ok(t) => out.push(t),
            Err(_) => return Vec::new(),
        }
    }
    out
}

/// The default lab, with the hub probing every 250 ms and a killed recipe-api restarted only
/// after 3 s: long enough for the page to show it DOWN before it is back.
fn browser_lab() -> LabDir {
    let toml = DEFAULT_LAB
        .replace(
            "flush_interval = \"10s\"",
            "flush_interval = \"1s\"\nhealth_interval = \"250ms\"",
        )
        .replace(
            "port = \"4000-4001\"",
            "port = \"4000-4001\"\nbackoff = { initial = \"3s\" }",
        );
    assert!(toml.contains("health_interval") && toml.contains("backoff"));
    LabDir::new(BIN, &toml)
}

#[test]
fn the_dashboard_in_a_real_browser() {
    let Some(driver) = Driver::start() else {
        return;
    };
    let lab = browser_lab();
    let up = lab.run(&["up", "--detach", "--ports", "ephemeral"]);
    assert_eq!(up.code, 0, "{up}");
    let dash = up
        .stdout
        .lines()
        .find_map(|l| l.strip_prefix("dashboard: "))
        .unwrap_or_else(|| panic!("no dashboard line: {up}"))
        .trim_end_matches('/')
        .to_owned();
    let inst = wait_all_healthy(&lab, DEFAULT_INSTANCES);
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let c = driver.browser().await;

        // 1. The overview: every polled instance OK, both proxy servers UP.
        c.goto(&format!("{dash}/")).await.unwrap();
        let polled = ["recipe-api#1", "recipe-api#2", "web-api#1", "web-api#2"];
        until(&c, "every instance OK and both servers UP", || async {
            for key in polled {
                if cell(&c, key, "health").await? != "OK" {
                    return None;
                }
            }
            let up = texts(&c, "#backends td.status").await;
            (up == ["UP", "UP"]).then_some(())
        })
        .await;
        assert!(
            cell(&c, "recipe-api#1", "process")
                .await
                .unwrap()
                .starts_with("pid "),
            "the process is shown"
        );
        shot(&c, "1-overview-healthy").await;

        // 2. Kill recipe-api #1: the page shows it DOWN, then OK again with a new pid.
        let victim = inst
            .iter()
            .find(|i| i["service"] == "recipe-api" && i["instance"] == 1)
            .and_then(|i| i["pid"].as_u64())
            .expect("recipe-api#1 pid");
        sigkill(victim);
        until(&c, "recipe-api#1 DOWN", || async {
            (cell(&c, "recipe-api#1", "health").await? == "DOWN").then_some(())
        })
        .await;
        shot(&c, "2-overview-instance-down").await;
        let back = until(&c, "recipe-api#1 OK again with a new process", || async {
            let ok = cell(&c, "recipe-api#1", "health").await? == "OK";
            let process = cell(&c, "recipe-api#1", "process").await?;
            let restarts = cell(&c, "recipe-api#1", "restarts").await?;
            (ok && process != format!("pid {victim}") && restarts == "1").then_some(process)
        })
        .await;
        assert!(back.starts_with("pid "), "{back}");
        shot(&c, "3-overview-instance-back").await;

        // 3. A request of ours, with our own trace id: its trace opens as a waterfall.
        let trace = format!("{:016x}", fastrand::u64(1..));
        let web = addr_of(&inst, "web-api");
        let r = lab_service_kit::client::Client::new()
            .request(
                hyper::Method::GET,
                &format!("http://{web}/"),
                &[
                    ("x-b3-traceid", trace.as_str()),
                    ("x-b3-spanid", trace.as_str()),
                    ("x-b3-sampled", "1"),
                ],
                None,
                Duration::from_secs(5),
            )
            .await
            .expect("web-api answers");
        assert_eq!(r.status, 200);
        c.goto(&format!("{dash}/traces")).await.unwrap();
        let link = until(&c, "our trace in the list", || async {
            match c.find(Locator::LinkText(&trace)).await {
                Ok(l) => Some(l),
                Err(_) => {
                    c.refresh().await.ok()?;
                    None
                }
            }
        })
        .await;
        link.click().await.unwrap();
        let services = until(&c, "a waterfall over both services", || async {
            let rows = texts(&c, "#waterfall tr.span td:first-child").await;
            let both = rows.iter().any(|r| r.contains("web-api"))
                && rows.iter().any(|r| r.contains("recipe-api"));
            if both {
                return Some(rows);
            }
            c.refresh().await.ok()?;
            None
        })
        .await;
        assert!(
            services.len() >= 3,
            "server, client and upstream spans: {services:?}"
        );
        let bars = c.find_all(Locator::Css("#waterfall .bar")).await.unwrap();
        assert_eq!(bars.len(), services.len(), "a bar per span");
        shot(&c, "4-trace-waterfall").await;

        // 4. Search a log line: the request's own, by its trace id, typed into the logs page.
        c.goto(&format!("{dash}/logs?since=1h")).await.unwrap();
        let query = format!("app:web-api and fields.trace_id:{trace}");
        let input = c.find(Locator::Css("input[name=query]")).await.unwrap();
        input.send_keys(&query).await.unwrap();
        click(&c, "form button").await;
        let found = until(&c, "the request's log lines", || async {
            // The form's answer, not the page it was typed into (that one lists every app).
            let url = c.current_url().await.ok()?;
            if !url.query().is_some_and(|q| q.contains("query=")) {
                return None;
            }
            let rows = texts(&c, "#hits tr td:nth-child(2)").await;
            if !rows.is_empty() {
                return Some(rows);
            }
            c.refresh().await.ok()?;
            None
        })
        .await;
        assert!(found.iter().all(|app| app == "web-api"), "{found:?}");
        let summary = c.find(Locator::Css("#hits details summary")).await.unwrap();
        summary.click().await.unwrap();
        let doc = c
            .find(Locator::Css("#hits details pre"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        assert!(
            doc.contains(&trace),
            "the expanded document carries the trace id: {doc}"
        );
        shot(&c, "5-logs-search").await;

        // 5. Two load runs at the lab, kept by the hub, compared side by side.
        for conns in ["2", "4"] {
            let r = lab.run(&["load", "web-api/", "-d", "1s", "-c", conns]);
            assert_eq!(r.code, 0, "{r}");
            assert!(r.stderr.contains("kept on the dashboard: http://"), "{r}");
        }
        c.goto(&format!("{dash}/load")).await.unwrap();
        for b in c
            .find_all(Locator::Css("#runs input[type=checkbox]"))
            .await
            .unwrap()
            .into_iter()
            .take(2)
        {
            if b.prop("checked").await.unwrap().as_deref() != Some("true") {
                b.click().await.unwrap();
            }
        }
        click(&c, "#runs + button, form button").await;
        let heads = until(&c, "two runs side by side", || async {
            let h = texts(&c, "#compare tr:first-child th").await;
            (h.len() == 3).then_some(h)
        })
        .await;
        assert!(
            heads[1].starts_with("run #") && heads[2].starts_with("run #"),
            "{heads:?}"
        );
        let lines = c.find_all(Locator::Css("svg path.line")).await.unwrap();
        assert_eq!(lines.len(), 4, "two charts, a line per run in each");
        shot(&c, "6-load-compare").await;

        // 6. Metrics: web-api's charts have lines.
        c.goto(&format!("{dash}/graphs")).await.unwrap();
        until(&c, "web-api's request rate drawn", || async {
            let n = c
                .find_all(Locator::Css("section[data-service=web-api] svg path.line"))
                .await
                .ok()?
                .len();
            if n >= 2 {
                return Some(());
            }
            c.refresh().await.ok()?;
            None
        })
        .await;
        shot(&c, "7-metrics").await;
        c.close().await.unwrap();
    });
    assert_eq!(lab.run(&["down"]).code, 0);
}
