//! One shard: building its share of the job graph, and the loop that runs it.
//!
//! A shard runs one glommio task that loops over its *drivers* (source readers and exchange
//! receivers, each pushing batches down a fused chain) and its *pumps* (exchange outboxes, which
//! retry full rings and send batches that waited `max_batch_delay`). When a turn moves nothing,
//! partial batches leave at once; after `spin_before_park` of idleness the thread parks until a
//! peer hands it data (see `park`).
//!
//! Backpressure without deadlock: an outbox whose ring is full keeps the batch in its overflow
//! queue and reports itself blocked. A driver at level L (sources 0, the receiver of exchange k
//! level k) only feeds outboxes of higher levels, so while an outbox at level B is blocked the
//! loop pauses every driver below B and keeps running the others. The receivers of the highest
//! blocked level always run, so the data nearest the sinks always drains, and every overflow is
//! bounded by what one input batch can produce.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use crate::checkpoint::state_store::ShardStateStore;
use crate::checkpoint::{CheckpointControl, ShardCheckpoints};
use crate::error::{JobError, OperatorError};
use crate::graph::{JobGraph, NodeId, ShardBuild};
use crate::job::JobControl;
use crate::op_scope::{self, NO_OPERATOR};
use crate::park::Parker;
use crate::time::Clock;

/// What a driver's poll achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverPoll {
    /// Moved data or signals.
    Progress,
    /// Nothing to do now; `wake_at_ns` (job clock) when something will be due.
    Idle {
        /// When to poll again at the latest.
        wake_at_ns: Option<u64>,
    },
    /// Done for good.
    Finished,
}

/// What every driver sees during one loop turn.
#[derive(Clone, Copy, Debug)]
pub struct LoopContext {
    /// The job clock at the start of the turn.
    pub now_ns: u64,
    /// The job clock.
    pub clock: Clock,
}

/// Something that pushes data into a chain: a source reader or an exchange receiver.
pub(crate) trait Driver {
    /// 0 for sources, the exchange ordinal for receivers.
    fn level(&self) -> u32;
    /// True once it has sent `End` downstream.
    fn is_finished(&self) -> bool;
    /// Moves what is available now; errors carry the operator that failed.
    fn poll(&mut self, cx: &LoopContext) -> Result<DriverPoll, (u32, OperatorError)>;
    /// True when input is waiting (checked before parking).
    fn has_input(&self) -> bool;
    /// Sources: records the position and sends `Barrier(id)` downstream. Others: nothing.
    fn inject_barrier(
        &mut self,
        _id: crate::element::CheckpointId,
    ) -> Result<Option<crate::checkpoint::NamedBlob>, (u32, OperatorError)> {
        Ok(None)
    }
}

/// An exchange outbox as the loop sees it.
pub(crate) trait Pump {
    /// The exchange ordinal.
    fn level(&self) -> u32;
    /// True while some message waits for a full ring.
    fn is_blocked(&self) -> bool;
    /// Retries waiting messages and sends batches older than `max_delay_ns`; true if it sent.
    fn pump(&mut self, now_ns: u64, max_delay_ns: u64) -> bool;
    /// Sends every partial batch now; true if it sent.
    fn flush(&mut self) -> bool;
    /// True when a waiting message would now fit.
    fn could_progress(&self) -> bool;
}

/// Instantiates the graph on this shard: every node a sink consumes, from sinks back to sources.
pub(crate) fn instantiate(graph: &JobGraph, build: &mut ShardBuild) -> Result<(), JobError> {
    let n = graph.nodes.len();
    let mut outputs: Vec<Vec<Box<dyn std::any::Any>>> = (0..n).map(|_| Vec::new()).collect();
    for i in (0..n).rev() {
        let node = &graph.nodes[i];
        if outputs[i].is_empty() && !node.spec.is_sink() {
            continue;
        }
        let consumers = std::mem::take(&mut outputs[i]);
        let inputs = node
            .spec
            .instantiate(build, NodeId(i as u32), node.inputs.len(), consumers)
            .map_err(|source| JobError::Operator {
                operator: node.name.clone(),
                shard: crate::error::ShardId(build.split.shard),
                source,
            })?;
        assert_eq!(
            inputs.len(),
            node.inputs.len(),
            "node '{}' wired a collector per input",
            node.name
        );
        for (input, collector) in node.inputs.iter().zip(inputs) {
            outputs[input.0 as usize].push(collector);
        }
    }
    Ok(())
}

fn operator_name(build: &ShardBuild, operator: u32) -> String {
    if operator == NO_OPERATOR {
        "shard runtime".to_string()
    } else {
        build
            .names
            .get(operator as usize)
            .cloned()
            .unwrap_or_else(|| format!("operator #{operator}"))
    }
}

