//! Checkpoints with keyed state: for a keyed fold holding 10 MB, 100 MB or 1 GB of encoded
//! state on one shard (one core), what each checkpoint costs the shard, the checkpoint duration
//! (trigger to manifest: mark, background encoding, write to the store, seal, fdatasync,
//! manifest), and the throughput with 1 s checkpoints against the same job without
//! checkpoints, as a ratio from one run.
//!
//! What the shard stops processing records for, per checkpoint (the fold snapshots
//! incrementally and asynchronously, see `runtime/src/state/snapshot_map.rs`):
//! - the barrier pause: marking the key groups written since the previous checkpoint;
//! - background slices between batches, each encoding parts of those groups for about
//!   250 µs (the longest is reported);
//! - copy-on-write on the record path: the first write after the barrier to a key whose part
//!   is not encoded yet clones its accumulator (counted; its time is inside the throughput).
//!
//! Run: `cargo bench -p corestrom-bench --bench checkpoint_state [-- MB ... uniform hot]`
//! (default 10 100 1000, both workloads). Prints a markdown table.
//!
//! The job: a replayable counting source, `key_by`, and a fold whose accumulator is a count
//! plus a 100-byte payload (≈ 124 encoded bytes per key), into a blackhole. Workloads:
//! - `uniform`: key = a multiplicative hash of the sequence number modulo the key count, so
//!   every key group is written between any two checkpoints (incremental saves nothing);
//! - `hot`: the first pass writes every key once (the state reaches its full size), then only
//!   keys of 2 of the 128 key groups are written (incremental writes 2 groups per checkpoint).
//!
//! Besides events/s, each run's process CPU time is reported: on a shared machine the wall
//! clock of a run depends on what else runs, its CPU time much less, so the CPU ratio
//! (without / with) is the steadier measure of what checkpoints cost.
//!
//! Events are at least three passes over the keys and at least 30 M, so the state is at its
//! full size for most of the run. The final snapshot at the end of the input is not a
//! checkpoint of its own and is not counted.

use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;
use corestrom_runtime::StableHash;
use corestrom_runtime::checkpoint::SnapshotPause;

/// Encoded bytes per key: key 8 + count 8 + payload length 8 + payload 100.
const BYTES_PER_KEY: u64 = 124;
const PAYLOAD: usize = 100;

/// Key groups of the job (the default).
const MAX_KEY_GROUPS: u32 = 128;
/// Key groups the `hot` workload writes after its first pass.
const HOT_GROUPS: u32 = 2;

/// Which keys the events write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    Uniform,
    Hot,
}

/// `count` keyed events, replayable: the position is the number emitted.
#[derive(Clone)]
struct Counting {
    events: u64,
    keys: u64,
    /// The keys written after the first pass (`hot`), empty for `uniform`.
    hot: std::sync::Arc<Vec<u64>>,
}

struct CountingReader {
    next: u64,
    end: u64,
    keys: u64,
    hot: std::sync::Arc<Vec<u64>>,
}

impl CountingReader {
    fn key(&self, i: u64) -> u64 {
        let mixed = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        if self.hot.is_empty() {
            mixed % self.keys
        } else if i < self.keys {
            i
        } else {
            self.hot[(mixed % self.hot.len() as u64) as usize]
        }
    }
}

