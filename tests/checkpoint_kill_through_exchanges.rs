//! Exactly-once through exchanges: a job whose records cross two exchanges (key_by, then
//! rebalance) before an exactly-once file sink, with 3 shards, is killed with SIGKILL at random
//! moments and restarted from its checkpoints; the committed output equals that of a run never
//! killed. This exercises barrier alignment at exchange receivers (a channel past the barrier is
//! not read until every channel delivered it), which pipelines without exchanges never need.
//!
//! The job runs in a child process: this test binary re-runs itself with
//! `CORESTROM_EXCHANGE_JOB=<state dir>|<out dir>` set, which makes `child_job` run the job.

mod support;

use std::process::{Command, Stdio};
use std::time::Duration;

use corestrom::prelude::*;
use corestrom_bench::nexmark::queries::Q0Row;
use corestrom_bench::nexmark::result_sink::ResultSink;
use corestrom_bench::nexmark::{Bid, Event, GeneratorConfig, NexmarkSource};
use support::{KillPlan, Rng, committed_lines, diff};

const JOB_VAR: &str = "CORESTROM_EXCHANGE_JOB";

/// The job: generator → bids → key_by(auction) → row → rebalance → exactly-once files.
fn run_job(state: Option<&str>, out: &str) {
    let mut builder = Env::builder().shards(3);
    if let Some(state) = state {
        builder = builder.checkpoint_every(Duration::from_millis(15), state);
    }
    let env = builder.build().expect("config");
    let config = GeneratorConfig::with_events(60_000, 10_000_000);
    env.source("nexmark", NexmarkSource::new(config).with_rate(150_000))
        .filter_map(Event::into_bid)
        .key_by(|b: &Bid| b.auction)
        .map(|b: Bid| Q0Row {
            auction: b.auction,
            bidder: b.bidder,
            price: b.price,
            date_time: b.date_time,
            extra: b.extra,
        })
        .rebalance()
        .sink("results", ResultSink::new(out));
    env.execute_and_wait().expect("job");
}

/// Not a test on its own: the child process's entry point (does nothing unless the variable
/// is set).
#[test]
fn child_job() {
    if let Ok(spec) = std::env::var(JOB_VAR) {
        let (state, out) = spec.split_once('|').expect("state|out");
        run_job(Some(state), out);
    }
}

fn spawn_child(state: &str, out: &str) -> std::process::Child {
    Command::new(std::env::current_exe().expect("test binary"))
        .args(["--exact", "child_job", "--nocapture", "--test-threads", "1"])
        .env(JOB_VAR, format!("{state}|{out}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn child")
}

#[test]
fn killed_job_with_two_exchanges_is_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let reference = dir.path().join("reference");
    run_job(None, reference.to_str().expect("utf8"));
    let expected = committed_lines(&reference);
    assert_eq!(
        expected.values().map(|&n| u64::from(n)).sum::<u64>(),
        60_000 / 50 * 46
    );
    let runs: u64 = std::env::var("CORESTROM_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(8, |r| r / 5 + 1);
    let mut rng = Rng(0xe8c4);
    let plan = KillPlan {
        kills: 5,
        delay_ms: 40..440,
        limit: Duration::from_secs(60),
    };
    let mut kills = 0;
    for run in 0..runs {
        let state = dir.path().join(format!("state-{run}"));
        let out = dir.path().join(format!("out-{run}"));
        let (state, out) = (state.to_str().expect("utf8"), out.to_str().expect("utf8"));
        kills += plan.run(&mut rng, || spawn_child(state, out));
        let got = committed_lines(std::path::Path::new(out));
        assert_eq!(
            diff(&expected, &got),
            (0, 0, 0),
            "run {run}: lost, duplicated, unexpected lines"
        );
    }
    assert!(
        kills >= runs,
        "runs must really be killed mid-way ({kills} kills in {runs} runs)"
    );
}
