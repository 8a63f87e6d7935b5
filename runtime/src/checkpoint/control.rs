//! The checkpoint bookkeeping: `CheckpointControl` is shared by all shards (the coordinator's
//! counters and the acknowledgements), `ShardCheckpoints` is one shard's view (what it injected,
//! which sinks still owe an acknowledgement, what to commit).
//!
//! Invariants: at most one checkpoint is in flight (the next is triggered only when the previous
//! completed), so the pending maps stay tiny; ids increase by one; `completed <= triggered`;
//! a shard acknowledges a checkpoint exactly once, after every sink of the shard prepared it.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Instant;

use crate::checkpoint::CheckpointConfig;
use crate::checkpoint::manifest::{self, Manifest, NamedBlob, ShardSnapshot};
use crate::checkpoint::savepoint::{
    self, SavepointManifest, SavepointMode, SavepointOutcome, SavepointRequest, StateFileRef,
};
use crate::element::CheckpointId;
use crate::error::{JobError, OperatorError};
use crate::state::snapshot::OperatorState;

/// What one operator instance's keyed-state snapshot cost its shard.
///
/// A full snapshot encodes everything at the barrier: `pause_us` is that encoding. An
/// incremental one only marks its dirty key groups at the barrier (`pause_us`) and encodes them
/// afterwards in `slices` between batches (none longer than `slice_us_max`), saving
/// `cow_copies` before-images on the record path meanwhile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SnapshotPause {
    /// The checkpoint.
    pub checkpoint: u64,
    /// Time at the barrier in µs (the shard processes nothing else meanwhile).
    pub pause_us: u64,
    /// Encoded bytes.
    pub bytes: u64,
    /// Key groups encoded.
    pub groups: u32,
    /// Background encoding slices after the barrier (0 for a full snapshot).
    pub slices: u32,
    /// The longest of them in µs (the shard processes no record meanwhile), wall-clock.
    pub slice_us_max: u64,
    /// The most CPU time one slice took, in µs (without time the OS preempted the thread).
    pub slice_cpu_us_max: u64,
    /// Encoding time after the barrier, all slices together, in µs.
    pub encode_us: u64,
    /// Values copied on the record path because their part was not encoded yet.
    pub cow_copies: u64,
}

/// Shared by every shard of a job that checkpoints.
#[derive(Debug)]
pub struct CheckpointControl {
    config: CheckpointConfig,
    shards: usize,
    max_key_groups: u32,
    triggered: AtomicU64,
    completed: AtomicU64,
    /// Id of the final checkpoint once triggered (0 = not yet).
    final_id: AtomicU64,
    final_complete: AtomicBool,
    /// Id of the savepoint the job stops with once it is complete (0 = none).
    stop_after: AtomicU64,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    last_trigger: Instant,
    /// Trigger-to-manifest time of every checkpoint this run completed, in µs.
    durations_us: Vec<u64>,
    /// Every keyed-state snapshot an operator instance took at a barrier.
    snapshots: Vec<SnapshotPause>,
    acks: BTreeMap<u64, Vec<Option<ShardSnapshot>>>,
    drained: Vec<bool>,
    completed_count: u64,
    /// Savepoints asked for and not yet triggered, oldest first.
    savepoint_requests: VecDeque<SavepointRequest>,
    /// The savepoint being taken (at most one: one checkpoint is in flight at a time).
    savepoint: Option<SavepointInFlight>,
    /// Every savepoint this run completed or failed to take.
    savepoints: Vec<SavepointOutcome>,
    /// When the coordinator last looked for a request file.
    last_request_poll: Instant,
}

/// A savepoint whose checkpoint is in flight, and the state files its shards wrote so far.
#[derive(Debug)]
struct SavepointInFlight {
    id: u64,
    request: SavepointRequest,
    state_files: Vec<StateFileRef>,
    error: Option<String>,
}

