//! Exactly-once with keyed state: a job with every kind of stateful operator (tumbling and
//! sliding event-time windows on panes, merging session windows, a rolling fold, a keyed
//! process function with map state and event-time timers) on 3 shards behind a `key_by`
//! exchange, killed with SIGKILL at random moments and restarted from its checkpoints. Its
//! keyed state and timers go into each shard's store at every checkpoint and come back on
//! restart; the committed output of every operator equals that of a run never killed.
//!
//! Every output is a deterministic multiset whatever the interleaving of shards: windows fire
//! once (no record is late: each split is in event-time order and the watermark bound covers
//! the exchange), the fold emits counts 1..n per key, and the process function emits per
//! bucket only after the watermark passed the bucket's end.
//!
//! The job runs in a child process: this test binary re-runs itself with
//! `CORESTROM_KEYED_JOB=<state dir>|<out dir>` set, which makes `child_job` run the job.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use corestrom::prelude::*;
use corestrom::runtime::checkpoint::Manifest;
use corestrom::runtime::checkpoint::fault::CRASH_AT_VAR;
use corestrom::runtime::checkpoint::manifest;
use corestrom_bench::nexmark::{Bid, Event, GeneratorConfig, NexmarkSource};
use corestrom_operators::state::{MapState, SnapshotHandle, VoidNamespace};
use corestrom_storage::Position;
use support::{KillPlan, Rng, child_job_command, committed_lines, corestrom, diff};

const JOB_VAR: &str = "CORESTROM_KEYED_JOB";
const EVENTS: u64 = 60_000;
/// The outputs, one directory each.
const OUTPUTS: [&str; 5] = ["tumbling", "sliding", "sessions", "fold", "process"];

/// Counts an auction's bids per 50 ms bucket of event time in map state and emits
/// `(auction, bucket end, count)` when the watermark passes the bucket's end.
#[derive(Clone)]
struct BucketCounts {
    counts: Buckets,
}

struct Buckets(MapState<i64, VoidNamespace, i64, u64>);

impl Clone for Buckets {
    fn clone(&self) -> Self {
        // Every shard's instance starts empty.
        Buckets(MapState::new(None))
    }
}

impl KeyedProcessFunction<i64, Bid> for BucketCounts {
    type Out = (i64, i64, u64);
    type Side = ();

    fn process_element(&mut self, bid: Bid, ctx: &mut ProcessContext<'_, i64, Self::Out, ()>) {
        let end = (bid.date_time / 50 + 1) * 50;
        let n = self.counts.0.get(ctx.state(), &end).copied().unwrap_or(0);
        self.counts.0.put(ctx.state(), end, n + 1);
        ctx.register_event_time_timer(end - 1);
    }

    fn on_timer(&mut self, timestamp: i64, ctx: &mut ProcessContext<'_, i64, Self::Out, ()>) {
        let end = timestamp + 1;
        let n = self
            .counts
            .0
            .remove(ctx.state(), &end)
            .expect("a timer has its bucket");
        let auction = *ctx.key();
        ctx.output((auction, end, n));
    }

    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<i64>>> {
        Some(vec![&mut self.counts.0])
    }
}

