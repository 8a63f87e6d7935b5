//! The typed keyed-state handles and the TTL logic they share.
//!
//! A handle is created empty by the operator instance (or the user function of one shard) and
//! holds its own backend; every call names its [`StateScope`]. An operator instance runs on one
//! shard only, so handles need no locking.

use std::hash::Hash;
use std::marker::PhantomData;

use rustc_hash::FxHashMap;

use super::EntrySink;
use super::snapshot::{SnapshotError, StateData};
use super::{
    AggregateFunction, HeapBackend, SnapshotHandle, StateBackend, StateScope, TTL_SWEEP_WRITES_MIN,
    Ttl, TtlUpdate, VoidNamespace,
};
use crate::hash::StableHash;
use crate::time::EventTime;

/// A stored value and when it expires (`EventTime::MAX` without TTL).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Stamped<V> {
    value: V,
    expires_ms: EventTime,
}

/// Ties a store to its key, namespace and value types without owning any.
type Marker<K, N, V> = PhantomData<fn() -> (K, N, V)>;

/// The TTL layer over a backend: invisible expired entries, lazy removal, amortised sweeps.
#[derive(Debug)]
struct TtlStore<K, N, V, B> {
    backend: B,
    ttl: Option<Ttl>,
    writes_since_sweep: usize,
    _t: Marker<K, N, V>,
}

impl<K, N, V, B> TtlStore<K, N, V, B>
where
    K: 'static,
    N: 'static,
    V: 'static,
    B: StateBackend<K, N, Stamped<V>> + Default,
{
    fn new(ttl: Option<Ttl>) -> Self {
        TtlStore {
            backend: B::default(),
            ttl,
            writes_since_sweep: 0,
            _t: PhantomData,
        }
    }

    fn expiry(&self, now_ms: EventTime) -> EventTime {
        self.ttl
            .map_or(EventTime::MAX, |t| now_ms.saturating_add(t.ttl_ms))
    }

    /// The live entry for update; an expired one is removed first.
    fn get_mut(&mut self, scope: StateScope<'_, K, N>) -> Option<&mut V> {
        let expired = match self.backend.get(scope.key, scope.namespace) {
            None => return None,
            Some(e) => e.expires_ms <= scope.now_ms,
        };
        if expired {
            self.backend.remove(scope.key, scope.namespace);
            return None;
        }
        let touch = matches!(
            self.ttl,
            Some(Ttl {
                update: TtlUpdate::OnReadAndWrite,
                ..
            })
        );
        let expires = self.expiry(scope.now_ms);
        let entry = self.backend.get_mut(scope.key, scope.namespace)?;
        if touch {
            entry.expires_ms = expires;
        }
        Some(&mut entry.value)
    }

    /// Marks the current entry as written (restarts its TTL clock).
    fn touch_write(&mut self, scope: StateScope<'_, K, N>) {
        let expires = self.expiry(scope.now_ms);
        if let Some(entry) = self.backend.get_mut(scope.key, scope.namespace) {
            entry.expires_ms = expires;
        }
        self.after_write(scope.now_ms);
    }

    fn put(&mut self, scope: StateScope<'_, K, N>, value: V) {
        let expires_ms = self.expiry(scope.now_ms);
        self.backend
            .put(scope.key, scope.namespace, Stamped { value, expires_ms });
        self.after_write(scope.now_ms);
    }

    fn remove(&mut self, scope: StateScope<'_, K, N>) -> Option<V> {
        let entry = self.backend.remove(scope.key, scope.namespace)?;
        (entry.expires_ms > scope.now_ms).then_some(entry.value)
    }

    fn after_write(&mut self, now_ms: EventTime) {
        if self.ttl.is_none() {
            return;
        }
        self.writes_since_sweep += 1;
        if self.writes_since_sweep >= self.backend.len().max(TTL_SWEEP_WRITES_MIN) {
            self.writes_since_sweep = 0;
            self.backend
                .retain(&mut |_, _, e: &mut Stamped<V>| e.expires_ms > now_ms);
        }
    }
}