impl CheckpointControl {
    /// Control for a job of `shards` shards whose last complete checkpoint is `restored`
    /// (0 = none): new ids continue after it.
    pub fn new(
        config: CheckpointConfig,
        shards: usize,
        max_key_groups: u32,
        restored: u64,
    ) -> Self {
        CheckpointControl {
            config,
            shards,
            max_key_groups,
            triggered: AtomicU64::new(restored),
            completed: AtomicU64::new(restored),
            final_id: AtomicU64::new(0),
            final_complete: AtomicBool::new(false),
            stop_after: AtomicU64::new(0),
            inner: Mutex::new(Inner {
                last_trigger: Instant::now(),
                durations_us: Vec::new(),
                snapshots: Vec::new(),
                acks: BTreeMap::new(),
                drained: vec![false; shards],
                completed_count: 0,
                savepoint_requests: VecDeque::new(),
                savepoint: None,
                savepoints: Vec::new(),
                last_request_poll: Instant::now(),
            }),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &CheckpointConfig {
        &self.config
    }

    /// The newest triggered checkpoint id.
    pub fn triggered(&self) -> u64 {
        self.triggered.load(Ordering::Acquire)
    }

    /// The newest complete checkpoint id.
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Acquire)
    }

    /// Restarts the numbering after `checkpoint`, older than the one this control was created
    /// with: the restarted job could not restore the newer ones (`restore`). Called before any
    /// shard starts checkpointing.
    pub fn resume_after(&self, checkpoint: u64) {
        debug_assert!(checkpoint <= self.completed());
        self.triggered.store(checkpoint, Ordering::Release);
        self.completed.store(checkpoint, Ordering::Release);
    }

    /// True once the final checkpoint (every input ended) is complete.
    pub fn final_complete(&self) -> bool {
        self.final_complete.load(Ordering::Acquire)
    }

    /// Checkpoints completed by this run.
    pub fn completed_count(&self) -> u64 {
        self.lock().completed_count
    }

    /// Trigger-to-complete duration of each checkpoint this run completed, in µs (the manifest
    /// is written, so the prepared output may be committed).
    pub fn durations_us(&self) -> Vec<u64> {
        self.lock().durations_us.clone()
    }

    /// Records the synchronous part of one operator instance's snapshot.
    pub fn record_snapshot(&self, pause: SnapshotPause) {
        self.lock().snapshots.push(pause);
    }

    /// Every keyed-state snapshot taken at a barrier by this run, in order of recording.
    pub fn snapshots(&self) -> Vec<SnapshotPause> {
        self.lock().snapshots.clone()
    }

    /// Asks for a savepoint: the coordinator triggers it at its next turn once no checkpoint
    /// is in flight.
    pub fn request_savepoint(&self, request: SavepointRequest) {
        self.lock().savepoint_requests.push_back(request);
    }

    /// The directory of checkpoint `id`'s savepoint, when `id` is one.
    pub fn savepoint_dir(&self, id: u64) -> Option<PathBuf> {
        let inner = self.lock();
        let savepoint = inner.savepoint.as_ref().filter(|s| s.id == id)?;
        Some(savepoint.request.dir.clone())
    }

    /// A shard copied its state for savepoint `id` (or failed to).
    pub fn record_savepoint_state(&self, id: u64, file: Result<StateFileRef, String>) {
        let mut inner = self.lock();
        let savepoint = inner
            .savepoint
            .as_mut()
            .filter(|s| s.id == id)
            .expect("state is recorded for the savepoint in flight");
        match file {
            Ok(file) => savepoint.state_files.push(file),
            Err(e) => {
                savepoint.error.get_or_insert(e);
            }
        }
    }

    /// Every savepoint this run completed or failed to take, in order.
    pub fn savepoints(&self) -> Vec<SavepointOutcome> {
        self.lock().savepoints.clone()
    }

    /// The job ended: savepoints asked for and not complete become failed outcomes, so that
    /// nobody waits for them.
    pub fn fail_unserved(&self) {
        let mut inner = self.lock();
        let in_flight = inner.savepoint.take().map(|s| (s.id, s.request));
        let queued: Vec<(u64, SavepointRequest)> =
            inner.savepoint_requests.drain(..).map(|r| (0, r)).collect();
        for (checkpoint, request) in in_flight.into_iter().chain(queued) {
            inner.savepoints.push(SavepointOutcome {
                checkpoint,
                dir: request.dir,
                mode: request.mode,
                error: Some("the job ended before the savepoint was complete".into()),
            });
        }
    }

