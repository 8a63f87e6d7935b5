//! The `corestrom` binary as a user runs it: `--help` documents every flag, bad arguments fail
//! with a clear message and a non-zero exit, `--json` ends with one object with exactly the
//! documented keys, `--output` writes the query's rows, `generate` writes an event file,
//! `--input` reads one (and names the file and line of a malformed event), and `--query all`
//! runs every query.

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
        "--query",
        "--events",
        "--shards",
        "--rate",
        "--json",
        "--output",
        "--input",
        "--dead-letter",
        "--side-input",
        "generate",
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

/// q13 with a side file: only bids whose `auction mod 10000` is a key of the file give rows,
/// with that key's value; a malformed side file fails naming its line.
#[test]
fn q13_reads_its_side_input_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let side = dir.path().join("side.csv");
    std::fs::write(&side, "1,one\n1000,thousand\n").expect("write side file");
    let results = dir.path().join("results");
    let out = corestrom(&[
        "nexmark",
        "--query",
        "q13",
        "--events",
        "50000",
        "--shards",
        "2",
        "--side-input",
        side.to_str().expect("utf8 path"),
        "--output",
        results.to_str().expect("utf8 path"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut rows = 0;
    for entry in std::fs::read_dir(&results).expect("dir") {
        for line in std::fs::read_to_string(entry.expect("entry").path())
            .expect("read")
            .lines()
        {
            let row: serde_json::Value = serde_json::from_str(line).expect("JSON row");
            let expected = match row["auction"].as_i64().expect("auction") % 10_000 {
                1 => "one",
                1000 => "thousand",
                other => panic!("auction key {other} is not in the side file: {line}"),
            };
            assert_eq!(row["value"], expected, "{line}");
            rows += 1;
        }
    }
    // Auction ids start at 1000 (SPEC.md §2.5): 50 000 events have bids on these keys.
    assert!(rows > 0, "no rows");

    std::fs::write(&side, "1,one\nseven,7\n").expect("write side file");
    let out = corestrom(&[
        "nexmark",
        "--query",
        "q13",
        "--events",
        "1000",
        "--side-input",
        side.to_str().expect("utf8 path"),
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("side.csv:2"), "{stderr}");
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

/// Generates `events` events into `path` with the CLI itself.
fn generate(path: &std::path::Path, events: &str) {
    let out = corestrom(&[
        "nexmark",
        "generate",
        "--events",
        events,
        "--out",
        path.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn last_json(out: &std::process::Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(stdout.lines().last().expect("output")).expect("last line is JSON")
}

#[test]
fn input_file_counts_the_events_read_not_events() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("events.jsonl");
    generate(&file, "30000");
    let results = dir.path().join("out");
    let out = corestrom(&[
        "nexmark",
        "--query",
        "q0",
        "--input",
        file.to_str().expect("utf8"),
        "--events",
        "5",
        "--shards",
        "3",
        "--output",
        results.to_str().expect("utf8"),
        "--json",
    ]);
    let value = last_json(&out);
    assert_eq!(value["events"], 30_000);
    assert_eq!(value["shards"], 3);
    assert_eq!(value.as_object().expect("object").len(), 9);
    let rows: usize = std::fs::read_dir(&results)
        .expect("results")
        .map(|e| {
            std::fs::read_to_string(e.expect("entry").path())
                .expect("read")
                .lines()
                .count()
        })
        .sum();
    // 46 of every 50 events are bids, and q0 passes every bid through.
    assert_eq!(rows, 30_000 / 50 * 46);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("cpu seconds"), "{text}");
}

#[test]
fn input_malformed_line_fails_naming_file_and_line() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("events.jsonl");
    generate(&file, "2000");
    let text = std::fs::read_to_string(&file).expect("read");
    let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let index = lines
        .iter()
        .position(|l| l.contains("\"bid\""))
        .expect("a bid");
    lines[index] = lines[index].replacen("\"price\":", "\"price\":true,\"x\":", 1);
    std::fs::write(&file, lines.join("\n") + "\n").expect("write");
    let path = file.to_str().expect("utf8");
    let out = corestrom(&["nexmark", "--query", "q1", "--input", path, "--shards", "2"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    let expected = format!("{path}:{}: field `bid.price`", index + 1);
    assert!(err.contains(&expected), "stderr lacks '{expected}':\n{err}");

    // With a dead-letter file the job runs on and reports the count.
    let dead = dir.path().join("dead.jsonl");
    let out = corestrom(&[
        "nexmark",
        "--query",
        "q1",
        "--input",
        path,
        "--dead-letter",
        dead.to_str().expect("utf8"),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("dead letters     1"), "{text}");
    assert!(text.contains("events           1999"), "{text}");
    assert_eq!(
        std::fs::read_to_string(&dead).expect("dead letters"),
        format!("{}\n", lines[index])
    );
}

#[test]
fn query_all_runs_every_query_with_one_json_line_each() {
    let out = corestrom(&[
        "nexmark", "--query", "all", "--events", "50k", "--shards", "2", "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.lines().next().expect("table").starts_with("query"));
    let objects: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str(l).expect("JSON line"))
        .collect();
    let names: Vec<&str> = objects
        .iter()
        .map(|o| o["query"].as_str().expect("query"))
        .collect();
    assert_eq!(
        names,
        [
            "q0", "q1", "q2", "q3", "q4", "q5", "q6", "q7", "q8", "q9", "q10", "q11", "q12", "q13",
            "q14", "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22"
        ]
    );
    for object in &objects {
        assert_eq!(object.as_object().expect("object").len(), 9);
        assert_eq!(object["events"], 50_000);
    }
    for name in names {
        assert!(
            stdout
                .lines()
                .any(|l| l.starts_with(name) && !l.starts_with('{')),
            "table row {name}:\n{stdout}"
        );
    }
}
