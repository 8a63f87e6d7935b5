//! Sinks: the `Sink` a user hands to the job, the `SinkWriter` it creates per shard, and the
//! collector that feeds a writer at the end of a chain and measures end-to-end latency.

use std::cell::RefCell;
use std::rc::Rc;

use crate::collector::Collector;
use crate::element::{Batch, Record, Signal};
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

    /// The stream ended: flush and close.
    ///
    /// # Errors
    /// A failure that should fail the job.
    fn finish(&mut self) -> OpResult;
}

/// Feeds a writer; records latency and counts per batch.
pub(crate) struct SinkCollector<T> {
    pub(crate) operator: u32,
    pub(crate) writer: Box<dyn SinkWriter<T>>,
    pub(crate) metrics: Rc<RefCell<ShardMetrics>>,
    pub(crate) clock: Clock,
    pub(crate) finished: Rc<std::cell::Cell<bool>>,
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
        let result = self.writer.write(&mut batch.records);
        batch.records.clear();
        result
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        op_scope::enter(self.operator);
        match signal {
            Signal::Watermark(wm) => self.writer.on_watermark(wm),
            Signal::End => {
                assert!(!self.finished.get(), "a sink's input ended twice");
                self.finished.set(true);
                self.writer.finish()
            }
            Signal::Status(_) | Signal::Barrier(_) | Signal::Tick(_) => Ok(()),
        }
    }
}
