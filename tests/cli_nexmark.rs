//! The `corestrom` binary as a user runs it: `--help` documents every flag, bad arguments fail
//! with a clear message and a non-zero exit, `--json` ends with one object with exactly the
//! documented keys, `--output` writes the query's rows, and `generate` writes an event file.

use std::collections::BTreeSet;
use std::process::Command;

fn corestrom(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_corestrom"))
        .args(args)
        .output()
        .expect("run corestrom")
}

#[test]
fn help_explains_every_flag() {
    let out = corestrom(&["nexmark", "--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--query", "--events", "--shards", "--rate", "--json", "--output", "generate",
    ] {
        assert!(text.contains(flag), "help lacks {flag}:\n{text}");
    }
}

#[test]
fn bad_arguments_fail_clearly() {
    for (args, expected) in [
        (vec!["nexmark", "--query", "q99"], "unknown query 'q99'"),
        (vec!["nexmark", "--events", "lots"], "is not a count"),
        (
            vec!["nexmark", "--shards", "0"],
            "--shards must be at least 1",
        ),
        (vec!["nexmark", "--bogus"], "--bogus"),
    ] {
        let out = corestrom(&args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains(expected),
            "{args:?}: stderr lacks '{expected}':\n{err}"
        );
    }
}

#[test]
fn json_summary_has_exactly_the_documented_keys() {
    let out = corestrom(&[
        "nexmark", "--query", "q1", "--events", "200k", "--shards", "4", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().expect("output");
    let value: serde_json::Value = serde_json::from_str(last).expect("last line is JSON");
    let keys: BTreeSet<&str> = value
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = [
        "query",
        "events",
        "shards",
        "seconds",
        "events_per_sec",
        "events_per_sec_per_core",
        "latency_p50_us",
        "latency_p99_us",
        "latency_p999_us",
    ]
    .into();
    assert_eq!(keys, expected);
    assert_eq!(value["query"], "q1");
    assert_eq!(value["events"], 200_000);
    assert_eq!(value["shards"], 4);
    assert!(value["events_per_sec"].as_f64().expect("number") > 0.0);
    assert!(
        value["latency_p50_us"].as_f64().expect("number")
            <= value["latency_p999_us"].as_f64().expect("number")
    );
}

#[test]
fn output_directory_holds_every_result_row() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = corestrom(&[
        "nexmark",
        "--query",
        "q0",
        "--events",
        "50000",
        "--shards",
        "2",
        "--output",
        dir.path().to_str().expect("utf8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = 0;
    for entry in std::fs::read_dir(dir.path()).expect("dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        assert!(
            name.starts_with("part-") && name.ends_with(".jsonl"),
            "unexpected file {name}"
        );
        for line in std::fs::read_to_string(&path).expect("read").lines() {
            let row: serde_json::Value = serde_json::from_str(line).expect("JSON row");
            let keys: Vec<&str> = row
                .as_object()
                .expect("object")
                .keys()
                .map(String::as_str)
                .collect();
            assert_eq!(keys.len(), 5, "{line}");
            rows += 1;
        }
    }
    // 46 of every 50 events are bids.
    assert_eq!(rows, 50_000 / 50 * 46);
}

#[test]
fn generate_writes_a_format_md_event_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("events.jsonl");
    let out = corestrom(&[
        "nexmark",
        "generate",
        "--events",
        "1000",
        "--seed",
        "7",
        "--out",
        file.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&file).expect("event file");
    assert_eq!(text.lines().count(), 1000);
    let first: serde_json::Value =
        serde_json::from_str(text.lines().next().expect("line")).expect("JSON");
    assert!(first.get("event_type").is_some());
}
