//! Writes records as JSON lines, one file per shard, published atomically at the end.
//!
//! Each shard writes `.part-SSSSS.jsonl.inprogress` (hidden: readers of FORMAT.md results skip
//! dot files), and when its input ends flushes, fsyncs, renames it to `part-SSSSS.jsonl` and
//! fsyncs the directory, so a crash never leaves a half-written visible file. (The checkpoint
//! issue turns this into a two-phase-commit sink with a file per checkpoint.)

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use corestrom_runtime::{OpResult, OperatorError, Record, Sink, SinkWriter, SplitContext};
use serde::Serialize;

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
    dir: PathBuf,
    staged: PathBuf,
    visible: PathBuf,
    out: Option<BufWriter<File>>,
}

impl<T: Serialize + 'static> Sink<T> for JsonLinesSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            OperatorError::io(format!("creating directory {}", self.dir.display()), e)
        })?;
        let staged = self
            .dir
            .join(format!(".part-{:05}.jsonl.inprogress", split.shard));
        let visible = self.dir.join(format!("part-{:05}.jsonl", split.shard));
        let file = File::create(&staged)
            .map_err(|e| OperatorError::io(format!("creating {}", staged.display()), e))?;
        Ok(Box::new(JsonLinesWriter {
            dir: self.dir.clone(),
            staged,
            visible,
            out: Some(BufWriter::with_capacity(1 << 20, file)),
        }))
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

impl<T: Serialize> SinkWriter<T> for JsonLinesWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        let Some(out) = self.out.as_mut() else {
            return Err(OperatorError::Failed(format!(
                "{} was already closed",
                self.staged.display()
            )));
        };
        for record in records.drain(..) {
            serde_json::to_writer(&mut *out, &record.value).map_err(|e| {
                OperatorError::Failed(format!(
                    "serializing a record to {}: {e}",
                    self.staged.display()
                ))
            })?;
            out.write_all(b"\n")
                .map_err(|e| OperatorError::io(format!("writing {}", self.staged.display()), e))?;
        }
        Ok(())
    }

    fn finish(&mut self) -> OpResult {
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let context = |what: &str| format!("{what} {}", self.staged.display());
        let file = out
            .into_inner()
            .map_err(|e| OperatorError::io(context("flushing"), e.into_error()))?;
        file.sync_data()
            .map_err(|e| OperatorError::io(context("fsync of"), e))?;
        std::fs::rename(&self.staged, &self.visible).map_err(|e| {
            OperatorError::io(
                format!(
                    "publishing {} as {}",
                    self.staged.display(),
                    self.visible.display()
                ),
                e,
            )
        })?;
        sync_dir(&self.dir)
            .map_err(|e| OperatorError::io(format!("fsync of directory {}", self.dir.display()), e))
    }
}
