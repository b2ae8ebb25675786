//! `lab check [all|chN|scenario]... [--list] [--json] [--junit FILE] [--strict] [--progress]
//! [--next] [--watch] [--endpoint SERVICE=URL]`.
//!
//! Uses the running lab recorded under the state dir; without one, starts the lab from
//! lab.toml on free ports in a private state dir, runs the scenarios, and stops it again; with
//! `--endpoint`, checks services at those addresses instead. Each scenario's result is printed
//! as it finishes; the run ends with each chapter's standing, also kept in
//! `.lab/progress.json` (`--progress` shows it, `--next` runs the first scenario not passing).

use std::time::{Duration, Instant};

use lab_supervisor::Lab;
use lab_supervisor::state::State;

use crate::check::{self, CheckReport, ScenarioResult, Status, progress::Progress};
use crate::cli::CheckArgs;
use crate::config::lower::{LowerOptions, PortMode, lower};
use crate::config::{LabConfig, Run};
use crate::error::exit;
use crate::render::{self, FAIL, OK, Style, table::Table};

use super::context::{ctx_from, ctx_from_endpoints};
use super::env::Env;

/// The mark of a scenario that does not apply.
const NA: &str = "–";

pub async fn run(env: &Env, args: CheckArgs) -> anyhow::Result<u8> {
    let style = env.style;
    if args.list {
        let mut t = Table::new(&["SCENARIO", "CHAPTER", "BOOK SECTION", "WHAT IT CHECKS"]);
        for s in check::registry() {
            t.row(vec![
                s.name.into(),
                format!("ch{}", s.chapter),
                s.section.into(),
                s.summary.into(),
            ]);
        }
        render::line(t.render(&style).trim_end());
        return Ok(exit::OK);
    }
    let progress_path = env.state_dir.join("progress.json");
    if args.progress {
        let p = Progress::load(&progress_path);
        render::line(progress_text(&p, &style));
        return Ok(exit::OK);
    }
    let scenarios = if args.next {
        let p = Progress::load(&progress_path);
        match p.next(&check::registry()) {
            Some(name) => {
                let why = match p.status(name) {
                    Some(st) => format!("it is {} since the last run", st.as_str()),
                    None => "it has not run yet".to_owned(),
                };
                render::line(format!("next: {name} ({why})"));
                check::select_many(check::registry(), &[name.to_owned()])
                    .map_err(anyhow::Error::msg)?
            }
            None => {
                render::line(style.green("every scenario passes: nothing is next"));
                return Ok(exit::OK);
            }
        }
    } else {
        match check::select_many(check::registry(), &args.target) {
            Ok(s) => s,
            Err(msg) => {
                return Err(crate::error::Usage::lab(msg.to_string()));
            }
        }
    };
    let endpoints = match parse_endpoints(&args.endpoint) {
        Ok(e) => e,
        Err(msg) => {
            return Err(crate::error::Usage::lab(msg.to_string()));
        }
    };
    let cfg = if !endpoints.is_empty() && !env.file.exists() {
        None
    } else {
        Some(env.load_config()?)
    };
    if args.watch {
        let Some(cfg) = cfg else {
            return Err(crate::error::Usage::lab(
                "--watch needs lab.toml (it watches the folders of its `command` services)"
                    .to_string(),
            ));
        };
        return watch(env, &cfg, &scenarios, &args).await;
    }
    let report = once(env, cfg.as_ref(), &scenarios, &args, &endpoints).await?;
    let Some(report) = report else {
        return Ok(exit::FAILED);
    };
    finish(env, &args, &report)
}

/// What to do with a finished run: JUnit, JSON or the summary, progress; the exit code.
fn finish(env: &Env, args: &CheckArgs, report: &CheckReport) -> anyhow::Result<u8> {
    if let Some(path) = &args.junit {
        std::fs::write(path, crate::render::junit::render(report))
            .map_err(|e| anyhow::anyhow!("cannot write JUnit to {}: {e}", path.display()))?;
    }
    let mut p = Progress::load(&env.state_dir.join("progress.json"));
    p.record(report);
    if let Err(e) = p.save(&env.state_dir.join("progress.json")) {
        eprintln!(
            "lab: cannot keep the progress in {}: {e}",
            env.state_dir.display()
        );
    }
    if args.json {
        render::line(serde_json::to_string_pretty(report)?);
    } else {
        render::line(summary_text(report, &env.style));
    }
    Ok(if report.ok() { exit::OK } else { exit::FAILED })
}

