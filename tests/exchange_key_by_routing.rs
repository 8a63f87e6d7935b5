//! key_by delivers every record exactly once, only to the shard that owns the record's key
//! group, and keeps the order of records per (sending shard, receiving shard) channel. Checked
//! as a property over random keys, shard counts (up to 6, more than this machine's cores) and
//! batch sizes, against a direct computation of each key's owner.

use std::collections::HashMap;

use corestrom_operators::prelude::*;
use corestrom_runtime::hash::{key_group_of_hash, key_group_range};
use proptest::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Tagged {
    split: usize,
    seq: usize,
    key: u64,
}

fn run(
    keys: Vec<u64>,
    shards: usize,
    batch_records: usize,
    max_key_groups: u32,
) -> Vec<Vec<Tagged>> {
    let env = Env::builder()
        .shards(shards)
        .batch_records(batch_records)
        .max_key_groups(max_key_groups)
        .build()
        .expect("valid config");
    let keys = std::sync::Arc::new(keys);
    let out = env
        .from_iter(move |split| {
            let keys = std::sync::Arc::clone(&keys);
            (0..keys.len())
                .filter(move |i| i % split.shards == split.shard)
                .enumerate()
                .map(move |(seq, i)| Tagged {
                    split: split.shard,
                    seq,
                    key: keys[i],
                })
                .collect::<Vec<_>>()
        })
        .key_by(|t: &Tagged| t.key)
        .collect();
    env.execute_and_wait().expect("job succeeds");
    out.take_by_shard()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn key_by_routes_exactly_once_to_the_owner_in_channel_order(
        keys in proptest::collection::vec(0u64..500, 0..3000),
        shards in 1usize..=6,
        batch_records in prop_oneof![Just(1usize), Just(7), Just(1024)],
        extra_groups in 0u32..200,
    ) {
        let max_key_groups = shards as u32 + extra_groups;
        let by_shard = run(keys.clone(), shards, batch_records, max_key_groups);
        prop_assert_eq!(by_shard.len(), shards);

        // Exactly once: the multiset of delivered records equals the multiset sent.
        let mut expected: HashMap<(usize, usize), u64> = HashMap::new();
        for (i, key) in keys.iter().enumerate() {
            expected.insert((i % shards, i / shards), *key);
        }
        let mut seen = 0;
        for (shard, records) in by_shard.iter().enumerate() {
            let mut last_seq: HashMap<usize, usize> = HashMap::new();
            for t in records {
                seen += 1;
                prop_assert_eq!(expected.remove(&(t.split, t.seq)), Some(t.key), "unexpected or duplicate {:?}", t);
                // Owner: the key's group lies in this shard's range.
                let group = key_group_of_hash(t.key.stable_hash(), max_key_groups);
                prop_assert!(key_group_range(shard, max_key_groups, shards).contains(&group.0));
                // Order per channel (split → shard).
                if let Some(prev) = last_seq.insert(t.split, t.seq) {
                    prop_assert!(prev < t.seq, "channel {}→{} reordered {} after {}", t.split, shard, t.seq, prev);
                }
            }
        }
        prop_assert_eq!(seen, keys.len());
        prop_assert!(expected.is_empty());
    }
}

/// Rebalance and broadcast deliver every record once (rebalance) or once per shard
/// (broadcast), with 4 shards on however many cores there are.
#[test]
fn rebalance_and_broadcast_deliver_all_records() {
    let env = Env::builder().shards(4).build().expect("config");
    let input: Vec<u64> = (0..10_000).collect();
    let source = env.from_vec(input.clone());
    let rebalanced = source.rebalance().collect();
    let broadcast = source.broadcast().collect();
    env.execute_and_wait().expect("job");

    let mut got = rebalanced.take();
    got.sort_unstable();
    assert_eq!(got, input);

    let per_shard = broadcast.take_by_shard();
    assert_eq!(per_shard.len(), 4);
    for mut shard in per_shard {
        shard.sort_unstable();
        assert_eq!(shard, input);
    }
}

/// A keyed rolling fold counts per key exactly as a sequential count does, at 1, 2 and 8 shards.
#[test]
fn keyed_fold_matches_sequential_count() {
    for shards in [1, 2, 8] {
        let env = Env::builder().shards(shards).build().expect("config");
        let words = ["a", "bb", "ccc", "dddd", "a", "bb", "a"];
        let input: Vec<String> = (0..7000)
            .map(|i| words[i % words.len()].to_string())
            .collect();
        let out = env
            .from_vec(input.clone())
            .key_by(|w: &String| w.clone())
            .fold(0u64, |n, _| *n += 1)
            .collect();
        env.execute_and_wait().expect("job");
        let mut last: HashMap<String, u64> = HashMap::new();
        for (word, count) in out.take() {
            let prev = last.insert(word, count).unwrap_or(0);
            assert!(count > prev, "rolling counts increase per key");
        }
        let mut expected: HashMap<String, u64> = HashMap::new();
        for w in input {
            *expected.entry(w).or_default() += 1;
        }
        assert_eq!(last, expected, "shards = {shards}");
    }
}
