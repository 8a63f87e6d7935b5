//! Checkpoints with keyed state: for a keyed fold holding 10 MB, 100 MB or 1 GB of encoded
//! state on one shard (one core), the synchronous pause of each snapshot (the time the shard
//! spends encoding its state at the barrier), the checkpoint duration (trigger to manifest:
//! encode, write to the store, seal, fdatasync, manifest), and the throughput with 1 s
//! checkpoints against the same job without checkpoints, as a ratio from one run.
//!
//! Run: `cargo bench -p corestrom-bench --bench checkpoint_state [-- MB ...]` (default 10 100
//! 1000). Prints a markdown table.
//!
//! The job: a replayable counting source (key = a multiplicative hash of the sequence number
//! modulo the key count, so every key is touched early and often), `key_by`, and a fold whose
//! accumulator is a count plus a 100-byte payload (≈ 124 encoded bytes per key), into a
//! blackhole. Events are at least three passes over the keys and at least 30 M, so the state is
//! at its full size for most of the run and several checkpoints see all of it. The final
//! snapshot at the end of the input is not a barrier pause and is not counted.

use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;
use corestrom_runtime::checkpoint::SnapshotPause;

/// Encoded bytes per key: key 8 + count 8 + payload length 8 + payload 100.
const BYTES_PER_KEY: u64 = 124;
const PAYLOAD: usize = 100;

/// `count` keyed events, replayable: the position is the number emitted.
#[derive(Clone)]
struct Counting {
    events: u64,
    keys: u64,
}

struct CountingReader {
    next: u64,
    end: u64,
    keys: u64,
}

impl Source<u64> for Counting {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<u64>>, OperatorError> {
        let per = self.events / split.shards as u64;
        Ok(Box::new(CountingReader {
            next: per * split.shard as u64,
            end: per * (split.shard as u64 + 1),
            keys: self.keys,
        }))
    }
}

impl SourceReader<u64> for CountingReader {
    fn poll(
        &mut self,
        out: &mut Vec<Record<u64>>,
        max: usize,
        _now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let stop = self.end.min(self.next + max as u64);
        for i in self.next..stop {
            let key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % self.keys;
            out.push(Record::new(corestrom_runtime::NO_TIMESTAMP, key));
        }
        self.next = stop;
        Ok(if stop == self.end {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready
        })
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }

    fn restore(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let bytes: [u8; 8] = position
            .try_into()
            .map_err(|_| OperatorError::Failed("counting source: bad position".into()))?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// At least three passes over the keys, and enough events for several 1 s checkpoints.
fn events_for(keys: u64) -> u64 {
    (keys * 3).max(MIN_EVENTS)
}

/// Events of the shortest run (a few seconds on one core).
const MIN_EVENTS: u64 = 30_000_000;

struct Outcome {
    seconds: f64,
    durations_us: Vec<u64>,
    pauses: Vec<SnapshotPause>,
}

fn run(keys: u64, checkpoints: Option<&std::path::Path>) -> Outcome {
    let mut builder = Env::builder().shards(1);
    if let Some(dir) = checkpoints {
        builder = builder.checkpoint_every(Duration::from_secs(1), dir);
    }
    let env = builder.build().expect("config");
    let events = events_for(keys);
    env.source("counting", Counting { events, keys })
        .key_by(|k: &u64| *k)
        .fold(
            (0u64, vec![7u8; PAYLOAD]),
            |acc: &mut (u64, Vec<u8>), _k: u64| acc.0 += 1,
        )
        .blackhole();
    let started = Instant::now();
    let report = env.execute_and_wait().expect("job succeeds");
    Outcome {
        seconds: started.elapsed().as_secs_f64(),
        durations_us: report.checkpoint_durations_us.unwrap_or_default(),
        pauses: report.snapshot_pauses.unwrap_or_default(),
    }
}

fn percentile(values: &[u64], p: f64) -> u64 {
    if values.is_empty() {
        return 0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank]
}

fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![10, 100, 1000]
    } else {
        sizes
    };
    println!(
        "| state | keys | snapshots | pause p50 | pause p99 | pause max | checkpoint p50 | checkpoint p99 | events/s with 1 s checkpoints | without | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for mb in sizes {
        let keys = mb * 1_000_000 / BYTES_PER_KEY;
        let events = events_for(keys);
        let dir = tempfile::tempdir().expect("temp dir");
        let without = run(keys, None);
        let with = run(keys, Some(dir.path()));
        // Snapshots of the full state: the final one (after the input ended) included.
        let full: Vec<&SnapshotPause> = with
            .pauses
            .iter()
            .filter(|p| p.bytes >= keys * BYTES_PER_KEY * 9 / 10)
            .collect();
        let pauses: Vec<u64> = full.iter().map(|p| p.pause_us).collect();
        let ms = |us: u64| format!("{:.1} ms", us as f64 / 1000.0);
        let rate = |o: &Outcome| events as f64 / o.seconds;
        println!(
            "| {mb} MB | {keys} | {} of {} | {} | {} | {} | {} | {} | {:.2} M | {:.2} M | {:.3} |",
            full.len(),
            with.pauses.len(),
            ms(percentile(&pauses, 50.0)),
            ms(percentile(&pauses, 99.0)),
            ms(pauses.iter().copied().max().unwrap_or(0)),
            ms(percentile(&with.durations_us, 50.0)),
            ms(percentile(&with.durations_us, 99.0)),
            rate(&with) / 1e6,
            rate(&without) / 1e6,
            rate(&with) / rate(&without),
        );
    }
}