/// Runs the shard until every driver finished and every outbox drained, or the job stops.
pub(crate) async fn run(
    mut build: ShardBuild,
    mut store: Option<ShardStateStore>,
    control: Arc<JobControl>,
    parker: Arc<Parker>,
) -> Result<(), JobError> {
    let spin_ns = build.config.spin_before_park.as_nanos() as u64;
    let delay_ns = build.config.max_batch_delay.as_nanos() as u64;
    let park_max_ns = crate::constants::PARK_MAX.as_nanos() as u64;
    let clock = build.clock;
    let mut idle_since: Option<u64> = None;
    let mut checkpoints = build.checkpointing.as_ref().map(|c| CheckpointTurn {
        control: Arc::clone(&c.control),
        shard: Rc::clone(&c.shard),
        work: Rc::clone(&c.work),
        coordinator: build.split.shard == 0,
        committed: c.control.completed(),
        final_committed: false,
        stopped: false,
    });
    let mut stopped_with_savepoint = false;
    loop {
        if control.is_stopping() {
            return Err(JobError::Cancelled);
        }
        let now_ns = clock.now_ns();
        build.loop_now.set(now_ns);
        let cx = LoopContext { now_ns, clock };
        let blocked_level = highest_blocked_level(&build.pumps);

        let mut progress = false;
        if let Some(turn) = checkpoints.as_mut() {
            progress |= turn.run(&mut build, &control)?;
            if turn.stopped {
                // Stop with savepoint: its output is committed; what came after its barrier
                // stays uncommitted for the restored job to discard.
                stopped_with_savepoint = true;
                break;
            }
            // One slice of incremental snapshots per turn, between the drivers' batches, and
            // before persisting, so a snapshot completed now is written in this turn.
            progress |= turn.encode_slice(&build)?;
            if let Some(store) = store.as_mut() {
                progress |= turn.persist_state(store, &build)?;
            }
        }
        let mut open_drivers = 0;
        let mut wake_at_ns = u64::MAX;
        // Processing-time wake-ups: one heap peek per turn, a wall-clock read only when some
        // operator waits for one.
        if let Some(due_ms) = build.processing_time.next_due_ms() {
            let now_ms = crate::time::wall_clock_ms();
            if due_ms <= now_ms {
                let called =
                    build
                        .processing_time
                        .fire_due(now_ms)
                        .map_err(|(operator, source)| JobError::Operator {
                            operator: operator_name(&build, operator),
                            shard: crate::error::ShardId(build.split.shard),
                            source,
                        })?;
                progress |= called > 0;
            } else {
                let wait_ns = u64::try_from(due_ms - now_ms).unwrap_or(u64::MAX);
                wake_at_ns = now_ns.saturating_add(wait_ns.saturating_mul(1_000_000));
            }
        }
        for driver in build.drivers.iter_mut() {
            if driver.is_finished() {
                continue;
            }
            open_drivers += 1;
            if driver.level() < blocked_level {
                continue;
            }
            match driver.poll(&cx) {
                Ok(DriverPoll::Progress | DriverPoll::Finished) => progress = true,
                Ok(DriverPoll::Idle {
                    wake_at_ns: Some(w),
                }) => wake_at_ns = wake_at_ns.min(w),
                Ok(DriverPoll::Idle { wake_at_ns: None }) => {}
                Err((operator, source)) => {
                    return Err(JobError::Operator {
                        operator: operator_name(&build, operator),
                        shard: crate::error::ShardId(build.split.shard),
                        source,
                    });
                }
            }
        }
        for pump in &build.pumps {
            progress |= pump.borrow_mut().pump(now_ns, delay_ns);
        }
        if open_drivers == 0 && highest_blocked_level(&build.pumps) == 0 {
            match checkpoints.as_mut() {
                None => break,
                // With checkpoints the shard stays until the final checkpoint is committed.
                Some(turn) if turn.final_committed => break,
                Some(_) => {}
            }
        }
        // The store's writes and the seal's fsync complete through the executor's reactor,
        // which polls when the task queue's time slice ends: offer the slice every turn until
        // the checkpoint is acknowledged (and never park the thread meanwhile).
        let durability_pending = store.as_ref().is_some_and(|s| s.durability_pending());
        if durability_pending {
            glommio::yield_if_needed().await;
        }
        if progress {
            idle_since = None;
            glommio::yield_if_needed().await;
            continue;
        }
        // Nothing moved this turn: partial batches leave now instead of waiting for the delay.
        let mut flushed = false;
        for pump in &build.pumps {
            flushed |= pump.borrow_mut().flush();
        }
        if flushed {
            continue;
        }
        let since = *idle_since.get_or_insert(now_ns);
        if now_ns - since < spin_ns {
            std::hint::spin_loop();
            continue;
        }
        parker.prepare_park();
        let work_waiting = build
            .drivers
            .iter()
            .any(|d| !d.is_finished() && d.has_input())
            || build.pumps.iter().any(|p| p.borrow().could_progress());
        let now_ns = clock.now_ns();
        if work_waiting || durability_pending || control.is_stopping() || wake_at_ns <= now_ns {
            parker.cancel_park();
            continue;
        }
        let timeout_ns = park_max_ns.min(wake_at_ns - now_ns);
        parker.park(std::time::Duration::from_nanos(timeout_ns));
        idle_since = None;
        glommio::yield_if_needed().await;
    }
    op_scope::enter(NO_OPERATOR);
    for finished in build
        .sinks_finished
        .iter()
        .filter(|_| !stopped_with_savepoint)
    {
        assert!(
            finished.get(),
            "every driver finished, so every sink saw its end"
        );
    }
    build.metrics.borrow_mut().cpu_ns = crate::metrics::thread_cpu_ns();
    Ok(())
}

