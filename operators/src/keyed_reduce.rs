//! Rolling keyed aggregation (`KeyedStream::reduce` and `fold`), as Flink's DataStream does it:
//! every input record updates its key's accumulator and emits the updated value.
//!
//! State is a per-shard hash map in memory, not yet in the store or in checkpoints (a
//! checkpointing job with this operator is refused; see `JobGraph::set_stateful`).
//! Invariant: a key only ever reaches the shard that owns its key group, so the maps of
//! different shards hold disjoint keys.

use std::hash::Hash;

use corestrom_runtime::op_scope;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Record, Signal};
use rustc_hash::FxHashMap;

pub(crate) struct Reduce<K, T, KF, F> {
    pub(crate) operator: u32,
    pub(crate) key: KF,
    pub(crate) f: F,
    pub(crate) state: FxHashMap<K, Option<T>>,
    pub(crate) out: Batch<T>,
    pub(crate) down: BoxCollector<T>,
}

impl<K, T, KF, F> Collector<T> for Reduce<K, T, KF, F>
where
    K: Eq + Hash + 'static,
    T: Clone + 'static,
    KF: FnMut(&T) -> K + 'static,
    F: FnMut(T, T) -> T + 'static,
{
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        op_scope::enter(self.operator);
        for record in batch.records.drain(..) {
            let slot = self.state.entry((self.key)(&record.value)).or_insert(None);
            let value = match slot.take() {
                Some(acc) => (self.f)(acc, record.value),
                None => record.value,
            };
            *slot = Some(value.clone());
            self.out.records.push(Record {
                ts: record.ts,
                value,
            });
        }
        self.out.emitted_ns = batch.emitted_ns;
        self.down.push(&mut self.out)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }
}

pub(crate) struct Fold<K, A, KF, F> {
    pub(crate) operator: u32,
    pub(crate) key: KF,
    pub(crate) init: A,
    pub(crate) f: F,
    pub(crate) state: FxHashMap<K, A>,
    pub(crate) out: Batch<(K, A)>,
    pub(crate) down: BoxCollector<(K, A)>,
}

impl<K, T, A, KF, F> Collector<T> for Fold<K, A, KF, F>
where
    K: Eq + Hash + Clone + 'static,
    T: 'static,
    A: Clone + 'static,
    KF: FnMut(&T) -> K + 'static,
    F: FnMut(&mut A, T) + 'static,
{
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        op_scope::enter(self.operator);
        for record in batch.records.drain(..) {
            let key = (self.key)(&record.value);
            let acc = match self.state.get_mut(&key) {
                Some(acc) => acc,
                None => self
                    .state
                    .entry(key.clone())
                    .or_insert_with(|| self.init.clone()),
            };
            (self.f)(acc, record.value);
            let acc = acc.clone();
            self.out.records.push(Record {
                ts: record.ts,
                value: (key, acc),
            });
        }
        self.out.emitted_ns = batch.emitted_ns;
        self.down.push(&mut self.out)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }
}
