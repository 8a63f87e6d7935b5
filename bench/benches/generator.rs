//! Cost of the Nexmark generator per event, single-threaded, one split.
//!
//! Run: `cargo bench -p corestrom-bench --bench generator` (release profile, fat LTO).
//! Prints ns/event and events/s for: `fill()` of the full 1:3:46 stream; the bids-only view
//! (fill, then keep bids); a bids-only stream (bid.proportion only); JSON encoding and decoding
//! of events; and `price()`'s two candidate formulas. Also counts heap allocations during
//! `fill()` with a counting global allocator and fails if any happen after warm-up.
//!
//! Each measurement repeats [`ROUNDS`] times and reports the best (least disturbed by other
//! processes on a shared machine) and the median.

use corestrom_bench::alloc_counter::{self, CountingAllocator};
use corestrom_bench::nexmark::json::{EventReader, EventWriter};
use corestrom_bench::nexmark::{Event, GeneratorConfig, NexmarkGenerator};
use std::hint::black_box;
use std::time::Instant;

const ROUNDS: usize = 5;
const EVENTS: u64 = 10_000_000;
const BATCH: usize = 1024;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` (which processes `items` items) ROUNDS times; prints best and median ns/item.
fn measure(name: &str, items: u64, mut f: impl FnMut() -> u64) {
    let mut ns_per_item: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    ns_per_item.sort_by(f64::total_cmp);
    let best = ns_per_item[0];
    let median = ns_per_item[ROUNDS / 2];
    println!(
        "{name:<44} best {best:7.1} ns/item ({:6.2} M/s)   median {median:7.1} ns/item",
        1e3 / best
    );
}

fn fill_all(config: &GeneratorConfig) -> u64 {
    let mut generator = NexmarkGenerator::new(config, 0, 1).unwrap();
    let mut out = Vec::with_capacity(BATCH);
    let mut checksum = 0u64;
    loop {
        out.clear();
        if generator.fill(&mut out, BATCH) == 0 {
            return checksum;
        }
        checksum = checksum.wrapping_add(out[out.len() - 1].date_time() as u64);
        black_box(&out);
    }
}

fn fill_bids(config: &GeneratorConfig) -> u64 {
    let mut generator = NexmarkGenerator::new(config, 0, 1).unwrap();
    let mut out = Vec::with_capacity(BATCH);
    let mut bids = Vec::with_capacity(BATCH);
    let mut count = 0u64;
    loop {
        out.clear();
        if generator.fill(&mut out, BATCH) == 0 {
            return count;
        }
        bids.clear();
        bids.extend(out.drain(..).filter_map(Event::into_bid));
        count += bids.len() as u64;
        black_box(&bids);
    }
}

fn main() {
    let config = GeneratorConfig::with_events(EVENTS, 10_000_000);
    let bids_only = GeneratorConfig {
        person_proportion: 0,
        auction_proportion: 0,
        bid_proportion: 1,
        ..config.clone()
    };
    fill_all(&GeneratorConfig::with_events(1000, 1000)); // build the pools outside timing

    let mut generator = NexmarkGenerator::new(&config, 0, 1).unwrap();
    let mut out = Vec::with_capacity(BATCH);
    let before = alloc_counter::allocations();
    for _ in 0..1000 {
        out.clear();
        generator.fill(&mut out, BATCH);
    }
    let allocations = alloc_counter::allocations() - before;
    println!("heap allocations during fill() of 1,024,000 events: {allocations}");
    assert_eq!(allocations, 0, "the generator must not allocate per event");

    println!("one split, {EVENTS} events per round, batches of {BATCH}:");
    measure("fill(), full stream (1:3:46)", EVENTS, || fill_all(&config));
    measure("fill() + bids-only view, per event", EVENTS, || {
        fill_bids(&config)
    });
    let bids = fill_bids(&config);
    measure("fill() + bids-only view, per bid", bids, || {
        fill_bids(&config)
    });
    measure("fill(), bid.proportion only", EVENTS, || {
        fill_all(&bids_only)
    });

    let sample: Vec<Event> =
        NexmarkGenerator::new(&GeneratorConfig::with_events(1_000_000, 10_000_000), 0, 1)
            .unwrap()
            .collect();
    measure(
        "JSON encode (EventWriter into io::sink)",
        sample.len() as u64,
        || {
            let mut writer = EventWriter::new(std::io::sink());
            for event in &sample {
                writer.write(event).unwrap();
            }
            writer.bytes()
        },
    );
    let mut writer = EventWriter::new(Vec::new());
    for event in &sample {
        writer.write(event).unwrap();
    }
    let encoded = writer.finish().unwrap();
    println!(
        "  mean line length {:.1} bytes",
        encoded.len() as f64 / sample.len() as f64
    );
    measure(
        "JSON decode (EventReader from memory)",
        sample.len() as u64,
        || {
            let reader = EventReader::new(encoded.as_slice(), "mem");
            reader
                .map(|e| e.unwrap().date_time() as u64)
                .fold(0, u64::wrapping_add)
        },
    );

    let draws: Vec<f64> = (0..10_000_000u64)
        .map(|i| (i.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64)
        .collect();
    measure("price via 10f64.powf(6u)", draws.len() as u64, || {
        draws
            .iter()
            .map(|&u| (10f64.powf(6.0 * u) * 100.0 + 0.5) as i64 as u64)
            .fold(0, u64::wrapping_add)
    });
    measure("price via exp(6u ln 10) (used)", draws.len() as u64, || {
        draws
            .iter()
            .map(|&u| ((u * 6.0 * std::f64::consts::LN_10).exp() * 100.0 + 0.5) as i64 as u64)
            .fold(0, u64::wrapping_add)
    });
}
