//! `inspect`: calls a function on every record and passes the batch on unchanged.

use corestrom_runtime::op_scope;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Signal};

pub(crate) struct Inspect<T, F> {
    pub(crate) operator: u32,
    pub(crate) f: F,
    pub(crate) down: BoxCollector<T>,
}

impl<T: 'static, F: FnMut(&T) + 'static> Collector<T> for Inspect<T, F> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        op_scope::enter(self.operator);
        for record in &batch.records {
            (self.f)(&record.value);
        }
        self.down.push(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }
}
