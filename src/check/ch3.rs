//! Chapter 3, "Scaling": the cluster module (workers sharing a port) and what it buys for
//! CPU-bound work.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use super::scenario::{BoxFut, Ctx, Record, Scenario};
use crate::config::model::Builtin;

pub fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            name: "ch3.cluster",
            chapter: 3,
            section: "The Cluster Module › A Simple Example",
            summary: "requests spread over every worker pid; a killed worker costs no request and is respawned",
            run: cluster,
            proxy: false,
        },
        Scenario {
            name: "ch3.cluster-scaling",
            chapter: 3,
            section: "The Cluster Module › Performance Limitations",
            summary: "fibonacci throughput with 2 workers vs 1, reported as a ratio",
            run: cluster_scaling,
            proxy: false,
        },
        Scenario {
            name: "ch3.round-robin",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Load Balancing and Health Checks",
            summary: "through the proxy, consecutive requests alternate web-api instances (consumer_pid)",
            run: super::ch3_proxy::round_robin,
            proxy: true,
        },
        Scenario {
            name: "ch3.health-failover",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Load Balancing and Health Checks",
            summary: "a killed instance leaves the rotation within fall×interval and returns after restart; errors counted",
            run: super::ch3_proxy::health_failover,
            proxy: true,
        },
        Scenario {
            name: "ch3.slow-upstream",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Load Balancing and Health Checks",
            summary: "latency on a consumer's upstream edge: its upstream timeout and the proxy's server timeout answer as configured, and nothing hangs",
            run: super::ch3_faults::slow_upstream,
            proxy: true,
        },
        Scenario {
            name: "ch3.retry",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Load Balancing and Health Checks",
            summary: "the first requests to one instance closed unanswered at its edge: the proxy (`retries 2`) retries them on the other, none fails for the client",
            run: super::ch3_faults::retry,
            proxy: true,
        },
        Scenario {
            name: "ch3.compression",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Compression",
            summary: "the proxy gzips JSON for clients that accept it, and only for them",
            run: super::ch3_proxy::compression,
            proxy: true,
        },
        Scenario {
            name: "ch3.tls-termination",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › TLS Termination",
            summary: "HTTPS with a lab-CA certificate at the proxy, plain HTTP to recipe-api; plain HTTP refused there",
            run: super::ch3_proxy::tls_termination,
            proxy: true,
        },
        Scenario {
            name: "ch3.backpressure",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Back Pressure",
            summary: "a slow server with maxconn 2 and 10 clients: never more than 2 in flight there, 503 past the queue timeout",
            run: super::ch3_proxy::backpressure,
            proxy: true,
        },
        Scenario {
            name: "ch3.stats",
            chapter: 3,
            section: "Reverse Proxies with HAProxy › Load Balancing and Health Checks",
            summary: "the stats page: HTML for people, CSV with per-server state and request counts",
            run: super::ch3_proxy::stats,
            proxy: true,
        },
        Scenario {
            name: "ch3.load-baseline",
            chapter: 3,
            section: "SLA and Load Testing › Introduction to Autocannon",
            summary: "a 2 s lab load run against recipe-api: req/s and latency percentiles, zero errors",
            run: super::ch3_load::load_baseline,
            proxy: false,
        },
        Scenario {
            name: "ch3.proxy-concerns",
            chapter: 3,
            section: "SLA and Load Testing › Reverse Proxy Concerns",
            summary: "the same load direct and through the proxy: the proxy's added latency and throughput ratio",
            run: super::ch3_load::proxy_concerns,
            proxy: true,
        },
        Scenario {
            name: "ch3.protocol-concerns",
            chapter: 3,
            section: "SLA and Load Testing › Protocol Concerns",
            summary: "recipe 42 under load over http, http+gzip, https, GraphQL, gRPC and through the proxy: every one answers, figures per protocol",
            run: super::ch3_load::protocol_concerns,
            proxy: true,
        },
    ]
}

/// New connections to send when looking for every worker: the kernel spreads connections over
/// SO_REUSEPORT listeners by a hash, so each of two workers is missed with odds 2^-40.
const SPREAD_REQUESTS: usize = 40;

/// `producer_pid` of `GET /recipes/42` on a fresh connection (`Connection: close`), so each
/// request is a new connection the kernel may give to any worker.
async fn producer_pid_fresh(ctx: &Ctx, base: &str) -> anyhow::Result<u64> {
    let url = format!("{base}/recipes/42");
    let r = ctx
        .client
        .request(
            hyper::Method::GET,
            &url,
            &[("connection", "close")],
            None,
            ctx.timeout,
        )
        .await
        .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
    anyhow::ensure!(r.status == 200, "GET {url}: status {}", r.status);
    r.json()?["producer_pid"]
        .as_u64()
        .ok_or_else(|| anyhow::anyhow!("GET {url}: no producer_pid in {}", r.text()))
}

