//! Proves that injected disk faults never yield wrong data: every corruption before the durable
//! position is detected, nothing is silently accepted, nothing panics, and recovery reaches the
//! last durable position or says exactly why (file and offset) it cannot.
//!
//! How: 1,200 seeded cases on `SimDisk`, each writing and sealing against a model with an index
//! file built at every seal (`IndexFilePolicy::EverySeal`), with one fault aimed at either the
//! segment files or the index files: a failed write, a failed fsync, a lost (acknowledged but
//! never durable) write, a bit flip before the durable length (of a segment, or of the index
//! file recovery would start from), or a crash that tears unsynced writes at 512 B or 4 KiB
//! (for index files, after an fsync that lied, so a file the store counts as written is torn).
//! Every case then crashes (tearing or dropping whatever is unsynced, index files included),
//! reopens at the last position whose seal completed, reads everything back and scrubs.
//! Detection may happen at open, at a read (frame crc) or at the scrub; a damaged index file
//! must show up in the recovery report's fallbacks with the data still exact. Counts per fault
//! and per kind of file are printed and asserted.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;

use corestrom_storage::disk_sim::SimDisk;
use corestrom_storage::{
    IndexFilePolicy, KeyGroup, OperatorId, Position, Prefix, StateKey, StorageError, Store,
    StoreConfig,
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
    /// Recoveries that started from an index file.
    opened_from_index: u64,
    /// Index files recovery rejected (and reported).
    index_fallbacks: u64,
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
            // Often let the seal's index-file build finish, so index files are written (and
            // hit by faults) regularly rather than only when the workload happens to yield.
            if rng.below(3) != 0 {
                store.wait_index_file().await;
            }
        }
        if rng.below(400) == 0 {
            store.compact().await?;
        }
    }
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Target {
    Segments,
    IndexFiles,
}

fn file_class(name: &str) -> &'static str {
    if name.starts_with("idx-") {
        "index file"
    } else {
        "segment"
    }
}

/// The index file recovery at `position` would try first: the newest with seq <= the
/// position's, and the byte length its header declares.
async fn candidate_index(disk: &SimDisk, position: &Position) -> Option<(String, u64)> {
    use corestrom_storage::disk::{Disk, DiskFile};
    use corestrom_storage::index_file::INDEX_TOTAL_BYTES_OFFSET;
    let mut names: Vec<String> = disk
        .list()
        .unwrap()
        .into_iter()
        .filter(|n| n.starts_with("idx-"))
        .filter(|n| n[4..24].parse::<u64>().unwrap() <= position.seq)
        .collect();
    names.sort();
    let name = names.pop()?;
    let file = disk.open(&name).await.unwrap();
    let head = file.read_at(0, 4096).await.unwrap();
    let total = head
        .get(INDEX_TOTAL_BYTES_OFFSET..INDEX_TOTAL_BYTES_OFFSET + 8)
        .map_or(0, |b| u64::from_le_bytes(b.try_into().unwrap()));
    let total = total.min(disk.durable_len(&name).unwrap_or(0));
    (total > 0).then_some((name, total))
}

