//! `lab status`: what runs where, with live health probed now (not just what was recorded).

use std::time::Duration;

use lab_net::client::Client;
use lab_supervisor::state::{InstanceRecord, State};
use serde::Serialize;

use crate::cli::StatusArgs;
use crate::error::exit;
use crate::render::{self};

use super::env::Env;
use super::running::instances_table;

/// One instance as `lab status --json` shows it.
#[derive(Debug, Serialize)]
pub struct InstanceStatus {
    pub service: String,
    pub instance: usize,
    pub pid: Option<u32>,
    /// The container (docker runtime).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// Child processes of the instance: a cluster master's workers (`workers = N`), or what
    /// your own program started.
    pub children: Vec<u32>,
    pub address: String,
    /// Probed now: `healthy`, `unhealthy`, or `down` (no live process).
    pub health: String,
    /// The book's state, probed now: `OK`, `DEGRADED` (`/health` answers 200 `DEGRADED`: an
    /// optional dependency is down) or `DOWN`.
    pub state: String,
    pub restarts: u32,
    pub last_exit: Option<String>,
    pub uptime_s: Option<f64>,
    pub log: String,
}

#[derive(Debug, Serialize)]
pub struct LabStatus {
    pub lab: Option<String>,
    pub phase: Option<String>,
    pub supervisor: Option<SupervisorStatus>,
    pub instances: Vec<InstanceStatus>,
    /// Faults in effect (`lab fault`).
    pub faults: Vec<lab_supervisor::faults::Fault>,
}

#[derive(Debug, Serialize)]
pub struct SupervisorStatus {
    pub pid: u32,
    pub alive: bool,
}

pub async fn run(env: &Env, args: StatusArgs) -> anyhow::Result<u8> {
    let Some(state) = State::load(&env.state_dir)? else {
        if args.json {
            render::line(serde_json::to_string_pretty(&LabStatus {
                lab: None,
                phase: None,
                supervisor: None,
                instances: vec![],
                faults: vec![],
            })?);
        } else {
            render::line(format!(
                "no lab is running here (nothing recorded under {})",
                env.state_dir.display()
            ));
        }
        return Ok(exit::OK);
    };
    let live = probe_all(&state).await;
    let faults = lab_supervisor::faults::Faults::load(&env.state_dir)
        .map(|f| f.active)
        .unwrap_or_default();
    let sup_alive = state.supervisor_alive();
    if args.json {
        let instances = state
            .instances
            .iter()
            .zip(&live)
            .map(|(r, (h, level))| InstanceStatus {
                service: r.service.clone(),
                instance: r.instance,
                pid: r.process.filter(|p| p.is_alive()).map(|p| p.pid),
                container: r.container.clone(),
                children: r
                    .process
                    .filter(|p| p.is_alive())
                    .map_or_else(Vec::new, |p| lab_supervisor::procfs::children(p.pid)),
                address: r.address.clone(),
                health: h.clone(),
                state: level.clone(),
                restarts: r.restarts,
                last_exit: r.last_exit.clone(),
                uptime_s: r
                    .process
                    .filter(|p| p.is_alive())
                    .and_then(lab_supervisor::procfs::uptime)
                    .map(|d| d.as_secs_f64()),
                log: r.log.display().to_string(),
            })
            .collect();
        let status = LabStatus {
            lab: Some(state.name.clone()),
            phase: Some(format!("{:?}", state.phase).to_lowercase()),
            supervisor: Some(SupervisorStatus {
                pid: state.supervisor.pid,
                alive: sup_alive,
            }),
            instances,
            faults,
        };
        render::line(serde_json::to_string_pretty(&status)?);
        return Ok(exit::OK);
    }
    let style = env.style;
    render::line(format!(
        "lab {} ({}), supervisor pid {} {}",
        style.bold(&state.name),
        format!("{:?}", state.phase).to_lowercase(),
        state.supervisor.pid,
        if sup_alive {
            style.green("running")
        } else {
            style.red("gone")
        }
    ));
    render::line(instances_table(&state, Some(&live), &style));
    if !faults.is_empty() {
        render::line(format!(
            "{} faults in effect (`lab fault clear` ends them):",
            style.yellow(render::WARN)
        ));
        render::line(super::running::faults_table(&faults, &style));
    }
    if let Some(line) = hub_store_line(env).await {
        render::line(line);
    }
    if !sup_alive {
        render::line(format!(
            "{} the supervisor is not running: crashed instances will not be restarted. `lab down` cleans up.",
            style.yellow(render::WARN)
        ));
    }
    Ok(exit::OK)
}

/// `hub store 12.3 MB of 1.0 GB, kept 7d; retention deleted 120 logs, 0 points, 3 spans`, from
/// the running hub's `/api/status`.
async fn hub_store_line(env: &Env) -> Option<String> {
    let hub = super::running::running_config(&env.state_dir)?;
    let host = if hub.host.is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        hub.host.to_string()
    };
    let url = format!("http://{host}:{}/api/status", hub.http_port);
    let v = Client::new()
        .get(&url, Duration::from_secs(1))
        .await
        .ok()?
        .json()
        .ok()?;
    let s = &v["store"];
    let mb = |b: &serde_json::Value| match b.as_f64().unwrap_or(0.0) {
        x if x >= 1e9 => format!("{:.1} GB", x / 1e9),
        x => format!("{:.1} MB", x / 1e6),
    };
    let age = match s["max_age_ms"].as_u64().unwrap_or(0) {
        ms if ms % 86_400_000 == 0 => format!("{}d", ms / 86_400_000),
        ms => format!("{}h", ms / 3_600_000),
    };
    let p = &s["pruned"];
    Some(format!(
        "hub store {} of {}, kept {}; retention deleted {} logs, {} points, {} spans",
        mb(&s["used_bytes"]),
        mb(&s["max_bytes"]),
        age,
        p["logs"],
        p["points"],
        p["spans"]
    ))
}

/// Probe every recorded instance concurrently; a dead process is `down` without probing.
async fn probe_all(state: &State) -> Vec<(String, String)> {
    let client = Client::new();
    let handles: Vec<_> = state
        .instances
        .iter()
        .cloned()
        .map(|r| {
            let client = client.clone();
            tokio::spawn(async move { probe_one(&client, &r).await })
        })
        .collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(
            h.await
                .unwrap_or_else(|_| ("unknown".into(), "DOWN".into())),
        );
    }
    out
}

async fn probe_one(client: &Client, r: &InstanceRecord) -> (String, String) {
    let Ok(client) = lab_supervisor::health::client_for(&r.health_check, client) else {
        return ("unknown".into(), "DOWN".into());
    };
    // A container is asked over its published port; a process only while it lives.
    let up = r.container.is_some() || r.process.is_some_and(|p| p.is_alive());
    if !up {
        return ("down".into(), "DOWN".into());
    }
    let (host, _) = r.address.rsplit_once(':').unwrap_or(("127.0.0.1", ""));
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let (level, _) = lab_supervisor::health::level(
        &client,
        &r.health_check,
        host,
        r.port,
        Duration::from_secs(1),
    )
    .await;
    let health = if level == lab_service_kit::health::Level::Down {
        "unhealthy"
    } else {
        "healthy"
    };
    (health.into(), level.as_str().into())
}
