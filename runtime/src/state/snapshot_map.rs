//! `SnapshotMap`: one value per key for one operator instance, kept so that a checkpoint costs
//! O(dirty key groups) at the barrier and encodes in the background with copy-on-write.
//!
//! Layout: the map is split into parts, `parts_per_group` per owned key group (the part of a
//! key is its key group and the low bits of its stable hash; the key group takes the high
//! bits). A part is the unit of background encoding, small enough that one encoding slice stays
//! well under a millisecond; a key group is the unit of the store (one entry per (operator,
//! key group, chunk)), so a dirty group is always re-encoded whole, all of its parts.
//!
//! The checkpoint protocol (one instance, one shard, no locking):
//! 1. Every write access marks its key group dirty (one bit).
//! 2. [`SnapshotMap::mark`] at `Barrier(n)`: the dirty groups become the groups of checkpoint
//!    `n`, all their parts are marked pending, the dirty set starts empty. Nothing is encoded.
//! 3. [`SnapshotMap::encode_for`] (called by the shard loop between batches) encodes pending
//!    parts in group order until its time budget is spent. A finished part leaves the pending
//!    set; a finished group's bytes are complete.
//! 4. Copy-on-write: the first write after the barrier to a key of a part still pending saves
//!    the key's value as of the barrier (a before-image; `None` when the key did not exist).
//!    Encoding a part uses the before-image of a key in place of its live value (skipping keys
//!    created after the barrier, keeping keys removed after it), so the bytes of checkpoint `n`
//!    are exactly the state at the barrier. This costs one clone per key and checkpoint, only
//!    for keys written while their part waits, instead of encoding a whole group inline.
//! 5. When every pending group is encoded the snapshot is handed over: the dirty groups' bytes,
//!    an empty buffer for a group that became empty (the store deletes it). Groups not in the
//!    snapshot are unchanged since the previous checkpoint and keep their store entries.
//!
//! Invariants: a part is pending only while a checkpoint is marked (`pending_parts` is empty
//! otherwise); before-images exist only for pending parts; a checkpoint is marked at most once
//! at a time (a barrier arriving while one is pending first finishes it).
//!
//! The bytes of a key group are `(key, value)` entries as [`read_entries`] reads them, the same
//! format as a full snapshot of a hash map, so restore does not care how they were written.

use std::hash::Hash;
use std::ops::Range;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;

use super::bitset::BitSet;
use super::snapshot::{KeyGroupState, SnapshotError, StateData, read_entries};
use crate::hash::{StableHash, key_group_of_hash};

/// Parts all key groups of a job are split into, about (each group gets at least one).
/// 8192 parts keep one part of 1 GB of state near 128 KB, well under a millisecond to encode.
pub const SNAPSHOT_PARTS_TARGET: u32 = 8192;
const _: () = assert!(SNAPSHOT_PARTS_TARGET.is_power_of_two());

/// CPU time of the calling thread in µs (one clock read per slice, not per record).
fn thread_cpu_us() -> u64 {
    crate::metrics::thread_cpu_ns() / 1_000
}

/// What a background snapshot cost, for the checkpoint report.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct EncodeStats {
    /// Background slices that encoded parts.
    pub slices: u32,
    /// The longest slice, in µs of wall-clock time (the shard processes no record meanwhile;
    /// includes time the thread was preempted by the OS).
    pub slice_us_max: u64,
    /// The most CPU time (µs, of the shard's thread) one slice took: the work itself.
    pub slice_cpu_us_max: u64,
    /// Encoding time over all slices, in µs.
    pub encode_us: u64,
    /// Before-images saved on the record path (copy-on-write).
    pub copies: u64,
    /// Encoded bytes.
    pub bytes: u64,
}

/// The encoded dirty key groups of one checkpoint.
#[derive(Debug)]
pub struct EncodedSnapshot {
    /// The checkpoint.
    pub checkpoint: u64,
    /// Every key group written since the previous checkpoint, in group order; empty bytes
    /// mean the group holds nothing any more.
    pub groups: Vec<KeyGroupState>,
    /// What it cost.
    pub stats: EncodeStats,
}