/// Snapshot entries of a handle: `(key, namespace, stamped value)`, each encoded on its own.
impl<K, N, V, B> TtlStore<K, N, V, B>
where
    K: StateData + StableHash,
    N: StateData,
    V: StateData,
    B: StateBackend<K, N, Stamped<V>>,
{
    fn snapshot_entries(&self, each: &mut EntrySink<'_, K>) -> Result<(), SnapshotError> {
        let mut result = Ok(());
        self.backend.for_each(&mut |k, n, v| {
            if result.is_err() {
                return;
            }
            result = bincode::serialize(&(k, n, v))
                .map_err(|e| SnapshotError::Encode {
                    key_group: 0,
                    reason: e.to_string(),
                })
                .and_then(|bytes| each(k, bytes));
        });
        result
    }

    fn restore_entry(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let (k, n, v): (K, N, Stamped<V>) =
            bincode::deserialize(bytes).map_err(|e| SnapshotError::Decode {
                key_group: 0,
                offset: 0,
                len: bytes.len(),
                reason: e.to_string(),
            })?;
        self.backend.put(&k, &n, v);
        Ok(())
    }
}

/// Implements `SnapshotHandle` for a handle type through its `TtlStore`.
macro_rules! snapshot_handle {
    ($name:ident < $($g:ident),* > , $stored:ty, $($bounds:tt)*) => {
        impl<$($g),*> SnapshotHandle<K> for $name<$($g),*>
        where
            K: StateData + StableHash,
            N: StateData,
            $stored: StateData,
            B: StateBackend<K, N, Stamped<$stored>>,
            $($bounds)*
        {
            fn snapshot_entries(
                &self,
                each: &mut EntrySink<'_, K>,
            ) -> Result<(), SnapshotError> {
                self.store.snapshot_entries(each)
            }

            fn restore_entry(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
                self.store.restore_entry(bytes)
            }
        }
    };
}

snapshot_handle!(ValueState<K, N, V, B>, V,);
snapshot_handle!(ListState<K, N, V, B>, Vec<V>,);
snapshot_handle!(MapState<K, N, UK, UV, B>, FxHashMap<UK, UV>, UK: StateData + Hash + Eq, UV: StateData);
snapshot_handle!(ReducingState<K, N, V, F, B>, V,);
snapshot_handle!(AggregatingState<K, N, T, A, B>, A::Acc, A: AggregateFunction<T>,);

macro_rules! handle_common {
    ($name:ident, $stored:ty) => {
        impl<K, N, V, B> $name<K, N, V, B>
        where
            K: 'static,
            N: 'static,
            V: 'static,
            B: StateBackend<K, N, Stamped<$stored>> + Default,
        {
            /// Removes the scope's entry.
            pub fn clear(&mut self, scope: StateScope<'_, K, N>) {
                self.store.remove(scope);
            }

            /// Number of stored entries (expired ones included until swept).
            pub fn entries(&self) -> usize {
                self.store.backend.len()
            }
        }
    };
}

/// One value per (key, namespace) (Flink's `ValueState`).
#[derive(Debug)]
pub struct ValueState<K, N = VoidNamespace, V = (), B = HeapBackend<K, N, Stamped<V>>> {
    store: TtlStore<K, N, V, B>,
}

impl<K, N, V> ValueState<K, N, V>
where
    K: Hash + Eq + Clone + 'static,
    N: Hash + Eq + Clone + 'static,
    V: 'static,
{
    /// An empty value state on the heap, with an optional TTL.
    pub fn new(ttl: Option<Ttl>) -> Self {
        ValueState {
            store: TtlStore::new(ttl),
        }
    }
}

impl<K, N, V, B> ValueState<K, N, V, B>
where
    K: 'static,
    N: 'static,
    V: 'static,
    B: StateBackend<K, N, Stamped<V>> + Default,
{
    /// The live value.
    pub fn value(&mut self, scope: StateScope<'_, K, N>) -> Option<&V> {
        self.store.get_mut(scope).map(|v| &*v)
    }

    /// Replaces the value.
    pub fn update(&mut self, scope: StateScope<'_, K, N>, value: V) {
        self.store.put(scope, value);
    }
}
handle_common!(ValueState, V);

