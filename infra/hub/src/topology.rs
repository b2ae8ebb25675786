//! What the overview shows of the lab beyond health: each instance's process or container and
//! its restarts (read from the supervisor's `.lab/state.json`, which `lab up` names in the
//! hub's config), and the proxy's backends with their check state (read from each frontend's
//! stats page as CSV, which the builtin proxy and HAProxy both serve). Served as
//! `/api/overview`, which the overview page polls.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use lab_net::client::Client;
use serde::Serialize;
use serde_json::Value;

use crate::config::ProxyStatsTarget;
use crate::shared::Shared;

/// One instance: what the supervisor recorded and what the hub's probe saw.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Instance {
    pub service: String,
    pub instance: usize,
    /// `host:port` it serves on.
    pub address: String,
    pub pid: Option<u64>,
    /// The first 12 characters of its container id (docker runtime).
    pub container: Option<String>,
    pub restarts: u64,
    /// The supervisor's view: starting, healthy, unhealthy, exited, stopped.
    pub supervisor: Option<String>,
    pub last_exit: Option<String>,
    /// The hub's probe: OK, DEGRADED, DOWN, or PENDING before the first answer; None when the
    /// hub does not poll it (a TCP-checked instance such as the proxy).
    pub health: Option<String>,
    pub detail: String,
    pub probes: u64,
}

/// One server behind a proxy frontend, as its stats page reports it.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Backend {
    pub frontend: String,
    pub server: String,
    /// UP, DOWN, `no check`, …
    pub status: String,
    /// The last check's result (L7OK, L4CON, …).
    pub check: String,
    /// Sessions now, and in all.
    pub current: u64,
    pub total: u64,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct Overview {
    /// The lab's name (from its state), if known.
    pub lab: Option<String>,
    pub instances: Vec<Instance>,
    pub backends: Vec<Backend>,
    /// Why a stats page could not be read (one line per frontend).
    pub problems: Vec<String>,
    /// The faults in effect (`lab fault`, `[faults.NAME]`), from the lab's `faults.json`.
    pub faults: Vec<FaultRow>,
}

/// One fault in effect, as the overview shows it.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct FaultRow {
    pub id: String,
    /// The `[faults.NAME]` that scheduled it.
    pub name: Option<String>,
    pub kind: String,
    pub target: String,
    /// `latency:200ms downstream`, `SIGSTOP`, …
    pub what: String,
    pub since_ms: i64,
    pub until_ms: Option<i64>,
}

