//! Sinks: the `Sink` a user hands to the job, the `SinkWriter` it creates per shard, and the
//! collector that feeds a writer at the end of a chain, measures end-to-end latency, and plays
//! the sink's part in checkpoints (two-phase commit).
//!
//! Two-phase commit, as Flink's `TwoPhaseCommitSinkFunction`: on `Barrier(n)` the writer
//! *prepares* what it wrote since the previous barrier (makes it durable but invisible) and
//! returns a transaction description that goes into checkpoint `n`'s manifest; once `n` is
//! complete the shard loop asks the writer to *commit* `n`'s transactions (make them visible;
//! idempotent). A sink whose input ended prepares what it wrote since its last barrier with
//! the next checkpoint its shard begins, the final checkpoint at the latest; its writer is
//! closed after that committed. On restart from checkpoint `n`, `recover` commits what `n` (and
//! any earlier checkpoint) prepared and discards what was prepared or written after it.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use crate::checkpoint::control::sink_error;
use crate::checkpoint::{CheckpointControl, ShardCheckpoints, fault};
use crate::collector::Collector;
use crate::element::{Batch, CheckpointId, Record, Signal};
use crate::error::{OpResult, OperatorError};
use crate::metrics::ShardMetrics;
use crate::op_scope;
use crate::source::SplitContext;
use crate::time::{Clock, EventTime};

/// A parallel sink: creates one writer per shard.
pub trait Sink<T>: Send + Sync + 'static {
    /// The writer for one shard.
    ///
    /// # Errors
    /// Whatever prevents writing (a directory that cannot be created, say).
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError>;
}

/// The checkpoint a job restarts from, as a sink sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RestoredCheckpoint {
    /// Its id: everything prepared for checkpoints up to it is committed output.
    pub checkpoint: u64,
    /// True if it is the final checkpoint of a run whose inputs all ended.
    pub finished: bool,
    /// The transactions the sinks of the adopted shards prepared for it, as `prepare_commit`
    /// returned them.
    pub transactions: Vec<Vec<u8>>,
    /// Shards of the job that took the checkpoint whose leftovers this writer resolves: its own
    /// shard when the shard count is unchanged; after rescaling, old shard `o` is adopted by
    /// shard `o mod shards` (possibly several, possibly none).
    pub adopted_shards: Vec<usize>,
}

/// Writes one shard's share of a stream.
pub trait SinkWriter<T>: 'static {
    /// Writes the records; may take them out of `records` (what is left is dropped).
    ///
    /// # Errors
    /// A failure that should fail the job.
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult;

    /// The stream's watermark advanced.
    ///
    /// # Errors
    /// A failure that should fail the job.
    fn on_watermark(&mut self, _watermark: EventTime) -> OpResult {
        Ok(())
    }

    /// The stream ended: flush and close. With checkpoints, this comes after the final
    /// checkpoint committed everything written.
    ///
    /// # Errors
    /// A failure that should fail the job.
    fn finish(&mut self) -> OpResult;

    /// Checkpoint `checkpoint` passes: make everything written since the previous prepare
    /// durable but not yet visible, and describe it (the bytes go into the manifest). The
    /// default (a sink that cannot take part
    /// in two-phase commit: print, blackhole) prepares nothing, so it is at-least-once.
    ///
    /// # Errors
    /// The output could not be made durable; the job fails (it must not complete the
    /// checkpoint).
    fn prepare_commit(&mut self, _checkpoint: CheckpointId) -> Result<Vec<u8>, OperatorError> {
        Ok(Vec::new())
    }

    /// A checkpoint is complete: make the prepared `transaction` visible. Must be idempotent.
    ///
    /// # Errors
    /// The output could not be published.
    fn commit(&mut self, _transaction: &[u8]) -> OpResult {
        Ok(())
    }

    /// Called once before any record when the job starts with checkpoints on: `restored` is
    /// the checkpoint it resumes from (`None` for a fresh start). Commit what the restored
    /// checkpoint covers, discard what was prepared or written after it.
    ///
    /// # Errors
    /// The previous output cannot be resolved.
    fn recover(&mut self, _restored: Option<&RestoredCheckpoint>) -> OpResult {
        Ok(())
    }
}

/// A sink's checkpoint side, as the shard loop sees it.
pub(crate) trait SinkCommit {
    /// If the sink's input ended, prepares checkpoint `id` now (it will see no barrier).
    fn prepare_if_ended(
        &mut self,
        id: u64,
        checkpoints: &RefCell<ShardCheckpoints>,
        control: &CheckpointControl,
    ) -> OpResult;
    /// Commits every prepared transaction of checkpoints up to `completed`.
    fn commit_completed(&mut self, completed: u64) -> OpResult;
    /// True when nothing prepared is left to commit.
    fn all_committed(&self) -> bool;
    /// The final checkpoint is committed: close the writer.
    fn finish(&mut self) -> OpResult;
}

