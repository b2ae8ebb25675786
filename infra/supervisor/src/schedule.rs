//! Faults on a schedule (`[faults.NAME]` in lab.toml, issue 18): each injected `after` the lab is
//! up, lasting `for` (or until cleared), by the supervisor, through the same calls as `lab
//! fault` — so a scheduled fault is recorded, listed, logged to the hub and ended like any
//! other.

use std::path::PathBuf;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::events::{Event, EventSink};
use crate::faults::{self, Faults};
use crate::runtime::docker::Engine;
use crate::state::{InstanceRecord, State, StateStore};

pub use crate::plan::{Scheduled, What};

/// What the schedule needs besides its faults.
pub struct Context {
    pub state_dir: PathBuf,
    pub store: StateStore,
    pub engine: Option<Engine>,
    /// The lab's docker network (a partition cuts containers off it).
    pub network: Option<String>,
    /// The hub's log input, for the faults' documents.
    pub hub_logs: Option<String>,
    pub events: EventSink,
}

/// The instances `target` (`SERVICE` or `SERVICE#N`) names in `state`.
pub fn targets<'s>(state: &'s State, target: &str) -> Vec<&'s InstanceRecord> {
    let (service, index) = match target.split_once('#') {
        Some((s, n)) => (s, n.parse::<usize>().ok()),
        None => (target, None),
    };
    state
        .instances
        .iter()
        .filter(|r| r.service == service && index.is_none_or(|n| r.instance == n))
        .collect()
}

/// Run `schedule` from now (the lab just came up) until every fault was injected or `stop`.
pub async fn run(ctx: Context, mut schedule: Vec<Scheduled>, stop: CancellationToken) {
    schedule.sort_by_key(|s| s.after);
    let t0 = tokio::time::Instant::now();
    for s in schedule {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tokio::time::sleep_until(t0 + s.after) => {}
        }
        let text = match inject(&ctx, &s).await {
            Ok(done) => done,
            Err(e) => {
                tracing::warn!(fault = %s.name, error = %e, "scheduled fault");
                format!("could not be injected: {e}")
            }
        };
        (ctx.events)(Event::Scheduled {
            name: s.name.clone(),
            text,
        });
    }
}

/// Inject one scheduled fault; what it did, for the event.
async fn inject(ctx: &Context, s: &Scheduled) -> Result<String, String> {
    let io = |e: std::io::Error| format!("cannot record the fault: {e}");
    match &s.what {
        What::Edge { fault, lasting } => {
            let f = Faults::add_edge(
                &ctx.state_dir,
                &s.target,
                fault.clone(),
                *lasting,
                ctx.hub_logs.clone(),
            )
            .map_err(io)?;
            name_fault(ctx, &f.id, &s.name).map_err(io)?;
            Ok(format!(
                "{} {} on {}{}",
                f.id,
                fault.describe(),
                s.target,
                for_text(*lasting)
            ))
        }
        What::Process(action) => {
            let state = ctx.store.snapshot();
            let hits = targets(&state, &s.target);
            if hits.is_empty() {
                return Err(format!("the lab has no instance {}", s.target));
            }
            let mut done = Vec::new();
            for r in hits {
                let injected = faults::inject(
                    &ctx.state_dir,
                    ctx.engine.as_ref(),
                    ctx.network.as_deref(),
                    r,
                    *action,
                    ctx.hub_logs.clone(),
                )
                .await?;
                match injected.fault {
                    Some(f) => {
                        name_fault(ctx, &f.id, &s.name).map_err(io)?;
                        done.push(format!(
                            "{} {} {} ({}){}",
                            f.id,
                            action.name(),
                            r.id(),
                            injected.how,
                            for_text(action.lasting().flatten())
                        ));
                    }
                    None => done.push(format!("{} {} ({})", action.name(), r.id(), injected.how)),
                }
            }
            Ok(done.join("; "))
        }
    }
}

fn for_text(lasting: Option<Duration>) -> String {
    lasting.map_or(String::new(), |d| {
        format!(" for {}", humantime::format_duration(d))
    })
}

/// Remember which `[faults.NAME]` fault `id` came from (`lab fault list` shows it).
fn name_fault(ctx: &Context, id: &str, name: &str) -> std::io::Result<()> {
    Faults::update(&ctx.state_dir, |f| {
        if let Some(fault) = f.active.iter_mut().find(|f| f.id == id) {
            fault.name = Some(name.to_owned());
        }
    })
}