/// The cluster master to experiment on: a copy of the lab's producer declared with `workers`
/// (the learner's own master, or ours with the same settings), else one of ours when no
/// learner's producer could stand for it. With the workers it should fork, and whether it
/// respawns them (declared).
async fn cluster_subject(
    ctx: &Ctx,
    rec: &mut Record,
) -> anyhow::Result<(super::spawn::Spawned, u32, bool)> {
    let declared = ctx
        .rest_producers()
        .into_iter()
        .find(|e| e.workers >= 2 && e.serves(crate::config::model::Serve::Http));
    match declared {
        Some(e) => {
            let (workers, respawn) = (e.workers, e.respawn);
            let w = workers.to_string();
            let master = match &e.run {
                super::scenario::EndpointRun::Builtin(b) => {
                    let mut env = vec![("LAB_WORKERS", w.as_str())];
                    if respawn {
                        env.push(("LAB_RESPAWN", "1"));
                    }
                    super::spawn::builtin(*b, &env).await?
                }
                super::scenario::EndpointRun::Command { .. } => {
                    super::spawn::command_copy(e, &[]).await?
                }
                super::scenario::EndpointRun::External => {
                    return Err(super::scenario::not_applicable(
                        format!(
                            "`{}` runs where lab cannot start a copy of it (--endpoint)",
                            e.service
                        ),
                        "run the lab with lab.toml (not --endpoint) for the cluster experiment",
                    ));
                }
            };
            let mut s = e.subject();
            s.what = format!(
                "{} — a copy started for this experiment (master pid {}, workers = {workers}{}), so the lab's own instances are not touched",
                s.what,
                master.pid,
                if respawn { ", respawn = true" } else { "" }
            );
            rec.subject(s);
            Ok((master, workers, respawn))
        }
        None if ctx.learner_plays(Builtin::RecipeApi) => Err(super::scenario::not_applicable(
            "no producer declares a cluster (`workers` of 2 or more)",
            "`workers = 2` on the service whose command is your cluster master (the book's recipe-api/producer-http-basic-master.js forks 2)",
        )),
        None => {
            let master = super::spawn::builtin(
                Builtin::RecipeApi,
                &[("LAB_WORKERS", "2"), ("LAB_RESPAWN", "1")],
            )
            .await?;
            rec.subject(super::scenario::Subject::helper(
                "recipe-api",
                format!(
                    "the lab's built-in recipe-api as a cluster of 2 with respawn (master pid {}), started because no service of the lab declares `workers`",
                    master.pid
                ),
            ));
            Ok((master, 2, true))
        }
    }
}

fn cluster<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let (master, n_workers, respawn) = cluster_subject(ctx, rec).await?;
        let mut seen = BTreeSet::new();
        for _ in 0..SPREAD_REQUESTS {
            seen.insert(producer_pid_fresh(ctx, &master.base).await?);
        }
        let workers = lab_supervisor::procfs::children(master.pid);
        rec.figure("worker processes", workers.len() as f64, "count");
        rec.expect(
            "requests are answered by every worker, none by the master",
            seen.len() == n_workers as usize
                && seen.iter().all(|p| workers.contains(&(*p as u32)))
                && !seen.contains(&u64::from(master.pid)),
            format!("{n_workers} distinct worker pids, children of the master"),
            format!(
                "pids answering {}; master {}, its children {}",
                super::scenario::list(&seen),
                master.pid,
                super::scenario::list(&workers)
            ),
        );
        rec.hint("fork the workers with cluster.fork() in the master and serve only in the workers (cluster.isMaster)");

        // Kill one worker; once it is gone, every request still succeeds (on the other one).
        let victim = *seen.iter().next().expect("at least one pid") as u32;
        let victim_id = lab_supervisor::procfs::ProcId::of(victim);
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(victim as i32),
            nix::sys::signal::Signal::SIGKILL,
        )?;
        let killed_at = Instant::now();
        // Until it is reaped, not merely a zombie: a zombie leader may still have a thread
        // exiting that holds the process's files, the listening socket among them.
        let exists = |id: lab_supervisor::procfs::ProcId| {
            lab_supervisor::procfs::stat(id.pid).is_some_and(|s| s.start_time == id.start_time)
        };
        while victim_id.is_some_and(exists) && killed_at.elapsed() < ctx.timeout {
            tokio::time::sleep(Duration::from_millis(2)).await; // poll until the process is gone
        }
        let mut failed = 0;
        let mut first_error = String::new();
        let mut after = BTreeSet::new();
        for _ in 0..SPREAD_REQUESTS / 2 {
            match producer_pid_fresh(ctx, &master.base).await {
                Ok(p) => {
                    after.insert(p);
                }
                Err(e) => {
                    failed += 1;
                    if first_error.is_empty() {
                        first_error = format!(
                            "; first error {:.0} ms after the kill: {e:#}",
                            killed_at.elapsed().as_secs_f64() * 1e3
                        );
                    }
                }
            }
        }
        rec.check(
            "with a worker killed, requests keep succeeding",
            failed == 0 && !after.contains(&u64::from(victim)),
            format!(
                "{failed} of {} failed; answered by {}{first_error}",
                SPREAD_REQUESTS / 2,
                super::scenario::list(&after)
            ),
        );
        if !respawn {
            rec.note("respawn is not declared (the book's master leaves cluster.fork() in its exit handler commented out), so no new worker is expected; `respawn = true` holds the master to it");
            return Ok(());
        }

        // respawn = true: a new worker appears (a pid never seen before answers).
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut fresh = None;
        while fresh.is_none() && Instant::now() < deadline {
            let p = producer_pid_fresh(ctx, &master.base).await?;
            if !seen.contains(&p) {
                fresh = Some(p);
            }
        }
        if let Some(p) = fresh {
            rec.figure(
                "time until the respawned worker answered",
                killed_at.elapsed().as_secs_f64() * 1e3,
                "ms",
            );
            rec.check(
                "respawn: a new worker pid answers",
                true,
                format!("new worker pid {p}"),
            );
        } else {
            rec.check(
                "respawn: a new worker pid answers",
                false,
                "no new pid answered within 10 s",
            );
        }
        Ok(())
    })
}

