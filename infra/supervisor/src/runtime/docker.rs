//! Containers through the Docker Engine API (bollard 0.21): the lab's network and volumes, one
//! container per instance, its output streamed into the instance's log file, and removal by
//! label (`lab.project` + `lab.dir`), which needs no live process and so also cleans up after
//! a `lab up` killed with SIGKILL.
//!
//! Every engine call lab makes goes through [`Engine`]; the container start and stop calls,
//! whose results change in bollard 0.22, are each made in exactly one place
//! (`Engine::start`, [`Engine::stop`]).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::Duration;

use bollard::Docker;
use bollard::models::{
    EndpointSettings, NetworkConnectRequest, NetworkCreateRequest, NetworkDisconnectRequest,
    VolumeCreateRequest,
};
use bollard::query_parameters as q;
use futures_util::StreamExt;
use tokio::task::JoinHandle;

use crate::plan::{ContainerSpec, DockerSpec, HealthSpec, InstanceSpec, labels};

mod body;
pub use body::create_body;

/// A connected engine (API version negotiated, so an older engine works too).
#[derive(Clone)]
pub struct Engine {
    docker: Docker,
}

/// What [`Engine::sweep`] removed.
#[derive(Debug, Default, Clone)]
pub struct Swept {
    pub containers: Vec<String>,
    pub networks: Vec<String>,
    pub volumes: Vec<String>,
}

impl Swept {
    pub fn is_empty(&self) -> bool {
        self.containers.is_empty() && self.networks.is_empty() && self.volumes.is_empty()
    }
}

/// A started container and the task copying its output to the log file.
pub struct Container {
    pub id: String,
    /// The container's main process as the host sees it.
    pub pid: u32,
    /// Its address on the lab's network (reachable from the host on Linux).
    pub ip: Option<String>,
    logs: Option<JoinHandle<()>>,
}

fn err(what: &str, e: impl std::fmt::Display) -> String {
    format!("{what}: {e}")
}

/// `label=K=V` filters selecting one lab's objects.
fn lab_filter(project: &str, dir: &str) -> HashMap<String, Vec<String>> {
    HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{}={project}", labels::PROJECT),
            format!("{}={dir}", labels::DIR),
        ],
    )])
}

impl Engine {
    /// Connect to the local engine (`DOCKER_HOST`, else `/var/run/docker.sock`).
    pub async fn connect() -> Result<Engine, String> {
        const HINT: &str = "is dockerd running? DOCKER_HOST, else /var/run/docker.sock, must reach it; the process runtime needs none";
        let docker = Docker::connect_with_local_defaults()
            .map_err(|e| format!("cannot reach the Docker engine: {e}\n  = hint: {HINT}"))?
            .negotiate_version()
            .await
            .map_err(|e| format!("the Docker engine does not answer: {e}\n  = hint: {HINT}"))?;
        Ok(Engine { docker })
    }

    pub fn docker(&self) -> &Docker {
        &self.docker
    }

    /// The images among `images` the engine does not have.
    pub async fn missing_images(&self, images: &[String]) -> Vec<String> {
        let mut missing = Vec::new();
        for i in images {
            if self.docker.inspect_image(i).await.is_err() && !missing.contains(i) {
                missing.push(i.clone());
            }
        }
        missing
    }

