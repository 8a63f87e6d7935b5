//! Proves that injected disk faults never yield wrong data: every corruption before the durable
//! position is detected, nothing is silently accepted, nothing panics, and recovery reaches the
//! last durable position or says exactly why (file and offset) it cannot.
//!
//! How: 1,200 seeded cases on `SimDisk`, each writing and sealing against a model, with one
//! fault: a failed write, a failed fsync, a lost (acknowledged but never durable) write, a bit
//! flip before the durable length of a segment, or a crash that tears unsynced writes at 512 B
//! or 4 KiB. Then crash, reopen at the last position whose seal completed, and compare. The
//! store has no index files (recovery rebuilds the index by scanning), so all faults hit
//! segment files. Counts are printed and asserted.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use corestrom_storage::disk_sim::SimDisk;
use corestrom_storage::{
    KeyGroup, OperatorId, Position, Prefix, StateKey, StorageError, Store, StoreConfig, IndexFilePolicy,
};
use futures_lite::FutureExt;

const CASES: u64 = 1200;

type Model = BTreeMap<Vec<u8>, Vec<u8>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Fault {
    FailWrite,
    FailSync,
    LoseWrite,
    FlipBit,
    TornCrash,
}

#[derive(Debug, Default)]
struct Tally {
    injected: BTreeMap<String, u64>,
    corruptions_before_position: u64,
    corruptions_detected: u64,
    silently_accepted: u64,
    recovered_exactly: u64,
    reported_corrupt: u64,
    fail_stops_observed: u64,
    panics: u64,
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_bytes: 2 << 20,
        memory_budget_bytes: 64 << 10,
        compaction_live_ratio: 0.5,
        index_files: IndexFilePolicy::EverySeal,
    }
}

fn sk(k: &[u8]) -> StateKey<'_> {
    StateKey {
        operator: OperatorId(3),
        key_group: KeyGroup(1),
        key: k,
        namespace: b"",
    }
}

async fn read_all(store: &Store<SimDisk>) -> Result<Model, StorageError> {
    let mut out = Model::new();
    for e in store.scan(Prefix::Operator(OperatorId(3))).await? {
        out.insert(e.key.to_vec(), e.value.to_vec());
    }
    Ok(out)
}

/// Writes `ops` random puts/deletes with periodic seals; returns the last durable position.
/// Stops at the first error (fail-stop), which it reports as `Err`.
async fn workload(
    store: &Store<SimDisk>,
    rng: &mut Rng,
    ops: u64,
    live: &mut Model,
    durable: &mut (Option<Position>, Model),
) -> Result<(), StorageError> {
    for i in 0..ops {
        let key = format!("key-{}", rng.below(300)).into_bytes();
        if rng.below(10) == 0 {
            store.delete(sk(&key)).await?;
            live.remove(&key);
        } else {
            let value = vec![(i % 251) as u8; 16 + rng.below(1500) as usize];
            store.put(sk(&key), &value).await?;
            live.insert(key, value);
        }
        if rng.below(60) == 0 {
            let pos = store.seal()?.durable().await?;
            if let Some(old) = durable.0.replace(pos) {
                store.release(&old);
            }
            durable.1 = live.clone();
        }
        if rng.below(400) == 0 {
            store.compact().await?;
        }
    }
    Ok(())
}

