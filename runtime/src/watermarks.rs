//! Watermark generation rules, and the per-split watermarks a source reader computes itself
//! (Flink's source-level watermarks: each split — a Kafka partition, a file — watermarked on
//! its own, the reader's watermark the minimum over its splits).
//!
//! Why per split: a reader that interleaves several splits (a shard reading three partitions,
//! fetched in batches of thousands of records) produces a stream whose timestamps jump between
//! the splits' positions. One watermark over that stream runs ahead with the fastest split and
//! makes the slower splits' records late; per-split watermarks combined by minimum do not.
//!
//! Rules, as in Flink's `BoundedOutOfOrdernessWatermarks` and `WatermarksWithIdleness`:
//! - a split's watermark after a maximum timestamp `t` is `t − bound − 1`; a split that has not
//!   produced a record yet holds the combined watermark back (it may still produce old records);
//! - a split that produced no record for the idleness timeout (processing time, counted from
//!   the reader's start or its last record) is idle: it does not hold the watermark back until
//!   its next record; when every unfinished split is idle the reader is idle (after the
//!   watermark of the split active last, which would have been alone for a moment);
//! - a finished split (a bounded partition that reached its end) never holds it back; a
//!   reader without splits (more shards than partitions) is idle;
//! - the combined watermark never goes backwards (a split coming back from idleness behind the
//!   others does not pull it back; its records below the watermark are late, as in Flink).
//!
//! Hot path: `observe` is a bounds-checked index, a max and a store per record; the combined
//! watermark is computed once per poll, O(splits).

use std::time::Duration;

use crate::time::{EventTime, NO_TIMESTAMP};

/// How watermarks follow the timestamps: an out-of-orderness bound and an optional idleness
/// timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WatermarkStrategy {
    out_of_orderness_ms: i64,
    idleness_ns: Option<u64>,
}

impl WatermarkStrategy {
    /// Records may arrive up to `bound` later than the newest timestamp seen.
    pub fn bounded_out_of_orderness(bound: Duration) -> Self {
        WatermarkStrategy {
            out_of_orderness_ms: i64::try_from(bound.as_millis()).unwrap_or(i64::MAX),
            idleness_ns: None,
        }
    }

    /// Timestamps never decrease.
    pub fn monotonous() -> Self {
        WatermarkStrategy {
            out_of_orderness_ms: 0,
            idleness_ns: None,
        }
    }

    /// Marks the input idle after `timeout` without records.
    #[must_use]
    pub fn with_idleness(self, timeout: Duration) -> Self {
        WatermarkStrategy {
            idleness_ns: Some(u64::try_from(timeout.as_nanos()).unwrap_or(u64::MAX)),
            ..self
        }
    }

    /// The out-of-orderness bound in ms.
    pub fn out_of_orderness_ms(&self) -> i64 {
        self.out_of_orderness_ms
    }

    /// The idleness timeout in ns, if any.
    pub fn idleness_ns(&self) -> Option<u64> {
        self.idleness_ns
    }

    /// The watermark after seeing the maximum timestamp `max` (`NO_TIMESTAMP`: none yet).
    #[inline]
    pub fn watermark_after(&self, max: EventTime) -> EventTime {
        if max == NO_TIMESTAMP {
            return NO_TIMESTAMP;
        }
        max.saturating_sub(self.out_of_orderness_ms)
            .saturating_sub(1)
    }
}

/// A reader's own watermark, asked for after every poll (`SourceReader::watermark`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReaderWatermark {
    /// The reader does not generate watermarks (a downstream `with_timestamps` does).
    Unsupported,
    /// Nothing at or below this timestamp will follow (`NO_TIMESTAMP`: nothing known yet).
    At(EventTime),
    /// Every unfinished split is idle: downstream should not wait for this reader.
    Idle,
}

#[derive(Clone, Copy, Debug)]
struct Split {
    max_timestamp: EventTime,
    last_record_ns: u64,
    finished: bool,
}

/// The watermarks of one reader's splits; see the module doc.
#[derive(Clone, Debug)]
pub struct SplitWatermarks {
    strategy: WatermarkStrategy,
    splits: Vec<Split>,
    combined: EventTime,
}

impl SplitWatermarks {
    /// `splits` splits, none seen yet; `now_ns` (job clock) starts their idleness timers.
    pub fn new(strategy: WatermarkStrategy, splits: usize, now_ns: u64) -> Self {
        SplitWatermarks {
            strategy,
            splits: vec![
                Split {
                    max_timestamp: NO_TIMESTAMP,
                    last_record_ns: now_ns,
                    finished: false,
                };
                splits
            ],
            combined: NO_TIMESTAMP,
        }
    }

    /// Split `split` emitted a record with timestamp `ts` at `now_ns`.
    #[inline]
    pub fn observe(&mut self, split: usize, ts: EventTime, now_ns: u64) {
        debug_assert!(split < self.splits.len(), "split {split} out of range");
        if let Some(s) = self.splits.get_mut(split) {
            s.max_timestamp = s.max_timestamp.max(ts);
            s.last_record_ns = now_ns;
        }
    }

    /// Split `split` will produce nothing more.
    pub fn finish(&mut self, split: usize) {
        if let Some(s) = self.splits.get_mut(split) {
            s.finished = true;
        }
    }