/// A list of values per (key, namespace) (Flink's `ListState`).
#[derive(Debug)]
pub struct ListState<K, N = VoidNamespace, V = (), B = HeapBackend<K, N, Stamped<Vec<V>>>> {
    store: TtlStore<K, N, Vec<V>, B>,
}

impl<K, N, V> ListState<K, N, V>
where
    K: Hash + Eq + Clone + 'static,
    N: Hash + Eq + Clone + 'static,
    V: 'static,
{
    /// An empty list state on the heap, with an optional TTL.
    pub fn new(ttl: Option<Ttl>) -> Self {
        ListState {
            store: TtlStore::new(ttl),
        }
    }
}

impl<K, N, V, B> ListState<K, N, V, B>
where
    K: 'static,
    N: 'static,
    V: 'static,
    B: StateBackend<K, N, Stamped<Vec<V>>> + Default,
{
    /// The live list (empty when absent or expired).
    pub fn get(&mut self, scope: StateScope<'_, K, N>) -> &[V] {
        match self.store.get_mut(scope) {
            Some(list) => list,
            None => &[],
        }
    }

    /// Appends a value.
    pub fn add(&mut self, scope: StateScope<'_, K, N>, value: V) {
        match self.store.get_mut(scope) {
            Some(list) => {
                list.push(value);
                self.store.touch_write(scope);
            }
            None => self.store.put(scope, vec![value]),
        }
    }

    /// Replaces the list.
    pub fn update(&mut self, scope: StateScope<'_, K, N>, values: Vec<V>) {
        self.store.put(scope, values);
    }
}
handle_common!(ListState, Vec<V>);

/// A map per (key, namespace) (Flink's `MapState`), expiring as a whole.
#[derive(Debug)]
pub struct MapState<
    K,
    N = VoidNamespace,
    UK = (),
    UV = (),
    B = HeapBackend<K, N, Stamped<FxHashMap<UK, UV>>>,
> {
    store: TtlStore<K, N, FxHashMap<UK, UV>, B>,
}

impl<K, N, UK, UV> MapState<K, N, UK, UV>
where
    K: Hash + Eq + Clone + 'static,
    N: Hash + Eq + Clone + 'static,
    UK: Hash + Eq + 'static,
    UV: 'static,
{
    /// An empty map state on the heap, with an optional TTL.
    pub fn new(ttl: Option<Ttl>) -> Self {
        MapState {
            store: TtlStore::new(ttl),
        }
    }
}

impl<K, N, UK, UV, B> MapState<K, N, UK, UV, B>
where
    K: 'static,
    N: 'static,
    UK: Hash + Eq + 'static,
    UV: 'static,
    B: StateBackend<K, N, Stamped<FxHashMap<UK, UV>>> + Default,
{
    /// The value under `user_key`.
    pub fn get(&mut self, scope: StateScope<'_, K, N>, user_key: &UK) -> Option<&UV> {
        self.store.get_mut(scope).and_then(|m| m.get(user_key))
    }

    /// Inserts or replaces the value under `user_key`.
    pub fn put(&mut self, scope: StateScope<'_, K, N>, user_key: UK, value: UV) {
        match self.store.get_mut(scope) {
            Some(map) => {
                map.insert(user_key, value);
                self.store.touch_write(scope);
            }
            None => {
                let mut map = FxHashMap::default();
                map.insert(user_key, value);
                self.store.put(scope, map);
            }
        }
    }

    /// Removes the value under `user_key`.
    pub fn remove(&mut self, scope: StateScope<'_, K, N>, user_key: &UK) -> Option<UV> {
        let removed = self.store.get_mut(scope)?.remove(user_key);
        self.store.touch_write(scope);
        removed
    }

    /// The whole live map, if any.
    pub fn entries_of(&mut self, scope: StateScope<'_, K, N>) -> Option<&FxHashMap<UK, UV>> {
        self.store.get_mut(scope).map(|m| &*m)
    }
}

