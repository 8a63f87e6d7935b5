//! Savepoints from the command line: `corestrom savepoint STATE_DIR --stop --into DIR` stops a
//! running `corestrom nexmark ... --state-dir STATE_DIR` with a savepoint, and
//! `corestrom nexmark ... --from-savepoint DIR --shards N` restores it on another shard count.
//! A keyed windowed query (q5) rescaled 4 → 2 → 3 this way commits exactly the output of a run
//! that was never stopped. A damaged savepoint is refused with an error naming the file, and a
//! savepoint of another query (another job graph) is refused.

mod support;

use std::path::Path;
use std::process::{Child, Output, Stdio};
use std::time::{Duration, Instant};

use support::{committed_lines, corestrom, diff, run_ok};

const QUERY_ARGS: [&str; 8] = [
    "nexmark",
    "--events",
    "200k",
    "--event-rate",
    "2k",
    "--checkpoint-interval",
    "50",
    "--source-splits",
];

fn args(query: &str, shards: &str, state: &Path, out: &Path) -> Vec<String> {
    let mut args: Vec<String> = QUERY_ARGS.iter().map(|s| s.to_string()).collect();
    args.extend(
        [
            "4",
            "--query",
            query,
            "--shards",
            shards,
            "--state-dir",
            &state.display().to_string(),
            "--output",
            &out.display().to_string(),
        ]
        .map(String::from),
    );
    args
}

/// Runs a paced job on `shards` shards and stops it with a savepoint into `savepoint` once its
/// first checkpoint is complete.
fn run_and_stop(
    query: &str,
    shards: &str,
    from: Option<&Path>,
    state: &Path,
    out: &Path,
    savepoint: &Path,
) {
    let mut args = args(query, shards, state, out);
    // Paced so that the job is still running when the savepoint is asked for.
    args.extend(["--rate", "20k"].map(String::from));
    if let Some(from) = from {
        args.extend(["--from-savepoint".into(), from.display().to_string()]);
    }
    let child: Child = corestrom()
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn corestrom");
    let started = Instant::now();
    while !state.join("checkpoints").is_dir() {
        assert!(started.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(10));
    }
    let into = savepoint.display().to_string();
    let trigger = corestrom()
        .args([
            "savepoint",
            &state.display().to_string(),
            "--stop",
            "--into",
            &into,
        ])
        .output()
        .expect("run corestrom savepoint");
    assert!(
        trigger.status.success(),
        "corestrom savepoint failed: {}",
        String::from_utf8_lossy(&trigger.stderr)
    );
    assert!(String::from_utf8_lossy(&trigger.stdout).contains(&into));
    let job: Output = child.wait_with_output().expect("job");
    let stderr = String::from_utf8_lossy(&job.stderr);
    assert!(job.status.success(), "job failed: {stderr}");
    assert!(stderr.contains("stopped with a savepoint"), "{stderr}");
    run_ok(&["savepoint", "verify", &into]);
}

fn run_failing(args: &[String]) -> String {
    let out = corestrom().args(args).output().expect("run corestrom");
    assert!(!out.status.success(), "corestrom {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).to_string()
}

#[test]
fn stop_with_savepoint_and_restore_on_other_shard_counts_from_the_cli() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);

    let reference = path("reference");
    let args_ref = args("q5", "4", &path("state-ref"), &reference);
    run_ok(&args_ref.iter().map(String::as_str).collect::<Vec<_>>());
    let expected = committed_lines(&reference);
    assert!(expected.len() > 15, "too little output to test");

    let out = path("out");
    let (sp1, sp2) = (path("sp1"), path("sp2"));
    run_and_stop("q5", "4", None, &path("state-4"), &out, &sp1);
    run_and_stop("q5", "2", Some(&sp1), &path("state-2"), &out, &sp2);
    let mut last = args("q5", "3", &path("state-3"), &out);
    last.extend(["--from-savepoint".into(), sp2.display().to_string()]);
    run_ok(&last.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        diff(&expected, &committed_lines(&out)),
        (0, 0, 0),
        "lost, duplicated, unexpected lines"
    );

    // Another query's job graph is refused.
    let mut other = args("q7", "2", &path("state-q7"), &path("out-q7"));
    other.extend(["--from-savepoint".into(), sp1.display().to_string()]);
    let error = run_failing(&other);
    assert!(error.contains("same job graph"), "{error}");

    // A damaged state file is named, by `savepoint verify` and by a restore.
    let file = sp1.join("state-00002.kgs");
    let mut bytes = std::fs::read(&file).expect("state file");
    bytes[100] ^= 0x08;
    std::fs::write(&file, bytes).expect("corrupt");
    let error = run_failing(&[
        "savepoint".into(),
        "verify".into(),
        sp1.display().to_string(),
    ]);
    assert!(error.contains("state-00002.kgs"), "{error}");
    let mut restore = args("q5", "3", &path("state-corrupt"), &path("out-corrupt"));
    restore.extend(["--from-savepoint".into(), sp1.display().to_string()]);
    let error = run_failing(&restore);
    assert!(error.contains("state-00002.kgs"), "{error}");
    assert!(error.contains("crc32"), "{error}");
}

/// A job without keyed state (q1: a map) rescales through a savepoint too: only source
/// positions and sink transactions move.
#[test]
fn a_stateless_query_rescales_through_a_savepoint() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    let reference = path("reference");
    let args_ref = args("q1", "3", &path("state-ref"), &reference);
    run_ok(&args_ref.iter().map(String::as_str).collect::<Vec<_>>());
    let expected = committed_lines(&reference);
    assert!(expected.len() > 1000, "too little output to test");

    let out = path("out");
    let savepoint = path("sp");
    run_and_stop("q1", "3", None, &path("state-3"), &out, &savepoint);
    let partial: u32 = committed_lines(&out).values().sum();
    assert!(partial < expected.values().sum::<u32>(), "stopped midway");
    let mut last = args("q1", "2", &path("state-2"), &out);
    last.extend(["--from-savepoint".into(), savepoint.display().to_string()]);
    run_ok(&last.iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(
        diff(&expected, &committed_lines(&out)),
        (0, 0, 0),
        "lost, duplicated, unexpected lines"
    );
}
