//! Process faults injected on purpose (`lab fault`, issue 18): kill, pause and restart an
//! instance, on the process runtime (signals to its whole process group) and on the docker
//! runtime (the engine's kill, pause, stop). What lasts, a pause, is recorded in
//! `.lab/faults.json`, so `lab fault list`, `lab status`, the supervisor (which ends a pause
//! whose time is up) and `lab down` (which ends every pause first) see the same faults from
//! any process. Every fault injected or cleared is also a log document in the hub
//! (`type:fault`), when the lab has one. Faults on the edges (latency, status, …) are recorded
//! here too ([`Faults::add_edge`]); the edges process (`lab_edges`) reads and applies them.

use std::fs::File;
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::sys::signal::Signal;
use serde::{Deserialize, Serialize};

use crate::procfs::ProcId;
use crate::runtime::docker::Engine;
use crate::runtime::process::signal_group;
use crate::state::InstanceRecord;

/// What `.lab/faults.json` holds.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Faults {
    /// The number of the next fault (`f1`, `f2`, …): never reused while the file lives.
    #[serde(default)]
    next: u32,
    /// Faults in effect (pauses), oldest first.
    #[serde(default)]
    pub active: Vec<Fault>,
    /// Instances asked to restart: their next exit starts them again at once, whatever their
    /// restart policy says, without a backoff.
    #[serde(default)]
    pub restarts: Vec<String>,
    /// The hub's log input (Logstash JSON over UDP), for the faults' log documents.
    #[serde(default)]
    pub hub_logs: Option<String>,
    /// Faults that ended (kills and restarts end as they start), newest last, at most
    /// [`ENDED_KEPT`]: what `lab load` asks about a run that overlapped one.
    #[serde(default)]
    pub ended: Vec<Fault>,
}

/// How many ended faults the file keeps.
pub const ENDED_KEPT: usize = 200;

/// One fault in effect.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fault {
    /// `f1`, `f2`, …: what `lab fault clear` takes.
    pub id: String,
    /// `pause`.
    pub kind: String,
    /// `web-api#1`.
    pub instance: String,
    /// The paused process group (process runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub process: Option<ProcId>,
    /// The paused container (docker runtime).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Epoch milliseconds.
    pub since_ms: i64,
    /// When it clears itself (`--for`), epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until_ms: Option<i64>,
    /// A fault on the edges into `instance` (a service, or one instance of it): what the
    /// edges process applies. `None`: a pause.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edge: Option<lab_edges::EdgeFault>,
    /// When it ended (ended faults only), epoch milliseconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_ms: Option<i64>,
    /// A partition on the docker runtime: the network the container was cut from and its
    /// aliases there (to attach it again as it was).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Cut>,
    /// The `[faults.NAME]` of lab.toml that scheduled it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

/// Where a partitioned container was attached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cut {
    pub network: String,
    #[serde(default)]
    pub aliases: Vec<String>,
}

impl Fault {
    /// `latency:200ms downstream`, `SIGSTOP to group 1234`, `kill`: what it does.
    pub fn describe(&self) -> String {
        match (&self.edge, &self.container, self.process) {
            (Some(e), _, _) => e.describe(),
            (None, Some(id), _) if self.kind == "pause" => {
                format!("docker pause {}", &id[..id.len().min(12)])
            }
            (None, Some(_), _) if self.network.is_some() => {
                let cut = self.network.as_ref().expect("checked");
                format!("cut off network {}", cut.network)
            }
            (None, None, Some(p)) if self.kind == "pause" => format!("SIGSTOP to group {}", p.pid),
            _ => self.kind.clone(),
        }
    }
}

pub use crate::plan::Action;

