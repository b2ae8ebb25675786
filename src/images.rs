//! `lab images build`: the one image every built-in part runs (`lab/lab:<version>`, entry
//! point `/lab`), made without a registry: exactly the shared libraries `ldd` lists, streamed
//! as a tar from memory into the engine's import (`docker import -`, bollard's
//! `create_image(from_src "-")`) as a base layer, and the host's `lab` binary (debug info
//! stripped when `strip` is there) copied on top by the engine's builder from a context made
//! in memory: what changes least first, so a new build of lab reuses the library layer. A
//! static binary needs no library at all. HAProxy's image is made the same way.

use std::path::{Path, PathBuf};

use bollard::Docker;
use futures_util::TryStreamExt;

/// What went into an image.
#[derive(Debug)]
pub struct Built {
    pub reference: String,
    pub id: String,
    pub bytes: u64,
    pub files: Vec<String>,
}

/// The libraries a dynamic executable loads (absolute paths), none for a static one.
pub fn ldd_closure(exe: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let out = std::process::Command::new("ldd").arg(exe).output()?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || text.contains("statically linked") || text.contains("not a dynamic")
    {
        return Ok(Vec::new());
    }
    Ok(text
        .lines()
        .filter_map(|l| {
            // `libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x…)` or `/lib64/ld-linux-x86-64.so.2 (0x…)`
            let path = l.split("=>").last()?.split_whitespace().next()?;
            path.starts_with('/').then(|| PathBuf::from(path))
        })
        .collect())
}

/// The bottom layer: the shared libraries `exe` loads (where `ldd` finds them) and an empty
/// `/tmp`; (tar, library paths). It changes only when the host's libraries do.
pub fn base_tar(exe: &Path) -> anyhow::Result<(Vec<u8>, Vec<String>)> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Directory);
    header.set_mode(0o1777);
    header.set_size(0);
    tar.append_data(&mut header, "tmp/", std::io::empty())?;
    let mut libs = Vec::new();
    for lib in ldd_closure(exe)? {
        let name = lib.strip_prefix("/").unwrap_or(&lib).to_path_buf();
        tar.append_path_with_name(&lib, &name)?;
        libs.push(lib.display().to_string());
    }
    Ok((tar.into_inner()?, libs))
}

/// A build context: `dockerfile`, and `exe` (debug info stripped when `strip` is there) as
/// `name` beside it.
fn binary_context(exe: &Path, name: &str, dockerfile: &str) -> anyhow::Result<Vec<u8>> {
    let stripped = tempfile::NamedTempFile::new()?;
    let binary = match std::process::Command::new("strip")
        .arg("--strip-debug")
        .arg("-o")
        .arg(stripped.path())
        .arg(exe)
        .status()
    {
        Ok(s) if s.success() => stripped.path().to_path_buf(),
        _ => exe.to_path_buf(),
    };
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    tar.append_path_with_name(&binary, name)?;
    append_file(&mut tar, "Dockerfile", dockerfile.as_bytes())?;
    Ok(tar.into_inner()?)
}

fn append_file(tar: &mut tar::Builder<Vec<u8>>, name: &str, bytes: &[u8]) -> std::io::Result<()> {
    let mut header = tar::Header::new_gnu();
    header.set_size(bytes.len() as u64);
    header.set_mode(0o644);
    tar.append_data(&mut header, name, bytes)
}

/// A stable name for a layer's content.
fn content_tag(bytes: &[u8]) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{:016x}", h.finish())
}

/// The images `lab images build` makes: (reference, entry point, exposed port). One layer
/// (the same tar) under each: the engine stores it once.
pub fn images() -> Vec<(String, Vec<&'static str>, Option<u16>)> {
    let v = env!("CARGO_PKG_VERSION");
    vec![
        (format!("lab/lab:{v}"), vec!["/lab"], None),
        (
            format!("lab/recipe-api:{v}"),
            vec!["/lab", "serve", "recipe-api"],
            Some(4000),
        ),
        (
            format!("lab/web-api:{v}"),
            vec!["/lab", "serve", "web-api"],
            Some(3000),
        ),
    ]
}

