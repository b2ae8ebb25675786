//! Chapter 3's reverse-proxy scenarios, run against the engine of `--proxy-engine` (builtin or
//! HAProxy): each starts its own proxy with the settings of the book's matching haproxy config
//! in front of the lab's services (or of a server it starts itself when the experiment needs
//! one, like the slow server of back pressure), so both engines face the same experiment.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant};

use lab_proxy::config::{Check, Frontend, ProxyConfig, Server};
use serde_json::Value;

use super::scenario::{BoxFut, Ctx, Record, Subject};
use super::spawn::{self, SpawnedProxy};
use crate::config::model::{Builtin, ProxyEngine};

pub(super) const STATS_URI: &str = "/admin?stats";

pub(super) fn frontend(name: &str, servers: &[String]) -> Frontend {
    Frontend::new(
        name,
        "127.0.0.1:0",
        servers
            .iter()
            .enumerate()
            .map(|(i, a)| Server {
                name: format!("{name}-{}", i + 1),
                addr: a.clone(),
            })
            .collect(),
    )
}

/// Start the experiment's proxy, named among the subjects with the book config it mirrors.
pub(super) async fn start(
    ctx: &Ctx,
    rec: &mut Record,
    f: Frontend,
    book: &str,
) -> anyhow::Result<SpawnedProxy> {
    let p = spawn::proxy(ctx.proxy_engine, ProxyConfig { frontends: vec![f] }).await?;
    rec.subject(Subject::helper(
        "proxy",
        format!(
            "a {} proxy started for this experiment on {} (the book's {book})",
            ctx.proxy_engine.as_str(),
            p.addrs.join(", ")
        ),
    ));
    Ok(p)
}

/// The lab's producer that a proxy is put in front of: REST over plain HTTP (a subject), or
/// not applicable.
fn plain_producer<'a>(
    ctx: &'a Ctx,
    rec: &mut Record,
) -> anyhow::Result<&'a super::scenario::Endpoint> {
    let p = ctx.plain_rest_producers().into_iter().next().ok_or_else(|| {
        super::scenario::not_applicable(
            "no service of role recipe-api answers REST over plain HTTP, which the proxy is put in front of",
            "a producer with `serves = [\"http\"]` (the default for a `command` producer)",
        )
    })?;
    rec.subject(p.subject());
    Ok(p)
}

/// The proxy's health check for servers of `e`: its http path if it has one, else tcp (the
/// book's producers have no /health route).
fn check_for(
    e: &super::scenario::Endpoint,
    interval_ms: u64,
    timeout_ms: u64,
    rise: u32,
    fall: u32,
) -> Check {
    Check {
        path: e.health_path.clone(),
        interval_ms,
        timeout_ms,
        rise,
        fall,
    }
}

/// The stats CSV as rows keyed by column name (HAProxy's names, both engines).
pub(super) async fn stats_rows(
    ctx: &Ctx,
    addr: &str,
) -> anyhow::Result<Vec<HashMap<String, String>>> {
    let (r, _) = ctx.get(addr, &format!("{STATS_URI};csv")).await?;
    anyhow::ensure!(r.status == 200, "stats CSV: status {}", r.status);
    let text = r.text();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .unwrap_or("")
        .trim_start_matches('#')
        .trim()
        .split(',')
        .map(str::to_owned)
        .collect();
    Ok(lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            header
                .iter()
                .cloned()
                .zip(l.split(',').map(str::to_owned))
                .collect()
        })
        .collect())
}

pub(super) fn server_row<'a>(
    rows: &'a [HashMap<String, String>],
    name: &str,
) -> Option<&'a HashMap<String, String>> {
    rows.iter()
        .find(|r| r.get("svname").is_some_and(|s| s == name))
}

