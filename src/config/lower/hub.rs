//! The hub as one more service of the plan: its config for a shape (listeners from the one
//! port resolver, every instance to poll, the files to tail, the proxy's stats pages), written
//! to `.lab/hub/hub.json`, run as `lab serve hub`, ready when its HTTP API answers `/health`.

use std::path::{Path, PathBuf};

use lab_hub::HubConfig;
use lab_supervisor::{HealthCheck, ServiceSpec};

use super::net::{Net, connect_host};
use super::shape::{FileToWrite, LowerOptions, Shape, builtin_service};
use crate::config::model::{HUB_SERVICE, Hub, HubListener, LabConfig};

/// Where the hub's data lives inside its container (a named volume of the lab).
pub const DATA_IN_CONTAINER: &str = "/data";
/// Where the hub reads the instances' log files inside its container (bind-mounted `.lab/logs`).
pub const LOGS_IN_CONTAINER: &str = "/lab-logs";
/// Where the hub container sees the lab's state directory.
pub const STATE_IN_CONTAINER: &str = "/lab-state";

/// The hub's config as `net` addresses the lab. `plan` holds the lab's services as lowered
/// (their health checks, https ones included).
pub fn config(
    cfg: &LabConfig,
    hub: &Hub,
    net: &Net,
    plan: &[ServiceSpec],
    state_dir: &Path,
    ca: Option<&Path>,
) -> HubConfig {
    let mut c = hub.config.clone();
    let local = net.shape == Shape::Processes;
    c.data_dir = if local {
        state_dir.join("hub")
    } else {
        PathBuf::from(DATA_IN_CONTAINER)
    };
    if !local {
        c.host = std::net::Ipv4Addr::UNSPECIFIED.into();
    }
    let port = |what| net.layout.hub_port(what);
    c.logs_port = port(HubListener::Logs);
    c.statsd_port = port(HubListener::Statsd);
    c.zipkin_port = port(HubListener::Zipkin);
    c.http_port = port(HubListener::Http);
    c.carbon_port = Some(port(HubListener::Carbon));
    c.otlp_http_port = port(HubListener::OtlpHttp);
    c.otlp_grpc_port = port(HubListener::OtlpGrpc);
    // The hub polls every instance with an HTTP health check (the proxy's are TCP checks).
    c.health_targets = Vec::new();
    for (si, s) in cfg.services.iter().enumerate() {
        let Some(spec) = plan.iter().find(|p| p.name == s.name) else {
            continue;
        };
        let (scheme, path, ca) = match &spec.health.check {
            HealthCheck::Http { path } => ("http", path, None),
            HealthCheck::Https { path, ca } => ("https", path, Some(ca.clone())),
            _ => continue,
        };
        for i in 0..s.replicas {
            let url = format!("{scheme}://{}{path}", net.instance(si, i));
            // Kubernetes: replicas are one Service, polled once.
            if c.health_targets.iter().any(|t| t.url == url) {
                continue;
            }
            c.health_targets.push(lab_hub::HealthTarget {
                service: s.name.clone(),
                instance: i + 1,
                url,
                ca: ca.clone(),
            });
        }
    }
    // Every instance's output (as the supervisor writes it) is tailed into the log store.
    let logs_dir = match net.shape {
        Shape::Processes => Some(state_dir.join("logs")),
        Shape::Docker => Some(PathBuf::from(LOGS_IN_CONTAINER)),
        Shape::Compose | Shape::Kubernetes => None,
    };
    c.tail = logs_dir
        .map(|dir| {
            plan.iter()
                .filter(|s| s.name != HUB_SERVICE)
                .flat_map(|s| s.instances.iter())
                .map(|i| lab_hub::tail::TailFile {
                    environment: cfg.service(&i.service).map(|s| s.environment.clone()),
                    service: i.service.clone(),
                    instance: i.index,
                    path: dir.join(lab_supervisor::logs::log_file_name(&i.service, i.index)),
                })
                .collect()
        })
        .unwrap_or_default();
    // The overview shows each instance's process or container and restarts from the
    // supervisor's state (a directory in a container: the file is renamed over at each write).
    c.state_file = match net.shape {
        Shape::Processes => Some(lab_supervisor::state::state_file(state_dir)),
        Shape::Docker => Some(Path::new(STATE_IN_CONTAINER).join("state.json")),
        Shape::Compose | Shape::Kubernetes => None,
    };
    // The overview shows the proxy's servers from the stats page of each frontend with one.
    c.proxy_stats = net
        .frontends()
        .iter()
        .enumerate()
        .filter_map(|(fi, f)| {
            let uri = f.settings.stats_uri.as_ref()?;
            let scheme = if f.tls { "https" } else { "http" };
            Some(lab_hub::ProxyStatsTarget {
                frontend: f.settings.name.clone(),
                url: format!("{scheme}://{}{uri};csv", net.frontend(fi)),
                ca: ca.filter(|_| f.tls).map(Path::to_path_buf),
            })
        })
        .collect();
    c
}

/// The hub's plan entry (as local processes run it) and its `hub.json`.
pub fn service(config: &HubConfig, opts: &LowerOptions) -> (ServiceSpec, FileToWrite) {
    let dir = opts.state_dir.join("hub");
    let path = dir.join("hub.json");
    let file = FileToWrite {
        path: path.clone(),
        contents: serde_json::to_vec_pretty(config).expect("hub config serialises"),
    };
    let spec = builtin_service(
        HUB_SERVICE,
        opts.exe.clone(),
        vec![
            "serve".into(),
            "hub".into(),
            "--config".into(),
            path.display().to_string(),
        ],
        dir,
        (connect_host(&config.host.to_string()), config.http_port),
        lab_supervisor::RestartPolicy::OnFailure,
        std::time::Duration::from_secs(10),
    );
    (spec, file)
}
