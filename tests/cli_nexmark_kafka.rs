//! `corestrom nexmark` with Kafka in and out (the binary, against a real Kafka-protocol
//! broker): `generate --kafka-brokers --topic` loads events, `--kafka-input --kafka-bounded
//! --kafka-output` runs a query over them; the output topic, read `read_committed`, holds
//! exactly the rows the same query writes from the same events in a file, exactly-once with
//! checkpoints (also after SIGKILL and a rerun) and at-least-once without. Bad usage is refused
//! with the flag named.

#![cfg(feature = "kafka")]

#[path = "../connectors/kafka/tests/support/mod.rs"]
mod kafka_support;
mod support;

use std::collections::HashMap;
use std::process::Stdio;
use std::time::{Duration, Instant};

use kafka_support::{Broker, read_committed, topic};
use support::{committed_lines, corestrom, diff, run_ok};

fn output_rows(broker: &Broker, output: &str) -> HashMap<String, u32> {
    let mut rows = HashMap::new();
    for record in read_committed(&broker.address, output) {
        *rows
            .entry(String::from_utf8(record.value).unwrap())
            .or_insert(0) += 1;
    }
    rows
}

/// The rows q1 writes for `events` generated events (2 splits) into files: the reference.
fn reference(dir: &std::path::Path, events: &str) -> HashMap<String, u32> {
    let file = dir.join("events.jsonl");
    let out = dir.join("reference");
    run_ok(&[
        "nexmark",
        "generate",
        "--events",
        events,
        "--splits",
        "2",
        "--out",
        file.to_str().unwrap(),
    ]);
    run_ok(&[
        "nexmark",
        "--query",
        "q1",
        "--input",
        file.to_str().unwrap(),
        "--shards",
        "2",
        "--output",
        out.to_str().unwrap(),
    ]);
    committed_lines(&out)
}

/// A fresh broker with `events` generated events (2 splits) in a topic, the rows q1 writes for
/// them into files, and the topic.
fn loaded(dir: &std::path::Path, events: &str) -> (Broker, HashMap<String, u32>, String) {
    let broker = Broker::start();
    let expected = reference(dir, events);
    let input = topic("events");
    run_ok(&[
        "nexmark",
        "generate",
        "--events",
        events,
        "--splits",
        "2",
        "--kafka-brokers",
        &broker.address,
        "--topic",
        &input,
    ]);
    (broker, expected, input)
}

#[test]
fn kafka_in_kafka_out_matches_the_file_run_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, expected, input) = loaded(dir.path(), "50000");
    // Exactly once, with checkpoints, 3 shards over 2 partitions.
    let exactly = topic("q1-exactly");
    let state = dir.path().join("state");
    run_ok(&[
        "nexmark",
        "--query",
        "q1",
        "--kafka-brokers",
        &broker.address,
        "--kafka-input",
        &input,
        "--kafka-bounded",
        "--kafka-output",
        &exactly,
        "--shards",
        "3",
        "--state-dir",
        state.to_str().unwrap(),
        "--checkpoint-interval",
        "50",
    ]);
    assert_eq!(
        diff(&expected, &output_rows(&broker, &exactly)),
        (0, 0, 0),
        "exactly once"
    );
}

/// No transaction anywhere (the path a broker without Kafka transactions can run).
#[test]
fn kafka_in_kafka_out_at_least_once_matches_the_file_run() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, expected, input) = loaded(dir.path(), "50000");
    // At least once, no checkpoints: here (no failure) also every row once.
    let least = topic("q1-least");
    run_ok(&[
        "nexmark",
        "--query",
        "q1",
        "--kafka-brokers",
        &broker.address,
        "--kafka-input",
        &input,
        "--kafka-bounded",
        "--kafka-output",
        &least,
        "--shards",
        "2",
    ]);
    assert_eq!(
        diff(&expected, &output_rows(&broker, &least)),
        (0, 0, 0),
        "at least once"
    );
}

#[test]
fn killed_and_rerun_the_kafka_output_is_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let (broker, expected, input) = loaded(dir.path(), "100000");
    let output = topic("q1");
    let state = dir.path().join("state");
    let args = [
        "nexmark",
        "--query",
        "q1",
        "--kafka-brokers",
        &broker.address,
        "--kafka-input",
        &input,
        "--kafka-bounded",
        "--kafka-output",
        &output,
        "--shards",
        "2",
        "--state-dir",
        state.to_str().unwrap(),
        "--checkpoint-interval",
        "10",
    ];
    let mut kills = 0;
    for delay_ms in [150u64, 300, 450] {
        let mut child = corestrom()
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let started = Instant::now();
        let mut done = false;
        while started.elapsed() < Duration::from_millis(delay_ms) {
            if let Some(status) = child.try_wait().unwrap() {
                assert!(status.success());
                done = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if done {
            break;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        kills += 1;
    }
    run_ok(&args);
    assert_eq!(
        diff(&expected, &output_rows(&broker, &output)),
        (0, 0, 0),
        "after {kills} kills"
    );
}

#[test]
fn kafka_flags_without_brokers_are_refused_with_the_flag_named() {
    let out = corestrom()
        .args(["nexmark", "--query", "q1", "--kafka-input", "events"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--kafka-brokers"), "{stderr}");

    let out = corestrom()
        .args(["nexmark", "--query", "q1", "--kafka-bounded"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--kafka-input"));
}

#[test]
fn unreachable_brokers_fail_the_run_with_a_clear_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let address = format!("127.0.0.1:{port}");
    let out = corestrom()
        .args([
            "nexmark",
            "--query",
            "q0",
            "--kafka-brokers",
            &address,
            "--kafka-input",
            "events",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!("cannot reach the Kafka brokers at {address}")),
        "{stderr}"
    );
}
