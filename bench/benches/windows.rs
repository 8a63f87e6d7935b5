//! Throughput of keyed windows on one shard (one core): events/s for a tumbling count per key
//! with 1 M distinct keys, a sliding 10 s / 1 s count, and event-time session windows; and the
//! state bytes per key while the tumbling window holds every key.
//!
//! Run: `cargo bench -p corestrom-bench --bench windows [-- FILTER]` (prints markdown tables;
//! FILTER keeps the workloads whose name contains it).
//!
//! Latency at half of peak: each workload runs again with its source paced at half the rate
//! its unpaced run reached, and the sink's end-to-end latency histogram (hdrhistogram) gives
//! p50/p99/p99.9. A window result's latency runs from when the input batch that advanced the
//! watermark past the window's end left the source to when the result reached the sink, so it
//! includes firing every key's window (1 M results for the tumbling workload).
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

fn source(env: &Env, events: u64, keys: u64, rate: Option<f64>) -> Stream<Event> {
    env.from_iter(move |_split| {
        let started = Instant::now();
        (0..events).map(move |i| {
            // Pacing: event i is due at i / rate; checked every 256 events (spinning, so the
            // shard stays on its core and no wake-up latency is added).
            if let Some(rate) = rate
                && i % 256 == 0
            {
                let due = Duration::from_secs_f64(i as f64 / rate);
                while started.elapsed() < due {
                    std::hint::spin_loop();
                }
            }
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
    /// p50, p99, p99.9 of the sink's latency in µs.
    latency_us: (f64, f64, f64),
}

type Build = fn(&KeyedStream<Event, u64, fn(&Event) -> u64>) -> Stream<u64>;

struct Workload {
    name: &'static str,
    events: u64,
    keys: u64,
    build: Build,
    measure_memory: bool,
}

fn run(workload: &Workload, rate: Option<f64>) -> Row {
    let env = Env::builder().shards(1).build().expect("config");
    let keyed = source(&env, workload.events, workload.keys, rate)
        .key_by((|e: &Event| e.0) as fn(&Event) -> u64);
    let counted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let c = std::sync::Arc::clone(&counted);
    (workload.build)(&keyed)
        .inspect(move |_| {
            c.fetch_add(1, Ordering::Relaxed);
        })
        .blackhole();
    let before = alloc_counter::live_bytes();
    alloc_counter::reset_peak();
    let start = Instant::now();
    let report = env.execute_and_wait().expect("job succeeds");
    let seconds = start.elapsed().as_secs_f64();
    let peak = alloc_counter::peak_bytes();
    let latency = &report.totals.latency_ns;
    let us = |q: f64| latency.value_at_quantile(q) as f64 / 1e3;
    Row {
        name: workload.name,
        events: workload.events,
        keys: workload.keys,
        seconds,
        results: counted.load(Ordering::Relaxed),
        bytes_per_key: (workload.measure_memory && rate.is_none())
            .then(|| (peak - before) as f64 / workload.keys as f64),
        latency_us: (us(0.5), us(0.99), us(0.999)),
    }
}

fn main() {
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .unwrap_or_default();
    let workloads = [
        // 1 M keys, 10 s tumbling windows: ~10 events per key per window, 3 windows.
        Workload {
            name: "tumbling 10 s count, 1 M keys",
            events: 30_000_000,
            keys: 1_000_000,
            build: |k| {
                k.window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
                    .aggregate(Count)
                    .main()
            },
            measure_memory: false,
        },
        // Memory: one 60 s window holds all 1 M keys when it fires.
        Workload {
            name: "tumbling 60 s count, 1 M keys (memory)",
            events: 20_000_000,
            keys: 1_000_000,
            build: |k| {
                k.window(TumblingEventTimeWindows::of(Duration::from_secs(60)))
                    .aggregate(Count)
                    .main()
            },
            measure_memory: true,
        },
        Workload {
            name: "sliding 10 s / 1 s count, 10 k keys",
            events: 20_000_000,
            keys: 10_000,
            build: |k| {
                k.window(SlidingEventTimeWindows::of(
                    Duration::from_secs(10),
                    Duration::from_secs(1),
                ))
                .aggregate(Count)
                .main()
            },
            measure_memory: true,
        },
        Workload {
            name: "sliding 10 s / 1 s count, 1 M keys",
            events: 20_000_000,
            keys: 1_000_000,
            build: |k| {
                k.window(SlidingEventTimeWindows::of(
                    Duration::from_secs(10),
                    Duration::from_secs(1),
                ))
                .aggregate(Count)
                .main()
            },
            measure_memory: true,
        },
        Workload {
            name: "session gap 500 ms count, 100 k keys",
            events: 20_000_000,
            keys: 100_000,
            build: |k| {
                k.window(EventTimeSessionWindows::with_gap(Duration::from_millis(
                    500,
                )))
                .aggregate(Count)
                .main()
            },
            measure_memory: true,
        },
    ];
    let chosen: Vec<&Workload> = workloads
        .iter()
        .filter(|w| w.name.contains(filter.as_str()))
        .collect();
    let peak: Vec<Row> = chosen.iter().map(|w| run(w, None)).collect();
    println!(
        "| workload (1 shard) | events | keys | results | seconds | M events/s/core | state bytes/key (peak) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for r in &peak {
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
    println!();
    println!(
        "| workload at half of its peak rate | rate (M events/s) | achieved (M events/s) | latency p50 µs | p99 µs | p99.9 µs |"
    );
    println!("|---|---|---|---|---|---|");
    for (w, r) in chosen.iter().zip(&peak) {
        let rate = r.events as f64 / r.seconds / 2.0;
        let paced = run(w, Some(rate));
        println!(
            "| {} | {:.2} | {:.2} | {:.0} | {:.0} | {:.0} |",
            w.name,
            rate / 1e6,
            paced.events as f64 / paced.seconds / 1e6,
            paced.latency_us.0,
            paced.latency_us.1,
            paced.latency_us.2,
        );
    }
}
