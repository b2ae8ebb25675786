//! `lab hub`: the observability hub alone in the foreground; and what other commands need to
//! reach a running lab's hub (its `hub.json`, the log search behind `lab logs --query`).

use std::time::Duration;

use lab_hub::HubConfig;
use serde_json::Value;

use crate::cli::{AlertsArgs, HubArgs};
use crate::exit;
use crate::render::{self, Style};

use super::Env;

/// The running (or last) hub's config, written by `lab up` to `.lab/hub/hub.json`.
pub fn running_config(state_dir: &std::path::Path) -> Option<HubConfig> {
    lab_hub::load_config(&state_dir.join("hub").join("hub.json")).ok()
}

fn connect(cfg: &HubConfig, port: u16) -> String {
    let host = match cfg.host.to_string().as_str() {
        "0.0.0.0" => "127.0.0.1".to_owned(),
        "::" => "[::1]".to_owned(),
        h if h.contains(':') => format!("[{h}]"),
        h => h.to_owned(),
    };
    format!("{host}:{port}")
}

/// One line naming every endpoint of a hub.
pub fn summary(cfg: &HubConfig) -> String {
    let mut s = format!(
        "hub: logs udp://{} · statsd udp://{} · zipkin http://{} · graphite, prometheus, log search http://{}",
        connect(cfg, cfg.logs_port),
        connect(cfg, cfg.statsd_port),
        connect(cfg, cfg.zipkin_port),
        connect(cfg, cfg.http_port),
    );
    if let Some(c) = cfg.carbon_port {
        s.push_str(&format!(" · carbon tcp://{}", connect(cfg, c)));
    }
    s.push_str(&format!(
        "\ndashboard: http://{}/",
        connect(cfg, cfg.http_port)
    ));
    if !cfg.host.is_loopback() {
        s.push_str(&format!(
            " (open to every host that reaches {}: the dashboard has no login; `[hub] host` \
             left out keeps it on 127.0.0.1)",
            cfg.host
        ));
    }
    s
}

pub fn run(env: &Env, args: HubArgs) -> anyhow::Result<u8> {
    let mut config = match crate::config::load(&env.file) {
        Ok(cfg) => crate::config::lower::hub_alone(&cfg, &env.state_dir),
        // No lab.toml here: the book's defaults.
        Err(crate::config::ConfigError::Read { .. }) => None,
        Err(crate::config::ConfigError::Invalid(d)) => {
            return Err(crate::Usage::text(d));
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
    }
    let running = match lab_hub::start(config.clone()) {
        Ok(r) => r,
        Err(e) => {
            let hint = if matches!(e, lab_hub::HubError::Bind { .. }) {
                "\n  = hint: is a lab (or another hub) already running? `lab status`; or `lab hub --ephemeral-ports`"
            } else {
                ""
            };
            return Err(crate::Usage::lab(format!("{e}{hint}")));
        }
    };
    let a = running.addrs;
    config.logs_port = a.logs.port();
    config.statsd_port = a.statsd.port();
    config.zipkin_port = a.zipkin.port();
    config.http_port = a.http.port();
    config.carbon_port = a.carbon.map(|c| c.port());
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
        "data in {}; Ctrl-C stops it. Point services at it with LOGSTASH={} STATSD={} ZIPKIN={}",
        config.data_dir.display(),
        a.logs,
        a.statsd,
        a.zipkin
    ));
    let rt = super::runtime()?;
    rt.block_on(async {
        let cancel = crate::shutdown::on_signals();
        cancel.cancelled().await;
    });
    running.stop();
    Ok(exit::OK)
}

