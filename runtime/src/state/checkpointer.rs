//! The checkpoint side of one stateful operator instance: restored state in, snapshots out.
//!
//! A keyed operator holds a [`StateCheckpointer`] when its job checkpoints. When `Barrier(n)`
//! reaches the operator (after every record before it was processed), the operator encodes its
//! keyed state through [`StateCheckpointer::on_barrier`], then forwards the barrier. When its
//! input ends, [`StateCheckpointer::on_end`] hands over the final state, which then stands for
//! the operator in every later checkpoint (it can no longer see barriers). Barriers reach an
//! operator in increasing order, each once.
//!
//! An incremental operator (see `state::incremental`) splits the barrier in two: at the
//! barrier it only marks its dirty key groups ([`StateCheckpointer::barrier_marked`]); when the
//! shard has encoded them in the background it hands them over
//! ([`StateCheckpointer::snapshot_encoded`]) and only then does its contribution to the
//! checkpoint count. At most one checkpoint per instance is marked and not handed over.

use std::cell::RefCell;
use std::ops::Range;
use std::rc::{Rc, Weak};
use std::sync::Arc;

use crate::checkpoint::{CheckpointControl, ShardCheckpoints, SnapshotPause};
use crate::element::CheckpointId;
use crate::error::OperatorError;
use crate::state::background::{BackgroundSnapshot, SnapshotWork};
use crate::state::snapshot::{
    Coverage, KeyGroupState, KeyGroupWriter, OperatorState, SnapshotError,
};
use crate::state::snapshot_map::EncodedSnapshot;

/// Encodes an operator's keyed state at barriers and at its end.
pub struct StateCheckpointer {
    operator: u32,
    name: String,
    groups: Range<u32>,
    max_key_groups: u32,
    shard: Rc<RefCell<ShardCheckpoints>>,
    control: Arc<CheckpointControl>,
    work: Rc<SnapshotWork>,
    /// The last checkpoint this instance saw a barrier of (contributed to, or marked).
    last: u64,
    /// A checkpoint marked at its barrier and not handed over yet, with the barrier's pause.
    marked: Option<(u64, u64)>,
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

/// A snapshot error as the operator's failure.
pub fn snapshot_error(e: SnapshotError) -> OperatorError {
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
        work: Rc<SnapshotWork>,
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
            work,
            last,
            marked: None,
            ended: false,
        }
    }

    /// The key groups this instance owns, and the job's number of key groups.
    pub fn key_groups(&self) -> (Range<u32>, u32) {
        (self.groups.clone(), self.max_key_groups)
    }

    /// Registers the instance's background encoder with the shard loop (once, when built).
    pub fn register_background(&self, task: Weak<RefCell<dyn BackgroundSnapshot>>) {
        self.work.register(self.operator, task);
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
            coverage: Coverage::Full,
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
        assert!(
            self.marked.is_none(),
            "a full snapshot of an incremental operator"
        );
        let started = std::time::Instant::now();
        let state = self.encode(snapshot)?;
        let pause_us = started.elapsed().as_micros() as u64;
        self.control.record_snapshot(SnapshotPause {
            checkpoint: id.0,
            pause_us,
            bytes: state.groups.iter().map(|g| g.bytes.len() as u64).sum(),
            groups: state.groups.len() as u32,
            encode_us: pause_us,
            ..SnapshotPause::default()
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

    /// `Barrier(id)` reached an incremental operator, which marked its dirty key groups in
    /// `pause_us`; their bytes follow with [`StateCheckpointer::snapshot_encoded`].
    pub fn barrier_marked(&mut self, id: CheckpointId, pause_us: u64) {
        assert!(!self.ended, "barrier {id:?} after the end of the input");
        assert!(
            id.0 > self.last,
            "barrier {id:?} arrived twice or out of order"
        );
        assert!(
            self.marked.is_none(),
            "barrier {id:?} while the previous checkpoint is still being encoded"
        );
        self.marked = Some((id.0, pause_us));
        self.last = id.0;
        self.work.started();
    }

    /// The key groups marked at the last barrier are encoded: they are this instance's part of
    /// that checkpoint.
    pub fn snapshot_encoded(&mut self, snapshot: EncodedSnapshot) {
        let (id, pause_us) = self.marked.take().expect("a checkpoint was marked");
        assert_eq!(snapshot.checkpoint, id, "the marked checkpoint was encoded");
        let stats = snapshot.stats;
        self.control.record_snapshot(SnapshotPause {
            checkpoint: id,
            pause_us,
            bytes: stats.bytes,
            groups: snapshot.groups.len() as u32,
            slices: stats.slices,
            slice_us_max: stats.slice_us_max,
            slice_cpu_us_max: stats.slice_cpu_us_max,
            encode_us: stats.encode_us,
            cow_copies: stats.copies,
        });
        let state = self.dirty_state(snapshot.groups);
        self.shard
            .borrow_mut()
            .state_snapshotted(id, state, &self.control);
        self.work.finished();
    }

    /// The input of an incremental operator ended: `snapshot` holds the groups written since
    /// its last checkpoint, which stand for it (with what the store holds) in every later one.
    pub fn on_end_encoded(&mut self, snapshot: EncodedSnapshot) {
        assert!(!self.ended, "the input ended twice");
        assert!(
            self.marked.is_none(),
            "the end while a checkpoint is marked"
        );
        self.ended = true;
        let state = self.dirty_state(snapshot.groups);
        self.shard
            .borrow_mut()
            .state_ended(self.last, state, &self.control);
    }

    fn dirty_state(&self, groups: Vec<KeyGroupState>) -> OperatorState {
        debug_assert!(groups.iter().all(|g| self.groups.contains(&g.key_group)));
        OperatorState {
            operator: self.operator,
            name: self.name.clone(),
            groups: groups.into(),
            coverage: Coverage::Dirty,
        }
    }
}
