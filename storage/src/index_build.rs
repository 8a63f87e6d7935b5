//! Writing index files: when a seal starts one, the background build, and which files stay.
//!
//! At a seal the [`IndexFilePolicy`] decides whether to write an index file of the sealed
//! position `P`. If so, the seal freezes the index's overlay (O(1): the table moves into an
//! `Rc`) and spawns one build task on the shard, which:
//! 1. merges the frozen overlay into the base layer (`index_file::merge`, yielding to the
//!    shard), and installs the result as the new base: from then on the in-memory index is the
//!    new base plus the overlay written since the seal;
//! 2. waits until `P` is durable (the log's fdatasync of `P` completed), so an index file never
//!    describes bytes that a crash could take back; if the store fail-stops first, no file is
//!    written;
//! 3. writes `idx-<seq>.idx` in large aligned writes, fdatasyncs it and the directory.
//!
//! Seal never waits for any of this, and the position it returns does not name the index file:
//! recovery finds index files by listing and trusts one only after its crc, its structure and
//! its position check out (`recovery.rs`). So an index file's write, fsync or contents can
//! fail in any way without a wrong recovery: a failed write or fsync abandons the file (removed
//! at once, or by the next open), and does not fail-stop the store, whose log is intact.
//!
//! Retention: the newest index file is always kept; an older one is kept while some retained
//! position `T` has it as its newest index file at or before `T` (`IndexFiles::prunable`).
//! Index files do not retain segments: recovery from an index file at `P` to a position `T`
//! never reads a segment outside `T` (recovery policy 4 checks this).

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::{Rc, Weak};
use std::time::Duration;

use glommio::channels::local_channel::{self, LocalSender};

use crate::bounds::INDEX_READ_BYTES;
use crate::disk::{Disk, DiskBuf, DiskFile};
use crate::error::{Result, StorageError};
use crate::format::{Position, align_up};
use crate::ids::SegmentId;
use crate::index::Overlay;
use crate::index_file::{BaseIndex, SegmentRecord, index_file_name, merge};
use crate::store::{IndexFilePolicy, Inner};

/// How often a build checks whether its position is durable yet.
const DURABLE_POLL: Duration = Duration::from_micros(200);

/// What the last finished index-file build did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexBuildOutcome {
    /// The file for this seal sequence number is durable.
    Written {
        /// Seal sequence number of its position.
        seq: u64,
        /// Keys in it.
        keys: usize,
    },
    /// No file was written for this seal; the reason (I/O error, fail-stop, size).
    Abandoned {
        /// Seal sequence number of its position.
        seq: u64,
        /// Why.
        reason: String,
    },
}

/// The store's index files and its build in progress.
#[derive(Debug, Default)]
pub(crate) struct IndexFiles {
    /// The index files on disk: seal sequence number → the segments of their position.
    on_disk: BTreeMap<u64, Vec<(SegmentId, u64)>>,
    /// Frame bytes appended since the newest build started (or not covered by the index file
    /// recovery started from).
    unindexed_bytes: u64,
    /// `Log::appended_bytes` when `unindexed_bytes` was last updated.
    appended_seen: u64,
    /// Seal sequence number and segments of the build in progress.
    building: Option<(u64, Vec<(SegmentId, u64)>)>,
    /// Outcome of the last finished build.
    pub last: Option<IndexBuildOutcome>,
}

impl IndexFiles {
    /// After recovery: the index file kept, and the bytes replayed past it.
    pub fn new(kept: Option<(u64, Vec<(SegmentId, u64)>)>, unindexed_bytes: u64) -> Self {
        Self {
            on_disk: kept.into_iter().collect(),
            unindexed_bytes,
            ..Self::default()
        }
    }

    /// Seal sequence numbers of the index files on disk, ascending.
    pub fn on_disk(&self) -> Vec<u64> {
        self.on_disk.keys().copied().collect()
    }