pub fn round_robin<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        // A consumer of the lab with two or more instances; else two of ours, when no learner's
        // consumer should have been the subject.
        let lab = ctx
            .playing(Builtin::WebApi)
            .into_iter()
            .find(|e| e.addrs.len() >= 2 && e.scheme() == "http");
        let mut _own = Vec::new();
        let servers = match lab {
            Some(e) => {
                rec.subject(e.subject());
                e.addrs.clone()
            }
            None if ctx.learner_plays(Builtin::WebApi) => {
                return Err(super::scenario::not_applicable(
                    "no consumer runs two or more instances over plain HTTP",
                    "`replicas = 2` on your consumer (the book runs web-api on 3001 and 3002 behind HAProxy)",
                ));
            }
            None => {
                let producer = ctx.plain_rest_producers().into_iter().next().ok_or_else(|| {
                    super::scenario::not_applicable(
                        "no consumer runs two instances, and no producer answers REST over plain HTTP for two of ours to call",
                        "`replicas = 2` on a web-api service",
                    )
                })?;
                rec.subject(producer.subject());
                let target = super::scenario::host_port(&producer.base()?).to_owned();
                for _ in 0..2 {
                    _own.push(
                        spawn::builtin(Builtin::WebApi, &[("TARGET", target.as_str())]).await?,
                    );
                }
                rec.subject(Subject::helper(
                    "web-api",
                    format!(
                        "the lab's built-in web-api ×2 (pids {}), started because no consumer of the lab runs two instances",
                        super::scenario::list(_own.iter().map(|s| s.pid))
                    ),
                ));
                _own.iter()
                    .map(|s| super::scenario::host_port(&s.base).to_owned())
                    .collect()
            }
        };
        let proxy = start(
            ctx,
            rec,
            frontend("web", &servers),
            "haproxy/load-balance.cfg",
        )
        .await?;
        let mut pids = Vec::new();
        for _ in 0..(servers.len() * 4) {
            let (r, _) = ctx.get(&proxy.addrs[0], "/").await?;
            anyhow::ensure!(
                r.status == 200,
                "GET / through the proxy: status {}",
                r.status
            );
            pids.push(super::scenario::answered_by(&r, &["consumer_pid", "pid"]));
        }
        let distinct: BTreeSet<&String> = pids.iter().collect();
        rec.check(
            "every instance answers",
            distinct.len() == servers.len(),
            format!(
                "{} instances, answers from {}",
                servers.len(),
                super::scenario::list(&distinct)
            ),
        );
        let alternates = pids
            .windows(servers.len())
            .all(|w| w.iter().collect::<BTreeSet<_>>().len() == servers.len());
        rec.check(
            "consecutive requests go to different instances, in turn",
            alternates,
            format!("answer sequence {}", super::scenario::list(&pids)),
        );
        rec.figure("instances", servers.len() as f64, "count");
        Ok(())
    })
}

/// Sends `GET /recipes/42` through `addr` every 10 ms until stopped; counts failures.
pub(super) struct LightLoad {
    pub(super) stop: Arc<std::sync::atomic::AtomicBool>,
    pub(super) task: tokio::task::JoinHandle<(usize, usize, Vec<u64>)>,
}

pub(super) fn light_load(ctx: &Ctx, addr: &str) -> LightLoad {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (client, url, timeout, flag) = (
        ctx.client.clone(),
        format!("http://{addr}/recipes/42"),
        ctx.timeout,
        stop.clone(),
    );
    let task = tokio::spawn(async move {
        let (mut ok, mut failed, mut pids) = (0, 0, Vec::new());
        while !flag.load(SeqCst) {
            match client.get(&url, timeout).await {
                Ok(r) if r.status == 200 => {
                    ok += 1;
                    if let Some(p) = r.json().ok().and_then(|v| v["producer_pid"].as_u64()) {
                        pids.push(p);
                    }
                }
                _ => failed += 1,
            }
            tokio::time::sleep(Duration::from_millis(10)).await; // load pacing
        }
        (ok, failed, pids)
    });
    LightLoad { stop, task }
}

/// Poll the proxy's stats until `server`'s status satisfies `want`, for up to `limit`; how
/// long it took.
pub(super) async fn status_until(
    ctx: &Ctx,
    addr: &str,
    server: &str,
    limit: Duration,
    want: impl Fn(&str) -> bool,
) -> anyhow::Result<Option<Duration>> {
    let t0 = Instant::now();
    while t0.elapsed() < limit {
        let rows = stats_rows(ctx, addr).await?;
        if server_row(&rows, server)
            .and_then(|r| r.get("status"))
            .is_some_and(|s| want(s))
        {
            return Ok(Some(t0.elapsed()));
        }
        tokio::time::sleep(Duration::from_millis(20)).await; // stats polling interval
    }
    Ok(None)
}

