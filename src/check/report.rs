//! Running scenarios and reporting them: one result per scenario (bounded by
//! [`SCENARIO_LIMIT`]), per-chapter progress, the report (`--json`, with its committed schema).

use std::time::{Duration, Instant};

use schemars::JsonSchema;
use serde::Serialize;

use super::scenario::*;

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ScenarioResult {
    pub name: String,
    pub chapter: u8,
    pub section: String,
    pub status: Status,
    /// The proxy engine, for scenarios that exercise one (`builtin` or `haproxy`).
    pub engine: Option<String>,
    pub duration_ms: f64,
    /// What it ran against: the learner's services, the lab's built-ins, its own helpers.
    pub subjects: Vec<Subject>,
    pub assertions: Vec<Assertion>,
    pub figures: Vec<Figure>,
    pub notes: Vec<String>,
    /// Set when the status is `not-applicable`.
    pub not_applicable: Option<NotApplicable>,
    /// Set when the scenario could not finish (a request failed, a timeout).
    pub error: Option<String>,
}

/// One chapter's standing in a run.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ChapterProgress {
    pub chapter: u8,
    pub passing: usize,
    pub failing: usize,
    pub not_applicable: usize,
    pub total: usize,
}

impl ChapterProgress {
    /// `ch2  4/7 passing · 1 failing · 2 not applicable`
    pub fn line(&self) -> String {
        let mut out = format!(
            "ch{}  {}/{} passing",
            self.chapter, self.passing, self.total
        );
        if self.failing > 0 {
            out.push_str(&format!(" · {} failing", self.failing));
        }
        if self.not_applicable > 0 {
            out.push_str(&format!(" · {} not applicable", self.not_applicable));
        }
        out
    }
}

/// Per chapter, in order, from some results.
pub fn chapters(results: &[ScenarioResult]) -> Vec<ChapterProgress> {
    let mut out: Vec<ChapterProgress> = Vec::new();
    for r in results {
        let i = match out.iter().position(|c| c.chapter == r.chapter) {
            Some(i) => i,
            None => {
                out.push(ChapterProgress {
                    chapter: r.chapter,
                    passing: 0,
                    failing: 0,
                    not_applicable: 0,
                    total: 0,
                });
                out.len() - 1
            }
        };
        let c = &mut out[i];
        c.total += 1;
        match r.status {
            Status::Pass => c.passing += 1,
            Status::Fail => c.failing += 1,
            Status::NotApplicable => c.not_applicable += 1,
        }
    }
    out.sort_by_key(|c| c.chapter);
    out
}

/// The whole `lab check` result: what `--json` prints and the table and JUnit are drawn from.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(title = "lab check report")]
pub struct CheckReport {
    pub lab: String,
    /// `running` (the lab recorded under the state dir), `started` (brought up for the checks)
    /// or `endpoints` (services at the addresses of `--endpoint`).
    pub source: String,
    pub passed: usize,
    pub failed: usize,
    pub not_applicable: usize,
    /// `--strict`: not applicable counts as failed.
    pub strict: bool,
    pub duration_ms: f64,
    pub chapters: Vec<ChapterProgress>,
    pub scenarios: Vec<ScenarioResult>,
}

impl CheckReport {
    /// Every applicable scenario passed (and, with `strict`, every scenario applied).
    pub fn ok(&self) -> bool {
        self.failed == 0 && !(self.strict && self.not_applicable > 0)
    }
}

/// The longest one scenario may run.
pub const SCENARIO_LIMIT: Duration = Duration::from_secs(120);

/// Run one scenario against `ctx`, undoing what it added to the lab afterwards.
pub async fn run_one(ctx: &Ctx, s: &Scenario) -> ScenarioResult {
    let started = Instant::now();
    let mut rec = Record::default();
    let outcome = tokio::time::timeout(SCENARIO_LIMIT, (s.run)(ctx, &mut rec)).await;
    for c in std::mem::take(&mut rec.cleanups) {
        match c {
            Cleanup::Delete { url, what } => {
                let done = ctx
                    .client
                    .request(hyper::Method::DELETE, &url, &[], None, ctx.timeout)
                    .await;
                match done {
                    Ok(r) if r.status.is_success() || r.status == 404 => {}
                    Ok(r) => rec.note(format!(
                        "could not remove {what}: DELETE answered {}",
                        r.status
                    )),
                    Err(e) => rec.note(format!("could not remove {what}: {e}")),
                }
            }
            Cleanup::ClearFault { state_dir, id } => {
                let done =
                    lab_supervisor::faults::clear(&state_dir, None, "cleared by lab check", |f| {
                        f.id == id
                    })
                    .await;
                if let Err(e) = done {
                    rec.note(format!("could not end fault {id}: {e}"));
                }
            }
        }
    }
    let (error, na) = match outcome {
        Ok(Ok(())) => (None, None),
        Ok(Err(e)) => match e.downcast::<NotApplicable>() {
            Ok(na) => (None, Some(na)),
            Err(e) => (Some(format!("{e:#}")), None),
        },
        Err(_) => (
            Some(format!(
                "did not finish within {}s",
                SCENARIO_LIMIT.as_secs()
            )),
            None,
        ),
    };
    let all_ok = rec.assertions.iter().all(|a| a.ok);
    let status = if na.is_some() && all_ok {
        Status::NotApplicable
    } else if error.is_none() && na.is_none() && !rec.assertions.is_empty() && all_ok {
        Status::Pass
    } else {
        Status::Fail
    };
    ScenarioResult {
        name: s.name.into(),
        chapter: s.chapter,
        section: s.section.into(),
        status,
        engine: s.proxy.then(|| ctx.proxy_engine.as_str().to_owned()),
        duration_ms: started.elapsed().as_secs_f64() * 1e3,
        subjects: rec.subjects,
        assertions: rec.assertions,
        figures: rec.figures,
        notes: rec.notes,
        not_applicable: na,
        error,
    }
}

/// Run `scenarios` one after another against `ctx`; `done` sees each result as it comes.
pub async fn run(
    ctx: &Ctx,
    scenarios: &[Scenario],
    lab: &str,
    source: &str,
    strict: bool,
    done: &mut (dyn FnMut(&ScenarioResult) + Send),
) -> CheckReport {
    let t0 = Instant::now();
    let mut results = Vec::new();
    for s in scenarios {
        let r = run_one(ctx, s).await;
        done(&r);
        results.push(r);
    }
    report(results, lab, source, strict, t0.elapsed())
}

/// The report of some results.
pub fn report(
    results: Vec<ScenarioResult>,
    lab: &str,
    source: &str,
    strict: bool,
    took: Duration,
) -> CheckReport {
    let count = |st: Status| results.iter().filter(|r| r.status == st).count();
    CheckReport {
        lab: lab.into(),
        source: source.into(),
        passed: count(Status::Pass),
        failed: count(Status::Fail),
        not_applicable: count(Status::NotApplicable),
        strict,
        duration_ms: took.as_secs_f64() * 1e3,
        chapters: chapters(&results),
        scenarios: results,
    }
}

/// The JSON Schema of `lab check --json`, pretty-printed.
pub fn report_schema_json() -> String {
    let mut s = serde_json::to_string_pretty(&schemars::schema_for!(CheckReport))
        .expect("schema serialises");
    s.push('\n');
    s
}
