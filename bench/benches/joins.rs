//! Throughput of keyed joins on one shard (one core): events/s for an interval join and for
//! window joins (tumbling, sliding), and the peak state bytes per key.
//!
//! Run: `cargo bench -p corestrom-bench --bench joins [-- FILTER]` (prints a markdown table;
//! with a filter only the workloads whose name contains it). Every workload runs twice: without
//! checkpoints and with a checkpoint every second (the join state snapshotted into a temporary
//! state directory; the name ends in "ckpt 1 s"), so the cost of checkpointing join state shows
//! as the ratio of the two rows.
//!
//! The pipeline is the whole job on one shard: two replayable generator sources (the left and right
//! inputs, each 1000 events per ms of event time, in order; keys from a multiplicative hash of
//! the sequence number, the right side with another multiplier so the sides do not pair up by
//! position), timestamps with a bounded out-of-orderness watermark on each side, `key_by` (fused
//! on one shard), the join, and a blackhole sink behind a counter of the joined pairs.
//! events/s = events of both inputs / wall time of the job, so the sources and the watermark
//! generators are included. Bytes per key = peak live heap bytes (counting allocator) minus the
//! live bytes before the job, divided by the keys.

use corestrom_bench::alloc_counter::{self, CountingAllocator};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// key, timestamp, payload.
type Event = (u64, i64, u64);

const EVENTS_PER_MS: u64 = 1000;

/// One input: `events` keyed events in timestamp order, replayable (the position is the number
/// emitted), so the same job runs with and without checkpoints.
#[derive(Clone)]
struct Side {
    events: u64,
    keys: u64,
    multiplier: u64,
}

struct SideReader {
    side: Side,
    next: u64,
}

impl Source<Event> for Side {
    fn create_reader(
        &self,
        _split: SplitContext,
    ) -> Result<Box<dyn SourceReader<Event>>, OperatorError> {
        Ok(Box::new(SideReader {
            side: self.clone(),
            next: 0,
        }))
    }
}

impl SourceReader<Event> for SideReader {
    fn poll(
        &mut self,
        out: &mut Vec<Record<Event>>,
        max: usize,
        _now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let Side {
            events,
            keys,
            multiplier,
        } = self.side;
        let stop = events.min(self.next + max as u64);
        for i in self.next..stop {
            let key = i.wrapping_mul(multiplier) % keys;
            out.push(Record::new(
                corestrom_runtime::NO_TIMESTAMP,
                (key, (i / EVENTS_PER_MS) as i64, i),
            ));
        }
        self.next = stop;
        Ok(if stop == events {
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
            .map_err(|_| OperatorError::Failed("join bench source: bad position".into()))?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

fn side(env: &Env, events: u64, keys: u64, multiplier: u64) -> Stream<Event> {
    env.source(
        "side",
        Side {
            events,
            keys,
            multiplier,
        },
    )
    .with_timestamps(
        |e: &Event| e.1,
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(100)),
    )
}

struct Row {
    name: String,
    events: u64,
    keys: u64,
    seconds: f64,
    results: usize,
    bytes_per_key: f64,
}

/// Runs the workload without and with checkpoints (one row each).
fn run(
    name: &'static str,
    events_per_side: u64,
    keys: u64,
    build: impl Fn(&Stream<Event>, &Stream<Event>) -> Stream<u64>,
) -> Vec<Row> {
    [None, Some(Duration::from_secs(1))]
        .into_iter()
        .filter_map(|checkpoints| run_once(name, checkpoints, events_per_side, keys, &build))
        .collect()
}

fn run_once(
    name: &'static str,
    checkpoints: Option<Duration>,
    events_per_side: u64,
    keys: u64,
    build: &impl Fn(&Stream<Event>, &Stream<Event>) -> Stream<u64>,
) -> Option<Row> {
    let name = match checkpoints {
        None => name.to_string(),
        Some(every) => format!("{name}, ckpt {} s", every.as_secs()),
    };
    // `cargo bench` passes `--bench`; the first other argument selects workloads by name.
    let filter = std::env::args().skip(1).find(|a| !a.starts_with("--"));
    if filter.is_some_and(|f| !name.contains(f.as_str())) {
        return None;
    }
    let state = tempfile::tempdir().expect("state dir");
    let mut builder = Env::builder().shards(1);
    if let Some(every) = checkpoints {
        builder = builder.checkpoint_every(every, state.path());
    }
    let env = builder.build().expect("config");
    let left = side(&env, events_per_side, keys, 0x9E37_79B9_7F4A_7C15);
    let right = side(&env, events_per_side, keys, 0xC2B2_AE3D_27D4_EB4F);
    let counted = Arc::new(AtomicUsize::new(0));
    let c = Arc::clone(&counted);
    build(&left, &right)
        .inspect(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .blackhole();
    let before = alloc_counter::live_bytes();
    alloc_counter::reset_peak();
    let start = Instant::now();
    env.execute_and_wait().expect("job succeeds");
    let seconds = start.elapsed().as_secs_f64();
    let peak = alloc_counter::peak_bytes();
    Some(Row {
        name,
        events: 2 * events_per_side,
        keys,
        seconds,
        results: counted.load(Ordering::Relaxed),
        bytes_per_key: (peak - before) as f64 / keys as f64,
    })
}

fn key(e: &Event) -> u64 {
    e.0
}

fn main() {
    let ms = Duration::from_millis;
    let mut rows = Vec::new();
    // ±5 ms with 100 k keys: a record meets ~0.1 partners (11 ms x 1000 events/ms / 100 k keys).
    rows.push(run(
        "interval join [-5, +5] ms, 100 k keys",
        10_000_000,
        100_000,
        |l, r| {
            l.key_by(key)
                .interval_join(&r.key_by(key))
                .between(-5, 5)
                .join(|a: &Event, b: &Event| a.2 ^ b.2)
        },
    ));
    // ±5 ms with 10 k keys: ~1.1 partners per record.
    rows.push(run(
        "interval join [-5, +5] ms, 10 k keys",
        10_000_000,
        10_000,
        |l, r| {
            l.key_by(key)
                .interval_join(&r.key_by(key))
                .between(-5, 5)
                .join(|a: &Event, b: &Event| a.2 ^ b.2)
        },
    ));
    // Tumbling 1 s with 1 M keys: ~1 record per key and side per window, ~1 pair.
    rows.push(run(
        "window join tumbling 1 s, 1 M keys",
        10_000_000,
        1_000_000,
        |l, r| {
            l.join(r)
                .where_key(key)
                .equal_to(key)
                .window(TumblingEventTimeWindows::of(ms(1_000)))
                .apply(|a: &Event, b: &Event| a.2 ^ b.2)
        },
    ));
    // Sliding 2 s / 1 s with 1 M keys: each record in two windows, stored once (1 s panes).
    rows.push(run(
        "window join sliding 2 s / 1 s, 1 M keys",
        10_000_000,
        1_000_000,
        |l, r| {
            l.join(r)
                .where_key(key)
                .equal_to(key)
                .window(SlidingEventTimeWindows::of(ms(2_000), ms(1_000)))
                .apply(|a: &Event, b: &Event| a.2 ^ b.2)
        },
    ));
    println!(
        "| workload (1 shard) | events (both inputs) | keys | joined pairs | seconds | M events/s/core | state bytes/key (peak) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows.into_iter().flatten() {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {:.0} |",
            r.name,
            r.events,
            r.keys,
            r.results,
            r.seconds,
            r.events as f64 / r.seconds / 1e6,
            r.bytes_per_key,
        );
    }
}