/// `SERVICE=URL` pairs, in order.
fn parse_endpoints(raw: &[String]) -> Result<Vec<(String, String)>, String> {
    raw.iter()
        .map(|e| {
            let (svc, url) = e.split_once('=').ok_or_else(|| {
                format!("--endpoint {e}: write SERVICE=URL, e.g. web-api=http://127.0.0.1:3001")
            })?;
            let url = url.trim_end_matches('/');
            let rest = url
                .strip_prefix("http://")
                .or_else(|| url.strip_prefix("https://"))
                .ok_or_else(|| {
                    format!("--endpoint {e}: the URL must start with http:// or https://")
                })?;
            if rest
                .rsplit_once(':')
                .is_none_or(|(_, p)| p.parse::<u16>().is_err())
            {
                return Err(format!(
                    "--endpoint {e}: the URL needs a port, e.g. http://127.0.0.1:3001"
                ));
            }
            Ok((svc.trim().to_owned(), url.to_owned()))
        })
        .collect()
}

/// One run: against the endpoints, the running lab, or a lab started for it. `None`: the lab
/// could not start (already reported).
async fn once(
    env: &Env,
    cfg: Option<&LabConfig>,
    scenarios: &[check::Scenario],
    args: &CheckArgs,
    endpoints: &[(String, String)],
) -> anyhow::Result<Option<CheckReport>> {
    let style = env.style;
    let json = args.json;
    // Progress goes to stderr so that `--json` stdout stays one document.
    let say = move |m: String| {
        if !json {
            render::line(m)
        } else {
            eprintln!("{m}")
        }
    };
    let mut print = move |r: &ScenarioResult| {
        if json {
            eprintln!("{}", result_line(r, &Style::plain()));
        } else {
            render::line(result_text(r, &style).trim_end());
        }
    };
    let engine = engine(cfg, args);
    if !endpoints.is_empty() {
        say(format!(
            "checking the services at {} ({} scenario(s)); lab started none of them",
            endpoints
                .iter()
                .map(|(s, u)| format!("{s}={u}"))
                .collect::<Vec<_>>()
                .join(", "),
            scenarios.len()
        ));
        let dir = tempfile::tempdir()?;
        let ctx = ctx_from_endpoints(
            cfg,
            endpoints,
            &env.state_dir.join("tls"),
            dir.path(),
            engine,
        )?;
        let name = cfg.map_or("endpoints", |c| c.name.as_str());
        return Ok(Some(
            check::run(&ctx, scenarios, name, "endpoints", args.strict, &mut print).await,
        ));
    }
    let cfg = cfg.expect("a lab.toml when no endpoint is given");
    let running = State::load(&env.state_dir)?.filter(|s| {
        s.instances
            .iter()
            .any(|r| r.container.is_some() || r.process.is_some_and(|p| p.is_alive()))
    });
    if let Some(state) = running {
        say(format!(
            "checking the running lab {} ({} scenario(s))",
            state.name,
            scenarios.len()
        ));
        let ctx = ctx_from(cfg, &state, &env.state_dir.join("tls"), engine)?;
        return Ok(Some(
            check::run(
                &ctx,
                scenarios,
                &state.name,
                "running",
                args.strict,
                &mut print,
            )
            .await,
        ));
    }
    say(format!(
        "no lab is running here: starting {} on free ports for the checks",
        cfg.name
    ));
    if let Some(d) = crate::config::unrunnable(cfg, cfg.runtime) {
        eprintln!("{d}");
        return Ok(None);
    }
    let dir = env.state_dir.join(format!("check-{}", std::process::id()));
    let lowered = lower(
        cfg,
        &LowerOptions {
            ports: PortMode::Ephemeral,
            state_dir: dir.clone(),
            exe: std::env::current_exe()?,
            shape: crate::config::lower::Shape::of(cfg.runtime),
            // A learner's program may send to localhost:8125 whatever STATSD says.
            keep_statsd: cfg
                .services
                .iter()
                .any(|s| matches!(s.run, Run::Command { .. })),
        },
    );
    let lowered = match lowered {
        Ok(l) => l,
        Err(d) => {
            eprintln!("{d}");
            return Ok(None);
        }
    };
    for n in &lowered.notes {
        say(format!("note: {n}"));
    }
    if let Err(e) = crate::images::ensure_for(cfg, &lowered.plan, &say).await {
        eprintln!("lab: cannot start the lab for the checks: {e:#}");
        return Ok(None);
    }
    let cancel = crate::shutdown::on_signals();
    let (lab, breakdown) =
        match Lab::up(lowered.plan, lab_supervisor::events::discard(), cancel).await {
            Ok(up) => up,
            Err(e) => {
                eprintln!("lab: cannot start the lab for the checks: {e}");
                if let Some(hint) = super::running::start_hint(&e, cfg) {
                    eprintln!("  = hint: {hint}");
                }
                if let Some(log) = e.log() {
                    for l in lab_supervisor::logs::last_lines(log, Some(15)) {
                        eprintln!("  {l}");
                    }
                }
                return Ok(None);
            }
        };
    say(format!("lab up in {}", render::ms(breakdown.total)));
    let state = lab.state();
    let ctx = ctx_from(cfg, &state, &dir.join("tls"), engine)?;
    let report = check::run(
        &ctx,
        scenarios,
        &cfg.name,
        "started",
        args.strict,
        &mut print,
    )
    .await;
    lab.stop().await;
    if let Some(d) = &state.docker
        && let Err(e) = lab_supervisor::down::sweep_docker(d, true).await
    {
        eprintln!("lab: cannot remove the checks' Docker objects: {e}");
    }
    let _ = std::fs::remove_dir_all(&dir);
    Ok(Some(report))
}