/// The job: generator → bids (event time) → key_by → five stateful operators → exactly-once
/// JSON-lines files.
fn run_job(state: Option<&str>, out: &Path) {
    let mut builder = Env::builder().shards(3);
    if let Some(state) = state {
        builder = builder.checkpoint_every(Duration::from_millis(15), state);
    }
    let env = builder.build().expect("config");
    let config = GeneratorConfig::with_events(EVENTS, 100_000);
    let bids = env
        .source("nexmark", NexmarkSource::new(config).with_rate(150_000))
        .filter_map(Event::into_bid)
        .with_timestamps(
            |b: &Bid| b.date_time,
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(10)),
        );
    let by_auction = bids.key_by(|b: &Bid| b.auction);
    by_auction
        .window(TumblingEventTimeWindows::of(Duration::from_millis(50)))
        .aggregate_with(
            Count,
            |a: &i64, w: &TimeWindow, n: u64, out: &mut Vec<(i64, i64, u64)>| {
                out.push((*a, w.start, n))
            },
        )
        .main()
        .write_jsonl(out.join("tumbling"));
    by_auction
        .window(SlidingEventTimeWindows::of(
            Duration::from_millis(100),
            Duration::from_millis(25),
        ))
        .aggregate_with(
            Count,
            |a: &i64, w: &TimeWindow, n: u64, out: &mut Vec<(i64, i64, u64)>| {
                out.push((*a, w.start, n))
            },
        )
        .main()
        .write_jsonl(out.join("sliding"));
    by_auction
        .process(BucketCounts {
            counts: Buckets(MapState::new(None)),
        })
        .write_jsonl(out.join("process"));
    let by_bidder = bids.key_by(|b: &Bid| b.bidder);
    by_bidder
        .window(EventTimeSessionWindows::with_gap(Duration::from_millis(10)))
        .aggregate_with(
            Count,
            |b: &i64, w: &TimeWindow, n: u64, out: &mut Vec<(i64, i64, i64, u64)>| {
                out.push((*b, w.start, w.end, n))
            },
        )
        .main()
        .write_jsonl(out.join("sessions"));
    by_bidder
        .fold(0u64, |n: &mut u64, _b: Bid| *n += 1)
        .write_jsonl(out.join("fold"));
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
    spawn_child_with_stderr(state, out, Stdio::null())
}

fn spawn_child_with_stderr(state: &Path, out: &Path, stderr: Stdio) -> std::process::Child {
    child_command(state, out)
        .stderr(stderr)
        .spawn()
        .expect("spawn child")
}

fn child_command(state: &Path, out: &Path) -> Command {
    child_job_command(JOB_VAR, state, out)
}

fn reference_outputs(dir: &Path) -> Vec<std::collections::HashMap<String, u32>> {
    let reference = dir.join("reference");
    run_job(None, &reference);
    OUTPUTS
        .iter()
        .map(|o| committed_lines(&reference.join(o)))
        .collect()
}

fn assert_exactly_once(
    expected: &[std::collections::HashMap<String, u32>],
    out: &Path,
    what: &str,
) {
    for (name, want) in OUTPUTS.iter().zip(expected) {
        let got = committed_lines(&out.join(name));
        assert_eq!(
            diff(want, &got),
            (0, 0, 0),
            "{what}, {name}: lost, duplicated, unexpected lines"
        );
    }
}

#[test]
fn killed_job_with_keyed_state_is_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference_outputs(dir.path());
    let bids = EVENTS / 50 * 46;
    let fold_lines: u64 = expected[3].values().map(|&n| u64::from(n)).sum();
    assert_eq!(fold_lines, bids, "the fold emits once per bid");
    for (name, lines) in OUTPUTS.iter().zip(&expected) {
        assert!(lines.len() > 100, "{name}: too little output to test");
    }
    let runs: u64 = std::env::var("CORESTROM_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(8, |r| r / 5 + 1);
    let mut rng = Rng(0x5eed_4eed);
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
        assert_exactly_once(&expected, &out, &format!("run {run}"));
    }
    assert!(
        kills >= runs,
        "runs must really be killed mid-way ({kills} kills in {runs} runs)"
    );
}