    /// Containers of this lab (running or not): (id, name, running).
    pub async fn containers(
        &self,
        spec: &DockerSpec,
    ) -> Result<Vec<(String, String, bool)>, String> {
        let opts = q::ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&lab_filter(&spec.project, &spec.dir))
            .build();
        let list = self
            .docker
            .list_containers(Some(opts))
            .await
            .map_err(|e| err("cannot list containers", e))?;
        Ok(list
            .into_iter()
            .map(|c| {
                let name = c
                    .names
                    .and_then(|n| n.first().cloned())
                    .unwrap_or_default()
                    .trim_start_matches('/')
                    .to_owned();
                let running = c.state.is_some_and(|s| s.to_string() == "running");
                (c.id.unwrap_or_default(), name, running)
            })
            .collect())
    }

    /// The lab's network and volumes (idempotent: existing ones are kept).
    pub async fn prepare(&self, spec: &DockerSpec) -> Result<(), String> {
        let labels: HashMap<String, String> = spec.labels().into_iter().collect();
        let nets = self
            .docker
            .list_networks(Some(
                q::ListNetworksOptionsBuilder::default()
                    .filters(&HashMap::from([("name", vec![spec.network.clone()])]))
                    .build(),
            ))
            .await
            .map_err(|e| err("cannot list networks", e))?;
        if !nets
            .iter()
            .any(|n| n.name.as_deref() == Some(&spec.network))
        {
            self.docker
                .create_network(NetworkCreateRequest {
                    name: spec.network.clone(),
                    driver: Some("bridge".into()),
                    labels: Some(labels.clone()),
                    ..Default::default()
                })
                .await
                .map_err(|e| err(&format!("cannot create network {}", spec.network), e))?;
        }
        for v in &spec.volumes {
            if self.docker.inspect_volume(v).await.is_err() {
                self.docker
                    .create_volume(VolumeCreateRequest {
                        name: Some(v.clone()),
                        labels: Some(labels.clone()),
                        ..Default::default()
                    })
                    .await
                    .map_err(|e| err(&format!("cannot create volume {v}"), e))?;
            }
        }
        Ok(())
    }

    /// Create and start `spec`'s container, its output appended to `log`. A container that
    /// was created but could not start (a port the engine cannot publish) is removed again.
    pub async fn run(
        &self,
        lab: &DockerSpec,
        spec: &InstanceSpec,
        c: &ContainerSpec,
        health: &HealthSpec,
        grace: Duration,
        log: &Path,
    ) -> Result<Container, String> {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| err(&format!("cannot open {}", log.display()), e))?;
        let _ = writeln!(
            file,
            "--- lab: starting {} on {} as container {} ({})",
            spec.id(),
            spec.address(),
            c.name,
            c.image
        );
        let body = create_body(lab, spec, c, health, grace);
        // A container of this name left behind (a crash between create and record) goes first.
        let _ = self.remove(&c.name).await;
        let created = self
            .docker
            .create_container(
                Some(
                    q::CreateContainerOptionsBuilder::default()
                        .name(&c.name)
                        .build(),
                ),
                body,
            )
            .await
            .map_err(|e| err(&format!("the engine refused to create {}", c.name), e))?;
        if let Err(e) = self.start(&created.id).await {
            let _ = self.remove(&created.id).await;
            let text = e.to_string();
            if text.contains("address already in use") || text.contains("already allocated") {
                let ports: Vec<String> = c.ports.iter().map(|p| p.host.to_string()).collect();
                return Err(format!(
                    "the engine cannot publish {} on 127.0.0.1 (port {} taken by another program): {text}",
                    c.name,
                    ports.join(", ")
                ));
            }
            return Err(err(&format!("the engine could not start {}", c.name), e));
        }
        let inspected = self.docker.inspect_container(&created.id, None).await.ok();
        let pid = inspected
            .as_ref()
            .and_then(|i| i.state.as_ref().and_then(|s| s.pid))
            .unwrap_or(0) as u32;
        let ip = inspected
            .and_then(|i| i.network_settings)
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(&lab.network))
            .and_then(|e| e.ip_address)
            .filter(|ip| !ip.is_empty());
        let logs = tokio::spawn(copy_logs(self.docker.clone(), created.id.clone(), file));
        Ok(Container {
            id: created.id,
            pid,
            ip,
            logs: Some(logs),
        })
    }

    /// The one place a container is started.
    async fn start(&self, id: &str) -> Result<(), bollard::errors::Error> {
        self.docker.start_container(id, None).await
    }

    /// Wait for the container to stop: (success, `exit N`).
    pub async fn wait(&self, id: &str) -> (bool, String) {
        let mut s = self
            .docker
            .wait_container(id, None::<q::WaitContainerOptions>);
        match s.next().await {
            Some(Ok(r)) => (r.status_code == 0, format!("exit {}", r.status_code)),
            Some(Err(bollard::errors::Error::DockerContainerWaitError { code, .. })) => {
                (false, describe_code(code))
            }
            Some(Err(e)) => (false, format!("wait failed: {e}")),
            None => (false, "gone".into()),
        }
    }

    /// The one place a container is stopped: SIGTERM, `grace`, SIGKILL (the engine's
    /// `stop`). Returns whether the engine had to kill it, `None` if there was no such
    /// container (already removed).
    pub async fn stop(&self, id: &str, grace: Duration) -> Option<bool> {
        let t0 = std::time::Instant::now();
        let secs = grace.as_secs_f64().ceil() as i32;
        let opts = q::StopContainerOptionsBuilder::default().t(secs).build();
        // A paused container (`lab fault pause`) cannot take SIGTERM until thawed.
        let _ = self.unpause(id).await;
        match self.docker.stop_container(id, Some(opts)).await {
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => None,
            Err(e) => {
                tracing::debug!(error = %e, id, "stop");
                Some(false)
            }
            Ok(()) => Some(t0.elapsed() >= grace),
        }
    }

    /// Freeze every process of a container (`docker pause`: the cgroup freezer).
    pub async fn pause(&self, id: &str) -> Result<(), String> {
        self.docker
            .pause_container(id)
            .await
            .map_err(|e| err(&format!("cannot pause container {id}"), e))
    }

    /// Thaw a paused container; one that is not paused (or gone) is no error.
    pub async fn unpause(&self, id: &str) -> Result<(), String> {
        match self.docker.unpause_container(id).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            }) => Ok(()),
            // Engine 20.10 answers 500 for a container that runs unpaused.
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("is not paused") =>
            {
                Ok(())
            }
            Err(e) => Err(err(&format!("cannot unpause container {id}"), e)),
        }
    }

    /// Cut a container off the lab's `network` (`docker network disconnect`): its names stop
    /// resolving, its address stops answering, its published ports too. Returns the aliases it
    /// had there, for [`Engine::reconnect`].
    pub async fn disconnect(&self, network: &str, id: &str) -> Result<Vec<String>, String> {
        let aliases = self
            .docker
            .inspect_container(id, None)
            .await
            .ok()
            .and_then(|i| i.network_settings)
            .and_then(|n| n.networks)
            .and_then(|mut n| n.remove(network))
            .and_then(|e| e.aliases)
            .unwrap_or_default();
        self.docker
            .disconnect_network(
                network,
                NetworkDisconnectRequest {
                    container: id.to_owned(),
                    force: Some(true),
                },
            )
            .await
            .map_err(|e| {
                err(
                    &format!("cannot disconnect container {id} from {network}"),
                    e,
                )
            })?;
        Ok(aliases)
    }

    /// Attach a container to `network` again under its `aliases`; one already attached (or
    /// gone) is no error.
    pub async fn reconnect(
        &self,
        network: &str,
        id: &str,
        aliases: &[String],
    ) -> Result<(), String> {
        let req = NetworkConnectRequest {
            container: id.to_owned(),
            endpoint_config: Some(EndpointSettings {
                aliases: Some(aliases.to_vec()),
                ..Default::default()
            }),
        };
        match self.docker.connect_network(network, req).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError { message, .. })
                if message.contains("already exists") =>
            {
                Ok(())
            }
            Err(e) => Err(err(
                &format!("cannot reconnect container {id} to {network}"),
                e,
            )),
        }
    }

    /// SIGKILL a container's main process (`docker kill`).
    pub async fn kill(&self, id: &str) -> Result<(), String> {
        let opts = q::KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        self.docker
            .kill_container(id, Some(opts))
            .await
            .map_err(|e| err(&format!("cannot kill container {id}"), e))
    }

    /// Remove a container (and its anonymous volumes), running or not.
    pub async fn remove(&self, id: &str) -> Result<(), String> {
        let opts = q::RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(id, Some(opts)).await {
            Ok(()) => Ok(()),
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(()),
            Err(e) => Err(err(&format!("cannot remove container {id}"), e)),
        }
    }

    /// Remove everything labelled as this lab's: containers, then networks, then (with
    /// `volumes`) named volumes. Works from labels alone.
    pub async fn sweep(&self, spec: &DockerSpec, volumes: bool) -> Result<Swept, String> {
        let mut swept = Swept::default();
        for (id, name, _) in self.containers(spec).await? {
            self.remove(&id).await?;
            swept.containers.push(name);
        }
        let filter = lab_filter(&spec.project, &spec.dir);
        let nets = self
            .docker
            .list_networks(Some(
                q::ListNetworksOptionsBuilder::default()
                    .filters(&filter)
                    .build(),
            ))
            .await
            .map_err(|e| err("cannot list networks", e))?;
        for n in nets {
            let name = n.name.unwrap_or_default();
            self.docker
                .remove_network(n.id.as_deref().unwrap_or(&name))
                .await
                .map_err(|e| err(&format!("cannot remove network {name}"), e))?;
            swept.networks.push(name);
        }
        if volumes {
            let vols = self
                .docker
                .list_volumes(Some(
                    q::ListVolumesOptionsBuilder::default()
                        .filters(&filter)
                        .build(),
                ))
                .await
                .map_err(|e| err("cannot list volumes", e))?;
            for v in vols.volumes.unwrap_or_default() {
                self.docker
                    .remove_volume(&v.name, None::<q::RemoveVolumeOptions>)
                    .await
                    .map_err(|e| err(&format!("cannot remove volume {}", v.name), e))?;
                swept.volumes.push(v.name);
            }
        }
        Ok(swept)
    }

    /// The host address the engine published `container_port` of container `id` on.
    pub async fn host_port(
        &self,
        id: &str,
        container_port: u16,
        udp: bool,
    ) -> Option<(String, u16)> {
        let key = format!("{container_port}/{}", if udp { "udp" } else { "tcp" });
        let inspected = self.docker.inspect_container(id, None).await.ok()?;
        let binding = inspected
            .network_settings?
            .ports?
            .remove(&key)??
            .into_iter()
            .next()?;
        Some((binding.host_ip?, binding.host_port?.parse().ok()?))
    }

    /// Whether a container of that id or name exists (running or not).
    pub async fn exists(&self, id: &str) -> bool {
        self.docker.inspect_container(id, None).await.is_ok()
    }

    /// Remove an image (and untag it); a missing one is not an error.
    pub async fn remove_image(&self, image: &str) {
        let opts = q::RemoveImageOptionsBuilder::default().force(true).build();
        if let Err(e) = self.docker.remove_image(image, Some(opts), None).await {
            tracing::debug!(error = %e, image, "remove image");
        }
    }

    /// An image's layer digests (bottom first) and size in bytes.
    pub async fn image_layers(&self, image: &str) -> Option<(Vec<String>, u64)> {
        let i = self.docker.inspect_image(image).await.ok()?;
        Some((
            i.root_fs.and_then(|r| r.layers).unwrap_or_default(),
            i.size.unwrap_or(0) as u64,
        ))
    }

    /// Remove the lab's network (after its containers are gone).
    pub async fn remove_network(&self, spec: &DockerSpec) {
        if let Err(e) = self.docker.remove_network(&spec.network).await {
            tracing::debug!(error = %e, network = spec.network, "remove network");
        }
    }
}

impl Container {
    /// Wait (briefly) for the last of the container's output to reach the log file.
    pub async fn flush_logs(&mut self) {
        if let Some(h) = self.logs.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), h).await;
        }
    }
}

/// `exit 137 (killed)`: what an exit code from a container usually means.
fn describe_code(code: i64) -> String {
    match code {
        137 => "exit 137 (SIGKILL)".into(),
        143 => "exit 143 (SIGTERM)".into(),
        c => format!("exit {c}"),
    }
}

/// Copy the container's stdout and stderr into its log file until it stops.
async fn copy_logs(docker: Docker, id: String, mut file: std::fs::File) {
    let opts = q::LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .build();
    let mut stream = docker.logs(&id, Some(opts));
    while let Some(item) = stream.next().await {
        match item {
            Ok(out) => {
                if file.write_all(&out.into_bytes()).is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, id, "log stream ended");
                return;
            }
        }
    }
}
