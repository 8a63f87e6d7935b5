//! Rolling keyed aggregation (`KeyedStream::reduce` and `fold`), as Flink's DataStream does it:
//! every input record updates its key's accumulator and emits the updated value.
//!
//! State is a per-shard [`SnapshotMap`](corestrom_runtime::state::snapshot_map::SnapshotMap)
//! in memory, shared (`Rc<RefCell<…>>`) with the shard loop, which encodes checkpoints in the
//! background. Checkpoints are incremental and asynchronous: at a barrier the operator only
//! marks the key groups written since the previous checkpoint; the shard encodes them as
//! `(key, accumulator)` entries between batches, copying an accumulator first when a record is
//! about to change it before its part was encoded, so the snapshot is the state at the barrier.
//! At the end of input the groups written since the last barrier are the final state. A
//! restarted job loads the entries of the key groups its shard owns.
//!
//! Invariants: a key only ever reaches the shard that owns its key group, so the maps of
//! different shards hold disjoint keys; the shard loop never runs a background slice during a
//! `push`, so the cell is never borrowed twice.

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;

use corestrom_runtime::op_scope;
use corestrom_runtime::state::incremental::IncrementalState;
use corestrom_runtime::state::snapshot::StateData;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Record, Signal, StableHash};

/// Barriers and the end of input: mark or finish the state, then pass the signal on.
fn on_signal<K, V, O>(
    signal: Signal,
    state: &RefCell<IncrementalState<K, V>>,
    down: &mut BoxCollector<O>,
) -> OpResult
where
    K: StateData + StableHash + Hash + Eq + Clone,
    V: StateData + Clone,
    O: 'static,
{
    match signal {
        Signal::Barrier(id) => state.borrow_mut().on_barrier(id)?,
        Signal::End => state.borrow_mut().on_end()?,
        _ => {}
    }
    down.signal(signal)
}

pub(crate) struct Reduce<K, T, KF, F> {
    pub(crate) operator: u32,
    pub(crate) key: KF,
    pub(crate) f: F,
    /// `None` only transiently while a record is combined (the stored format is `Option<T>`).
    pub(crate) state: Rc<RefCell<IncrementalState<K, Option<T>>>>,
    pub(crate) out: Batch<T>,
    pub(crate) down: BoxCollector<T>,
}

impl<K, T, KF, F> Collector<T> for Reduce<K, T, KF, F>
where
    K: Eq + Hash + Clone + StateData + StableHash,
    T: Clone + StateData,
    KF: FnMut(&T) -> K + 'static,
    F: FnMut(T, T) -> T + 'static,
{
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        op_scope::enter(self.operator);
        let mut state = self.state.borrow_mut();
        let f = &mut self.f;
        for record in batch.records.drain(..) {
            let key = (self.key)(&record.value);
            let value = state.map.update(
                &key,
                || None,
                |slot| {
                    let value = match slot.take() {
                        Some(acc) => f(acc, record.value),
                        None => record.value,
                    };
                    *slot = Some(value.clone());
                    value
                },
            );
            self.out.records.push(Record {
                ts: record.ts,
                value,
            });
        }
        drop(state);
        self.out.emitted_ns = batch.emitted_ns;
        self.down.push(&mut self.out)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        op_scope::enter(self.operator);
        on_signal(signal, &self.state, &mut self.down)
    }
}

pub(crate) struct Fold<K, A, KF, F> {
    pub(crate) operator: u32,
    pub(crate) key: KF,
    pub(crate) init: A,
    pub(crate) f: F,
    pub(crate) state: Rc<RefCell<IncrementalState<K, A>>>,
    pub(crate) out: Batch<(K, A)>,
    pub(crate) down: BoxCollector<(K, A)>,
}

impl<K, T, A, KF, F> Collector<T> for Fold<K, A, KF, F>
where
    K: Eq + Hash + Clone + StateData + StableHash,
    T: 'static,
    A: Clone + StateData,
    KF: FnMut(&T) -> K + 'static,
    F: FnMut(&mut A, T) + 'static,
{
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        op_scope::enter(self.operator);
        let mut state = self.state.borrow_mut();
        let (init, f) = (&self.init, &mut self.f);
        for record in batch.records.drain(..) {
            let key = (self.key)(&record.value);
            let acc = state.map.update(
                &key,
                || init.clone(),
                |acc| {
                    f(acc, record.value);
                    acc.clone()
                },
            );
            self.out.records.push(Record {
                ts: record.ts,
                value: (key, acc),
            });
        }
        drop(state);
        self.out.emitted_ns = batch.emitted_ns;
        self.down.push(&mut self.out)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        op_scope::enter(self.operator);
        on_signal(signal, &self.state, &mut self.down)
    }
}
