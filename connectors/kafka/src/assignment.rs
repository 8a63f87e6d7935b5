//! Which shard reads which partition: explicit assignment, no consumer-group rebalancing.
//!
//! The partitions of all topics are listed in a fixed order (topics as given, partitions
//! ascending) and entry `i` goes to shard `i mod shards`. Every partition has exactly one
//! reader, the assignment depends only on the topic list, the partition counts and the shard
//! count (so a restart with the same shard count gives each shard back its own partitions),
//! and shards differ by at most one partition.

/// The `(topic, partition)` pairs shard `shard` of `shards` reads, given each topic's partition
/// count.
pub fn partitions_of_shard(
    topics: &[(String, i32)],
    shard: usize,
    shards: usize,
) -> Vec<(String, i32)> {
    assert!(shard < shards, "shard {shard} of {shards}");
    topics
        .iter()
        .flat_map(|(topic, count)| (0..*count).map(move |p| (topic.clone(), p)))
        .enumerate()
        .filter(|(i, _)| i % shards == shard)
        .map(|(_, tp)| tp)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn every_partition_has_exactly_one_reader_and_loads_differ_by_at_most_one(
            counts in proptest::collection::vec(1..20i32, 1..4),
            shards in 1usize..9,
        ) {
            let topics: Vec<(String, i32)> =
                counts.iter().enumerate().map(|(i, &c)| (format!("t{i}"), c)).collect();
            let mut seen = std::collections::HashMap::new();
            let mut loads = Vec::new();
            for shard in 0..shards {
                let mine = partitions_of_shard(&topics, shard, shards);
                loads.push(mine.len());
                for tp in mine {
                    *seen.entry(tp).or_insert(0) += 1;
                }
            }
            let total: i32 = counts.iter().sum();
            prop_assert_eq!(seen.len(), total as usize);
            prop_assert!(seen.values().all(|&n| n == 1));
            prop_assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1);
        }
    }
}
