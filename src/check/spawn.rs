//! Built-in services started by a scenario for its own experiment (`lab serve NAME` as a child
//! process on a free port, with the process-model variables it needs), stopped when dropped.
//!
//! Chapter 1 and 3 experiments compare process models (one thread vs offload, one worker vs
//! two): those are separate processes by nature, so they are started here rather than asked of
//! the lab under test, and nothing in the user's lab is touched.

use std::process::Stdio;
use std::time::{Duration, Instant};

use lab_net::client::Client;

use crate::config::model::Builtin;

/// A running built-in service; killed (SIGTERM, then SIGKILL) when dropped.
pub struct Spawned {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    pub pid: u32,
    child: std::process::Child,
    /// Runs in its own process group (stopped as a whole).
    group: bool,
}

/// How long a spawned service may take to answer `/health`.
const READY_DEADLINE: Duration = Duration::from_secs(15);

/// Start `lab serve <builtin>` with `env` on a free port and wait until `/health` answers.
pub async fn builtin(builtin: Builtin, env: &[(&str, &str)]) -> anyhow::Result<Spawned> {
    let port = lab_supervisor::ports::pick_free("127.0.0.1", 1)?[0];
    builtin_on(builtin, env, port).await
}

/// [`builtin`] on a given port (to restart a killed instance where a proxy expects it).
pub async fn builtin_on(
    builtin: Builtin,
    env: &[(&str, &str)],
    port: u16,
) -> anyhow::Result<Spawned> {
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
    // With TLS_CERT it serves https; TLS_CA (also given) is whom the readiness probe trusts.
    let tls_ca = env.iter().find(|(k, _)| *k == "TLS_CA").map(|(_, v)| *v);
    let tls = env.iter().any(|(k, _)| *k == "TLS_CERT");
    let spawned = Spawned {
        base: format!("{}://127.0.0.1:{port}", if tls { "https" } else { "http" }),
        pid: child.id(),
        child,
        group: false,
    };
    let client = match (tls, tls_ca) {
        (true, Some(ca)) => {
            Client::with_tls(lab_net::tls::client_config(std::path::Path::new(ca))?)
        }
        (true, None) => anyhow::bail!("a TLS service started for a check needs TLS_CA too"),
        _ => Client::new(),
    };
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

impl Spawned {
    /// Send `signal` to it (to its whole group when it runs in one): SIGSTOP and SIGCONT for
    /// an experiment that freezes it.
    pub fn signal(&self, signal: nix::sys::signal::Signal) -> anyhow::Result<()> {
        let pid = nix::unistd::Pid::from_raw(self.pid as i32);
        if self.group {
            nix::sys::signal::killpg(pid, signal)?;
        } else {
            nix::sys::signal::kill(pid, signal)?;
        }
        Ok(())
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        // A frozen one takes its SIGTERM only once it runs again.
        let _ = self.signal(nix::sys::signal::Signal::SIGCONT);
        // A master stops its workers first (they die with it in any case: PDEATHSIG); a
        // learner's program runs in a group of its own, stopped as a whole.
        if self.group {
            stop_group(&mut self.child);
        } else {
            stop(&mut self.child);
        }
    }
}

/// A copy of a lab `command` service (the learner's own program, from its folder, with the
/// book's variables and a free `PORT`), for an experiment that must not touch the lab's own
/// instances (killing a worker of a master that does not respawn, say). It runs in a process
/// group of its own, stopped as a whole when dropped.
pub async fn command_copy(
    e: &super::scenario::Endpoint,
    env: &[(&str, &str)],
) -> anyhow::Result<Spawned> {
    use std::os::unix::process::CommandExt;
    let super::scenario::EndpointRun::Command { argv, cwd } = &e.run else {
        anyhow::bail!("`{}` is not a command service", e.service);
    };
    let port = lab_supervisor::ports::pick_free("127.0.0.1", 1)?[0];
    let child = std::process::Command::new(&argv[0])
        .args(&argv[1..])
        .current_dir(cwd)
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env("NODE_ENV", &e.environment)
        .env("LAB_ENV", &e.environment)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|err| anyhow::anyhow!("cannot run `{}` for this check: {err}", argv.join(" ")))?;
    let mut spawned = Spawned {
        base: format!("http://127.0.0.1:{port}"),
        pid: child.id(),
        child,
        group: true,
    };
    let t0 = Instant::now();
    let addr = format!("127.0.0.1:{port}");
    loop {
        if tokio::net::TcpStream::connect(&addr).await.is_ok() {
            return Ok(spawned);
        }
        if let Ok(Some(status)) = spawned.child.try_wait() {
            anyhow::bail!(
                "a copy of `{}` started for this check exited at start ({status})",
                argv.join(" ")
            );
        }
        if t0.elapsed() > READY_DEADLINE {
            anyhow::bail!(
                "a copy of `{}` started for this check did not listen on PORT={port} within {}s",
                argv.join(" "),
                READY_DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await; // poll interval, under the deadline
    }
}

/// `lab serve slow-server` (the book's low-connections.js) on a free port, holding each
/// request `hold`; ready once it accepts connections.
pub async fn slow_server(hold: Duration) -> anyhow::Result<Spawned> {
    let port = lab_supervisor::ports::pick_free("127.0.0.1", 1)?[0];
    let child = std::process::Command::new(std::env::current_exe()?)
        .args(["serve", "slow-server"])
        .env("HOST", "127.0.0.1")
        .env("PORT", port.to_string())
        .env(crate::slow::HOLD_MS_ENV, hold.as_millis().to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let spawned = Spawned {
        base: format!("http://127.0.0.1:{port}"),
        pid: child.id(),
        child,
        group: false,
    };
    let t0 = Instant::now();
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        if t0.elapsed() > READY_DEADLINE {
            anyhow::bail!(
                "the slow server did not listen within {}s",
                READY_DEADLINE.as_secs()
            );
        }
        tokio::time::sleep(Duration::from_millis(5)).await; // poll interval, under the deadline
    }
    Ok(spawned)
}

/// A proxy started by a scenario: `lab serve proxy` (builtin) or `haproxy` (rendered config)
/// on free ports; stopped, and its files removed, when dropped.
pub struct SpawnedProxy {
    pub engine: crate::config::model::ProxyEngine,
    /// `127.0.0.1:PORT` of each frontend, in config order.
    pub addrs: Vec<String>,
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

/// Start `cfg` (every frontend's `bind` is replaced by a free port) with `engine`; returns
/// once every frontend accepts connections.
pub async fn proxy(
    engine: crate::config::model::ProxyEngine,
    mut cfg: lab_proxy::config::ProxyConfig,
) -> anyhow::Result<SpawnedProxy> {
    use crate::config::model::ProxyEngine;
    let ports = lab_supervisor::ports::pick_free("127.0.0.1", cfg.frontends.len())?;
    for (f, p) in cfg.frontends.iter_mut().zip(&ports) {
        f.bind = format!("127.0.0.1:{p}");
    }
    let dir = tempfile::Builder::new()
        .prefix("lab-check-proxy-")
        .tempdir()?;
    let mut cmd = match engine {
        ProxyEngine::Builtin => {
            let path = dir.path().join("proxy.json");
            std::fs::write(&path, serde_json::to_vec_pretty(&cfg)?)?;
            let mut c = std::process::Command::new(std::env::current_exe()?);
            c.args(["serve", "proxy", "--config"]).arg(&path);
            c.env("RUST_LOG", "warn");
            c
        }
        ProxyEngine::Haproxy => {
            let pem = dir.path().join("proxy.pem");
            if let Some(t) = cfg.frontends.iter().find_map(|f| f.tls.as_ref()) {
                lab_proxy::haproxy::write_pem(t, &pem)?;
            }
            let path = dir.path().join("haproxy.cfg");
            std::fs::write(&path, lab_proxy::haproxy::render(&cfg, |_| pem.clone()))?;
            let haproxy = crate::programs::find("haproxy").ok_or_else(|| {
                anyhow::anyhow!("haproxy is not installed; install it (`apt-get install haproxy`) or use --proxy-engine builtin")
            })?;
            let mut c = std::process::Command::new(haproxy);
            c.arg("-f").arg(&path).arg("-db");
            c
        }
    };
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match engine {
            ProxyEngine::Haproxy => anyhow::anyhow!(
                "cannot run haproxy ({e}); install it (`apt-get install haproxy`) or use --proxy-engine builtin"
            ),
            ProxyEngine::Builtin => anyhow::anyhow!("cannot run `lab serve proxy`: {e}"),
        })?;
    let mut spawned = SpawnedProxy {
        engine,
        addrs: ports.iter().map(|p| format!("127.0.0.1:{p}")).collect(),
        child,
        _dir: dir,
    };
    let t0 = Instant::now();
    for addr in spawned.addrs.clone() {
        loop {
            if tokio::net::TcpStream::connect(&addr).await.is_ok() {
                break;
            }
            if let Ok(Some(status)) = spawned.child.try_wait() {
                anyhow::bail!("the {} proxy exited at start: {status}", engine.as_str());
            }
            if t0.elapsed() > READY_DEADLINE {
                anyhow::bail!(
                    "the {} proxy did not listen on {addr} within {}s",
                    engine.as_str(),
                    READY_DEADLINE.as_secs()
                );
            }
            tokio::time::sleep(Duration::from_millis(5)).await; // poll interval, under the deadline
        }
    }
    Ok(spawned)
}

impl Drop for SpawnedProxy {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// [`stop`] for a whole process group (the child leads it).
fn stop_group(child: &mut std::process::Child) {
    use nix::sys::signal::{Signal, killpg};
    use nix::unistd::Pid;
    let pg = Pid::from_raw(child.id() as i32);
    let _ = killpg(pg, Signal::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(5) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = killpg(pg, Signal::SIGKILL);
    let _ = child.kill();
    let _ = child.wait();
}

/// SIGTERM, up to 7 s to exit (a service drains for at most 5 s), then SIGKILL; reaped.
fn stop(child: &mut std::process::Child) {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(7) {
        if matches!(child.try_wait(), Ok(Some(_))) {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
}
