//! Writes records as JSON lines (serde) into a directory, one file per shard and checkpoint:
//! exactly-once with checkpoints (two-phase commit through `PartFiles`), one file per shard
//! published at the end otherwise.

use std::io::Write;
use std::path::PathBuf;

use corestrom_runtime::sink::RestoredCheckpoint;
use corestrom_runtime::{
    CheckpointId, OpResult, OperatorError, Record, Sink, SinkWriter, SplitContext,
};
use serde::Serialize;

use crate::sink::PartFiles;

/// Writes JSON lines into a directory.
#[derive(Clone, Debug)]
pub struct JsonLinesSink {
    dir: PathBuf,
}

impl JsonLinesSink {
    /// Writes into `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        JsonLinesSink { dir: dir.into() }
    }
}

struct JsonLinesWriter {
    files: PartFiles,
}

impl<T: Serialize + 'static> Sink<T> for JsonLinesSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        Ok(Box::new(JsonLinesWriter {
            files: PartFiles::new(&self.dir, split.shard, "jsonl")?,
        }))
    }
}

impl<T: Serialize> SinkWriter<T> for JsonLinesWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        let file = self.files.file()?;
        for record in records.drain(..) {
            serde_json::to_writer(&mut *file, &record.value).map_err(|e| {
                OperatorError::Failed(format!(
                    "serializing a record to {}: {e}",
                    file.staged_path().display()
                ))
            })?;
            file.write_all(b"\n").map_err(|e| {
                OperatorError::io(format!("writing {}", file.staged_path().display()), e)
            })?;
        }
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        self.files.publish()
    }

    fn prepare_commit(&mut self, checkpoint: CheckpointId) -> Result<Vec<u8>, OperatorError> {
        self.files.prepare(checkpoint)
    }

    fn commit(&mut self, transaction: &[u8]) -> OpResult {
        self.files.commit(transaction)
    }

    fn recover(&mut self, restored: Option<&RestoredCheckpoint>) -> OpResult {
        self.files.recover(restored)
    }
}
