//! Nexmark-style hot items: bids from the built-in generator, event time with a 4 s bound,
//! counted per auction in 10 s tumbling windows; prints the busiest auction of each window.
//! Run with `cargo run --release --example hot_items`.

use std::collections::BTreeMap;
use std::time::Duration;

use corestrom::prelude::*;
use corestrom_bench::nexmark::{Bid, Event, GeneratorConfig, NexmarkSource};

fn main() -> Result<(), JobError> {
    let env = Env::builder().build()?;
    // 2 M events at 100 k events/s of event time: 20 s of bids.
    let source = NexmarkSource::new(GeneratorConfig::with_events(2_000_000, 100_000));
    let counts = env
        .source("nexmark", source)
        .filter_map(Event::into_bid)
        .with_timestamps(
            |b: &Bid| b.date_time,
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_secs(4)),
        )
        .key_by(|b: &Bid| b.auction)
        .window(TumblingEventTimeWindows::of(Duration::from_secs(10)))
        .aggregate_with(
            Count,
            |auction: &i64, w: &TimeWindow, n: u64, out: &mut Vec<(i64, i64, u64)>| {
                out.push((w.start, *auction, n))
            },
        );
    let rows = counts.main().collect();
    env.execute_and_wait()?;
    let mut best: BTreeMap<i64, (u64, i64)> = BTreeMap::new();
    for (window, auction, n) in rows.take() {
        let entry = best.entry(window).or_insert((0, auction));
        if n > entry.0 {
            *entry = (n, auction);
        }
    }
    for (window, (n, auction)) in best {
        println!("window starting {window}: auction {auction} with {n} bids");
    }
    Ok(())
}
