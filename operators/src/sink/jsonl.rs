//! Writes records as JSON lines (serde), one `StagedFile` per shard, published when the
//! shard's input ends. (The checkpoint issue turns this into a two-phase-commit sink with a file
//! per checkpoint.)

use std::io::Write;
use std::path::PathBuf;

use corestrom_runtime::{OpResult, OperatorError, Record, Sink, SinkWriter, SplitContext};
use serde::Serialize;

use crate::sink::StagedFile;

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
    file: Option<StagedFile>,
}

impl<T: Serialize + 'static> Sink<T> for JsonLinesSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        Ok(Box::new(JsonLinesWriter {
            file: Some(StagedFile::create(&self.dir, split.shard, "jsonl")?),
        }))
    }
}

impl<T: Serialize> SinkWriter<T> for JsonLinesWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        let Some(file) = self.file.as_mut() else {
            return Err(OperatorError::Failed(
                "JSON-lines sink written after it was published".into(),
            ));
        };
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
        match self.file.take() {
            Some(file) => file.publish().map(|_| ()),
            None => Ok(()),
        }
    }
}