    /// Whether an index file on disk or being built covers less of `segment` than its first
    /// `len` bytes. Its base may then hold puts that a tombstone in those bytes deletes, so
    /// compaction must carry such tombstones forward even with no older segment left: recovery
    /// from that file replays the tombstone only if it survives in a segment after the file's
    /// position (otherwise the key would come back, which recovery's check 4 would catch and
    /// answer with a full scan).
    pub fn predates(&self, segment: SegmentId, len: u64) -> bool {
        let building = self.building.iter().map(|(_, segments)| segments);
        self.on_disk
            .values()
            .chain(building)
            .any(|segments| !segments.iter().any(|&(s, l)| s == segment && l >= len))
    }

    /// Whether a build is running.
    pub fn building(&self) -> bool {
        self.building.is_some()
    }

    /// Removes from the set and returns the names of index files no retained position needs:
    /// every file but the newest, unless a retained seal sequence number lies in
    /// `[its seq, the next file's seq)`.
    pub fn prunable(&mut self, retained_seqs: &BTreeMap<u64, u32>) -> Vec<String> {
        let seqs: Vec<u64> = self.on_disk.keys().copied().collect();
        let mut names = Vec::new();
        for pair in seqs.windows(2) {
            let [seq, next] = pair else { continue };
            if retained_seqs.range(*seq..*next).next().is_none() {
                self.on_disk.remove(seq);
                names.push(index_file_name(*seq));
            }
        }
        names
    }
}

/// One build: the sealed position and the layers it folds.
pub(crate) struct BuildJob {
    seq: u64,
    segments: Vec<SegmentRecord>,
    frozen: Rc<Overlay>,
    base: Option<Rc<BaseIndex>>,
}

impl BuildJob {
    /// Called by `seal` right after sealing `position`: applies the policy and, if a build is
    /// due and none runs, freezes the overlay. O(segments).
    pub fn due<D: Disk>(inner: &mut Inner<D>, position: &Position) -> Option<Self> {
        let files = &mut inner.index_files;
        let appended = inner.log.appended_bytes;
        files.unindexed_bytes += appended - files.appended_seen;
        files.appended_seen = appended;
        if files.building.is_some() {
            return None;
        }
        let log_bytes: u64 = inner.log.segments.values().map(|m| m.len).sum();
        let due = match inner.config.index_files {
            IndexFilePolicy::Never => false,
            IndexFilePolicy::EverySeal => true,
            IndexFilePolicy::Auto { min_bytes } => {
                files.unindexed_bytes >= min_bytes && files.unindexed_bytes * 2 >= log_bytes
            }
        };
        if !due {
            return None;
        }
        let (frozen, base) = inner.index.freeze()?;
        files.building = Some((position.seq, position.segments.clone()));
        files.unindexed_bytes = 0;
        let segments = position
            .segments
            .iter()
            .map(|&(segment, len)| SegmentRecord {
                segment,
                len,
                live_bytes: inner.log.segments.get(&segment).map_or(0, |m| m.live_bytes),
            })
            .collect();
        Some(Self {
            seq: position.seq,
            segments,
            frozen,
            base,
        })
    }

    /// Hands the build to the store's builder task (`spawn_builder`); never waits.
    pub fn send(self, builder: &LocalSender<BuildJob>) {
        // The builder lives as long as the store that holds this sender, and the channel is
        // unbounded (at most one job is in flight), so this cannot fail while `self` exists.
        let _ = builder.try_send(self);
    }

    async fn run<D: Disk>(self, weak: Weak<RefCell<Inner<D>>>) {
        let seq = self.seq;
        let merged = merge(seq, self.segments, self.base.as_deref(), &self.frozen).await;
        drop(self.frozen);
        drop(self.base);
        let Some(rc) = weak.upgrade() else { return };
        let Some(merged) = merged else {
            let mut inner = rc.borrow_mut();
            inner.index.thaw();
            finish(
                &mut inner,
                seq,
                Err("index exceeds the format's u32 counts".into()),
            );
            return;
        };
        let merged = Rc::new(merged);
        rc.borrow_mut().index.install(Rc::clone(&merged));
        drop(rc);
        let outcome = match wait_durable(&weak, seq).await {
            Some(Ok(())) => write_file(&weak, seq, &merged).await,
            Some(Err(e)) => Err(format!("position not durable: {e}")),
            None => return,
        };
        let Some(rc) = weak.upgrade() else { return };
        let mut inner = rc.borrow_mut();
        let keys = merged.len();
        finish(&mut inner, seq, outcome.map(|()| keys));
    }
}

