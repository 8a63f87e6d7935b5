//! Rolling keyed aggregation (`KeyedStream::reduce` and `fold`), as Flink's DataStream does it:
//! every input record updates its key's accumulator and emits the updated value.
//!
//! State is a per-shard hash map in memory. At a checkpoint barrier (and at the end of the
//! input) the whole map is snapshotted as `(key, accumulator)` entries per key group; a
//! restarted job loads the entries of the key groups its shard owns. Invariant: a key only ever reaches the shard that owns its key group, so the maps of
//! different shards hold disjoint keys.

use std::hash::Hash;

use corestrom_runtime::op_scope;
use corestrom_runtime::state::checkpointer::StateCheckpointer;
use corestrom_runtime::state::snapshot::{
    KeyGroupState, KeyGroupWriter, SnapshotError, StateData, read_entries,
};
use corestrom_runtime::{
    Batch, BoxCollector, Collector, OpResult, OperatorError, Record, Signal, StableHash,
};
use rustc_hash::FxHashMap;

/// Loads restored `(key, value)` entries into `state`.
pub(crate) fn restore_map<K: StateData + Eq + Hash, V: StateData>(
    state: &mut FxHashMap<K, V>,
    restored: &[KeyGroupState],
    name: &str,
) -> Result<(), OperatorError> {
    for group in restored {
        read_entries::<(K, V)>(group, |(k, v)| {
            state.insert(k, v);
        })
        .map_err(|e| OperatorError::Failed(format!("restoring operator '{name}': {e}")))?;
    }
    Ok(())
}

fn write_map<K: StateData + StableHash, V: StateData>(
    state: &FxHashMap<K, V>,
    writer: &mut KeyGroupWriter,
) -> Result<(), SnapshotError> {
    for (k, v) in state {
        writer.write(k, &(k, v))?;
    }
    Ok(())
}

/// Barriers and the end of input: snapshot the map, then pass the signal on.
fn on_signal<K: StateData + StableHash, V: StateData, O: 'static>(
    signal: Signal,
    state: &FxHashMap<K, V>,
    checkpointer: Option<&mut StateCheckpointer>,
    down: &mut BoxCollector<O>,
) -> OpResult {
    if let Some(checkpointer) = checkpointer {
        match signal {
            Signal::Barrier(id) => checkpointer.on_barrier(id, |w| write_map(state, w))?,
            Signal::End => checkpointer.on_end(|w| write_map(state, w))?,
            _ => {}
        }
    }
    down.signal(signal)
}

pub(crate) struct Reduce<K, T, KF, F> {
    pub(crate) operator: u32,
    pub(crate) key: KF,
    pub(crate) f: F,
    pub(crate) state: FxHashMap<K, Option<T>>,
    pub(crate) checkpointer: Option<StateCheckpointer>,
    pub(crate) out: Batch<T>,
    pub(crate) down: BoxCollector<T>,
}

impl<K, T, KF, F> Collector<T> for Reduce<K, T, KF, F>
where
    K: Eq + Hash + StateData + StableHash,
    T: Clone + StateData,
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
        op_scope::enter(self.operator);
        on_signal(
            signal,
            &self.state,
            self.checkpointer.as_mut(),
            &mut self.down,
        )
    }
}

pub(crate) struct Fold<K, A, KF, F> {
    pub(crate) operator: u32,
    pub(crate) key: KF,
    pub(crate) init: A,
    pub(crate) f: F,
    pub(crate) state: FxHashMap<K, A>,
    pub(crate) checkpointer: Option<StateCheckpointer>,
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
        op_scope::enter(self.operator);
        on_signal(
            signal,
            &self.state,
            self.checkpointer.as_mut(),
            &mut self.down,
        )
    }
}
