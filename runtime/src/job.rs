//! Starting a job on its shards, stopping it, and collecting its outcome.
//!
//! `execute` validates the configuration and the graph, creates every exchange's channel mesh,
//! and starts one glommio executor thread per shard (pinned when there are enough cores). The
//! first shard that fails records its error and stops the others (they see `is_stopping` on
//! their next loop turn and are woken if parked); `JobHandle::wait` joins every thread, so no
//! thread outlives the job, and returns the root cause.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_lite::FutureExt;
use glommio::{LocalExecutorBuilder, Placement};

use std::cell::RefCell;
use std::rc::Rc;

use crate::checkpoint::restore::{Decision, RestoreChoice, Verdict};
use crate::checkpoint::savepoint::load::Savepoint;
use crate::checkpoint::savepoint::{SavepointMode, SavepointOutcome, SavepointRequest};
use crate::checkpoint::state_store::{
    RestoredState, ShardStateStore, StoreVerifyError, VerifiedShardStore,
};
use crate::checkpoint::{CheckpointControl, Manifest, ShardCheckpoints};
use crate::config::{JobConfig, Pinning, allowed_cpus};
use crate::error::{JobError, ShardId};
use crate::graph::{JobGraph, ShardBuild, ShardCheckpointing};
use crate::metrics::ShardMetrics;
use crate::park::Parker;
use crate::source::SplitContext;
use crate::state::snapshot::OperatorState;
use crate::time::Clock;

/// Shared by all shards of a job: the stop flag, the first failure, and everyone's parker.
#[derive(Debug)]
pub(crate) struct JobControl {
    stopping: AtomicBool,
    failure: Mutex<Option<JobError>>,
    parkers: Vec<Arc<Parker>>,
    /// Set when the job checkpoints.
    pub(crate) checkpoints: Option<Arc<CheckpointControl>>,
}

impl JobControl {
    /// Wakes every shard (something they wait for changed).
    pub(crate) fn wake_all(&self) {
        for parker in &self.parkers {
            parker.wake();
        }
    }

    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        for parker in &self.parkers {
            parker.wake();
        }
    }

    fn fail(&self, error: JobError) {
        {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            if failure.is_none() {
                *failure = Some(error);
            }
        }
        self.stop();
    }
}

/// What a finished job measured.
#[derive(Debug, Clone)]
pub struct JobReport {
    /// Wall time from the start of the shards to the end of the last one.
    pub elapsed: Duration,
    /// Shards the job ran on.
    pub shards: usize,
    /// Cores the shards ran on: `min(shards, available cores)`.
    pub cores: usize,
    /// Totals over all shards (latency histogram merged, CPU time summed).
    pub totals: ShardMetrics,
    /// Each shard's own numbers.
    pub per_shard: Vec<ShardMetrics>,
    /// For a checkpointing job: trigger-to-complete duration of each checkpoint this run
    /// completed, in µs, in order.
    pub checkpoint_durations_us: Option<Vec<u64>>,
    /// For a checkpointing job: the synchronous part of every keyed-state snapshot an operator
    /// instance took at a barrier (empty without keyed state).
    pub snapshot_pauses: Option<Vec<crate::checkpoint::SnapshotPause>>,
    /// Every savepoint this run took or failed to take (empty without checkpoints).
    pub savepoints: Vec<SavepointOutcome>,
    /// True when the job ended because it stopped with a savepoint (its inputs may not have
    /// ended).
    pub stopped_with_savepoint: bool,
}

/// A running job.
#[derive(Debug)]
pub struct JobHandle {
    threads: Vec<glommio::ExecutorJoinHandle<Result<ShardMetrics, JobError>>>,
    control: Arc<JobControl>,
    started: Instant,
    shards: usize,
}

impl JobHandle {
    /// Asks every shard to stop; `wait` then returns `JobError::Cancelled` unless the job had
    /// already failed or finished.
    pub fn cancel(&self) {
        self.control.stop();
    }

