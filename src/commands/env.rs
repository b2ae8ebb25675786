//! What every command starts from: the global flags resolved ([`Env`]), lab's own tracing, the
//! tokio runtime commands block on.

use std::path::{Path, PathBuf};

use crate::cli::Cli;
use crate::config::{ConfigError, LabConfig};
use crate::render::Style;

/// What every command shares: global flags resolved.
pub struct Env {
    pub file: PathBuf,
    pub state_dir: PathBuf,
    pub style: Style,
}

impl Env {
    pub(super) fn new(cli: &Cli) -> Self {
        let file = cli.file.clone();
        let state_dir = match &cli.state_dir {
            Some(d) => std::path::absolute(d).unwrap_or_else(|_| d.clone()),
            None => {
                let abs = std::path::absolute(&file).unwrap_or_else(|_| file.clone());
                abs.parent().unwrap_or(Path::new(".")).join(".lab")
            }
        };
        // A canonical path, so the marker set on instances matches what `down` looks for.
        let state_dir = state_dir.canonicalize().unwrap_or(state_dir);
        Self {
            file,
            state_dir,
            style: Style::detect(cli.no_color),
        }
    }

    /// Load lab.toml; a usage error carrying every diagnostic when it cannot be used.
    pub fn load_config(&self) -> anyhow::Result<LabConfig> {
        crate::config::load(&self.file).map_err(|e| match &e {
            ConfigError::Read { .. } => crate::error::Usage::lab(format!(
                "{e}\n  = hint: run lab in the folder holding lab.toml, or pass -f PATH"
            )),
            ConfigError::Invalid(d) => crate::error::Usage::text(d),
        })
    }
}

/// Install lab's own tracing (stderr, `RUST_LOG`, default `warn` so it stays out of the output).
pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?)
}