pub fn faults_file(state_dir: &Path) -> PathBuf {
    state_dir.join("faults.json")
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Faults {
    /// The faults recorded under `state_dir` (none when there is no file).
    pub fn load(state_dir: &Path) -> std::io::Result<Faults> {
        let path = faults_file(state_dir);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("{}: {e}", path.display()),
                )
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Faults::default()),
            Err(e) => Err(e),
        }
    }

    fn save(&self, state_dir: &Path) -> std::io::Result<()> {
        let path = faults_file(state_dir);
        let tmp = path.with_extension(format!("json.{}.tmp", std::process::id()));
        std::fs::write(&tmp, serde_json::to_vec_pretty(self)?)?;
        std::fs::rename(&tmp, &path)
    }

    /// Change the faults under the lab's lock (the CLI and the supervisor both write them).
    pub fn update<R>(state_dir: &Path, f: impl FnOnce(&mut Faults) -> R) -> std::io::Result<R> {
        std::fs::create_dir_all(state_dir)?;
        let lock = File::create(state_dir.join("faults.lock"))?;
        lock.lock()?;
        let mut faults = Faults::load(state_dir)?;
        let out = f(&mut faults);
        faults.save(state_dir)?;
        Ok(out)
    }

    fn keep_ended(&mut self, mut gone: Vec<Fault>, at: i64) {
        for f in &mut gone {
            f.ended_ms = Some(at);
        }
        self.ended.extend(gone);
        let over = self.ended.len().saturating_sub(ENDED_KEPT);
        self.ended.drain(..over);
    }

    /// The faults in effect at some time between `from_ms` and `to_ms` (epoch ms).
    pub fn overlapping(&self, from_ms: i64, to_ms: i64) -> Vec<Fault> {
        self.ended
            .iter()
            .chain(&self.active)
            .filter(|f| f.since_ms <= to_ms && f.ended_ms.is_none_or(|e| e >= from_ms))
            .cloned()
            .collect()
    }

    /// The pause in effect on `instance`, if any.
    pub fn pause_of(&self, instance: &str) -> Option<&Fault> {
        self.kind_on(instance, "pause")
    }

    /// The process fault of `kind` (`pause`, `partition`) in effect on `instance`, if any.
    pub fn kind_on(&self, instance: &str, kind: &str) -> Option<&Fault> {
        self.active
            .iter()
            .find(|f| f.instance == instance && f.edge.is_none() && f.kind == kind)
    }

    /// Record an edge fault on `target` (`SERVICE` or `SERVICE#N`), lasting `lasting` or
    /// until cleared; the edges apply it within 100 ms.
    pub fn add_edge(
        state_dir: &Path,
        target: &str,
        edge: lab_edges::EdgeFault,
        lasting: Option<Duration>,
        hub_logs: Option<String>,
    ) -> std::io::Result<Fault> {
        let fault = Faults::update(state_dir, |f| {
            if hub_logs.is_some() {
                f.hub_logs = hub_logs.clone();
            }
            f.next += 1;
            let since_ms = now_ms();
            let fault = Fault {
                id: format!("f{}", f.next),
                kind: edge.kind.name().into(),
                instance: target.to_owned(),
                process: None,
                container: None,
                since_ms,
                until_ms: lasting.map(|d| since_ms + d.as_millis() as i64),
                edge: Some(edge.clone()),
                ended_ms: None,
                network: None,
                name: None,
            };
            f.active.push(fault.clone());
            fault
        })?;
        log_fault(
            hub_logs.as_deref(),
            &fault.kind,
            Some(&fault.id),
            target,
            "injected",
            &edge.describe(),
        );
        Ok(fault)
    }
}

/// Forget the faults files of a lab that is gone (`lab down`).
pub fn remove(state_dir: &Path) {
    let _ = std::fs::remove_file(faults_file(state_dir));
    let _ = std::fs::remove_file(state_dir.join("faults.lock"));
}

/// What one injection did, for the CLI to print.
#[derive(Debug, Clone)]
pub struct Injected {
    /// The recorded fault (a pause), else `None`.
    pub fault: Option<Fault>,
    /// How it was done: `SIGSTOP to process group 1234`, `docker pause 3f2a…`.
    pub how: String,
}