impl<K, N, UK, UV, B> MapState<K, N, UK, UV, B>
where
    K: 'static,
    N: 'static,
    UK: 'static,
    UV: 'static,
    B: StateBackend<K, N, Stamped<FxHashMap<UK, UV>>> + Default,
{
    /// Removes the scope's whole map.
    pub fn clear(&mut self, scope: StateScope<'_, K, N>) {
        self.store.remove(scope);
    }
}

/// A value per (key, namespace) combined with each addition by a reduce function (Flink's
/// `ReducingState`).
pub struct ReducingState<K, N, V, F, B = HeapBackend<K, N, Stamped<V>>> {
    store: TtlStore<K, N, V, B>,
    reduce: F,
}

impl<K, N, V, F> ReducingState<K, N, V, F>
where
    K: Hash + Eq + Clone + 'static,
    N: Hash + Eq + Clone + 'static,
    V: Clone + 'static,
    F: FnMut(V, V) -> V,
{
    /// An empty reducing state on the heap.
    pub fn new(reduce: F, ttl: Option<Ttl>) -> Self {
        ReducingState {
            store: TtlStore::new(ttl),
            reduce,
        }
    }
}

impl<K, N, V, F, B> ReducingState<K, N, V, F, B>
where
    K: 'static,
    N: 'static,
    V: Clone + 'static,
    F: FnMut(V, V) -> V,
    B: StateBackend<K, N, Stamped<V>> + Default,
{
    /// The reduced value.
    pub fn get(&mut self, scope: StateScope<'_, K, N>) -> Option<&V> {
        self.store.get_mut(scope).map(|v| &*v)
    }

    /// Combines `value` into the state.
    pub fn add(&mut self, scope: StateScope<'_, K, N>, value: V) {
        let next = match self.store.remove(scope) {
            Some(acc) => (self.reduce)(acc, value),
            None => value,
        };
        self.store.put(scope, next);
    }

    /// Removes the scope's value.
    pub fn clear(&mut self, scope: StateScope<'_, K, N>) {
        self.store.remove(scope);
    }
}

/// An accumulator per (key, namespace) of an [`AggregateFunction`] (Flink's
/// `AggregatingState`).
pub struct AggregatingState<
    K,
    N,
    T,
    A: AggregateFunction<T>,
    B = HeapBackend<K, N, Stamped<<A as AggregateFunction<T>>::Acc>>,
> {
    store: TtlStore<K, N, A::Acc, B>,
    agg: A,
    _t: PhantomData<fn(T)>,
}

impl<K, N, T, A> AggregatingState<K, N, T, A>
where
    K: Hash + Eq + Clone + 'static,
    N: Hash + Eq + Clone + 'static,
    A: AggregateFunction<T>,
{
    /// An empty aggregating state on the heap.
    pub fn new(agg: A, ttl: Option<Ttl>) -> Self {
        AggregatingState {
            store: TtlStore::new(ttl),
            agg,
            _t: PhantomData,
        }
    }
}

