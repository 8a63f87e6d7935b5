//! The per-shard log: the active segment's aligned write buffer, segment rotation, seal, and
//! the writer task that issues every write, fsync and unlink in order.
//!
//! # Write path
//! `append` encodes a frame straight into the active [`WRITE_BUFFER_BYTES`] buffer (no
//! allocation per entry). When the next frame does not fit, at `seal`, and at segment rotation
//! the buffer is *flushed*: zero-padded to a block boundary, handed to the writer task as one
//! write, and kept in the cache as a chunk. The partial last block is copied into the next
//! buffer and written again by the next flush (the "rewritten tail block" of FORMAT.md), so the
//! log has no padding between frames and every byte before a durable position is a frame.
//!
//! # The writer task
//! One task per store pops jobs from a FIFO queue: writes (in issue order, so the two copies of
//! a rewritten tail block land old-then-new), syncs (fdatasync every segment written since the
//! previous seal, then the directory if files were created), and segment removals. A credit
//! semaphore bounds writes in flight to [`WRITES_INFLIGHT_MAX`] (seal's write bypasses it so
//! `seal` never waits). After the first failed write or fsync the store is fail-stopped: the
//! writer skips further writes and answers every later sync with the first cause.
//!
//! # Access rules
//! `Log` lives inside the store's `RefCell` and is never borrowed across an `.await`. The writer
//! task shares only [`WriterShared`] with it.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use glommio::channels::local_channel::{self, LocalReceiver, LocalSender};
use glommio::sync::Semaphore;

use crate::bounds::{WRITE_BUFFER_BYTES, WRITES_INFLIGHT_MAX};
use crate::cache::Cache;
use crate::disk::{Disk, DiskBuf, DiskFile};
use crate::error::{Result, StorageError};
use crate::format::{
    FrameKind, Position, SEGMENT_HEADER_BYTES, align_down, align_up, encode_frame,
    encode_segment_header, frame_bytes,
};
use crate::ids::{SegmentId, StateKey};
use crate::index::Loc;

/// Bookkeeping for one live segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentMeta {
    /// Bytes of the segment that belong to the state (header included).
    pub len: u64,
    /// Bytes of put frames the index still points at.
    pub live_bytes: u64,
}

enum Job<D: Disk> {
    Write {
        segment: SegmentId,
        offset: u64,
        buf: Rc<D::Buf>,
        seq: u64,
        credited: bool,
    },
    Sync {
        segments: Vec<SegmentId>,
        seq: u64,
        done: LocalSender<Result<()>>,
    },
    Remove {
        segment: SegmentId,
    },
    /// Removes an index file no retained position needs (`store.rs` decides which).
    RemoveFile {
        name: String,
    },
}

/// State shared between the log and its writer task.
pub(crate) struct WriterShared<D: Disk> {
    disk: Rc<D>,
    queue: RefCell<VecDeque<Job<D>>>,
    files: RefCell<HashMap<SegmentId, Rc<D::File>>>,
    failed: RefCell<Option<String>>,
    completed_seq: Cell<u64>,
    /// Seal sequence number of the newest seal whose fdatasync completed.
    synced_seal_seq: Cell<u64>,
    pub credits: Rc<Semaphore>,
}

impl<D: Disk> WriterShared<D> {
    fn fail(&self, error: &StorageError) {
        let mut failed = self.failed.borrow_mut();
        if failed.is_none() {
            *failed = Some(error.to_string());
        }
    }

    fn fail_stopped(&self) -> Option<StorageError> {
        self.failed
            .borrow()
            .as_ref()
            .map(|cause| StorageError::FailStopped {
                cause: cause.clone(),
            })
    }

