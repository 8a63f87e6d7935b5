//! Discards every record (the runtime still counts them and measures their latency): the sink
//! of throughput benchmarks, like Flink's `blackhole` connector.

use corestrom_runtime::{OpResult, OperatorError, Record, Sink, SinkWriter, SplitContext};

/// Discards records.
#[derive(Clone, Copy, Debug, Default)]
pub struct BlackholeSink;

struct BlackholeWriter;

impl<T: 'static> Sink<T> for BlackholeSink {
    fn create_writer(&self, _split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        Ok(Box::new(BlackholeWriter))
    }
}

impl<T> SinkWriter<T> for BlackholeWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        records.clear();
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        Ok(())
    }
}