async fn run_case(seed: u64, tally: &mut Tally) {
    let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let fault = match seed % 5 {
        0 => Fault::FailWrite,
        1 => Fault::FailSync,
        2 => Fault::LoseWrite,
        3 => Fault::FlipBit,
        _ => Fault::TornCrash,
    };
    let disk = SimDisk::new(seed);
    let (store, _) = Store::open_on(disk.clone(), config(), None).await.unwrap();
    let mut live = Model::new();
    let mut durable = (None, Model::new());
    workload(&store, &mut rng, 300, &mut live, &mut durable)
        .await
        .unwrap();
    match fault {
        Fault::FailWrite => disk.fail_nth_write(1 + rng.below(4)),
        Fault::FailSync => disk.fail_nth_sync(1 + rng.below(3)),
        Fault::LoseWrite => disk.lose_nth_write(1 + rng.below(4)),
        Fault::FlipBit | Fault::TornCrash => {}
    }
    let result = workload(&store, &mut rng, 700, &mut live, &mut durable).await;
    // A seal at the very end makes a lost write (if any) part of a durable position.
    let result = match result {
        Ok(()) => match store.seal() {
            Ok(s) => s.durable().await.map(|pos| {
                if let Some(old) = durable.0.replace(pos) {
                    store.release(&old);
                }
                durable.1 = live.clone();
            }),
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let stats = disk.stats();
    let injected = stats.writes_failed + stats.syncs_failed + stats.writes_lost;
    if let Err(e) = &result {
        assert!(
            matches!(
                e,
                StorageError::Io { .. } | StorageError::FailStopped { .. }
            ),
            "unexpected {e}"
        );
        tally.fail_stops_observed += 1;
        // Fail-stop: no more writes accepted.
        let refused = store.put(sk(b"after-failure"), b"x").await;
        assert!(
            matches!(refused, Err(StorageError::FailStopped { .. })),
            "write accepted after {e}"
        );
        assert!(store.seal().is_err(), "seal accepted after {e}");
    }
    if result.is_ok() {
        // Unsynced writes for the crash to tear: enough puts to fill a few write buffers.
        for i in 0..(400 + rng.below(800)) {
            let key = format!("key-{}", rng.below(300)).into_bytes();
            store
                .put(sk(&key), &vec![i as u8; 16 + rng.below(4000) as usize])
                .await
                .unwrap();
        }
        // Let the writer task issue the queued writes before the power goes.
        glommio::timer::sleep(std::time::Duration::from_micros(1)).await;
    }
    drop(store);
    let sector = if rng.below(2) == 0 { 512 } else { 4096 };
    let crash = disk.crash(sector);
    let mut flipped_before_position = None;
    if fault == Fault::FlipBit
        && let Some(pos) = &durable.0
    {
        let (segment, len) = pos.segments[rng.below(pos.segments.len() as u64) as usize];
        let offset = rng.below(len);
        assert!(disk.flip_bit(&segment.file_name(), offset, rng.below(8) as u8));
        flipped_before_position = Some((segment.file_name(), offset));
    }
    let kind = format!("{fault:?}");
    let counted = match fault {
        Fault::FlipBit => u64::from(flipped_before_position.is_some()),
        Fault::TornCrash => crash.torn + crash.dropped,
        _ => injected,
    };
    *tally.injected.entry(kind).or_default() += counted;
    if fault != Fault::TornCrash {
        // Every case also crashes with unsynced writes in flight; count those tears too.
        *tally
            .injected
            .entry("TornOrDroppedAtCrash(other cases)".into())
            .or_default() += crash.torn + crash.dropped;
    }
    tally.corruptions_before_position += u64::from(flipped_before_position.is_some());

    let opened = Store::open_on(disk.clone(), config(), durable.0.as_ref()).await;
    match opened {
        Ok((store, _)) => {
            let got = read_all(&store).await;
            match got {
                Ok(got) if got == durable.1 && flipped_before_position.is_none() => {
                    tally.recovered_exactly += 1
                }
                Ok(_) => tally.silently_accepted += 1,
                Err(e) if e.is_corruption() => tally.reported_corrupt += 1,
                Err(e) => panic!("seed {seed}: unexpected read error {e}"),
            }
        }
        Err(StorageError::Corrupt {
            file,
            offset,
            reason,
        }) => {
            tally.reported_corrupt += 1;
            if let Some((name, at)) = &flipped_before_position {
                assert!(
                    file.ends_with(name.as_str()),
                    "seed {seed}: reported {file}, flipped {name}"
                );
                assert!(
                    offset <= *at,
                    "seed {seed}: reported offset {offset} after the flip at {at} ({reason})"
                );
                tally.corruptions_detected += 1;
            } else {
                assert_eq!(
                    fault,
                    Fault::LoseWrite,
                    "seed {seed}: corruption without a corrupting fault: {file}@{offset} {reason}"
                );
            }
        }
        Err(e) => panic!("seed {seed}: recovery failed without naming a corruption: {e}"),
    }
}

#[test]
fn injected_faults_are_detected_or_survived() {
    let tally = glommio::LocalExecutorBuilder::default()
        .spawn(|| async {
            let mut tally = Tally::default();
            for seed in 1..=CASES {
                let outcome = AssertUnwindSafe(run_case(seed, &mut tally))
                    .catch_unwind()
                    .await;
                if let Err(panic) = outcome {
                    tally.panics += 1;
                    let msg = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                    eprintln!("seed {seed} panicked: {msg}");
                }
            }
            tally
        })
        .unwrap()
        .join()
        .unwrap();
    let total: u64 = tally.injected.values().sum();
    println!("fault injection: {tally:#?}\ntotal injected faults: {total}");
    assert_eq!(tally.panics, 0);
    assert_eq!(tally.silently_accepted, 0);
    assert_eq!(
        tally.corruptions_detected, tally.corruptions_before_position,
        "every flip before the position detected"
    );
    assert!(total >= 1000, "only {total} faults injected");
    assert_eq!(tally.recovered_exactly + tally.reported_corrupt, CASES);
}
