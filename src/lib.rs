//! `lab`: reads lab.toml, runs the book's services under a supervisor, and checks the chapters.
//!
//! Layout:
//! - [`cli`]: the clap definition of every subcommand.
//! - [`commands`]: one file per subcommand; load config, call the crates, render.
//! - [`config`]: lab.toml raw (spans) → validated → lowered to a supervisor plan.
//! - [`check`]: the scenario registry and its chapter files.
//! - [`export`]: the lab as a Compose file or Kubernetes manifests (`lab export compose|k8s`).
//! - [`init`]: `lab init [SECTION]`, the default lab or one per book section.
//! - [`images`]: the lab image, imported into the local engine without a registry.
//! - [`programs`]: programs on PATH (and the sbin folders).
//! - [`render`]: tables, colour discipline, JUnit.
//! - [`shutdown`]: signals → cancellation token.
//! - [`slow`]: `lab serve slow-server`, the back-pressure experiment's slow server.
//! - [`tls`]: the lab's local CA and per-service certificates under `.lab/tls/`.

pub mod check;
pub mod cli;
pub mod commands;
pub mod config;
pub mod export;
pub mod images;
pub mod init;
pub mod programs;
pub mod render;
pub mod shutdown;
pub mod slow;
pub mod tls;

use std::process::ExitCode;

/// Exit codes: 0 ok, 1 a check failed or the lab could not start, 2 usage or config error.
pub mod exit {
    pub const OK: u8 = 0;
    pub const FAILED: u8 = 1;
    pub const USAGE: u8 = 2;
}

/// A usage or config error: the command line or lab.toml is wrong. Commands return it inside
/// their `anyhow::Error`; `main` prints it once, as written (hints included), and exits 2.
/// Every other error exits 1, printed once with its chain (`{:#}`).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct Usage(pub String);

impl Usage {
    /// `lab: MESSAGE`, as an error a command returns.
    pub fn lab(message: impl std::fmt::Display) -> anyhow::Error {
        Self(format!("lab: {message}")).into()
    }
    /// The text as it is (diagnostics carry their own `lab.toml:L:C:` prefix).
    pub fn text(text: impl std::fmt::Display) -> anyhow::Error {
        Self(text.to_string()).into()
    }
}

/// The exit code of a failed command, and what to print.
pub fn exit_code_of(e: &anyhow::Error) -> (u8, Option<String>) {
    if let Some(io) = e.downcast_ref::<std::io::Error>()
        && io.kind() == std::io::ErrorKind::BrokenPipe
    {
        return (exit::OK, None);
    }
    match e.downcast_ref::<Usage>() {
        Some(u) => (exit::USAGE, Some(u.0.trim_end().to_owned())),
        None => (exit::FAILED, Some(format!("lab: error: {e:#}"))),
    }
}

/// A value for a URL query string (`app:web-api and x` → `app%3Aweb-api+and+x`).
pub fn url_encode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Run a parsed command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    commands::dispatch(cli).map(ExitCode::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usage_exits_2_as_written_and_other_errors_1_with_their_chain() {
        let u = Usage::lab("bad flag\n  = hint: try --help");
        assert_eq!(
            exit_code_of(&u),
            (
                exit::USAGE,
                Some("lab: bad flag\n  = hint: try --help".into())
            )
        );
        let e = anyhow::anyhow!("disk full").context("cannot write hub.json");
        assert_eq!(
            exit_code_of(&e),
            (
                exit::FAILED,
                Some("lab: error: cannot write hub.json: disk full".into())
            )
        );
        let pipe = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe));
        assert_eq!(exit_code_of(&pipe), (exit::OK, None));
    }
}
