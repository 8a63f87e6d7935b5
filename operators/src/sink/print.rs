//! Prints every record to standard output as `shard> value` (Flink's `print()`), one locked
//! write per batch.

use std::io::Write;

use corestrom_runtime::{OpResult, OperatorError, Record, Sink, SinkWriter, SplitContext};

/// Prints records with `Debug`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PrintSink;

struct PrintWriter {
    shard: usize,
    line: Vec<u8>,
}

impl<T: std::fmt::Debug + 'static> Sink<T> for PrintSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        Ok(Box::new(PrintWriter {
            shard: split.shard,
            line: Vec::new(),
        }))
    }
}

impl<T: std::fmt::Debug> SinkWriter<T> for PrintWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        self.line.clear();
        for record in records.drain(..) {
            // Writing into a Vec cannot fail.
            let _ = writeln!(self.line, "{}> {:?}", self.shard, record.value);
        }
        std::io::stdout()
            .lock()
            .write_all(&self.line)
            .map_err(|e| OperatorError::io("writing to stdout", e))
    }

    fn finish(&mut self) -> OpResult {
        std::io::stdout()
            .lock()
            .flush()
            .map_err(|e| OperatorError::io("flushing stdout", e))
    }
}
