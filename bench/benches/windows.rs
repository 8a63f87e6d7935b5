//! Throughput of keyed windows on one shard (one core): events/s for a tumbling count per key
//! with 1 M distinct keys, a sliding 10 s / 1 s count, and event-time session windows; and the
//! state bytes per key while the tumbling window holds every key.
//!
//! Run: `cargo bench -p corestrom-bench --bench windows` (prints a markdown table).
//!
//! The pipeline is the whole job on one shard: a generator source (keys from a multiplicative
//! hash of the sequence number, 1000 events per ms of event time, in order), timestamps with a
//! bounded out-of-orderness watermark, `key_by` (fused on one shard), the window operator, and a
//! blackhole sink. events/s = events / wall time of the job, so the source and the watermark
//! generator are included. Bytes per key = the peak of live heap bytes (counting allocator)
//! minus the live bytes before the job, divided by the keys, in a run where one window holds
//! all keys when it fires.

use corestrom_bench::alloc_counter::{self, CountingAllocator};
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

type Event = (u64, i64);

const EVENTS_PER_MS: u64 = 1000;

fn source(env: &Env, events: u64, keys: u64) -> Stream<Event> {
    env.from_iter(move |_split| {
        (0..events).map(move |i| {
            // A multiplicative hash spreads consecutive events over all keys.
            let key = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) % keys;
            (key, (i / EVENTS_PER_MS) as i64)
        })
    })
    .with_timestamps(
        |e: &Event| e.1,
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(100)),
    )
}

struct Row {
    name: &'static str,
    events: u64,
    keys: u64,
    seconds: f64,
    results: usize,
    bytes_per_key: Option<f64>,
}

fn run(
    name: &'static str,
    events: u64,
    keys: u64,
    build: impl FnOnce(&KeyedStream<Event, u64, fn(&Event) -> u64>) -> Stream<u64>,
    measure_memory: bool,
) -> Row {
    let env = Env::builder().shards(1).build().expect("config");
    let keyed = source(&env, events, keys).key_by((|e: &Event| e.0) as fn(&Event) -> u64);
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = std::sync::Arc::clone(&counted);
    build(&keyed)
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
    Row {
        name,
        events,
        keys,
        seconds,
        results: counted.load(Ordering::Relaxed),
        bytes_per_key: measure_memory.then(|| (peak - before) as f64 / keys as f64),
    }
}

fn main() {
    let ms = Duration::from_millis;
    let mut rows = Vec::new();
    // 1 M keys, 10 s tumbling windows: ~10 events per key per window, 3 windows.
    rows.push(run(
        "tumbling 10 s count, 1 M keys",
        30_000_000,
        1_000_000,
        |k| {
            k.window(TumblingEventTimeWindows::of(ms(10_000)))
                .aggregate(Count)
                .main()
        },
        false,
    ));
    // Memory: one 60 s window holds all 1 M keys when it fires.
    rows.push(run(
        "tumbling 60 s count, 1 M keys (memory)",
        20_000_000,
        1_000_000,
        |k| {
            k.window(TumblingEventTimeWindows::of(ms(60_000)))
                .aggregate(Count)
                .main()
        },
        true,
    ));
    rows.push(run(
        "sliding 10 s / 1 s count, 10 k keys",
        20_000_000,
        10_000,
        |k| {
            k.window(SlidingEventTimeWindows::of(ms(10_000), ms(1_000)))
                .aggregate(Count)
                .main()
        },
        true,
    ));
    rows.push(run(
        "sliding 10 s / 1 s count, 1 M keys",
        20_000_000,
        1_000_000,
        |k| {
            k.window(SlidingEventTimeWindows::of(ms(10_000), ms(1_000)))
                .aggregate(Count)
                .main()
        },
        true,
    ));
    rows.push(run(
        "session gap 500 ms count, 100 k keys",
        20_000_000,
        100_000,
        |k| {
            k.window(EventTimeSessionWindows::with_gap(ms(500)))
                .aggregate(Count)
                .main()
        },
        true,
    ));
    println!(
        "| workload (1 shard) | events | keys | results | seconds | M events/s/core | state bytes/key (peak) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {} | {} | {} | {:.2} | {:.2} | {} |",
            r.name,
            r.events,
            r.keys,
            r.results,
            r.seconds,
            r.events as f64 / r.seconds / 1e6,
            r.bytes_per_key
                .map_or("-".to_string(), |b| format!("{b:.0}")),
        );
    }
}
