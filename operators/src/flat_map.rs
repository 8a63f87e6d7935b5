//! `flat_map`: maps each record to any number of output records, same timestamp.
//!
//! Output leaves in batches of at most `batch_records`, so one input record that expands to
//! millions of outputs does not build one huge vector.

use corestrom_runtime::op_scope;
use corestrom_runtime::{Batch, BoxCollector, Collector, OpResult, Record, Signal};

pub(crate) struct FlatMap<O, F> {
    pub(crate) operator: u32,
    pub(crate) f: F,
    pub(crate) out: Batch<O>,
    pub(crate) batch_records: usize,
    pub(crate) down: BoxCollector<O>,
}

impl<I: 'static, O: 'static, It: IntoIterator<Item = O>, F: FnMut(I) -> It + 'static> Collector<I>
    for FlatMap<O, F>
{
    fn push(&mut self, batch: &mut Batch<I>) -> OpResult {
        self.out.emitted_ns = batch.emitted_ns;
        for record in batch.records.drain(..) {
            op_scope::enter(self.operator);
            for value in (self.f)(record.value) {
                self.out.records.push(Record {
                    ts: record.ts,
                    value,
                });
                if self.out.records.len() >= self.batch_records {
                    self.down.push(&mut self.out)?;
                    op_scope::enter(self.operator);
                }
            }
        }
        if !self.out.records.is_empty() {
            self.down.push(&mut self.out)?;
        }
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }
}