    /// The reader's watermark at `now_ns`: the minimum over active splits, never decreasing.
    pub fn current(&mut self, now_ns: u64) -> ReaderWatermark {
        if self.splits.is_empty() {
            return ReaderWatermark::Idle;
        }
        let mut min: Option<EventTime> = None;
        let mut idle = false;
        for split in self.splits.iter().filter(|s| !s.finished) {
            let timed_out = self
                .strategy
                .idleness_ns
                .is_some_and(|t| now_ns.saturating_sub(split.last_record_ns) >= t);
            if timed_out {
                idle = true;
                continue;
            }
            let w = self.strategy.watermark_after(split.max_timestamp);
            min = Some(min.map_or(w, |m: EventTime| m.min(w)));
        }
        match min {
            Some(w) => {
                self.combined = self.combined.max(w);
                ReaderWatermark::At(self.combined)
            }
            // Every unfinished split is idle. Had their timeouts been checked one by one, the
            // split active last would have been alone for a moment and its watermark emitted
            // (Flink's multiplexer does that); the same happens here, one call before idle.
            None if idle => {
                let last_active = self
                    .splits
                    .iter()
                    .filter(|s| !s.finished)
                    .max_by_key(|s| (s.last_record_ns, s.max_timestamp))
                    .map_or(NO_TIMESTAMP, |s| {
                        self.strategy.watermark_after(s.max_timestamp)
                    });
                if last_active > self.combined {
                    self.combined = last_active;
                    ReaderWatermark::At(self.combined)
                } else {
                    ReaderWatermark::Idle
                }
            }
            // Every split finished: the highest watermark any split reached stands.
            None => {
                let highest = self
                    .splits
                    .iter()
                    .map(|s| self.strategy.watermark_after(s.max_timestamp))
                    .max()
                    .unwrap_or(NO_TIMESTAMP);
                self.combined = self.combined.max(highest);
                ReaderWatermark::At(self.combined)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: u64 = 1_000_000;

    fn strategy() -> WatermarkStrategy {
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(5))
            .with_idleness(Duration::from_millis(100))
    }

    #[test]
    fn minimum_over_splits_and_a_silent_split_holds_back_until_idle() {
        let mut w = SplitWatermarks::new(strategy(), 2, 0);
        w.observe(0, 1_000, MS);
        assert_eq!(
            w.current(MS),
            ReaderWatermark::At(NO_TIMESTAMP),
            "split 1 not seen yet"
        );
        w.observe(1, 400, 2 * MS);
        assert_eq!(w.current(2 * MS), ReaderWatermark::At(394));
        w.observe(1, 2_000, 3 * MS);
        assert_eq!(w.current(3 * MS), ReaderWatermark::At(994));
        // Split 0 silent for the timeout: idle, split 1 alone decides.
        assert_eq!(w.current(101 * MS), ReaderWatermark::At(1_994));
        // Both silent: the reader is idle.
        assert_eq!(w.current(200 * MS), ReaderWatermark::Idle);
        // Split 0 is back behind the watermark: it does not pull it back.
        w.observe(0, 1_100, 201 * MS);
        assert_eq!(w.current(201 * MS), ReaderWatermark::At(1_994));
    }

    #[test]
    fn finished_splits_do_not_hold_back() {
        let mut w = SplitWatermarks::new(WatermarkStrategy::monotonous(), 3, 0);
        w.observe(0, 50, 0);
        w.observe(1, 70, 0);
        w.finish(2);
        assert_eq!(w.current(0), ReaderWatermark::At(49));
        w.finish(0);
        assert_eq!(w.current(0), ReaderWatermark::At(69));
        w.finish(1);
        assert_eq!(w.current(0), ReaderWatermark::At(69));
        let mut none = SplitWatermarks::new(WatermarkStrategy::monotonous(), 0, 0);
        assert_eq!(
            none.current(0),
            ReaderWatermark::Idle,
            "no splits: never holds back"
        );
    }

    proptest! {
        /// Against a direct model: the watermark is the running max of (min over live splits of
        /// max timestamp − bound − 1), a split live when unfinished, seen or not, and not silent
        /// for the timeout.
        #[test]
        fn matches_the_model(ops in proptest::collection::vec((0usize..3, 0i64..1_000, 0u64..60, any::<bool>()), 1..200)) {
            let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(3))
                .with_idleness(Duration::from_millis(50));
            let mut w = SplitWatermarks::new(strategy, 3, 0);
            let mut max = [NO_TIMESTAMP; 3];
            let mut last = [0u64; 3];
            let mut finished = [false; 3];
            let mut emitted = NO_TIMESTAMP;
            let mut now = 0u64;
            for (split, ts, advance_ms, finish) in ops {
                now += advance_ms * MS;
                if finish && split == 2 {
                    finished[2] = true;
                    w.finish(2);
                } else if !finished[split] {
                    w.observe(split, ts, now);
                    max[split] = max[split].max(ts);
                    last[split] = now;
                }
                let live: Vec<usize> = (0..3)
                    .filter(|&s| !finished[s] && now - last[s] < 50 * MS)
                    .collect();
                let expected = if live.is_empty() {
                    if (0..3).any(|s| !finished[s]) {
                        let last_active = (0..3)
                            .filter(|&s| !finished[s])
                            .max_by_key(|&s| (last[s], max[s]))
                            .map_or(NO_TIMESTAMP, |s| strategy.watermark_after(max[s]));
                        if last_active > emitted {
                            emitted = last_active;
                            ReaderWatermark::At(emitted)
                        } else {
                            ReaderWatermark::Idle
                        }
                    } else {
                        let highest = max.iter().map(|&m| strategy.watermark_after(m)).max().unwrap_or(NO_TIMESTAMP);
                        emitted = emitted.max(highest);
                        ReaderWatermark::At(emitted)
                    }
                } else {
                    let min = live.iter().map(|&s| strategy.watermark_after(max[s])).min().unwrap_or(NO_TIMESTAMP);
                    emitted = emitted.max(min);
                    ReaderWatermark::At(emitted)
                };
                prop_assert_eq!(w.current(now), expected);
            }
        }
    }
}
