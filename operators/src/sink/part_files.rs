//! One shard's output files in a result directory, with two-phase commit.
//!
//! Names, for shard `S` (5 digits) and checkpoint `C` (20 digits):
//!
//! ```text
//! .part-S.EXT.inprogress     being written (hidden)
//! .part-S-C.EXT.pending      prepared for checkpoint C: complete and fsynced, still hidden
//! part-S-C.EXT               committed (visible): checkpoint C is complete
//! part-S.EXT                 published at the end of a job without checkpoints
//! ```
//!
//! Prepare = flush, fsync, rename in-progress → pending, fsync the directory. Commit = rename
//! pending → visible, fsync the directory; committing again finds the visible file and does
//! nothing. Recovery from checkpoint `R` commits every pending file with `C ≤ R`, deletes the
//! other hidden files of the shard, and deletes
//! visible files with `C > R`: they belong to a checkpoint newer than the one restored (its
//! manifest failed to verify), and the replay writes them again. After a restore with another
//! shard count (a savepoint), a shard does the same for the files of the old shards it adopts
//! (`RestoredCheckpoint::adopted_shards`), so every old shard's files are resolved exactly once.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use corestrom_runtime::sink::RestoredCheckpoint;
use corestrom_runtime::{CheckpointId, OperatorError};

use crate::sink::StagedFile;

/// The shard's part files.
#[derive(Debug)]
pub struct PartFiles {
    dir: PathBuf,
    shard: usize,
    ext: String,
    current: Option<StagedFile>,
}

/// The checkpoint label in file names: 20 digits.
fn label(checkpoint: CheckpointId) -> String {
    format!("{:020}", checkpoint.0)
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> OperatorError {
    move |e| OperatorError::io(what, e)
}

fn sync_dir(dir: &Path) -> Result<(), OperatorError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(format!("fsync of directory {}", dir.display())))
}

