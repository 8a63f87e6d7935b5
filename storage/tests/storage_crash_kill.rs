//! Proves that a store on real files survives SIGKILL at random moments: reopening at the last
//! position the killed process reported durable returns exactly the model's data.
//!
//! How: the test binary re-invokes itself as a child (env `CORESTROM_CRASH_CHILD`) that runs a
//! seeded put/delete workload on a real directory (O_DIRECT, io_uring, real fdatasync), seals
//! every 300 operations, and prints `SEALED <ops> <position hex>` only after the seal is
//! durable; it also compacts and releases old positions. The parent kills it with SIGKILL after
//! a random delay, replays the same seeded operations into a `BTreeMap`, opens the store at the
//! last reported position and compares everything. Each round's child resumes from the
//! previous round's position, so recovery, resumed writing and compaction chain across kills.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use corestrom_storage::{
    IndexFilePolicy, KeyGroup, OperatorId, Position, Prefix, StateKey, Store, StoreConfig,
};

const ENV_CHILD: &str = "CORESTROM_CRASH_CHILD";
const SEAL_EVERY: u64 = 300;
const ROUNDS: u64 = 8;

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

enum Op {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
}

/// The `i`th operation of the seeded sequence (each op draws from its own generator, so a
/// resumed child does not need to fast-forward).
fn op(seed: u64, i: u64) -> Op {
    let mut rng = Rng((seed ^ i.wrapping_mul(0x9E37_79B9_7F4A_7C15)) | 1);
    rng.next();
    let key = format!("key-{:05}", rng.next() % 3000).into_bytes();
    if rng.next().is_multiple_of(8) {
        return Op::Delete(key);
    }
    let len = 20 + (rng.next() % 400) as usize;
    Op::Put(key, (0..len).map(|j| (i as usize + j) as u8).collect())
}

fn sk(key: &[u8]) -> StateKey<'_> {
    StateKey {
        operator: OperatorId(9),
        key_group: KeyGroup(0),
        key,
        namespace: b"",
    }
}

fn config() -> StoreConfig {
    StoreConfig {
        segment_bytes: 4 << 20,
        memory_budget_bytes: 1 << 20,
        compaction_live_ratio: 0.5,
        index_files: IndexFilePolicy::EverySeal,
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn child(spec: &str) {
    let mut parts = spec.split(',');
    let dir = parts.next().unwrap().to_owned();
    let seed: u64 = parts.next().unwrap().parse().unwrap();
    let start_ops: u64 = parts.next().unwrap().parse().unwrap();
    let start = parts
        .next()
        .filter(|s| !s.is_empty())
        .map(|h| Position::from_bytes(&unhex(h)).unwrap());
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let mut previous = start.clone();
            let store = match &start {
                Some(pos) => Store::open(&dir, config(), pos).await.unwrap().0,
                None => Store::create(&dir, config()).await.unwrap(),
            };
            let mut out = std::io::stdout().lock();
            for i in start_ops.. {
                match op(seed, i) {
                    Op::Put(k, v) => store.put(sk(&k), &v).await.unwrap(),
                    Op::Delete(k) => drop(store.delete(sk(&k)).await.unwrap()),
                }
                let done = i + 1;
                if done % SEAL_EVERY == 0 {
                    let pos = store.seal().unwrap().durable().await.unwrap();
                    writeln!(out, "SEALED {done} {}", hex(&pos.to_bytes())).unwrap();
                    out.flush().unwrap();
                    if let Some(old) = previous.replace(pos) {
                        store.release(&old);
                    }
                }
                if done % (SEAL_EVERY * 10) == 0 {
                    store.compact().await.unwrap();
                }
            }
        })
        .unwrap()
        .join()
        .unwrap();
}

fn model(seed: u64, ops: u64) -> BTreeMap<Vec<u8>, Vec<u8>> {
    let mut m = BTreeMap::new();
    for i in 0..ops {
        match op(seed, i) {
            Op::Put(k, v) => drop(m.insert(k, v)),
            Op::Delete(k) => drop(m.remove(&k)),
        }
    }
    m
}

fn verify(dir: &str, pos: &Position, want: BTreeMap<Vec<u8>, Vec<u8>>) -> String {
    let dir = dir.to_owned();
    let pos = pos.clone();
    glommio::LocalExecutorBuilder::default()
        .spawn(move || async move {
            let (store, report) = Store::open(&dir, config(), &pos).await.unwrap();
            let mut got = BTreeMap::new();
            for e in store.scan(Prefix::Operator(OperatorId(9))).await.unwrap() {
                got.insert(e.key.to_vec(), e.value.to_vec());
            }
            assert_eq!(got.len(), want.len(), "key count at {pos:?}");
            assert!(got == want, "state differs from the model at {pos:?}");
            format!(
                "{} keys, {} frames, tail {:?}, removed {:?}",
                report.keys, report.frames, report.tail, report.removed_segments
            )
        })
        .unwrap()
        .join()
        .unwrap()
}

#[test]
fn sigkill_at_random_moments_then_reopen_at_last_durable_position() {
    if let Ok(spec) = std::env::var(ENV_CHILD) {
        child(&spec);
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let dir_path = dir.path().to_str().unwrap().to_owned();
    let seed = 0x5EED_u64;
    let mut rng = Rng(seed);
    let mut last: Option<(u64, Position)> = None;
    let mut fresh_seals = 0;
    for round in 0..ROUNDS {
        let (ops, pos_hex) = last
            .as_ref()
            .map_or((0, String::new()), |(o, p)| (*o, hex(&p.to_bytes())));
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "sigkill_at_random_moments_then_reopen_at_last_durable_position",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(ENV_CHILD, format!("{dir_path},{seed},{ops},{pos_hex}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(150 + rng.next() % 600));
        child.kill().unwrap(); // SIGKILL
        let output = child.wait_with_output().unwrap();
        assert!(!output.status.success(), "child should have been killed");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let mut sealed = stdout
            .lines()
            .filter(|l| l.starts_with("SEALED "))
            .filter_map(|l| {
                let mut it = l.split(' ').skip(1);
                let ops: u64 = it.next()?.parse().ok()?;
                let pos = Position::from_bytes(&unhex(it.next()?)).ok()?;
                Some((ops, pos))
            });
        if let Some(newest) = sealed.next_back() {
            fresh_seals += 1;
            last = Some(newest);
        }
        if let Some((ops, pos)) = &last {
            let summary = verify(&dir_path, pos, model(seed, *ops));
            println!("round {round}: reopened at {ops} ops: {summary}");
        }
    }
    assert!(
        fresh_seals >= ROUNDS / 2,
        "children reported too few seals ({fresh_seals})"
    );
}
