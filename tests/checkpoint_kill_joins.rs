//! Exactly-once with join state: an interval join, a window join and a window co-group of
//! Nexmark auctions and bids (by auction id) on 3 shards behind `key_by` exchanges, killed with
//! SIGKILL at random moments and restarted from their checkpoints. The interval join's buffers
//! of both sides and the window joins' panes and timers go into each shard's store at every
//! checkpoint and come back on restart; the committed output of every join equals that of a
//! run never killed, as a multiset of lines.
//!
//! Every output is deterministic whatever the interleaving of shards: no record is late (each
//! split is in event-time order, and a record reaches a join behind its own channel's
//! watermark, which is more than the watermark bound below it), so the interval join emits
//! every pair within its bounds (no partner is evicted before the other arrives) and every
//! window fires once with all its records. After a restart the watermark starts over from the
//! replayed records, which only holds it further back.
//!
//! The job runs in a child process: this test binary re-runs itself with
//! `CORESTROM_JOIN_JOB=<state dir>|<out dir>` set, which makes `child_job` run the job.

mod support;

use std::path::Path;
use std::time::Duration;

use corestrom::prelude::*;
use corestrom_bench::nexmark::{Event, GeneratorConfig, NexmarkSource};
use support::{KillPlan, Rng, child_job_command, committed_lines, diff};

const JOB_VAR: &str = "CORESTROM_JOIN_JOB";
const EVENTS: u64 = 60_000;
/// The outputs, one directory each.
const OUTPUTS: [&str; 3] = ["interval", "window", "co_group"];

/// (auction id, creation time, seller): what the joins keep of an auction.
type Auction = (i64, i64, i64);
/// (auction id, bidder, price, time): what the joins keep of a bid.
type Bid = (i64, i64, i64, i64);

/// The job: generator → auctions and bids (event time) → key_by auction → three joins →
/// exactly-once JSON-lines files.
fn run_job(state: Option<&str>, out: &Path) {
    let mut builder = Env::builder().shards(3);
    if let Some(state) = state {
        builder = builder.checkpoint_every(Duration::from_millis(15), state);
    }
    let env = builder.build().expect("config");
    // 10 000 events/s of event time: 6 s, so windows of 50 ms fire many times.
    let config = GeneratorConfig::with_events(EVENTS, 10_000);
    let events = env.source("nexmark", NexmarkSource::new(config).with_rate(150_000));
    let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(10));
    let auctions = events
        .filter_map(|e: Event| e.into_auction().map(|a| (a.id, a.date_time, a.seller)))
        .with_timestamps(|a: &Auction| a.1, strategy);
    let bids = events
        .filter_map(|e: Event| {
            e.into_bid()
                .map(|b| (b.auction, b.bidder, b.price, b.date_time))
        })
        .with_timestamps(|b: &Bid| b.3, strategy);
    // Bids at most 200 ms after their auction was created.
    auctions
        .key_by(|a: &Auction| a.0)
        .interval_join(&bids.key_by(|b: &Bid| b.0))
        .between(0, 200)
        .join(|a: &Auction, b: &Bid| (a.0, a.2, b.1, b.2, b.3))
        .write_jsonl(out.join("interval"));
    // Bids in the same 50 ms window as their auction's creation.
    let windowed = auctions
        .join(&bids)
        .where_key(|a: &Auction| a.0)
        .equal_to(|b: &Bid| b.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(50)));
    windowed
        .apply(|a: &Auction, b: &Bid| (a.0, b.1, b.2, b.3))
        .write_jsonl(out.join("window"));
    // Per auction and 100 ms window sliding by 50 ms: auctions, bids and their price sum.
    auctions
        .join(&bids)
        .where_key(|a: &Auction| a.0)
        .equal_to(|b: &Bid| b.0)
        .window(SlidingEventTimeWindows::of(
            Duration::from_millis(100),
            Duration::from_millis(50),
        ))
        .co_group(
            |auctions: &mut dyn Iterator<Item = &Auction>,
             bids: &mut dyn Iterator<Item = &Bid>,
             out: &mut Vec<(i64, usize, usize, i64)>| {
                let auctions: Vec<&Auction> = auctions.collect();
                let bids: Vec<&Bid> = bids.collect();
                let id = auctions
                    .first()
                    .map(|a| a.0)
                    .or_else(|| bids.first().map(|b| b.0))
                    .expect("a group has a record");
                let prices = bids.iter().map(|b| b.2).sum();
                out.push((id, auctions.len(), bids.len(), prices));
            },
        )
        .write_jsonl(out.join("co_group"));
    env.execute_and_wait().expect("job");
}

/// Not a test on its own: the child process's entry point (does nothing unless the variable
/// is set).
#[test]
fn child_job() {
    if let Ok(spec) = std::env::var(JOB_VAR) {
        let (state, out) = spec.split_once('|').expect("state|out");
        run_job(Some(state), Path::new(out));
    }
}

fn spawn_child(state: &Path, out: &Path) -> std::process::Child {
    child_job_command(JOB_VAR, state, out)
        .spawn()
        .expect("spawn child")
}

#[test]
fn killed_job_with_joins_is_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = dir.path().join("reference");
    run_job(None, &reference);
    let expected: Vec<_> = OUTPUTS
        .iter()
        .map(|o| committed_lines(&reference.join(o)))
        .collect();
    for (name, lines) in OUTPUTS.iter().zip(&expected) {
        let total: u32 = lines.values().sum();
        assert!(
            total > 300,
            "{name}: too little output to test ({total} lines)"
        );
    }
    let runs: u64 = std::env::var("CORESTROM_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(8, |r| r / 5 + 1);
    let mut rng = Rng(0x501_4ed);
    let plan = KillPlan {
        kills: 5,
        delay_ms: 60..560,
        limit: Duration::from_secs(60),
    };
    let mut kills = 0;
    for run in 0..runs {
        let state = dir.path().join(format!("state-{run}"));
        let out = dir.path().join(format!("out-{run}"));
        kills += plan.run(&mut rng, || spawn_child(&state, &out));
        for (name, want) in OUTPUTS.iter().zip(&expected) {
            let got = committed_lines(&out.join(name));
            assert_eq!(
                diff(want, &got),
                (0, 0, 0),
                "run {run}, {name}: lost, duplicated, unexpected lines"
            );
        }
    }
    assert!(
        kills >= runs,
        "runs must really be killed mid-way ({kills} kills in {runs} runs)"
    );
}
