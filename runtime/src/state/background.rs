//! The shard's background snapshot work: operator instances whose checkpoint is marked and
//! still being encoded, in slices the shard loop runs between batches.
//!
//! An operator that snapshots asynchronously (through a
//! [`SnapshotMap`](super::snapshot_map::SnapshotMap)) keeps its state in an `Rc<RefCell<…>>`
//! shared by its input collector and this registry. The loop calls [`SnapshotWork::step`] only
//! between batches, never during a `push`, so the cell is never borrowed twice (the same rule
//! as the processing-time callbacks).
//!
//! Invariant: `pending` counts the instances that marked a checkpoint and have not handed its
//! state over yet; while it is positive the loop keeps turning (it must not park with a
//! checkpoint half encoded).

use std::cell::{Cell, RefCell};
use std::rc::Weak;
use std::time::Duration;

use crate::error::OperatorError;

/// Time one slice of background encoding may take per instance and loop turn, about (one part
/// more at most): short enough that records wait well under a millisecond.
pub const SNAPSHOT_SLICE_BUDGET: Duration = Duration::from_micros(250);

/// An operator instance that encodes its checkpoint after the barrier.
pub trait BackgroundSnapshot {
    /// Encodes for about `budget`; when the checkpoint is fully encoded, hands it to the
    /// instance's checkpointer. Does nothing when no checkpoint is pending.
    ///
    /// # Errors
    /// The state failed to encode.
    fn snapshot_step(&mut self, budget: Duration) -> Result<(), OperatorError>;
}

type Task = (u32, Weak<RefCell<dyn BackgroundSnapshot>>);

/// The background snapshot tasks of one shard.
#[derive(Default)]
pub struct SnapshotWork {
    tasks: RefCell<Vec<Task>>,
    pending: Cell<usize>,
}

impl std::fmt::Debug for SnapshotWork {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SnapshotWork")
            .field("tasks", &self.tasks.borrow().len())
            .field("pending", &self.pending.get())
            .finish()
    }
}

impl SnapshotWork {
    /// Registers operator `operator`'s instance (once, when it is built).
    pub fn register(&self, operator: u32, task: Weak<RefCell<dyn BackgroundSnapshot>>) {
        self.tasks.borrow_mut().push((operator, task));
    }

    /// An instance marked a checkpoint.
    pub(crate) fn started(&self) {
        self.pending.set(self.pending.get() + 1);
    }

    /// An instance handed its marked checkpoint over.
    pub(crate) fn finished(&self) {
        let pending = self.pending.get();
        assert!(
            pending > 0,
            "a background snapshot finished that never started"
        );
        self.pending.set(pending - 1);
    }

    /// Instances with a checkpoint being encoded.
    pub fn pending(&self) -> usize {
        self.pending.get()
    }

    /// One slice of every pending instance (the shard loop, between batches). True when there
    /// was work.
    ///
    /// # Errors
    /// An instance's state failed to encode: the operator and the error.
    pub fn step(&self, budget: Duration) -> Result<bool, (u32, OperatorError)> {
        if self.pending.get() == 0 {
            return Ok(false);
        }
        for (operator, task) in self.tasks.borrow().iter() {
            if let Some(task) = task.upgrade() {
                task.borrow_mut()
                    .snapshot_step(budget)
                    .map_err(|e| (*operator, e))?;
            }
        }
        Ok(true)
    }
}
