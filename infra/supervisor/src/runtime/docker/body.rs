//! The engine's create request for one instance, built from the plan alone.

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::{
    ContainerCreateBody, EndpointSettings, HealthConfig, HostConfig, Mount, MountType,
    NetworkingConfig, PortBinding, RestartPolicy, RestartPolicyNameEnum,
};

use crate::plan::{ContainerSpec, DockerSpec, HealthSpec, InstanceSpec, MountSpec, labels};

fn nanos(d: Duration) -> i64 {
    d.as_nanos().min(i64::MAX as u128) as i64
}

/// The engine's create request for one instance: a pure function of the plan, so what lab asks
/// of the engine can be read (and tested) without one.
pub fn create_body(
    lab: &DockerSpec,
    spec: &InstanceSpec,
    c: &ContainerSpec,
    health: &HealthSpec,
    grace: Duration,
) -> ContainerCreateBody {
    let mut label_map: HashMap<String, String> = lab.labels().into_iter().collect();
    label_map.insert(labels::SERVICE.into(), spec.service.clone());
    label_map.insert(labels::INSTANCE.into(), spec.index.to_string());
    let port_key = |p: &crate::plan::PublishedPort| {
        format!("{}/{}", p.container, if p.udp { "udp" } else { "tcp" })
    };
    let port_bindings: HashMap<String, Option<Vec<PortBinding>>> = c
        .ports
        .iter()
        .map(|p| {
            (
                port_key(p),
                Some(vec![PortBinding {
                    host_ip: Some("127.0.0.1".into()),
                    // An empty host port: the engine picks a free one.
                    host_port: Some(if p.host == 0 {
                        String::new()
                    } else {
                        p.host.to_string()
                    }),
                }]),
            )
        })
        .collect();
    let mounts = c
        .mounts
        .iter()
        .map(|m| match m {
            MountSpec::Bind { source, target } => Mount {
                typ: Some(MountType::BIND),
                source: Some(source.display().to_string()),
                target: Some(target.clone()),
                read_only: Some(true),
                ..Default::default()
            },
            MountSpec::Volume { name, target } => Mount {
                typ: Some(MountType::VOLUME),
                source: Some(name.clone()),
                target: Some(target.clone()),
                ..Default::default()
            },
        })
        .collect();
    ContainerCreateBody {
        image: Some(c.image.clone()),
        cmd: c.cmd.clone(),
        env: Some(c.env.iter().map(|(k, v)| format!("{k}={v}")).collect()),
        labels: Some(label_map),
        exposed_ports: Some(c.ports.iter().map(port_key).collect()),
        stop_timeout: Some(grace.as_secs_f64().ceil() as i64),
        healthcheck: c.healthcheck.as_ref().map(|test| HealthConfig {
            test: Some(test.clone()),
            interval: Some(nanos(health.interval)),
            timeout: Some(nanos(health.timeout)),
            retries: Some(3),
            start_period: Some(nanos(health.deadline)),
            // `start_interval` needs API 1.44; older engines refuse it.
            start_interval: None,
        }),
        host_config: Some(HostConfig {
            port_bindings: Some(port_bindings),
            mounts: Some(mounts),
            network_mode: Some(lab.network.clone()),
            // Restarts are the supervisor's, with the same policy and backoff as processes.
            restart_policy: Some(RestartPolicy {
                name: Some(RestartPolicyNameEnum::NO),
                maximum_retry_count: None,
            }),
            init: Some(false),
            auto_remove: Some(c.auto_remove),
            ..Default::default()
        }),
        networking_config: Some(NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                lab.network.clone(),
                EndpointSettings {
                    aliases: Some(c.aliases.clone()),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{HealthCheck, PublishedPort};

    #[test]
    fn the_create_request_publishes_on_loopback_labels_and_leaves_restarts_to_lab() {
        let lab = DockerSpec {
            project: "demo".into(),
            dir: "/work/demo/.lab".into(),
            prefix: "demo".into(),
            network: "demo_default".into(),
            volumes: vec!["demo_hub-data".into()],
        };
        let c = ContainerSpec {
            name: "demo-recipe-api-2".into(),
            image: "lab/lab:0.1.0".into(),
            cmd: Some(vec!["serve".into(), "recipe-api".into()]),
            env: vec![("PORT".into(), "4001".into())],
            aliases: vec!["recipe-api-2".into(), "recipe-api".into()],
            ports: vec![
                PublishedPort {
                    host: 4001,
                    container: 4001,
                    udp: false,
                },
                PublishedPort {
                    host: 0,
                    container: 7777,
                    udp: true,
                },
            ],
            mounts: vec![
                MountSpec::Bind {
                    source: "/work/demo/.lab/tls".into(),
                    target: "/work/demo/.lab/tls".into(),
                },
                MountSpec::Volume {
                    name: "demo_hub-data".into(),
                    target: "/data".into(),
                },
            ],
            healthcheck: Some(vec!["CMD".into(), "/lab".into(), "probe".into()]),
            auto_remove: false,
        };
        let spec = InstanceSpec {
            service: "recipe-api".into(),
            index: 2,
            program: "/lab".into(),
            args: vec![],
            cwd: "/".into(),
            env: vec![],
            host: "127.0.0.1".into(),
            port: 4001,
            container: Some(c.clone()),
        };
        let health = HealthSpec {
            check: HealthCheck::Http {
                path: "/health".into(),
            },
            ..Default::default()
        };
        let body = create_body(&lab, &spec, &c, &health, Duration::from_millis(1500));
        let v = serde_json::to_value(&body).unwrap();
        assert_eq!(v["Image"], "lab/lab:0.1.0");
        assert_eq!(v["Cmd"], serde_json::json!(["serve", "recipe-api"]));
        assert_eq!(v["Env"], serde_json::json!(["PORT=4001"]));
        assert_eq!(v["Labels"]["lab.project"], "demo");
        assert_eq!(v["Labels"]["lab.dir"], "/work/demo/.lab");
        assert_eq!(v["Labels"]["lab.service"], "recipe-api");
        assert_eq!(v["Labels"]["lab.instance"], "2");
        assert_eq!(v["StopTimeout"], 2, "the grace, rounded up to seconds");
        let hc = &v["HostConfig"];
        assert_eq!(
            hc["PortBindings"]["4001/tcp"],
            serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": "4001"}])
        );
        assert_eq!(
            hc["PortBindings"]["7777/udp"],
            serde_json::json!([{"HostIp": "127.0.0.1", "HostPort": ""}]),
            "0 asks the engine for a free port"
        );
        assert_eq!(hc["RestartPolicy"]["Name"], "no");
        assert_eq!(hc["NetworkMode"], "demo_default");
        assert_eq!(hc["Mounts"][0]["Type"], "bind");
        assert_eq!(hc["Mounts"][0]["ReadOnly"], true);
        assert_eq!(hc["Mounts"][1]["Type"], "volume");
        assert_eq!(
            v["NetworkingConfig"]["EndpointsConfig"]["demo_default"]["Aliases"],
            serde_json::json!(["recipe-api-2", "recipe-api"])
        );
        assert_eq!(v["Healthcheck"]["Interval"], 2_000_000_000i64);
        assert!(v["Healthcheck"].get("StartInterval").is_none());
    }
}