/// A process function that does not declare its state handles cannot run with checkpoints:
/// the job fails at start with an error that says why, instead of losing state on recovery.
#[test]
fn undeclared_process_state_is_refused_with_checkpoints() {
    #[derive(Clone)]
    struct Undeclared;
    impl KeyedProcessFunction<u64, u64> for Undeclared {
        type Out = u64;
        type Side = ();
        fn process_element(&mut self, v: u64, ctx: &mut ProcessContext<'_, u64, u64, ()>) {
            ctx.output(v);
        }
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let env = Env::builder()
        .shards(2)
        .checkpoint_every(Duration::from_millis(10), dir.path().join("state"))
        .build()
        .expect("config");
    env.from_vec((0..100u64).collect())
        .key_by(|v: &u64| *v)
        .process(Undeclared)
        .write_jsonl(dir.path().join("out"));
    let err = env.execute_and_wait().expect_err("refused").to_string();
    assert!(
        err.contains("does not declare its state handles"),
        "unexpected error: {err}"
    );
}

/// Kills the child once the state directory holds at least two complete checkpoints with keyed
/// state; returns their manifests, newest first.
fn kill_after_two_checkpoints(state: &Path, out: &Path) -> (Manifest, Manifest) {
    let mut child = spawn_child(state, out);
    let started = std::time::Instant::now();
    loop {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the job ended before two checkpoints"
        );
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no checkpoints"
        );
        let valid: Vec<Manifest> = manifest::list(&state.join(manifest::MANIFEST_DIR))
            .unwrap_or_default()
            .into_iter()
            .filter_map(|m| m.manifest.ok())
            .filter(|m| m.per_shard.iter().all(|s| s.store.is_some()))
            .collect();
        if valid.len() >= 2 {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            // Listed again: a checkpoint may have completed before the kill landed.
            let mut valid: Vec<Manifest> = manifest::list(&state.join(manifest::MANIFEST_DIR))
                .expect("list")
                .into_iter()
                .filter_map(|m| m.manifest.ok())
                .collect();
            let newest = valid.pop().expect("newest");
            let previous = valid.pop().expect("previous");
            return (newest, previous);
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn position(manifest: &Manifest, shard: usize) -> Position {
    let hex = &manifest.per_shard[shard]
        .store
        .as_ref()
        .expect("store")
        .position;
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).expect("hex"))
        .collect();
    Position::from_bytes(&bytes).expect("position")
}

/// Overwrites, in shard `shard`'s store, every byte the newest checkpoint's position names
/// beyond the previous one's in its last segment: frames only the newest checkpoint needs.
fn corrupt_newest_only(state: &Path, newest: &Manifest, previous: &Manifest, shard: usize) {
    let (newer, older) = (position(newest, shard), position(previous, shard));
    let &(segment, len) = newer.segments.last().expect("segments");
    let start = older
        .segments
        .iter()
        .find(|(s, _)| *s == segment)
        .map_or(0, |&(_, l)| l);
    assert!(
        len > start,
        "the newest checkpoint wrote state after the previous one"
    );
    let path = state
        .join(&newest.per_shard[shard].store.as_ref().expect("store").dir)
        .join(segment.file_name());
    let mut bytes = std::fs::read(&path).expect("read segment");
    for byte in
        &mut bytes[usize::try_from(start).expect("offset")..usize::try_from(len).expect("len")]
    {
        *byte ^= 0xa5;
    }
    std::fs::write(&path, bytes).expect("write segment");
}

