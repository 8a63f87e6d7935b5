//! The Timely Dataflow anchor workloads (../shared/peers/timely/RESULTS.md), run on corestrom
//! with the same record and generator recipe, so the two engines compare per core.
//!
//! Usage: `cargo bench -p corestrom-bench --bench anchor -- WORKLOAD [records=N] [keys=K] [shards=S]`
//! with WORKLOAD `filter` (source → filter(auction % 123 == 0) → count) or `count` (source →
//! key_by(auction) → keyed count, final counts at the end); `batch=B` sets records per batch
//! (default 1024). `records` is per shard (default
//! 50,000,000), as timely's per worker. Prints one `RESULT key=value ...` line.

use std::time::Instant;

use corestrom_operators::prelude::*;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Record, Signal};
use rustc_hash::FxHashMap;

#[derive(Clone, Copy)]
struct Bid {
    auction: u64,
    _bidder: u64,
    _price: u64,
    _date_time: u64,
    _extra: [u8; 100],
}

#[inline(always)]
fn splitmix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Timely's recipe: worker w of W, local record i: g = i*W + w, r = splitmix64(g).
fn bids(split: SplitContext, records: u64, keys: u64) -> impl Iterator<Item = Bid> {
    let mut template = [b'x'; 100];
    let (w, n) = (split.shard as u64, split.shards as u64);
    (0..records).map(move |i| {
        let g = i * n + w;
        let r = splitmix64(g);
        template[..8].copy_from_slice(&g.to_le_bytes());
        Bid {
            auction: ((u128::from(r) * u128::from(keys)) >> 64) as u64,
            _bidder: (r >> 24) & 0xFFFFF,
            _price: 1 + ((r >> 44) & 0xFFFF),
            _date_time: i * 100,
            _extra: template,
        }
    })
}

/// Keyed count that emits `(key, count)` once, when its input ends (timely's `count`).
struct FinalCount {
    counts: FxHashMap<u64, u64>,
    down: BoxCollector<(u64, u64)>,
}

impl Collector<Bid> for FinalCount {
    fn push(&mut self, batch: &mut Batch<Bid>) -> OpResult {
        for r in batch.records.drain(..) {
            *self.counts.entry(r.value.auction).or_insert(0) += 1;
        }
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        if signal == Signal::End {
            let mut out = Batch::with_capacity(self.counts.len());
            out.emitted_ns = 0;
            out.records.extend(
                self.counts
                    .drain()
                    .map(|kv| Record::new(corestrom_runtime::NO_TIMESTAMP, kv)),
            );
            self.down.push(&mut out)?;
        }
        self.down.signal(signal)
    }
}

fn arg(args: &[String], name: &str, default: u64) -> u64 {
    args.iter()
        .find_map(|a| {
            a.strip_prefix(&format!("{name}="))
                .map(|v| v.replace('_', "").parse().expect("a number"))
        })
        .unwrap_or(default)
}

fn main() -> Result<(), JobError> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let workload = args.first().cloned().unwrap_or_else(|| "filter".into());
    let records = arg(&args, "records", 50_000_000);
    let keys = arg(&args, "keys", 1000);
    let shards = arg(&args, "shards", 1) as usize;
    let batch = arg(&args, "batch", 1024) as usize;
    let env = Env::builder().shards(shards).batch_records(batch).build()?;
    let source = env.from_iter(move |split| bids(split, records, keys));
    let output = match workload.as_str() {
        "filter" => source
            .filter(|b: &Bid| b.auction.is_multiple_of(123))
            .map(|b: Bid| b.auction)
            .collect(),
        "count" => source
            .key_by(|b: &Bid| b.auction)
            .transform("final count", |_, down| {
                Box::new(FinalCount {
                    counts: FxHashMap::default(),
                    down,
                })
            })
            .map(|(k, _c): (u64, u64)| k)
            .collect(),
        other => panic!("unknown workload {other}: use filter or count"),
    };
    let started = Instant::now();
    let report = env.execute_and_wait()?;
    let wall = started.elapsed().as_secs_f64();
    let total = records * shards as u64;
    let rows = output.take().len();
    println!(
        "RESULT engine=corestrom workload={workload} shards={shards} cores={} records_per_shard={records} keys={keys} \
         wall_s={wall:.3} records_per_sec={:.0} records_per_sec_per_core={:.0} cpu_s={:.3} output_rows={rows}",
        report.cores,
        total as f64 / wall,
        total as f64 / wall / report.cores as f64,
        report.totals.cpu_ns as f64 / 1e9,
    );
    Ok(())
}