/// The faults in effect that the supervisor and `lab fault` record beside the state file.
pub fn faults_of(state_file: &Path) -> Vec<FaultRow> {
    let Some(v) = state_file
        .parent()
        .and_then(|d| std::fs::read(d.join("faults.json")).ok())
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
    else {
        return Vec::new();
    };
    let text = |v: &serde_json::Value| v.as_str().map(str::to_owned);
    v["active"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|f| {
                    let edge =
                        serde_json::from_value::<lab_edges::EdgeFault>(f["edge"].clone()).ok();
                    let what = match (&edge, f["kind"].as_str()) {
                        (Some(e), _) => e.describe(),
                        (None, Some("pause")) if f["container"].is_string() => {
                            "docker pause".into()
                        }
                        (None, Some("pause")) => "SIGSTOP".into(),
                        (None, Some("partition")) => "network disconnect".into(),
                        (None, k) => k.unwrap_or("?").to_owned(),
                    };
                    FaultRow {
                        id: text(&f["id"]).unwrap_or_default(),
                        name: text(&f["name"]),
                        kind: text(&f["kind"]).unwrap_or_default(),
                        target: text(&f["instance"]).unwrap_or_default(),
                        what,
                        since_ms: f["since_ms"].as_i64().unwrap_or(0),
                        until_ms: f["until_ms"].as_i64(),
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The supervisor's records of the lab's instances, in its order.
fn from_state(path: &Path) -> (Option<String>, Vec<Instance>) {
    let Some(state) = std::fs::read(path)
        .ok()
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
    else {
        return (None, Vec::new());
    };
    let text = |v: &Value| v.as_str().map(str::to_owned);
    let instances = state["instances"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| Instance {
                    service: text(&r["service"]).unwrap_or_default(),
                    instance: r["instance"].as_u64().unwrap_or(0) as usize,
                    address: text(&r["address"]).unwrap_or_default(),
                    pid: r["process"]["pid"].as_u64(),
                    container: text(&r["container"]).map(|c| c.chars().take(12).collect()),
                    restarts: r["restarts"].as_u64().unwrap_or(0),
                    supervisor: text(&r["health"]),
                    last_exit: text(&r["last_exit"]),
                    ..Instance::default()
                })
                .collect()
        })
        .unwrap_or_default();
    (text(&state["name"]), instances)
}

/// The server rows of `frontend` in a stats CSV (HAProxy's layout: `# pxname,svname,…,status,…`).
pub fn parse_stats_csv(frontend: &str, csv: &str) -> Vec<Backend> {
    let mut lines = csv.lines();
    let Some(header) = lines.next() else {
        return Vec::new();
    };
    let cols: Vec<&str> = header.trim_start_matches('#').trim().split(',').collect();
    let at = |name: &str| cols.iter().position(|c| *c == name);
    let (Some(px), Some(sv)) = (at("pxname"), at("svname")) else {
        return Vec::new();
    };
    let (status, check, scur, stot) = (at("status"), at("check_status"), at("scur"), at("stot"));
    lines
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            let get = |i: Option<usize>| i.and_then(|i| f.get(i)).copied().unwrap_or("");
            let server = get(Some(sv));
            // A frontend's own rows, and other proxies (HAProxy's stats listener) are not servers.
            if server.is_empty() || server == "FRONTEND" || server == "BACKEND" {
                return None;
            }
            // Servers sit in the frontend's backend: `<frontend>-servers` in the haproxy.cfg
            // rendered from lab.toml (and in the builtin proxy's page), or the same name.
            let proxy = get(Some(px));
            if proxy != frontend && proxy.strip_suffix("-servers") != Some(frontend) {
                return None;
            }
            Some(Backend {
                frontend: frontend.to_owned(),
                server: server.to_owned(),
                status: get(status).to_owned(),
                check: get(check).to_owned(),
                current: get(scur).parse().unwrap_or(0),
                total: get(stot).parse().unwrap_or(0),
            })
        })
        .collect()
}

async fn backends(target: &ProxyStatsTarget, client: &Client) -> Result<Vec<Backend>, String> {
    let r = client
        .get(&target.url, Duration::from_millis(800))
        .await
        .map_err(|e| format!("{}: {e}", target.frontend))?;
    if !r.status.is_success() {
        return Err(format!(
            "{}: {} from {}",
            target.frontend, r.status, target.url
        ));
    }
    Ok(parse_stats_csv(&target.frontend, &r.text()))
}

