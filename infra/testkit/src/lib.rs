//! Dev-only helpers for tests that drive the real `lab` binary: a temp lab folder per test,
//! a pre-built command, polling with a deadline (never sleeping for readiness), a tiny blocking
//! HTTP client, and [`require`] for parts a machine may lack.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// A lab in its own temp folder; `lab down` runs when it is dropped, so a failing test leaves
/// no process behind.
pub struct LabDir {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl LabDir {
    /// A temp folder holding `lab_toml` as lab.toml; `bin` is the `lab` binary under test.
    pub fn new(bin: impl Into<PathBuf>, lab_toml: &str) -> Self {
        let dir = tempfile::Builder::new()
            .prefix("lab-test-")
            .tempdir()
            .expect("temp dir");
        std::fs::write(dir.path().join("lab.toml"), lab_toml).expect("write lab.toml");
        Self {
            bin: bin.into(),
            dir,
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Write another file into the lab folder (a script for a `command` service, say).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, contents).expect("write file");
        p
    }

    /// `lab ARGS` in the lab folder, without colour.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.args(args)
            .current_dir(self.dir.path())
            .env("NO_COLOR", "1")
            .env_remove("LAB_FILE")
            .stdin(Stdio::null());
        c
    }

    /// Run `lab ARGS` to completion.
    pub fn run(&self, args: &[&str]) -> Run {
        let out = self.cmd(args).output().expect("run lab");
        Run::from(out)
    }

    /// `lab status --json`, parsed.
    pub fn status(&self) -> serde_json::Value {
        let r = self.run(&["status", "--json"]);
        assert_eq!(r.code, 0, "lab status failed: {r}");
        serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("status is not JSON ({e}): {r}"))
    }

    /// Instances from `lab status --json`.
    pub fn instances(&self) -> Vec<serde_json::Value> {
        self.status()["instances"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    pub fn state_file(&self) -> PathBuf {
        self.dir.path().join(".lab").join("state.json")
    }
}

impl Drop for LabDir {
    fn drop(&mut self) {
        if self.state_file().exists() {
            let _ = self
                .cmd(&["down", "--grace", "2s", "--volumes"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// A finished command, with its output as text.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Self {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl std::fmt::Display for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}\n--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Poll `f` every `every` until it returns `Some` or `deadline` passes.
pub fn poll<T>(deadline: Duration, every: Duration, mut f: impl FnMut() -> Option<T>) -> Option<T> {
    let end = Instant::now() + deadline;
    loop {
        if let Some(v) = f() {
            return Some(v);
        }
        if Instant::now() >= end {
            return None;
        }
        std::thread::sleep(every);
    }
}

/// A blocking HTTP/1.1 GET (Connection: close), for tests: status and body.
pub fn http_get(addr: &str, path: &str) -> std::io::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("no status line in {text:?}")))?;
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let chunked = head.lines().any(|l| {
        let l = l.to_ascii_lowercase();
        l.starts_with("transfer-encoding:") && l.contains("chunked")
    });
    Ok((
        status,
        if chunked {
            dechunk(body)
        } else {
            body.to_owned()
        },
    ))
}

/// The body of a chunked answer, its chunks joined.
fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}

/// Whether process `pid` is alive (a zombie counts as dead).
pub fn alive(pid: u64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(s) => s
            .rsplit_once(')')
            .and_then(|(_, r)| r.split_whitespace().next())
            .is_some_and(|st| st != "Z"),
        Err(_) => false,
    }
}

/// Whether something listens on `addr` (`127.0.0.1:PORT`).
pub fn listening(addr: &str) -> bool {
    TcpStream::connect_timeout(
        &addr.parse().expect("socket address"),
        Duration::from_millis(500),
    )
    .is_ok()
}

/// Gate a test on a part of the machine (`python3`, `docker`, `haproxy`...). Missing: prints a
/// loud `skipped: <why>` and returns false; under `CI=true` a missing part fails the test.
pub fn require(part: &str, available: bool, why: &str) -> bool {
    if available {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{part} is required in CI but missing: {why}");
    }
    eprintln!("skipped: {part} missing: {why}");
    false
}

/// Whether `program` runs (`program --version` exits 0).
pub fn has_program(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}
