//! What the scenarios that use the running lab's fault edges share: the consumer whose
//! `TARGET` leads through an edge, and a fault of the scenario's own injected there (as `lab
//! fault` does), applied before it returns and cleared afterwards even when the scenario fails.

use std::time::Duration;

use lab_edges::EdgeFault;

use super::scenario::{Cleanup, Ctx, Endpoint, LabEdges, Record, Subject, not_applicable};

/// The lab's edges and its consumers whose `TARGET` leads through one, or not applicable.
pub fn edged_consumers(ctx: &Ctx) -> anyhow::Result<(&LabEdges, Vec<&Endpoint>)> {
    let edges = ctx.edges.as_ref().ok_or_else(|| {
        not_applicable(
            "the lab has no fault edges, so nothing can slow or fail what passes between its services",
            "`[faults] edges = true` in lab.toml (or `lab up --faults`), then `lab down` and `lab up`",
        )
    })?;
    let consumers: Vec<&Endpoint> = ctx
        .require_consumers()?
        .into_iter()
        .filter(|c| {
            c.target
                .as_ref()
                .is_some_and(|t| edges.services.contains(t))
        })
        .collect();
    if consumers.is_empty() {
        return Err(not_applicable(
            "no consumer's TARGET leads through a fault edge",
            "a consumer whose `TARGET` names a lab service (`env = { TARGET = \"recipe-api\" }`)",
        ));
    }
    Ok((edges, consumers))
}

/// Inject `fault` on the edges into `target` for at most `lasting`, as `lab fault` does (a
/// `type:fault` document, listed by `lab fault list`), named among the subjects as `as_typed`
/// and cleared after the scenario; returns once the edges apply it. Its id.
pub async fn inject(
    edges: &LabEdges,
    rec: &mut Record,
    target: &str,
    fault: EdgeFault,
    lasting: Duration,
    as_typed: &str,
) -> anyhow::Result<String> {
    let f = lab_supervisor::faults::Faults::add_edge(
        &edges.state_dir,
        target,
        fault.clone(),
        Some(lasting),
        edges.hub_logs.clone(),
    )?;
    rec.cleanups.push(Cleanup::ClearFault {
        state_dir: edges.state_dir.clone(),
        id: f.id.clone(),
    });
    rec.subject(Subject::helper(
        "fault",
        format!(
            "the scenario's own fault {} ({}) on the edges into {target}, as `{as_typed}` injects it; cleared after",
            f.id,
            fault.describe()
        ),
    ));
    let (control, id) = (edges.control.clone(), f.id.clone());
    let applied = tokio::task::spawn_blocking(move || {
        lab_edges::wait_for_faults(&control, |ids| ids.contains(&id), Duration::from_secs(2))
    })
    .await?;
    anyhow::ensure!(
        applied,
        "the lab's edges did not apply fault {} within 2 s",
        f.id
    );
    Ok(f.id)
}

/// End fault `id` now, as `lab fault clear` does; returns once the edges dropped it.
pub async fn clear(edges: &LabEdges, id: &str) -> anyhow::Result<()> {
    lab_supervisor::faults::clear(&edges.state_dir, None, "cleared by lab check", |f| {
        f.id == id
    })
    .await?;
    let (control, id) = (edges.control.clone(), id.to_owned());
    tokio::task::spawn_blocking(move || {
        lab_edges::wait_for_faults(&control, |ids| !ids.contains(&id), Duration::from_secs(2))
    })
    .await?;
    Ok(())
}