fn finish<D: Disk>(inner: &mut Inner<D>, seq: u64, outcome: std::result::Result<usize, String>) {
    let segments = inner.index_files.building.take().map(|(_, s)| s);
    inner.index_files.last = Some(match outcome {
        Ok(keys) => {
            let segments = segments.expect("a finished build was running");
            inner.index_files.on_disk.insert(seq, segments);
            inner.prune_index_files();
            IndexBuildOutcome::Written { seq, keys }
        }
        Err(reason) => {
            // The file may exist in part; it is not in `on_disk`, so only its removal is owed.
            inner.log.remove_index_file(index_file_name(seq));
            IndexBuildOutcome::Abandoned { seq, reason }
        }
    });
}

/// Starts the store's builder task, which runs the jobs seals send it, one at a time. It
/// holds the store weakly and ends when the store (which holds the sender) is dropped.
///
/// Why a long-lived task rather than one spawned per build: spawning from inside `seal`
/// measured 30-100 ms in the seal's synchronous part while a base existed (the new task ran
/// within the spawning call), and seal must stay O(1).
pub(crate) fn spawn_builder<D: Disk>(weak: Weak<RefCell<Inner<D>>>) -> LocalSender<BuildJob> {
    let (sender, jobs) = local_channel::new_unbounded::<BuildJob>();
    glommio::spawn_local(async move {
        while let Some(job) = jobs.recv().await {
            job.run(weak.clone()).await;
        }
    })
    .detach();
    sender
}

/// Waits until the seal `seq` is durable. `None` if the store was dropped.
async fn wait_durable<D: Disk>(weak: &Weak<RefCell<Inner<D>>>, seq: u64) -> Option<Result<()>> {
    loop {
        {
            let rc = weak.upgrade()?;
            let inner = rc.borrow();
            if inner.log.synced_seal_seq() >= seq {
                return Some(Ok(()));
            }
            if let Some(stopped) = inner.log.fail_stopped() {
                return Some(Err(stopped));
            }
        }
        glommio::timer::sleep(DURABLE_POLL).await;
    }
}

/// Writes, fdatasyncs and publishes (directory fsync) the index file of `base`.
async fn write_file<D: Disk>(
    weak: &Weak<RefCell<Inner<D>>>,
    seq: u64,
    base: &BaseIndex,
) -> std::result::Result<(), String> {
    let name = index_file_name(seq);
    let disk = {
        let rc = weak.upgrade().ok_or("store dropped")?;
        Rc::clone(rc.borrow().log.disk())
    };
    let path = disk.describe(&name);
    let io = |op, offset, e| StorageError::io(op, &path, offset, e).to_string();
    let file = disk.create(&name).await.map_err(|e| io("create", 0, e))?;
    let [head, crc] = base.file_parts();
    let [dir, entries, heap] = base.body_sections();
    let mut buf = disk.alloc_buf(INDEX_READ_BYTES);
    let (mut filled, mut offset) = (0usize, 0u64);
    for mut part in [&head[..], dir, entries, heap, &crc[..]] {
        while !part.is_empty() {
            let room = INDEX_READ_BYTES - filled;
            let take = room.min(part.len());
            if let Some(dst) = buf.as_mut().get_mut(filled..filled + take) {
                dst.copy_from_slice(part.get(..take).unwrap_or_default());
            }
            filled += take;
            part = part.get(take..).unwrap_or_default();
            if filled == INDEX_READ_BYTES {
                // One buffer for the whole file: each write is awaited before the next fill,
                // so the buffer comes back (no allocation per 4 MiB written).
                let full = Rc::new(buf);
                write_block(weak, &file, Rc::clone(&full), offset, &io).await?;
                buf = Rc::try_unwrap(full).unwrap_or_else(|_| disk.alloc_buf(INDEX_READ_BYTES));
                offset += INDEX_READ_BYTES as u64;
                filled = 0;
            }
        }
    }
    if filled > 0 {
        let aligned = align_up(filled as u64) as usize;
        if let Some(pad) = buf.as_mut().get_mut(filled..aligned) {
            pad.fill(0);
        }
        buf.trim(aligned);
        write_block(weak, &file, Rc::new(buf), offset, &io).await?;
    }
    file.sync_data().await.map_err(|e| io("fdatasync", 0, e))?;
    let dir = disk.describe(".");
    disk.sync_dir()
        .await
        .map_err(|e| StorageError::io("fsync directory", &dir, 0, e).to_string())?;
    Ok(())
}

