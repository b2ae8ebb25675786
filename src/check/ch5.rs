//! Chapter 5, containers: experiments against the local Docker engine, each in containers and
//! a network of its own (labelled, and removed by label when it ends, whatever happened), so
//! they run the same whether the lab under test runs as processes or as containers.
//!
//! - `ch5.images`: the lab's images exist (imported from this binary if not), are two layers
//!   (libraries, then the binary) shared by all, hold nothing else, and run; sizes reported.
//! - `ch5.layers`: a Dockerfile that copies what changes least first: after a code-only
//!   change the rebuild reuses every layer but the top one.
//! - `ch5.compose-network`: web-api reaches recipe-api by its service name on a user network.
//! - `ch5.ports-volumes`: a published port answers on 127.0.0.1 only; the hub's data in a
//!   named volume survives its container being removed and recreated.
//! - `ch5.ephemeral`: a `--rm` container leaves nothing once stopped.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use lab_supervisor::plan::{ContainerSpec, DockerSpec, HealthSpec, InstanceSpec, PublishedPort};
use lab_supervisor::runtime::docker::{Container, Engine};

use super::scenario::{BoxFut, Ctx, Record, Scenario};

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ch5.images",
            chapter: 5,
            section: "Containers › Introduction to Docker",
            summary: "the lab's images: libraries then binary, nothing else, layers shared; sizes",
            run: images,
            proxy: false,
        },
        Scenario {
            name: "ch5.layers",
            chapter: 5,
            section: "Containers › Containerizing a Node.js Service › Dependency Stage",
            summary: "a code-only change rebuilds only the top layer (what changes least goes first)",
            run: layers,
            proxy: false,
        },
        Scenario {
            name: "ch5.compose-network",
            chapter: 5,
            section: "Containers › Orchestration with Docker Compose",
            summary: "on a user network web-api reaches recipe-api by its service name",
            run: compose_network,
            proxy: false,
        },
        Scenario {
            name: "ch5.ports-volumes",
            chapter: 5,
            section: "Containers › Introduction to Docker",
            summary: "published ports answer on 127.0.0.1 only; a named volume outlives its container",
            run: ports_volumes,
            proxy: false,
        },
        Scenario {
            name: "ch5.ephemeral",
            chapter: 5,
            section: "Containers › Introduction to Docker",
            summary: "a --rm container is gone once it stops",
            run: ephemeral,
            proxy: false,
        },
    ]
}

const DEADLINE: Duration = Duration::from_secs(20);

/// A scenario's own Docker objects, all labelled with its own project.
struct Trial {
    engine: Engine,
    lab: DockerSpec,
    logs: tempfile::TempDir,
}

impl Trial {
    async fn new(scenario: &str) -> anyhow::Result<Trial> {
        let engine = Engine::connect().await.map_err(|e| {
            anyhow::anyhow!("{e}\n  chapter 5 needs the Docker engine (`docker version` shows it)")
        })?;
        let name = format!("lab-{}-{}", scenario.replace('.', "-"), std::process::id());
        let lab = DockerSpec {
            project: name.clone(),
            dir: format!("check:{name}"),
            prefix: name.clone(),
            network: format!("{name}_default"),
            volumes: vec![format!("{name}_data")],
        };
        // Anything left by an earlier run killed midway goes first.
        engine.sweep(&lab, true).await.map_err(anyhow::Error::msg)?;
        engine.prepare(&lab).await.map_err(anyhow::Error::msg)?;
        Ok(Trial {
            engine,
            lab,
            logs: tempfile::tempdir()?,
        })
    }

