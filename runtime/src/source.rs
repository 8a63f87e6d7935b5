//! Sources: the `Source` a user hands to the job (one per job, `Send`), the `SourceReader` it
//! creates per split (a shard reads its splits through `splits::MultiSplitReader`), and the
//! driver that runs a shard's reader in the shard loop.
//!
//! A reader fills a batch per poll; the driver stamps the batch with the emission time (job
//! clock) used for latency, pushes it down the fused chain, and at the end of a bounded split
//! sends the final `END_OF_TIME` watermark and `End`, as Flink's bounded sources do.

use crate::checkpoint::NamedBlob;
use crate::collector::BoxCollector;
use crate::constants::IDLE_TICK_INTERVAL;
use crate::element::{Batch, CheckpointId, Record, Signal, StreamStatus};
use crate::error::OperatorError;
use crate::op_scope;
use crate::shard::{Driver, DriverPoll, LoopContext};
use crate::time::{END_OF_TIME, EventTime};
pub use crate::watermarks::ReaderWatermark;

/// Which split of a parallel operator an instance serves. For sinks and other operators the
/// split is the shard; for sources it is the source split (`crate::splits`), whose count stays
/// fixed when a job is restored on another shard count (by default it equals the shard count).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SplitContext {
    /// The split index (a sink's: its shard).
    pub shard: usize,
    /// The number of splits (a sink's: the shard count).
    pub shards: usize,
}

/// What a reader's poll produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SourcePoll {
    /// Records were appended (or may be next time); poll again soon.
    Ready,
    /// Nothing now; poll again at `wake_at_ns` (job clock) or when convenient.
    Pending {
        /// When the next record is due, if known.
        wake_at_ns: Option<u64>,
    },
    /// The split is exhausted; records appended by this poll are its last.
    Finished,
}

/// A parallel source: creates one reader per shard.
pub trait Source<T>: Send + Sync + 'static {
    /// The reader for one split.
    ///
    /// # Errors
    /// Whatever prevents reading the split (a missing file, say).
    fn create_reader(&self, split: SplitContext)
    -> Result<Box<dyn SourceReader<T>>, OperatorError>;
}

/// Reads one split inside one shard.
pub trait SourceReader<T>: 'static {
    /// Appends at most `max` records to `out`. `now_ns` is the job clock at the start of this
    /// shard loop turn (for pacing).
    ///
    /// # Errors
    /// A failure that should fail the job.
    fn poll(
        &mut self,
        out: &mut Vec<Record<T>>,
        max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, OperatorError>;

    /// Where the reader stands: every record it emitted so far lies before this position, and a
    /// fresh reader of the same split `restore`d to it emits exactly the records that follow.
    /// `None` when the source cannot replay (then the job cannot checkpoint).
    fn position(&self) -> Option<Vec<u8>> {
        None
    }

    /// Moves a fresh reader to a position this split's reader returned earlier.
    ///
    /// # Errors
    /// The source cannot replay, or the bytes are not a position of this split.
    fn restore(&mut self, _position: &[u8]) -> Result<(), OperatorError> {
        Err(OperatorError::Failed(
            "this source cannot be restored (not replayable)".into(),
        ))
    }

    /// The reader's own watermark at `now_ns` (job clock), asked for after every poll. A reader
    /// that reads several splits (partitions) and watermarks each of them
    /// (`watermarks::SplitWatermarks`) answers here; the driver forwards it when it advances,
    /// and marks the stream idle (and active again) as the answer says. The default: the reader
    /// makes no watermarks, a downstream `with_timestamps` does.
    fn watermark(&mut self, _now_ns: u64) -> ReaderWatermark {
        ReaderWatermark::Unsupported
    }
}

/// Runs one reader in the shard loop.
pub(crate) struct SourceDriver<T> {
    pub(crate) operator: u32,
    /// `node:name`, the source's key in checkpoint manifests.
    pub(crate) key: String,
    pub(crate) reader: Box<dyn SourceReader<T>>,
    pub(crate) down: BoxCollector<T>,
    pub(crate) batch: Batch<T>,
    pub(crate) batch_records: usize,
    pub(crate) finished: bool,
    pub(crate) last_tick_ns: u64,
    /// The last watermark forwarded from the reader's own (`SourceReader::watermark`).
    pub(crate) watermark: EventTime,
    /// Whether the reader said it is idle (and the stream was marked so).
    pub(crate) idle: bool,
    pub(crate) metrics: std::rc::Rc<std::cell::RefCell<crate::metrics::ShardMetrics>>,
}