    async fn write(
        &self,
        dir_dirty: &mut bool,
        segment: SegmentId,
        offset: u64,
        buf: Rc<D::Buf>,
    ) -> Result<()> {
        let name = segment.file_name();
        let existing = self.files.borrow().get(&segment).cloned();
        let file = match existing {
            Some(file) => file,
            None => {
                let file = self.disk.create(&name).await;
                let file =
                    Rc::new(file.map_err(|e| {
                        StorageError::io("create", &self.disk.describe(&name), 0, e)
                    })?);
                self.files.borrow_mut().insert(segment, Rc::clone(&file));
                *dir_dirty = true;
                file
            }
        };
        let len = (*buf).as_ref().len();
        let written = file.write_at(buf, offset).await;
        let written = written
            .map_err(|e| StorageError::io("write", &self.disk.describe(&name), offset, e))?;
        if written != len {
            let short = std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write {written}/{len}"),
            );
            return Err(StorageError::io(
                "write",
                &self.disk.describe(&name),
                offset,
                short,
            ));
        }
        Ok(())
    }

    async fn sync(&self, dir_dirty: &mut bool, segments: &[SegmentId]) -> Result<()> {
        if let Some(stopped) = self.fail_stopped() {
            return Err(stopped);
        }
        for segment in segments {
            let file = self.files.borrow().get(segment).cloned();
            // A segment removed before its sync has nothing left to make durable.
            if let Some(file) = file {
                let name = segment.file_name();
                let done = file.sync_data().await;
                done.map_err(|e| StorageError::io("fdatasync", &self.disk.describe(&name), 0, e))?;
            }
        }
        if *dir_dirty {
            let done = self.disk.sync_dir().await;
            done.map_err(|e| StorageError::io("fsync directory", &self.disk.describe("."), 0, e))?;
            *dir_dirty = false;
        }
        Ok(())
    }
}

async fn writer_loop<D: Disk>(shared: Rc<WriterShared<D>>, wake: LocalReceiver<()>) {
    let mut dir_dirty = false;
    loop {
        let job = shared.queue.borrow_mut().pop_front();
        let Some(job) = job else {
            if wake.recv().await.is_none() {
                break;
            }
            continue;
        };
        match job {
            Job::Write {
                segment,
                offset,
                buf,
                seq,
                credited,
            } => {
                if shared.fail_stopped().is_none()
                    && let Err(e) = shared.write(&mut dir_dirty, segment, offset, buf).await
                {
                    shared.fail(&e);
                }
                shared.completed_seq.set(seq);
                if credited {
                    shared.credits.signal(1);
                }
            }
            Job::Sync {
                segments,
                seq,
                done,
            } => {
                let result = shared.sync(&mut dir_dirty, &segments).await;
                if result.is_ok() {
                    shared.synced_seal_seq.set(seq);
                }
                if let Err(e) = &result {
                    // Fail-stop: after a failed fsync the page cache may have dropped the data;
                    // retrying would report durability that does not exist.
                    shared.fail(e);
                }
                // The receiver may have been dropped; the failure is recorded either way.
                let _ = done.try_send(result);
            }
            Job::Remove { segment } => {
                shared.files.borrow_mut().remove(&segment);
                // A file that cannot be removed is only wasted space; open() removes unnamed
                // segments again.
                let _ = shared.disk.remove(&segment.file_name()).await;
                dir_dirty = true;
            }
            Job::RemoveFile { name } => {
                // As above: an index file left behind is removed by the next open.
                let _ = shared.disk.remove(&name).await;
                dir_dirty = true;
            }
        }
    }
}

/// The per-shard log.
pub(crate) struct Log<D: Disk> {
    disk: Rc<D>,
    shared: Rc<WriterShared<D>>,
    wake: LocalSender<()>,
    pub cache: Cache<D::Buf>,
    pub segments: BTreeMap<SegmentId, SegmentMeta>,
    active: SegmentId,
    next_segment: SegmentId,
    segment_bytes: u64,
    buf: D::Buf,
    /// File offset of `buf[0]`, block aligned.
    buf_offset: u64,
    /// Bytes of `buf` holding frames.
    filled: usize,
    /// Bytes of `buf` already handed to the writer (the carried tail block).
    flushed: usize,
    next_write_seq: u64,
    dirty: Vec<SegmentId>,
    seal_seq: u64,
    /// Frame bytes appended over the log's lifetime (drives the index-file policy).
    pub appended_bytes: u64,
}

