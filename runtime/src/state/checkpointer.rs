//! The checkpoint side of one stateful operator instance: restored state in, snapshots out.
//!
//! A keyed operator holds a [`StateCheckpointer`] when its job checkpoints. When `Barrier(n)`
//! reaches the operator (after every record before it was processed), the operator encodes its
//! keyed state through [`StateCheckpointer::on_barrier`], then forwards the barrier. When its
//! input ends, [`StateCheckpointer::on_end`] hands over the final state, which then stands for
//! the operator in every later checkpoint (it can no longer see barriers). Barriers reach an
//! operator in increasing order, each once.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use crate::checkpoint::{CheckpointControl, ShardCheckpoints, SnapshotPause};
use crate::element::CheckpointId;
use crate::error::OperatorError;
use crate::state::snapshot::{KeyGroupState, KeyGroupWriter, OperatorState, SnapshotError};

/// Encodes an operator's keyed state at barriers and at its end.
pub struct StateCheckpointer {
    operator: u32,
    name: String,
    groups: Range<u32>,
    max_key_groups: u32,
    shard: Rc<RefCell<ShardCheckpoints>>,
    control: Arc<CheckpointControl>,
    /// The last checkpoint this instance contributed to.
    last: u64,
    ended: bool,
}

impl std::fmt::Debug for StateCheckpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StateCheckpointer")
            .field("name", &self.name)
            .field("last", &self.last)
            .finish()
    }
}

fn snapshot_error(e: SnapshotError) -> OperatorError {
    OperatorError::Failed(format!("snapshot of keyed state: {e}"))
}

impl StateCheckpointer {
    pub(crate) fn new(
        operator: u32,
        name: String,
        groups: Range<u32>,
        max_key_groups: u32,
        shard: Rc<RefCell<ShardCheckpoints>>,
        control: Arc<CheckpointControl>,
    ) -> Self {
        shard.borrow_mut().register_stateful();
        let last = shard.borrow().last_injected();
        StateCheckpointer {
            operator,
            name,
            groups,
            max_key_groups,
            shard,
            control,
            last,
            ended: false,
        }
    }

    fn encode(
        &self,
        snapshot: impl FnOnce(&mut KeyGroupWriter) -> Result<(), SnapshotError>,
    ) -> Result<OperatorState, OperatorError> {
        let mut writer = KeyGroupWriter::new(self.groups.clone(), self.max_key_groups);
        snapshot(&mut writer).map_err(snapshot_error)?;
        let groups: Vec<KeyGroupState> = writer
            .finish()
            .into_iter()
            .filter(|g| !g.bytes.is_empty())
            .collect();
        Ok(OperatorState {
            operator: self.operator,
            name: self.name.clone(),
            groups: groups.into(),
        })
    }

    /// `Barrier(id)` reached the operator: `snapshot` writes every entry of its keyed state.
    ///
    /// # Errors
    /// An entry failed to encode.
    pub fn on_barrier(
        &mut self,
        id: CheckpointId,
        snapshot: impl FnOnce(&mut KeyGroupWriter) -> Result<(), SnapshotError>,
    ) -> Result<(), OperatorError> {
        assert!(!self.ended, "barrier {id:?} after the end of the input");
        assert!(
            id.0 > self.last,
            "barrier {id:?} arrived twice or out of order"
        );
        let started = std::time::Instant::now();
        let state = self.encode(snapshot)?;
        self.control.record_snapshot(SnapshotPause {
            checkpoint: id.0,
            pause_us: started.elapsed().as_micros() as u64,
            bytes: state.groups.iter().map(|g| g.bytes.len() as u64).sum(),
        });
        self.shard
            .borrow_mut()
            .state_snapshotted(id.0, state, &self.control);
        self.last = id.0;
        Ok(())
    }

    /// The operator's input ended (its event-time timers fired): `snapshot` writes its final
    /// state, which stands for it in every later checkpoint.
    ///
    /// # Errors
    /// An entry failed to encode.
    pub fn on_end(
        &mut self,
        snapshot: impl FnOnce(&mut KeyGroupWriter) -> Result<(), SnapshotError>,
    ) -> Result<(), OperatorError> {
        assert!(!self.ended, "the input ended twice");
        self.ended = true;
        let state = self.encode(snapshot)?;
        self.shard
            .borrow_mut()
            .state_ended(self.last, state, &self.control);
        Ok(())
    }
}