/// Reads everything back and scrubs: the first corruption error, if any.
async fn read_and_scrub(store: &Store<SimDisk>) -> Result<Model, StorageError> {
    let got = read_all(store).await?;
    store.scrub().await?;
    Ok(got)
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
    let target = if (seed / 5).is_multiple_of(2) {
        Target::Segments
    } else {
        Target::IndexFiles
    };
    let disk = SimDisk::new(seed);
    let (store, _) = Store::open_on(disk.clone(), config(), None).await.unwrap();
    let mut live = Model::new();
    let mut durable = (None, Model::new());
    workload(&store, &mut rng, 300, &mut live, &mut durable)
        .await
        .unwrap();
    disk.aim(Some(match target {
        Target::Segments => "seg-",
        Target::IndexFiles => "idx-",
    }));
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
    if target == Target::IndexFiles && fault != Fault::TornCrash {
        // A failed or lost index-file write costs recovery time, never the log.
        assert!(result.is_ok(), "seed {seed}: index fault stopped the store");
    }
    if result.is_ok() && fault == Fault::TornCrash && target == Target::IndexFiles {
        // The index file of the last durable position gets an fsync that lies: the store
        // counts it as written, and the crash below tears or drops its unsynced writes.
        store.wait_index_file().await;
        disk.lie_on_nth_sync(1);
        let pos = store.seal().unwrap().durable().await.unwrap();
        if let Some(old) = durable.0.replace(pos) {
            store.release(&old);
        }
        durable.1 = live.clone();
        store.wait_index_file().await;
    }
    if result.is_ok() {
        // Half the time, let the last build finish so an index file is durable at the crash.
        if rng.below(2) == 0 {
            store.wait_index_file().await;
        }
        // A seal whose index-file build may still be in flight at the crash, then unsynced
        // writes for the crash to tear: enough puts to fill a few write buffers.
        drop(store.seal().unwrap());
        for i in 0..(400 + rng.below(800)) {
            let key = format!("key-{}", rng.below(300)).into_bytes();
            store
                .put(sk(&key), &vec![i as u8; 16 + rng.below(4000) as usize])
                .await
                .unwrap();
        }
        // Let the writer task (and maybe the build) issue queued writes before the power goes.
        let pause = [1, 300, 2_000][rng.below(3) as usize];
        glommio::timer::sleep(std::time::Duration::from_micros(pause)).await;
    }
    drop(store);
    let sector = if rng.below(2) == 0 { 512 } else { 4096 };
    disk.crash(sector);
    let mut flipped = None;
    if fault == Fault::FlipBit
        && let Some(pos) = &durable.0
    {
        let spot = match target {
            Target::Segments => {
                let (segment, len) = pos.segments[rng.below(pos.segments.len() as u64) as usize];
                Some((segment.file_name(), rng.below(len)))
            }
            Target::IndexFiles => candidate_index(&disk, pos)
                .await
                .map(|(name, total)| (name, rng.below(total))),
        };
        if let Some((name, offset)) = spot {
            assert!(disk.flip_bit(&name, offset, rng.below(8) as u8));
            flipped = Some((name, offset));
        }
    }
    for f in disk.fault_log() {
        *tally
            .injected
            .entry(format!("{} on {}", f.kind, file_class(&f.file)))
            .or_default() += 1;
    }
    if let Some((name, _)) = &flipped {
        *tally
            .injected
            .entry(format!("bit-flip on {}", file_class(name)))
            .or_default() += 1;
        tally.corruptions_before_position += 1;
    }

    let opened = Store::open_on(disk.clone(), config(), durable.0.as_ref()).await;
    let detected = |file: &str, offset: u64, tally: &mut Tally| {
        let Some((name, at)) = &flipped else {
            assert!(
                fault == Fault::LoseWrite && target == Target::Segments,
                "seed {seed}: corruption without a corrupting fault: {file}@{offset}"
            );
            return;
        };
        assert!(
            file.ends_with(name.as_str()),
            "seed {seed}: reported {file}, flipped {name}"
        );
        assert!(
            offset <= *at,
            "seed {seed}: reported offset {offset} after the flip at {at}"
        );
        tally.corruptions_detected += 1;
    };
    match opened {
        Ok((store, report)) => {
            tally.opened_from_index += u64::from(report.index_file.is_some());
            tally.index_fallbacks += report.index_fallbacks.len() as u64;
            let index_flip = flipped
                .as_ref()
                .filter(|(name, _)| name.starts_with("idx-"));
            if let Some((name, _)) = index_flip {
                // The damaged index file is rejected by its crc, and the data is still exact.
                assert!(
                    report
                        .index_fallbacks
                        .iter()
                        .any(|f| f.file.ends_with(name.as_str())),
                    "seed {seed}: flipped index file {name} not rejected: {report:?}"
                );
                tally.corruptions_detected += 1;
            }
            match read_and_scrub(&store).await {
                Ok(got) if got == durable.1 && (flipped.is_none() || index_flip.is_some()) => {
                    tally.recovered_exactly += 1
                }
                Ok(_) => tally.silently_accepted += 1,
                Err(StorageError::Corrupt { file, offset, .. }) => {
                    tally.reported_corrupt += 1;
                    detected(&file, offset, tally);
                }
                Err(e) => panic!("seed {seed}: unexpected read error {e}"),
            }
        }
        Err(StorageError::Corrupt { file, offset, .. }) => {
            tally.reported_corrupt += 1;
            detected(&file, offset, tally);
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
    let on_index: u64 = tally
        .injected
        .iter()
        .filter(|(k, _)| k.ends_with("index file"))
        .map(|(_, v)| v)
        .sum();
    assert!(on_index >= 300, "only {on_index} faults hit index files");
    assert!(
        tally.opened_from_index > CASES / 2,
        "index files rarely used"
    );
    assert_eq!(tally.recovered_exactly + tally.reported_corrupt, CASES);
}