/// `--proxy-engine`, else the lab's `[proxy] engine`, else builtin.
pub(crate) fn engine(
    cfg: Option<&LabConfig>,
    args: &CheckArgs,
) -> crate::config::model::ProxyEngine {
    use crate::config::model::ProxyEngine;
    match args.proxy_engine {
        Some(e) => e,
        None => cfg
            .and_then(|c| c.proxy.as_ref())
            .map_or(ProxyEngine::Builtin, |p| p.engine),
    }
}

// === watch ===

/// The folders a `command` service's code lives in: its `cwd`, narrowed to the folder of its
/// script where an argument names a file (`recipe-api/producer-grpc.js` → `recipe-api/`).
fn watched_folders(cfg: &LabConfig) -> Vec<(String, std::path::PathBuf)> {
    let mut out = Vec::new();
    for s in &cfg.services {
        let Run::Command { argv, cwd } = &s.run else {
            continue;
        };
        let scripts: Vec<std::path::PathBuf> = argv
            .iter()
            .skip(1)
            .map(|a| cwd.join(a))
            .filter(|p| p.is_file())
            .filter_map(|p| p.parent().map(std::path::Path::to_path_buf))
            .collect();
        if scripts.is_empty() {
            out.push((s.name.clone(), cwd.clone()));
        } else {
            for d in scripts {
                out.push((s.name.clone(), d));
            }
        }
    }
    out
}

/// Newest modification time of any file under `dir` (skipping `.lab`, `.git`, `node_modules`,
/// `target`), and how many files.
fn newest(dir: &std::path::Path, depth: usize) -> (Option<std::time::SystemTime>, usize) {
    let mut best = None;
    let mut n = 0;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return (None, 0);
    };
    for e in rd.flatten() {
        let name = e.file_name();
        let name = name.to_string_lossy();
        if matches!(name.as_ref(), ".lab" | ".git" | "node_modules" | "target") {
            continue;
        }
        let Ok(meta) = e.metadata() else { continue };
        if meta.is_dir() {
            if depth > 0 {
                let (b, k) = newest(&e.path(), depth - 1);
                n += k;
                best = best.max(b);
            }
        } else {
            n += 1;
            best = best.max(meta.modified().ok());
        }
    }
    (best, n)
}

/// A fingerprint of every watched folder: (newest mtime, file count) each.
fn fingerprint(
    folders: &[(String, std::path::PathBuf)],
) -> Vec<(Option<std::time::SystemTime>, usize)> {
    folders.iter().map(|(_, d)| newest(d, 4)).collect()
}

