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
//! Storage (not wired yet): the shard's log-structured store (`corestrom-storage`, async get and
//! put) will implement `StateBackend` through a write-back cache: the cache is the synchronous
//! `StateBackend` the handles see; an operator prefetches the keys of a batch (async gets for
//! the cache misses) before it processes the batch, so processing never waits per record; dirty
//! entries are written back on eviction (within the shard's memory budget) and all of them when
//! a checkpoint barrier seals the store, so a hot key does not touch the disk per record and the
//! checkpoint contains everything. Keys and values will then need an rkyv encoding; the handles'
//! API does not change.
//!
//! Lookups build an owned `(key, namespace)` pair, so keys are cloned per access: cheap for the
//! integer and small keys of typical jobs; windows keep their own pane maps for the hot path.

mod aggregate;
mod handles;
mod heap;

pub use aggregate::AggregateFunction;
pub use handles::{AggregatingState, ListState, MapState, ReducingState, ValueState};
pub use heap::HeapBackend;

use crate::time::EventTime;

/// Writes between two full TTL sweeps of a handle, at the least.
pub const TTL_SWEEP_WRITES_MIN: usize = 1024;

/// The namespace of state outside windows.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
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
}
