//! Keyed-state snapshots: how an operator's keyed state becomes bytes per key group at a
//! checkpoint barrier, and comes back when a job restarts from that checkpoint.
//!
//! An operator instance writes every entry of its keyed state (accumulators, panes, timers,
//! state handles) through a [`KeyGroupWriter`], which appends the serde encoding (bincode,
//! fixed-width little-endian integers) of the entry to the buffer of the entry's key group. The
//! key group is computed from the entry's key with the same stable hash `key_by` routes by, so
//! a key group's bytes are self-contained: they can be loaded by whichever shard owns the group
//! after a restart (with the same or, through savepoints, another shard count).
//!
//! Invariants:
//! - Every entry's key group lies in the writing shard's range: `key_by` delivers only keys of
//!   owned groups, so a key outside means a routing bug, and the writer asserts it.
//! - The bytes of a key group are a plain concatenation of entries, each one serde value, read
//!   back in order by [`read_entries`]; an operator that writes several kinds of entries writes
//!   an enum. Nothing else frames them: the store frames and checksums the whole buffer.

use std::ops::Range;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::hash::{StableHash, key_group_of_hash};

/// Types that keyed state can hold and checkpoints can encode: anything serde can serialize
/// and deserialize (derive `Serialize` and `Deserialize`).
pub trait StateData: Serialize + DeserializeOwned + 'static {}
impl<T: Serialize + DeserializeOwned + 'static> StateData for T {}

/// Why state could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// Serde could not encode an entry.
    #[error("encoding keyed state of key group {key_group}: {reason}")]
    Encode {
        /// The entry's key group.
        key_group: u32,
        /// What serde said.
        reason: String,
    },
    /// Restored bytes do not decode as this operator's entries (another job graph, or changed
    /// state types).
    #[error(
        "restoring keyed state of key group {key_group}: entry at byte {offset} of {len} does not decode: {reason}"
    )]
    Decode {
        /// The key group.
        key_group: u32,
        /// Offset of the entry that failed.
        offset: usize,
        /// Length of the key group's bytes.
        len: usize,
        /// What serde said.
        reason: String,
    },
}

/// One key group's encoded state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyGroupState {
    /// The key group.
    pub key_group: u32,
    /// Concatenated entries.
    pub bytes: Vec<u8>,
}

/// Which key groups an [`OperatorState`] speaks for, and so what the store does with the
/// groups it does not list.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Every group with state is listed: a group the store holds and the snapshot does not
    /// list has become empty and is deleted.
    Full,
    /// Only the groups written since the previous checkpoint are listed (empty bytes: the
    /// group became empty, delete it); the others keep their store entries.
    Dirty,
}

/// One operator instance's state at a checkpoint.
#[derive(Clone, Debug)]
pub struct OperatorState {
    /// The operator's node id.
    pub operator: u32,
    /// The operator's key in manifests (`node:name`).
    pub name: String,
    /// Its key groups (shared: an ended operator's final state serves every later checkpoint).
    pub groups: std::rc::Rc<[KeyGroupState]>,
    /// What the groups stand for.
    pub coverage: Coverage,
}

/// Collects one operator instance's entries into per-key-group buffers.
#[derive(Debug)]
pub struct KeyGroupWriter {
    groups: Range<u32>,
    max_key_groups: u32,
    buffers: Vec<Vec<u8>>,
}

impl KeyGroupWriter {
    /// A writer for a shard owning `groups` out of `max_key_groups`.
    pub fn new(groups: Range<u32>, max_key_groups: u32) -> Self {
        assert!(groups.start <= groups.end && groups.end <= max_key_groups);
        KeyGroupWriter {
            buffers: vec![Vec::new(); (groups.end - groups.start) as usize],
            groups,
            max_key_groups,
        }
    }

    /// The key group of `key`.
    pub fn key_group_of<K: StableHash + ?Sized>(&self, key: &K) -> u32 {
        key_group_of_hash(key.stable_hash(), self.max_key_groups).0
    }

    /// Appends `entry`, which belongs to `key`, to the key's group.
    ///
    /// # Errors
    /// Serde failed to encode the entry.
    pub fn write<K: StableHash + ?Sized, E: Serialize + ?Sized>(
        &mut self,
        key: &K,
        entry: &E,
    ) -> Result<(), SnapshotError> {
        let group = self.key_group_of(key);
        assert!(
            self.groups.contains(&group),
            "key group {group} of a key in keyed state is outside this shard's groups {:?}: \
             a key reached a shard that does not own it",
            self.groups
        );
        let buffer = &mut self.buffers[(group - self.groups.start) as usize];
        bincode::serialize_into(buffer, entry).map_err(|e| SnapshotError::Encode {
            key_group: group,
            reason: e.to_string(),
        })
    }