    /// Asks for a savepoint into `dir` (created; it must not hold one yet), taken as the next
    /// checkpoint. With `SavepointMode::Stop` the job ends once the savepoint is complete and
    /// its output committed. The outcome is in [`JobHandle::savepoints`] and the report.
    ///
    /// # Errors
    /// The job does not checkpoint.
    pub fn savepoint(
        &self,
        dir: impl Into<std::path::PathBuf>,
        mode: SavepointMode,
    ) -> Result<(), JobError> {
        let checkpoints = self.control.checkpoints.as_ref().ok_or_else(|| {
            JobError::Config("savepoints need checkpointing (a state directory)".into())
        })?;
        checkpoints.request_savepoint(SavepointRequest {
            dir: dir.into(),
            mode,
        });
        self.control.wake_all();
        Ok(())
    }

    /// The savepoints taken (or failed) so far.
    pub fn savepoints(&self) -> Vec<SavepointOutcome> {
        self.control
            .checkpoints
            .as_ref()
            .map_or_else(Vec::new, |c| c.savepoints())
    }

    /// A handle that cancels the job from another thread.
    pub fn canceller(&self) -> Canceller {
        Canceller(Arc::clone(&self.control))
    }

    /// Waits for every shard thread to end.
    ///
    /// # Errors
    /// The first failure of any shard (naming operator and shard), or `Cancelled`.
    pub fn wait(self) -> Result<JobReport, JobError> {
        let mut per_shard = Vec::with_capacity(self.threads.len());
        let mut first_error = None;
        for (shard, thread) in self.threads.into_iter().enumerate() {
            match thread.join() {
                Ok(Ok(metrics)) => per_shard.push(metrics),
                Ok(Err(e)) => {
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    first_error.get_or_insert(JobError::Panic {
                        operator: "shard runtime".into(),
                        shard: ShardId(shard),
                        message: e.to_string(),
                    });
                }
            }
        }
        let elapsed = self.started.elapsed();
        if let Some(checkpoints) = &self.control.checkpoints {
            checkpoints.fail_unserved();
        }
        // The recorded failure is the root cause; the other shards only saw the stop.
        let recorded = self
            .control
            .failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        if let Some(error) = recorded.or(first_error) {
            return Err(error);
        }
        let mut totals = ShardMetrics::default();
        for m in &per_shard {
            totals.merge(m);
        }
        let cores = self.shards.min(crate::config::available_cores());
        let checkpoint_durations_us = self.control.checkpoints.as_ref().map(|c| c.durations_us());
        let snapshot_pauses = self.control.checkpoints.as_ref().map(|c| c.snapshots());
        let savepoints = self
            .control
            .checkpoints
            .as_ref()
            .map_or_else(Vec::new, |c| c.savepoints());
        let stopped_with_savepoint = self
            .control
            .checkpoints
            .as_ref()
            .is_some_and(|c| c.stop_after().is_some());
        Ok(JobReport {
            elapsed,
            shards: self.shards,
            cores,
            totals,
            per_shard,
            checkpoint_durations_us,
            snapshot_pauses,
            savepoints,
            stopped_with_savepoint,
        })
    }
}

/// Cancels a job from anywhere (`Send + Sync + Clone`).
#[derive(Clone, Debug)]
pub struct Canceller(Arc<JobControl>);

impl Canceller {
    /// Asks every shard to stop.
    pub fn cancel(&self) {
        self.0.stop();
    }
}

