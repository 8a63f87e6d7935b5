//! Proves that several executors reopening their stores at the same time, after crash-like
//! states, never hang: every round of recovery and cold reads finishes within a deadline.
//!
//! Why: a shard once slept forever in glommio's reactor while opening its store after a
//! SIGKILL. Glommio 0.9's executor loop arms the preempt timer, then asks whether the timer has
//! fired before running any task queue; when the thread was descheduled for longer than the
//! time slice in between, it read "preempted before running anything" as "nothing to run" and
//! parked in `io_uring_enter` with the woken task still queued. Nothing else was coming (the
//! I/O had completed and no other thread writes the executor's eventfd), so it never woke.
//! The runtime gives stateful shards a 0.5 ms slice, which a loaded machine overruns often;
//! this test uses a far shorter slice so the window is open on nearly every loop turn. The fix
//! lives in the vendored glommio (third_party/README.md); without it this test hangs in seconds.
//!
//! How: each of [`EXECUTORS`] threads runs an executor with that slice and its own store. It
//! writes state, seals, writes an unsealed tail, and drops the store without closing it (what a
//! kill leaves). Then, [`ROUNDS`] times, it reopens at the sealed position (recovery replays
//! and truncates), reads everything back with `scan` (cold O_DIRECT reads), checks it, and again
//! leaves an unsealed tail behind. The parent waits with a deadline instead of joining, so a
//! hang fails the test instead of stalling it.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::mpsc;
use std::time::Duration;

use corestrom_storage::{
    IndexFilePolicy, KeyGroup, OperatorId, Position, Prefix, StateKey, Store, StoreConfig,
};
use glommio::{LocalExecutorBuilder, Placement};

/// Executors opening stores at the same time (the kill test runs three shards).
const EXECUTORS: usize = 3;
/// Reopen rounds per executor.
const ROUNDS: usize = 12;
/// Entries each store holds; enough that recovery reads several blocks and scan many values.
const ENTRIES: u32 = 300;
/// The executors' time slice: short enough that a thread descheduled between arming the
/// preempt timer and checking it is the common case, not the rare one.
const PREEMPT_TIMER: Duration = Duration::from_micros(20);
/// Generous bound for all rounds on a loaded machine; a hang never finishes.
const DEADLINE: Duration = Duration::from_secs(60);

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

fn value(i: u32, round: usize) -> Vec<u8> {
    let len = 100 + (i as usize * 37) % 900;
    (0..len).map(|j| (i as usize + j + round) as u8).collect()
}

fn sk(key: &[u8]) -> StateKey<'_> {
    StateKey {
        operator: OperatorId(3),
        key_group: KeyGroup(1),
        key,
        namespace: b"",
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_bytes: 2 << 20,
        memory_budget_bytes: 1 << 20,
        compaction_live_ratio: 0.5,
        index_files: IndexFilePolicy::EverySeal,
    }
}

/// Puts entries that will be cut off at the next open, as a kill after a seal leaves them.
async fn leave_unsealed_tail(store: &Store, round: usize) {
    for i in 0..ENTRIES / 4 {
        store.put(sk(&key(i)), &value(i, round + 1)).await.unwrap();
    }
}

async fn rounds(dir: std::path::PathBuf) {
    let store = Store::create(&dir, config()).await.unwrap();
    for i in 0..ENTRIES {
        store.put(sk(&key(i)), &value(i, 0)).await.unwrap();
    }
    let position: Position = store.seal().unwrap().durable().await.unwrap();
    leave_unsealed_tail(&store, 0).await;
    drop(store);
    for round in 0..ROUNDS {
        let (store, _report) = Store::open(&dir, config(), &position).await.unwrap();
        let entries = store.scan(Prefix::Operator(OperatorId(3))).await.unwrap();
        assert_eq!(entries.len(), ENTRIES as usize);
        for entry in &entries {
            let i: u32 = std::str::from_utf8(&entry.key[4..])
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(&*entry.value, value(i, 0).as_slice());
        }
        leave_unsealed_tail(&store, round).await;
    }
}

#[test]
fn concurrent_reopens_after_crashes_never_hang() {
    let dir = tempfile::tempdir().unwrap();
    let (done_tx, done_rx) = mpsc::channel();
    for executor in 0..EXECUTORS {
        let shard_dir = dir.path().join(format!("shard-{executor}"));
        let done = done_tx.clone();
        LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("reopen-{executor}"))
            .preempt_timer(PREEMPT_TIMER)
            .spawn(move || async move {
                rounds(shard_dir).await;
                done.send(executor).unwrap();
            })
            .unwrap();
    }
    drop(done_tx);
    let mut finished = Vec::new();
    for _ in 0..EXECUTORS {
        match done_rx.recv_timeout(DEADLINE) {
            Ok(executor) => finished.push(executor),
            Err(e) => panic!(
                "executors {finished:?} finished, the others hung reopening their stores ({e})"
            ),
        }
    }
}
