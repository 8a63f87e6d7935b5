//! A panicking user function fails the whole job with an error that names the operator and the
//! shard, and no shard hangs: also when other shards are busy, blocked on full rings, or parked.

use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;

fn assert_panic_error(error: JobError, operator: &str) {
    match error {
        JobError::Panic {
            operator: op,
            message,
            ..
        } => {
            assert_eq!(op, operator);
            assert!(message.contains("poisoned record"), "message: {message}");
        }
        other => panic!("expected a panic error, got {other}"),
    }
}

#[test]
fn panic_in_map_after_an_exchange_names_the_operator() {
    let env = Env::builder().shards(4).build().expect("config");
    env.from_iter(|split| (0u64..).map(move |i| i * split.shards as u64 + split.shard as u64))
        .key_by(|n: &u64| *n % 97)
        .map(|n: u64| {
            if n == 123_457 {
                panic!("poisoned record {n}");
            }
            n
        })
        .name("explode")
        .blackhole();
    let started = Instant::now();
    let error = env
        .execute()
        .expect("starts")
        .wait()
        .expect_err("job fails");
    assert!(started.elapsed() < Duration::from_secs(30));
    let text = error.to_string();
    assert!(text.contains("explode") && text.contains("shard"), "{text}");
    assert_panic_error(error, "explode");
}

#[test]
fn panic_in_source_chain_stops_an_unbounded_job() {
    let env = Env::builder().shards(3).build().expect("config");
    env.from_iter(|split| (0u64..).map(move |i| (split.shard, i)))
        .filter(|&(shard, i)| {
            if shard == 1 && i == 50_000 {
                panic!("poisoned record at {i}");
            }
            true
        })
        .name("guard")
        .rebalance()
        .blackhole();
    let error = env
        .execute()
        .expect("starts")
        .wait()
        .expect_err("job fails");
    assert_panic_error(error, "guard");
}

#[test]
fn operator_errors_from_sinks_name_the_sink() {
    let env = Env::builder().shards(2).build().expect("config");
    // A path under a regular file cannot be a directory.
    let file = tempfile::NamedTempFile::new().expect("temp file");
    let dir = file.path().join("out");
    env.from_vec(vec![1u32, 2, 3]).write_jsonl(&dir);
    let error = env
        .execute_and_wait()
        .expect_err("sink cannot create its directory");
    match error {
        JobError::Operator { operator, .. } => assert_eq!(operator, "jsonl"),
        other => panic!("expected an operator error, got {other}"),
    }
}

#[test]
fn cancel_stops_an_unbounded_job() {
    let env = Env::builder().shards(4).build().expect("config");
    env.from_iter(|_| 0u64..).key_by(|n: &u64| *n).blackhole();
    let job = env.execute().expect("starts");
    let canceller = job.canceller();
    std::thread::sleep(Duration::from_millis(200));
    canceller.cancel();
    let started = Instant::now();
    assert!(matches!(job.wait(), Err(JobError::Cancelled)));
    assert!(started.elapsed() < Duration::from_secs(10));
}

#[test]
fn a_job_without_a_sink_is_rejected() {
    let env = Env::builder().shards(1).build().expect("config");
    let _ = env.from_vec(vec![1u8]).map(|x| x + 1);
    assert!(matches!(env.execute(), Err(JobError::Graph(_))));
}
