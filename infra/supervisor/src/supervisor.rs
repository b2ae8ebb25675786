//! Running a plan: dependency-ordered start gated on health, restarts with capped backoff,
//! reverse-order stop.
//!
//! Each instance is one task that owns its child process for the child's whole life: it spawns,
//! probes health, reaps the exit, backs off and respawns, and on its service's stop token
//! terminates the process group. `Lab::up` only wires readiness: it starts a service as soon as
//! every service it depends on has all its instances healthy.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use lab_net::client::Client;
use tokio::sync::oneshot;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;

use crate::backoff::BackoffState;
use crate::events::{Event, EventSink};
use crate::plan::{HealthSpec, InstanceSpec, Plan, RestartSpec};
use crate::procfs::ProcId;
pub use crate::report::{Breakdown, InstanceTiming, ServiceTiming, UpError};
use crate::runtime::{Runtime, docker};
use crate::state::{Health, InstanceRecord, Phase, STATE_VERSION, State, StateStore};

/// Environment variable set on every instance: the state directory of the lab that owns it.
/// `lab down` finds stray instances by it even if their pid was never recorded.
pub const LAB_STATE_DIR_ENV: &str = "LAB_STATE_DIR";
/// Environment variable set on every instance: its id, e.g. `recipe-api#1`.
pub const LAB_INSTANCE_ENV: &str = "LAB_INSTANCE";