impl<T: 'static> SourceDriver<T> {
    fn step(&mut self, cx: &LoopContext) -> Result<DriverPoll, OperatorError> {
        op_scope::enter(self.operator);
        let status = self
            .reader
            .poll(&mut self.batch.records, self.batch_records, cx.now_ns)?;
        let produced = !self.batch.records.is_empty();
        if produced {
            if self.idle {
                self.idle = false;
                self.down.signal(Signal::Status(StreamStatus::Active))?;
            }
            self.batch.emitted_ns = cx.clock.now_ns();
            self.metrics.borrow_mut().source_records += self.batch.records.len() as u64;
            self.down.push(&mut self.batch)?;
            debug_assert!(self.batch.is_empty(), "downstream must drain the batch");
            self.batch.records.clear();
        }
        if status != SourcePoll::Finished {
            self.forward_reader_watermark(cx.now_ns)?;
        }
        match status {
            SourcePoll::Ready if produced => Ok(DriverPoll::Progress),
            SourcePoll::Ready => Ok(DriverPoll::Idle { wake_at_ns: None }),
            SourcePoll::Pending { wake_at_ns } => {
                let interval = IDLE_TICK_INTERVAL.as_nanos() as u64;
                if cx.now_ns.saturating_sub(self.last_tick_ns) >= interval {
                    self.last_tick_ns = cx.now_ns;
                    self.down.signal(Signal::Tick(cx.now_ns))?;
                }
                let next_tick = self.last_tick_ns + interval;
                let wake = wake_at_ns.map_or(next_tick, |w| w.min(next_tick));
                Ok(if produced {
                    DriverPoll::Progress
                } else {
                    DriverPoll::Idle {
                        wake_at_ns: Some(wake),
                    }
                })
            }
            SourcePoll::Finished => {
                self.finished = true;
                self.down.signal(Signal::Watermark(END_OF_TIME))?;
                self.down.signal(Signal::End)?;
                Ok(DriverPoll::Finished)
            }
        }
    }
}

impl<T: 'static> SourceDriver<T> {
    /// Forwards the reader's own watermark after its records (they were emitted before it, so
    /// none of them is late by it), and its idleness.
    fn forward_reader_watermark(&mut self, now_ns: u64) -> Result<(), OperatorError> {
        match self.reader.watermark(now_ns) {
            ReaderWatermark::Unsupported => {}
            ReaderWatermark::At(watermark) => {
                if self.idle {
                    self.idle = false;
                    self.down.signal(Signal::Status(StreamStatus::Active))?;
                }
                if watermark > self.watermark {
                    self.watermark = watermark;
                    self.down.signal(Signal::Watermark(watermark))?;
                }
            }
            ReaderWatermark::Idle => {
                if !self.idle {
                    self.idle = true;
                    self.down.signal(Signal::Status(StreamStatus::Idle))?;
                }
            }
        }
        Ok(())
    }

    fn position_blob(&self) -> Result<NamedBlob, OperatorError> {
        let position = self.reader.position().ok_or_else(|| {
            OperatorError::Failed(format!(
                "source '{}' is not replayable; exactly-once checkpoints need replayable sources",
                self.key
            ))
        })?;
        Ok(NamedBlob::new(&self.key, &position))
    }
}

impl<T: 'static> Driver for SourceDriver<T> {
    fn inject_barrier(
        &mut self,
        id: CheckpointId,
    ) -> Result<Option<NamedBlob>, (u32, OperatorError)> {
        let position = self.position_blob().map_err(|e| (self.operator, e))?;
        if !self.finished {
            op_scope::enter(self.operator);
            self.down
                .signal(Signal::Barrier(id))
                .map_err(|e| (op_scope::current(), e))?;
            crate::checkpoint::fault::hit("source.after_barrier");
        }
        Ok(Some(position))
    }

    fn level(&self) -> u32 {
        0
    }

    fn is_finished(&self) -> bool {
        self.finished
    }

    fn poll(&mut self, cx: &LoopContext) -> Result<DriverPoll, (u32, OperatorError)> {
        self.step(cx).map_err(|e| (op_scope::current(), e))
    }

    fn has_input(&self) -> bool {
        false
    }
}