    /// Start a container of `image` as `service`.
    async fn run(&self, service: &str, image: &str, o: Opts<'_>) -> anyhow::Result<Container> {
        let Opts {
            cmd,
            env,
            aliases,
            ports,
            mounts,
            auto_remove,
        } = o;
        let spec = InstanceSpec {
            service: service.to_owned(),
            index: 1,
            program: PathBuf::new(),
            args: Vec::new(),
            cwd: PathBuf::new(),
            env: Vec::new(),
            host: "127.0.0.1".into(),
            port: ports.first().map_or(0, |p| p.host),
            container: None,
        };
        let c = ContainerSpec {
            name: format!("{}-{service}", self.lab.prefix),
            image: image.to_owned(),
            cmd: (!cmd.is_empty()).then(|| cmd.iter().map(|s| (*s).to_owned()).collect()),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            aliases: aliases.iter().map(|s| (*s).to_owned()).collect(),
            ports,
            mounts,
            healthcheck: None,
            auto_remove,
        };
        let log = self.logs.path().join(format!("{service}.log"));
        self.engine
            .run(
                &self.lab,
                &spec,
                &c,
                &HealthSpec::default(),
                Duration::from_secs(2),
                &log,
            )
            .await
            .map_err(anyhow::Error::msg)
    }

    /// `host:port` the engine published `port` of `c` on (checked to be 127.0.0.1).
    async fn published(&self, c: &Container, port: u16, udp: bool) -> anyhow::Result<String> {
        let (ip, p) = self
            .engine
            .host_port(&c.id, port, udp)
            .await
            .ok_or_else(|| anyhow::anyhow!("port {port} of {} is not published", c.id))?;
        Ok(format!("{ip}:{p}"))
    }

    /// Remove everything this trial made (containers, network, volumes).
    async fn end(self) {
        if let Err(e) = self.engine.sweep(&self.lab, true).await {
            tracing::warn!(error = %e, "cannot remove a chapter 5 experiment's objects");
        }
    }
}

/// How [`Trial::run`] starts a container.
#[derive(Default)]
struct Opts<'x> {
    /// After the image's entry point (empty: its own `CMD`).
    cmd: &'x [&'x str],
    env: &'x [(&'x str, &'x str)],
    aliases: &'x [&'x str],
    ports: Vec<PublishedPort>,
    mounts: Vec<lab_supervisor::plan::MountSpec>,
    auto_remove: bool,
}

fn tcp(container: u16) -> PublishedPort {
    PublishedPort {
        host: 0,
        container,
        udp: false,
    }
}
/// GET `http://addr{path}` until it answers 200 or the deadline passes.
async fn get_until_ok(ctx: &Ctx, addr: &str, path: &str) -> anyhow::Result<serde_json::Value> {
    let t0 = Instant::now();
    loop {
        match ctx.get(addr, path).await {
            Ok((r, _)) if r.status == 200 => return Ok(r.json()?),
            Ok(_) | Err(_) if t0.elapsed() < DEADLINE => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Ok((r, _)) => anyhow::bail!("GET {addr}{path}: status {}", r.status),
            Err(e) => return Err(e),
        }
    }
}

/// End a trial (its objects removed) and hand back what the scenario found.
async fn trial_end(trial: Trial, result: anyhow::Result<()>) -> anyhow::Result<()> {
    trial.end().await;
    result
}

/// The lab's images, imported from this binary if the engine lacks them.
async fn ensure_images(engine: &Engine) -> anyhow::Result<bool> {
    let refs: Vec<String> = crate::images::images().into_iter().map(|i| i.0).collect();
    if engine.missing_images(&refs).await.is_empty() {
        return Ok(false);
    }
    crate::images::build(&std::env::current_exe()?).await?;
    Ok(true)
}

fn now_iso() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

