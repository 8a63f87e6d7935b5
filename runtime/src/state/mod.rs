//! Keyed state: value, list, map, reducing and aggregating state scoped to (current key,
//! namespace), with optional time-to-live, as Flink's keyed state primitives.
//!
//! Layers:
//! - [`StateBackend`]: the narrow storage trait one state handle of one operator instance uses:
//!   get / get_mut / put / remove / retain over `(key, namespace) → entry`. [`HeapBackend`] is
//!   the in-memory implementation used today.
//! - Handles ([`ValueState`], [`ListState`], [`MapState`], [`ReducingState`],
//!   [`AggregatingState`]): typed views that add TTL and the per-type operations. Every access
//!   names its [`StateScope`]: the current key, the namespace ([`VoidNamespace`] outside
//!   windows) and the processing time used by TTL, read once per batch by the operator.
//!
//! TTL (Flink's `StateTtlConfig` with `NeverReturnExpired`): an entry expires `ttl` after its
//! last write ([`TtlUpdate::OnCreateAndWrite`], the default) or its last read or write
//! ([`TtlUpdate::OnReadAndWrite`]). Expired entries are invisible: a read of one removes it and
//! returns nothing. Cleanup is lazy on access plus an amortised full sweep: after as many writes
//! as the handle holds entries (at least `TTL_SWEEP_WRITES_MIN`), the handle drops every expired
//! entry, so memory follows the live entries without any per-record scan. List and map state
//! expire as a whole entry, not per element (Flink expires list elements and map entries
//! individually; this is coarser but never returns expired data written before the last write).
//!
//! Checkpoints ([`snapshot`], [`checkpointer`]): state lives in memory while the job runs.
//! Two ways to snapshot it:
//! - Full and synchronous: at the barrier the operator encodes all of it (serde,
//!   [`snapshot::StateData`]) per key group (windows, process functions, joins today).
//! - Incremental and asynchronous ([`snapshot_map`], [`background`]): the operator keeps its
//!   state in a [`snapshot_map::SnapshotMap`], which tracks dirty key groups; the barrier only
//!   marks them, the shard encodes them between batches with copy-on-write of the keys written
//!   meanwhile, and only those groups are written (the rolling fold and reduce).
//!
//! Either way the shard writes the groups into its log-structured store (`corestrom-storage`)
//! and seals it; the store is cumulative, so a position holds every group's last write. A
//! restarted job reads it back. A process function lists the handles it keeps
//! ([`SnapshotHandle`]) so they are part of the snapshot.
//!
//! Not yet: state larger than memory. The plan is a write-back cache over the store as the
//! `StateBackend`: an operator prefetches the keys of a batch (async gets for cache misses)
//! before processing it, dirty entries are written back on eviction and at the barrier, so a
//! hot key never touches the disk per record and a checkpoint writes only what changed.
//!
//! Lookups build an owned `(key, namespace)` pair, so keys are cloned per access: cheap for the
//! integer and small keys of typical jobs; windows keep their own pane maps for the hot path.

mod aggregate;
pub mod background;
pub mod bitset;
pub mod checkpointer;
mod handles;
mod heap;
pub mod incremental;
pub mod snapshot;
pub mod snapshot_map;

pub use aggregate::AggregateFunction;
pub use handles::Stamped;
pub use handles::{AggregatingState, ListState, MapState, ReducingState, ValueState};
pub use heap::HeapBackend;

use crate::time::EventTime;

/// Writes between two full TTL sweeps of a handle, at the least.
pub const TTL_SWEEP_WRITES_MIN: usize = 1024;

/// The namespace of state outside windows.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
pub struct VoidNamespace;

/// Where one state access applies.
#[derive(Debug)]
pub struct StateScope<'a, K, N = VoidNamespace> {
    /// The current key.
    pub key: &'a K,
    /// The namespace (a window, or `VoidNamespace`).
    pub namespace: &'a N,
    /// Processing time (ms since the epoch) for TTL, read once per batch.
    pub now_ms: EventTime,
}