    /// Every owned key group's bytes (empty for groups without state), in group order.
    pub fn finish(self) -> Vec<KeyGroupState> {
        let start = self.groups.start;
        self.buffers
            .into_iter()
            .enumerate()
            .map(|(i, bytes)| KeyGroupState {
                key_group: start + i as u32,
                bytes,
            })
            .collect()
    }
}

/// Encodes one entry on its own (what a state handle hands to a snapshot).
///
/// # Errors
/// Serde failed to encode it.
pub fn encode_entry<T: Serialize + ?Sized>(entry: &T) -> Result<Vec<u8>, SnapshotError> {
    bincode::serialize(entry).map_err(|e| SnapshotError::Encode {
        key_group: 0,
        reason: e.to_string(),
    })
}

/// Decodes one entry written by [`encode_entry`].
///
/// # Errors
/// The bytes do not decode as `T`.
pub fn decode_entry<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, SnapshotError> {
    bincode::deserialize(bytes).map_err(|e| SnapshotError::Decode {
        key_group: 0,
        offset: 0,
        len: bytes.len(),
        reason: e.to_string(),
    })
}

/// Decodes the entries of one key group's bytes, in the order they were written.
///
/// # Errors
/// An entry that does not decode, with its offset.
pub fn read_entries<E: DeserializeOwned>(
    state: &KeyGroupState,
    mut each: impl FnMut(E),
) -> Result<(), SnapshotError> {
    let len = state.bytes.len();
    let mut rest: &[u8] = &state.bytes;
    while !rest.is_empty() {
        let offset = len - rest.len();
        let entry: E = bincode::deserialize_from(&mut rest).map_err(|e| SnapshotError::Decode {
            key_group: state.key_group,
            offset,
            len,
            reason: e.to_string(),
        })?;
        each(entry);
    }
    Ok(())
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::hash::key_group_range;

    #[test]
    fn entries_round_trip_by_key_group() {
        let groups = key_group_range(1, 128, 2);
        let mut writer = KeyGroupWriter::new(groups.clone(), 128);
        let mut expected = std::collections::BTreeMap::new();
        let mut key = 0u64;
        while expected.len() < 500 {
            let group = writer.key_group_of(&key);
            if groups.contains(&group) {
                writer.write(&key, &(key, format!("v{key}"))).unwrap();
                expected.insert(key, format!("v{key}"));
            }
            key += 1;
        }
        let parts = writer.finish();
        assert_eq!(parts.len(), groups.len());
        let mut restored = std::collections::BTreeMap::new();
        for part in &parts {
            read_entries::<(u64, String)>(part, |(k, v)| {
                assert_eq!(
                    key_group_of_hash(k.stable_hash(), 128).0,
                    part.key_group,
                    "entry stored under its own key group"
                );
                restored.insert(k, v);
            })
            .unwrap();
        }
        assert_eq!(restored, expected);
    }

    #[test]
    #[should_panic(expected = "outside this shard's groups")]
    fn a_key_of_another_shard_is_refused() {
        let mut writer = KeyGroupWriter::new(key_group_range(0, 128, 2), 128);
        let foreign = (0u64..).find(|k| writer.key_group_of(k) >= 64).unwrap();
        writer.write(&foreign, &foreign).unwrap();
    }

    #[test]
    fn a_truncated_entry_names_its_offset() {
        let mut writer = KeyGroupWriter::new(0..1, 1);
        writer.write(&1u64, &(1u64, "first".to_string())).unwrap();
        writer.write(&2u64, &(2u64, "second".to_string())).unwrap();
        let mut part = writer.finish().pop().unwrap();
        let first_len = bincode::serialized_size(&(1u64, "first")).unwrap() as usize;
        part.bytes.truncate(part.bytes.len() - 3);
        let err = read_entries::<(u64, String)>(&part, |_| {}).unwrap_err();
        match err {
            SnapshotError::Decode { offset, .. } => assert_eq!(offset, first_len),
            other => panic!("unexpected {other}"),
        }
    }
}
