//! Local processes: each instance is the leader of its own process group, its stdout and stderr
//! go straight to its log file (so it keeps logging if the supervisor dies), and signals reach
//! the whole group (a `command = ["npm", "start"]` leaves no grandchild behind).

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::process::{Child, Command};

use crate::plan::InstanceSpec;
use crate::procfs::{self, ProcId};

/// Start `spec` with its output appended to `log`.
pub fn spawn(spec: &InstanceSpec, log: &Path) -> std::io::Result<Child> {
    let mut file = OpenOptions::new().create(true).append(true).open(log)?;
    writeln!(
        file,
        "--- lab: starting {} on {}: {} {}",
        spec.id(),
        spec.address(),
        spec.program.display(),
        spec.args.join(" ")
    )?;
    let err = file.try_clone()?;
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        .current_dir(&spec.cwd)
        .envs(spec.env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::from(file))
        .stderr(Stdio::from(err))
        .process_group(0)
        .kill_on_drop(false);
    cmd.spawn().map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("cannot start {}: {e}", spec.program.display()),
        )
    })
}

/// Send `signal` to the process group led by `leader`, but only if it is safe: the leader is the
/// very process we started (same start time), or it is gone and only its group lingers (a pid
/// cannot be reused as a group id while that group exists). Returns whether a signal was sent.
pub fn signal_group(leader: ProcId, signal: Signal) -> bool {
    match procfs::stat(leader.pid) {
        Some(s) if s.start_time != leader.start_time => {
            tracing::debug!(pid = leader.pid, "pid was recycled; not signalling");
            false
        }
        Some(_) => killpg(Pid::from_raw(leader.pid as i32), signal).is_ok(),
        None => {
            !procfs::group_members(leader.pid).is_empty()
                && killpg(Pid::from_raw(leader.pid as i32), signal).is_ok()
        }
    }
}

/// SIGTERM to the group, then SIGCONT: a group stopped by `lab fault pause` takes its SIGTERM
/// only once it runs again. Whether the signal was sent.
fn stop_signal(leader: ProcId) -> bool {
    let sent = signal_group(leader, Signal::SIGTERM);
    if sent {
        signal_group(leader, Signal::SIGCONT);
    }
    sent
}

/// Stop a child we own: SIGTERM to its group, wait up to `grace`, then SIGKILL. Afterwards any
/// process left in the group is killed too. Returns whether SIGKILL was needed.
pub async fn terminate(child: &mut Child, leader: ProcId, grace: Duration) -> bool {
    stop_signal(leader);
    let forced = match tokio::time::timeout(grace, child.wait()).await {
        Ok(_) => false,
        Err(_) => {
            tracing::warn!(
                pid = leader.pid,
                grace_ms = grace.as_millis() as u64,
                "grace period over, sending SIGKILL"
            );
            signal_group(leader, Signal::SIGKILL);
            let _ = child.wait().await;
            true
        }
    };
    reap_group(leader);
    forced
}

/// Kill whatever is left in a group whose leader has exited (daemonised grandchildren).
pub fn reap_group(leader: ProcId) {
    if !procfs::group_members(leader.pid).is_empty() {
        let _ = killpg(Pid::from_raw(leader.pid as i32), Signal::SIGKILL);
    }
}

/// Stop a process we do not own (from another `lab` process): SIGTERM, poll until the group is
/// empty or `grace` passes, then SIGKILL. Returns whether SIGKILL was needed.
pub async fn terminate_foreign(leader: ProcId, grace: Duration) -> bool {
    if !stop_signal(leader) {
        return false;
    }
    let deadline = tokio::time::Instant::now() + grace;
    while tokio::time::Instant::now() < deadline {
        if !leader.is_alive() && procfs::group_members(leader.pid).is_empty() {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    signal_group(leader, Signal::SIGKILL);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    while tokio::time::Instant::now() < deadline && !procfs::group_members(leader.pid).is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    true
}

/// How a child ended, for humans: `exit 1`, `signal 9 (SIGKILL)`.
pub fn describe_exit(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        format!("exit {code}")
    } else if let Some(sig) = status.signal() {
        match Signal::try_from(sig) {
            Ok(s) => format!("signal {sig} ({})", s.as_str()),
            Err(_) => format!("signal {sig}"),
        }
    } else {
        "unknown".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Poll `f` every 5 ms for up to 5 s.
    fn poll(f: impl Fn() -> bool) -> bool {
        (0..1000).any(|_| {
            f() || {
                std::thread::sleep(std::time::Duration::from_millis(5));
                false
            }
        })
    }

    fn sleeper() -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .expect("sleep")
    }

    #[test]
    fn a_recycled_pid_is_never_signalled() {
        let mut child = sleeper();
        let real = ProcId::of(child.id()).unwrap();
        // The same pid with another start time is, to us, a different (recycled) process.
        let stale = ProcId {
            start_time: real.start_time.wrapping_sub(1),
            ..real
        };
        assert!(!signal_group(stale, Signal::SIGKILL));
        assert!(real.is_alive(), "the live process was spared");
        assert!(signal_group(real, Signal::SIGKILL));
        let status = child.wait().unwrap();
        assert_eq!(describe_exit(status), "signal 9 (SIGKILL)");
    }

    #[test]
    fn a_group_is_signalled_whole() {
        use std::os::unix::process::CommandExt;
        // A shell leading its group, with a grandchild `sleep` in the same group.
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & wait"])
            .process_group(0)
            .spawn()
            .unwrap();
        let leader = ProcId::of(child.id()).unwrap();
        let members = || crate::procfs::group_members(leader.pid);
        assert!(
            poll(|| members().len() >= 2),
            "sh and its sleep share the group: {:?}",
            members()
        );
        assert!(signal_group(leader, Signal::SIGKILL));
        child.wait().unwrap();
        reap_group(leader);
        assert!(
            poll(|| members().is_empty()),
            "left in the group: {:?}",
            members()
        );
    }
}
