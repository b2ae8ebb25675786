//! Node's cluster module for the built-in services: one master process, N worker processes
//! sharing one port.
//!
//! The master binds nothing it serves: it starts each worker as a copy of its own command line
//! with `LAB_WORKER=<n>`, and every worker binds the same address with `SO_REUSEPORT`, so the
//! kernel spreads incoming connections over them. (Node's master owns the socket and hands
//! connections out; passing a listening socket to a child would need `unsafe` fd plumbing,
//! which this workspace forbids. The visible behaviour is the same: one port, many pids.)
//!
//! The master logs every worker's pid, replaces a worker that exits when `LAB_RESPAWN=1` (the
//! book's commented-out `cluster.fork()`), exits with an error once no worker is left, and on
//! SIGTERM/SIGINT stops the workers (SIGTERM, then SIGKILL past the drain cap) before it exits.
//! Workers are in the master's process group, so the supervisor's group signal reaches them
//! too, and each asks the kernel for SIGTERM should the master die first.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::task::JoinSet;

use crate::settings::{Settings, env};
use lab_net::serve::{DRAIN_CAP, ServiceError, shutdown_signal};

/// A worker that dies sooner than this after its start counts as crashing: the next respawn
/// waits longer (doubling from 100 ms up to 5 s), so a broken worker cannot spin the master.
const STABLE_AFTER: Duration = Duration::from_secs(1);

/// Run the master: start `settings.workers` workers and look after them until a signal.
pub fn run_master(name: &'static str, settings: &Settings) -> Result<(), ServiceError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(master(name, settings))
}

async fn master(name: &'static str, settings: &Settings) -> Result<(), ServiceError> {
    // Port 0: reserve one port for all workers with a bound, never-listening socket (it takes
    // no connections, and keeps the port ours while the workers come and go).
    let (port, _reserved) = if settings.port == 0 {
        let addr = resolve(&settings.bind_addr()).await?;
        let s = reuseport_socket(addr)?;
        s.bind(addr).map_err(|source| ServiceError::Bind {
            addr: addr.to_string(),
            source,
        })?;
        (s.local_addr()?.port(), Some(s))
    } else {
        (settings.port, None)
    };
    tracing::info!(
        service = name,
        workers = settings.workers,
        port,
        respawn = settings.respawn,
        "cluster master"
    );

    let exe = std::env::current_exe()?;
    let args: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    let spawn = |n: usize| -> std::io::Result<tokio::process::Child> {
        tokio::process::Command::new(&exe)
            .args(&args)
            .env(env::LAB_WORKER, n.to_string())
            .env(env::PORT, port.to_string())
            .env_remove(env::LAB_WORKERS)
            .kill_on_drop(true)
            .spawn()
    };

    type Exit = (usize, u32, std::io::Result<std::process::ExitStatus>);
    let mut running: HashMap<usize, (u32, Instant)> = HashMap::new();
    let mut waits: JoinSet<Exit> = JoinSet::new();
    let start =
        |n: usize, waits: &mut JoinSet<Exit>, running: &mut HashMap<usize, (u32, Instant)>| {
            let mut child = spawn(n)?;
            let pid = child.id().unwrap_or(0);
            tracing::info!(service = name, worker = n, pid, "worker started");
            running.insert(n, (pid, Instant::now()));
            waits.spawn(async move { (n, pid, child.wait().await) });
            Ok::<_, std::io::Error>(())
        };
    for n in 1..=settings.workers {
        start(n, &mut waits, &mut running)?;
    }

    let mut delay = Duration::from_millis(100);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    loop {
        tokio::select! {
            _ = &mut signal => break,
            Some(joined) = waits.join_next() => {
                let Ok((n, pid, status)) = joined else { continue };
                let lived = running.remove(&n).map_or(Duration::ZERO, |(_, t)| t.elapsed());
                let how = status.map_or_else(|e| e.to_string(), |s| s.to_string());
                tracing::warn!(service = name, worker = n, pid, status = %how, "worker exited");
                if settings.respawn {
                    delay = if lived < STABLE_AFTER { (delay * 2).min(Duration::from_secs(5)) } else { Duration::from_millis(100) };
                    tokio::select! {
                        _ = &mut signal => break,
                        _ = tokio::time::sleep(delay) => {}
                    }
                    start(n, &mut waits, &mut running)?;
                } else if running.is_empty() {
                    tracing::error!(service = name, "no worker left and respawn is off");
                    return Err(ServiceError::Config("every worker exited (respawn is off)".into()));
                }
            }
        }
    }

    // Stop: SIGTERM every worker, SIGKILL what is left after the drain cap.
    for (n, (pid, _)) in &running {
        tracing::info!(service = name, worker = n, pid, "stopping worker");
        let _ = kill(Pid::from_raw(*pid as i32), Signal::SIGTERM);
    }
    let all_done = async { while waits.join_next().await.is_some() {} };
    if tokio::time::timeout(DRAIN_CAP + Duration::from_secs(1), all_done)
        .await
        .is_err()
    {
        tracing::warn!(service = name, "workers did not stop in time: killing them");
        waits.shutdown().await; // drops the children: kill_on_drop sends SIGKILL
    }
    tracing::info!(service = name, "cluster stopped");
    Ok(())
}

/// What a worker does first: ask for SIGTERM when the master dies, so no worker outlives it.
pub fn worker_setup() {
    #[cfg(target_os = "linux")]
    let _ = nix::sys::prctl::set_pdeathsig(Signal::SIGTERM);
}

/// Bind `addr` the way workers do: SO_REUSEPORT, so every worker of a master listens on it.
pub async fn bind_shared(addr: &str) -> Result<tokio::net::TcpListener, ServiceError> {
    let sa = resolve(addr).await?;
    let socket = reuseport_socket(sa)?;
    socket.bind(sa).map_err(|source| ServiceError::Bind {
        addr: addr.to_owned(),
        source,
    })?;
    Ok(socket.listen(1024)?)
}

fn reuseport_socket(addr: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpSocket> {
    let s = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    s.set_reuseaddr(true)?;
    s.set_reuseport(true)?;
    Ok(s)
}

async fn resolve(addr: &str) -> Result<std::net::SocketAddr, ServiceError> {
    tokio::net::lookup_host(addr)
        .await
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| ServiceError::Config(format!("cannot resolve {addr}")))
}