#[derive(Debug)]
struct Pending {
    checkpoint: u64,
    /// Local indices of the groups to encode, ascending.
    groups: Vec<u32>,
    /// Index in `groups` of the group being encoded.
    next_group: usize,
    /// Next part within that group.
    next_part: usize,
    /// The bytes of the group being encoded so far.
    buffer: Vec<u8>,
    done: Vec<KeyGroupState>,
    stats: EncodeStats,
}

/// A keyed map with incremental, copy-on-write snapshots (see the module doc).
#[derive(Debug)]
pub struct SnapshotMap<K, V> {
    groups: Range<u32>,
    max_key_groups: u32,
    parts_per_group: usize,
    parts: Vec<FxHashMap<K, V>>,
    /// Local key groups written since the last mark.
    dirty: BitSet,
    pending: Option<Pending>,
    /// Parts of the marked checkpoint not encoded yet.
    pending_parts: BitSet,
    /// Per part: values as of the barrier of keys written since (only for pending parts).
    before: Vec<FxHashMap<K, Option<V>>>,
}

impl<K, V> SnapshotMap<K, V>
where
    K: StableHash + Hash + Eq + Clone + StateData,
    V: Clone + StateData,
{
    /// An empty map for a shard owning `groups` of `max_key_groups`.
    pub fn new(groups: Range<u32>, max_key_groups: u32) -> Self {
        assert!(groups.start <= groups.end && groups.end <= max_key_groups);
        let parts_per_group = (SNAPSHOT_PARTS_TARGET / max_key_groups.max(1))
            .max(1)
            .next_power_of_two() as usize;
        let count = (groups.end - groups.start) as usize * parts_per_group;
        SnapshotMap {
            dirty: BitSet::new((groups.end - groups.start) as usize),
            pending_parts: BitSet::new(count),
            parts: (0..count).map(|_| FxHashMap::default()).collect(),
            before: (0..count).map(|_| FxHashMap::default()).collect(),
            pending: None,
            groups,
            max_key_groups,
            parts_per_group,
        }
    }

    #[inline]
    fn part_of(&self, key: &K) -> usize {
        let hash = key.stable_hash();
        let group = key_group_of_hash(hash, self.max_key_groups).0;
        // Per record: debug only; the index below is bounds-checked anyway.
        debug_assert!(
            self.groups.contains(&group),
            "key group {group} outside this shard's groups {:?}",
            self.groups
        );
        let local = group.wrapping_sub(self.groups.start) as usize;
        local * self.parts_per_group + (hash as usize & (self.parts_per_group - 1))
    }

    /// Marks the part's group dirty and saves the key's before-image when its part waits for
    /// encoding (module doc, step 4).
    #[inline]
    fn before_write(&mut self, part: usize, key: &K) {
        self.dirty.insert(part / self.parts_per_group);
        if self.pending_parts.is_empty() || !self.pending_parts.contains(part) {
            return;
        }
        let before = &mut self.before[part];
        if !before.contains_key(key) {
            let old = self.parts[part].get(key).cloned();
            before.insert(key.clone(), old);
            if let Some(pending) = self.pending.as_mut() {
                pending.stats.copies += 1;
            }
        }
    }

    /// The value of `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.parts[self.part_of(key)].get(key)
    }

    /// Runs `f` on the value of `key`, created by `init` when absent.
    #[inline]
    pub fn update<R>(
        &mut self,
        key: &K,
        init: impl FnOnce() -> V,
        f: impl FnOnce(&mut V) -> R,
    ) -> R {
        let part = self.part_of(key);
        self.before_write(part, key);
        let map = &mut self.parts[part];
        match map.get_mut(key) {
            Some(value) => f(value),
            None => {
                let mut value = init();
                let result = f(&mut value);
                map.insert(key.clone(), value);
                result
            }
        }
    }

    /// Removes and returns the value of `key`.
    pub fn remove(&mut self, key: &K) -> Option<V> {
        let part = self.part_of(key);
        self.before_write(part, key);
        self.parts[part].remove(key)
    }

    /// Number of keys (walks the parts).
    pub fn len(&self) -> usize {
        self.parts.iter().map(FxHashMap::len).sum()
    }

    /// True without keys.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(FxHashMap::is_empty)
    }

    /// Every live entry, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.parts.iter().flat_map(|p| p.iter())
    }

    /// Loads one restored key group; restored state is clean (it is what the store holds).
    ///
    /// # Errors
    /// The bytes do not decode as `(K, V)` entries.
    pub fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError> {
        read_entries::<(K, V)>(group, |(key, value)| {
            let part = self.part_of(&key);
            debug_assert_eq!(
                (part / self.parts_per_group) as u32 + self.groups.start,
                group.key_group
            );
            self.parts[part].insert(key, value);
        })
    }

    /// The checkpoint marked and not handed over yet.
    pub fn pending_checkpoint(&self) -> Option<u64> {
        self.pending.as_ref().map(|p| p.checkpoint)
    }

    /// `Barrier(checkpoint)`: the dirty groups become the checkpoint's groups (module doc, step
    /// 2). O(owned groups / 64 + dirty groups × parts per group) bit operations.
    ///
    /// # Panics
    /// A checkpoint is still pending: finish it first.
    pub fn mark(&mut self, checkpoint: u64) {
        assert!(
            self.pending.is_none(),
            "checkpoint {checkpoint} marked while another is pending"
        );
        assert!(self.pending_parts.is_empty());
        let groups: Vec<u32> = self.dirty.iter().map(|g| g as u32).collect();
        for &local in &groups {
            let first = local as usize * self.parts_per_group;
            self.pending_parts
                .insert_range(first..first + self.parts_per_group);
        }
        self.dirty.clear();
        self.pending = Some(Pending {
            checkpoint,
            groups,
            next_group: 0,
            next_part: 0,
            buffer: Vec::new(),
            done: Vec::new(),
            stats: EncodeStats::default(),
        });
    }

    /// Encodes pending parts for about `budget` (at least one part), as one slice; returns the
    /// snapshot once every group is encoded.
    ///
    /// # Errors
    /// An entry failed to encode.
    pub fn encode_for(
        &mut self,
        budget: Duration,
    ) -> Result<Option<EncodedSnapshot>, SnapshotError> {
        let Some(mut pending) = self.pending.take() else {
            return Ok(None);
        };
        let started = Instant::now();
        let cpu_started = thread_cpu_us();
        self.encode_parts(&mut pending, Some(started + budget), usize::MAX)?;
        let us = started.elapsed().as_micros() as u64;
        let cpu_us = thread_cpu_us().saturating_sub(cpu_started);
        pending.stats.slices += 1;
        pending.stats.slice_us_max = pending.stats.slice_us_max.max(us);
        pending.stats.slice_cpu_us_max = pending.stats.slice_cpu_us_max.max(cpu_us);
        pending.stats.encode_us += us;
        Ok(self.complete_or_keep(pending))
    }

    /// Encodes everything still pending now (end of input, or a barrier arriving early).
    ///
    /// # Errors
    /// An entry failed to encode.
    pub fn finish(&mut self) -> Result<Option<EncodedSnapshot>, SnapshotError> {
        let Some(mut pending) = self.pending.take() else {
            return Ok(None);
        };
        let started = Instant::now();
        self.encode_parts(&mut pending, None, usize::MAX)?;
        let us = started.elapsed().as_micros() as u64;
        pending.stats.encode_us += us;
        pending.stats.slice_us_max = pending.stats.slice_us_max.max(us);
        let done = self.complete_or_keep(pending);
        debug_assert!(done.is_some());
        Ok(done)
    }

    fn complete_or_keep(&mut self, pending: Pending) -> Option<EncodedSnapshot> {
        if pending.next_group < pending.groups.len() {
            self.pending = Some(pending);
            return None;
        }
        assert!(
            self.pending_parts.is_empty(),
            "checkpoint {}: {} of {} groups encoded, {} parts still pending (first {:?}, {} per group)",
            pending.checkpoint,
            pending.next_group,
            pending.groups.len(),
            self.pending_parts.len(),
            self.pending_parts.iter().next(),
            self.parts_per_group
        );
        Some(EncodedSnapshot {
            checkpoint: pending.checkpoint,
            groups: pending.done,
            stats: pending.stats,
        })
    }

    /// Encodes at most `parts` pending parts, deterministically (tests interleave writes with
    /// partial encoding this way); returns the snapshot once every group is encoded.
    ///
    /// # Errors
    /// An entry failed to encode.
    pub fn encode_parts_at_most(
        &mut self,
        parts: usize,
    ) -> Result<Option<EncodedSnapshot>, SnapshotError> {
        let Some(mut pending) = self.pending.take() else {
            return Ok(None);
        };
        self.encode_parts(&mut pending, None, parts)?;
        Ok(self.complete_or_keep(pending))
    }

    /// Encodes parts in order until the deadline passed (checked after each part) or `parts`
    /// were encoded.
    fn encode_parts(
        &mut self,
        pending: &mut Pending,
        deadline: Option<Instant>,
        parts: usize,
    ) -> Result<(), SnapshotError> {
        let mut encoded = 0;
        while encoded < parts
            && let Some(&local) = pending.groups.get(pending.next_group)
        {
            encoded += 1;
            let part = local as usize * self.parts_per_group + pending.next_part;
            let key_group = self.groups.start + local;
            self.encode_part(part, key_group, &mut pending.buffer)?;
            pending.next_part += 1;
            if pending.next_part == self.parts_per_group {
                let bytes = std::mem::take(&mut pending.buffer);
                pending.stats.bytes += bytes.len() as u64;
                pending.done.push(KeyGroupState { key_group, bytes });
                pending.next_group += 1;
                pending.next_part = 0;
            }
            if deadline.is_some_and(|d| Instant::now() >= d) {
                break;
            }
        }
        Ok(())
    }

    /// Appends the part's entries as of the barrier to `buffer` and takes it out of the
    /// pending set.
    fn encode_part(
        &mut self,
        part: usize,
        key_group: u32,
        buffer: &mut Vec<u8>,
    ) -> Result<(), SnapshotError> {
        assert!(self.pending_parts.remove(part), "part {part} encoded twice");
        let before = std::mem::take(&mut self.before[part]);
        let live = &self.parts[part];
        let encode = |buffer: &mut Vec<u8>, key: &K, value: &V| {
            bincode::serialize_into(buffer, &(key, value)).map_err(|e| SnapshotError::Encode {
                key_group,
                reason: e.to_string(),
            })
        };
        for (key, value) in live {
            match before.get(key) {
                None => encode(buffer, key, value)?,
                Some(Some(old)) => encode(buffer, key, old)?,
                // Created after the barrier.
                Some(None) => {}
            }
        }
        for (key, old) in &before {
            // Removed after the barrier.
            if let Some(old) = old
                && !live.contains_key(key)
            {
                encode(buffer, key, old)?;
            }
        }
        // `before` is dropped with its allocation: keeping it would hold a table the size of
        // the written keys for good.
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::BTreeMap;

    use proptest::prelude::*;

    use super::*;

    type Map = SnapshotMap<u64, u32>;

    fn group_of(key: u64, max_key_groups: u32) -> u32 {
        key_group_of_hash(key.stable_hash(), max_key_groups).0
    }

    fn put(map: &mut Map, key: u64, value: u32) {
        map.update(&key, || 0, |v| *v = value);
    }

    fn decode(groups: &[KeyGroupState]) -> BTreeMap<u64, u32> {
        let mut out = BTreeMap::new();
        for group in groups {
            read_entries::<(u64, u32)>(group, |(k, v)| {
                assert_eq!(group_of(k, 128), group.key_group, "entry in its own group");
                assert!(out.insert(k, v).is_none(), "key {k} encoded twice");
            })
            .unwrap();
        }
        out
    }

    /// Two keys of distinct groups, and one more of the first key's group.
    fn keys() -> (u64, u64, u64) {
        let a = 0u64;
        let b = (1u64..)
            .find(|k| group_of(*k, 128) != group_of(a, 128))
            .unwrap();
        let c = (b + 1..)
            .find(|k| group_of(*k, 128) == group_of(a, 128))
            .unwrap();
        (a, b, c)
    }

    #[test]
    fn only_groups_written_since_the_last_barrier_are_encoded() {
        let (a, b, c) = keys();
        let mut map = Map::new(0..128, 128);
        put(&mut map, a, 1);
        put(&mut map, b, 2);
        map.mark(1);
        let first = map.finish().unwrap().unwrap();
        let groups: Vec<u32> = first.groups.iter().map(|g| g.key_group).collect();
        let mut expected = vec![group_of(a, 128), group_of(b, 128)];
        expected.sort_unstable();
        assert_eq!(groups, expected);
        assert_eq!(decode(&first.groups), BTreeMap::from([(a, 1), (b, 2)]));

        // Only a's group is dirty: it is re-encoded whole (c and a), b's group is left alone.
        put(&mut map, c, 3);
        map.mark(2);
        let second = map.finish().unwrap().unwrap();
        assert_eq!(second.groups.len(), 1);
        assert_eq!(second.groups[0].key_group, group_of(a, 128));
        assert_eq!(decode(&second.groups), BTreeMap::from([(a, 1), (c, 3)]));

        // Nothing written: nothing encoded.
        map.mark(3);
        assert!(map.finish().unwrap().unwrap().groups.is_empty());

        // A group emptied by removals is listed with empty bytes, so the store deletes it.
        map.remove(&b);
        map.mark(4);
        let fourth = map.finish().unwrap().unwrap();
        assert_eq!(fourth.groups.len(), 1);
        assert_eq!(fourth.groups[0].key_group, group_of(b, 128));
        assert!(fourth.groups[0].bytes.is_empty());
    }

    #[test]
    fn a_write_after_the_barrier_does_not_leak_into_the_checkpoint() {
        let (a, b, c) = keys();
        let mut map = Map::new(0..128, 128);
        put(&mut map, a, 1);
        put(&mut map, b, 2);
        map.mark(1);
        // Nothing is encoded yet; records go on: change a, create c, remove b.
        put(&mut map, a, 10);
        put(&mut map, a, 11);
        put(&mut map, c, 30);
        assert_eq!(map.remove(&b), Some(2));
        let first = map.finish().unwrap().unwrap();
        assert_eq!(first.stats.copies, 3, "one before-image per key written");
        assert_eq!(
            decode(&first.groups),
            BTreeMap::from([(a, 1), (b, 2)]),
            "checkpoint 1 is the state at its barrier"
        );
        // The writes after barrier 1 belong to checkpoint 2.
        map.mark(2);
        let second = map.finish().unwrap().unwrap();
        assert_eq!(decode(&second.groups), BTreeMap::from([(a, 11), (c, 30)]));
        let emptied: Vec<u32> = second
            .groups
            .iter()
            .filter(|g| g.bytes.is_empty())
            .map(|g| g.key_group)
            .collect();
        assert_eq!(emptied, vec![group_of(b, 128)]);
    }

    #[test]
    fn writes_to_parts_already_encoded_are_not_copied() {
        let mut map = Map::new(0..128, 128);
        for k in 0..1000 {
            put(&mut map, k, 1);
        }
        map.mark(1);
        while map.encode_parts_at_most(1000).unwrap().is_none() {}
        for k in 0..1000 {
            put(&mut map, k, 2);
        }
        map.mark(2);
        let second = map.finish().unwrap().unwrap();
        assert_eq!(second.stats.copies, 0);
        assert!(decode(&second.groups).values().all(|&v| v == 2));
    }

    #[test]
    fn slices_with_a_time_budget_complete_the_checkpoint() {
        let mut map = Map::new(0..128, 128);
        for round in 0..3u32 {
            for k in 0..20_000 {
                put(&mut map, k, round);
            }
            map.mark(u64::from(round) + 1);
            let mut k = 0;
            let done = loop {
                if let Some(done) = map.encode_for(Duration::ZERO).unwrap() {
                    break done;
                }
                put(&mut map, k % 20_000, 100 + round);
                k += 7;
            };
            assert!(done.stats.slices > 1);
            let expected: BTreeMap<u64, u32> = (0..20_000).map(|k| (k, round)).collect();
            assert_eq!(decode(&done.groups), expected);
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Put(u64, u32),
        Remove(u64),
        Barrier,
        Encode(usize),
        Restart,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            8 => (0u64..300, any::<u32>()).prop_map(|(k, v)| Op::Put(k, v)),
            2 => (0u64..300).prop_map(Op::Remove),
            1 => Just(Op::Barrier),
            3 => (1usize..3000).prop_map(Op::Encode),
            1 => Just(Op::Restart),
        ]
    }

    /// The store as the shard keeps it: the last bytes written per group.
    fn apply(store: &mut BTreeMap<u32, Vec<u8>>, snapshot: EncodedSnapshot) {
        for group in snapshot.groups {
            if group.bytes.is_empty() {
                store.remove(&group.key_group);
            } else {
                store.insert(group.key_group, group.bytes);
            }
        }
    }

    fn restore(store: &BTreeMap<u32, Vec<u8>>, max_key_groups: u32) -> Map {
        let mut map = Map::new(0..max_key_groups, max_key_groups);
        for (&key_group, bytes) in store {
            let state = KeyGroupState {
                key_group,
                bytes: bytes.clone(),
            };
            map.restore(&state).unwrap();
        }
        map
    }

    fn contents(map: &Map) -> BTreeMap<u64, u32> {
        map.iter().map(|(k, v)| (*k, *v)).collect()
    }

    proptest! {
        /// Random writes, barriers, partial encodings and restarts against a plain map: the
        /// store after each completed checkpoint restores exactly the model's state at that
        /// checkpoint's barrier, and a restart resumes from the last completed one.
        #[test]
        fn restored_state_is_the_state_at_the_barrier(
            ops in proptest::collection::vec(op(), 1..300),
            max_key_groups in prop_oneof![Just(1u32), Just(8u32), Just(128u32)],
        ) {
            let mut map = Map::new(0..max_key_groups, max_key_groups);
            let mut model: BTreeMap<u64, u32> = BTreeMap::new();
            let mut store: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
            // The model at the barrier of the pending checkpoint, and at the last completed one.
            let mut at_barrier: Option<BTreeMap<u64, u32>> = None;
            let mut completed: BTreeMap<u64, u32> = BTreeMap::new();
            let mut next_id = 1;
            for op in ops {
                let done = match op {
                    Op::Put(k, v) => {
                        put(&mut map, k, v);
                        model.insert(k, v);
                        None
                    }
                    Op::Remove(k) => {
                        prop_assert_eq!(map.remove(&k), model.remove(&k));
                        None
                    }
                    Op::Barrier => {
                        let early = map.finish().unwrap();
                        if let Some(done) = early {
                            apply(&mut store, done);
                            completed = at_barrier.take().unwrap();
                        }
                        map.mark(next_id);
                        next_id += 1;
                        at_barrier = Some(model.clone());
                        None
                    }
                    Op::Encode(parts) => map.encode_parts_at_most(parts).unwrap(),
                    Op::Restart => {
                        // A crash: whatever was pending is lost; restart from the store.
                        map = restore(&store, max_key_groups);
                        model = completed.clone();
                        at_barrier = None;
                        None
                    }
                };
                if let Some(done) = done {
                    apply(&mut store, done);
                    completed = at_barrier.take().unwrap();
                    prop_assert_eq!(contents(&restore(&store, max_key_groups)), completed.clone());
                }
                prop_assert_eq!(contents(&map), model.clone());
            }
            if let Some(done) = map.finish().unwrap() {
                apply(&mut store, done);
                completed = at_barrier.take().unwrap();
            }
            prop_assert_eq!(contents(&restore(&store, max_key_groups)), completed);
        }
    }
}