/// Starts `graph` on `config.shards` shards.
///
/// # Errors
/// An invalid configuration or graph, or a shard thread that could not start (the others are
/// stopped and joined first).
pub fn execute(graph: JobGraph, config: JobConfig) -> Result<JobHandle, JobError> {
    config.validate()?;
    graph.validate()?;
    if config.checkpoint.is_some() {
        graph.validate_checkpointing()?;
    }
    let shards = config.shards;
    let parkers: Vec<Arc<Parker>> = (0..shards).map(|_| Arc::new(Parker::new())).collect();
    let candidates = restore_candidates(&config)?;
    // A savepoint is restored only into a state directory without checkpoints.
    let savepoint = match candidates.is_empty() {
        true => restore_savepoint(&config)?,
        false => None,
    };
    let checkpoints = config.checkpoint.as_ref().map(|c| {
        let restored = candidates.first().map_or_else(
            || {
                savepoint
                    .as_ref()
                    .map_or(0, |s| s.manifest.checkpoint.checkpoint)
            },
            |m| m.checkpoint,
        );
        Arc::new(CheckpointControl::new(
            c.clone(),
            shards,
            config.max_key_groups,
            restored,
        ))
    });
    let restore_plan = match (&checkpoints, &config.checkpoint, &savepoint) {
        (Some(_), Some(_), Some(savepoint)) => RestorePlan::Savepoint {
            manifest: Arc::new(savepoint.manifest.checkpoint.clone()),
            keeps_state: graph.has_snapshotted_state(),
        },
        (Some(control), Some(c), None) if graph.has_snapshotted_state() => {
            RestorePlan::Agreed(Arc::new(RestoreChoice::new(
                candidates,
                shards,
                c.manifest_dir(),
                Arc::clone(control),
            )))
        }
        _ => RestorePlan::Newest(candidates.into_iter().next()),
    };
    let control = Arc::new(JobControl {
        stopping: AtomicBool::new(false),
        failure: Mutex::new(None),
        parkers: parkers.clone(),
        checkpoints,
    });

    // Channel meshes, one per exchange, split into per-shard bundles.
    let n_nodes = graph.nodes.len();
    let mut levels = vec![0u32; n_nodes];
    let mut per_shard_endpoints: Vec<Vec<Option<Box<dyn std::any::Any + Send>>>> = (0..shards)
        .map(|_| (0..n_nodes).map(|_| None).collect())
        .collect();
    let mut next_level = 1;
    for (i, node) in graph.nodes.iter().enumerate() {
        if let Some(bundles) = node.spec.exchange_endpoints(&config, &parkers) {
            levels[i] = next_level;
            next_level += 1;
            for (shard, bundle) in bundles.into_iter().enumerate() {
                per_shard_endpoints[shard][i] = Some(bundle);
            }
        }
    }

    let names: Arc<Vec<String>> = Arc::new(graph.nodes.iter().map(|n| n.name.clone()).collect());
    let graph = Arc::new(graph);
    let config = Arc::new(config);
    let levels = Arc::new(levels);
    let clock = Clock::start();
    let cpus = allowed_cpus();
    let pin = config.pinning == Pinning::Auto && shards <= cpus.len();

    let keeps_state = config.checkpoint.is_some() && graph.has_snapshotted_state();
    let mut threads = Vec::with_capacity(shards);
    for (shard, endpoints) in per_shard_endpoints.into_iter().enumerate() {
        let placement = if pin {
            Placement::Fixed(cpus[shard])
        } else {
            Placement::Unbound
        };
        let graph = Arc::clone(&graph);
        let config = Arc::clone(&config);
        let shard_control = Arc::clone(&control);
        let parker = Arc::clone(&parkers[shard]);
        let levels = Arc::clone(&levels);
        let names = Arc::clone(&names);
        let restore_plan = restore_plan.clone();
        let savepoint = savepoint.clone();
        let spawned = LocalExecutorBuilder::new(placement)
            .name(&format!("corestrom-shard-{shard}"))
            // The shard loop parks itself; glommio's own spinning would only burn the core.
            .spin_before_park(Duration::from_millis(0))
            // The executor polls io_uring completions only when a task queue's time slice
            // ends (or every task waits). The shard loop is always runnable, so with a keyed-state
            // store the slice bounds how late each I/O step of a seal is seen: 0.5 ms instead of 100 ms.
            .preempt_timer(if keeps_state {
                STORE_PREEMPT_TIMER
            } else {
                Duration::from_millis(100)
            })
            .spawn(move || async move {
                let split = SplitContext {
                    shard,
                    shards: config.shards,
                };
                parker.register_current_thread();
                let state_dir = config.checkpoint.as_ref().map(|c| c.state_dir.clone());
                let chosen =
                    choose_restore(&restore_plan, shard, state_dir.as_deref(), &shard_control)
                        .await;
                let (restore, verified_store) = match chosen {
                    Ok(chosen) => chosen,
                    Err(JobError::Cancelled) => return Err(JobError::Cancelled),
                    Err(error) => {
                        shard_control.fail(error);
                        return Err(JobError::Cancelled);
                    }
                };
                let checkpointing = shard_control.checkpoints.as_ref().map(|c| {
                    let groups =
                        crate::hash::key_group_range(shard, config.max_key_groups, config.shards);
                    ShardCheckpointing {
                        control: Arc::clone(c),
                        shard: Rc::new(RefCell::new(ShardCheckpoints::new(
                            shard,
                            (groups.start, groups.end),
                            c.completed(),
                        ))),
                        restore: restore.clone(),
                        work: Rc::default(),
                        savepoint: savepoint.clone(),
                    }
                });
                let build = ShardBuild {
                    split,
                    config,
                    clock,
                    loop_now: Default::default(),
                    metrics: Default::default(),
                    drivers: Vec::new(),
                    pumps: Vec::new(),
                    sinks_finished: Vec::new(),
                    endpoints,
                    levels: levels.to_vec(),
                    names,
                    checkpointing,
                    sink_commits: Vec::new(),
                    processing_time: Default::default(),
                    restored_state: Default::default(),
                };
                let outcome = run_shard(
                    graph,
                    build,
                    verified_store,
                    Arc::clone(&shard_control),
                    parker,
                )
                .await;
                match outcome {
                    Ok(metrics) => Ok(metrics),
                    Err(JobError::Cancelled) => Err(JobError::Cancelled),
                    Err(error) => {
                        // The recorded failure is what `wait` reports; this shard just stopped.
                        shard_control.fail(error);
                        Err(JobError::Cancelled)
                    }
                }
            });
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                control.stop();
                for t in threads {
                    let _ = t.join();
                }
                return Err(JobError::Spawn {
                    shard: ShardId(shard),
                    message: e.to_string(),
                });
            }
        }
    }
    Ok(JobHandle {
        threads,
        control,
        started: clock.origin(),
        shards,
    })
}