fn images<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let engine = Engine::connect().await.map_err(anyhow::Error::msg)?;
        if ensure_images(&engine).await? {
            rec.check(
                "the images were missing and were imported from this binary",
                true,
                std::env::current_exe()?.display().to_string(),
            );
        }
        let mut all_layers = Vec::new();
        for (r, _, _) in crate::images::images() {
            let Some((layers, bytes)) = engine.image_layers(&r).await else {
                rec.check(format!("{r} exists"), false, "not in the engine");
                continue;
            };
            rec.check(
                format!("{r} is two layers: the libraries, then the binary"),
                layers.len() == 2,
                format!("{} layer(s)", layers.len()),
            );
            rec.figure(format!("{r} size"), bytes as f64 / 1e6, "MB");
            all_layers.push(layers);
        }
        rec.check(
            "every lab image shares the same layers (stored once)",
            all_layers.windows(2).all(|w| w[0] == w[1]),
            format!("{} images", all_layers.len()),
        );
        let trial = Trial::new("ch5.images").await?;
        let result = images_inside(&trial, ctx, rec).await;
        trial_end(trial, result).await
    })
}

/// What is inside: recipe-api from its image runs, and the container's filesystem holds only
/// the binary and its libraries.
async fn images_inside(t: &Trial, ctx: &Ctx, rec: &mut Record) -> anyhow::Result<()> {
    let recipe = format!("lab/recipe-api:{}", env!("CARGO_PKG_VERSION"));
    let c = t
        .run(
            "recipe-api",
            &recipe,
            Opts {
                ports: vec![tcp(4000)],
                ..Default::default()
            },
        )
        .await?;
    let addr = t.published(&c, 4000, false).await?;
    let v = get_until_ok(ctx, &addr, "/recipes/42").await?;
    rec.check(
        "recipe-api runs from its image as the container's first process",
        v["recipe"]["id"] == 42 && v["producer_pid"] == 1,
        v.to_string(),
    );
    let tar: Vec<u8> = t
        .engine
        .docker()
        .export_container(&c.id)
        .map_ok(|b| b.to_vec())
        .try_concat()
        .await?;
    let mut files = Vec::new();
    for entry in tar::Archive::new(&tar[..]).entries()? {
        let entry = entry?;
        if entry.header().entry_type().is_file() {
            files.push(format!("/{}", entry.path()?.display()));
        }
    }
    // The engine adds /.dockerenv, /dev/console and the /etc files it bind-mounts into
    // every container.
    let ours: Vec<&String> = files
        .iter()
        .filter(|f| {
            !matches!(
                f.as_str(),
                "/.dockerenv"
                    | "/dev/console"
                    | "/etc/hosts"
                    | "/etc/hostname"
                    | "/etc/resolv.conf"
            )
        })
        .collect();
    let only_binary_and_libs = ours
        .iter()
        .all(|f| f.as_str() == "/lab" || f.contains(".so"));
    rec.check(
        "the image holds only /lab and the shared libraries it loads",
        only_binary_and_libs && ours.iter().any(|f| f.as_str() == "/lab"),
        super::scenario::list(&ours),
    );
    rec.figure("files in the image", ours.len() as f64, "count");
    Ok(())
}

fn layers<'a>(_ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let engine = Engine::connect().await.map_err(anyhow::Error::msg)?;
        ensure_images(&engine).await?;
        let base = crate::images::lab_image();
        let dir = tempfile::tempdir()?;
        // The book's order: dependencies (change rarely) before the code (changes often).
        std::fs::write(
            dir.path().join("Dockerfile"),
            format!(
                "FROM {base}\nLABEL lab.check=ch5.layers\nCOPY deps.txt /app/deps.txt\nCOPY code.txt /app/code.txt\n"
            ),
        )?;
        std::fs::write(
            dir.path().join("deps.txt"),
            "dependencies, as package.json pins them\n",
        )?;
        std::fs::write(dir.path().join("code.txt"), "version 1 of the code\n")?;
        let tag = format!("lab-ch5-layers:{}", std::process::id());
        let result = rebuild_after_code_change(&engine, dir.path(), &tag, rec).await;
        engine.remove_image(&tag).await;
        result
    })
}

