//! `lab load TARGET`: run the load generator, show progress on a terminal, print autocannon's
//! tables (or `--json`), and exit 1 when an `--sla` bound is breached.

use std::io::IsTerminal;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use lab_loadgen::run::Live;
use lab_loadgen::{Plan, Report, Stop, Target};
use lab_supervisor::state::State;

use crate::cli::LoadArgs;
use crate::error::exit;
use crate::render::{self, FAIL, OK, Style, table::Table};

use super::env::Env;

pub fn run(env: &Env, mut args: LoadArgs) -> anyhow::Result<u8> {
    if args.compare {
        return compare(
            env,
            args.connections.unwrap_or(10),
            args.duration.unwrap_or(Duration::from_secs(5)),
            args.proxy_engine,
            args.json,
        );
    }
    // A preset of lab.toml by name: its settings, under whatever the command line gives.
    let mut preset_sla = None;
    let mut target = args.target.clone().unwrap_or_default();
    if !target.contains('/') && !target.contains("://") {
        let presets = crate::config::load(&env.file)
            .map(|c| c.load)
            .unwrap_or_default();
        if let Some(p) = presets.into_iter().find(|p| p.name == target) {
            target = p.target;
            args.connections = args.connections.or(p.connections);
            args.pipelining = args.pipelining.or(p.pipelining);
            if args.duration.is_none() && args.amount.is_none() {
                args.duration = p.duration;
                args.amount = p.amount;
            }
            args.rate = args.rate.or(p.rate);
            args.method = args.method.or(p.method);
            let mut headers: Vec<String> =
                p.headers.iter().map(|(k, v)| format!("{k}: {v}")).collect();
            headers.append(&mut args.headers);
            args.headers = headers;
            if args.body.is_none() && args.body_file.is_none() {
                args.body = p.body;
            }
            args.http2 |= p.http2;
            args.timeout = args.timeout.or(p.timeout);
            preset_sla = p.sla;
        }
    }
    let target = match resolve(env, &target) {
        Ok(t) => t,
        Err(e) => {
            return Err(crate::error::Usage::lab(e));
        }
    };
    let mut plan = Plan::new(target);
    plan.connections = args.connections.unwrap_or(10);
    plan.pipelining = args.pipelining.unwrap_or(1);
    plan.stop = match (args.amount, args.duration) {
        (Some(n), _) => Stop::Amount(n),
        (None, Some(d)) => Stop::Duration(d),
        (None, None) => Stop::Duration(Duration::from_secs(10)),
    };
    plan.rate = args.rate;
    plan.method = args.method.as_deref().unwrap_or("GET").to_ascii_uppercase();
    plan.timeout = args.timeout.unwrap_or(Duration::from_secs(10));
    if let Some(w) = args.workers {
        plan.workers = w;
    }
    plan.warmup = args.warmup.unwrap_or_default();
    for h in &args.headers {
        let Some((k, v)) = h.split_once(':') else {
            return Err(crate::error::Usage::lab(format!(
                "header {h:?} is not `Name: value`"
            )));
        };
        plan.headers
            .push((k.trim().to_owned(), v.trim().to_owned()));
    }
    plan.body = match (&args.body, &args.body_file) {
        (Some(b), _) => b.clone().into(),
        (None, Some(f)) => std::fs::read(f)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", f.display()))?
            .into(),
        (None, None) => Default::default(),
    };
    if let Some(query) = &args.graphql {
        let variables: serde_json::Value = match args
            .variables
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
        {
            Ok(v) => v.unwrap_or(serde_json::Value::Null),
            Err(e) => {
                return Err(crate::error::Usage::lab(format!(
                    "--variables is not JSON: {e}"
                )));
            }
        };
        plan.method = "POST".into();
        plan.body =
            serde_json::to_vec(&serde_json::json!({ "query": query, "variables": variables }))?
                .into();
        plan.headers
            .push(("Content-Type".into(), "application/json".into()));
        if plan.target.path == "/" {
            plan.target.path = "/graphql".into();
        }
    }
    plan.http2 = args.http2;
    if plan.target.tls {
        plan.tls = Some(if args.insecure {
            lab_loadgen::tls::insecure()
        } else {
            let ca = args
                .ca
                .clone()
                .unwrap_or_else(|| env.state_dir.join("tls").join("ca.crt"));
            if !ca.exists() {
                return Err(crate::error::Usage::lab(format!(
                    "{} is https, and there is no CA to trust at {}; pass --ca FILE, or --insecure",
                    plan.target.url(),
                    ca.display()
                )));
            }
            lab_net::tls::client_config(&ca)?
        });
    }
    if let Some(method) = &args.grpc {
        let message = match crate::check::wire::grpc_message(method, args.data.as_deref()) {
            Ok(m) => m,
            Err(e) => {
                return Err(crate::error::Usage::lab(e));
            }
        };
        plan.http2 = true;
        plan.grpc = true;
        plan.method = "POST".into();
        plan.target.path = format!("/{}", method.trim_start_matches('/'));
        plan.headers
            .push(("content-type".into(), "application/grpc".into()));
        plan.headers.push(("te".into(), "trailers".into()));
        let mut framed = vec![0u8];
        framed.extend_from_slice(&(message.len() as u32).to_be_bytes());
        framed.extend_from_slice(&message);
        plan.body = framed.into();
    }
    if let Err(e) = plan.validate() {
        return Err(crate::error::Usage::lab(e));
    }
    let bounds = match args
        .sla
        .as_deref()
        .or(preset_sla.as_deref())
        .map(lab_loadgen::sla::parse)
        .transpose()
    {
        Ok(b) => b.unwrap_or_default(),
        Err(e) => {
            return Err(crate::error::Usage::lab(e));
        }
    };

    let what = match plan.stop {
        Stop::Duration(d) => humantime::format_duration(d).to_string(),
        Stop::Amount(n) => format!("{n} requests"),
    };
    let rate = plan
        .rate
        .map(|r| format!(" at {r} req/s"))
        .unwrap_or_default();
    eprintln!(
        "Running {what} test @ {}{rate}\n{} connections{}, {} worker thread(s)",
        plan.target.url(),
        plan.connections,
        if plan.pipelining > 1 {
            format!(" with {} pipelining factor", plan.pipelining)
        } else {
            String::new()
        },
        plan.workers
    );

    let live = Arc::new(Live::default());
    let started_ms = lab_supervisor::faults::now_ms();
    let progress = std::io::stderr().is_terminal() && !args.json;
    let outcome = std::thread::scope(|scope| {
        let worker = scope.spawn(|| lab_loadgen::run::run(&plan, live.clone()));
        let t0 = Instant::now();
        while !worker.is_finished() {
            std::thread::sleep(Duration::from_millis(100));
            if progress {
                let done = live.answered.load(Relaxed);
                let failed = live.failed.load(Relaxed);
                let secs = t0.elapsed().as_secs_f64();
                let (frac, total) = match plan.stop {
                    Stop::Duration(d) => {
                        let all = (d + plan.warmup).as_secs_f64();
                        (secs / all, format!("{secs:4.1}s/{all:.0}s"))
                    }
                    Stop::Amount(n) => (done as f64 / n as f64, format!("{done}/{n}")),
                };
                let filled = (frac.clamp(0.0, 1.0) * 30.0) as usize;
                eprint!(
                    "\r  [{}{}] {total}  {:>9.0} req/s  {failed} errors   ",
                    "#".repeat(filled),
                    "-".repeat(30 - filled),
                    done as f64 / secs.max(1e-9)
                );
            }
        }
        if progress {
            eprint!("\r{}\r", " ".repeat(90));
        }
        worker.join().expect("load thread")
    })?;
    let report = Report::new(&plan, &outcome);
    let faults = faults_during(env, started_ms);
    if let Some(path) = &args.histogram {
        let title = format!(
            "lab load {} · {} answered · {:.0} req/s",
            plan.target.url(),
            report.requests.dist.total,
            report.rps()
        );
        std::fs::write(
            path,
            lab_loadgen::svg::percentile_plot(&outcome.measured.latency_us, &title),
        )
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    let verdicts: Vec<_> = bounds.iter().map(|b| b.check(&report)).collect();
    let kept = (!args.no_record)
        .then(|| record(env, &plan, &report, (&verdicts, &faults), &outcome))
        .flatten();
    if args.json {
        let mut v = serde_json::to_value(&report)?;
        v["sla"] = serde_json::to_value(&verdicts)?;
        v["faults"] = serde_json::to_value(&faults)?;
        render::line(serde_json::to_string_pretty(&v)?);
    } else {
        render::line(tables(&report, &env.style));
        if !faults.is_empty() {
            render::line(format!(
                "{} faults were in effect during this run, so its figures include them:",
                env.style.yellow(render::WARN)
            ));
            for f in &faults {
                render::line(format!("  {}", f.line()));
            }
        }
        for v in &verdicts {
            let mark = if v.ok {
                env.style.green(OK)
            } else {
                env.style.red(FAIL)
            };
            render::line(format!("{mark} SLA {}: measured {}", v.bound, v.measured));
        }
    }
    if let Some(note) = kept {
        eprintln!("{note}");
    }
    Ok(if verdicts.iter().all(|v| v.ok) {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// A fault that overlapped a run, as `lab load` reports it (times from the run's start).
#[derive(Debug, serde::Serialize)]
struct DuringRun {
    id: String,
    kind: String,
    target: String,
    what: String,
    /// Seconds after the run began (negative: already in effect).
    from_s: f64,
    /// When it ended, if it did before the run's end.
    until_s: Option<f64>,
}

impl DuringRun {
    fn line(&self) -> String {
        let at = |s: f64| {
            if s <= 0.0 {
                "the start".to_owned()
            } else {
                format!("+{s:.1}s")
            }
        };
        match self.until_s {
            Some(u) if (u - self.from_s).abs() < 0.05 => {
                format!(
                    "{} {} {} at {}",
                    self.id,
                    self.what,
                    self.target,
                    at(self.from_s)
                )
            }
            Some(u) => format!(
                "{} {} on {} from {} to +{u:.1}s",
                self.id,
                self.what,
                self.target,
                at(self.from_s)
            ),
            None => format!(
                "{} {} on {} from {} on",
                self.id,
                self.what,
                self.target,
                at(self.from_s)
            ),
        }
    }
}

/// The faults of the lab here in effect at some time since `started_ms`.
fn faults_during(env: &Env, started_ms: i64) -> Vec<DuringRun> {
    let Ok(f) = lab_supervisor::faults::Faults::load(&env.state_dir) else {
        return Vec::new();
    };
    let now = lab_supervisor::faults::now_ms();
    let rel = |ms: i64| (ms - started_ms) as f64 / 1000.0;
    f.overlapping(started_ms, now)
        .into_iter()
        .map(|x| DuringRun {
            what: x.describe(),
            from_s: rel(x.since_ms),
            until_s: x.ended_ms.or(x.until_ms.filter(|u| *u <= now)).map(rel),
            id: x.id,
            kind: x.kind,
            target: x.instance,
        })
        .collect()
}

/// A URL as given, or `SERVICE[/path]` of the running lab (its first instance).
/// The running lab's hub, when `target` is one of the lab's own addresses (an instance or a
/// proxy frontend): results of runs at anything else are not the lab's to keep.
fn lab_hub_for(env: &Env, target: &Target) -> Option<String> {
    let state = State::load(&env.state_dir).ok()??;
    let loopback = |h: &str| matches!(h, "localhost" | "127.0.0.1" | "::1" | "[::1]" | "0.0.0.0");
    let ours = state.instances.iter().any(|r| {
        r.address.rsplit_once(':').is_some_and(|(host, port)| {
            port.parse() == Ok(target.port)
                && (host == target.host || (loopback(host) && loopback(&target.host)))
        })
    });
    let hub = state
        .instances
        .iter()
        .find(|r| r.service == crate::config::model::HUB_SERVICE)?;
    ours.then(|| hub.address.clone())
}

/// Send the result to the lab's hub for its Load page; a note to print either way (a run is
/// never failed by this), None when the target is not the lab's.
fn record(
    env: &Env,
    plan: &Plan,
    report: &Report,
    (verdicts, faults): (&[lab_loadgen::sla::Verdict], &[DuringRun]),
    outcome: &lab_loadgen::run::Outcome,
) -> Option<String> {
    let hub = lab_hub_for(env, &plan.target)?;
    let doc = serde_json::json!({
        "report": report,
        "sla": verdicts,
        "faults": faults,
        "per_second": outcome.measured.per_second,
        "percentiles": lab_loadgen::svg::percentile_points(&outcome.measured.latency_us, 100)
            .into_iter()
            .map(|(x, y)| [x, y])
            .collect::<Vec<_>>(),
    });
    let url = format!("http://{hub}/api/loads");
    let sent = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(anyhow::Error::from)
        .and_then(|rt| {
            rt.block_on(lab_net::client::Client::new().request(
                hyper::Method::POST,
                &url,
                &[],
                Some(("application/json", doc.to_string().into())),
                Duration::from_secs(5),
            ))
            .map_err(anyhow::Error::from)
        });
    Some(match sent {
        Ok(r) if r.status == 201 => {
            let page = r
                .json()
                .ok()
                .and_then(|v| v["page"].as_str().map(str::to_owned));
            format!(
                "kept on the dashboard: http://{hub}{}",
                page.as_deref().unwrap_or("/load")
            )
        }
        Ok(r) => format!(
            "lab: the hub did not keep the result: {} {}",
            r.status,
            r.text()
        ),
        Err(e) => format!("lab: could not send the result to the hub at {hub}: {e}"),
    })
}

fn resolve(env: &Env, target: &str) -> anyhow::Result<Target> {
    if target.contains("://") {
        return Ok(Target::parse(target)?);
    }
    let (service, path) = match target.find('/') {
        Some(i) => (&target[..i], &target[i..]),
        None => (target, "/"),
    };
    let state = State::load(&env.state_dir)?.ok_or_else(|| {
        anyhow::anyhow!("{target:?} is not a URL and no lab is running here to name a service of (`lab up` first, or give http://host:port/path)")
    })?;
    let inst = state
        .instances
        .iter()
        .find(|r| r.service == service)
        .ok_or_else(|| {
            let names: Vec<&str> = state.instances.iter().map(|r| r.service.as_str()).collect();
            anyhow::anyhow!(
                "the running lab has no service {service:?}; it has: {}",
                names.join(", ")
            )
        })?;
    // An https service is probed over https: address it the same way.
    let https = matches!(inst.health_check, lab_supervisor::HealthCheck::Https { .. });
    let scheme = if https { "https" } else { "http" };
    Ok(Target::parse(&format!(
        "{scheme}://{}{path}",
        inst.address
    ))?)
}

fn fmt_ms(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.2} ms")
    }
}

/// autocannon's two tables, then counts.
fn tables(r: &Report, style: &Style) -> String {
    let l = &r.latency;
    let mut lat = Table::new(&["Stat", "2.5%", "50%", "97.5%", "99%", "Avg", "Stdev", "Max"]);
    lat.row(vec![
        "Latency".into(),
        fmt_ms(l.p("p2_5")),
        fmt_ms(l.p("p50")),
        fmt_ms(l.p("p97_5")),
        fmt_ms(l.p("p99")),
        fmt_ms(l.average),
        fmt_ms(l.stddev),
        fmt_ms(l.max),
    ]);
    let q = &r.requests.dist;
    let t = &r.throughput;
    let mut rps = Table::new(&["Stat", "1%", "2.5%", "50%", "97.5%", "Avg", "Stdev", "Min"]);
    let n = |v: f64| format!("{v:.0}");
    rps.row(vec![
        "Req/Sec".into(),
        n(q.p("p1")),
        n(q.p("p2_5")),
        n(q.p("p50")),
        n(q.p("p97_5")),
        format!("{:.1}", q.average),
        format!("{:.1}", q.stddev),
        n(q.min),
    ]);
    let b = |v: f64| {
        if v >= 1e6 {
            format!("{:.2} MB", v / 1e6)
        } else if v >= 1e3 {
            format!("{:.1} kB", v / 1e3)
        } else {
            format!("{v:.0} B")
        }
    };
    rps.row(vec![
        "Bytes/Sec".into(),
        b(t.p("p1")),
        b(t.p("p2_5")),
        b(t.p("p50")),
        b(t.p("p97_5")),
        b(t.average),
        b(t.stddev),
        b(t.min),
    ]);
    let mut out = format!(
        "{}\n{}\n",
        lat.render(style).trim_end(),
        rps.render(style).trim_end()
    );
    out.push_str("\nReq/Sec and Bytes/Sec are sampled once a second; latency is an HDR histogram (µs resolution).\n");
    let codes: Vec<String> = r
        .status_code_stats
        .iter()
        .map(|(k, v)| format!("{k}: {}", v["count"]))
        .collect();
    out.push_str(&format!(
        "{} requests in {:.2}s ({:.0} req/s), {} read; status {}\n",
        r.requests.dist.total,
        r.duration,
        r.rps(),
        b(r.throughput.total),
        if codes.is_empty() {
            "-".into()
        } else {
            codes.join(", ")
        }
    ));
    if r.non2xx > 0 {
        out.push_str(&format!("{} non-2xx responses\n", r.non2xx));
    }
    if r.errors > 0 || r.timeouts > 0 {
        let kinds: Vec<String> = r
            .errors_by_kind
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        out.push_str(&style.red(&format!(
            "{} errors ({}), {} timeouts\n",
            r.errors,
            if kinds.is_empty() {
                "-".into()
            } else {
                kinds.join(", ")
            },
            r.timeouts
        )));
    }
    out.trim_end().to_owned()
}

/// `lab load --compare` and `lab bench protocols`: the protocol table against the running lab.
pub fn compare(
    env: &Env,
    connections: usize,
    run: Duration,
    proxy_engine: Option<crate::config::model::ProxyEngine>,
    json: bool,
) -> anyhow::Result<u8> {
    let cfg = env.load_config()?;
    let Some(state) = State::load(&env.state_dir)? else {
        return Err(crate::error::Usage::lab(
            "the protocol table measures the running lab: `lab up` first",
        ));
    };
    let engine = match proxy_engine {
        Some(e) => e,
        None => cfg
            .proxy
            .as_ref()
            .map_or(crate::config::model::ProxyEngine::Builtin, |p| p.engine),
    };
    let ctx = super::context::ctx_from(&cfg, &state, &env.state_dir.join("tls"), engine)?;
    eprintln!(
        "protocol table: recipe 42, {connections} connections, {} per protocol, proxy engine {}",
        humantime::format_duration(run),
        engine.as_str()
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let table = rt.block_on(crate::check::ch3_load::protocol_table(
        &ctx,
        run,
        connections,
    ))?;
    let rows = &table.rows;
    if json {
        let v: Vec<serde_json::Value> = rows
            .iter()
            .map(|r| serde_json::json!({ "protocol": r.name, "shows": r.shows, "server": r.server, "report": r.report }))
            .collect();
        render::line(serde_json::to_string_pretty(&serde_json::json!({
            "engine": engine.as_str(),
            "rows": v,
            "ran_against": table.subjects.iter().map(|s| &s.what).collect::<Vec<_>>(),
            "notes": table.notes,
        }))?);
    } else {
        let mut t = Table::new(&[
            "PROTOCOL",
            "REQ/S",
            "P50",
            "P97.5",
            "P99",
            "BYTES/ANSWER",
            "ERRORS",
            "WHAT THE ROW SHOWS",
        ]);
        for row in rows {
            let r = &row.report;
            t.row(vec![
                row.name.clone(),
                format!("{:.0}", r.rps()),
                fmt_ms(r.latency.p("p50")),
                fmt_ms(r.latency.p("p97_5")),
                fmt_ms(r.latency.p("p99")),
                format!("{:.0}", r.throughput.total / r.requests.dist.total.max(1.0)),
                (r.errors + r.timeouts + r.non2xx).to_string(),
                row.shows.clone(),
            ]);
        }
        render::line(t.render(&env.style).trim_end());
        for s in &table.subjects {
            render::line(format!("  ran against {}", s.what));
        }
        for n in &table.notes {
            render::line(format!("  note: {n}"));
        }
    }
    let clean = rows
        .iter()
        .all(|r| r.report.errors == 0 && r.report.timeouts == 0 && r.report.non2xx == 0);
    Ok(if clean { exit::OK } else { exit::FAILED })
}
