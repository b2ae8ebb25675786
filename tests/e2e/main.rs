//! End-to-end tests: each drives the real `lab` binary in its own temp folder, on free ports.
//!
//! Where to look (docs/ARCHITECTURE.md has the map of the code they drive):
//! - the lab's life: `lifecycle` (up, status, check, restart, down, SIGKILL recovery),
//!   `config_errors` (every class of bad lab.toml, usage errors and exit codes),
//!   `command_service` (a learner's own program under the supervisor);
//! - faults on purpose: `faults` (`lab fault` kill, pause, restart, partition, the edge faults,
//!   list, clear, `[faults.NAME]` schedules), `docker_faults` (the same on the docker runtime);
//! - the chapters: `protocols` (2), `scaling` and `proxy` (1 and 3, both engines), `load`
//!   (`lab load`), `observe` (4: the hub, logs, metrics, traces, alerts, `lab hub` alone),
//!   `interop` (independent Python peers of chapter 2's contracts), `book_style` (`lab check all`
//!   against a reader's code written the book's way);
//! - containers: `images`, `docker` (the docker runtime), `export` (Compose and Kubernetes, and a
//!   check against a deployment lab did not start);
//! - the dashboard in a real browser: `browser`;
//! - `util`: temp labs, polling with a deadline, small HTTP helpers.

mod book_style;
mod browser;
mod command_service;
mod config_errors;
mod docker;
mod docker_faults;
mod export;
mod faults;
mod images;
mod interop;
mod lifecycle;
mod load;
mod observe;
mod protocols;
mod proxy;
mod scaling;
mod util;
