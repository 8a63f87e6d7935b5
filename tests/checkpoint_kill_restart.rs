//! Exactly-once across crashes, with the real binary: `corestrom nexmark ... --state-dir
//! --checkpoint-interval --output` is killed with SIGKILL at random moments and run again until
//! it completes; the committed output (visible files only) must equal, as a multiset of lines,
//! the output of a run that was never killed: 0 lost, 0 duplicated. The same holds when the
//! process aborts at each named crash point of the checkpoint protocol, and when the newest
//! manifest is corrupted (the previous checkpoint is used and the corruption reported).
//!
//! Runs (default 40, each killed 5 times) come from `CORESTROM_KILL_RUNS`; the soak script
//! `scripts/soak-kill.sh N` runs more. Every failure prints the seed that replays it.

mod support;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use support::{Rng, committed_lines, corestrom, diff, run_ok};

/// The pipeline under test: a pass-through (q1: map of every bid) over the generator's
/// replayable splits, paced so that a run lasts about half a second.
fn args<'a>(state: &'a str, out: &'a str, shards: &'a str) -> Vec<&'a str> {
    vec![
        "nexmark",
        "--query",
        "q1",
        "--events",
        "60000",
        "--rate",
        "150000",
        "--shards",
        shards,
        "--state-dir",
        state,
        "--checkpoint-interval",
        "15",
        "--output",
        out,
    ]
}

fn reference(dir: &Path, shards: &str) -> std::collections::HashMap<String, u32> {
    let out = dir.join("reference");
    run_ok(&[
        "nexmark",
        "--query",
        "q1",
        "--events",
        "60000",
        "--shards",
        shards,
        "--output",
        out.to_str().expect("utf8"),
    ]);
    let lines = committed_lines(&out);
    assert_eq!(
        lines.values().map(|&n| u64::from(n)).sum::<u64>(),
        60_000 / 50 * 46
    );
    lines
}

fn assert_exactly_once(expected: &std::collections::HashMap<String, u32>, out: &Path, what: &str) {
    let got = committed_lines(out);
    let (lost, duplicated, unexpected) = diff(expected, &got);
    assert_eq!(
        (lost, duplicated, unexpected),
        (0, 0, 0),
        "{what}: lost, duplicated, unexpected lines"
    );
}

