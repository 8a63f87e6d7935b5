//! The in-memory state backend: one hash map per state handle of one operator instance.
//!
//! Invariant: a key only reaches the shard that owns its key group, so the maps of different
//! shards hold disjoint keys and need no synchronisation.

use std::hash::Hash;

use rustc_hash::FxHashMap;

use super::StateBackend;

/// Entries in a hash map, in memory.
#[derive(Debug)]
pub struct HeapBackend<K, N, V> {
    entries: FxHashMap<(K, N), V>,
}

impl<K, N, V> Default for HeapBackend<K, N, V> {
    fn default() -> Self {
        HeapBackend {
            entries: FxHashMap::default(),
        }
    }
}

impl<K, N, V> StateBackend<K, N, V> for HeapBackend<K, N, V>
where
    K: Hash + Eq + Clone + 'static,
    N: Hash + Eq + Clone + 'static,
    V: 'static,
{
    fn get(&self, key: &K, namespace: &N) -> Option<&V> {
        self.entries.get(&(key.clone(), namespace.clone()))
    }

    fn get_mut(&mut self, key: &K, namespace: &N) -> Option<&mut V> {
        self.entries.get_mut(&(key.clone(), namespace.clone()))
    }

    fn put(&mut self, key: &K, namespace: &N, value: V) {
        self.entries.insert((key.clone(), namespace.clone()), value);
    }

    fn remove(&mut self, key: &K, namespace: &N) -> Option<V> {
        self.entries.remove(&(key.clone(), namespace.clone()))
    }

    fn len(&self) -> usize {
        self.entries.len()
    }

    fn retain(&mut self, keep: &mut dyn FnMut(&K, &N, &mut V) -> bool) {
        self.entries.retain(|(k, n), v| keep(k, n, v));
    }

    fn for_each(&self, visit: &mut dyn FnMut(&K, &N, &V)) {
        for ((k, n), v) in &self.entries {
            visit(k, n, v);
        }
    }
}
