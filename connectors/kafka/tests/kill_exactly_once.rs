//! Exactly-once end to end under SIGKILL: Kafka in → key_by exchange → Kafka out, with 3
//! shards (more than the machine's cores), 15 ms checkpoints, and the process killed at random
//! moments, then run again from its state directory until it completes. A `read_committed`
//! consumer of the output must see every input record exactly once: 0 lost, 0 duplicated,
//! nothing from an aborted transaction.
//!
//! The job runs in a child process: this test binary re-runs itself with `CORESTROM_KAFKA_JOB`
//! set, which makes `child_job` run it. Runs (default 20, each killed up to 5 times) come from
//! `CORESTROM_KAFKA_KILL_RUNS`; `scripts/soak-kafka-kill.sh N` runs more. A failure prints the
//! seed (`CORESTROM_KAFKA_KILL_SEED`) that replays it.

mod support;

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use corestrom_kafka::admin::create_topic;
use corestrom_kafka::{KafkaConnection, KafkaOutput, KafkaRecord, KafkaSink, KafkaSource};
use corestrom_operators::prelude::*;
use support::{Broker, produce, read_committed, topic};

const JOB_VAR: &str = "CORESTROM_KAFKA_JOB";
const RECORDS: u64 = 60_000;
const PARTITIONS: i32 = 4;

fn sequence(record: &KafkaRecord<'_>) -> Result<u64, String> {
    std::str::from_utf8(record.value.unwrap_or_default())
        .ok()
        .and_then(|t| t.parse().ok())
        .ok_or_else(|| "not a sequence number".to_string())
}

/// The job. A pause every 50 records stretches a run to about a second, so kills land
/// mid-way (the pause blocks only this test's shard threads).
fn run_job(brokers: &str, input: &str, output: &str, state: &str, job: &str) {
    let env = Env::builder()
        .shards(3)
        .checkpoint_every(Duration::from_millis(15), format!("{state}/checkpoints"))
        .build()
        .expect("config");
    let connection = KafkaConnection::new(brokers);
    env.source(
        "kafka",
        KafkaSource::new(connection.clone(), &[input], sequence).bounded(),
    )
    .key_by(|n: &u64| n % 7)
    .map(|n: u64| {
        if n.is_multiple_of(50) {
            std::thread::sleep(Duration::from_millis(1));
        }
        n
    })
    .sink(
        "kafka-out",
        KafkaSink::exactly_once(
            connection,
            output,
            job,
            std::path::Path::new(&format!("{state}/staging")),
            |n: &u64, out: &mut KafkaOutput| {
                out.key().extend_from_slice(&n.to_le_bytes());
                out.value().extend_from_slice(n.to_string().as_bytes());
            },
        ),
    );
    env.execute_and_wait().expect("job");
}

/// Not a test on its own: the child process's entry point (does nothing unless the variable
/// is set).
#[test]
fn child_job() {
    if let Ok(spec) = std::env::var(JOB_VAR) {
        let parts: Vec<&str> = spec.split('|').collect();
        run_job(parts[0], parts[1], parts[2], parts[3], parts[4]);
    }
}

fn child(spec: &str) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", "child_job", "--nocapture", "--test-threads", "1"])
        .env(JOB_VAR, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Starts the job and kills it with SIGKILL after `delay`; true if it finished first.
fn run_and_kill(spec: &str, delay: Duration) -> bool {
    let mut process = child(spec).stderr(Stdio::null()).spawn().expect("spawn");
    let started = Instant::now();
    while started.elapsed() < delay {
        if let Some(status) = process.try_wait().expect("wait") {
            assert!(status.success(), "the job failed with {status} ({spec})");
            return true;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    process.kill().expect("SIGKILL");
    process.wait().expect("reap");
    false
}

fn run_to_completion(spec: &str) {
    let output = child(spec).output().expect("run");
    assert!(
        output.status.success(),
        "the job failed ({spec}): {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A tiny deterministic generator for kill delays (no dependency for one line of randomness).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

#[test]
fn killed_with_sigkill_at_random_moments_kafka_output_is_exactly_once() {
    if std::env::var(JOB_VAR).is_ok() {
        return;
    }
    let runs: u64 = std::env::var("CORESTROM_KAFKA_KILL_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let seed: u64 = std::env::var("CORESTROM_KAFKA_KILL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x6b61_666b);
    let broker = Broker::start();
    let input = topic("kill-in");
    create_topic(&broker.connection(), &input, PARTITIONS).unwrap();
    let records: Vec<_> = (0..RECORDS)
        .map(|n| {
            (
                (n % PARTITIONS as u64) as i32,
                None,
                n.to_string().into_bytes(),
            )
        })
        .collect();
    produce(&broker.address, &input, &records);

    let dir = tempfile::tempdir().expect("temp dir");
    let mut rng = Rng(seed | 1);
    let mut kills = 0;
    for run in 0..runs {
        let output = topic("kill-out");
        create_topic(&broker.connection(), &output, 3).unwrap();
        let state = dir.path().join(format!("run-{run}"));
        let spec = format!(
            "{}|{input}|{output}|{}|{}",
            broker.address,
            state.to_str().expect("utf8"),
            topic("job")
        );
        let mut finished = false;
        for _ in 0..5 {
            if run_and_kill(&spec, Duration::from_millis(40 + rng.below(900))) {
                finished = true;
                break;
            }
            kills += 1;
        }
        if !finished {
            run_to_completion(&spec);
        }
        let mut counts: HashMap<u64, u32> = HashMap::new();
        for record in read_committed(&broker.address, &output) {
            let n: u64 = String::from_utf8(record.value).unwrap().parse().unwrap();
            *counts.entry(n).or_default() += 1;
        }
        let lost = (0..RECORDS).filter(|n| !counts.contains_key(n)).count();
        let duplicated = counts.values().filter(|&&c| c > 1).count();
        let unexpected = counts.keys().filter(|&&n| n >= RECORDS).count();
        assert_eq!(
            (lost, duplicated, unexpected),
            (0, 0, 0),
            "run {run} (seed {seed:#x}): lost, duplicated, unexpected records"
        );
        std::fs::remove_dir_all(&state).ok();
    }
    eprintln!("{runs} runs, {kills} SIGKILLs, every Kafka output exactly once");
    assert!(
        kills >= runs * 3,
        "most runs must really be killed mid-way ({kills} kills in {runs} runs)"
    );
}