    /// The savepoint the job stops with, once it is complete.
    pub fn stop_after(&self) -> Option<u64> {
        match self.stop_after.load(Ordering::Acquire) {
            0 => None,
            id => Some(id),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records shard `snapshot.shard`'s part of checkpoint `id`.
    pub fn acknowledge(&self, id: u64, snapshot: ShardSnapshot) {
        let shard = snapshot.shard;
        let mut inner = self.lock();
        let slots = inner
            .acks
            .entry(id)
            .or_insert_with(|| vec![None; self.shards]);
        assert!(
            slots[shard].is_none(),
            "shard {shard} acknowledged checkpoint {id} twice"
        );
        slots[shard] = Some(snapshot);
    }

    /// Shard `shard`'s inputs all ended (its sources finished, its sinks saw their end).
    pub fn acknowledge_drained(&self, shard: usize) {
        let mut inner = self.lock();
        assert!(
            !inner.drained[shard],
            "shard {shard} reported its end twice"
        );
        inner.drained[shard] = true;
    }

    /// The coordinator's turn (shard 0's loop): completes, finishes, triggers. Returns true
    /// when it changed something other shards must see (wake them).
    ///
    /// # Errors
    /// Writing a manifest failed: the job cannot promise exactly-once any more and fails.
    pub fn coordinate(&self, now: Instant) -> Result<bool, JobError> {
        let mut inner = self.lock();
        let triggered = self.triggered();
        let completed = self.completed();
        if triggered > completed {
            // Complete the checkpoint in flight once every shard acknowledged it.
            let Some(slots) = inner.acks.get(&triggered) else {
                return Ok(false);
            };
            if !slots.iter().all(Option::is_some) {
                return Ok(false);
            }
            let per_shard: Vec<ShardSnapshot> = slots.iter().flatten().cloned().collect();
            let finished = triggered == self.final_id.load(Ordering::Acquire);
            self.write_manifest(triggered, finished, per_shard.clone())?;
            if inner.savepoint.as_ref().is_some_and(|s| s.id == triggered) {
                let taken = inner.savepoint.take().expect("checked");
                let outcome = self.write_savepoint(taken, finished, per_shard);
                if outcome.error.is_none() && outcome.mode == SavepointMode::Stop {
                    self.stop_after.store(triggered, Ordering::Release);
                }
                if let Some(error) = &outcome.error {
                    eprintln!("corestrom: savepoint {}: {error}", outcome.dir.display());
                }
                inner.savepoints.push(outcome);
            }
            inner.acks.retain(|&id, _| id > triggered);
            inner.completed_count += 1;
            let duration = now.saturating_duration_since(inner.last_trigger);
            inner.durations_us.push(duration.as_micros() as u64);
            self.completed.store(triggered, Ordering::Release);
            if finished {
                self.final_complete.store(true, Ordering::Release);
            }
            return Ok(true);
        }
        if self.final_id.load(Ordering::Acquire) != 0 || self.stop_after().is_some() {
            return Ok(false);
        }
        // Savepoint requests: from the API at once, from the request file once per interval
        // (one stat per interval, never per record).
        if now.duration_since(inner.last_request_poll) >= self.config.interval {
            inner.last_request_poll = now;
            match savepoint::take_request(&self.config.state_dir) {
                Ok(Some(request)) => inner.savepoint_requests.push_back(request),
                Ok(None) => {}
                Err(e) => eprintln!("corestrom: ignoring a savepoint request: {e}"),
            }
        }
        while let Some(request) = inner.savepoint_requests.pop_front() {
            if request.dir.join(savepoint::SAVEPOINT_MANIFEST).exists() {
                let error = format!("{} already holds a savepoint", request.dir.display());
                eprintln!("corestrom: savepoint refused: {error}");
                inner.savepoints.push(SavepointOutcome {
                    checkpoint: 0,
                    dir: request.dir,
                    mode: request.mode,
                    error: Some(error),
                });
                continue;
            }
            inner.last_trigger = now;
            inner.savepoint = Some(SavepointInFlight {
                id: triggered + 1,
                request,
                state_files: Vec::new(),
                error: None,
            });
            self.triggered.store(triggered + 1, Ordering::Release);
            return Ok(true);
        }
        // Every input ended: the final checkpoint commits what was written since the last one.
        if inner.drained.iter().all(|&d| d) {
            inner.last_trigger = now;
            self.final_id.store(triggered + 1, Ordering::Release);
            self.triggered.store(triggered + 1, Ordering::Release);
            return Ok(true);
        }
        if now.duration_since(inner.last_trigger) >= self.config.interval {
            inner.last_trigger = now;
            self.triggered.store(triggered + 1, Ordering::Release);
            return Ok(true);
        }
        Ok(false)
    }

    /// Writes the savepoint manifest of a completed checkpoint (its shards already wrote their
    /// state files); the outcome says whether it worked.
    fn write_savepoint(
        &self,
        taken: SavepointInFlight,
        finished: bool,
        mut per_shard: Vec<ShardSnapshot>,
    ) -> SavepointOutcome {
        let SavepointInFlight {
            id,
            request,
            mut state_files,
            error,
        } = taken;
        let keeps_state = per_shard.iter().any(|s| s.store.is_some());
        for shard in &mut per_shard {
            shard.store = None;
        }
        state_files.sort_by_key(|f| f.shard);
        let mut error = error;
        if error.is_none() && keeps_state && state_files.len() != self.shards {
            error = Some(format!(
                "{} of {} shards copied their state",
                state_files.len(),
                self.shards
            ));
        }
        if error.is_none() {
            let manifest = SavepointManifest {
                checkpoint: Manifest {
                    checkpoint: id,
                    finished,
                    shards: self.shards,
                    max_key_groups: self.max_key_groups,
                    created_ms: crate::time::wall_clock_ms(),
                    per_shard,
                },
                state_files,
            };
            if let Err(e) = savepoint::write(&request.dir, &manifest) {
                error = Some(e.to_string());
            }
        }
        SavepointOutcome {
            checkpoint: id,
            dir: request.dir,
            mode: request.mode,
            error,
        }
    }

    fn write_manifest(
        &self,
        id: u64,
        finished: bool,
        per_shard: Vec<ShardSnapshot>,
    ) -> Result<(), JobError> {
        let manifest = Manifest {
            checkpoint: id,
            finished,
            shards: self.shards,
            max_key_groups: self.max_key_groups,
            created_ms: crate::time::wall_clock_ms(),
            per_shard,
        };
        let dir = self.config.manifest_dir();
        manifest::write(&dir, &manifest)
            .map_err(|e| JobError::Checkpoint(format!("checkpoint {id}: {e}")))?;
        manifest::retain_newest(&dir, self.config.retained.max(1))
            .map_err(|e| JobError::Checkpoint(format!("deleting old checkpoints: {e}")))?;
        Ok(())
    }
}

/// One shard's checkpoint state, shared by its source drivers, sinks, stateful operators and
/// loop.
///
/// A checkpoint's part on this shard is complete when the shard began it, every source
/// injected its barrier, every sink prepared it once, and every stateful operator instance
/// contributed its state once: at the barrier, or, once its input ended, with its final state.
/// A contribution may arrive before the shard itself began the checkpoint (a barrier can reach
/// an operator through an exchange whose local input already ended); it is kept until the shard
/// begins it. Without keyed state the shard acknowledges at once; with keyed state the loop
/// first persists the state ([`ShardCheckpoints::take_ready`]) and acknowledges when the
/// store's seal is durable.
#[derive(Debug)]
pub struct ShardCheckpoints {
    shard: usize,
    key_groups: (u32, u32),
    sinks: usize,
    /// Stateful operator instances of this shard.
    stateful: usize,
    /// Final state of operators whose input ended: part of every later checkpoint.
    ended_state: Vec<OperatorState>,
    last_injected: u64,
    pending: BTreeMap<u64, Pending>,
    ready: Vec<ReadyCheckpoint>,
    drained_reported: bool,
}

#[derive(Debug, Default)]
struct Pending {
    began: bool,
    /// Set once every source of the shard injected the barrier.
    sources: Option<Vec<NamedBlob>>,
    sinks: Vec<NamedBlob>,
    sinks_prepared: usize,
    /// At most one entry per stateful operator instance.
    state: Vec<OperatorState>,
}

impl Pending {
    /// Adds an operator's state unless it already contributed; true when added.
    fn add_state(&mut self, state: OperatorState) -> bool {
        if self.state.iter().any(|s| s.operator == state.operator) {
            return false;
        }
        self.state.push(state);
        true
    }
}

/// A checkpoint whose every part is in on this shard, waiting for its state to be persisted.
#[derive(Debug)]
pub struct ReadyCheckpoint {
    /// The checkpoint.
    pub id: u64,
    /// The shard's manifest entry, without the store position yet.
    pub snapshot: ShardSnapshot,
    /// Every stateful operator's state.
    pub state: Vec<OperatorState>,
}

impl ShardCheckpoints {
    /// The bookkeeping of `shard`, whose checkpoints continue after `restored`.
    pub fn new(shard: usize, key_groups: (u32, u32), restored: u64) -> Self {
        ShardCheckpoints {
            shard,
            key_groups,
            sinks: 0,
            stateful: 0,
            ended_state: Vec::new(),
            last_injected: restored,
            pending: BTreeMap::new(),
            ready: Vec::new(),
            drained_reported: false,
        }
    }

    /// A sink of this shard was created.
    pub fn register_sink(&mut self) {
        self.sinks += 1;
    }

    /// A stateful operator instance of this shard was created.
    pub fn register_stateful(&mut self) {
        self.stateful += 1;
    }

    /// True when the shard has keyed state to persist at every checkpoint.
    pub fn keeps_state(&self) -> bool {
        self.stateful > 0
    }

    /// The last checkpoint whose barriers this shard injected.
    pub fn last_injected(&self) -> u64 {
        self.last_injected
    }

    /// Starts checkpoint `id` on this shard, before its barriers are injected (a sink may
    /// prepare while the injection is still under way). Every sink prepares it once: open
    /// sinks when the barrier reaches them, sinks whose input ended from the loop.
    pub fn begin(&mut self, id: u64) {
        assert_eq!(
            id,
            self.last_injected + 1,
            "checkpoints are injected in order"
        );
        self.last_injected = id;
        let pending = self.pending.entry(id).or_default();
        pending.began = true;
        for state in &self.ended_state {
            pending.add_state(state.clone());
        }
    }

    /// Every source injected `id`'s barrier at these positions.
    pub fn sources_injected(
        &mut self,
        id: u64,
        sources: Vec<NamedBlob>,
        control: &CheckpointControl,
    ) {
        let pending = self.pending.get_mut(&id).expect("checkpoint begun");
        pending.sources = Some(sources);
        self.try_complete(id, control);
    }

    /// Checkpoints this shard began (or that reached one of its operators early) that a
    /// participant which last contributed to `last` has not contributed to yet, in order.
    pub fn pending_after(&self, last: u64) -> Vec<u64> {
        self.pending.range(last + 1..).map(|(&id, _)| id).collect()
    }

    /// A sink prepared checkpoint `id` with `transaction`.
    pub fn sink_prepared(
        &mut self,
        id: CheckpointId,
        sink: &str,
        transaction: &[u8],
        control: &CheckpointControl,
    ) {
        let pending = self.pending.entry(id.0).or_default();
        pending.sinks.push(NamedBlob::new(sink, transaction));
        pending.sinks_prepared += 1;
        self.try_complete(id.0, control);
    }

    /// A stateful operator instance snapshotted checkpoint `id`.
    pub fn state_snapshotted(
        &mut self,
        id: u64,
        state: OperatorState,
        control: &CheckpointControl,
    ) {
        let operator = state.operator;
        let added = self.pending.entry(id).or_default().add_state(state);
        assert!(
            added,
            "operator {operator} snapshotted checkpoint {id} twice"
        );
        self.try_complete(id, control);
    }

    /// A stateful operator instance's input ended with `state`; it contributed up to `last`.
    /// The state stands for it in every checkpoint after `last`, begun or not.
    pub fn state_ended(&mut self, last: u64, state: OperatorState, control: &CheckpointControl) {
        for id in self.pending_after(last) {
            let pending = self.pending.get_mut(&id).expect("listed");
            pending.add_state(state.clone());
            self.try_complete(id, control);
        }
        self.ended_state.push(state);
    }

    fn try_complete(&mut self, id: u64, control: &CheckpointControl) {
        let ready = self.pending.get(&id).is_some_and(|p| {
            p.began
                && p.sources.is_some()
                && p.sinks_prepared == self.sinks
                && p.state.len() == self.stateful
        });
        if !ready {
            return;
        }
        let pending = self.pending.remove(&id).expect("pending checkpoint");
        let snapshot = ShardSnapshot {
            shard: self.shard,
            key_groups: self.key_groups,
            sources: pending.sources.unwrap_or_default(),
            sinks: pending.sinks,
            store: None,
        };
        if self.keeps_state() {
            self.ready.push(ReadyCheckpoint {
                id,
                snapshot,
                state: pending.state,
            });
        } else {
            crate::checkpoint::fault::hit("shard.after_snapshot");
            control.acknowledge(id, snapshot);
        }
    }

    /// Checkpoints complete on this shard whose keyed state the loop must persist now.
    pub fn take_ready(&mut self) -> Vec<ReadyCheckpoint> {
        std::mem::take(&mut self.ready)
    }

    /// Reports, once, that every input of the shard ended; true when it did so now.
    pub fn report_drained(&mut self, control: &CheckpointControl) -> bool {
        if self.drained_reported {
            return false;
        }
        self.drained_reported = true;
        control.acknowledge_drained(self.shard);
        true
    }
}

/// A sink failed to prepare or commit: the error names the sink.
pub fn sink_error(sink: &str, e: OperatorError) -> OperatorError {
    OperatorError::Failed(format!("checkpoint of sink '{sink}': {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn control() -> CheckpointControl {
        let config = CheckpointConfig::new(Duration::from_millis(10), "unused-state-dir");
        CheckpointControl::new(config, 2, 128, 0)
    }

    fn acked_sinks(control: &CheckpointControl, id: u64, shard: usize) -> Option<Vec<NamedBlob>> {
        control.lock().acks.get(&id)?[shard]
            .as_ref()
            .map(|s| s.sinks.clone())
    }

    #[test]
    fn a_sink_may_prepare_a_checkpoint_before_its_shard_began_it() {
        let control = control();
        let mut shard = ShardCheckpoints::new(1, (64, 128), 0);
        shard.register_sink();
        shard.register_sink();
        // The barrier of 1 reached the first sink through an exchange before the loop began 1.
        shard.sink_prepared(CheckpointId(1), "early", b"t1", &control);
        assert_eq!(acked_sinks(&control, 1, 1), None);
        shard.begin(1);
        shard.sources_injected(1, Vec::new(), &control);
        assert_eq!(
            acked_sinks(&control, 1, 1),
            None,
            "the second sink has not prepared"
        );
        shard.sink_prepared(CheckpointId(1), "late", b"t2", &control);
        let sinks = acked_sinks(&control, 1, 1).expect("acknowledged");
        assert_eq!(
            sinks,
            vec![
                NamedBlob::new("early", b"t1"),
                NamedBlob::new("late", b"t2")
            ]
        );
    }

    #[test]
    fn in_order_prepares_acknowledge_once_sources_and_sinks_are_in() {
        let control = control();
        let mut shard = ShardCheckpoints::new(0, (0, 64), 0);
        shard.register_sink();
        shard.begin(1);
        shard.sink_prepared(CheckpointId(1), "s", b"t", &control);
        assert_eq!(
            acked_sinks(&control, 1, 0),
            None,
            "sources not injected yet"
        );
        shard.sources_injected(1, Vec::new(), &control);
        assert_eq!(
            acked_sinks(&control, 1, 0),
            Some(vec![NamedBlob::new("s", b"t")])
        );
    }

    fn state(operator: u32, byte: u8) -> OperatorState {
        OperatorState {
            operator,
            name: format!("{operator}:op"),
            groups: vec![crate::state::snapshot::KeyGroupState {
                key_group: 0,
                bytes: vec![byte],
            }]
            .into(),
            coverage: crate::state::snapshot::Coverage::Full,
        }
    }

    fn operators(ready: &[ReadyCheckpoint]) -> Vec<(u64, Vec<(u32, u8)>)> {
        ready
            .iter()
            .map(|r| {
                let mut ops: Vec<_> = r
                    .state
                    .iter()
                    .map(|s| (s.operator, s.groups[0].bytes[0]))
                    .collect();
                ops.sort_unstable();
                (r.id, ops)
            })
            .collect()
    }

    /// An operator that snapshotted a checkpoint before its shard began it, and then ended, is in
    /// that checkpoint once (from its barrier) and in every later one with its final state; the
    /// shard waits for nobody else (this once waited forever, counting the operator twice).
    #[test]
    fn an_early_snapshot_then_the_end_counts_once_per_checkpoint() {
        let control = control();
        let mut shard = ShardCheckpoints::new(0, (0, 64), 0);
        shard.register_stateful();
        shard.register_stateful();
        shard.state_snapshotted(1, state(7, 1), &control);
        shard.state_ended(1, state(7, 2), &control);
        shard.begin(1);
        shard.sources_injected(1, Vec::new(), &control);
        assert!(
            shard.take_ready().is_empty(),
            "operator 8 has not snapshotted 1"
        );
        shard.state_snapshotted(1, state(8, 1), &control);
        assert_eq!(
            operators(&shard.take_ready()),
            vec![(1, vec![(7, 1), (8, 1)])]
        );
        shard.begin(2);
        shard.sources_injected(2, Vec::new(), &control);
        shard.state_ended(1, state(8, 3), &control);
        assert_eq!(
            operators(&shard.take_ready()),
            vec![(2, vec![(7, 2), (8, 3)])],
            "ended operators stand with their final state"
        );
    }

    /// A requested savepoint is the next checkpoint, triggered at once; its state files go
    /// into its manifest when every shard acknowledged; with `Stop`, nothing is triggered
    /// after it. A directory that already holds a savepoint is refused without a checkpoint.
    #[test]
    fn a_savepoint_is_the_next_checkpoint_and_stop_ends_triggering() {
        let dir = tempfile::tempdir().expect("dir");
        let config = CheckpointConfig::new(Duration::from_secs(3600), dir.path().join("state"));
        let control = CheckpointControl::new(config, 2, 8, 5);
        let target = dir.path().join("sp");
        control.request_savepoint(SavepointRequest {
            dir: target.clone(),
            mode: SavepointMode::Stop,
        });
        assert!(control.coordinate(Instant::now()).expect("coordinate"));
        assert_eq!(control.triggered(), 6, "at once, despite the long interval");
        assert_eq!(control.savepoint_dir(6), Some(target.clone()));
        assert_eq!(control.savepoint_dir(5), None);
        for shard in 0..2 {
            let groups = (shard as u32 * 4, shard as u32 * 4 + 4);
            let file = savepoint::state_file::write(&target, shard, groups, &[]).expect("file");
            control.record_savepoint_state(6, Ok(file));
            control.acknowledge(
                6,
                ShardSnapshot {
                    shard,
                    key_groups: groups,
                    store: Some(Default::default()),
                    ..Default::default()
                },
            );
        }
        assert_eq!(control.stop_after(), None);
        assert!(control.coordinate(Instant::now()).expect("complete"));
        assert_eq!(control.completed(), 6);
        assert_eq!(control.stop_after(), Some(6));
        let written = savepoint::read(&target).expect("savepoint manifest");
        assert_eq!(written.state_files.len(), 2);
        assert!(
            written
                .checkpoint
                .per_shard
                .iter()
                .all(|s| s.store.is_none())
        );
        let outcomes = control.savepoints();
        assert_eq!(outcomes.len(), 1);
        assert_eq!(outcomes[0].error, None);
        assert_eq!(outcomes[0].checkpoint, 6);
        // Stopped: neither the interval nor another request triggers anything.
        control.request_savepoint(SavepointRequest {
            dir: dir.path().join("sp2"),
            mode: SavepointMode::Continue,
        });
        let later = Instant::now() + Duration::from_secs(7200);
        assert!(!control.coordinate(later).expect("coordinate"));
        assert_eq!(control.triggered(), 6);
        control.fail_unserved();
        let outcomes = control.savepoints();
        assert_eq!(outcomes.len(), 2);
        assert!(
            outcomes[1]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("ended"))
        );

        let other = CheckpointControl::new(
            CheckpointConfig::new(Duration::from_secs(3600), dir.path().join("state")),
            2,
            8,
            0,
        );
        other.request_savepoint(SavepointRequest {
            dir: target,
            mode: SavepointMode::Continue,
        });
        assert!(!other.coordinate(Instant::now()).expect("coordinate"));
        assert_eq!(other.triggered(), 0);
        let refused = other.savepoints();
        assert!(
            refused[0]
                .error
                .as_deref()
                .is_some_and(|e| e.contains("already holds")),
            "{refused:?}"
        );
    }
}