/// Inject `action` into the instance `rec` names. `engine` is the docker runtime's (an
/// instance in a container needs it), `network` the lab's network there (a partition needs
/// it). `hub_logs` is remembered for the supervisor's documents.
pub async fn inject(
    state_dir: &Path,
    engine: Option<&Engine>,
    network: Option<&str>,
    rec: &InstanceRecord,
    action: Action,
    hub_logs: Option<String>,
) -> Result<Injected, String> {
    let instance = rec.id();
    let (process, container) = (rec.process.filter(|p| p.is_alive()), rec.container.clone());
    if process.is_none() && container.is_none() {
        return Err(format!(
            "{instance} has no running process now ({}): nothing to {}",
            rec.health.as_str(),
            action.name()
        ));
    }
    let io = |e: std::io::Error| format!("cannot record the fault: {e}");
    if action.lasting().is_some() {
        let faults = Faults::load(state_dir).map_err(io)?;
        if let Some(f) = faults.kind_on(&instance, action.name()) {
            let state = match action {
                Action::Partition { .. } => "partitioned",
                _ => "paused",
            };
            return Err(format!(
                "{instance} is already {state} ({}): `lab fault clear {}` first",
                f.id, f.id
            ));
        }
    }
    if let Action::Partition { .. } = action
        && container.is_none()
    {
        return Err(format!(
            "{instance} runs as a process: on the process runtime a partition cuts the fault edges into it (`[faults] edges = true`)"
        ));
    }
    let mut cut = None;
    if action == Action::Restart {
        Faults::update(state_dir, |f| {
            if !f.restarts.contains(&instance) {
                f.restarts.push(instance.clone());
            }
        })
        .map_err(io)?;
    }
    let how = match (&container, process) {
        (Some(id), _) => {
            let engine = engine.ok_or("the lab runs on docker, and the engine is not reachable")?;
            let short = &id[..id.len().min(12)];
            match action {
                Action::Kill => {
                    engine.unpause(id).await?;
                    engine.kill(id).await?;
                    format!("docker kill {short}")
                }
                Action::Pause { .. } => {
                    engine.pause(id).await?;
                    format!("docker pause {short}")
                }
                Action::Restart => {
                    engine.stop(id, Duration::from_secs(10)).await;
                    format!("docker stop {short}")
                }
                Action::Partition { .. } => {
                    let network = network.ok_or("the lab's docker network is not recorded")?;
                    let aliases = engine.disconnect(network, id).await?;
                    cut = Some(Cut {
                        network: network.to_owned(),
                        aliases,
                    });
                    format!("docker network disconnect {network} {short}")
                }
            }
        }
        (None, Some(p)) => {
            let signal = match action {
                Action::Kill => Signal::SIGKILL,
                Action::Pause { .. } => Signal::SIGSTOP,
                Action::Restart => Signal::SIGTERM,
                Action::Partition { .. } => unreachable!("refused above"),
            };
            if !signal_group(p, signal) {
                return Err(format!("{instance} (pid {}) is gone", p.pid));
            }
            if action == Action::Restart {
                signal_group(p, Signal::SIGCONT);
            }
            format!("{signal} to process group {}", p.pid)
        }
        (None, None) => unreachable!("checked above"),
    };
    let fault = Faults::update(state_dir, |f| {
        if hub_logs.is_some() {
            f.hub_logs = hub_logs.clone();
        }
        match action {
            Action::Pause { lasting } | Action::Partition { lasting } => {
                f.next += 1;
                let since_ms = now_ms();
                let fault = Fault {
                    id: format!("f{}", f.next),
                    kind: action.name().into(),
                    instance: instance.clone(),
                    process,
                    container: container.clone(),
                    since_ms,
                    until_ms: lasting.map(|d| since_ms + d.as_millis() as i64),
                    edge: None,
                    ended_ms: None,
                    network: cut.clone(),
                    name: None,
                };
                f.active.push(fault.clone());
                Some(fault)
            }
            // The process a pause stopped is gone; the kill or restart itself ends at once.
            Action::Kill | Action::Restart => {
                let now = now_ms();
                let (gone, kept) = std::mem::take(&mut f.active)
                    .into_iter()
                    .partition(|p| p.instance == instance && p.edge.is_none());
                f.active = kept;
                f.next += 1;
                let mut gone: Vec<Fault> = gone;
                gone.push(Fault {
                    id: format!("f{}", f.next),
                    kind: action.name().into(),
                    instance: instance.clone(),
                    process,
                    container: container.clone(),
                    since_ms: now,
                    until_ms: None,
                    edge: None,
                    ended_ms: None,
                    network: None,
                    name: None,
                });
                f.keep_ended(gone, now);
                None
            }
        }
    })
    .map_err(io)?;
    let id = fault.as_ref().map(|f| f.id.as_str());
    log_fault(
        hub_logs.as_deref(),
        action.name(),
        id,
        &instance,
        "injected",
        &how,
    );
    Ok(Injected { fault, how })
}

/// End a fault: a paused group gets SIGCONT, a paused container is thawed, a partitioned one
/// attached to its network again (edge faults end when the edges read the file). `why` is
/// logged (`cleared`, `expired`, `lab down`).
pub async fn end(engine: Option<&Engine>, fault: &Fault, hub_logs: Option<&str>, why: &str) {
    if fault.edge.is_none() {
        if let Some(p) = fault.process {
            signal_group(p, Signal::SIGCONT);
        }
        if let (Some(id), Some(engine)) = (&fault.container, engine) {
            let done = match &fault.network {
                Some(cut) => engine.reconnect(&cut.network, id, &cut.aliases).await,
                None => engine.unpause(id).await,
            };
            if let Err(e) = done {
                tracing::warn!(error = %e, "cannot end a {}", fault.kind);
            }
        }
    }
    log_fault(
        hub_logs,
        &fault.kind,
        Some(&fault.id),
        &fault.instance,
        why,
        "",
    );
}

/// Take the faults `pick` chooses out of the record and end them. What was ended.
pub async fn clear(
    state_dir: &Path,
    engine: Option<&Engine>,
    why: &str,
    pick: impl Fn(&Fault) -> bool,
) -> std::io::Result<Vec<Fault>> {
    if !faults_file(state_dir).exists() {
        return Ok(Vec::new());
    }
    let (gone, hub) = Faults::update(state_dir, |f| {
        let (gone, kept): (Vec<Fault>, Vec<Fault>) =
            std::mem::take(&mut f.active).into_iter().partition(&pick);
        f.active = kept;
        f.keep_ended(gone.clone(), now_ms());
        (gone, f.hub_logs.clone())
    })?;
    for fault in &gone {
        end(engine, fault, hub.as_deref(), why).await;
    }
    Ok(gone)
}

