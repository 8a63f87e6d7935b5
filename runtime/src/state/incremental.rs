//! `IncrementalState`: a [`SnapshotMap`] with the checkpoint protocol around it, what an
//! operator with one value per key holds to take incremental, asynchronous snapshots.
//!
//! At `Barrier(n)`: finish a checkpoint still being encoded (barriers of one instance do not
//! overlap; the coordinator triggers `n + 1` only after `n` completed, so this is a safety net,
//! not a path that runs), mark the dirty groups, tell the checkpointer. Between batches the
//! shard loop calls [`IncrementalState::step`] (through the operator's
//! [`BackgroundSnapshot`](super::background::BackgroundSnapshot) impl), which encodes a slice
//! and hands the snapshot over when complete. At the end of input: finish, then snapshot what
//! was written since the last barrier as the final state.
//!
//! Without checkpoints (no checkpointer) the map only tracks dirty bits, one per write.

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::background::BackgroundSnapshot;
use super::checkpointer::{StateCheckpointer, snapshot_error};
use super::snapshot::{KeyGroupState, StateData};
use super::snapshot_map::SnapshotMap;
use crate::element::CheckpointId;
use crate::error::OperatorError;
use crate::graph::KeyedStateStart;
use crate::hash::StableHash;

/// An operator's keyed map and its checkpointer.
#[derive(Debug)]
pub struct IncrementalState<K, V> {
    /// The state.
    pub map: SnapshotMap<K, V>,
    checkpointer: Option<StateCheckpointer>,
}

/// The checkpoint id the final state at the end of input is marked with (it belongs to no
/// barrier).
const END_MARK: u64 = u64::MAX;

impl<K, V> IncrementalState<K, V>
where
    K: StableHash + Hash + Eq + Clone + StateData,
    V: Clone + StateData,
{
    /// The state of an instance owning `groups` of `max_key_groups`, loaded with `restored`.
    ///
    /// # Errors
    /// A restored group does not decode as `(K, V)` entries.
    pub fn new(
        groups: std::ops::Range<u32>,
        max_key_groups: u32,
        restored: &[KeyGroupState],
        checkpointer: Option<StateCheckpointer>,
    ) -> Result<Self, OperatorError> {
        let mut map = SnapshotMap::new(groups, max_key_groups);
        for group in restored {
            map.restore(group).map_err(snapshot_error)?;
        }
        Ok(IncrementalState { map, checkpointer })
    }

    /// The state of an operator instance starting with `start`, shared with the shard loop's
    /// background snapshot work (registered when the job checkpoints).
    ///
    /// # Errors
    /// A restored group does not decode as `(K, V)` entries.
    pub fn install(start: KeyedStateStart) -> Result<Rc<RefCell<Self>>, OperatorError> {
        let state = Self::new(
            start.key_groups,
            start.max_key_groups,
            &start.restored,
            start.checkpointer,
        )?;
        let shared = Rc::new(RefCell::new(state));
        let task: Rc<RefCell<dyn BackgroundSnapshot>> = shared.clone();
        if let Some(checkpointer) = shared.borrow().checkpointer() {
            checkpointer.register_background(Rc::downgrade(&task));
        }
        Ok(shared)
    }

    /// The checkpointer, to register the background encoder with.
    pub fn checkpointer(&self) -> Option<&StateCheckpointer> {
        self.checkpointer.as_ref()
    }

    /// `Barrier(id)` reached the operator (every record before it was applied).
    ///
    /// # Errors
    /// Finishing a previous checkpoint failed to encode.
    pub fn on_barrier(&mut self, id: CheckpointId) -> Result<(), OperatorError> {
        let Some(checkpointer) = self.checkpointer.as_mut() else {
            return Ok(());
        };
        if let Some(done) = self.map.finish().map_err(snapshot_error)? {
            checkpointer.snapshot_encoded(done);
        }
        let started = Instant::now();
        self.map.mark(id.0);
        checkpointer.barrier_marked(id, started.elapsed().as_micros() as u64);
        Ok(())
    }

    /// One background slice of about `budget`.
    ///
    /// # Errors
    /// The state failed to encode.
    pub fn step(&mut self, budget: Duration) -> Result<(), OperatorError> {
        let Some(checkpointer) = self.checkpointer.as_mut() else {
            return Ok(());
        };
        if let Some(done) = self.map.encode_for(budget).map_err(snapshot_error)? {
            checkpointer.snapshot_encoded(done);
        }
        Ok(())
    }

    /// The input ended.
    ///
    /// # Errors
    /// The state failed to encode.
    pub fn on_end(&mut self) -> Result<(), OperatorError> {
        let Some(checkpointer) = self.checkpointer.as_mut() else {
            return Ok(());
        };
        if let Some(done) = self.map.finish().map_err(snapshot_error)? {
            checkpointer.snapshot_encoded(done);
        }
        self.map.mark(END_MARK);
        let last = self.map.finish().map_err(snapshot_error)?;
        checkpointer.on_end_encoded(last.expect("marked just now"));
        Ok(())
    }
}

impl<K, V> BackgroundSnapshot for IncrementalState<K, V>
where
    K: StableHash + Hash + Eq + Clone + StateData,
    V: Clone + StateData,
{
    fn snapshot_step(&mut self, budget: Duration) -> Result<(), OperatorError> {
        self.step(budget)
    }
}
