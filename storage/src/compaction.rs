//! Compaction: rewrite the live entries of segments with a low live ratio, then retire them.
//!
//! A pass first seals (and waits for durability) so every segment it reads is complete on
//! disk, then, for each sealed segment whose live bytes are below
//! `compaction_live_ratio` of its length, scans it with crc checks and re-appends:
//! - each put frame the index still points at (checked again at copy time, so a concurrent
//!   put from the shard wins);
//! - each delete frame whose key is still absent, if an older segment exists that could hold
//!   a put it shadows, or an index file whose position precedes it (whose base could hold such
//!   a put); otherwise the tombstone is dropped.
//!
//! The segment then leaves the live set (later positions do not name it) and its file is
//! removed once no retained position names it. Positions sealed during a pass stay valid: the
//! copies equal the values they copy.

use std::rc::{Rc, Weak};
use std::time::Duration;

use crate::disk::Disk;
use crate::error::{Result, StorageError};
use crate::format::{Frame, FrameKind, SEGMENT_HEADER_BYTES};
use crate::ids::SegmentId;
use crate::index::Loc;
use crate::segment::SegmentScan;
use crate::store::Store;

/// What one compaction pass did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CompactionReport {
    /// Segments rewritten and retired.
    pub segments: Vec<SegmentId>,
    /// Put frames copied forward.
    pub frames_copied: u64,
    /// Bytes of those frames.
    pub bytes_copied: u64,
    /// Tombstones copied forward.
    pub tombstones_carried: u64,
}

impl<D: Disk> Store<D> {
    /// Runs one compaction pass over every segment below the live ratio.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] if a segment fails its crc; write errors (fail-stop).
    pub async fn compact(&self) -> Result<CompactionReport> {
        let sealing = self.seal()?;
        let position = sealing.durable().await?;
        self.release(&position);
        let candidates = {
            let inner = self.inner.borrow();
            let active = inner.log.active();
            let ratio = inner.config.compaction_live_ratio;
            let mut found: Vec<(f64, SegmentId)> = inner
                .log
                .segments
                .iter()
                .filter(|(id, _)| **id != active)
                .map(|(id, meta)| {
                    let payload = meta.len.saturating_sub(SEGMENT_HEADER_BYTES as u64).max(1);
                    (meta.live_bytes as f64 / payload as f64, *id)
                })
                .filter(|(live, _)| *live < ratio)
                .collect();
            found.sort_by(|a, b| a.0.total_cmp(&b.0));
            found
        };
        let mut report = CompactionReport::default();
        for (_, segment) in candidates {
            self.compact_segment(segment, &mut report).await?;
        }
        Ok(report)
    }

    async fn compact_segment(
        &self,
        segment: SegmentId,
        report: &mut CompactionReport,
    ) -> Result<()> {
        let (file, name, len, has_older) = {
            let inner = self.inner.borrow();
            let name = inner.disk.describe(&segment.file_name());
            let Some(meta) = inner.log.segments.get(&segment) else {
                return Ok(());
            };
            let file = inner
                .log
                .file(segment)
                .ok_or_else(|| StorageError::SegmentMissing { file: name.clone() })?;
            (
                file,
                name,
                meta.len,
                inner.log.segments.range(..segment).next().is_some()
                    || inner.index_files.predates(segment, meta.len),
            )
        };
        let mut scan = SegmentScan::new(Rc::clone(&file), name, segment, len);
        loop {
            let mut queued = 0u32;
            let mut visit = |offset: u64, frame: &Frame<'_>| -> Result<()> {
                let mut inner = self.inner.borrow_mut();
                let offset = u32::try_from(offset).expect("segment offsets fit u32");
                let frame_len =
                    u32::try_from(frame.value_offset + frame.value.len()).expect("frame fits u32");
                let here = Loc {
                    segment,
                    offset,
                    len: frame_len,
                };
                let inner = &mut *inner;
                match frame.kind {
                    FrameKind::Put => {
                        // A concurrent put from the shard moved the key on: this copy is dead.
                        if inner.index.get(&frame.key) != Some(here) {
                            return Ok(());
                        }
                        let (loc, q) = inner.log.append(FrameKind::Put, &frame.key, frame.value)?;
                        let moved = inner.index.relocate(&frame.key, here, loc);
                        assert!(moved, "the key was checked at `here` in the same borrow");
                        queued += q;
                        if let Some(meta) = inner.log.segments.get_mut(&loc.segment) {
                            meta.live_bytes += u64::from(loc.len);
                        }
                        inner.unlive(here);
                        report.frames_copied += 1;
                        report.bytes_copied += u64::from(loc.len);
                    }
                    FrameKind::Delete if has_older && inner.index.get(&frame.key).is_none() => {
                        let (_, q) = inner.log.append(FrameKind::Delete, &frame.key, &[])?;
                        queued += q;
                        report.tombstones_carried += 1;
                    }
                    _ => {}
                }
                Ok(())
            };
            let more = scan.next_batch(&mut visit).await?;
            for _ in 0..queued {
                self.wait_one_credit().await?;
            }
            if !more {
                break;
            }
        }
        self.inner.borrow_mut().retire(segment);
        report.segments.push(segment);
        Ok(())
    }

    /// Spawns a task on the current executor that runs [`Store::compact`] every `period`. The
    /// task holds the store weakly and ends when the store is dropped or on the first error
    /// (which it returns).
    pub fn spawn_compactor(&self, period: Duration) -> glommio::task::JoinHandle<Result<()>> {
        let weak: Weak<_> = Rc::downgrade(&self.inner);
        let credits = self.credits_handle();
        let builder = self.builder_handle();
        glommio::spawn_local(async move {
            loop {
                glommio::timer::sleep(period).await;
                let Some(inner) = weak.upgrade() else {
                    return Ok(());
                };
                let store = Store::from_parts(inner, Rc::clone(&credits), Rc::clone(&builder));
                store.compact().await?;
            }
        })
        .detach()
    }
}