/// Which binary an image was made from (size and modification time): the `lab.binary`
/// label, so that `lab up` notices an image made from another build of lab.
pub fn binary_id(exe: &Path) -> String {
    let meta = std::fs::metadata(exe).ok();
    let mtime = meta
        .as_ref()
        .and_then(|m| m.modified().ok())
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_secs());
    format!("{}-{mtime}", meta.map_or(0, |m| m.len()))
}

/// The image built-in parts run: `lab/lab:<version>`.
pub fn lab_image() -> String {
    format!("lab/lab:{}", env!("CARGO_PKG_VERSION"))
}

/// The tag a `build = "dir"` service's image gets when it names no `image`.
pub fn built_image(project: &str, service: &str) -> String {
    format!("lab-{project}-{service}:latest")
}

/// The plan runs the lab image somewhere.
pub fn needs_lab_image(plan: &lab_supervisor::Plan) -> bool {
    plan.instances()
        .any(|i| i.container.as_ref().is_some_and(|c| c.image == lab_image()))
}

/// The HAProxy image (`lab/haproxy:<version>`): the host's `haproxy` and its libraries.
pub fn haproxy_image() -> String {
    format!("lab/haproxy:{}", env!("CARGO_PKG_VERSION"))
}

/// Import every image of [`images`] into the engine at `/var/run/docker.sock`, and the
/// HAProxy image when the host has `haproxy`.
pub async fn build(exe: &Path) -> anyhow::Result<Vec<Built>> {
    let docker = connect().await?;
    let mut built = import(&docker, exe, "lab", images()).await?;
    if let Some(haproxy) = crate::programs::find("haproxy") {
        built.extend(build_haproxy(&docker, &haproxy).await?);
    }
    Ok(built)
}

/// `lab/haproxy:<version>` from the host's `haproxy` binary and its `ldd` closure.
pub async fn build_haproxy(docker: &Docker, haproxy: &Path) -> anyhow::Result<Vec<Built>> {
    import(
        docker,
        haproxy,
        "haproxy",
        vec![(haproxy_image(), vec!["/haproxy"], None)],
    )
    .await
}

async fn connect() -> anyhow::Result<Docker> {
    lab_supervisor::runtime::docker::Engine::connect()
        .await
        .map(|e| e.docker().clone())
        .map_err(anyhow::Error::msg)
}