/// `lab logs --query`: search the running hub; `follow` keeps polling for newer matches.
pub async fn query_logs(
    env: &Env,
    query: &str,
    since: Option<&str>,
    limit: usize,
    json: bool,
    follow: bool,
) -> anyhow::Result<u8> {
    let Some(cfg) = running_config(&env.state_dir) else {
        eprintln!(
            "lab: no hub: this lab has no [hub] (or was never up), so there is no log store to search"
        );
        return Err(crate::Usage::text(format!(
            "  = hint: add `[hub]` to lab.toml and `lab up`; `lab logs` without --query shows instance logs"
        )));
    };
    let base = format!("http://{}/api/logs", connect(&cfg, cfg.http_port));
    let since = since.unwrap_or("15m");
    let client = lab_service_kit::client::Client::new();
    let style = env.style;
    let mut url = format!(
        "{base}?query={}&since={}&limit={limit}",
        crate::url_encode(query),
        crate::url_encode(since)
    );
    let mut newest_ms: Option<i64> = None;
    loop {
        let r = match client.get(&url, Duration::from_secs(10)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("lab: the hub at {base} does not answer: {e}");
                return Err(crate::Usage::text(format!(
                    "  = hint: is the lab up? `lab status`"
                )));
            }
        };
        if r.status == 400 {
            return Err(crate::Usage::lab(format!("{}", r.text().trim())));
        }
        let v: Value = r.json()?;
        let mut hits: Vec<Value> = v["hits"].as_array().cloned().unwrap_or_default();
        if newest_ms.is_none() {
            // The newest N, printed oldest first like a log.
            hits.reverse();
        }
        for h in &hits {
            if let Some(ts) = h["_meta"]["ts_ms"].as_i64() {
                newest_ms = Some(newest_ms.map_or(ts, |n| n.max(ts)));
            }
            render::line(if json {
                h["_source"].to_string()
            } else {
                format_hit(h, &style)
            });
        }
        if !follow {
            if hits.is_empty() {
                eprintln!("(no log document matches in the last {since})");
            } else if v["total"].as_u64().unwrap_or(0) as usize > hits.len() {
                eprintln!(
                    "({} of {} matches shown; -n N for more)",
                    hits.len(),
                    v["total"]
                );
            }
            return Ok(exit::OK);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        let from = newest_ms.map_or("now-1s".to_owned(), |n| (n + 1).to_string());
        url = format!(
            "{base}?query={}&from={from}&order=asc&limit=1000",
            crate::url_encode(query)
        );
    }
}

/// `TIME APP SEVERITY TYPE message-or-fields`, severity coloured.
fn format_hit(h: &Value, style: &Style) -> String {
    let src = &h["_source"];
    let text = |k: &str| src[k].as_str().unwrap_or("-").to_owned();
    let severity = text("severity");
    let sev = match severity.as_str() {
        "error" | "fatal" | "crit" => style.red(&severity),
        "warn" | "warning" => style.yellow(&severity),
        _ => severity.clone(),
    };
    let body = match (src.get("message"), src.get("fields")) {
        (Some(Value::String(m)), _) => m.clone(),
        (_, Some(f)) => f.to_string(),
        _ => {
            let mut rest = src.as_object().cloned().unwrap_or_default();
            for k in [
                "@timestamp",
                "@version",
                "app",
                "severity",
                "type",
                "host",
                "environment",
            ] {
                rest.remove(k);
            }
            Value::Object(rest).to_string()
        }
    };
    format!(
        "{} {} {} {} {}",
        style.dim(&text("@timestamp")),
        text("app"),
        sev,
        text("type"),
        body
    )
}

/// `lab alerts`: the rules, their standing, and with `--history` the events of the last day.
pub async fn alerts(env: &Env, args: AlertsArgs) -> anyhow::Result<u8> {
    let Some(cfg) = running_config(&env.state_dir) else {
        return Err(crate::Usage::lab(format!(
            "no hub: this lab has no [hub] (or was never up), so nothing evaluates alerts"
        )));
    };
    let base = format!("http://{}", connect(&cfg, cfg.http_port));
    let client = lab_service_kit::client::Client::new();
    let rules = match client
        .get(&format!("{base}/api/alerts"), Duration::from_secs(5))
        .await
    {
        Ok(r) if r.status == 200 => r.json()?,
        Ok(r) => anyhow::bail!("the hub answered {} for its alerts", r.status),
        Err(e) => {
            return Err(crate::Usage::lab(format!(
                "the hub at {base} does not answer: {e}\n  = hint: is the lab up? `lab status`"
            )));
        }
    };
    let history = if args.history {
        let url = format!(
            "{base}/api/logs?query={}&since=1d&limit=1000&order=asc",
            crate::url_encode("app:hub and type:alert")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dashboard_line_warns_when_the_hub_is_not_on_loopback() {
        let local = summary(&HubConfig::default());
        assert!(
            local.ends_with("dashboard: http://127.0.0.1:8080/"),
            "{local}"
        );
        let open = summary(&HubConfig {
            host: std::net::Ipv4Addr::UNSPECIFIED.into(),
            ..HubConfig::default()
        });
        assert!(
            open.contains("open to every host that reaches 0.0.0.0"),
            "{open}"
        );
    }
}