/// The figure and check of an instance (`restarted`, `resumed`) coming back into rotation
/// `back` after, against `limit` (rise × interval with slack).
pub(super) fn record_return(
    rec: &mut Record,
    how: &str,
    back: Option<Duration>,
    limit: Duration,
    rise: u32,
    interval: u64,
) {
    match back {
        Some(t) => {
            rec.figure(
                format!("{how} instance back in rotation after"),
                t.as_secs_f64() * 1e3,
                "ms",
            );
            rec.check(
                format!("the {how} instance returns within rise × interval (+ slack)"),
                t <= limit,
                format!(
                    "{:.0} ms (rise {rise} × interval {interval} ms)",
                    t.as_secs_f64() * 1e3
                ),
            );
        }
        None => {
            rec.check(
                format!("the {how} instance returns"),
                false,
                "never UP again in the stats".to_string(),
            );
        }
    }
}

pub fn health_failover<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let a = spawn::builtin(Builtin::RecipeApi, &[]).await?;
        let b = spawn::builtin(Builtin::RecipeApi, &[]).await?;
        let b_port: u16 = b.base.rsplit(':').next().unwrap_or("0").parse()?;
        let servers = vec![
            super::scenario::host_port(&a.base).to_owned(),
            super::scenario::host_port(&b.base).to_owned(),
        ];
        rec.subject(Subject::helper(
            "recipe-api",
            format!(
                "the lab's built-in recipe-api ×2 (pids {}, {}), started for this experiment: one is killed and restarted, so the lab's own instances are not touched",
                a.pid, b.pid
            ),
        ));
        let mut f = frontend("recipes", &servers);
        let (interval, fall, rise) = (200u64, 2u32, 2u32);
        f.check = Some(Check {
            path: Some("/health".into()),
            interval_ms: interval,
            timeout_ms: 150,
            rise,
            fall,
        });
        f.stats_uri = Some(STATS_URI.into());
        let proxy = start(ctx, rec, f, "haproxy/load-balance.cfg").await?;
        let addr = proxy.addrs[0].clone();
        let victim = "recipes-2";

        let load = light_load(ctx, &addr);
        tokio::time::sleep(Duration::from_millis(300)).await; // some traffic before the kill
        let b_pid = b.pid;
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(b_pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        drop(b);
        let limit =
            Duration::from_millis(interval * (u64::from(fall) + 2)) + Duration::from_secs(1);
        let out_after =
            status_until(ctx, &addr, victim, limit * 3, |s| s.starts_with("DOWN")).await?;
        match out_after {
            Some(t) => {
                rec.figure(
                    "killed instance out of rotation after",
                    t.as_secs_f64() * 1e3,
                    "ms",
                );
                rec.check(
                    "the killed instance leaves the rotation within fall × interval (+ slack)",
                    t <= limit,
                    format!(
                        "{:.0} ms (fall {fall} × interval {interval} ms; limit {} ms)",
                        t.as_secs_f64() * 1e3,
                        limit.as_millis()
                    ),
                );
            }
            None => {
                rec.check(
                    "the killed instance leaves the rotation",
                    false,
                    "still UP in the stats".to_string(),
                );
            }
        }

        // Restart it where the proxy expects it: the checks bring it back.
        let b2 = spawn::builtin_on(Builtin::RecipeApi, &[], b_port).await?;
        let back_limit =
            Duration::from_millis(interval * (u64::from(rise) + 2)) + Duration::from_secs(1);
        let back_after = status_until(ctx, &addr, victim, back_limit * 3, |s| s == "UP").await?;
        // Back in rotation means it answers: ask until its pid does (or 5 s pass).
        let asked = Instant::now();
        let mut answered_by_new = false;
        while !answered_by_new && asked.elapsed() < Duration::from_secs(5) {
            let (r, _) = ctx.get(&addr, "/recipes/42").await?;
            answered_by_new = r.status == 200
                && r.json().ok().and_then(|v| v["producer_pid"].as_u64())
                    == Some(u64::from(b2.pid));
        }
        load.stop.store(true, SeqCst);
        let (ok, failed, pids) = load.task.await?;
        record_return(rec, "restarted", back_after, back_limit, rise, interval);
        rec.check(
            "the restarted instance answers requests",
            answered_by_new || pids.contains(&u64::from(b2.pid)),
            format!(
                "new pid {} (answered after {:.0} ms of asking)",
                b2.pid,
                asked.elapsed().as_secs_f64() * 1e3
            ),
        );
        rec.figure(
            "requests during the experiment",
            (ok + failed) as f64,
            "count",
        );
        rec.figure("failed requests (errors seen)", failed as f64, "count");
        if ctx.proxy_engine == ProxyEngine::Builtin {
            // The builtin proxy retries a refused connection on another server.
            rec.check(
                "no request failed (passive retry)",
                failed == 0,
                format!("{failed} of {} failed", ok + failed),
            );
        }
        drop(proxy); // before the servers, so none waits on the proxy's keep-alive connections
        Ok(())
    })
}