/// Everything the overview shows, now.
pub async fn overview(shared: &Arc<Shared>) -> Overview {
    let (lab, mut instances) = match &shared.config.state_file {
        Some(p) => from_state(p),
        None => (None, Vec::new()),
    };
    let health = shared.health.lock().map(|e| e.clone()).unwrap_or_default();
    for e in health {
        let state = e.state.map_or("PENDING", |l| l.as_str()).to_owned();
        let slot = match instances
            .iter_mut()
            .position(|i| i.service == e.service && i.instance == e.instance)
        {
            Some(i) => &mut instances[i],
            None => {
                // Polled but not in the state (`lab hub` beside a learner's own services).
                let address = e
                    .url
                    .split("://")
                    .nth(1)
                    .and_then(|r| r.split('/').next())
                    .unwrap_or("")
                    .to_owned();
                instances.push(Instance {
                    service: e.service.clone(),
                    instance: e.instance,
                    address,
                    ..Instance::default()
                });
                instances.last_mut().expect("just pushed")
            }
        };
        slot.health = Some(state);
        slot.detail = e.detail;
        slot.probes = e.probes;
    }
    let mut set = tokio::task::JoinSet::new();
    for (i, (t, c)) in shared
        .config
        .proxy_stats
        .iter()
        .zip(&shared.proxy_clients)
        .enumerate()
    {
        let (t, c) = (t.clone(), c.clone());
        set.spawn(async move { (i, backends(&t, &c).await) });
    }
    let mut results: Vec<(usize, Result<Vec<Backend>, String>)> = Vec::new();
    while let Some(r) = set.join_next().await {
        if let Ok(r) = r {
            results.push(r);
        }
    }
    results.sort_by_key(|r| r.0);
    let mut out = Overview {
        lab,
        instances,
        faults: shared
            .config
            .state_file
            .as_deref()
            .map(faults_of)
            .unwrap_or_default(),
        ..Overview::default()
    };
    for (_, r) in results {
        match r {
            Ok(mut b) => out.backends.append(&mut b),
            Err(e) => out.problems.push(e),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stats_csv_gives_the_servers_of_the_frontend() {
        // The head of HAProxy 2.6's CSV, trimmed to the columns that matter plus neighbours.
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight,act,bck,chkfail,chkdown,lastchg,downtime,qlimit,pid,iid,sid,throttle,lbtot,tracked,type,rate,rate_lim,rate_max,check_status,\n\
web,FRONTEND,,,1,2,100,7,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,2,0,,,,0,0,0,1,,\n\
web-servers,web-api-1,0,0,0,1,,4,0,0,,0,,0,0,0,0,UP,1,1,0,0,0,5,0,,1,2,1,,4,,2,0,,1,L7OK,\n\
web-servers,web-api-2,0,0,0,1,,3,0,0,,0,,0,0,0,0,DOWN,1,1,0,1,1,2,2,,1,2,2,,3,,2,0,,1,L4CON,\n\
web-servers,BACKEND,0,0,0,2,10,7,0,0,0,0,,0,0,0,0,UP,2,2,0,,0,5,0,,1,2,0,,7,,1,0,,1,,\n\
stats,FRONTEND,,,0,0,100,0,0,0,0,0,0,,,,,OPEN,,,,,,,,,1,3,0,,,,0,0,0,0,,\n";
        let b = parse_stats_csv("web", csv);
        assert_eq!(b.len(), 2, "{b:?}");
        assert_eq!(
            (
                b[0].server.as_str(),
                b[0].status.as_str(),
                b[0].check.as_str(),
                b[0].total
            ),
            ("web-api-1", "UP", "L7OK", 4)
        );
        assert_eq!(
            (
                b[1].server.as_str(),
                b[1].status.as_str(),
                b[1].check.as_str()
            ),
            ("web-api-2", "DOWN", "L4CON")
        );
        assert!(parse_stats_csv("web", "not a csv").is_empty());
    }

    #[test]
    fn state_records_become_instances() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(
            &path,
            r#"{"name":"sample-app","instances":[
                {"service":"web-api","instance":1,"address":"127.0.0.1:3001","process":{"pid":42,"start_time":7},"health":"healthy","restarts":2,"last_exit":"killed by signal 9"},
                {"service":"web-api","instance":2,"address":"web-api:3002","process":null,"container":"0123456789abcdef","health":"starting","restarts":0,"last_exit":null}]}"#,
        )
        .unwrap();
        let (lab, i) = from_state(&path);
        assert_eq!(lab.as_deref(), Some("sample-app"));
        assert_eq!((i[0].pid, i[0].restarts), (Some(42), 2));
        assert_eq!(i[0].last_exit.as_deref(), Some("killed by signal 9"));
        assert_eq!(i[1].container.as_deref(), Some("0123456789ab"));
        assert_eq!(i[1].pid, None);
        assert!(from_state(&dir.path().join("missing.json")).1.is_empty());
        assert!(
            faults_of(&path).is_empty(),
            "no faults file: none in effect"
        );
        std::fs::write(
            dir.path().join("faults.json"),
            r#"{"next":2,"active":[{"id":"f1","kind":"latency","instance":"recipe-api","since_ms":5,"until_ms":9,"name":"slow","edge":{"kind":"latency","ms":200}},{"id":"f2","kind":"pause","instance":"web-api#1","since_ms":6,"process":{"pid":1,"start_time":2}}]}"#,
        )
        .unwrap();
        let f = faults_of(&path);
        assert_eq!(f.len(), 2);
        assert_eq!(
            (f[0].what.as_str(), f[0].name.as_deref(), f[0].until_ms),
            ("latency:200ms downstream", Some("slow"), Some(9))
        );
        assert_eq!(
            (f[1].kind.as_str(), f[1].target.as_str(), f[1].what.as_str()),
            ("pause", "web-api#1", "SIGSTOP")
        );
    }
}