async fn write_block<D: Disk>(
    weak: &Weak<RefCell<Inner<D>>>,
    file: &D::File,
    buf: Rc<D::Buf>,
    offset: u64,
    io: &impl Fn(&'static str, u64, std::io::Error) -> String,
) -> std::result::Result<(), String> {
    // A dropped store's build must not keep writing into a directory a new store may own.
    if weak.strong_count() == 0 {
        return Err("store dropped".into());
    }
    let len = (*buf).as_ref().len();
    let written = file
        .write_at(buf, offset)
        .await
        .map_err(|e| io("write", offset, e))?;
    if written != len {
        return Err(format!("short write {written}/{len} at {offset}"));
    }
    Ok(())
}

/// Waits for the build in progress, if any, and returns the last finished build's outcome.
pub(crate) async fn wait_idle<D: Disk>(inner: &Rc<RefCell<Inner<D>>>) -> Option<IndexBuildOutcome> {
    while inner.borrow().index_files.building() {
        glommio::timer::sleep(DURABLE_POLL).await;
    }
    inner.borrow().index_files.last.clone()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn tombstones_are_kept_while_an_index_file_predates_them() {
        let mut files =
            IndexFiles::new(Some((5, vec![(SegmentId(1), 100), (SegmentId(2), 50)])), 0);
        // Segment 1 is wholly inside the file's position: its tombstones are in the base.
        assert!(!files.predates(SegmentId(1), 100));
        // Bytes of segment 2 after 50, and all of segment 3, came after the file.
        assert!(files.predates(SegmentId(2), 80));
        assert!(files.predates(SegmentId(3), 10));
        // A newer file covering them does not make the older one irrelevant while it is kept.
        files
            .on_disk
            .insert(9, vec![(SegmentId(2), 80), (SegmentId(3), 10)]);
        assert!(files.predates(SegmentId(3), 10));
        // Once only the newer file is kept (no retained position needs the older), they may go.
        let pruned = files.prunable(&BTreeMap::new());
        assert_eq!(pruned, vec![index_file_name(5)]);
        assert!(!files.predates(SegmentId(3), 10));
        // A build in flight counts too: it becomes a file that may predate the tombstone.
        files.building = Some((10, vec![(SegmentId(4), 32)]));
        assert!(files.predates(SegmentId(3), 10));
    }

    #[test]
    fn older_index_files_stay_while_a_retained_position_needs_them() {
        let mut files = IndexFiles::default();
        for seq in [3, 6, 9] {
            files.on_disk.insert(seq, Vec::new());
        }
        // Position 7 recovers from file 6; 4 from 3; nothing needs a file for 9's range but 9
        // is the newest and always stays.
        let retained = BTreeMap::from([(4, 1), (7, 1)]);
        assert!(files.prunable(&retained).is_empty());
        let retained = BTreeMap::from([(7, 1)]);
        assert_eq!(files.prunable(&retained), vec![index_file_name(3)]);
        assert_eq!(files.on_disk(), vec![6, 9]);
    }
}