/// A started service: its stop token and the tasks of its instances.
struct ServiceRun {
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

/// A running lab.
pub struct Lab {
    plan: Arc<Plan>,
    store: StateStore,
    events: EventSink,
    runtime: Runtime,
    /// Index-aligned with `plan.services`; `None` for services never started.
    runs: Vec<Option<ServiceRun>>,
    /// Ends the pauses whose time is up (`lab fault pause --for`) while the lab runs.
    faults_watch: CancellationToken,
}

/// The docker runtime for `lab`: the engine answers, every image is there, nothing of another
/// checkout's lab of the same name runs, leftovers of this one (a killed `up`) are removed, and
/// the network and volumes exist. Nothing is started if any of that fails.
async fn docker_runtime(lab: &crate::plan::DockerSpec, plan: &Plan) -> Result<Runtime, UpError> {
    let engine = docker::Engine::connect().await.map_err(UpError::Engine)?;
    let images: Vec<String> = plan
        .instances()
        .filter_map(|i| i.container.as_ref().map(|c| c.image.clone()))
        .collect();
    let missing = engine.missing_images(&images).await;
    if !missing.is_empty() {
        return Err(UpError::Engine(format!(
            "the Docker engine has no image {} (this engine cannot pull: build the lab's images with `lab images build`, a service's own with `build = \"dir\"`)",
            missing.join(", ")
        )));
    }
    let swept = engine.sweep(lab, false).await.map_err(UpError::Engine)?;
    if !swept.containers.is_empty() {
        tracing::warn!(containers = ?swept.containers, "removed containers left by an earlier run of this lab");
    }
    engine.prepare(lab).await.map_err(UpError::Engine)?;
    Ok(Runtime::Docker(std::sync::Arc::new(
        crate::runtime::DockerRuntime {
            engine,
            lab: lab.clone(),
        },
    )))
}

impl Lab {
    /// Start `plan`. Returns once every instance is healthy, or fails (having stopped whatever
    /// it started) on the first instance that cannot start, or when `cancel` fires.
    pub async fn up(
        plan: Plan,
        events: EventSink,
        cancel: CancellationToken,
    ) -> Result<(Lab, Breakdown), UpError> {
        let t0 = Instant::now();
        let plan = Arc::new(plan);
        let state_err = |source| UpError::State {
            dir: plan.state_dir.clone(),
            source,
        };
        std::fs::create_dir_all(plan.logs_dir()).map_err(state_err)?;
        let runtime = match &plan.docker {
            Some(d) => docker_runtime(d, &plan).await?,
            None => Runtime::Process,
        };
        let store =
            StateStore::create(plan.state_dir.clone(), initial_state(&plan)).map_err(state_err)?;
        // A new lab has no faults: what an earlier one recorded is gone with its processes.
        crate::faults::remove(&plan.state_dir);
        let faults_watch = CancellationToken::new();
        tokio::spawn(crate::faults::expire_while(
            plan.state_dir.clone(),
            runtime.engine(),
            faults_watch.clone(),
        ));
        let client = Client::new();
        let n = plan.services.len();
        let mut lab = Lab {
            plan: plan.clone(),
            store,
            events,
            runtime,
            runs: (0..n).map(|_| None).collect(),
            faults_watch,
        };

        let mut ready_count = vec![0usize; n];
        let mut started_at = vec![Duration::ZERO; n];
        let mut ready_at: Vec<Option<Duration>> = vec![None; n];
        let mut breakdown = Breakdown::default();
        let mut pending: JoinSet<(usize, Readiness)> = JoinSet::new();

        loop {
            #[allow(clippy::needless_range_loop)] // i indexes four parallel vectors
            for i in 0..n {
                let svc = &plan.services[i];
                let deps_ready = svc.depends_on.iter().all(|d| {
                    plan.services
                        .iter()
                        .position(|s| &s.name == d)
                        .is_some_and(|j| ready_at[j].is_some())
                });
                if lab.runs[i].is_some() || !deps_ready {
                    continue;
                }
                started_at[i] = t0.elapsed();
                let probe_client = match crate::health::client_for(&svc.health.check, &client) {
                    Ok(c) => c,
                    Err(reason) => {
                        lab.stop().await;
                        return Err(UpError::Probe {
                            service: svc.name.clone(),
                            reason,
                        });
                    }
                };
                let stop = CancellationToken::new();
                let mut tasks = Vec::new();
                for inst in &svc.instances {
                    let (tx, rx) = oneshot::channel();
                    let ctx = InstanceCtx {
                        log: plan.logs_dir().join(inst.log_file_name()),
                        spec: inst.clone(),
                        health: svc.health.clone(),
                        restart: svc.restart.clone(),
                        grace: svc.stop_grace,
                        store: lab.store.clone(),
                        events: lab.events.clone(),
                        stop: stop.clone(),
                        client: probe_client.clone(),
                        runtime: lab.runtime.clone(),
                        t0,
                        healthy_since: std::sync::Mutex::new(None),
                    };
                    tasks.push(tokio::spawn(run_instance(ctx, tx)));
                    pending.spawn(async move { (i, rx.await) });
                }
                lab.runs[i] = Some(ServiceRun { stop, tasks });
            }
            if ready_at.iter().all(Option::is_some) {
                break;
            }
            let failure = tokio::select! {
                joined = pending.join_next() => match joined {
                    Some(Ok((i, Ok(Ok(timing))))) => {
                        breakdown.instances.push(timing);
                        ready_count[i] += 1;
                        if ready_count[i] == plan.services[i].instances.len() {
                            ready_at[i] = Some(t0.elapsed());
                        }
                        continue;
                    }
                    Some(Ok((_, Ok(Err(e))))) => e,
                    // An instance task ended without reporting: it was stopped or panicked.
                    Some(Ok((_, Err(_)))) | Some(Err(_)) | None => UpError::Interrupted,
                },
                _ = cancel.cancelled() => UpError::Interrupted,
            };
            lab.stop().await;
            return Err(failure);
        }

        breakdown.total = t0.elapsed();
        breakdown.services = plan
            .services
            .iter()
            .enumerate()
            .map(|(i, s)| ServiceTiming {
                name: s.name.clone(),
                depends_on: s.depends_on.clone(),
                started_at: started_at[i],
                ready_at: ready_at[i].unwrap_or_default(),
            })
            .collect();
        breakdown.instances.sort_by_key(|t| t.spawn_at);
        lab.store.update(|s| s.phase = Phase::Up);
        if !plan.faults.is_empty() {
            let ctx = crate::schedule::Context {
                state_dir: plan.state_dir.clone(),
                store: lab.store.clone(),
                engine: lab.runtime.engine(),
                network: plan.docker.as_ref().map(|d| d.network.clone()),
                hub_logs: plan.hub_logs.clone(),
                events: lab.events.clone(),
            };
            tokio::spawn(crate::schedule::run(
                ctx,
                plan.faults.clone(),
                lab.faults_watch.clone(),
            ));
        }
        Ok((lab, breakdown))
    }

    /// The current state (what `lab status` reads from disk).
    pub fn state(&self) -> State {
        self.store.snapshot()
    }

