//! `Store::verify` reads and checks a position without changing a file, so a caller can try a
//! newer position, find it corrupt, and still open an older one (a job falling back to its
//! previous checkpoint); `VerifiedStore::open` is the step that cuts.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::fs;
use std::path::Path;

use corestrom_storage::{
    IndexFilePolicy, KeyGroup, OperatorId, Position, Prefix, StateKey, StorageError, Store,
    StoreConfig,
};
use glommio::LocalExecutorBuilder;

/// Entries per phase: with 1 KiB values and 2 MiB segments, each phase spans several segments.
const ENTRIES: u32 = 3_000;

fn key(i: u32) -> Vec<u8> {
    format!("key-{i:06}").into_bytes()
}

fn value(i: u32, phase: u8) -> Vec<u8> {
    (0..1024).map(|j| (i as usize + j) as u8 ^ phase).collect()
}

fn sk(key: &[u8]) -> StateKey<'_> {
    StateKey {
        operator: OperatorId(1),
        key_group: KeyGroup(0),
        key,
        namespace: b"",
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_bytes: 2 << 20,
        memory_budget_bytes: 1 << 20,
        compaction_live_ratio: 0.5,
        // Every frame is verified at open only without an index file; with one, see
        // `verify_with_index_files_reads_values_before_cutting`.
        index_files: IndexFilePolicy::Never,
    }
}

async fn write_phase(store: &Store, phase: u8) -> Position {
    for i in 0..ENTRIES {
        store.put(sk(&key(i)), &value(i, phase)).await.unwrap();
    }
    store.seal().unwrap().durable().await.unwrap()
}

async fn assert_phase(store: &Store, phase: u8) {
    let entries = store.scan(Prefix::Operator(OperatorId(1))).await.unwrap();
    assert_eq!(entries.len(), ENTRIES as usize);
    for entry in &entries {
        let i: u32 = std::str::from_utf8(&entry.key[4..])
            .unwrap()
            .parse()
            .unwrap();
        assert_eq!(&*entry.value, value(i, phase).as_slice(), "key {i}");
    }
}

fn segment_files(dir: &Path) -> Vec<(String, u64)> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                e.metadata().unwrap().len(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Flips one byte in the last segment the newer position names, beyond the older position.
fn corrupt_after(dir: &Path, older: &Position, newer: &Position) {
    let &(segment, len) = newer.segments.last().unwrap();
    let start = older
        .segments
        .iter()
        .find(|(s, _)| *s == segment)
        .map_or(0, |&(_, l)| l);
    assert!(
        len > start + 4096,
        "the newer position adds bytes to its last segment"
    );
    let path = dir.join(segment.file_name());
    let mut bytes = fs::read(&path).unwrap();
    let at = usize::try_from(start + (len - start) / 2).unwrap();
    bytes[at] ^= 0x5a;
    fs::write(&path, bytes).unwrap();
}

#[test]
fn verify_changes_nothing_and_an_older_position_opens_after_a_newer_one_fails() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let store = Store::create(&path, config()).await.unwrap();
            let older = write_phase(&store, 1).await;
            let newer = write_phase(&store, 2).await;
            drop(store);
            let before = segment_files(&path);

            // Verifying the older position finds what opening would cut, and cuts nothing.
            let verified = Store::verify(&path, config(), &older).await.unwrap();
            assert!(
                !verified.report().removed_segments.is_empty(),
                "the newer phase wrote segments the older position does not name"
            );
            drop(verified);
            assert_eq!(segment_files(&path), before, "verify changed files");

            // So the newer position still opens with everything.
            let (store, _) = Store::verify(&path, config(), &newer)
                .await
                .unwrap()
                .open()
                .await
                .unwrap();
            assert_phase(&store, 2).await;
            drop(store);

            // A corrupt byte the newer position covers: verification names it, changes nothing,
            // and the older position still opens with its own data.
            corrupt_after(&path, &older, &newer);
            let before = segment_files(&path);
            match Store::verify(&path, config(), &newer).await {
                Err(StorageError::Corrupt { .. }) => {}
                Err(other) => panic!("expected a corruption error, got {other}"),
                Ok(_) => panic!("a flipped byte before the position verified"),
            }
            assert_eq!(
                segment_files(&path),
                before,
                "a failed verify changed files"
            );
            let (store, report) = Store::verify(&path, config(), &older)
                .await
                .unwrap()
                .open()
                .await
                .unwrap();
            assert_phase(&store, 1).await;
            drop(store);
            for removed in &report.removed_segments {
                assert!(!path.join(removed.file_name()).exists(), "open cuts");
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

/// With an index file at the newer seal, verification at open does not read the frames the
/// file covers, so a flipped byte in them passes `verify`; reading the state from the verified
/// store (`VerifiedStore::scan`, every frame's crc) finds it, still before anything is cut, and
/// the older position (whose own index file, if any, predates the damage) opens intact.
#[test]
fn verify_with_index_files_reads_values_before_cutting() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().to_path_buf();
    let config = || StoreConfig {
        index_files: IndexFilePolicy::EverySeal,
        ..config()
    };
    LocalExecutorBuilder::default()
        .spawn(move || async move {
            let store = Store::create(&path, config()).await.unwrap();
            let older = write_phase(&store, 1).await;
            store.wait_index_file().await;
            let newer = write_phase(&store, 2).await;
            store.wait_index_file().await;
            assert!(
                store.index_files().contains(&newer.seq),
                "an index file covers the newer seal"
            );
            drop(store);

            corrupt_after(&path, &older, &newer);
            let before = segment_files(&path);
            let verified = Store::verify(&path, config(), &newer).await.unwrap();
            assert!(
                verified.report().index_file.is_some(),
                "opened from the index file"
            );
            match verified.scan(Prefix::Operator(OperatorId(1))).await {
                Err(StorageError::Corrupt { .. }) => {}
                Err(other) => panic!("expected a corruption error, got {other}"),
                Ok(_) => panic!("a flipped byte in a live value was read back"),
            }
            drop(verified);
            assert_eq!(segment_files(&path), before, "a failed scan changed files");

            let verified = Store::verify(&path, config(), &older).await.unwrap();
            let entries = verified
                .scan(Prefix::Operator(OperatorId(1)))
                .await
                .unwrap();
            assert_eq!(entries.len(), ENTRIES as usize);
            let (store, _) = verified.open().await.unwrap();
            assert_phase(&store, 1).await;
        })
        .unwrap()
        .join()
        .unwrap();
}
