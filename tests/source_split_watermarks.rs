//! Watermarks per split inside a source reader (`SourceReader::watermark` with
//! `watermarks::SplitWatermarks`), as the Kafka source does per partition.
//!
//! The reader here is a mock (named so): each shard's reader reads two in-memory splits whose
//! event times are far apart, and hands them out in alternating batches of 1,000 records, the
//! way librdkafka interleaves two partitions' fetches. Downstream, tumbling windows count each
//! split's records.
//!
//! - With per-split watermarks nothing is late: every window counts all of its records.
//! - With one watermark over the interleaved stream (`with_timestamps`) the behind split's
//!   records fall behind the watermark and are dropped: shown too, so the first check means
//!   something.
//! - Idleness: a split that stops producing stops holding the watermark back after the timeout;
//!   the reader waits (unbounded) until the sink saw a watermark beyond what the silent split
//!   allows, which never happens without the timeout (then it gives up after a deadline and the
//!   test fails).

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use corestrom::prelude::*;
use corestrom::runtime::watermarks::{ReaderWatermark, SplitWatermarks};
use corestrom::runtime::{
    EventTime, NO_TIMESTAMP, OpResult, OperatorError, Record, Sink, SinkWriter, Source, SourcePoll,
    SourceReader, SplitContext,
};

const BATCH: usize = 1_000;
/// Records per split per shard: split 0 covers [10 s, 20 s), split 1 [0 s, 10 s), 1 per ms.
const PER_SPLIT: i64 = 10_000;
const WINDOW_MS: u64 = 100;

/// A record: (shard, split, event time).
type Rec = (usize, usize, i64);

/// Mock partitioned source: two splits per shard, alternating batches.
#[derive(Clone)]
struct MockPartitionedSource {
    strategy: Option<WatermarkStrategy>,
    /// Split 1 stops after this many records (idleness test); `PER_SPLIT` = never.
    split_1_records: i64,
    /// After its records the reader waits until the sink saw this watermark (or a deadline).
    wait_for_watermark: Option<(i64, Arc<AtomicI64>)>,
}

struct MockPartitionedReader {
    shard: usize,
    next: [i64; 2],
    ends: [i64; 2],
    turn: usize,
    watermarks: Option<SplitWatermarks>,
    wait_for_watermark: Option<(i64, Arc<AtomicI64>)>,
    waiting_since_ns: Option<u64>,
}

impl Source<Rec> for MockPartitionedSource {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<Rec>>, OperatorError> {
        Ok(Box::new(MockPartitionedReader {
            shard: split.shard,
            next: [10_000, 0],
            ends: [10_000 + PER_SPLIT, self.split_1_records],
            turn: 0,
            watermarks: self.strategy.map(|s| SplitWatermarks::new(s, 2, 0)),
            wait_for_watermark: self.wait_for_watermark.clone(),
            waiting_since_ns: None,
        }))
    }
}

impl SourceReader<Rec> for MockPartitionedReader {
    fn poll(
        &mut self,
        out: &mut Vec<Record<Rec>>,
        _max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        for _ in 0..2 {
            let split = self.turn;
            self.turn = 1 - self.turn;
            if self.next[split] >= self.ends[split] {
                continue;
            }
            let end = (self.next[split] + BATCH as i64).min(self.ends[split]);
            for ts in self.next[split]..end {
                out.push(Record::new(ts, (self.shard, split, ts)));
                if let Some(w) = &mut self.watermarks {
                    w.observe(split, ts, now_ns);
                }
            }
            self.next[split] = end;
            if self.next[split] >= self.ends[split]
                && let Some(w) = &mut self.watermarks
                && self.wait_for_watermark.is_none()
            {
                w.finish(split);
            }
            return Ok(SourcePoll::Ready);
        }
        // Everything emitted; an idleness test waits, unbounded, for the watermark downstream.
        if let Some((wanted, seen)) = &self.wait_for_watermark {
            let since = *self.waiting_since_ns.get_or_insert(now_ns);
            let deadline = Duration::from_secs(5).as_nanos() as u64;
            if seen.load(Ordering::Acquire) < *wanted && now_ns - since < deadline {
                return Ok(SourcePoll::Pending {
                    wake_at_ns: Some(now_ns + 1_000_000),
                });
            }
        }
        Ok(SourcePoll::Finished)
    }