/// Time slice of a shard's task queue when it has a keyed-state store (see `execute`). A
/// loaded machine often deschedules a shard for longer than this between glommio arming the
/// timer and running the queue; unpatched glommio 0.9 then parked forever with the shard's task
/// queued, so this relies on the fix in third_party/glommio (see third_party/README.md).
const STORE_PREEMPT_TIMER: Duration = Duration::from_micros(500);

/// The manifests a checkpointing job may restart from: every one that verifies, newest first
/// (corrupt manifests are reported on stderr and skipped). Which one it resumes from is agreed
/// by the shards (`checkpoint::restore`).
fn restore_candidates(config: &JobConfig) -> Result<Vec<Arc<Manifest>>, JobError> {
    let Some(checkpoint) = &config.checkpoint else {
        return Ok(Vec::new());
    };
    let dir = checkpoint.manifest_dir();
    let listed = crate::checkpoint::manifest::list(&dir).map_err(|e| {
        JobError::Checkpoint(format!("reading checkpoints in {}: {e}", dir.display()))
    })?;
    let mut candidates = Vec::new();
    for listed in listed.into_iter().rev() {
        let manifest = match listed.manifest {
            Ok(manifest) => manifest,
            Err(error) => {
                eprintln!("corestrom: skipping a checkpoint that does not verify: {error}");
                continue;
            }
        };
        if manifest.shards != config.shards {
            return Err(JobError::Checkpoint(format!(
                "checkpoint {} was taken with {} shards, the job has {}; restore it with the same shard count",
                manifest.checkpoint, manifest.shards, config.shards
            )));
        }
        if manifest.max_key_groups != config.max_key_groups {
            return Err(JobError::Checkpoint(format!(
                "checkpoint {} was taken with {} key groups, the job has {}",
                manifest.checkpoint, manifest.max_key_groups, config.max_key_groups
            )));
        }
        candidates.push(Arc::new(manifest));
    }
    if let (Some(newest), Some(savepoint)) = (candidates.first(), &checkpoint.from_savepoint) {
        eprintln!(
            "corestrom: {} holds checkpoints; resuming from checkpoint {} instead of savepoint {}",
            checkpoint.state_dir.display(),
            newest.checkpoint,
            savepoint.display()
        );
    }
    Ok(candidates)
}

/// How a shard learns the checkpoint it resumes from.
#[derive(Clone)]
enum RestorePlan {
    /// Without keyed state there is no store to verify: the newest manifest that verifies.
    Newest(Option<Arc<Manifest>>),
    /// With keyed state the shards verify their stores and agree (`checkpoint::restore`).
    Agreed(Arc<RestoreChoice>),
    /// A savepoint's manifest (of the job that took it); with keyed state each shard creates an
    /// empty store and loads the savepoint's key groups into it (`open_state_store`).
    Savepoint {
        manifest: Arc<Manifest>,
        keeps_state: bool,
    },
}