/// Make the images of `images` from `exe` in two layers, what changes least first: its
/// libraries (imported once as `lab/base:<content>`, kept while they do not change), then the
/// binary on top (the classic builder: `FROM base`, `COPY`). The first image gets both; the
/// others are the first with another entry point, adding no layer.
async fn import(
    docker: &Docker,
    exe: &Path,
    name: &str,
    images: Vec<(String, Vec<&'static str>, Option<u16>)>,
) -> anyhow::Result<Vec<Built>> {
    let (base, libs) = base_tar(exe)?;
    let base_ref = format!("lab/base:{}", content_tag(&base));
    if docker.inspect_image(&base_ref).await.is_err() {
        let (repo, tag) = base_ref.rsplit_once(':').expect("a tag");
        let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
            .from_src("-")
            .repo(repo)
            .tag(tag)
            .changes(vec!["LABEL lab.image=base".to_owned()])
            .build();
        let infos: Vec<bollard::models::CreateImageInfo> = docker
            .create_image(
                Some(options),
                Some(bollard::body_full(bytes::Bytes::from(base))),
                None,
            )
            .try_collect()
            .await
            .map_err(|e| anyhow::anyhow!("the engine refused the import of {base_ref}: {e}"))?;
        if let Some(err) = infos
            .iter()
            .find_map(|i| i.error_detail.as_ref().and_then(|d| d.message.clone()))
        {
            anyhow::bail!("importing {base_ref}: {err}");
        }
    }
    let mut files = vec![format!("/{name}")];
    files.extend(libs);
    let mut built = Vec::new();
    let mut first: Option<String> = None;
    for (reference, entrypoint, port) in images {
        let mut dockerfile = match &first {
            None => format!(
                "FROM {base_ref}\nCOPY {name} /{name}\nWORKDIR /\nLABEL lab.image=lab lab.binary={}\n",
                binary_id(exe)
            ),
            Some(f) => format!("FROM {f}\n"),
        };
        dockerfile.push_str(&format!(
            "ENTRYPOINT {}\n",
            serde_json::to_string(&entrypoint)?
        ));
        if let Some(p) = port {
            dockerfile.push_str(&format!("ENV HOST=0.0.0.0 PORT={p}\nEXPOSE {p}\n"));
        }
        let context = match &first {
            None => binary_context(exe, name, &dockerfile)?,
            Some(_) => {
                let mut tar = tar::Builder::new(Vec::new());
                append_file(&mut tar, "Dockerfile", dockerfile.as_bytes())?;
                tar.into_inner()?
            }
        };
        build_tar(docker, context, &reference, &|_| {})
            .await
            .map_err(|e| anyhow::anyhow!("building {reference}: {e:#}"))?;
        let inspected = docker.inspect_image(&reference).await?;
        built.push(Built {
            id: inspected.id.unwrap_or_default(),
            bytes: inspected.size.map_or(0, |s| s as u64),
            files: files.clone(),
            reference: reference.clone(),
        });
        first.get_or_insert(reference);
    }
    Ok(built)
}

/// Build `tag` from the folder `dir` (its Dockerfile) with the engine's classic builder,
/// each line of the build's output handed to `say`. The build context is `dir` as a tar.
pub async fn build_dockerfile(
    docker: &Docker,
    dir: &Path,
    tag: &str,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let mut tar = tar::Builder::new(Vec::new());
    tar.follow_symlinks(true);
    tar.append_dir_all(".", dir)
        .map_err(|e| anyhow::anyhow!("cannot read the build folder {}: {e}", dir.display()))?;
    build_tar(docker, tar.into_inner()?, tag, say)
        .await
        .map_err(|e| anyhow::anyhow!("{e:#} (from {})", dir.display()))
}

/// Build `tag` from a build context (a tar holding a Dockerfile) with the classic builder.
async fn build_tar(
    docker: &Docker,
    context: Vec<u8>,
    tag: &str,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let context = bytes::Bytes::from(context);
    let options = bollard::query_parameters::BuildImageOptionsBuilder::default()
        .t(tag)
        .rm(true)
        .forcerm(true)
        .build();
    let mut stream = docker.build_image(options, None, Some(bollard::body_full(context)));
    while let Some(item) = stream.try_next().await.transpose() {
        let info = item.map_err(|e| anyhow::anyhow!("building {tag}: {e}"))?;
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            anyhow::bail!("building {tag}: {e}");
        }
        if let Some(line) = info.stream {
            let line = line.trim_end();
            if !line.is_empty() {
                say(line.to_owned());
            }
        }
    }
    Ok(())
}