pub fn compression<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let servers = plain_producer(ctx, rec)?.addrs.clone();
        let mut f = frontend("recipes", &servers[..1]);
        f.compression = vec!["application/json".into(), "text/plain".into()];
        let proxy = start(ctx, rec, f, "haproxy/compression.cfg").await?;
        let url = format!("http://{}/recipes/42", proxy.addrs[0]);
        let (plain, gz) = ctx.get_plain_and_gzip(&url).await?;
        let encoding = super::scenario::content_encoding;
        rec.check(
            "gzip when the client accepts it",
            gz.status == 200 && encoding(&gz) == "gzip",
            format!(
                "status {}, content-encoding \"{}\"",
                gz.status,
                encoding(&gz)
            ),
        );
        let unzipped = super::wire::gunzip(&gz.body).unwrap_or_default();
        rec.check(
            "it decompresses to the same JSON",
            serde_json::from_slice::<Value>(&unzipped).ok()
                == serde_json::from_slice::<Value>(&plain.body).ok()
                && !plain.body.is_empty(),
            format!("{} bytes gzipped → {} bytes", gz.body.len(), unzipped.len()),
        );
        rec.check(
            "no compression without Accept-Encoding",
            plain.status == 200 && encoding(&plain).is_empty(),
            format!("content-encoding \"{}\"", encoding(&plain)),
        );
        rec.figure("body, identity", plain.body.len() as f64, "bytes");
        rec.figure("body, gzip", gz.body.len() as f64, "bytes");
        Ok(())
    })
}

pub fn tls_termination<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let servers = plain_producer(ctx, rec)?.addrs.clone();
        let ca = crate::tls::LabCa::ensure(&ctx.tls_dir)?;
        let issued = ca.server_cert("proxy")?;
        let mut f = frontend("tls", &servers);
        f.tls = Some(lab_proxy::config::TlsFiles {
            cert: issued.cert,
            key: issued.key,
        });
        let proxy = start(ctx, rec, f, "haproxy/tls.cfg").await?;
        let client = lab_net::client::Client::with_tls(lab_net::tls::client_config(&ca.ca_cert())?);
        let t0 = Instant::now();
        let r = client
            .get(
                &format!("https://{}/recipes/42", proxy.addrs[0]),
                ctx.timeout,
            )
            .await;
        let took = t0.elapsed();
        match r {
            Ok(r) => {
                let v: Value = r.json().unwrap_or(Value::Null);
                rec.check(
                    "HTTPS through the proxy, certificate chaining to the lab CA, answers recipe 42",
                    r.status == 200 && v["recipe"]["id"] == 42,
                    format!("status {}", r.status),
                );
            }
            Err(e) => {
                rec.check(
                    "HTTPS through the proxy, certificate chaining to the lab CA",
                    false,
                    e.to_string(),
                );
            }
        }
        rec.figure(
            "first HTTPS request (handshake included)",
            took.as_secs_f64() * 1e3,
            "ms",
        );
        let plain = ctx
            .client
            .get(
                &format!("http://{}/recipes/42", proxy.addrs[0]),
                ctx.timeout,
            )
            .await;
        rec.check(
            "plain HTTP on the TLS port gets no recipe",
            !matches!(&plain, Ok(r) if r.status == 200),
            match &plain {
                Ok(r) => format!("status {}", r.status),
                Err(e) => format!("refused: {}", e.kind()),
            },
        );
        let untrusting = lab_net::client::Client::new();
        let r = untrusting
            .get(
                &format!("https://{}/recipes/42", proxy.addrs[0]),
                ctx.timeout,
            )
            .await;
        rec.check(
            "a client that does not trust the lab CA is refused",
            r.is_err(),
            match &r {
                Ok(r) => format!("status {}", r.status),
                Err(e) => e.kind().to_string(),
            },
        );
        Ok(())
    })
}

/// How long the slow server holds each request (the book's low-connections server holds 10 s).
const SLOW_HOLD: Duration = Duration::from_millis(1000);