/// The keys below `keys` whose key group is one of the first `HOT_GROUPS`.
fn hot_keys(keys: u64) -> Vec<u64> {
    (0..keys)
        .filter(|k| {
            corestrom_runtime::hash::key_group_of_hash(k.stable_hash(), MAX_KEY_GROUPS).0
                < HOT_GROUPS
        })
        .collect()
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
            hot: std::sync::Arc::clone(&self.hot),
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
            let key = self.key(i);
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

/// Runs of each kind (without and with checkpoints) per size and workload.
const REPEATS: usize = 2;

/// Events of the shortest run (a few seconds on one core).
const MIN_EVENTS: u64 = 30_000_000;

struct Outcome {
    seconds: f64,
    /// CPU time of the whole process during the job, in s (not inflated by other processes
    /// taking the cores, unlike `seconds`).
    cpu_seconds: f64,
    durations_us: Vec<u64>,
    pauses: Vec<SnapshotPause>,
}

fn run(
    keys: u64,
    hot: &std::sync::Arc<Vec<u64>>,
    checkpoints: Option<&std::path::Path>,
) -> Outcome {
    let mut builder = Env::builder().shards(1);
    if let Some(dir) = checkpoints {
        builder = builder.checkpoint_every(Duration::from_secs(1), dir);
    }
    let env = builder.build().expect("config");
    let events = events_for(keys);
    let source = Counting {
        events,
        keys,
        hot: std::sync::Arc::clone(hot),
    };
    env.source("counting", source)
        .key_by(|k: &u64| *k)
        .fold(
            (0u64, vec![7u8; PAYLOAD]),
            |acc: &mut (u64, Vec<u8>), _k: u64| acc.0 += 1,
        )
        .blackhole();
    let started = Instant::now();
    let cpu_started = corestrom_runtime::metrics::process_cpu_ns();
    let report = env.execute_and_wait().expect("job succeeds");
    Outcome {
        seconds: started.elapsed().as_secs_f64(),
        cpu_seconds: (corestrom_runtime::metrics::process_cpu_ns() - cpu_started) as f64 / 1e9,
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
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut sizes: Vec<u64> = args.iter().filter_map(|a| a.parse().ok()).collect();
    if sizes.is_empty() {
        sizes = vec![10, 100, 1000];
    }
    let mut workloads: Vec<Workload> = args
        .iter()
        .filter_map(|a| match a.as_str() {
            "uniform" => Some(Workload::Uniform),
            "hot" => Some(Workload::Hot),
            _ => None,
        })
        .collect();
    if workloads.is_empty() {
        workloads = vec![Workload::Uniform, Workload::Hot];
    }
    println!(
        "| state | workload | checkpoints | barrier pause p50 | p99 | max | longest slice p50 | p99 | longest slice CPU p50 | p99 | encoding per checkpoint p50 | encoded MB p50 | copy-on-write copies p50 | checkpoint p50 | checkpoint p99 | events/s with 1 s checkpoints | without | ratio | CPU s with | CPU s without | CPU ratio |"
    );
    println!(
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"
    );
    for mb in sizes {
        for &workload in &workloads {
            let keys = mb * 1_000_000 / BYTES_PER_KEY;
            let events = events_for(keys);
            let hot = std::sync::Arc::new(match workload {
                Workload::Uniform => Vec::new(),
                Workload::Hot => hot_keys(keys),
            });
            // Runs alternate without and with checkpoints, `REPEATS` times each; the fastest of
            // each kind gives the ratio (the machine is shared: the fastest run is the one the
            // other processes disturbed least), every checkpoint of every run the percentiles.
            let mut without: Option<Outcome> = None;
            let mut with: Option<Outcome> = None;
            let mut pauses: Vec<SnapshotPause> = Vec::new();
            let mut durations_us: Vec<u64> = Vec::new();
            for _ in 0..REPEATS {
                let plain = run(keys, &hot, None);
                if without.as_ref().is_none_or(|o| plain.seconds < o.seconds) {
                    without = Some(plain);
                }
                let dir = tempfile::tempdir().expect("temp dir");
                let checkpointed = run(keys, &hot, Some(dir.path()));
                pauses.extend(checkpointed.pauses.iter().copied());
                durations_us.extend(checkpointed.durations_us.iter().copied());
                if with
                    .as_ref()
                    .is_none_or(|o| checkpointed.seconds < o.seconds)
                {
                    with = Some(checkpointed);
                }
            }
            let (without, with) = (without.expect("ran"), with.expect("ran"));
            let field =
                |f: fn(&SnapshotPause) -> u64| -> Vec<u64> { pauses.iter().map(f).collect() };
            let pause_us = field(|p| p.pause_us);
            let slices = field(|p| p.slice_us_max);
            let slices_cpu = field(|p| p.slice_cpu_us_max);
            let encode = field(|p| p.encode_us);
            let bytes = field(|p| p.bytes);
            let copies = field(|p| p.cow_copies);
            let ms = |us: u64| format!("{:.3} ms", us as f64 / 1000.0);
            let rate = |o: &Outcome| events as f64 / o.seconds;
            println!(
                "| {mb} MB | {workload:?} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} | {:.2} M | {:.2} M | {:.3} | {:.2} | {:.2} | {:.3} |",
                pauses.len(),
                ms(percentile(&pause_us, 50.0)),
                ms(percentile(&pause_us, 99.0)),
                ms(pause_us.iter().copied().max().unwrap_or(0)),
                ms(percentile(&slices, 50.0)),
                ms(percentile(&slices, 99.0)),
                ms(percentile(&slices_cpu, 50.0)),
                ms(percentile(&slices_cpu, 99.0)),
                ms(percentile(&encode, 50.0)),
                percentile(&bytes, 50.0) as f64 / 1e6,
                percentile(&copies, 50.0),
                ms(percentile(&durations_us, 50.0)),
                ms(percentile(&durations_us, 99.0)),
                rate(&with) / 1e6,
                rate(&without) / 1e6,
                rate(&with) / rate(&without),
                with.cpu_seconds,
                without.cpu_seconds,
                without.cpu_seconds / with.cpu_seconds,
            );
        }
    }
}