impl<K, N, T, A, B> AggregatingState<K, N, T, A, B>
where
    K: 'static,
    N: 'static,
    A: AggregateFunction<T>,
    B: StateBackend<K, N, Stamped<A::Acc>> + Default,
{
    /// The aggregate's current result, if anything was added.
    pub fn get(&mut self, scope: StateScope<'_, K, N>) -> Option<A::Out> {
        let agg = &self.agg;
        self.store.get_mut(scope).map(|acc| agg.get_result(acc))
    }

    /// Adds a value.
    pub fn add(&mut self, scope: StateScope<'_, K, N>, value: T) {
        match self.store.get_mut(scope) {
            Some(acc) => {
                self.agg.add(value, acc);
                self.store.touch_write(scope);
            }
            None => {
                let mut acc = self.agg.create_accumulator();
                self.agg.add(value, &mut acc);
                self.store.put(scope, acc);
            }
        }
    }

    /// Removes the scope's accumulator.
    pub fn clear(&mut self, scope: StateScope<'_, K, N>) {
        self.store.remove(scope);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(key: &u32, now_ms: EventTime) -> StateScope<'_, u32> {
        StateScope {
            key,
            namespace: &VoidNamespace,
            now_ms,
        }
    }

    #[test]
    fn value_state_is_per_key_and_expires_after_write() {
        let mut s: ValueState<u32, VoidNamespace, u64> =
            ValueState::new(Some(Ttl::after_write(Duration::from_millis(10))));
        s.update(at(&1, 0), 5);
        s.update(at(&2, 5), 6);
        assert_eq!(s.value(at(&1, 9)), Some(&5));
        assert_eq!(s.value(at(&1, 10)), None, "expired at write + ttl");
        assert_eq!(s.entries(), 1, "the expired read removed the entry");
        assert_eq!(s.value(at(&2, 14)), Some(&6));
    }

    #[test]
    fn read_restarts_the_clock_with_after_access() {
        let mut s: ValueState<u32, VoidNamespace, u64> =
            ValueState::new(Some(Ttl::after_access(Duration::from_millis(10))));
        s.update(at(&1, 0), 5);
        assert_eq!(s.value(at(&1, 8)), Some(&5));
        assert_eq!(s.value(at(&1, 16)), Some(&5));
        assert_eq!(s.value(at(&1, 26)), None);
    }

    #[test]
    fn sweeps_drop_expired_entries_without_reads() {
        let mut s: ValueState<u32, VoidNamespace, u64> =
            ValueState::new(Some(Ttl::after_write(Duration::from_millis(10))));
        for k in 0..TTL_SWEEP_WRITES_MIN as u32 {
            s.update(at(&k, 0), 1);
        }
        // As many writes as entries (to one live key) trigger a sweep of the expired ones.
        for _ in 0..=TTL_SWEEP_WRITES_MIN {
            s.update(at(&1_000_000, 100), 1);
        }
        assert_eq!(s.entries(), 1);
    }

    #[test]
    fn list_map_reducing_and_aggregating_state() {
        let mut l: ListState<u32, VoidNamespace, u8> = ListState::new(None);
        l.add(at(&1, 0), 1);
        l.add(at(&1, 0), 2);
        assert_eq!(l.get(at(&1, 0)), &[1, 2]);
        assert_eq!(l.get(at(&2, 0)), &[] as &[u8]);

        let mut m: MapState<u32, VoidNamespace, &str, u8> = MapState::new(None);
        m.put(at(&1, 0), "a", 1);
        m.put(at(&1, 0), "b", 2);
        assert_eq!(m.get(at(&1, 0), &"b"), Some(&2));
        assert_eq!(m.remove(at(&1, 0), &"a"), Some(1));
        assert_eq!(m.entries_of(at(&1, 0)).map(|m| m.len()), Some(1));

        let mut r = ReducingState::<u32, VoidNamespace, u64, _>::new(|a, b| a.max(b), None);
        r.add(at(&1, 0), 3);
        r.add(at(&1, 0), 9);
        r.add(at(&1, 0), 4);
        assert_eq!(r.get(at(&1, 0)), Some(&9));

        #[derive(Clone)]
        struct Avg;
        impl AggregateFunction<u64> for Avg {
            type Acc = (u64, u64);
            type Out = f64;
            fn create_accumulator(&self) -> (u64, u64) {
                (0, 0)
            }
            fn add(&self, v: u64, acc: &mut (u64, u64)) {
                acc.0 += v;
                acc.1 += 1;
            }
            fn get_result(&self, acc: &(u64, u64)) -> f64 {
                acc.0 as f64 / acc.1 as f64
            }
            fn merge(&self, acc: &mut (u64, u64), o: &(u64, u64)) {
                acc.0 += o.0;
                acc.1 += o.1;
            }
        }
        let mut a = AggregatingState::<u32, VoidNamespace, u64, Avg>::new(Avg, None);
        a.add(at(&1, 0), 2);
        a.add(at(&1, 0), 4);
        assert_eq!(a.get(at(&1, 0)), Some(3.0));
        a.clear(at(&1, 0));
        assert_eq!(a.get(at(&1, 0)), None);
    }
}
