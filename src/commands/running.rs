//! What the commands share about a lab: its hub as `lab up` wrote it (`hub.json`), the hub's
//! one-line summary, log searches against it, the instances table, why a start failed. No
//! command calls another; they all call this.

use std::time::Duration;

use lab_hub::HubConfig;
use lab_supervisor::state::State;
use serde_json::Value;

use crate::error::exit;
use crate::render::table::Table;
use crate::render::{self, Style};

use super::env::Env;

/// The running (or last) hub's config, written by `lab up` to `.lab/hub/hub.json`.
pub fn running_config(state_dir: &std::path::Path) -> Option<HubConfig> {
    lab_hub::load_config(&state_dir.join("hub").join("hub.json")).ok()
}

pub fn connect(cfg: &HubConfig, port: u16) -> String {
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
        " · otlp http://{} grpc://{}",
        connect(cfg, cfg.otlp_http_port),
        connect(cfg, cfg.otlp_grpc_port)
    ));
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
        return Err(crate::error::Usage::text("  = hint: add `[hub]` to lab.toml and `lab up`; `lab logs` without --query shows instance logs".to_string()));
    };
    let base = format!("http://{}/api/logs", connect(&cfg, cfg.http_port));
    let since = since.unwrap_or("15m");
    let client = lab_net::client::Client::new();
    let style = env.style;
    let mut url = format!(
        "{base}?query={}&since={}&limit={limit}",
        crate::check::wire::url_encode(query),
        crate::check::wire::url_encode(since)
    );
    let mut newest_ms: Option<i64> = None;
    loop {
        let r = match client.get(&url, Duration::from_secs(10)).await {
            Ok(r) => r,
            Err(e) => {
                eprintln!("lab: the hub at {base} does not answer: {e}");
                return Err(crate::error::Usage::text(
                    "  = hint: is the lab up? `lab status`".to_string(),
                ));
            }
        };
        if r.status == 400 {
            return Err(crate::error::Usage::lab(r.text().trim().to_string()));
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
            crate::check::wire::url_encode(query)
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

/// The faults in effect (`lab fault list`, `lab status`): id, what, on what, since, until.
pub fn faults_table(faults: &[lab_supervisor::faults::Fault], style: &Style) -> String {
    let now = lab_supervisor::faults::now_ms();
    let secs = |ms: i64| format!("{:.1}s", ms.max(0) as f64 / 1000.0);
    let mut t = Table::new(&["FAULT", "KIND", "TARGET", "HOW", "FOR", "ENDS"]);
    for f in faults {
        let how = f.describe();
        t.row(vec![
            match &f.name {
                Some(n) => format!("{} ({n})", f.id),
                None => f.id.clone(),
            },
            f.kind.clone(),
            f.instance.clone(),
            how,
            secs(now - f.since_ms),
            f.until_ms.map_or("at `lab fault clear`".into(), |u| {
                format!("in {}", secs(u - now))
            }),
        ]);
    }
    t.render(style).trim_end().to_owned()
}

/// The table of instances. `live` replaces the recorded health with a fresh probe.
pub fn instances_table(state: &State, live: Option<&[(String, String)]>, style: &Style) -> String {
    let mut t = Table::new(&[
        "SERVICE",
        "INSTANCE",
        "PID",
        "ADDRESS",
        "HEALTH",
        "STATE",
        "RESTARTS",
        "LAST EXIT",
        "UPTIME",
    ]);
    for (i, r) in state.instances.iter().enumerate() {
        let alive = r.process.filter(|p| p.is_alive());
        let health = live.map_or_else(|| r.health.as_str().to_owned(), |l| l[i].0.clone());
        let level = live.map_or_else(|| "-".to_owned(), |l| l[i].1.clone());
        let uptime = alive
            .and_then(lab_supervisor::procfs::uptime)
            .map_or("-".into(), |d| format!("{}s", d.as_secs()));
        t.row_painted(vec![
            (r.service.clone(), None),
            (format!("#{}", r.instance), None),
            (
                match (&r.container, alive) {
                    (Some(id), _) => format!("ctr {}", &id[..id.len().min(12)]),
                    (None, Some(p)) => match lab_supervisor::procfs::children(p.pid).len() {
                        0 => p.pid.to_string(),
                        n => format!("{} (+{n})", p.pid),
                    },
                    (None, None) => "-".into(),
                },
                None,
            ),
            (r.address.clone(), None),
            (health, Some(|s: &Style, h: &str| s.health(h))),
            (level, Some(|s: &Style, h: &str| s.health(h))),
            (r.restarts.to_string(), None),
            (r.last_exit.clone().unwrap_or_else(|| "-".into()), None),
            (uptime, None),
        ]);
    }
    t.render(style).trim_end().to_owned()
}

/// What to change when an instance did not become healthy: a `command` service probed over
/// http whose program has no such route (the book's producers have no `/health`) is told about
/// the tcp check.
pub fn start_hint(e: &lab_supervisor::UpError, cfg: &crate::config::LabConfig) -> Option<String> {
    let lab_supervisor::UpError::NotHealthy {
        instance, reason, ..
    } = e
    else {
        return None;
    };
    let service = instance
        .rsplit_once('#')
        .map_or(instance.as_str(), |(s, _)| s);
    let svc = cfg.service(service)?;
    let lab_supervisor::HealthCheck::Http { path } = &svc.health.check else {
        return None;
    };
    let answered = reason.contains(" answered ");
    Some(if answered {
        format!(
            "{service}'s program answers GET {path} with an error: if it has no {path} route (the book's producers have none), set `health = {{ check = \"tcp\" }}` on [services.{service}], or point `health.path` at a route it has"
        )
    } else {
        format!(
            "{service} never answered GET {path}: check that it listens on HOST and PORT (the lab sets both); if it has no {path} route, set `health = {{ check = \"tcp\" }}` on [services.{service}]"
        )
    })
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