async fn rebuild_after_code_change(
    engine: &Engine,
    dir: &std::path::Path,
    tag: &str,
    rec: &mut Record,
) -> anyhow::Result<()> {
    crate::images::build_dockerfile(engine.docker(), dir, tag, &|_| {}).await?;
    let (first, _) = engine
        .image_layers(tag)
        .await
        .ok_or_else(|| anyhow::anyhow!("{tag} was not built"))?;
    std::fs::write(dir.join("code.txt"), "version 2 of the code\n")?;
    let lines = std::sync::Mutex::new(Vec::new());
    let t0 = Instant::now();
    crate::images::build_dockerfile(engine.docker(), dir, tag, &|l| {
        lines.lock().expect("lock").push(l)
    })
    .await?;
    rec.figure(
        "rebuild after a code change",
        t0.elapsed().as_secs_f64() * 1e3,
        "ms",
    );
    let (second, _) = engine
        .image_layers(tag)
        .await
        .ok_or_else(|| anyhow::anyhow!("{tag} was not rebuilt"))?;
    let n = first.len();
    rec.check(
        "both builds have the same number of layers",
        n == second.len() && n >= 3,
        format!("{n} then {}", second.len()),
    );
    let shared = first
        .iter()
        .zip(&second)
        .take_while(|(a, b)| a == b)
        .count();
    rec.check(
        "every layer but the top one is reused",
        n > 0 && shared == n - 1,
        format!("{shared} of {n} layers shared"),
    );
    let cached = lines
        .lock()
        .expect("lock")
        .iter()
        .filter(|l| l.contains("Using cache"))
        .count();
    rec.check(
        "the builder used its cache for the dependency step",
        cached >= 1,
        format!("{cached} step(s) from cache"),
    );
    rec.figure("layers", n as f64, "count");
    Ok(())
}

fn compose_network<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let trial = Trial::new("ch5.compose-network").await?;
        let result = by_service_name(&trial, ctx, rec).await;
        trial_end(trial, result).await
    })
}

/// The book's docker-compose.yml: recipe-api unpublished, web-api published and calling
/// `recipe-api:4000`.
async fn by_service_name(t: &Trial, ctx: &Ctx, rec: &mut Record) -> anyhow::Result<()> {
    ensure_images(&t.engine).await?;
    let v = env!("CARGO_PKG_VERSION");
    let recipe = t
        .run(
            "recipe-api",
            &format!("lab/recipe-api:{v}"),
            Opts {
                aliases: &["recipe-api"],
                ..Default::default()
            },
        )
        .await?;
    let web = t
        .run(
            "web-api",
            &format!("lab/web-api:{v}"),
            Opts {
                env: &[("TARGET", "recipe-api:4000")],
                aliases: &["web-api"],
                ports: vec![tcp(3000)],
                ..Default::default()
            },
        )
        .await?;
    let addr = t.published(&web, 3000, false).await?;
    let body = get_until_ok(ctx, &addr, "/").await?;
    rec.check(
        "web-api answers with recipe 42 fetched from recipe-api:4000",
        body["producer_data"]["recipe"]["id"] == 42,
        body.to_string(),
    );
    rec.check(
        "recipe-api publishes no port: only the network reaches it",
        t.engine.host_port(&recipe.id, 4000, false).await.is_none(),
        format!("web-api on {addr}"),
    );
    Ok(())
}

fn ports_volumes<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let trial = Trial::new("ch5.ports-volumes").await?;
        let result = volume_outlives_container(&trial, ctx, rec).await;
        trial_end(trial, result).await
    })
}

/// Start the hub with its data in `volume`: (container, http addr, logs udp addr).
async fn start_hub(
    t: &Trial,
    ctx: &Ctx,
    volume: &str,
) -> anyhow::Result<(Container, String, String)> {
    let config = serde_json::json!({
        "data_dir": "/data",
        "host": "0.0.0.0",
        "http_port": 8080,
        "logs_port": 7777,
    })
    .to_string();
    let c = t
        .run(
            "hub",
            &crate::images::lab_image(),
            Opts {
                cmd: &["serve", "hub", "--config", &config],
                aliases: &["hub"],
                ports: vec![
                    tcp(8080),
                    PublishedPort {
                        host: 0,
                        container: 7777,
                        udp: true,
                    },
                ],
                mounts: vec![lab_supervisor::plan::MountSpec::Volume {
                    name: volume.to_owned(),
                    target: "/data".into(),
                }],
                ..Default::default()
            },
        )
        .await?;
    let http = t.published(&c, 8080, false).await?;
    let udp = t.published(&c, 7777, true).await?;
    get_until_ok(ctx, &http, "/api/health").await?;
    Ok((c, http, udp))
}

