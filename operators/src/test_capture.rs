//! Test support: a collector that keeps what an operator emits, for unit tests that drive an
//! operator core directly.

use std::cell::RefCell;
use std::rc::Rc;

use corestrom_runtime::{Batch, Collector, OpResult, Record, Signal};

/// Appends every pushed record to the shared vector; ignores signals.
pub(crate) struct Capture<T>(pub(crate) Rc<RefCell<Vec<Record<T>>>>);

impl<T: 'static> Collector<T> for Capture<T> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        self.0.borrow_mut().extend(batch.records.drain(..));
        Ok(())
    }
    fn signal(&mut self, _signal: Signal) -> OpResult {
        Ok(())
    }
}
