//! `map`: one output record per input record, same timestamp.

use corestrom_runtime::op_scope;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Record, Signal};

/// Moves every record of `batch` through `f` into `out` (same timestamps), keeping the
/// batch's emission time; shared by `map` and `co_map`.
pub(crate) fn map_batch<I, O>(
    f: &mut impl FnMut(I) -> O,
    batch: &mut Batch<I>,
    out: &mut Batch<O>,
) {
    out.records.extend(batch.records.drain(..).map(|r| Record {
        ts: r.ts,
        value: f(r.value),
    }));
    out.emitted_ns = batch.emitted_ns;
}

pub(crate) struct Map<O, F> {
    pub(crate) operator: u32,
    pub(crate) f: F,
    pub(crate) out: Batch<O>,
    pub(crate) down: BoxCollector<O>,
}

impl<I: 'static, O: 'static, F: FnMut(I) -> O + 'static> Collector<I> for Map<O, F> {
    fn push(&mut self, batch: &mut Batch<I>) -> OpResult {
        op_scope::enter(self.operator);
        map_batch(&mut self.f, batch, &mut self.out);
        self.down.push(&mut self.out)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }
}
