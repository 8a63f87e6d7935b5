//! `filter`: keeps the records the predicate accepts, in place (no copy).

use corestrom_runtime::op_scope;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Signal};

pub(crate) struct Filter<T, F> {
    pub(crate) operator: u32,
    pub(crate) f: F,
    pub(crate) down: BoxCollector<T>,
}

impl<T: 'static, F: FnMut(&T) -> bool + 'static> Collector<T> for Filter<T, F> {
    fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
        op_scope::enter(self.operator);
        let f = &mut self.f;
        batch.records.retain(|r| f(&r.value));
        self.down.push(batch)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }
}
