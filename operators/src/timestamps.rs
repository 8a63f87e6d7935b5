//! Event time at the source side: assigning timestamps to records and generating watermarks
//! (Flink's `assignTimestampsAndWatermarks`).
//!
//! Semantics, as in Flink: with a bound of `b` ms the watermark after seeing a maximum timestamp
//! `t` is `t − b − 1` (every record with a timestamp ≤ the watermark is complete); a monotonous
//! strategy is the bound 0. Watermarks from upstream are dropped except the final
//! `END_OF_TIME`, because this operator is the one that defines event time from here on. With an
//! idleness timeout, an input that delivered no record for that long is marked idle, so it does
//! not hold back downstream watermarks, and active again with its next record.

use corestrom_runtime::op_scope;
use corestrom_runtime::{
    Batch, BoxCollector, Collector, END_OF_TIME, EventTime, NO_TIMESTAMP, OpResult, Signal,
    StreamStatus,
};

pub use corestrom_runtime::watermarks::WatermarkStrategy;

pub(crate) struct AssignTimestamps<T, F> {
    pub(crate) operator: u32,
    pub(crate) timestamp: F,
    pub(crate) strategy: WatermarkStrategy,
    pub(crate) max_timestamp: EventTime,
    pub(crate) emitted: EventTime,
    pub(crate) last_data_ns: u64,
    pub(crate) idle: bool,
    pub(crate) down: BoxCollector<T>,
}

impl<T, F> AssignTimestamps<T, F> {
    pub(crate) fn new(
        operator: u32,
        timestamp: F,
        strategy: WatermarkStrategy,
        down: BoxCollector<T>,
    ) -> Self {
        AssignTimestamps {
            operator,
            timestamp,
            strategy,
            max_timestamp: NO_TIMESTAMP,
            emitted: NO_TIMESTAMP,
            last_data_ns: 0,
            idle: false,
            down,
        }
    }
}

impl<T: 'static, F: FnMut(&T) -> EventTime + 'static> Collector<T> for AssignTimestamps<T, F> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        if batch.records.is_empty() {
            return Ok(());
        }
        if self.idle {
            self.idle = false;
            self.down.signal(Signal::Status(StreamStatus::Active))?;
        }
        op_scope::enter(self.operator);
        let mut max = self.max_timestamp;
        for record in &mut batch.records {
            record.ts = (self.timestamp)(&record.value);
            max = max.max(record.ts);
        }
        self.max_timestamp = max;
        // The batch's emission time is "now" to within one loop turn: no clock read needed.
        self.last_data_ns = batch.emitted_ns;
        self.down.push(batch)?;
        let watermark = self.strategy.watermark_after(max);
        if max != NO_TIMESTAMP && watermark > self.emitted {
            self.emitted = watermark;
            self.down.signal(Signal::Watermark(watermark))?;
        }
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        match signal {
            Signal::Watermark(END_OF_TIME) => {
                self.emitted = END_OF_TIME;
                self.down.signal(signal)
            }
            Signal::Watermark(_) | Signal::Status(_) => Ok(()),
            Signal::Tick(now_ns) => {
                if let Some(timeout) = self.strategy.idleness_ns()
                    && !self.idle
                    && now_ns.saturating_sub(self.last_data_ns) >= timeout
                {
                    self.idle = true;
                    self.down.signal(Signal::Status(StreamStatus::Idle))?;
                }
                self.down.signal(signal)
            }
            Signal::Barrier(_) | Signal::End => self.down.signal(signal),
        }
    }
}