/// The checkpoint shard `shard` resumes from, and its store verified there (or to be created
/// empty), once every shard agreed.
async fn choose_restore(
    plan: &RestorePlan,
    shard: usize,
    state_dir: Option<&std::path::Path>,
    control: &JobControl,
) -> Result<(Option<Arc<Manifest>>, Option<VerifiedShardStore>), JobError> {
    let choice = match plan {
        RestorePlan::Newest(manifest) => return Ok((manifest.clone(), None)),
        RestorePlan::Agreed(choice) => choice,
        RestorePlan::Savepoint {
            manifest,
            keeps_state,
        } => {
            let store = match keeps_state {
                true => Some(empty_store(state_dir, shard).await?),
                false => None,
            };
            return Ok((Some(Arc::clone(manifest)), store));
        }
    };
    if choice.candidates().is_empty() {
        return Ok((None, Some(empty_store(state_dir, shard).await?)));
    }
    let state_dir = state_dir.expect("an agreed restore implies checkpoints");
    for (index, candidate) in choice.candidates().iter().enumerate() {
        let mut verified = None;
        let verdict = match &candidate.per_shard[shard].store {
            None => Verdict::Fatal(format!(
                "checkpoint {} has no keyed state for shard {shard}, but this job keeps keyed state: \
                 restore a checkpoint of the same job graph",
                candidate.checkpoint
            )),
            Some(store) => {
                let restore = Some((candidate.checkpoint, store));
                match VerifiedShardStore::verify(state_dir, shard, restore).await {
                    Ok(store) => {
                        verified = Some(store);
                        Verdict::Intact
                    }
                    Err(StoreVerifyError::Corrupt(why)) => Verdict::Corrupt(why),
                    Err(StoreVerifyError::Fatal(e)) => Verdict::Fatal(e.to_string()),
                }
            }
        };
        match choice.vote(index, verdict, &control.stopping)? {
            Decision::Accept => return Ok((Some(Arc::clone(candidate)), verified)),
            Decision::Next => {}
            Decision::Fail(why) => return Err(JobError::Checkpoint(why)),
        }
    }
    unreachable!("the last candidate's round accepts or fails")
}

/// Shard `shard`'s store, to be created empty under `state_dir`.
async fn empty_store(
    state_dir: Option<&std::path::Path>,
    shard: usize,
) -> Result<VerifiedShardStore, JobError> {
    let state_dir = state_dir.expect("keyed state in a job implies checkpoints");
    match VerifiedShardStore::verify(state_dir, shard, None).await {
        Ok(store) => Ok(store),
        Err(StoreVerifyError::Corrupt(why)) => Err(JobError::Checkpoint(why)),
        Err(StoreVerifyError::Fatal(e)) => Err(e),
    }
}

/// The configured savepoint, verified (its state files are verified when the shards load
/// them), or none.
fn restore_savepoint(config: &JobConfig) -> Result<Option<Arc<Savepoint>>, JobError> {
    let Some(dir) = config
        .checkpoint
        .as_ref()
        .and_then(|c| c.from_savepoint.as_deref())
    else {
        return Ok(None);
    };
    let savepoint = Savepoint::open(dir)
        .map_err(|e| JobError::Checkpoint(format!("restoring savepoint: {e}")))?;
    let manifest = &savepoint.manifest.checkpoint;
    if manifest.max_key_groups != config.max_key_groups {
        return Err(JobError::Checkpoint(format!(
            "savepoint {} was taken with {} key groups, the job has {}: key groups are the unit \
             of rescaling and cannot change",
            dir.display(),
            manifest.max_key_groups,
            config.max_key_groups
        )));
    }
    Ok(Some(Arc::new(savepoint)))
}

