//! A per-shard output file that becomes visible only when complete.
//!
//! Written as `.part-SSSSS.<ext>.inprogress` (hidden: readers of result directories skip dot
//! files) through a large buffer; `publish` flushes, fsyncs the data, renames it to
//! `part-SSSSS.<ext>` and fsyncs the directory, so a crash never leaves a half-written visible
//! file, and a published file survives a power loss.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use corestrom_runtime::OperatorError;

/// Bytes buffered before a write reaches the file.
const BUFFER_BYTES: usize = 1 << 20;

/// An output file being written, hidden until published.
#[derive(Debug)]
pub struct StagedFile {
    dir: PathBuf,
    staged: PathBuf,
    visible: PathBuf,
    out: BufWriter<File>,
}

impl StagedFile {
    /// Creates shard `shard`'s staged file with extension `ext` in `dir` (created if missing).
    ///
    /// # Errors
    /// The directory or file cannot be created; the error names the path.
    pub fn create(dir: &Path, shard: usize, ext: &str) -> Result<StagedFile, OperatorError> {
        std::fs::create_dir_all(dir)
            .map_err(|e| OperatorError::io(format!("creating directory {}", dir.display()), e))?;
        let staged = dir.join(format!(".part-{shard:05}.{ext}.inprogress"));
        let visible = dir.join(format!("part-{shard:05}.{ext}"));
        let file = File::create(&staged)
            .map_err(|e| OperatorError::io(format!("creating {}", staged.display()), e))?;
        Ok(StagedFile {
            dir: dir.to_path_buf(),
            staged,
            visible,
            out: BufWriter::with_capacity(BUFFER_BYTES, file),
        })
    }

    /// The hidden path being written.
    pub fn staged_path(&self) -> &Path {
        &self.staged
    }

    /// Makes the file durable under `target` (which may be hidden): flush, fsync, rename, fsync
    /// of the directory.
    ///
    /// # Errors
    /// Flush, fsync or rename failed; the error names the file.
    pub fn publish_as(self, target: &Path) -> Result<(), OperatorError> {
        let staged = self.staged.display().to_string();
        let file = self
            .out
            .into_inner()
            .map_err(|e| OperatorError::io(format!("flushing {staged}"), e.into_error()))?;
        corestrom_runtime::checkpoint::fault::hit("file.before_fsync");
        file.sync_data()
            .map_err(|e| OperatorError::io(format!("fsync of {staged}"), e))?;
        corestrom_runtime::checkpoint::fault::hit("file.after_fsync");
        std::fs::rename(&self.staged, target).map_err(|e| {
            OperatorError::io(format!("renaming {staged} to {}", target.display()), e)
        })?;
        File::open(&self.dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| OperatorError::io(format!("fsync of directory {}", self.dir.display()), e))
    }

    /// Makes the file durable and visible under its final name (`part-SSSSS.<ext>`).
    ///
    /// # Errors
    /// Flush, fsync or rename failed; the error names the file.
    pub fn publish(self) -> Result<PathBuf, OperatorError> {
        let visible = self.visible.clone();
        self.publish_as(&visible)?;
        Ok(visible)
    }
}

impl Write for StagedFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.out.write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
