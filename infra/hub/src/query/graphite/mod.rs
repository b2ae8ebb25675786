//! The Graphite side of metrics out (docs/OBSERVABILITY.md §3): render targets (paths with globs and
//! the function subset Grafana, the book's dashboards and Cabot use), `/metrics/find`, and
//! Graphite's time forms. One file per job: [`time`] (from/until forms, intervals), [`glob`]
//! (path patterns), [`find`] (`/metrics/find`), [`parse`] (targets to [`Expr`]), [`eval`] (the
//! functions over a [`Source`]).
//!
//! Data model as whisper: a series is one value (or null) per `step` seconds; the point at `t`
//! holds what was written in `[t, t + step)`. A window `[from, until]` yields the points from
//! `from - from % step + step` through `until - until % step` (whisper's `fetch`).

mod eval;
mod find;
mod glob;
mod parse;
mod series;
mod time;

pub use eval::*;
pub use find::*;
pub use glob::*;
pub use parse::*;
pub use series::*;
pub use time::*;

#[cfg(test)]
mod tests;