fn run_to_end_capturing_stderr(state: &Path, out: &Path) -> String {
    let log = out.with_extension("stderr");
    let file = std::fs::File::create(&log).expect("stderr file");
    let mut child = spawn_child_with_stderr(state, out, Stdio::from(file));
    let started = std::time::Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            let stderr = std::fs::read_to_string(&log).expect("stderr");
            assert!(status.success(), "restarted job failed: {status}\n{stderr}");
            return stderr;
        }
        if started.elapsed() > Duration::from_secs(60) {
            child.kill().expect("SIGKILL");
            child.wait().expect("reap");
            panic!("the restarted job did not finish within 60 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A segment the newest checkpoint names is corrupt: the restarted job detects it, says so,
/// resumes from the previous checkpoint (its manifest verifies and its store positions are
/// intact), renames the newest manifest out of the way, and the committed output is still
/// exactly that of a run never killed (the newest checkpoint's committed files are replaced).
/// Then the newest manifest itself is corrupted: skipped, reported, previous one used.
#[test]
fn corrupt_newest_checkpoint_falls_back_to_the_previous_one() {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference_outputs(dir.path());
    let state = dir.path().join("state");
    let out = dir.path().join("out");

    let (newest, previous) = kill_after_two_checkpoints(&state, &out);
    corrupt_newest_only(&state, &newest, &previous, 1);
    // The CLI's verify reads the stores too: the newest checkpoint is reported, the older not.
    let verify = corestrom()
        .args(["checkpoints", "verify", state.to_str().expect("utf8")])
        .output()
        .expect("checkpoints verify");
    let report = String::from_utf8_lossy(&verify.stdout);
    assert!(!verify.status.success(), "verify must fail:\n{report}");
    let newest_name = manifest::manifest_file_name(newest.checkpoint);
    let previous_name = manifest::manifest_file_name(previous.checkpoint);
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("CORRUPT") && l.contains(&newest_name) && l.contains("shard 1")),
        "the newest checkpoint's corrupt store is named:\n{report}"
    );
    assert!(
        report
            .lines()
            .any(|l| l.starts_with("ok") && l.contains(&previous_name)),
        "the previous checkpoint verifies:\n{report}"
    );
    let stderr = run_to_end_capturing_stderr(&state, &out);
    assert!(
        stderr.contains(&format!(
            "checkpoint {} cannot be restored",
            newest.checkpoint
        )) && stderr.contains("shard-1"),
        "the corruption is reported with the store it is in:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("resuming from checkpoint {}", previous.checkpoint)),
        "the fallback is reported:\n{stderr}"
    );
    let rejected = state.join(manifest::MANIFEST_DIR).join(format!(
        "{}.rejected",
        manifest::manifest_file_name(newest.checkpoint)
    ));
    assert!(rejected.exists(), "the unrestorable manifest is kept aside");
    assert_exactly_once(&expected, &out, "after a corrupt segment");

    let state = dir.path().join("state-2");
    let out = dir.path().join("out-2");
    let (newest, previous) = kill_after_two_checkpoints(&state, &out);
    let path = state
        .join("checkpoints")
        .join(manifest::manifest_file_name(newest.checkpoint));
    let mut bytes = std::fs::read(&path).expect("manifest");
    let last = bytes.len() - 2;
    bytes[last] ^= 0x01;
    std::fs::write(&path, bytes).expect("corrupt manifest");
    let stderr = run_to_end_capturing_stderr(&state, &out);
    assert!(
        stderr.contains("does not verify")
            && stderr.contains(&manifest::manifest_file_name(newest.checkpoint)),
        "the corrupt manifest is reported by name:\n{stderr}"
    );
    let _ = previous;
    assert_exactly_once(&expected, &out, "after a corrupt manifest");
}

/// The crash points of keyed state (written to the store but not sealed; sealed and durable but
/// not acknowledged) and the snapshot itself, each hit at its 1st … 10th pass
/// (`CORESTROM_CRASH_HITS` overrides): the process aborts there, restarts, and the committed
/// output is exactly that of a run never killed.
#[test]
fn crash_at_keyed_state_points_then_restart_is_exactly_once() {
    let points = [
        "shard.after_snapshot",
        "state.before_seal",
        "state.after_fsync",
    ];
    let hits: u64 = std::env::var("CORESTROM_CRASH_HITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference_outputs(dir.path());
    for point in points {
        let mut crashed = 0;
        for hit in 1..=hits {
            let state = dir.path().join(format!("state-{point}-{hit}"));
            let out = dir.path().join(format!("out-{point}-{hit}"));
            let status = child_command(&state, &out)
                .env(CRASH_AT_VAR, format!("{point}:{hit}"))
                .status()
                .expect("run child");
            if !status.success() {
                crashed += 1;
            }
            run_to_end_capturing_stderr(&state, &out);
            assert_exactly_once(&expected, &out, &format!("crash at {point}:{hit}"));
            std::fs::remove_dir_all(&state).ok();
            std::fs::remove_dir_all(&out).ok();
        }
        assert_eq!(crashed, hits, "{point}: every run must reach its crash");
    }
}
