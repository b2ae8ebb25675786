//! `lab hub`: the observability hub alone in the foreground; and what other commands need to
//! reach a running lab's hub (its `hub.json`, the log search behind `lab logs --query`).

use std::time::Duration;

use serde_json::Value;

use crate::cli::{AlertsArgs, HubArgs};
use crate::error::exit;
use crate::render::{self, Style};

use super::env::Env;
use super::running::{connect, running_config, summary};

pub fn run(env: &Env, args: HubArgs) -> anyhow::Result<u8> {
    let mut config = match crate::config::load(&env.file) {
        Ok(cfg) => crate::config::lower::hub_alone(&cfg, &env.state_dir),
        // No lab.toml here: the book's defaults.
        Err(crate::config::ConfigError::Read { .. }) => None,
        Err(crate::config::ConfigError::Invalid(d)) => {
            return Err(crate::error::Usage::text(d));
        }
    }
    .unwrap_or_default();
    config.data_dir = env.state_dir.join("hub");
    if args.ephemeral_ports {
        config.logs_port = 0;
        config.statsd_port = 0;
        config.zipkin_port = 0;
        config.http_port = 0;
        config.carbon_port = config.carbon_port.map(|_| 0);
        config.otlp_http_port = 0;
        config.otlp_grpc_port = 0;
    }
    // Signals are caught from before the hub answers (a SIGTERM right after it is ready stops
    // it cleanly).
    let rt = super::env::runtime()?;
    let cancel = {
        let _in = rt.enter();
        crate::shutdown::on_signals()
    };
    let running = match lab_hub::start(config.clone()) {
        Ok(r) => r,
        Err(e) => {
            let hint = if matches!(e, lab_hub::HubError::Bind { .. }) {
                "\n  = hint: is a lab (or another hub) already running? `lab status`; or `lab hub --ephemeral-ports`"
            } else {
                ""
            };
            return Err(crate::error::Usage::lab(format!("{e}{hint}")));
        }
    };
    let a = running.addrs;
    config.logs_port = a.logs.port();
    config.statsd_port = a.statsd.port();
    config.zipkin_port = a.zipkin.port();
    config.http_port = a.http.port();
    config.carbon_port = a.carbon.map(|c| c.port());
    config.otlp_http_port = a.otlp_http.port();
    config.otlp_grpc_port = a.otlp_grpc.port();
    // Written like `lab up` writes it, so `lab logs --query` and `lab alerts` find this hub.
    let json_path = env.state_dir.join("hub").join("hub.json");
    if let Err(e) = std::fs::write(&json_path, serde_json::to_vec_pretty(&config)?) {
        eprintln!(
            "lab: cannot write {}: {e} (lab logs --query will not find this hub)",
            json_path.display()
        );
    }
    render::line(summary(&config));
    render::line(format!(
        "data in {}; Ctrl-C stops it. Point services at it with LOGSTASH={} STATSD={} ZIPKIN={} (or OpenTelemetry's OTEL_EXPORTER_OTLP_ENDPOINT=http://{})",
        config.data_dir.display(),
        a.logs,
        a.statsd,
        a.zipkin,
        a.otlp_http
    ));
    rt.block_on(cancel.cancelled());
    running.stop();
    Ok(exit::OK)
}

/// `lab alerts`: the rules, their standing, and with `--history` the events of the last day.
pub async fn alerts(env: &Env, args: AlertsArgs) -> anyhow::Result<u8> {
    let Some(cfg) = running_config(&env.state_dir) else {
        return Err(crate::error::Usage::lab(
            "no hub: this lab has no [hub] (or was never up), so nothing evaluates alerts"
                .to_string(),
        ));
    };
    let base = format!("http://{}", connect(&cfg, cfg.http_port));
    let client = lab_net::client::Client::new();
    let rules = match client
        .get(&format!("{base}/api/alerts"), Duration::from_secs(5))
        .await
    {
        Ok(r) if r.status == 200 => r.json()?,
        Ok(r) => anyhow::bail!("the hub answered {} for its alerts", r.status),
        Err(e) => {
            return Err(crate::error::Usage::lab(format!(
                "the hub at {base} does not answer: {e}\n  = hint: is the lab up? `lab status`"
            )));
        }
    };
    let history = if args.history {
        let url = format!(
            "{base}/api/logs?query={}&since=1d&limit=1000&order=asc",
            crate::check::wire::url_encode("app:hub and type:alert")
        );
        let v: Value = client.get(&url, Duration::from_secs(5)).await?.json()?;
        v["hits"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .map(|h| h["_source"].clone())
            .collect()
    } else {
        Vec::new()
    };
    if args.json {
        render::line(serde_json::to_string_pretty(
            &serde_json::json!({ "rules": rules, "history": history }),
        )?);
        return Ok(exit::OK);
    }
    let style = env.style;
    let mut t = render::table::Table::new(&["RULE", "WATCHES", "STATUS", "FOR", "FIRED", "DETAIL"]);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    for r in rules.as_array().cloned().unwrap_or_default() {
        let watches = match r["rule"]["kind"].as_str() {
            Some("metric") => format!(
                "{} {} {}",
                r["rule"]["target"].as_str().unwrap_or(""),
                r["rule"]["check"].as_str().unwrap_or(""),
                r["rule"]["value"]
            ),
            Some("http") => format!(
                "GET {} = {}",
                r["rule"]["url"].as_str().unwrap_or(""),
                r["rule"]["status"]
            ),
            Some("health") => format!(
                "{} at {} or worse",
                r["rule"]["service"].as_str().unwrap_or(""),
                r["rule"]["state"].as_str().unwrap_or("")
            ),
            _ => "?".into(),
        };
        let status = r["status"].as_str().unwrap_or("?").to_owned();
        let since = r["since_ms"]
            .as_i64()
            .map_or("-".into(), |s| format!("{}s", (now - s).max(0) / 1000));
        t.row_painted(vec![
            (r["rule"]["name"].as_str().unwrap_or("?").to_owned(), None),
            (watches, None),
            (
                status,
                Some(|s: &Style, v: &str| match v {
                    "firing" => s.red(v),
                    "pending" => s.yellow(v),
                    _ => s.green(v),
                }),
            ),
            (since, None),
            (r["fired"].to_string(), None),
            (r["detail"].as_str().unwrap_or("").to_owned(), None),
        ]);
    }
    render::line(t.render(&style).trim_end());
    if args.history {
        render::line("");
        if history.is_empty() {
            render::line("no alert fired or resolved in the last day");
        }
        for h in &history {
            render::line(format!(
                "{} {}",
                style.dim(h["@timestamp"].as_str().unwrap_or("")),
                h["message"].as_str().unwrap_or("")
            ));
        }
    }
    Ok(exit::OK)
}