/// The writer plus its prepared transactions, shared by the chain's collector and the loop.
pub(crate) struct SinkState<T> {
    pub(crate) key: String,
    pub(crate) writer: Box<dyn SinkWriter<T>>,
    prepared: BTreeMap<u64, Vec<u8>>,
    last_prepared: u64,
    ended: bool,
}

impl<T: 'static> SinkState<T> {
    pub(crate) fn new(
        key: String,
        writer: Box<dyn SinkWriter<T>>,
        restored_checkpoint: u64,
    ) -> Self {
        SinkState {
            key,
            writer,
            prepared: BTreeMap::new(),
            last_prepared: restored_checkpoint,
            ended: false,
        }
    }

    fn prepare(
        &mut self,
        id: u64,
        checkpoints: &RefCell<ShardCheckpoints>,
        control: &CheckpointControl,
    ) -> OpResult {
        debug_assert!(id > self.last_prepared);
        let transaction = self
            .writer
            .prepare_commit(CheckpointId(id))
            .map_err(|e| sink_error(&self.key, e))?;
        fault::hit("sink.after_prepare");
        self.last_prepared = id;
        self.prepared.insert(id, transaction.clone());
        checkpoints
            .borrow_mut()
            .sink_prepared(CheckpointId(id), &self.key, &transaction, control);
        Ok(())
    }
}

impl<T: 'static> SinkCommit for SinkState<T> {
    fn prepare_if_ended(
        &mut self,
        id: u64,
        checkpoints: &RefCell<ShardCheckpoints>,
        control: &CheckpointControl,
    ) -> OpResult {
        if self.ended && id > self.last_prepared {
            self.prepare(id, checkpoints, control)?;
        }
        Ok(())
    }

    fn commit_completed(&mut self, completed: u64) -> OpResult {
        while let Some(entry) = self.prepared.first_entry() {
            if *entry.key() > completed {
                break;
            }
            let transaction = entry.remove();
            if !transaction.is_empty() {
                fault::hit("sink.before_commit");
                self.writer
                    .commit(&transaction)
                    .map_err(|e| sink_error(&self.key, e))?;
                fault::hit("sink.after_commit");
            }
        }
        Ok(())
    }

    fn all_committed(&self) -> bool {
        self.prepared.is_empty()
    }

    fn finish(&mut self) -> OpResult {
        self.writer.finish()
    }
}

/// What a sink needs to take part in checkpoints.
pub(crate) struct SinkCheckpointing {
    pub(crate) shard: Rc<RefCell<ShardCheckpoints>>,
    pub(crate) control: Arc<CheckpointControl>,
}

/// Feeds a writer; records latency and counts per batch; prepares on barriers.
pub(crate) struct SinkCollector<T> {
    pub(crate) operator: u32,
    pub(crate) state: Rc<RefCell<SinkState<T>>>,
    pub(crate) metrics: Rc<RefCell<ShardMetrics>>,
    pub(crate) clock: Clock,
    pub(crate) finished: Rc<std::cell::Cell<bool>>,
    pub(crate) checkpointing: Option<SinkCheckpointing>,
}

impl<T: 'static> Collector<T> for SinkCollector<T> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        if batch.records.is_empty() {
            return Ok(());
        }
        let count = batch.records.len() as u64;
        let latency_ns = self.clock.now_ns().saturating_sub(batch.emitted_ns);
        {
            let mut metrics = self.metrics.borrow_mut();
            metrics.sink_records += count;
            metrics.record_latency(latency_ns, count);
        }
        op_scope::enter(self.operator);
        let result = self.state.borrow_mut().writer.write(&mut batch.records);
        batch.records.clear();
        result
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        op_scope::enter(self.operator);
        let mut state = self.state.borrow_mut();
        match signal {
            Signal::Watermark(wm) => state.writer.on_watermark(wm),
            Signal::Barrier(id) => match &self.checkpointing {
                Some(cp) => state.prepare(id.0, &cp.shard, &cp.control),
                None => Ok(()),
            },
            Signal::End => {
                assert!(!self.finished.get(), "a sink's input ended twice");
                self.finished.set(true);
                match &self.checkpointing {
                    Some(cp) => {
                        // Checkpoints begun whose barrier can no longer arrive take what was
                        // written since the last barrier; later ones are prepared by the loop.
                        // The writer closes after the final checkpoint committed.
                        let open = cp.shard.borrow().pending_after(state.last_prepared);
                        for id in open {
                            state.prepare(id, &cp.shard, &cp.control)?;
                        }
                        state.ended = true;
                        Ok(())
                    }
                    None => state.writer.finish(),
                }
            }
            Signal::Status(_) | Signal::Tick(_) => Ok(()),
        }
    }
}