    /// Stop every started service in reverse start order, each instance SIGTERM → grace →
    /// SIGKILL on its whole process group, then remove the state file (logs stay).
    pub async fn stop(mut self) {
        self.store.update(|s| s.phase = Phase::Stopping);
        // Every pause ends first: a stopped process takes its SIGTERM only once it runs.
        self.faults_watch.cancel();
        let engine = self.runtime.engine();
        if let Err(e) =
            crate::faults::clear(&self.plan.state_dir, engine.as_ref(), "lab down", |_| true).await
        {
            tracing::warn!(error = %e, "cannot end the lab's faults");
        }
        for (i, run) in self.runs.iter_mut().enumerate().rev() {
            let Some(run) = run.take() else { continue };
            (self.events)(Event::Stopping {
                service: self.plan.services[i].name.clone(),
            });
            run.stop.cancel();
            for task in run.tasks {
                if let Err(e) = task.await {
                    tracing::error!(error = %e, "instance task failed");
                }
            }
        }
        if let Runtime::Docker(d) = &self.runtime {
            d.engine.remove_network(&d.lab).await;
        }
        if let Err(e) = self.store.remove() {
            tracing::warn!(error = %e, "cannot remove lab state");
        }
        crate::faults::remove(&self.plan.state_dir);
    }
}

fn initial_state(plan: &Plan) -> State {
    State {
        version: STATE_VERSION,
        name: plan.name.clone(),
        config: plan.config_path.clone(),
        supervisor: ProcId::of(std::process::id()).unwrap_or(ProcId {
            pid: std::process::id(),
            start_time: 0,
        }),
        phase: Phase::Starting,
        docker: plan.docker.clone(),
        order: plan.services.iter().map(|s| s.name.clone()).collect(),
        instances: plan
            .services
            .iter()
            .flat_map(|s| s.instances.iter().map(move |i| (s, i)))
            .map(|(s, i)| InstanceRecord {
                service: i.service.clone(),
                instance: i.index,
                address: i.address(),
                port: i.port,
                process: None,
                container: None,
                health: Health::Starting,
                health_check: s.health.check.clone(),
                restarts: 0,
                last_exit: None,
                log: plan.logs_dir().join(i.log_file_name()),
            })
            .collect(),
    }
}

// === impl instance task ===

struct InstanceCtx {
    spec: InstanceSpec,
    health: HealthSpec,
    restart: RestartSpec,
    grace: Duration,
    log: PathBuf,
    store: StateStore,
    events: EventSink,
    /// The service's stop token: once cancelled, the instance terminates and never restarts.
    stop: CancellationToken,
    client: Client,
    runtime: Runtime,
    /// Start of `up`, for the breakdown.
    t0: Instant,
    /// Since when the current process has been continuously healthy; the backoff starts over
    /// once an instance that exits had been healthy for `reset_after`.
    healthy_since: std::sync::Mutex<Option<Instant>>,
}

type ReadyTx = oneshot::Sender<Result<InstanceTiming, UpError>>;
/// What an instance reports once: healthy (with timings) or why it could not start.
type Readiness = Result<Result<InstanceTiming, UpError>, oneshot::error::RecvError>;

enum Outcome {
    Stop,
    Exited(crate::runtime::Exit),
    NeverHealthy(String),
}

impl InstanceCtx {
    fn set(&self, f: impl FnOnce(&mut InstanceRecord)) {
        self.store
            .update_instance(&self.spec.service, self.spec.index, f);
    }
    fn emit(&self, e: Event) {
        (self.events)(e);
    }
    /// Sleep for `d` unless stopped first; true if stopped.
    async fn sleep_or_stop(&self, d: Duration) -> bool {
        tokio::select! {
            _ = self.stop.cancelled() => true,
            _ = tokio::time::sleep(d) => false,
        }
    }
}

async fn run_instance(ctx: InstanceCtx, ready: ReadyTx) {
    let id = ctx.spec.id();
    let mut ready = Some(ready);
    let mut backoff = BackoffState::new(ctx.restart.backoff);
    let mut restarts = 0u32;
    let mut env = ctx.spec.clone();
    env.env.push((LAB_INSTANCE_ENV.into(), id.clone()));
    if let Some(c) = &mut env.container {
        c.env.push((LAB_INSTANCE_ENV.into(), id.clone()));
    }
    if let Some(dir) = ctx.log.parent().and_then(|l| l.parent()) {
        env.env
            .push((LAB_STATE_DIR_ENV.into(), dir.display().to_string()));
    }
    loop {
        if ctx.stop.is_cancelled() {
            return;
        }
        let spawn_start = Instant::now();
        let started = ctx
            .runtime
            .spawn(&env, &ctx.health, ctx.grace, &ctx.log)
            .await;
        let mut running = match started {
            Ok(r) => r,
            Err(e) => {
                ctx.emit(Event::SpawnFailed {
                    instance: id.clone(),
                    error: e.clone(),
                });
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(UpError::Spawn {
                        instance: id,
                        error: e,
                        log: ctx.log.clone(),
                    }));
                    return;
                }
                if !restart_after(&ctx, &mut backoff, &mut restarts, Duration::ZERO).await {
                    return;
                }
                continue;
            }
        };
        let pid = running.pid();
        ctx.set(|r| {
            r.process = running.process();
            r.container = running.container();
            r.health = Health::Starting;
            r.restarts = restarts;
        });
        ctx.emit(Event::Spawned {
            instance: id.clone(),
            pid,
            restarts,
        });
        let spawned = Instant::now();
        let target = running.probe_target(&ctx.spec, &ctx.health.check);
        let owner = running.process();