impl<D: Disk> Log<D> {
    /// Starts a log over `segments` (recovered, all sealed) with a fresh active segment, and
    /// spawns its writer task on the current glommio executor.
    pub fn start(
        disk: Rc<D>,
        segment_bytes: u64,
        budget_bytes: usize,
        segments: BTreeMap<SegmentId, SegmentMeta>,
        files: HashMap<SegmentId, Rc<D::File>>,
        next_segment: SegmentId,
        seal_seq: u64,
    ) -> Self {
        assert!(segments.keys().all(|id| *id < next_segment));
        let shared = Rc::new(WriterShared {
            disk: Rc::clone(&disk),
            queue: RefCell::new(VecDeque::new()),
            files: RefCell::new(files),
            failed: RefCell::new(None),
            completed_seq: Cell::new(0),
            synced_seal_seq: Cell::new(seal_seq),
            credits: Rc::new(Semaphore::new(WRITES_INFLIGHT_MAX)),
        });
        let (wake, wake_rx) = local_channel::new_unbounded();
        glommio::spawn_local(writer_loop(Rc::clone(&shared), wake_rx)).detach();
        let buf = disk.alloc_buf(WRITE_BUFFER_BYTES);
        let mut log = Self {
            disk,
            shared,
            wake,
            cache: Cache::new(budget_bytes),
            segments,
            active: next_segment,
            next_segment,
            segment_bytes,
            buf,
            buf_offset: 0,
            filled: 0,
            flushed: 0,
            next_write_seq: 1,
            dirty: Vec::new(),
            seal_seq,
            appended_bytes: 0,
        };
        log.open_segment();
        log
    }

    /// The credit semaphore `put` waits on after it pushed writes.
    pub fn credits(&self) -> Rc<Semaphore> {
        Rc::clone(&self.shared.credits)
    }

    /// The first I/O error, as a fail-stop error, if any.
    pub fn fail_stopped(&self) -> Option<StorageError> {
        self.shared.fail_stopped()
    }

    /// The active segment.
    pub fn active(&self) -> SegmentId {
        self.active
    }

    /// Appends one frame; returns its location and how many credited writes it queued.
    pub fn append(
        &mut self,
        kind: FrameKind,
        key: &StateKey<'_>,
        value: &[u8],
    ) -> Result<(Loc, u32)> {
        if let Some(stopped) = self.fail_stopped() {
            return Err(stopped);
        }
        let frame_len = frame_bytes(key, value.len())?;
        let mut queued = 0;
        if self.buf_offset + (self.filled + frame_len) as u64 > self.segment_bytes {
            queued += u32::from(self.flush(true));
            self.open_segment();
        } else if self.filled + frame_len > WRITE_BUFFER_BYTES {
            queued += u32::from(self.flush(true));
        }
        let start = self.filled;
        let slot = self.buf.as_mut().get_mut(start..start + frame_len);
        encode_frame(
            slot.expect("bounds.rs keeps a frame within a fresh buffer"),
            kind,
            key,
            value,
        );
        self.filled += frame_len;
        self.appended_bytes += frame_len as u64;
        let offset = self.buf_offset + start as u64;
        let end = offset + frame_len as u64;
        if let Some(meta) = self.segments.get_mut(&self.active) {
            meta.len = end;
        }
        let offset = u32::try_from(offset).expect("SEGMENT_BYTES_MAX fits u32");
        let len = u32::try_from(frame_len).expect("FRAME_BYTES_MAX fits u32");
        Ok((
            Loc {
                segment: self.active,
                offset,
                len,
            },
            queued,
        ))
    }

    /// Hands everything appended since the last flush to the writer; false if nothing was new.
    fn flush(&mut self, credited: bool) -> bool {
        if self.filled == self.flushed {
            return false;
        }
        let aligned = align_up(self.filled as u64) as usize;
        let keep_from = align_down(self.filled as u64) as usize;
        if let Some(pad) = self.buf.as_mut().get_mut(self.filled..aligned) {
            pad.fill(0);
        }
        let mut next = self.disk.alloc_buf(WRITE_BUFFER_BYTES);
        let carry = self.filled - keep_from;
        let tail = self
            .buf
            .as_ref()
            .get(keep_from..self.filled)
            .unwrap_or_default();
        if let Some(dst) = next.as_mut().get_mut(..carry) {
            dst.copy_from_slice(tail);
        }
        let mut full = std::mem::replace(&mut self.buf, next);
        full.trim(aligned);
        let full = Rc::new(full);
        let seq = self.next_write_seq;
        self.next_write_seq += 1;
        let start = u32::try_from(self.buf_offset).expect("SEGMENT_BYTES_MAX fits u32");
        let valid = u32::try_from(self.filled).expect("buffer fits u32");
        self.cache
            .insert_chunk(self.active, start, Rc::clone(&full), valid, seq);
        self.push(Job::Write {
            segment: self.active,
            offset: self.buf_offset,
            buf: full,
            seq,
            credited,
        });
        if self.dirty.last() != Some(&self.active) {
            self.dirty.push(self.active);
        }
        self.buf_offset += keep_from as u64;
        self.filled = carry;
        self.flushed = carry;
        self.cache.evict_chunks(self.shared.completed_seq.get());
        true
    }

