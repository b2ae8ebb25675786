//! Real Redis and PostgreSQL servers a scenario starts and stops for its own experiment (the
//! book's health check depends on both), on free loopback ports, in a temp folder; stopped and
//! removed when dropped. Debian's `redis-server` and PostgreSQL 15 (`scripts/install-deps`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a server may take to accept connections.
const READY: Duration = Duration::from_secs(20);

async fn wait_port(port: u16, what: &str) -> anyhow::Result<()> {
    let t0 = Instant::now();
    loop {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        anyhow::ensure!(
            t0.elapsed() < READY,
            "{what} did not accept connections on port {port} within {} s",
            READY.as_secs()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A `redis-server` on a free port, no persistence.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
}

impl Redis {
    pub async fn start() -> anyhow::Result<Self> {
        let port = lab_supervisor::ports::pick_free("127.0.0.1", 1)?[0];
        let mut r = Self { port, child: None };
        r.resume().await?;
        Ok(r)
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Start it (again) on the same port.
    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let program = crate::programs::find("redis-server")
            .ok_or_else(|| anyhow::anyhow!("this scenario needs `redis-server` (Debian: apt-get install redis-server; or scripts/install-deps)"))?;
        let child = Command::new(program)
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.port.to_string(),
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?;
        self.child = Some(child);
        wait_port(self.port, "redis-server").await
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster made by `initdb` (trust auth) in a temp folder, on a free port.
pub struct Postgres {
    pub port: u16,
    dir: tempfile::TempDir,
    bin: PathBuf,
    running: bool,
}

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path().join("bin")))
        .collect();
    versions.sort();
    versions
        .into_iter()
        .rev()
        .find(|b| b.join("pg_ctl").is_file())
}

/// Run a PostgreSQL tool, as the `postgres` user when we are root (PostgreSQL refuses root).
fn pg_command(bin: &std::path::Path, tool: &str) -> Command {
    if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(bin.join(tool));
        c
    } else {
        Command::new(bin.join(tool))
    }
}

impl Postgres {
    pub async fn start() -> anyhow::Result<Self> {
        let bin = pg_bin().ok_or_else(|| anyhow::anyhow!("this scenario needs PostgreSQL (Debian: apt-get install postgresql; or scripts/install-deps)"))?;
        let dir = tempfile::Builder::new().prefix("lab-pg-").tempdir()?;
        if nix::unistd::geteuid().is_root() {
            let ok = Command::new("chown")
                .args(["-R", "postgres:"])
                .arg(dir.path())
                .status()?
                .success();
            anyhow::ensure!(
                ok,
                "cannot hand {} to the postgres user",
                dir.path().display()
            );
        }
        let port = lab_supervisor::ports::pick_free("127.0.0.1", 1)?[0];
        let out = pg_command(&bin, "initdb")
            .args(["-D"])
            .arg(dir.path().join("data"))
            .args(["--auth=trust", "-U", "postgres", "--no-sync"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Self {
            port,
            dir,
            bin,
            running: false,
        };
        pg.resume().await?;
        Ok(pg)
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    pub async fn resume(&mut self) -> anyhow::Result<()> {
        let opts = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
            self.port,
            self.dir.path().display()
        );
        let out = pg_command(&self.bin, "pg_ctl")
            .args(["-D"])
            .arg(self.dir.path().join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "start"])
            .output()?;
        anyhow::ensure!(
            out.status.success(),
            "pg_ctl start failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        self.running = true;
        wait_port(self.port, "PostgreSQL").await
    }

    pub fn stop(&mut self) {
        if self.running {
            let _ = pg_command(&self.bin, "pg_ctl")
                .args(["-D"])
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            self.running = false;
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}