        let outcome = tokio::select! {
            biased;
            _ = ctx.stop.cancelled() => Outcome::Stop,
            exit = running.wait() => Outcome::Exited(exit),
            reason = watch_health(&ctx, &mut ready, (spawn_start, spawned), &target, owner) => Outcome::NeverHealthy(reason),
        };
        match outcome {
            Outcome::Stop => {
                let forced = running.terminate(ctx.grace).await;
                ctx.set(|r| {
                    r.process = None;
                    r.container = None;
                    r.health = Health::Stopped;
                });
                ctx.emit(Event::Stopped {
                    instance: id,
                    forced,
                });
                return;
            }
            Outcome::NeverHealthy(reason) => {
                running.terminate(ctx.grace).await;
                ctx.set(|r| {
                    r.process = None;
                    r.container = None;
                    r.health = Health::Stopped;
                });
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(UpError::NotHealthy {
                        instance: id,
                        deadline: ctx.health.deadline,
                        reason,
                        log: ctx.log.clone(),
                    }));
                }
                return;
            }
            Outcome::Exited(exit) => {
                running.reap().await;
                let ran_for = spawned.elapsed();
                let healthy_for = ctx
                    .healthy_since
                    .lock()
                    .expect("lock")
                    .take()
                    .map_or(Duration::ZERO, |t| t.elapsed());
                let text = exit.text;
                ctx.set(|r| {
                    r.process = None;
                    r.container = None;
                    r.health = Health::Exited;
                    r.last_exit = Some(text.clone());
                });
                ctx.emit(Event::Exited {
                    instance: id.clone(),
                    status: text.clone(),
                    ran_for,
                });
                if let Some(tx) = ready.take() {
                    let _ = tx.send(Err(UpError::ExitedEarly {
                        instance: id,
                        status: text,
                        log: ctx.log.clone(),
                    }));
                    return;
                }
                if crate::faults::take_restart(ctx.store.dir(), &id) {
                    // `lab fault restart`: started again at once, whatever the policy says.
                    restarts += 1;
                    let n = restarts;
                    ctx.set(|r| r.restarts = n);
                    ctx.emit(Event::Restarting {
                        instance: id.clone(),
                        delay: Duration::ZERO,
                        restarts: n,
                    });
                    continue;
                }
                let success = exit.success;
                if !ctx.restart.policy.restarts(success) {
                    let policy = match ctx.restart.policy {
                        crate::plan::RestartPolicy::Always => "always",
                        crate::plan::RestartPolicy::OnFailure => "on-failure",
                        crate::plan::RestartPolicy::Never => "never",
                    };
                    ctx.emit(Event::NotRestarting {
                        instance: id,
                        policy,
                    });
                    ctx.stop.cancelled().await;
                    return;
                }
                if !restart_after(&ctx, &mut backoff, &mut restarts, healthy_for).await {
                    return;
                }
            }
        }
    }
}

