//! What flows along a stream: batches of records, and the control signals between them.
//!
//! A record is a plain Rust value with its event timestamp; records travel in batches so that
//! every per-element cost (a ring slot, a virtual call, a clock read) is paid once per batch.
//! Control signals (watermarks, idleness, barriers, end of stream) travel in order with the data
//! on every channel: a signal is never overtaken by data sent before it, nor overtakes data sent
//! after it.

use crate::time::EventTime;

/// One record: a value and its event timestamp (`NO_TIMESTAMP` when none was assigned).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record<T> {
    /// Event time in ms since the epoch.
    pub ts: EventTime,
    /// The user's value.
    pub value: T,
}

impl<T> Record<T> {
    /// A record with a timestamp.
    #[inline]
    pub fn new(ts: EventTime, value: T) -> Self {
        Record { ts, value }
    }
}

/// A batch of records.
///
/// `emitted_ns` is when the oldest record of the batch left its source (job clock, ns); sinks
/// measure end-to-end latency from it, so a batch's latency is an upper bound for each of its
/// records.
#[derive(Debug)]
pub struct Batch<T> {
    /// The records, in order.
    pub records: Vec<Record<T>>,
    /// When the oldest record in the batch was emitted by its source (job clock, ns).
    pub emitted_ns: u64,
}

impl<T> Batch<T> {
    /// An empty batch that can hold `capacity` records without reallocating.
    pub fn with_capacity(capacity: usize) -> Self {
        Batch {
            records: Vec::with_capacity(capacity),
            emitted_ns: u64::MAX,
        }
    }

    /// Number of records.
    #[inline]
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// True when the batch holds no record.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

/// Identifies one checkpoint; increases by one per checkpoint of a job.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CheckpointId(pub u64);

/// Whether an input currently produces data; idle inputs do not hold back the watermark.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamStatus {
    /// The input produces records and its watermark counts.
    Active,
    /// The input has produced nothing for a while; its watermark is ignored until it is active.
    Idle,
}

/// A control signal that travels in order with the data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    /// No record with a timestamp at or below this will follow on this stream.
    Watermark(EventTime),
    /// The stream became idle or active again.
    Status(StreamStatus),
    /// Checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(CheckpointId),
    /// Processing time passes (job clock, ns) and the input has nothing to deliver; lets
    /// operators detect idleness. Never crosses an exchange.
    Tick(u64),
    /// The stream ended; nothing follows.
    End,
}