/// Before a docker lab starts: import the lab image from this very binary if the engine lacks
/// it, and build every `build = "dir"` service's image. What it does is told through `say`.
pub async fn ensure_for(
    cfg: &crate::config::LabConfig,
    plan: &lab_supervisor::Plan,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    if plan.docker.is_none() {
        return Ok(());
    }
    let docker = connect().await?;
    let lab = crate::images::lab_image();
    let exe = std::env::current_exe()?;
    let made_from = match docker.inspect_image(&lab).await {
        Ok(i) => Some(
            i.config
                .and_then(|c| c.labels)
                .and_then(|l| l.get("lab.binary").cloned())
                .unwrap_or_default(),
        ),
        Err(_) => None,
    };
    let why = match made_from {
        None => Some("the engine has no"),
        Some(id) if id != binary_id(&exe) => Some("another build of lab made"),
        Some(_) => None,
    };
    if let Some(why) = why.filter(|_| needs_lab_image(plan)) {
        say(format!(
            "{why} {lab}: importing it from this binary ({})…",
            exe.display()
        ));
        let t0 = std::time::Instant::now();
        let built = build(&exe).await?;
        say(format!(
            "  {} ({:.1} MB) in {:.1}s",
            built.first().map_or(lab.as_str(), |b| b.reference.as_str()),
            built.first().map_or(0, |b| b.bytes) as f64 / 1e6,
            t0.elapsed().as_secs_f64()
        ));
    }
    let haproxy = haproxy_image();
    if plan
        .instances()
        .any(|i| i.container.as_ref().is_some_and(|c| c.image == haproxy))
        && docker.inspect_image(&haproxy).await.is_err()
    {
        let host = crate::programs::find("haproxy").ok_or_else(|| {
            anyhow::anyhow!("{haproxy} is made from the host's haproxy, which is not installed (Debian: `apt-get install haproxy`)")
        })?;
        say(format!(
            "the engine has no {haproxy}: importing it from {}…",
            host.display()
        ));
        build_haproxy(&docker, &host).await?;
    }
    for s in &cfg.services {
        if let (crate::config::model::Run::Command { .. }, Some(image), None) =
            (&s.run, &s.image, &s.build)
            && docker.inspect_image(image).await.is_err()
        {
            say(format!("pulling {image} for {}…", s.name));
            pull(&docker, image, say).await.map_err(|e| {
                anyhow::anyhow!(
                    "the engine has no image {image} and cannot pull it: {e}\n  = hint: where there is no registry, build it here with `build = \"dir\"` (a Dockerfile), or `docker load` it"
                )
            })?;
        }
    }
    for s in &cfg.services {
        if let Some(dir) = &s.build {
            let tag = s
                .image
                .clone()
                .unwrap_or_else(|| built_image(&cfg.name, &s.name));
            say(format!("building {tag} from {}…", dir.display()));
            build_dockerfile(&docker, dir, &tag, &|l| say(format!("  {l}"))).await?;
        }
    }
    Ok(())
}

/// Pull `image` from its registry, its progress told through `say`: each layer's steps, and
/// how far a download is at most once a second.
pub async fn pull(
    docker: &Docker,
    image: &str,
    say: &(dyn Fn(String) + Sync),
) -> anyhow::Result<()> {
    let (repo, tag) = match image.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r, t),
        _ => (image, "latest"),
    };
    let options = bollard::query_parameters::CreateImageOptionsBuilder::default()
        .from_image(repo)
        .tag(tag)
        .build();
    let mut stream = docker.create_image(Some(options), None, None);
    let mut last: std::collections::HashMap<String, String> = Default::default();
    let mut shown = std::time::Instant::now();
    while let Some(info) = stream.try_next().await? {
        if let Some(e) = info.error_detail.and_then(|d| d.message) {
            anyhow::bail!("{e}");
        }
        let (Some(id), Some(status)) = (info.id, info.status) else {
            continue;
        };
        let busy = status == "Downloading" || status == "Extracting";
        if busy && shown.elapsed() < std::time::Duration::from_secs(1) {
            continue;
        }
        if !busy && last.get(&id) == Some(&status) {
            continue;
        }
        shown = std::time::Instant::now();
        let detail = info
            .progress_detail
            .and_then(|p| {
                Some(format!(
                    " {:.1}/{:.1} MB",
                    p.current? as f64 / 1e6,
                    p.total? as f64 / 1e6
                ))
            })
            .filter(|_| busy)
            .unwrap_or_default();
        say(format!("  {id}: {status}{detail}"));
        last.insert(id, status);
    }
    Ok(())
}
