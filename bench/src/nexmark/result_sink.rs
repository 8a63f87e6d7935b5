//! Query results as FORMAT.md JSON-lines files in a directory: per shard, one file per
//! checkpoint committed exactly-once with checkpoints on, one file published at the end
//! otherwise (see `corestrom_operators::sink::PartFiles`).

use std::path::PathBuf;

use corestrom_operators::prelude::*;
use corestrom_operators::sink::PartFiles;
use corestrom_runtime::sink::RestoredCheckpoint;
use corestrom_runtime::{CheckpointId, OpResult};

use crate::nexmark::result::{ResultWriter, Row};

/// A query's output row: writes its columns, in the query's output order.
pub trait ResultRow: Clone + Send + 'static {
    /// Adds this row's columns to `row`; the caller ends the row.
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W>;
}

/// Writes result rows into `dir`.
#[derive(Clone, Debug)]
pub struct ResultSink {
    dir: PathBuf,
}

impl ResultSink {
    /// Writes into `dir`.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        ResultSink { dir: dir.into() }
    }
}

struct ResultSinkWriter {
    out: ResultWriter<PartFiles>,
    dir: String,
}

impl<T: ResultRow> Sink<T> for ResultSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        let files = PartFiles::new(&self.dir, split.shard, "jsonl")?;
        Ok(Box::new(ResultSinkWriter {
            out: ResultWriter::new(files),
            dir: self.dir.display().to_string(),
        }))
    }
}

impl ResultSinkWriter {
    fn files(&mut self) -> Result<&mut PartFiles, OperatorError> {
        let dir = &self.dir;
        self.out
            .flushed_inner()
            .map_err(|e| OperatorError::io(format!("writing results into {dir}"), e))
    }
}

impl<T: ResultRow> SinkWriter<T> for ResultSinkWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        for record in records.drain(..) {
            record
                .value
                .columns(self.out.row())
                .end()
                .map_err(|e| OperatorError::io(format!("writing results into {}", self.dir), e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        self.files()?.publish()
    }

    fn prepare_commit(&mut self, checkpoint: CheckpointId) -> Result<Vec<u8>, OperatorError> {
        self.files()?.prepare(checkpoint)
    }

    fn commit(&mut self, transaction: &[u8]) -> OpResult {
        self.files()?.commit(transaction)
    }

    fn recover(&mut self, restored: Option<&RestoredCheckpoint>) -> OpResult {
        self.files()?.recover(restored)
    }
}