/// Whether the hub at `http` finds a log document containing `marker` within 3 s.
async fn hub_finds(ctx: &Ctx, http: &str, marker: &str) -> bool {
    let path = format!(
        "/api/logs?query={}&since=1h&limit=5",
        crate::check::wire::url_encode(&format!("message:{marker}"))
    );
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_secs(3) {
        if let Ok((r, _)) = ctx.get(http, &path).await
            && r.status == 200
            && String::from_utf8_lossy(&r.body).contains(marker)
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

async fn volume_outlives_container(t: &Trial, ctx: &Ctx, rec: &mut Record) -> anyhow::Result<()> {
    ensure_images(&t.engine).await?;
    let volume = t.lab.volumes[0].clone();
    let (first, http, udp) = start_hub(t, ctx, &volume).await?;
    rec.check(
        "published ports are bound to 127.0.0.1 only",
        http.starts_with("127.0.0.1:") && udp.starts_with("127.0.0.1:"),
        format!("http {http}, logs udp {udp}"),
    );
    let marker = format!("ch5-volume-{}", std::process::id());
    let doc = serde_json::json!({"@timestamp": now_iso(), "app": "ch5", "message": marker});
    let sock = tokio::net::UdpSocket::bind("127.0.0.1:0").await?;
    // A datagram can be lost while the hub's listener starts: send until it is stored.
    let mut stored = false;
    for _ in 0..5 {
        sock.send_to(doc.to_string().as_bytes(), &udp).await?;
        if hub_finds(ctx, &http, &marker).await {
            stored = true;
            break;
        }
    }
    rec.check(
        "a log document sent to the published UDP port is stored",
        stored,
        marker.clone(),
    );
    t.engine
        .remove(&first.id)
        .await
        .map_err(anyhow::Error::msg)?;
    let gone = !t.engine.exists(&first.id).await;
    let (_second, http, _) = start_hub(t, ctx, &volume).await?;
    let kept = hub_finds(ctx, &http, &marker).await;
    rec.check(
        "after its container is removed and a new one started, the document is still there",
        gone && kept,
        format!("volume {volume}; first container removed: {gone}; found again: {kept}"),
    );
    Ok(())
}

fn ephemeral<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let trial = Trial::new("ch5.ephemeral").await?;
        let result = removed_when_stopped(&trial, ctx, rec).await;
        trial_end(trial, result).await
    })
}

async fn removed_when_stopped(t: &Trial, ctx: &Ctx, rec: &mut Record) -> anyhow::Result<()> {
    ensure_images(&t.engine).await?;
    let c = t
        .run(
            "recipe-api",
            &format!("lab/recipe-api:{}", env!("CARGO_PKG_VERSION")),
            Opts {
                ports: vec![tcp(4000)],
                auto_remove: true,
                ..Default::default()
            },
        )
        .await?;
    let addr = t.published(&c, 4000, false).await?;
    get_until_ok(ctx, &addr, "/recipes/42").await?;
    rec.check("the --rm container answers", true, addr);
    t.engine.stop(&c.id, Duration::from_secs(2)).await;
    let t0 = Instant::now();
    let mut gone = false;
    while t0.elapsed() < DEADLINE {
        if !t.engine.exists(&c.id).await {
            gone = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    rec.check(
        "once stopped, the engine removed it",
        gone,
        format!("{} ms after the stop", t0.elapsed().as_millis()),
    );
    rec.figure("stopped to removed", t0.elapsed().as_secs_f64() * 1e3, "ms");
    Ok(())
}