impl PartFiles {
    /// Part files of `shard` with extension `ext` in `dir` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(dir: &Path, shard: usize, ext: &str) -> Result<PartFiles, OperatorError> {
        fs::create_dir_all(dir).map_err(io(format!("creating directory {}", dir.display())))?;
        Ok(PartFiles {
            dir: dir.to_path_buf(),
            shard,
            ext: ext.to_string(),
            current: None,
        })
    }

    /// The open in-progress file, created on first use.
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn file(&mut self) -> Result<&mut StagedFile, OperatorError> {
        if self.current.is_none() {
            self.current = Some(StagedFile::create(&self.dir, self.shard, &self.ext)?);
        }
        Ok(self.current.as_mut().expect("just created"))
    }

    fn visible_name(&self, checkpoint: CheckpointId) -> String {
        format!("part-{:05}-{}.{}", self.shard, label(checkpoint), self.ext)
    }

    fn pending_path(&self, visible: &str) -> PathBuf {
        self.dir.join(format!(".{visible}.pending"))
    }

    /// Makes what was written durable under a hidden pending name for `checkpoint`; returns the
    /// transaction (the visible name), empty when nothing was written.
    ///
    /// # Errors
    /// Flush, fsync or rename failed.
    pub fn prepare(&mut self, checkpoint: CheckpointId) -> Result<Vec<u8>, OperatorError> {
        let Some(file) = self.current.take() else {
            return Ok(Vec::new());
        };
        let visible = self.visible_name(checkpoint);
        file.publish_as(&self.pending_path(&visible))?;
        Ok(visible.into_bytes())
    }

    /// Makes a prepared transaction visible; idempotent.
    ///
    /// # Errors
    /// The rename failed, or the transaction's file is neither pending nor visible (lost).
    pub fn commit(&self, transaction: &[u8]) -> Result<(), OperatorError> {
        let visible = std::str::from_utf8(transaction)
            .map_err(|_| OperatorError::Failed("a part-file transaction is not UTF-8".into()))?;
        let pending = self.pending_path(visible);
        let target = self.dir.join(visible);
        if pending.exists() {
            fs::rename(&pending, &target).map_err(io(format!(
                "committing {} as {}",
                pending.display(),
                target.display()
            )))?;
            sync_dir(&self.dir)
        } else if target.exists() {
            Ok(())
        } else {
            Err(OperatorError::Failed(format!(
                "transaction {visible} is lost: neither {} nor {} exists",
                pending.display(),
                target.display()
            )))
        }
    }

    /// Publishes what was written as `part-S.EXT` (jobs without checkpoints).
    ///
    /// # Errors
    /// Flush, fsync or rename failed.
    pub fn publish(&mut self) -> Result<(), OperatorError> {
        match self.current.take() {
            Some(file) => file.publish().map(|_| ()),
            None => Ok(()),
        }
    }

    /// Resolves what a previous run of this shard left (see the module doc), and, after a
    /// restore with another shard count, what the old shards this one adopted left
    /// (`RestoredCheckpoint::adopted_shards`).
    ///
    /// # Errors
    /// A file cannot be renamed or deleted.
    pub fn recover(&mut self, restored: Option<&RestoredCheckpoint>) -> Result<(), OperatorError> {
        // Whatever this writer has open belongs to no checkpoint yet: it is discarded below.
        self.current = None;
        let mut shards = vec![self.shard];
        if let Some(r) = restored {
            shards.extend(r.adopted_shards.iter().filter(|&&s| s != self.shard));
        }
        let mut changed = false;
        for shard in shards {
            changed |= self.recover_shard(shard, restored)?;
        }
        if changed {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// Resolves the files of `shard`; true when it renamed or deleted one.
    fn recover_shard(
        &self,
        shard: usize,
        restored: Option<&RestoredCheckpoint>,
    ) -> Result<bool, OperatorError> {
        let entries =
            fs::read_dir(&self.dir).map_err(io(format!("listing {}", self.dir.display())))?;
        let prefix = format!("part-{shard:05}");
        let mut changed = false;
        for entry in entries {
            let entry = entry.map_err(io(format!("listing {}", self.dir.display())))?;
            let name = entry.file_name().to_string_lossy().to_string();
            let path = entry.path();
            if name == format!(".{prefix}.{}.inprogress", self.ext) {
                fs::remove_file(&path).map_err(io(format!("deleting {}", path.display())))?;
                changed = true;
                continue;
            }
            let (hidden, visible) = match name
                .strip_prefix('.')
                .and_then(|n| n.strip_suffix(".pending"))
            {
                Some(visible) => (true, visible.to_string()),
                None => (false, name.clone()),
            };
            let Some(label) = visible
                .strip_prefix(&format!("{prefix}-"))
                .and_then(|rest| rest.strip_suffix(&format!(".{}", self.ext)))
            else {
                continue;
            };
            let covered =
                restored.is_some_and(|r| label.parse::<u64>().is_ok_and(|c| c <= r.checkpoint));
            match (hidden, covered) {
                (true, true) => {
                    self.commit(visible.as_bytes())?;
                }
                (true, false) => {
                    fs::remove_file(&path).map_err(io(format!("deleting {}", path.display())))?;
                    changed = true;
                }
                // Without a restored checkpoint, visible files are some earlier job's output.
                (false, false) if restored.is_some() => {
                    fs::remove_file(&path).map_err(io(format!("deleting {}", path.display())))?;
                    changed = true;
                }
                (false, _) => {}
            }
        }
        Ok(changed)
    }
}

impl Write for PartFiles {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        self.file().map_err(std::io::Error::other)?.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> std::io::Result<()> {
        // An empty write (a flush of an empty buffer) must not create a file.
        if buf.is_empty() {
            return Ok(());
        }
        self.file().map_err(std::io::Error::other)?.write_all(buf)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.current.as_mut() {
            Some(file) => file.flush(),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .expect("dir")
            .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
            .collect();
        names.sort();
        names
    }

    /// After a restore on fewer shards, the shard that adopts an old shard commits that shard's
    /// covered pending files and discards the rest of its hidden files; no one else touches them.
    #[test]
    fn recovery_resolves_the_files_of_adopted_shards() {
        let dir = tempfile::tempdir().expect("dir");
        // Old shard 2 prepared checkpoints 3 and 4 and was writing more; 3 is restored.
        let mut old = PartFiles::new(dir.path(), 2, "jsonl").expect("files");
        for checkpoint in [3, 4] {
            old.write_all(b"line\n").expect("write");
            old.prepare(CheckpointId(checkpoint)).expect("prepare");
        }
        old.write_all(b"unfinished\n").expect("write");
        old.flush().expect("flush");
        drop(old);
        let restored = RestoredCheckpoint {
            checkpoint: 3,
            finished: false,
            transactions: vec![b"part-00002-00000000000000000003.jsonl".to_vec()],
            adopted_shards: vec![0, 2],
        };
        let mut bystander = PartFiles::new(dir.path(), 1, "jsonl").expect("files");
        bystander
            .recover(Some(&RestoredCheckpoint {
                adopted_shards: vec![1, 3],
                ..restored.clone()
            }))
            .expect("recover");
        assert_eq!(names(dir.path()).len(), 3, "shard 1 leaves shard 2's files");
        let mut adopter = PartFiles::new(dir.path(), 0, "jsonl").expect("files");
        adopter.recover(Some(&restored)).expect("recover");
        assert_eq!(
            names(dir.path()),
            vec!["part-00002-00000000000000000003.jsonl".to_string()]
        );
    }
}
