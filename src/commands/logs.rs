//! `lab logs [SERVICE|SERVICE#N] [-f] [-n N]`: per-instance log files, prefixed by instance.

use std::collections::HashMap;

use lab_supervisor::logs::{self, Source};
use lab_supervisor::state::State;

use crate::cli::LogsArgs;
use crate::error::exit;
use crate::render;

use super::env::Env;

pub async fn run(env: &Env, args: LogsArgs) -> anyhow::Result<u8> {
    if let Some(q) = &args.query {
        // A service narrows the search to its documents (the book's `app` field).
        let q = match &args.service {
            Some(s) => format!("app:\"{}\" and ({q})", s.split('#').next().unwrap_or(s)),
            None => q.clone(),
        };
        let q = if q.trim().is_empty() {
            "*".to_owned()
        } else {
            q
        };
        let q = if q == "*" { String::new() } else { q };
        return super::running::query_logs(
            env,
            &q,
            args.since.as_deref(),
            args.tail,
            args.json,
            args.follow,
        )
        .await;
    }
    // The running lab's records if any, else whatever lab.toml's services left in the logs dir.
    let mut sources: Vec<(String, Source)> = match State::load(&env.state_dir)? {
        Some(state) => state
            .instances
            .iter()
            .map(|r| {
                (
                    r.service.clone(),
                    Source {
                        label: r.id(),
                        path: r.log.clone(),
                    },
                )
            })
            .collect(),
        None => {
            let cfg = env.load_config()?;
            let dir = env.state_dir.join("logs");
            let proxy = cfg
                .proxy
                .as_ref()
                .map(|_| (crate::config::model::PROXY_SERVICE.to_owned(), 1));
            cfg.services
                .iter()
                .flat_map(|s| (1..=s.replicas).map(move |i| (s.name.clone(), i)))
                .chain(proxy)
                .map(|(svc, i)| {
                    let path = dir.join(logs::log_file_name(&svc, i));
                    (
                        svc.clone(),
                        Source {
                            label: format!("{svc}#{i}"),
                            path,
                        },
                    )
                })
                .filter(|(_, s)| s.path.exists())
                .collect()
        }
    };
    let colour: HashMap<String, usize> = {
        let mut m = HashMap::new();
        for (svc, _) in &sources {
            let n = m.len();
            m.entry(svc.clone()).or_insert(n);
        }
        m
    };
    if let Some(want) = &args.service {
        sources.retain(|(svc, s)| svc == want || &s.label == want);
        if sources.is_empty() {
            return Err(crate::error::Usage::lab(format!(
                "no logs for {want:?}; services are: {}",
                colour.keys().cloned().collect::<Vec<_>>().join(", ")
            )));
        }
    }
    let style = env.style;
    let paint = move |label: &str, text: &str| {
        let svc = label.split('#').next().unwrap_or(label);
        render::line(format!(
            "{} | {text}",
            style.service(colour.get(svc).copied().unwrap_or(0), label)
        ));
    };
    for (_, s) in &sources {
        for l in logs::last_lines(&s.path, Some(args.tail)) {
            paint(&s.label, &l);
        }
    }
    if args.follow {
        let cancel = crate::shutdown::on_signals();
        logs::follow(
            sources.into_iter().map(|(_, s)| s).collect(),
            false,
            cancel.clone(),
            paint,
        )
        .await;
    }
    Ok(exit::OK)
}
