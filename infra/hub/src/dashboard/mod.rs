//! The lab's dashboard, served by the hub on its HTTP port: server-rendered HTML, a few lines
//! of hand-written JS, nothing fetched from elsewhere (it works offline). Every dynamic value
//! goes through [`html::escape`]; the live parts update text only (`textContent`), never markup.
//!
//! Pages, one per file: [`overview`] (every instance with its process or container, restarts and health, and
//! the proxy's servers; refreshed every second from `/api/overview`), [`metrics`] (per-service
//! rates, errors and latency; any StatsD series), [`traces`] (the last hour's, filtered by service
//! and minimum duration; one opens as a waterfall of its spans with their tags and a link to
//! its log lines), [`logs`] (the KQL of `lab logs --query`, severity colours, expandable documents,
//! live tail), [`alerts`] (rules, their standing and history), [`load`] (kept `lab load` runs,
//! compared side by side).

pub mod alerts;
pub mod html;
pub mod load;
pub mod logs;
pub mod metrics;
pub mod overview;
pub mod traces;