/// Restart the instances of `services` in the running lab (SIGTERM to each process group: the
/// supervisor starts it again), and wait until each has a new healthy process.
async fn restart_running(env: &Env, services: &[String]) -> anyhow::Result<()> {
    let Some(before) = State::load(&env.state_dir)? else {
        return Ok(());
    };
    let old: Vec<(String, u32)> = before
        .instances
        .iter()
        .filter(|i| services.contains(&i.service))
        .filter_map(|i| i.process.map(|p| (i.id(), p.pid)))
        .collect();
    for (_, pid) in &old {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(*pid as i32),
            nix::sys::signal::Signal::SIGTERM,
        );
    }
    let t0 = Instant::now();
    loop {
        let Some(now) = State::load(&env.state_dir)? else {
            anyhow::bail!("the lab stopped while {} restarted", services.join(", "));
        };
        let done = old.iter().all(|(id, pid)| {
            now.instances.iter().any(|i| {
                &i.id() == id
                    && i.process.is_some_and(|p| p.pid != *pid && p.is_alive())
                    && i.health == lab_supervisor::state::Health::Healthy
            })
        });
        if done {
            return Ok(());
        }
        if t0.elapsed() > Duration::from_secs(30) {
            anyhow::bail!(
                "{} did not come back healthy within 30 s (with `restart = \"never\"` the lab does not start it again)",
                services.join(", ")
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await; // poll the state, under the deadline
    }
}

async fn watch(
    env: &Env,
    cfg: &LabConfig,
    scenarios: &[check::Scenario],
    args: &CheckArgs,
) -> anyhow::Result<u8> {
    let folders = watched_folders(cfg);
    if folders.is_empty() {
        return Err(crate::error::Usage::lab(
            "--watch watches the folders of `command` services, and this lab has none".to_string(),
        ));
    }
    let cancel = crate::shutdown::on_signals();
    let mut code = exit::OK;
    let print_watching = || {
        render::line(format!(
            "watching {} (Ctrl-C stops)",
            folders
                .iter()
                .map(|(s, d)| format!("{} for {s}", d.display()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    };
    let mut last = fingerprint(&folders);
    let mut report = once(env, Some(cfg), scenarios, args, &[]).await?;
    if let Some(r) = &report {
        code = finish(env, args, r)?;
    }
    print_watching();
    loop {
        tokio::select! {
            () = cancel.cancelled() => return Ok(code),
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let now = fingerprint(&folders);
        if now == last {
            continue;
        }
        // Debounce: wait until nothing changes for 300 ms (an editor writes in steps).
        let mut settled = now;
        loop {
            tokio::time::sleep(Duration::from_millis(300)).await;
            let again = fingerprint(&folders);
            if again == settled {
                break;
            }
            settled = again;
        }
        let changed: Vec<String> = folders
            .iter()
            .zip(last.iter().zip(&settled))
            .filter(|(_, (a, b))| a != b)
            .map(|((s, _), _)| s.clone())
            .collect();
        last = settled;
        render::line(format!("\nchanged: {} — running again", changed.join(", ")));
        let running = State::load(&env.state_dir)?.is_some_and(|s| {
            s.instances
                .iter()
                .any(|r| r.process.is_some_and(|p| p.is_alive()))
        });
        if running {
            render::line(format!(
                "restarting {} in the running lab",
                changed.join(", ")
            ));
            if let Err(e) = restart_running(env, &changed).await {
                render::line(env.style.red(&format!("{e:#}")));
            }
        }
        // Without a running lab, each run starts its own: the changed code is what runs.
        report = once(env, Some(cfg), scenarios, args, &[]).await?;
        if let Some(r) = &report {
            code = finish(env, args, r)?;
        }
        print_watching();
    }
}

// === text ===

fn mark(st: Status, style: &Style) -> String {
    match st {
        Status::Pass => style.green(OK),
        Status::Fail => style.red(FAIL),
        Status::NotApplicable => style.dim(NA),
    }
}

/// One line for a result (the progress line of `--json`).
fn result_line(s: &ScenarioResult, style: &Style) -> String {
    let engine = s
        .engine
        .as_ref()
        .map(|e| format!("  [{e}]"))
        .unwrap_or_default();
    let tail = match &s.not_applicable {
        Some(na) => format!("  not applicable: {}", na.why),
        None => format!(
            "  {}",
            render::ms(Duration::from_secs_f64(s.duration_ms / 1e3))
        ),
    };
    format!(
        "{} {}{engine}  {}{tail}",
        mark(s.status, style),
        style.bold(&s.name),
        style.dim(&s.section),
    )
}

/// How long a seen value may be in the table (`--json` has it whole).
const CUT: usize = 240;

/// One scenario's block: its line, what it ran against, its assertions (expected and got,
/// with a hint, when one failed), figures and notes.
pub fn result_text(s: &ScenarioResult, style: &Style) -> String {
    let mut out = result_line(s, style);
    out.push('\n');
    for subj in &s.subjects {
        out.push_str(&format!("    {} {}\n", style.dim("against"), subj.what));
    }
    if let Some(na) = &s.not_applicable {
        out.push_str(&format!("    {} {}\n", style.dim("to apply it:"), na.fix));
    }
    for a in &s.assertions {
        let m = if a.ok {
            style.green(OK)
        } else {
            style.red(FAIL)
        };
        if a.ok {
            out.push_str(&format!(
                "    {m} {}  {}\n",
                a.name,
                style.dim(&check::truncate(&a.detail, CUT))
            ));
            continue;
        }
        out.push_str(&format!("    {m} {}\n", a.name));
        if let Some(e) = &a.expected {
            out.push_str(&format!("        expected: {e}\n"));
        }
        out.push_str(&format!(
            "        got:      {}\n",
            check::truncate(&a.detail, CUT)
        ));
        let hint = match &a.hint {
            Some(h) => format!("{h} (book: {})", s.section),
            None => format!("see the book: {}", s.section),
        };
        out.push_str(&format!("        {} {hint}\n", style.dim("hint:")));
    }
    for f in &s.figures {
        out.push_str(&format!(
            "    {} {} = {} {}\n",
            style.dim("•"),
            f.name,
            f.value,
            f.unit
        ));
    }
    for n in &s.notes {
        out.push_str(&format!("    {} {n}\n", style.dim("note:")));
    }
    if let Some(e) = &s.error {
        out.push_str(&format!("    {} {}\n", style.red("error:"), e));
    }
    out
}

/// The end of a run: each chapter's standing, the totals and the time.
pub fn summary_text(r: &CheckReport, style: &Style) -> String {
    let mut out = String::from("\n");
    for c in &r.chapters {
        out.push_str(&format!("{}\n", c.line()));
    }
    let mut summary = format!("{} passed, {} failed", r.passed, r.failed);
    if r.not_applicable > 0 {
        summary.push_str(&format!(
            ", {} not applicable{}",
            r.not_applicable,
            if r.strict {
                " (failures with --strict)"
            } else {
                ""
            }
        ));
    }
    summary.push_str(&format!(
        " in {}",
        render::ms(Duration::from_secs_f64(r.duration_ms / 1e3))
    ));
    out.push_str(&if r.ok() {
        style.green(&summary)
    } else {
        style.red(&summary)
    });
    out
}

/// `lab check --progress`.
fn progress_text(p: &Progress, style: &Style) -> String {
    let all = check::registry();
    let mut out = String::new();
    if p.scenarios.is_empty() {
        return "no progress yet: run `lab check` (or `lab check --next`)".into();
    }
    let mut chapter = 0;
    for s in &all {
        if s.chapter != chapter {
            chapter = s.chapter;
            let line = p.chapter_line(&all, chapter);
            out.push_str(&format!("{}\n", style.bold(&line)));
        }
        let (m, what) = match p.status(s.name) {
            Some(st) => (mark(st, style), st.as_str().to_owned()),
            None => (style.dim("·"), "not run yet".to_owned()),
        };
        out.push_str(&format!("  {m} {}  {}\n", s.name, style.dim(&what)));
    }
    if let Some(n) = p.next(&all) {
        out.push_str(&format!("next: `lab check {n}` (or `lab check --next`)"));
    }
    out.trim_end().to_owned()
}