/// Whether `instance` was asked to restart (and forget the ask): the supervisor's question when
/// it exits.
pub fn take_restart(state_dir: &Path, instance: &str) -> bool {
    if !faults_file(state_dir).exists() {
        return false;
    }
    Faults::update(state_dir, |f| {
        let asked = f.restarts.iter().any(|i| i == instance);
        f.restarts.retain(|i| i != instance);
        let (gone, kept) = std::mem::take(&mut f.active)
            .into_iter()
            .partition(|p| p.instance == instance && p.edge.is_none());
        f.active = kept;
        f.keep_ended(gone, now_ms());
        asked
    })
    .unwrap_or(false)
}

/// The supervisor's watch: every 200 ms, end the pauses whose time is up, until `stop`.
pub async fn expire_while(
    state_dir: PathBuf,
    engine: Option<Engine>,
    stop: tokio_util::sync::CancellationToken,
) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
        let due = Faults::load(&state_dir).is_ok_and(|f| {
            let now = now_ms();
            f.active
                .iter()
                .any(|p| p.until_ms.is_some_and(|u| u <= now))
        });
        if due {
            let now = now_ms();
            let picked = clear(&state_dir, engine.as_ref(), "expired", |p| {
                p.until_ms.is_some_and(|u| u <= now)
            })
            .await;
            if let Err(e) = picked {
                tracing::warn!(error = %e, "cannot end the faults whose time is up");
            }
        }
    }
}

/// A fault's log document for the hub (Logstash JSON over UDP): best effort, never fatal.
fn log_fault(
    hub_logs: Option<&str>,
    kind: &str,
    id: Option<&str>,
    instance: &str,
    action: &str,
    how: &str,
) {
    let Some(addr) = hub_logs else { return };
    let (service, _) = instance.split_once('#').unwrap_or((instance, ""));
    let message = match id {
        Some(id) => format!("fault {id}: {kind} {instance} {action}"),
        None => format!("fault: {kind} {instance} {action}"),
    };
    let doc = serde_json::json!({
        "@timestamp": humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
        "@version": 1,
        "app": "lab",
        "type": "fault",
        "severity": "warn",
        "fault": kind,
        "fault_id": id,
        "action": action,
        "target": instance,
        "service": service,
        "how": how,
        "message": message,
    });
    if let Ok(sock) = UdpSocket::bind("127.0.0.1:0") {
        let _ = sock.send_to(doc.to_string().as_bytes(), addr);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_numbered_kept_and_taken_under_the_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Faults::load(dir.path()).unwrap().active.is_empty());
        let ids: Vec<String> = (0..2)
            .map(|i| {
                Faults::update(dir.path(), |f| {
                    f.next += 1;
                    let id = format!("f{}", f.next);
                    f.active.push(Fault {
                        id: id.clone(),
                        kind: "pause".into(),
                        instance: format!("web-api#{i}"),
                        process: None,
                        container: None,
                        since_ms: 1,
                        until_ms: None,
                        edge: None,
                        ended_ms: None,
                        network: None,
                        name: None,
                    });
                    f.restarts.push(format!("web-api#{i}"));
                    id
                })
                .unwrap()
            })
            .collect();
        assert_eq!(ids, ["f1", "f2"]);
        assert!(take_restart(dir.path(), "web-api#0"));
        assert!(
            !take_restart(dir.path(), "web-api#0"),
            "asked once, taken once"
        );
        let f = Faults::load(dir.path()).unwrap();
        assert_eq!(f.active.len(), 1, "the restarted instance's pause is gone");
        assert_eq!(f.pause_of("web-api#1").unwrap().id, "f2");
        let f = Faults::load(dir.path()).unwrap();
        assert_eq!(f.ended.len(), 1, "the restarted instance's pause ended");
        assert!(f.ended[0].ended_ms.is_some());
        let now = now_ms();
        let ids = |v: Vec<Fault>| v.into_iter().map(|f| f.id).collect::<Vec<_>>();
        assert_eq!(
            ids(f.overlapping(0, now + 1)),
            ["f1", "f2"],
            "ended and active"
        );
        assert_eq!(
            ids(f.overlapping(now + 1000, now + 2000)),
            ["f2"],
            "only what still lasts"
        );
        assert!(f.overlapping(-10, 0).is_empty(), "nothing before it began");
        remove(dir.path());
        assert!(!faults_file(dir.path()).exists());
    }
}
