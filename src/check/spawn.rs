//! Built-in services started by a scenario for its own experiment (`lab serve NAME` as a child
//! process on a free port, with the process-model variables it needs), stopped when dropped.
//!
//! Chapter 1 and 3 experiments compare process models (one thread vs offload, one worker vs
//! two): those are separate processes by nature, so they are started here rather than asked of
//! the lab under test, and nothing in the user's lab is touched.

use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_service_kit::client::Client;

use crate::config::raw::Builtin;

/// A running built-in service; killed (SIGTERM, then SIGKILL) when dropped.
pub struct Spawned {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub pid: u32,
    child: std::process::Child,
}

/// How long a spawned service may take to answer `/health`.
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// Start `lab serve <builtin>` with `env` on a free port and wait until `/health` answers.
pub async fn builtin(builtin: Builtin, env: &[(&str, &str)]) -> anyhow::Result<Spawned> {
    let port = lab_supervisor::ports::pick_free("127.0.0.1", 1)?[0];
    let exe = std::env::current_exe()?;
    let child = std::process::Command::new(exe)
        .args(["serve", builtin.as_str()])
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let spawned = Spawned {
        base: format!("http://127.0.0.1:{port}"),
        pid: child.id(),
        child,
    };
    let client = Client::new();
    let t0 = Instant::now();
    loop {
        let url = format!("{}/health", spawned.base);
        if matches!(client.get(&url, Duration::from_secs(1)).await, Ok(r) if r.status == 200) {
            return Ok(spawned);
        }
        if t0.elapsed() > READY_DEADLINE {
            anyhow::bail!(
                "the {} started for this check did not answer /health within {}s",
                builtin.as_str(),
                READY_DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await; // poll interval, under the deadline
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        let pid = Pid::from_raw(self.pid as i32);
        let _ = kill(pid, Signal::SIGTERM);
        // A master stops its workers first (they die with it in any case: PDEATHSIG).
        let t0 = Instant::now();
        while t0.elapsed() < Duration::from_secs(7) {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