async fn run_shard(
    graph: Arc<JobGraph>,
    mut build: ShardBuild,
    verified_store: Option<VerifiedShardStore>,
    control: Arc<JobControl>,
    parker: Arc<Parker>,
) -> Result<ShardMetrics, JobError> {
    let shard = ShardId(build.split.shard);
    let names = Arc::clone(&build.names);
    let metrics = std::rc::Rc::clone(&build.metrics);
    let body = async move {
        let store = open_state_store(&graph, &mut build, verified_store).await?;
        crate::shard::instantiate(&graph, &mut build)?;
        let leftover = build.restored_state.borrow().leftover();
        if !leftover.is_empty() {
            return Err(JobError::Checkpoint(format!(
                "the restored checkpoint holds keyed state of operators {leftover:?} that this job does not have: \
                 restore a checkpoint of the same job graph"
            )));
        }
        drop(graph);
        crate::shard::run(build, store, control, parker).await
    };
    match std::panic::AssertUnwindSafe(body).catch_unwind().await {
        Ok(Ok(())) => Ok(metrics.borrow().clone()),
        Ok(Err(e)) => Err(e),
        Err(payload) => {
            let operator = crate::op_scope::current();
            let operator = if operator == crate::op_scope::NO_OPERATOR {
                "shard runtime".to_string()
            } else {
                names
                    .get(operator as usize)
                    .cloned()
                    .unwrap_or_else(|| format!("operator #{operator}"))
            };
            Err(JobError::Panic {
                operator,
                shard,
                message: panic_message(&*payload),
            })
        }
    }
}

/// Opens the shard's keyed-state store, verified at the agreed checkpoint (`choose_restore`),
/// when the job checkpoints keyed state, and loads that checkpoint's state for the operators.
async fn open_state_store(
    graph: &JobGraph,
    build: &mut ShardBuild,
    verified_store: Option<VerifiedShardStore>,
) -> Result<Option<ShardStateStore>, JobError> {
    let Some(checkpointing) = &build.checkpointing else {
        return Ok(None);
    };
    let Some(verified_store) = verified_store else {
        debug_assert!(!graph.has_snapshotted_state());
        let restored_state = match &checkpointing.savepoint {
            Some(savepoint) => savepoint.has_keyed_state(),
            None => checkpointing
                .restore
                .as_ref()
                .and_then(|m| m.per_shard[build.split.shard].store.as_ref())
                .is_some_and(|s| !s.operators.is_empty()),
        };
        if restored_state {
            return Err(JobError::Checkpoint(
                "the restored checkpoint holds keyed state, but this job keeps none: \
                 restore a checkpoint of the same job graph"
                    .into(),
            ));
        }
        return Ok(None);
    };
    let (mut store, restored) = verified_store.open().await?;
    if let Some(savepoint) = checkpointing.savepoint.clone() {
        load_savepoint(&savepoint, &mut store, build).await?;
        return Ok(Some(store));
    }
    build.restored_state = std::cell::RefCell::new(restored);
    Ok(Some(store))
}

/// Loads into the shard's fresh store the savepoint's state of the key groups the shard owns
/// now (see `checkpoint::savepoint`), for the operators to take.
async fn load_savepoint(
    savepoint: &Savepoint,
    store: &mut ShardStateStore,
    build: &mut ShardBuild,
) -> Result<(), JobError> {
    if !savepoint.has_keyed_state() {
        return Err(JobError::Checkpoint(format!(
            "savepoint {} holds no keyed state, but this job keeps keyed state: restore a \
             savepoint of the same job graph",
            savepoint.dir.display()
        )));
    }
    let groups = crate::hash::key_group_range(
        build.split.shard,
        build.config.max_key_groups,
        build.config.shards,
    );
    let loaded = savepoint
        .key_groups(groups.start, groups.end)
        .map_err(|e| JobError::Checkpoint(format!("restoring savepoint: {e}")))?;
    let state: Vec<OperatorState> = loaded
        .into_iter()
        .map(|o| OperatorState {
            operator: o.operator,
            name: o.key,
            groups: o.groups.into(),
            // The fresh store holds nothing yet: every group the savepoint has is listed.
            coverage: crate::state::snapshot::Coverage::Full,
        })
        .collect();
    store.seed(&state).await?;
    let restored = RestoredState::from_operators(
        state
            .into_iter()
            .map(|o| (o.operator, o.name, o.groups.to_vec()))
            .collect(),
    );
    build.restored_state = std::cell::RefCell::new(restored);
    Ok(())
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic with a non-string payload".to_string()
    }
}