/// The checkpoint duties of one shard's loop turn.
struct CheckpointTurn {
    control: Arc<CheckpointControl>,
    shard: Rc<RefCell<ShardCheckpoints>>,
    work: Rc<crate::state::background::SnapshotWork>,
    coordinator: bool,
    committed: u64,
    final_committed: bool,
    /// The job stops with a savepoint this shard committed: leave the loop.
    stopped: bool,
}

impl CheckpointTurn {
    /// Coordinates (shard 0), injects triggered barriers, commits completed checkpoints and
    /// reports the shard's end. True when it did something.
    fn run(&mut self, build: &mut ShardBuild, control: &JobControl) -> Result<bool, JobError> {
        let mut progress = false;
        if self.coordinator && self.control.coordinate(std::time::Instant::now())? {
            control.wake_all();
            progress = true;
        }
        let triggered = self.control.triggered();
        while self.shard.borrow().last_injected() < triggered {
            let id = self.shard.borrow().last_injected() + 1;
            self.shard.borrow_mut().begin(id);
            let mut positions = Vec::new();
            for driver in build.drivers.iter_mut() {
                match driver.inject_barrier(crate::element::CheckpointId(id)) {
                    Ok(Some(position)) => positions.push(position),
                    Ok(None) => {}
                    Err((operator, source)) => return Err(operator_error(build, operator, source)),
                }
            }
            for sink in &build.sink_commits {
                sink.borrow_mut()
                    .prepare_if_ended(id, &self.shard, &self.control)
                    .map_err(|source| sink_failure(build, source))?;
            }
            self.shard
                .borrow_mut()
                .sources_injected(id, positions, &self.control);
            control.wake_all();
            progress = true;
        }
        let completed = self.control.completed();
        if completed > self.committed {
            op_scope::enter(NO_OPERATOR);
            for sink in &build.sink_commits {
                sink.borrow_mut()
                    .commit_completed(completed)
                    .map_err(|source| sink_failure(build, source))?;
            }
            self.committed = completed;
            progress = true;
        }
        if let Some(stop) = self.control.stop_after()
            && self.committed >= stop
        {
            self.stopped = true;
            return Ok(true);
        }
        if !self.final_committed
            && self.control.final_complete()
            && self.committed == self.control.completed()
            && build
                .sink_commits
                .iter()
                .all(|s| s.borrow().all_committed())
        {
            for sink in &build.sink_commits {
                sink.borrow_mut()
                    .finish()
                    .map_err(|source| sink_failure(build, source))?;
            }
            self.final_committed = true;
            progress = true;
        }
        if build.drivers.iter().all(|d| d.is_finished())
            && self.shard.borrow_mut().report_drained(&self.control)
        {
            control.wake_all();
            progress = true;
        }
        Ok(progress)
    }
}

impl CheckpointTurn {
    /// Encodes one slice of the incremental snapshots marked at barriers and not yet handed
    /// over. True while there is such work (the loop must keep turning, not park).
    fn encode_slice(&mut self, build: &ShardBuild) -> Result<bool, JobError> {
        self.work
            .step(crate::state::background::SNAPSHOT_SLICE_BUDGET)
            .map_err(|(operator, source)| operator_error(build, operator, source))
    }

    /// Persists the keyed state of checkpoints complete on this shard (the acknowledgement
    /// follows when the seal is durable), and releases store positions no retained checkpoint
    /// needs. True when it persisted something.
    fn persist_state(
        &mut self,
        store: &mut ShardStateStore,
        build: &ShardBuild,
    ) -> Result<bool, JobError> {
        if let Some(failure) = store.failure() {
            return Err(JobError::Checkpoint(format!(
                "shard {}: {failure}",
                build.split.shard
            )));
        }
        let ready = self.shard.borrow_mut().take_ready();
        let persisted = !ready.is_empty();
        for checkpoint in ready {
            crate::checkpoint::fault::hit("shard.after_snapshot");
            store.persist(
                checkpoint.id,
                checkpoint.snapshot,
                checkpoint.state,
                Arc::clone(&self.control),
            );
        }
        store.release_completed(self.committed, self.control.config().retained);
        Ok(persisted)
    }
}

fn sink_failure(build: &ShardBuild, source: OperatorError) -> JobError {
    JobError::Operator {
        operator: "sink checkpoint".into(),
        shard: crate::error::ShardId(build.split.shard),
        source,
    }
}

fn operator_error(build: &ShardBuild, operator: u32, source: OperatorError) -> JobError {
    JobError::Operator {
        operator: operator_name(build, operator),
        shard: crate::error::ShardId(build.split.shard),
        source,
    }
}

fn highest_blocked_level(pumps: &[Rc<RefCell<dyn Pump>>]) -> u32 {
    pumps
        .iter()
        .filter_map(|p| {
            let p = p.borrow();
            p.is_blocked().then(|| p.level())
        })
        .max()
        .unwrap_or(0)
}