pub fn backpressure<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        // The slow server (the book's low-connections.js), as a process of its own.
        let slow = spawn::slow_server(SLOW_HOLD).await?;
        let slow_addr = super::scenario::host_port(&slow.base).to_owned();
        rec.subject(Subject::helper(
            "slow server",
            format!(
                "`lab serve slow-server` (pid {}), the book's low-connections.js: every answer after {} ms",
                slow.pid,
                SLOW_HOLD.as_millis()
            ),
        ));
        let mut f = frontend("low-connections", &[slow_addr]);
        f.server_maxconn = Some(2);
        f.queue_timeout_ms = 1500; // two rounds of 1 s fit, the third waits too long
        f.server_timeout_ms = 5000;
        f.check = None;
        let proxy = start(ctx, rec, f, "haproxy/backpressure.cfg").await?;
        let url = format!("http://{}/", proxy.addrs[0]);
        let t0 = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..10 {
            let (client, url, timeout) = (ctx.client.clone(), url.clone(), ctx.timeout * 2);
            tasks.push(tokio::spawn(async move {
                client.get(&url, timeout).await.map(|r| r.status.as_u16())
            }));
        }
        let mut codes = Vec::new();
        for t in tasks {
            codes.push(t.await?.map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?);
        }
        let ok = codes.iter().filter(|&&c| c == 200).count();
        let busy = codes.iter().filter(|&&c| c == 503).count();
        let (r, _) = ctx.get(&slow.base, crate::slow::IN_FLIGHT_PATH).await?;
        let most = r.json()?["max"].as_u64().unwrap_or(0) as usize;
        rec.check(
            "never more than maxconn (2) in flight at the slow server",
            most <= 2 && most > 0,
            format!("at most {most} at once"),
        );
        rec.check(
            "queued requests are served as slots free up",
            ok >= 2,
            format!("{ok} answered 200"),
        );
        rec.check(
            "requests queued past the queue timeout get 503",
            busy >= 1,
            format!("{busy} answered 503"),
        );
        rec.check(
            "every request got 200 or 503",
            ok + busy == codes.len(),
            format!("statuses {}", super::scenario::list(&codes)),
        );
        rec.figure("answered 200", ok as f64, "count");
        rec.figure("answered 503", busy as f64, "count");
        rec.figure("max in flight at the server", most as f64, "count");
        rec.figure(
            "all 10 settled after",
            t0.elapsed().as_secs_f64() * 1e3,
            "ms",
        );
        Ok(())
    })
}

pub fn stats<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let producer = plain_producer(ctx, rec)?;
        let servers = producer.addrs.clone();
        let mut f = frontend("recipes", &servers);
        f.stats_uri = Some(STATS_URI.into());
        f.check = Some(check_for(producer, 1000, 500, 2, 3));
        let proxy = start(ctx, rec, f, "haproxy/stats.cfg").await?;
        let addr = &proxy.addrs[0];
        const N: usize = 10;
        for _ in 0..N {
            let (r, _) = ctx.get(addr, "/recipes/42").await?;
            anyhow::ensure!(r.status == 200, "GET /recipes/42: status {}", r.status);
        }
        let (html, _) = ctx.get(addr, STATS_URI).await?;
        let ctype = html
            .headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        rec.check(
            "the stats page is HTML",
            html.status == 200 && ctype.starts_with("text/html"),
            format!("status {}, {ctype}", html.status),
        );
        let rows = stats_rows(ctx, addr).await?;
        let names: Vec<String> = (1..=servers.len())
            .map(|i| format!("recipes-{i}"))
            .collect();
        let mut total = 0u64;
        let mut states = Vec::new();
        for n in &names {
            let row = server_row(&rows, n);
            let field = |k: &str| {
                row.and_then(|r| r.get(k))
                    .map_or("", |s| s.as_str())
                    .to_owned()
            };
            states.push(
                format!(
                    "{n}: {} (check {} {})",
                    field("status"),
                    field("check_status"),
                    field("last_chk")
                )
                .replace(" ()", ""),
            );
            total += row
                .and_then(|r| r.get("stot"))
                .and_then(|s| s.parse::<u64>().ok())
                .unwrap_or(0);
        }
        rec.check(
            "CSV: a row per server, each UP (in rotation)",
            // HAProxy shows "UP 1/3" for a server up whose first check is still pending.
            names.iter().all(|n| {
                server_row(&rows, n)
                    .and_then(|r| r.get("status"))
                    .is_some_and(|s| s.starts_with("UP"))
            }),
            states.join(", "),
        );
        rec.check(
            "CSV: the servers' session counts add up to the requests sent",
            total >= N as u64,
            format!("stot sum {total} for {N} requests"),
        );
        rec.figure("rows in the CSV", rows.len() as f64, "count");
        Ok(())
    })
}