impl<K, N> Clone for StateScope<'_, K, N> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K, N> Copy for StateScope<'_, K, N> {}

/// When a TTL entry's clock restarts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TtlUpdate {
    /// On creation and every write (Flink's default).
    OnCreateAndWrite,
    /// On every read and write.
    OnReadAndWrite,
}

/// Time-to-live of state entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ttl {
    /// How long an entry lives after its clock restarted, in ms.
    pub ttl_ms: i64,
    /// What restarts the clock.
    pub update: TtlUpdate,
}

impl Ttl {
    /// Entries expire `ttl` after their last write.
    pub fn after_write(ttl: std::time::Duration) -> Self {
        let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
        assert!(ttl_ms > 0, "a TTL must be at least 1 ms");
        Ttl {
            ttl_ms,
            update: TtlUpdate::OnCreateAndWrite,
        }
    }

    /// Entries expire `ttl` after their last read or write.
    pub fn after_access(ttl: std::time::Duration) -> Self {
        Ttl {
            update: TtlUpdate::OnReadAndWrite,
            ..Ttl::after_write(ttl)
        }
    }
}

/// The narrow storage interface of one state handle: entries by (key, namespace).
pub trait StateBackend<K, N, V>: 'static {
    /// The entry, if present.
    fn get(&self, key: &K, namespace: &N) -> Option<&V>;
    /// The entry for update, if present.
    fn get_mut(&mut self, key: &K, namespace: &N) -> Option<&mut V>;
    /// Inserts or replaces the entry.
    fn put(&mut self, key: &K, namespace: &N, value: V);
    /// Removes and returns the entry.
    fn remove(&mut self, key: &K, namespace: &N) -> Option<V>;
    /// Number of entries (expired ones included until swept).
    fn len(&self) -> usize;
    /// True when there is no entry.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Keeps the entries for which `keep` is true.
    fn retain(&mut self, keep: &mut dyn FnMut(&K, &N, &mut V) -> bool);
    /// Visits every entry (for snapshots).
    fn for_each(&self, visit: &mut dyn FnMut(&K, &N, &V));
}

/// A plain per-key map kept by a process function (keyed by the operator's key) snapshots like
/// a state handle: one `(key, value)` entry per key.
impl<K, V, H> SnapshotHandle<K> for std::collections::HashMap<K, V, H>
where
    K: snapshot::StateData + crate::hash::StableHash + Eq + std::hash::Hash,
    V: snapshot::StateData,
    H: std::hash::BuildHasher + 'static,
{
    fn snapshot_entries(&self, each: &mut EntrySink<'_, K>) -> Result<(), snapshot::SnapshotError> {
        for (key, value) in self {
            each(key, snapshot::encode_entry(&(key, value))?)?;
        }
        Ok(())
    }

    fn restore_entry(&mut self, bytes: &[u8]) -> Result<(), snapshot::SnapshotError> {
        let (key, value): (K, V) = snapshot::decode_entry(bytes)?;
        self.insert(key, value);
        Ok(())
    }
}

/// Receives each encoded entry of a state handle with its key (see [`SnapshotHandle`]).
pub type EntrySink<'a, K> = dyn FnMut(&K, Vec<u8>) -> Result<(), snapshot::SnapshotError> + 'a;

/// A keyed state handle whose entries a checkpoint can snapshot and restore: what a keyed
/// process function lists in `state_handles`.
pub trait SnapshotHandle<K> {
    /// Encodes every entry (expired ones included until swept) and hands it over with its key.
    ///
    /// # Errors
    /// An entry failed to encode, or `each` failed.
    fn snapshot_entries(&self, each: &mut EntrySink<'_, K>) -> Result<(), snapshot::SnapshotError>;
    /// Loads one entry written by `snapshot_entries`.
    ///
    /// # Errors
    /// The bytes do not decode as this handle's entry.
    fn restore_entry(&mut self, bytes: &[u8]) -> Result<(), snapshot::SnapshotError>;
}
