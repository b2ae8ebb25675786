//! What /proc says about processes and sockets (Linux only, as the lab is).

use std::fs;

/// A process's identity: a pid alone can be recycled, a pid with its start time cannot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ProcId {
    pub pid: u32,
    /// Field 22 of /proc/PID/stat: clock ticks since boot when the process started.
    pub start_time: u64,
}

impl ProcId {
    /// The identity of a live process, or `None` if it is gone.
    pub fn of(pid: u32) -> Option<Self> {
        Some(Self {
            pid,
            start_time: stat(pid)?.start_time,
        })
    }
    /// True if this very process (same pid, same start time) is still alive and not a zombie.
    pub fn is_alive(&self) -> bool {
        matches!(stat(self.pid), Some(s) if s.start_time == self.start_time && s.state != 'Z')
    }
}

/// The fields of /proc/PID/stat the lab uses.
#[derive(Debug, Clone)]
pub struct Stat {
    pub state: char,
    pub ppid: u32,
    pub pgid: u32,
    pub start_time: u64,
}

/// Parse /proc/PID/stat; `None` if the process does not exist.
pub fn stat(pid: u32) -> Option<Stat> {
    let text = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

fn parse_stat(text: &str) -> Option<Stat> {
    // The command name (field 2) is in parentheses and may hold spaces or ')': split after the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); ppid is field 4, pgid field 5, starttime field 22.
    Some(Stat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        pgid: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The command line of a process, space-joined, or `None` if unreadable.
pub fn cmdline(pid: u32) -> Option<String> {
    let raw = fs::read(format!("/proc/{pid}/cmdline")).ok()?;
    let parts: Vec<String> = raw
        .split(|b| *b == 0)
        .filter(|p| !p.is_empty())
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    if parts.is_empty() {
        None
    } else {
        Some(parts.join(" "))
    }
}

/// Every live (non-zombie) process whose process group is `pgid`.
pub fn group_members(pgid: u32) -> Vec<u32> {
    all_pids()
        .filter(|&pid| matches!(stat(pid), Some(s) if s.pgid == pgid && s.state != 'Z'))
        .collect()
}

/// The live (non-zombie) children of `pid`, e.g. a cluster master's workers, in pid order.
pub fn children(pid: u32) -> Vec<u32> {
    let mut c: Vec<u32> = all_pids()
        .filter(|&p| matches!(stat(p), Some(s) if s.ppid == pid && s.state != 'Z'))
        .collect();
    c.sort_unstable();
    c
}

fn all_pids() -> impl Iterator<Item = u32> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse().ok())
}

/// A process that holds a listening TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PortHolder {
    pub pid: u32,
    pub command: String,
}

/// Who listens on TCP `port` (any address), if /proc lets us see it.
pub fn port_holder(port: u16) -> Option<PortHolder> {
    let inodes = listening_inodes(port);
    if inodes.is_empty() {
        return None;
    }
    let wanted: Vec<String> = inodes.iter().map(|i| format!("socket:[{i}]")).collect();
    for pid in all_pids() {
        let Ok(fds) = fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = fs::read_link(fd.path())
                && wanted.iter().any(|w| target.as_os_str() == w.as_str())
            {
                let command = cmdline(pid).unwrap_or_else(|| "?".into());
                return Some(PortHolder { pid, command });
            }
        }
    }
    None
}

/// Whether `port` is held by a process that cannot be `owner`'s: one that started before it.
/// `Some(holder)` only then; `None` when the holder is `owner`, started later (it may be
/// `owner`'s descendant, or a helper such as the engine's proxy a `docker run` starts), or
/// cannot be seen. Used once an instance first answers its health check, so a program of
/// another lab answering on a port this instance failed to bind is not taken for it.
pub fn port_held_before(port: u16, owner: ProcId) -> Option<PortHolder> {
    let holder = port_holder(port)?;
    let started = stat(holder.pid)?.start_time;
    (holder.pid != owner.pid && started < owner.start_time).then_some(holder)
}

/// Socket inodes in LISTEN state on `port`, from /proc/net/tcp and tcp6.
fn listening_inodes(port: u16) -> Vec<u64> {
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = fs::read_to_string(table) else {
            continue;
        };
        out.extend(parse_listeners(&text, port));
    }
    out
}

fn parse_listeners(text: &str, port: u16) -> Vec<u64> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let local = f.get(1)?;
            let local_port = u16::from_str_radix(local.rsplit(':').next()?, 16).ok()?;
            // State 0A is TCP_LISTEN.
            (local_port == port && *f.get(3)? == "0A").then(|| f.get(9)?.parse().ok())?
        })
        .collect()
}

/// Live processes (other than this one) whose environment has `key=value`.
pub fn processes_with_env(key: &str, value: &str) -> Vec<u32> {
    let needle = format!("{key}={value}");
    let me = std::process::id();
    all_pids()
        .filter(|&pid| pid != me)
        .filter(|&pid| {
            fs::read(format!("/proc/{pid}/environ"))
                .map(|env| env.split(|b| *b == 0).any(|kv| kv == needle.as_bytes()))
                .unwrap_or(false)
        })
        .filter(|&pid| matches!(stat(pid), Some(s) if s.state != 'Z'))
        .collect()
}

/// How long the process has been running, from its start time and the system uptime.
pub fn uptime(p: ProcId) -> Option<std::time::Duration> {
    let ticks = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    let up: f64 = fs::read_to_string("/proc/uptime")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    let started = p.start_time as f64 / ticks as f64;
    Some(std::time::Duration::from_secs_f64((up - started).max(0.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_bound_before_a_process_started_is_not_that_process_s() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        // Clock ticks are 10 ms: a child started at once could share this process's tick.
        std::thread::sleep(std::time::Duration::from_millis(30));
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let later = ProcId::of(child.id()).unwrap();
        let me = ProcId::of(std::process::id()).unwrap();
        let held = port_held_before(port, later);
        let _ = child.kill();
        let _ = child.wait();
        assert_eq!(held.map(|h| h.pid), Some(std::process::id()));
        assert_eq!(port_held_before(port, me), None, "the holder itself");
        drop(l);
        assert_eq!(port_held_before(port, later), None, "nobody holds it");
    }

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (we ird) name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!((s.state, s.pgid, s.start_time), ('S', 1234, 987654));
    }

    #[test]
    fn our_own_identity_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcId::of(std::process::id()).unwrap();
        assert!(me.is_alive());
        assert!(
            !ProcId {
                start_time: me.start_time + 1,
                ..me
            }
            .is_alive()
        );
    }

    #[test]
    fn finds_who_listens_on_a_port() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let holder = port_holder(port).expect("our own listener is visible in /proc");
        assert_eq!(holder.pid, std::process::id());
        drop(l);
        assert_eq!(port_holder(port), None);
    }

    #[test]
    fn parses_listen_lines_only() {
        let t = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
   0: 0100007F:0FA0 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1\n\
   1: 0100007F:0FA0 0100007F:9C40 01 00000000:00000000 00:00000000 00000000     0        0 222 1\n";
        assert_eq!(parse_listeners(t, 4000), vec![111]);
        assert!(parse_listeners(t, 4001).is_empty());
    }
}
