//! Scrubbing: verify every frame of every segment of the current state, on demand.
//!
//! Recovery from an index file does not read the frames before the file's position (that is
//! what makes it fast), and a read verifies only the frame it reads. A scrub closes the gap: it
//! seals, then scans every segment of that position from its header with crc checks, as a full
//! recovery would, while the shard keeps running (it yields between reads). Run it after a
//! restore, in the background, to find corruption in frames no read has touched yet.

use std::rc::Rc;

use crate::disk::Disk;
use crate::error::{Result, StorageError};
use crate::format::Position;
use crate::segment::SegmentScan;
use crate::store::Store;

/// What a scrub verified.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct ScrubReport {
    /// Segments scanned.
    pub segments: u64,
    /// Frames whose crc was checked.
    pub frames: u64,
    /// Bytes scanned.
    pub bytes: u64,
}

impl<D: Disk> Store<D> {
    /// Seals, then verifies every frame of that position.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file and offset of the first bad header or frame;
    /// I/O errors; [`StorageError::FailStopped`].
    pub async fn scrub(&self) -> Result<ScrubReport> {
        let position = self.seal()?.durable().await?;
        let result = self.scrub_position(&position).await;
        self.release(&position);
        result
    }

    async fn scrub_position(&self, position: &Position) -> Result<ScrubReport> {
        let mut report = ScrubReport::default();
        for &(segment, len) in &position.segments {
            let (file, name) = {
                let inner = self.inner.borrow();
                let name = inner.disk.describe(&segment.file_name());
                let file = inner.log.file(segment);
                (file, name)
            };
            let file = file.ok_or_else(|| StorageError::SegmentMissing { file: name.clone() })?;
            let mut scan = SegmentScan::new(Rc::clone(&file), name, segment, len);
            let mut visit = |_: u64, _: &crate::format::Frame<'_>| -> Result<()> {
                report.frames += 1;
                Ok(())
            };
            while scan.next_batch(&mut visit).await? {}
            report.segments += 1;
            report.bytes += len;
        }
        Ok(report)
    }
}
