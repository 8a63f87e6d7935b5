//! [`FinalTable`]: the unwindowed, updating queries (q15–q19) as a keyed process function that
//! keeps one state value per key and emits the key's final rows when the input ends.
//!
//! In Flink these queries produce a changelog (every bid updates or retracts a row). FORMAT.md
//! asks an updating query for its final table, one row (or, for a top-N, a few rows) per key
//! after the input ends; so the state is updated in place per record and read once, from an
//! event-time timer at `END_OF_TIME` that fires when the final watermark arrives. Nothing is
//! emitted per record.
//!
//! State: the per-shard map from key to state value ([`FinalTableState`]), separate from the
//! logic, serde-serialisable for checkpoints. Invariant: a key is in the map exactly when its
//! end-of-input timer is registered.
//!
//! One timer per key, although one per shard would do (the shard's instance holds all its
//! keys): each timer emits one key's rows, and the operator flushes its output between timers,
//! so the final table leaves in bounded batches instead of one batch of millions of rows.

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_operators::prelude::*;
use corestrom_operators::state::SnapshotHandle;
use corestrom_runtime::END_OF_TIME;
use rustc_hash::FxHashMap;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Keyed state `S` per key `K`, changed by `update(state, record)` and turned into output rows
/// by `emit(key, state, rows)` at the end of input.
pub struct FinalTable<K, S, O, U, E> {
    state: FinalTableState<K, S>,
    update: U,
    emit: E,
    _out: PhantomData<fn() -> O>,
}

impl<K: Clone, S: Clone, O, U: Clone, E: Clone> Clone for FinalTable<K, S, O, U, E> {
    fn clone(&self) -> Self {
        FinalTable {
            state: self.state.clone(),
            update: self.update.clone(),
            emit: self.emit.clone(),
            _out: PhantomData,
        }
    }
}

/// What a [`FinalTable`] keeps per shard: each of its keys' state.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(bound = "K: Serialize + DeserializeOwned + Eq + Hash, S: Serialize + DeserializeOwned")]
pub struct FinalTableState<K, S> {
    table: FxHashMap<K, S>,
}

impl<K, S, O, U, E> FinalTable<K, S, O, U, E> {
    pub fn new(update: U, emit: E) -> Self {
        FinalTable {
            state: FinalTableState {
                table: FxHashMap::default(),
            },
            update,
            emit,
            _out: PhantomData,
        }
    }
}

impl<K, S, I, O, U, E> KeyedProcessFunction<K, I> for FinalTable<K, S, O, U, E>
where
    K: Clone + Eq + Hash + Send + Sync + Serialize + DeserializeOwned + StableHash + 'static,
    S: Default + Clone + Send + Sync + Serialize + DeserializeOwned + 'static,
    I: 'static,
    O: Clone + Send + 'static,
    U: FnMut(&mut S, I) + Clone + Send + Sync + 'static,
    E: FnMut(&K, S, &mut dyn FnMut(O)) + Clone + Send + Sync + 'static,
{
    type Out = O;
    type Side = ();

    fn process_element(&mut self, value: I, ctx: &mut ProcessContext<'_, K, O, ()>) {
        // One lookup for a key already seen (the common case); a new key pays a second one.
        if let Some(state) = self.state.table.get_mut(ctx.key()) {
            (self.update)(state, value);
            return;
        }
        let mut state = S::default();
        (self.update)(&mut state, value);
        self.state.table.insert(ctx.key().clone(), state);
        ctx.register_event_time_timer(END_OF_TIME);
    }

    fn on_timer(&mut self, _timestamp: EventTime, ctx: &mut ProcessContext<'_, K, O, ()>) {
        if let Some(state) = self.state.table.remove(ctx.key()) {
            let key = ctx.key().clone();
            (self.emit)(&key, state, &mut |row| ctx.output(row));
        }
    }

    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<K>>> {
        Some(vec![&mut self.state.table])
    }
}