    fn watermark(&mut self, now_ns: u64) -> ReaderWatermark {
        self.watermarks
            .as_mut()
            .map_or(ReaderWatermark::Unsupported, |w| w.current(now_ns))
    }
}

/// Records the highest watermark below the end of time that reached it.
#[derive(Clone)]
struct WatermarkProbe(Arc<AtomicI64>);

struct ProbeWriter(Arc<AtomicI64>);

impl<T: 'static> Sink<T> for WatermarkProbe {
    fn create_writer(&self, _split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        Ok(Box::new(ProbeWriter(Arc::clone(&self.0))))
    }
}

impl<T: 'static> SinkWriter<T> for ProbeWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        records.clear();
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        if watermark != corestrom::runtime::END_OF_TIME {
            self.0.fetch_max(watermark, Ordering::AcqRel);
        }
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        Ok(())
    }
}

/// Runs the job; returns the window counts ((shard, split), window start) → count.
fn window_counts(
    source: MockPartitionedSource,
    single_watermark: bool,
) -> Vec<((usize, usize, i64), u64)> {
    let env = Env::builder().shards(2).build().expect("config");
    let mut stream = env.source("mock-partitions", source);
    if single_watermark {
        stream = stream.with_timestamps(
            |r: &Rec| r.2,
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(10)),
        );
    }
    let counts = stream
        .key_by(|r: &Rec| (r.0, r.1))
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            WINDOW_MS,
        )))
        .aggregate_with(
            Count,
            |k: &(usize, usize),
             w: &TimeWindow,
             n: u64,
             out: &mut Vec<((usize, usize, i64), u64)>| {
                out.push(((k.0, k.1, w.start), n))
            },
        )
        .main()
        .collect();
    env.execute_and_wait().expect("job");
    let mut counts = counts.take();
    counts.sort();
    counts
}

fn strategy() -> WatermarkStrategy {
    WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(10))
}

#[test]
fn per_split_watermarks_make_no_record_late() {
    let source = MockPartitionedSource {
        strategy: Some(strategy()),
        split_1_records: PER_SPLIT,
        wait_for_watermark: None,
    };
    let counts = window_counts(source, false);
    let windows = (PER_SPLIT as u64 / WINDOW_MS) as usize;
    assert_eq!(
        counts.len(),
        2 * 2 * windows,
        "every window of every split fires"
    );
    for ((shard, split, start), n) in &counts {
        assert_eq!(*n, WINDOW_MS, "shard {shard} split {split} window {start}");
    }
}

#[test]
fn one_watermark_over_interleaved_splits_drops_the_behind_split() {
    let source = MockPartitionedSource {
        strategy: None,
        split_1_records: PER_SPLIT,
        wait_for_watermark: None,
    };
    let counts = window_counts(source, true);
    let counted: u64 = counts
        .iter()
        .filter(|((_, split, _), _)| *split == 1)
        .map(|(_, n)| n)
        .sum();
    assert!(
        counted < 2 * PER_SPLIT as u64 / 2,
        "most of the behind split is late under one watermark ({counted} counted)"
    );
}

#[test]
fn an_idle_split_stops_holding_the_watermark_back() {
    // Split 1 produces 2 s of event time, then nothing; split 0 goes on to 20 s. The sink must
    // see a watermark past split 1's last record + bound while the job still runs.
    let split_1_records = 2_000;
    let beyond_split_1 = 5_000;
    let seen = Arc::new(AtomicI64::new(NO_TIMESTAMP));
    let run = |idleness: bool| {
        seen.store(NO_TIMESTAMP, Ordering::Release);
        let mut strategy = strategy();
        if idleness {
            strategy = strategy.with_idleness(Duration::from_millis(50));
        }
        let env = Env::builder().shards(2).build().expect("config");
        env.source(
            "mock-partitions",
            MockPartitionedSource {
                strategy: Some(strategy),
                split_1_records,
                wait_for_watermark: Some((beyond_split_1, Arc::clone(&seen))),
            },
        )
        .sink("probe", WatermarkProbe(Arc::clone(&seen)));
        env.execute_and_wait().expect("job");
        seen.load(Ordering::Acquire)
    };
    let with_idleness = run(true);
    assert!(
        with_idleness >= beyond_split_1,
        "the silent split was not marked idle: watermark {with_idleness}"
    );
    let without = run(false);
    assert!(
        without < split_1_records,
        "without idleness the silent split holds the watermark back (saw {without})"
    );
}
