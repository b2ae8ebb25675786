//! Fault edges as one more service of the plan (`[faults] edges = true`, `lab up --faults`):
//! which instances get an edge (every instance of a service some consumer reaches: a `TARGET`,
//! a frontend's servers), the edges' config under `.lab/edges/`, and `lab serve edges`, ready
//! when its control listener answers `/health`. Process runtime only. And the plan's
//! `[faults.NAME]` schedule, each fault as this shape runs it.

use lab_edges::{EdgeFault, EdgeKind, EdgeSpec, EdgesConfig};
use lab_supervisor::ServiceSpec;
use lab_supervisor::faults::Action;
use lab_supervisor::schedule::{Scheduled, What};

use super::net::{Net, join_host_port};
use super::shape::{FileToWrite, LowerOptions, Shape, builtin_service};
use crate::config::model::{EDGES_SERVICE, HubListener, LabConfig, Protocol, ScheduledKind};

/// The `[faults.NAME]` schedule as `shape` runs it: a partition is the edges' on processes and
/// the engine's network disconnect on docker; edge faults need the process runtime. The
/// Compose and Kubernetes shapes run no schedule (`Ok(empty)`).
pub fn schedule(cfg: &LabConfig, shape: Shape) -> Result<Vec<Scheduled>, String> {
    if !matches!(shape, Shape::Processes | Shape::Docker) {
        return Ok(Vec::new());
    }
    let docker = shape == Shape::Docker;
    cfg.faults
        .schedule
        .iter()
        .map(|s| {
            let lasting = s.lasting;
            let what = match (&s.kind, docker) {
                (ScheduledKind::Kill, _) => What::Process(Action::Kill),
                (ScheduledKind::Pause, _) => What::Process(Action::Pause { lasting }),
                (ScheduledKind::Restart, _) => What::Process(Action::Restart),
                (ScheduledKind::Partition(_), true) => What::Process(Action::Partition { lasting }),
                (ScheduledKind::Partition(mode), false) => What::Edge {
                    fault: EdgeFault {
                        kind: EdgeKind::Partition { mode: *mode },
                        direction: Default::default(),
                        probability: 1.0,
                    },
                    lasting,
                },
                (ScheduledKind::Edge(fault), false) => What::Edge {
                    fault: fault.clone(),
                    lasting,
                },
                (ScheduledKind::Edge(_), true) => {
                    return Err(format!(
                        "[faults.{}] is a fault on the edges, which run on the process runtime only; on docker: kill, pause, restart or partition",
                        s.name
                    ));
                }
            };
            Ok(Scheduled {
                name: s.name.clone(),
                target: s.target.clone(),
                after: s.after,
                what,
            })
        })
        .collect()
}

/// Whether `cfg` lowered for `shape` has fault edges.
pub fn on(cfg: &LabConfig, shape: Shape) -> bool {
    cfg.faults.edges && shape == Shape::Processes
}

/// The edges' config (each edge's port as `net` laid it out) and their plan entry.
pub fn service(
    cfg: &LabConfig,
    net: &Net,
    opts: &LowerOptions,
) -> Option<(ServiceSpec, EdgesConfig, FileToWrite)> {
    let control_port = net.layout.edges_control?;
    let mut edges = Vec::new();
    for (si, s) in cfg.services.iter().enumerate() {
        for (i, port) in net.layout.edges[si].iter().enumerate() {
            edges.push(EdgeSpec {
                name: format!("{}#{}", s.name, i + 1),
                service: s.name.clone(),
                listen: join_host_port("127.0.0.1", *port),
                upstream: net.instance(si, i),
                http: s.protocol == Protocol::Http,
            });
        }
    }
    let config = EdgesConfig {
        edges,
        control: join_host_port("127.0.0.1", control_port),
        faults_file: lab_supervisor::faults::faults_file(&opts.state_dir),
        seed: cfg.faults.seed,
        zipkin: cfg.hub.as_ref().map(|h| {
            h.zipkin
                .clone()
                .unwrap_or_else(|| net.hub(HubListener::Zipkin))
        }),
    };
    let path = EdgesConfig::path(&opts.state_dir);
    let dir = path.parent().expect("a file in a folder").to_path_buf();
    let file = FileToWrite {
        path: path.clone(),
        contents: serde_json::to_vec_pretty(&config).expect("edges config serialises"),
    };
    let spec = builtin_service(
        EDGES_SERVICE,
        opts.exe.clone(),
        vec![
            "serve".into(),
            "edges".into(),
            "--config".into(),
            path.display().to_string(),
        ],
        dir,
        ("127.0.0.1", control_port),
        lab_supervisor::RestartPolicy::Always,
        std::time::Duration::from_secs(2),
    );
    Some((spec, config, file))
}
