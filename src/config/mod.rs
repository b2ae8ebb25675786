//! lab.toml: [`raw`] (serde mirror with spans) → [`validate`] (every error, with line:col) →
//! [`LabConfig`] → [`plan`] (ports and addresses resolved) → `lab_supervisor::Plan`.

pub mod diagnostic;
pub mod plan;
pub mod raw;
pub mod validate;

use std::path::{Path, PathBuf};

pub use diagnostic::{Diagnostic, Diagnostics};
pub use validate::{LabConfig, Ports, Run, Service, Target};

/// Why a lab.toml could not be used. Both map to exit code 2.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{0}")]
    Invalid(Diagnostics),
}

/// Read, parse and validate the lab.toml at `path`.
pub fn load(path: &Path) -> Result<LabConfig, ConfigError> {
    let display = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| ConfigError::Read { path: display.clone(), source })?;
    let abs = std::path::absolute(path).unwrap_or_else(|_| PathBuf::from(path));
    parse(&source, &abs, &display)
}

/// Parse and validate `source` as if read from `path` (shown as `display`).
pub fn parse(source: &str, path: &Path, display: &str) -> Result<LabConfig, ConfigError> {
    let invalid = |items| ConfigError::Invalid(Diagnostics { path: display.to_owned(), source: source.to_owned(), items });
    let raw: raw::RawLab = toml::from_str(source).map_err(|e| invalid(vec![diagnostic::from_toml(&e)]))?;
    validate::validate(raw, source, path, display).map_err(invalid)
}
