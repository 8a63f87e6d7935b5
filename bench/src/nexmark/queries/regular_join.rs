//! [`RegularJoin`]: SQL's unwindowed inner equi-join of two streams (Flink's streaming
//! `INNER JOIN` without a time-windowed condition), as a keyed co-process function.
//!
//! Both inputs are keyed by the join key; each side's records are kept in keyed list state for
//! the whole run (Flink keeps them too: no state TTL is set in the benchmark, SPEC.md §3.0), so
//! a record is matched with every record of the other side that arrived before it and, later,
//! with every one that arrives after it. Each matching pair is thus emitted exactly once, when
//! its second record arrives, whatever the interleaving of the two inputs: the multiset of
//! results does not depend on arrival order or on the number of shards. The output is
//! append-only, as the inner join of two insert-only streams is.
//!
//! `join(left, right)` builds the output row of a pair, or `None` for a pair that fails a
//! residual (non-equi) condition, e.g. q4's and q9's `B.dateTime BETWEEN A.dateTime AND
//! A.expires`. Callers project each side to the columns they need before the join, since every
//! record stays in state.
//!
//! State: two [`ListState`] handles (one list per key and side), per shard.

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_operators::prelude::*;
use corestrom_operators::state::snapshot::StateData;
use corestrom_operators::state::{ListState, SnapshotHandle, VoidNamespace};

/// Inner equi-join of `L` and `R` records of one key `K`, emitting `join(l, r)` per pair.
pub struct RegularJoin<K, L, R, O, F> {
    lefts: ListState<K, VoidNamespace, L>,
    rights: ListState<K, VoidNamespace, R>,
    join: F,
    _out: PhantomData<fn() -> O>,
}

impl<K, L, R, O, F> RegularJoin<K, L, R, O, F>
where
    K: Eq + Hash + Clone + 'static,
    L: 'static,
    R: 'static,
{
    pub fn new(join: F) -> Self {
        RegularJoin {
            lefts: ListState::new(None),
            rights: ListState::new(None),
            join,
            _out: PhantomData,
        }
    }
}

impl<K, L, R, O, F: Clone> Clone for RegularJoin<K, L, R, O, F>
where
    K: Eq + Hash + Clone + 'static,
    L: 'static,
    R: 'static,
{
    /// Each shard's instance starts with empty state and a copy of the join function.
    fn clone(&self) -> Self {
        RegularJoin::new(self.join.clone())
    }
}

impl<K, L, R, O, F> KeyedCoProcessFunction<K, L, R> for RegularJoin<K, L, R, O, F>
where
    K: Eq + Hash + Clone + Send + Sync + StableHash + StateData,
    L: Send + Sync + StateData,
    R: Send + Sync + StateData,
    O: Clone + Send + 'static,
    F: FnMut(&L, &R) -> Option<O> + Clone + Send + Sync + 'static,
{
    type Out = O;
    type Side = ();

    fn process_element1(&mut self, left: L, ctx: &mut ProcessContext<'_, K, O, ()>) {
        for right in self.rights.get(ctx.state()) {
            if let Some(row) = (self.join)(&left, right) {
                ctx.output(row);
            }
        }
        self.lefts.add(ctx.state(), left);
    }

    fn process_element2(&mut self, right: R, ctx: &mut ProcessContext<'_, K, O, ()>) {
        for left in self.lefts.get(ctx.state()) {
            if let Some(row) = (self.join)(left, &right) {
                ctx.output(row);
            }
        }
        self.rights.add(ctx.state(), right);
    }

    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<K>>> {
        Some(vec![&mut self.lefts, &mut self.rights])
    }
}