/// Starts the job, kills it with SIGKILL after `delay`; returns true if it finished first.
fn run_and_kill(args: &[&str], delay: Duration) -> bool {
    let mut child = corestrom()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    while started.elapsed() < delay {
        if let Some(status) = child.try_wait().expect("wait") {
            assert!(status.success(), "{args:?} failed with {status}");
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reap");
    false
}

#[test]
fn killed_with_sigkill_at_random_moments_the_output_is_exactly_once() {
    let runs: u64 = std::env::var("CORESTROM_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let kills_per_run = 5;
    let seed = std::env::var("CORESTROM_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed);
    let dir = tempfile::tempdir().expect("temp dir");
    let references = [
        reference(dir.path(), "2"),
        reference(&dir.path().join("r3"), "3"),
    ];
    let mut rng = Rng(seed);
    let mut kills = 0;
    for run in 0..runs {
        let shards = if run % 2 == 0 { "2" } else { "3" };
        let expected = &references[(run % 2) as usize];
        let state = dir.path().join(format!("state-{run}"));
        let out = dir.path().join(format!("out-{run}"));
        let args = args(
            state.to_str().expect("utf8"),
            out.to_str().expect("utf8"),
            shards,
        );
        let mut finished = false;
        for _ in 0..kills_per_run {
            let delay = Duration::from_millis(30 + rng.below(450));
            if run_and_kill(&args, delay) {
                finished = true;
                break;
            }
            kills += 1;
        }
        if !finished {
            run_ok(&args);
        }
        assert_exactly_once(expected, &out, &format!("run {run} (seed {seed:#x})"));
        std::fs::remove_dir_all(&state).ok();
        std::fs::remove_dir_all(&out).ok();
    }
    eprintln!("{runs} runs, {kills} SIGKILLs, every output exactly once");
    assert!(
        kills >= runs * 3,
        "most runs must really be killed mid-way ({kills} kills)"
    );
}

#[test]
fn crash_at_every_named_point_then_restart_is_exactly_once() {
    let points = [
        "source.after_barrier",
        "sink.after_prepare",
        "sink.before_commit",
        "sink.after_commit",
        "shard.after_snapshot",
        "manifest.before_rename",
        "manifest.after_rename",
        "manifest.after_dir_fsync",
        "file.before_fsync",
        "file.after_fsync",
    ];
    let hits_per_point: u64 = std::env::var("CORESTROM_CRASH_HITS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(dir.path(), "2");
    for point in points {
        let mut crashed = 0;
        for hit in 1..=hits_per_point {
            let state = dir.path().join(format!("state-{point}-{hit}"));
            let out = dir.path().join(format!("out-{point}-{hit}"));
            let args = args(
                state.to_str().expect("utf8"),
                out.to_str().expect("utf8"),
                "2",
            );
            // The n-th pass of the point aborts the process, n = 1 .. hits.
            let status = corestrom()
                .args(&args)
                .env("CORESTROM_CRASH_AT", format!("{point}:{hit}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .expect("run");
            if !status.success() {
                crashed += 1;
            }
            run_ok(&args);
            assert_exactly_once(&expected, &out, &format!("crash at {point}:{hit}"));
            std::fs::remove_dir_all(&state).ok();
            std::fs::remove_dir_all(&out).ok();
        }
        assert!(
            crashed >= hits_per_point / 2,
            "{point} was reached in only {crashed} of {hits_per_point} runs"
        );
    }
}

#[test]
fn a_corrupt_newest_manifest_is_reported_and_the_previous_checkpoint_used() {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(dir.path(), "2");
    let mut tried = 0;
    loop {
        tried += 1;
        assert!(tried < 20, "never got two checkpoints before the kill");
        let state = dir.path().join(format!("state-{tried}"));
        let out = dir.path().join(format!("out-{tried}"));
        let args = args(
            state.to_str().expect("utf8"),
            out.to_str().expect("utf8"),
            "2",
        );
        if run_and_kill(&args, Duration::from_millis(250)) {
            continue;
        }
        let manifests = state.join("checkpoints");
        let mut names: Vec<_> = std::fs::read_dir(&manifests)
            .map(|d| {
                d.map(|e| e.expect("entry").path())
                    .filter(|p| p.extension().is_some_and(|e| e == "manifest"))
                    .collect()
            })
            .unwrap_or_default();
        names.sort();
        if names.len() < 2 {
            continue;
        }
        let newest = names.last().expect("newest");
        let mut bytes = std::fs::read(newest).expect("read manifest");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x01;
        std::fs::write(newest, bytes).expect("corrupt manifest");
        let verify = corestrom()
            .args(["checkpoints", "verify", state.to_str().expect("utf8")])
            .output()
            .expect("verify");
        assert!(
            !verify.status.success(),
            "verify must fail on a corrupt manifest"
        );
        assert!(String::from_utf8_lossy(&verify.stdout).contains("CORRUPT"));
        let rerun = corestrom()
            .args(&args)
            .stdout(Stdio::null())
            .output()
            .expect("rerun");
        assert!(
            rerun.status.success(),
            "{}",
            String::from_utf8_lossy(&rerun.stderr)
        );
        let stderr = String::from_utf8_lossy(&rerun.stderr);
        assert!(
            stderr.contains("does not verify") && stderr.contains("crc32 mismatch"),
            "stderr: {stderr}"
        );
        assert_exactly_once(
            &expected,
            &out,
            "after falling back to the previous checkpoint",
        );
        return;
    }
}

/// The same with the file source (byte-offset positions): q0 over a generated event file on 3
/// shards, killed at random moments, restarted until done: exactly the uninterrupted output.
#[test]
fn file_source_killed_at_random_moments_is_exactly_once() {
    let runs: u64 = std::env::var("CORESTROM_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(10, |r| r / 4 + 1);
    let dir = tempfile::tempdir().expect("temp dir");
    let events = dir.path().join("events.jsonl");
    let events = events.to_str().expect("utf8");
    run_ok(&[
        "nexmark", "generate", "--events", "150000", "--splits", "3", "--out", events,
    ]);
    let reference_dir = dir.path().join("reference");
    run_ok(&[
        "nexmark",
        "--query",
        "q0",
        "--input",
        events,
        "--shards",
        "3",
        "--output",
        reference_dir.to_str().expect("utf8"),
    ]);
    let expected = committed_lines(&reference_dir);
    let mut rng = Rng(0xf11e);
    let mut kills = 0;
    for run in 0..runs {
        let state = dir.path().join(format!("state-{run}"));
        let out = dir.path().join(format!("out-{run}"));
        let args = [
            "nexmark",
            "--query",
            "q0",
            "--input",
            events,
            "--shards",
            "3",
            "--state-dir",
            state.to_str().expect("utf8"),
            "--checkpoint-interval",
            "10",
            "--output",
            out.to_str().expect("utf8"),
        ];
        let mut finished = false;
        for _ in 0..5 {
            if run_and_kill(&args, Duration::from_millis(20 + rng.below(200))) {
                finished = true;
                break;
            }
            kills += 1;
        }
        if !finished {
            run_ok(&args);
        }
        assert_exactly_once(&expected, &out, &format!("file source run {run}"));
    }
    assert!(kills > 0, "no run was killed mid-way");
}

/// At-least-once mode (no barrier alignment): killed and restarted, the committed output still
/// loses nothing; duplicates are allowed by the mode, and none appear in this pipeline without
/// exchanges (each source feeds its own sink, so there is nothing to align).
#[test]
fn at_least_once_mode_loses_nothing() {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = reference(dir.path(), "2");
    let mut rng = Rng(0xa11);
    for run in 0..4 {
        let state = dir.path().join(format!("state-{run}"));
        let out = dir.path().join(format!("out-{run}"));
        let mut args = args(
            state.to_str().expect("utf8"),
            out.to_str().expect("utf8"),
            "2",
        );
        args.push("--at-least-once");
        let mut finished = false;
        for _ in 0..3 {
            if run_and_kill(&args, Duration::from_millis(50 + rng.below(300))) {
                finished = true;
                break;
            }
        }
        if !finished {
            run_ok(&args);
        }
        let got = committed_lines(&out);
        let (lost, duplicated, unexpected) = diff(&expected, &got);
        assert_eq!(
            (lost, unexpected),
            (0, 0),
            "run {run}: lost or unexpected lines"
        );
        assert_eq!(
            duplicated, 0,
            "run {run}: a pipeline without exchanges needs no alignment"
        );
    }
}