/// How long each configuration is loaded, and by how many concurrent clients (more than the
/// workers, so none idles).
const SCALING_WINDOW: Duration = Duration::from_secs(2);
const SCALING_CLIENTS: usize = 4;

/// Completed `/fibonacci/{limit}` requests in [`SCALING_WINDOW`] from [`SCALING_CLIENTS`] clients.
async fn fibonacci_throughput(ctx: &Ctx, base: &str, limit: u64) -> anyhow::Result<(f64, String)> {
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..SCALING_CLIENTS {
        let client = ctx.client.clone();
        let url = format!("{base}/fibonacci/{limit}");
        let timeout = ctx.timeout * 4;
        tasks.push(tokio::spawn(async move {
            let mut done = 0u32;
            let mut answer = String::new();
            while t0.elapsed() < SCALING_WINDOW {
                let r = client
                    .request(
                        hyper::Method::GET,
                        &url,
                        &[("connection", "close")],
                        None,
                        timeout,
                    )
                    .await
                    .map_err(|e| anyhow::anyhow!("GET {url}: {e}"))?;
                anyhow::ensure!(r.status == 200, "GET {url}: status {}", r.status);
                answer = r.text();
                done += 1;
            }
            Ok::<_, anyhow::Error>((done, answer))
        }));
    }
    let mut total = 0;
    let mut answer = String::new();
    for t in tasks {
        let (n, a) = t.await??;
        total += n;
        answer = a;
    }
    Ok((f64::from(total) / t0.elapsed().as_secs_f64(), answer))
}

fn cluster_scaling<'a>(ctx: &'a Ctx, rec: &'a mut Record) -> BoxFut<'a> {
    Box::pin(async move {
        let one = super::spawn::builtin(Builtin::RecipeApi, &[]).await?;
        let two = super::spawn::builtin(Builtin::RecipeApi, &[("LAB_WORKERS", "2")]).await?;
        rec.subject(super::scenario::Subject::helper(
            "recipe-api",
            format!(
                "the lab's built-in recipe-api ×2, started for this experiment (pid {} with 1 worker, pid {} with 2): it measures the cluster module on /fibonacci, so your services are not involved",
                one.pid, two.pid
            ),
        ));
        // A limit that costs tens of milliseconds: CPU-bound, yet many requests per window.
        let (limit, took) =
            super::ch1::calibrate_fibonacci_for(ctx, &one.base, Duration::from_millis(20)).await?;
        rec.figure("fibonacci limit", limit as f64, "n");
        rec.figure("one fibonacci, alone", took.as_secs_f64() * 1e3, "ms");
        let (rps1, a1) = fibonacci_throughput(ctx, &one.base, limit).await?;
        let (rps2, a2) = fibonacci_throughput(ctx, &two.base, limit).await?;
        rec.check(
            "both configurations compute the same fibonacci",
            !a1.is_empty() && a1 == a2,
            format!("{} digits", a1.len()),
        );
        rec.figure("throughput, workers = 1", rps1, "req/s");
        rec.figure("throughput, workers = 2", rps2, "req/s");
        rec.figure(
            "ratio 2 workers / 1",
            rps2 / rps1.max(f64::MIN_POSITIVE),
            "x",
        );
        rec.figure(
            "cores on this machine",
            std::thread::available_parallelism().map_or(1, |n| n.get()) as f64,
            "count",
        );
        Ok(())
    })
}