/// Count a restart and wait out its backoff (started over if the instance had been healthy
/// for `reset_after`); false if the service was stopped meanwhile.
async fn restart_after(
    ctx: &InstanceCtx,
    backoff: &mut BackoffState,
    restarts: &mut u32,
    healthy_for: Duration,
) -> bool {
    let delay = backoff.next_delay(healthy_for);
    *restarts += 1;
    let n = *restarts;
    ctx.set(|r| r.restarts = n);
    ctx.emit(Event::Restarting {
        instance: ctx.spec.id(),
        delay,
        restarts: n,
    });
    if ctx.sleep_or_stop(delay).await {
        ctx.set(|r| r.health = Health::Stopped);
        return false;
    }
    true
}

/// Probe until healthy (reporting readiness the first time), then keep probing and record
/// changes. Returns only if the instance is starting for the first time and misses its deadline.
async fn watch_health(
    ctx: &InstanceCtx,
    ready: &mut Option<ReadyTx>,
    (spawn_start, spawned): (Instant, Instant),
    (host, port): &(String, u16),
    owner: Option<ProcId>,
) -> String {
    let h = &ctx.health;
    let spec = &ctx.spec;
    let probe = || crate::health::probe(&ctx.client, &h.check, host, *port, h.timeout);
    // An answer proves the instance is up only if the port is its own: a program of another
    // lab may hold a port this instance was given and failed to bind.
    let owned = |was_healthy: bool, answer: Result<(), String>| async move {
        let (Ok(()), false, Some(owner)) = (&answer, was_healthy, owner) else {
            return answer;
        };
        if matches!(h.check, crate::plan::HealthCheck::None) {
            return answer;
        }
        let port = *port;
        let foreign =
            tokio::task::spawn_blocking(move || crate::procfs::port_held_before(port, owner))
                .await
                .ok()
                .flatten();
        match foreign {
            Some(holder) => Err(format!(
                "port {port} answers, but pid {} ({}) holds it, not this instance; \
                 did it fail to bind? (see its log)",
                holder.pid, holder.command
            )),
            None => answer,
        }
    };
    let mut healthy = loop {
        match owned(false, probe().await).await {
            Ok(()) => break true,
            Err(reason) if spawned.elapsed() >= h.deadline => {
                if ready.is_some() {
                    return reason;
                }
                ctx.set(|r| r.health = Health::Unhealthy);
                ctx.emit(Event::Unhealthy {
                    instance: spec.id(),
                    reason,
                });
                break false;
            }
            Err(_) => tokio::time::sleep(h.start_interval).await,
        }
    };
    if healthy {
        mark_healthy(ctx, ready, spawn_start, spawned);
    }
    loop {
        tokio::time::sleep(if healthy {
            h.interval
        } else {
            h.start_interval.max(Duration::from_millis(500))
        })
        .await;
        // The instance's output is bounded on disk, however much it prints.
        crate::logs::rotate_if_big(&ctx.log, crate::logs::MAX_LOG_BYTES);
        let now = owned(healthy, probe().await).await;
        match (healthy, now) {
            (false, Ok(())) => {
                healthy = true;
                mark_healthy(ctx, ready, spawn_start, spawned);
            }
            (true, Err(reason)) => {
                healthy = false;
                *ctx.healthy_since.lock().expect("lock") = None;
                ctx.set(|r| r.health = Health::Unhealthy);
                ctx.emit(Event::Unhealthy {
                    instance: spec.id(),
                    reason,
                });
            }
            _ => {}
        }
    }
}

fn mark_healthy(
    ctx: &InstanceCtx,
    ready: &mut Option<ReadyTx>,
    spawn_start: Instant,
    spawned: Instant,
) {
    *ctx.healthy_since.lock().expect("lock") = Some(Instant::now());
    ctx.set(|r| r.health = Health::Healthy);
    ctx.emit(Event::Healthy {
        instance: ctx.spec.id(),
        after_spawn: spawned.elapsed(),
    });
    if let Some(tx) = ready.take() {
        let _ = tx.send(Ok(InstanceTiming {
            instance: ctx.spec.id(),
            service: ctx.spec.service.clone(),
            spawn_at: spawn_start.duration_since(ctx.t0),
            spawn_took: spawned.duration_since(spawn_start),
            healthy_at: ctx.t0.elapsed(),
        }));
    }
}
