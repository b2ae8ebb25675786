//! `lab`: reads lab.toml, runs the book's services under a supervisor, and checks the chapters.
//!
//! Layout:
//! - [`cli`]: the clap definition of every subcommand.
//! - [`commands`]: one file per subcommand; load config, call the crates, render (no command
//!   calls another: what they share is in `commands::{env, running, context}`).
//! - [`config`]: lab.toml raw (spans) → validated (`model`) → lowered once for every shape
//!   (`lower`: processes, docker, Compose, Kubernetes).
//! - [`check`]: the scenario registry, what a scenario works with, and the chapter files.
//! - [`error`]: exit codes and [`error::Usage`], printed once by `main`.
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
pub mod error;
pub mod export;
pub mod images;
pub mod init;
pub mod programs;
pub mod render;
pub mod shutdown;
pub mod slow;
pub mod tls;
#[cfg(test)]
mod walls;

use std::process::ExitCode;

pub use error::{Usage, exit, exit_code_of};

/// Run a parsed command line.
pub fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    commands::dispatch(cli).map(ExitCode::from)
}
