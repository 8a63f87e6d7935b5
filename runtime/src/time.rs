//! Event time and the job's monotonic clock.
//!
//! Event time is milliseconds since the Unix epoch (`EventTime`, an `i64` like Flink's
//! timestamps). `EventTime::MIN` means "no timestamp" on a record and "nothing is complete yet"
//! as a watermark; `EventTime::MAX` as a watermark means the input is complete (end of a bounded
//! stream). Processing time for latency is nanoseconds since the job started, read from one
//! `Instant` shared by every shard so values from different shards are comparable.

use std::time::Instant;

/// Event time in milliseconds since the Unix epoch.
pub type EventTime = i64;

/// The timestamp of a record that has none, and the watermark before any progress.
pub const NO_TIMESTAMP: EventTime = EventTime::MIN;

/// The watermark that says an input is complete.
pub const END_OF_TIME: EventTime = EventTime::MAX;

/// The job's monotonic clock: nanoseconds since the job started.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    origin: Instant,
}

impl Clock {
    /// A clock whose zero is now.
    pub fn start() -> Self {
        Clock {
            origin: Instant::now(),
        }
    }

    /// Nanoseconds since the clock started. One vDSO call; read it per batch, never per record.
    #[inline]
    pub fn now_ns(&self) -> u64 {
        // A job does not run for 584 years, so the narrowing cannot truncate.
        self.origin.elapsed().as_nanos() as u64
    }

    /// The instant this clock counts from.
    pub fn origin(&self) -> Instant {
        self.origin
    }
}

/// The current wall-clock time in milliseconds since the Unix epoch (processing time).
pub fn wall_clock_ms() -> EventTime {
    let now = std::time::SystemTime::now();
    match now.duration_since(std::time::UNIX_EPOCH) {
        Ok(d) => d.as_millis() as EventTime,
        Err(_) => 0,
    }
}
