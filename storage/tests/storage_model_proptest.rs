//! Proves that the store behaves like a `BTreeMap` through random sequences of put, get,
//! delete, scan, seal (each starting an index-file build when none runs), waits for those
//! builds, compaction, simulated crash and recovery (from an index file when one is usable),
//! including state several times larger than the memory budget.
//!
//! How: proptest generates operation sequences; each case runs on a fresh `SimDisk` inside a
//! glommio executor next to a model. The model keeps the live map and the map as of the last
//! seal that completed durably. A crash (unsynced writes randomly applied, dropped or torn)
//! followed by `open` at that position must give back exactly the sealed map.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::collections::BTreeMap;

use corestrom_storage::disk_sim::SimDisk;
use corestrom_storage::{
    IndexFilePolicy, KeyGroup, OperatorId, Position, Prefix, StateKey, Store, StoreConfig,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
enum Op {
    Put {
        kg: u16,
        key: u8,
        ns: u8,
        len: u16,
        fill: u8,
    },
    Get {
        kg: u16,
        key: u8,
        ns: u8,
    },
    Delete {
        kg: u16,
        key: u8,
        ns: u8,
    },
    Scan {
        kg: Option<u16>,
    },
    Seal {
        wait: bool,
    },
    Compact,
    /// Waits for the index-file build of an earlier seal (every seal starts one when idle).
    WaitIndex,
    Crash {
        sector: usize,
    },
}

fn op() -> impl Strategy<Value = Op> {
    let kg = 0u16..4;
    prop_oneof![
        40 => (kg.clone(), 0u8..40, 0u8..2, 0u16..3000, any::<u8>())
            .prop_map(|(kg, key, ns, len, fill)| Op::Put { kg, key, ns, len, fill }),
        20 => (kg.clone(), 0u8..40, 0u8..2).prop_map(|(kg, key, ns)| Op::Get { kg, key, ns }),
        10 => (kg.clone(), 0u8..40, 0u8..2).prop_map(|(kg, key, ns)| Op::Delete { kg, key, ns }),
        4 => proptest::option::of(kg).prop_map(|kg| Op::Scan { kg }),
        8 => any::<bool>().prop_map(|wait| Op::Seal { wait }),
        2 => Just(Op::Compact),
        3 => Just(Op::WaitIndex),
        3 => prop_oneof![Just(512usize), Just(4096usize)].prop_map(|sector| Op::Crash { sector }),
    ]
}

type Model = BTreeMap<(u16, Vec<u8>, Vec<u8>), Vec<u8>>;

fn config() -> StoreConfig {
    // 16 KiB of cache against up to ~300 KiB of live state: most reads are cold.
    StoreConfig {
        segment_bytes: 2 << 20,
        memory_budget_bytes: 16 << 10,
        compaction_live_ratio: 0.6,
        index_files: IndexFilePolicy::EverySeal,
    }
}

fn key_bytes(key: u8) -> Vec<u8> {
    vec![key; 1 + usize::from(key % 7)]
}

fn value(len: u16, fill: u8, key: u8) -> Vec<u8> {
    (0..len)
        .map(|i| fill.wrapping_add(i as u8).wrapping_add(key))
        .collect()
}

async fn check_all(store: &Store<SimDisk>, model: &Model) {
    let mut got = Model::new();
    for e in store.scan(Prefix::Operator(OperatorId(1))).await.unwrap() {
        got.insert(
            (e.key_group.0, e.key.to_vec(), e.namespace.to_vec()),
            e.value.to_vec(),
        );
    }
    assert_eq!(&got, model);
}

async fn run_case(ops: Vec<Op>, seed: u64) {
    let disk = SimDisk::new(seed);
    let (mut store, _) = Store::open_on(disk.clone(), config(), None).await.unwrap();
    let mut live = Model::new();
    let mut sealed: (Option<Position>, Model) = (None, Model::new());
    for op in ops {
        match op {
            Op::Put {
                kg,
                key,
                ns,
                len,
                fill,
            } => {
                let k = key_bytes(key);
                let v = value(len, fill, key);
                let sk = StateKey {
                    operator: OperatorId(1),
                    key_group: KeyGroup(kg),
                    key: &k,
                    namespace: &[ns],
                };
                store.put(sk, &v).await.unwrap();
                live.insert((kg, k, vec![ns]), v);
            }
            Op::Get { kg, key, ns } => {
                let k = key_bytes(key);
                let sk = StateKey {
                    operator: OperatorId(1),
                    key_group: KeyGroup(kg),
                    key: &k,
                    namespace: &[ns],
                };
                let got = store.get(sk).await.unwrap().map(|v| v.to_vec());
                assert_eq!(got.as_ref(), live.get(&(kg, k, vec![ns])));
            }
            Op::Delete { kg, key, ns } => {
                let k = key_bytes(key);
                let sk = StateKey {
                    operator: OperatorId(1),
                    key_group: KeyGroup(kg),
                    key: &k,
                    namespace: &[ns],
                };
                let existed = store.delete(sk).await.unwrap();
                assert_eq!(existed, live.remove(&(kg, k, vec![ns])).is_some());
            }
            Op::Scan { kg } => {
                let prefix = match kg {
                    Some(kg) => Prefix::KeyGroup(OperatorId(1), KeyGroup(kg)),
                    None => Prefix::Operator(OperatorId(1)),
                };
                let mut got = Model::new();
                for e in store.scan(prefix).await.unwrap() {
                    got.insert(
                        (e.key_group.0, e.key.to_vec(), e.namespace.to_vec()),
                        e.value.to_vec(),
                    );
                }
                let want: Model = live
                    .iter()
                    .filter(|((g, _, _), _)| kg.is_none_or(|kg| *g == kg))
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                assert_eq!(got, want);
            }
            Op::Seal { wait } => {
                let sealing = store.seal().unwrap();
                if wait {
                    let pos = sealing.durable().await.unwrap();
                    if let Some(old) = sealed.0.replace(pos) {
                        store.release(&old);
                    }
                    sealed.1 = live.clone();
                }
            }
            Op::WaitIndex => {
                store.wait_index_file().await;
            }
            Op::Compact => {
                store.compact().await.unwrap();
                check_all(&store, &live).await;
            }
            Op::Crash { sector } => {
                drop(store);
                disk.crash(sector);
                let (reopened, report) = Store::open_on(disk.clone(), config(), sealed.0.as_ref())
                    .await
                    .unwrap();
                // Nothing corrupts index files here: every one recovery tries must be usable
                // unless a crash tore it before its fsync.
                for fallback in &report.index_fallbacks {
                    assert!(
                        fallback.reason.contains("crc")
                            || fallback.reason.contains("short")
                            || fallback.reason.contains("truncated")
                            || fallback.reason.contains("ends"),
                        "{fallback:?}"
                    );
                }
                store = reopened;
                live = sealed.1.clone();
                check_all(&store, &live).await;
            }
        }
    }
    check_all(&store, &live).await;
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1000, max_shrink_iters: 200, ..ProptestConfig::default() })]

    #[test]
    fn store_matches_btreemap_model(ops in proptest::collection::vec(op(), 1..250), seed in any::<u64>()) {
        glommio::LocalExecutorBuilder::default()
            .spawn(move || run_case(ops, seed))
            .unwrap()
            .join()
            .unwrap();
    }
}