    fn open_segment(&mut self) {
        let id = self.next_segment;
        self.next_segment = SegmentId(id.0 + 1);
        self.active = id;
        self.buf_offset = 0;
        self.flushed = 0;
        let header = self.buf.as_mut().get_mut(..SEGMENT_HEADER_BYTES);
        encode_segment_header(header.expect("buffer larger than a header"), id);
        self.filled = SEGMENT_HEADER_BYTES;
        let len = SEGMENT_HEADER_BYTES as u64;
        self.segments.insert(id, SegmentMeta { len, live_bytes: 0 });
    }

    fn push(&mut self, job: Job<D>) {
        let mut queue = self.shared.queue.borrow_mut();
        let was_empty = queue.is_empty();
        queue.push_back(job);
        if was_empty {
            // Unbounded channel: try_send only fails if the writer is gone, which it is not
            // while the log holds the sender.
            let _ = self.wake.try_send(());
        }
    }

    /// Flushes, queues an fdatasync of every segment written since the last seal, and returns
    /// the position with a receiver that yields when it is durable. Never waits.
    pub fn seal(&mut self) -> Result<(Position, LocalReceiver<Result<()>>)> {
        if let Some(stopped) = self.fail_stopped() {
            return Err(stopped);
        }
        self.flush(false);
        self.seal_seq += 1;
        let segments = self
            .segments
            .iter()
            .map(|(id, meta)| (*id, meta.len))
            .collect();
        let position = Position {
            seq: self.seal_seq,
            segments,
        };
        let (done, receiver) = local_channel::new_bounded(1);
        let segments = std::mem::take(&mut self.dirty);
        let seq = self.seal_seq;
        self.push(Job::Sync {
            segments,
            seq,
            done,
        });
        Ok((position, receiver))
    }

    /// Bytes of a frame still in the active buffer, if `loc` is there.
    pub fn active_bytes(&self, loc: Loc) -> Option<&[u8]> {
        if loc.segment != self.active || u64::from(loc.offset) < self.buf_offset {
            return None;
        }
        let start = (u64::from(loc.offset) - self.buf_offset) as usize;
        self.buf.as_ref().get(start..start + loc.len as usize)
    }

    /// The open file of `segment`, for reads.
    pub fn file(&self, segment: SegmentId) -> Option<Rc<D::File>> {
        self.shared.files.borrow().get(&segment).cloned()
    }

    /// Drops a segment from the live set (its bytes were compacted elsewhere).
    pub fn retire_segment(&mut self, segment: SegmentId) {
        assert_ne!(segment, self.active);
        self.segments.remove(&segment);
        self.cache.drop_segment(segment);
    }

    /// Queues removal of a retired segment's file behind every queued write.
    pub fn remove_file(&mut self, segment: SegmentId) {
        assert!(!self.segments.contains_key(&segment));
        self.push(Job::Remove { segment });
    }

    /// Queues removal of an index file behind every queued write and sync.
    pub fn remove_index_file(&mut self, name: String) {
        self.push(Job::RemoveFile { name });
    }

    /// Seal sequence number of the newest seal whose fdatasync completed.
    pub fn synced_seal_seq(&self) -> u64 {
        self.shared.synced_seal_seq.get()
    }

    /// The disk, for index-file builds.
    pub fn disk(&self) -> &Rc<D> {
        &self.disk
    }

    /// Evicts cache chunks that the writer has finished with.
    pub fn evict(&mut self) {
        self.cache.evict_chunks(self.shared.completed_seq.get());
    }
}
