//! Query results as FORMAT.md JSON-lines files: one published file per shard in a directory.

use std::path::PathBuf;

use corestrom_operators::prelude::*;
use corestrom_operators::sink::StagedFile;
use corestrom_runtime::OpResult;

use crate::nexmark::result::{ResultWriter, Row};

/// A query's output row: writes its columns, in the query's output order.
pub trait ResultRow: Clone + Send + 'static {
    /// Adds this row's columns to `row`; the caller ends the row.
    fn columns<'a, W: std::io::Write>(&self, row: Row<'a, W>) -> Row<'a, W>;
}

/// Writes result rows into `dir` (`part-SSSSS.jsonl` per shard, visible once complete).
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
    out: Option<ResultWriter<StagedFile>>,
    path: String,
}

impl<T: ResultRow> Sink<T> for ResultSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        let file = StagedFile::create(&self.dir, split.shard, "jsonl")?;
        let path = file.staged_path().display().to_string();
        Ok(Box::new(ResultSinkWriter {
            out: Some(ResultWriter::new(file)),
            path,
        }))
    }
}

impl<T: ResultRow> SinkWriter<T> for ResultSinkWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        let Some(out) = self.out.as_mut() else {
            return Err(OperatorError::Failed(format!(
                "{} written after it was published",
                self.path
            )));
        };
        for record in records.drain(..) {
            record
                .value
                .columns(out.row())
                .end()
                .map_err(|e| OperatorError::io(format!("writing {}", self.path), e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let file = out
            .finish()
            .map_err(|e| OperatorError::io(format!("flushing {}", self.path), e))?;
        file.publish().map(|_| ())
    }
}
