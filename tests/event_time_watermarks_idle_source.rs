//! Watermarks travel through two exchanges to every shard's sink as the minimum over all
//! inputs; an idle split (no records) does not hold them back when the strategy has an idleness
//! timeout, and does hold them back without one; the end of every split ends the job by itself
//! with the final END_OF_TIME watermark at every sink.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;
use corestrom_runtime::{END_OF_TIME, OpResult};

const RECORDS: u64 = 5_000;

/// Split 0 emits values 1..=RECORDS, then waits for `release`; split 1 emits nothing and waits.
struct HeldSource {
    release: Arc<AtomicBool>,
}

struct HeldReader {
    next: u64,
    last: u64,
    release: Arc<AtomicBool>,
}

impl Source<u64> for HeldSource {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<u64>>, OperatorError> {
        let last = if split.shard == 0 { RECORDS } else { 0 };
        Ok(Box::new(HeldReader {
            next: 1,
            last,
            release: Arc::clone(&self.release),
        }))
    }
}

impl SourceReader<u64> for HeldReader {
    fn poll(
        &mut self,
        out: &mut Vec<Record<u64>>,
        max: usize,
        _now: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let end = (self.next + max as u64).min(self.last + 1);
        out.extend((self.next..end).map(|v| Record::new(corestrom_runtime::NO_TIMESTAMP, v)));
        self.next = end;
        if self.next <= self.last {
            Ok(SourcePoll::Ready)
        } else if self.release.load(Ordering::SeqCst) {
            Ok(SourcePoll::Finished)
        } else {
            Ok(SourcePoll::Pending { wake_at_ns: None })
        }
    }
}

#[derive(Clone, Default)]
struct WatermarkLog {
    seen: Arc<Mutex<Vec<(usize, EventTime)>>>,
}

struct WatermarkLogWriter {
    shard: usize,
    log: WatermarkLog,
}

impl Sink<u64> for WatermarkLog {
    fn create_writer(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SinkWriter<u64>>, OperatorError> {
        Ok(Box::new(WatermarkLogWriter {
            shard: split.shard,
            log: self.clone(),
        }))
    }
}

impl SinkWriter<u64> for WatermarkLogWriter {
    fn write(&mut self, records: &mut Vec<Record<u64>>) -> OpResult {
        records.clear();
        Ok(())
    }
    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        self.log
            .seen
            .lock()
            .expect("log")
            .push((self.shard, watermark));
        Ok(())
    }
    fn finish(&mut self) -> OpResult {
        Ok(())
    }
}

fn max_watermark_at_every_shard(log: &WatermarkLog, shards: usize) -> Option<EventTime> {
    let seen = log.seen.lock().expect("log");
    (0..shards)
        .map(|s| {
            seen.iter()
                .filter(|(shard, _)| *shard == s)
                .map(|(_, wm)| *wm)
                .max()
        })
        .min()
        .flatten()
}

/// Runs the pipeline; returns the lowest per-shard maximum watermark seen before the held splits
/// were released, everything the sinks saw before the release, and the full log.
fn run(
    strategy: WatermarkStrategy,
    shards: usize,
) -> (Option<EventTime>, Vec<(usize, EventTime)>, WatermarkLog) {
    let release = Arc::new(AtomicBool::new(false));
    let log = WatermarkLog::default();
    let env = Env::builder().shards(shards).build().expect("config");
    env.source(
        "held",
        HeldSource {
            release: Arc::clone(&release),
        },
    )
    .with_timestamps(|v: &u64| *v as EventTime, strategy)
    .key_by(|v: &u64| *v % 13)
    .map(|v: u64| v + 1)
    .rebalance()
    .sink("watermark log", log.clone());
    let job = env.execute().expect("starts");
    // Give the records and (with idleness) the idle marker time to travel.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut before_release = None;
    while Instant::now() < deadline {
        before_release = max_watermark_at_every_shard(&log, shards);
        if before_release == Some(RECORDS as EventTime - 1) {
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let seen_before_release = log.seen.lock().expect("log").clone();
    release.store(true, Ordering::SeqCst);
    job.wait()
        .expect("the job ends by itself once every split ended");
    (before_release, seen_before_release, log)
}

#[test]
fn idle_split_does_not_hold_back_watermarks_through_two_exchanges() {
    for shards in [2, 4] {
        let strategy = WatermarkStrategy::monotonous().with_idleness(Duration::from_millis(20));
        let (before_release, _, log) = run(strategy, shards);
        // Max timestamp RECORDS with bound 0 gives RECORDS − 1, at every shard's sink.
        assert_eq!(
            before_release,
            Some(RECORDS as EventTime - 1),
            "shards = {shards}"
        );
        let seen = log.seen.lock().expect("log");
        for shard in 0..shards {
            let marks: Vec<EventTime> = seen
                .iter()
                .filter(|(s, _)| *s == shard)
                .map(|(_, w)| *w)
                .collect();
            assert!(
                marks.windows(2).all(|w| w[0] < w[1]),
                "watermarks increase at shard {shard}: {marks:?}"
            );
            assert_eq!(
                marks.last(),
                Some(&END_OF_TIME),
                "final watermark at shard {shard}"
            );
        }
    }
}

#[test]
fn without_idleness_an_idle_split_holds_back_watermarks() {
    let (before_release, seen_before_release, log) = run(WatermarkStrategy::monotonous(), 2);
    assert_eq!(before_release, None);
    assert!(
        seen_before_release.is_empty(),
        "no watermark may pass while split 1 says nothing: {seen_before_release:?}"
    );
    // Once released, both splits end and every sink sees the final watermark.
    let seen = log.seen.lock().expect("log");
    for shard in 0..2 {
        assert!(
            seen.contains(&(shard, END_OF_TIME)),
            "final watermark at shard {shard}: {seen:?}"
        );
    }
}
