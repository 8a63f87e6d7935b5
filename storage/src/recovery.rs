//! Opening a store at a sealed position: verify, rebuild, cut off.
//!
//! Policy (named, not implicit):
//! 1. Every segment named by the position must exist and be at least as long as the position
//!    says; each is scanned from its header to the named length and every frame's crc is
//!    checked. Any failure is an error naming the file and offset; nothing is returned from a
//!    store that failed to open, so unverified data never reaches the caller.
//! 2. The index and per-segment live-byte counts are rebuilt by replaying the frames in segment
//!    order (later frames win), in batches applied key group by key group (`replay.rs`).
//! 3. Bytes after the position in its last segment are classified (clean / unsealed frames /
//!    torn write), reported, and truncated away. Segment files the position does not name are
//!    removed: frames written after the seal, and segments compacted away before it.
//!    Opening at a position makes it the store's only retained position. Steps 1–2 only read;
//!    step 3 ([`cut`]) is the only one that changes files, and runs after the caller accepted
//!    the verified store (`Store::verify` / `VerifiedStore::open`).
//! 4. Writing resumes in a new segment numbered after every file seen.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::disk::{Disk, DiskFile};
use crate::error::{Result, StorageError};
use crate::format::Position;
use crate::ids::SegmentId;
use crate::index::Index;
use crate::log::SegmentMeta;
use crate::replay::ReplayBatch;
use crate::segment::{SegmentScan, TailState, classify_tail};

/// What recovery found and did.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// The position the store was opened at.
    pub position: Position,
    /// Frames verified and replayed.
    pub frames: u64,
    /// Bytes verified.
    pub bytes: u64,
    /// Live keys after replay.
    pub keys: usize,
    /// What followed the position in its last segment (discarded).
    pub tail: TailState,
    /// Segment files not named by the position, removed.
    pub removed_segments: Vec<SegmentId>,
    /// Wall time of the whole open.
    pub elapsed: Duration,
}

/// Everything the store needs to resume after recovery.
pub(crate) struct Recovered<D: Disk> {
    pub index: Index,
    pub segments: BTreeMap<SegmentId, SegmentMeta>,
    pub files: HashMap<SegmentId, Rc<D::File>>,
    pub next_segment: SegmentId,
    /// The last segment, its file and the sealed length it is cut to (when bytes follow the
    /// position).
    pub cut_tail: Option<(SegmentId, Rc<D::File>, u64)>,
    pub report: RecoveryReport,
}

fn listed_segments<D: Disk>(disk: &D) -> Result<Vec<SegmentId>> {
    let names = disk
        .list()
        .map_err(|e| StorageError::io("list", &disk.describe("."), 0, e))?;
    let mut ids: Vec<_> = names
        .iter()
        .filter_map(|n| SegmentId::from_file_name(n))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Rebuilds the state at `position`. `position: None` starts empty and removes every segment.
pub(crate) async fn recover<D: Disk>(
    disk: &D,
    position: Option<&Position>,
) -> Result<Recovered<D>> {
    let started = Instant::now();
    let empty = Position {
        seq: 0,
        segments: Vec::new(),
    };
    let position = position.unwrap_or(&empty);
    let on_disk = listed_segments(disk)?;
    let mut index = Index::default();
    let mut segments = BTreeMap::new();
    let mut files = HashMap::new();
    let (mut frames, mut bytes) = (0u64, 0u64);
    let mut tail = TailState::Clean;
    let mut batch = ReplayBatch::default();
    let mut cut_tail = None;
    for (i, &(segment, len)) in position.segments.iter().enumerate() {
        let name = segment.file_name();
        let path = disk.describe(&name);
        if !on_disk.contains(&segment) {
            return Err(StorageError::SegmentMissing { file: path });
        }
        let file = Rc::new(
            disk.open(&name)
                .await
                .map_err(|e| StorageError::io("open", &path, 0, e))?,
        );
        let size = file
            .size()
            .await
            .map_err(|e| StorageError::io("stat", &path, 0, e))?;
        if size < len {
            return Err(StorageError::corrupt(
                &path,
                size,
                format!("file is shorter than the sealed length {len}"),
            ));
        }
        segments.insert(segment, SegmentMeta { len, live_bytes: 0 });
        frames += replay(
            &file,
            &path,
            segment,
            len,
            &mut batch,
            &mut index,
            &mut segments,
        )
        .await?;
        bytes += len;
        if i + 1 == position.segments.len() && size > len {
            tail = classify_tail(&*file, &path, len, size).await?;
            cut_tail = Some((segment, Rc::clone(&file), len));
        }
        files.insert(segment, file);
    }
    batch.apply(&mut index, &mut segments);
    let removed_segments: Vec<SegmentId> = on_disk
        .iter()
        .copied()
        .filter(|segment| !segments.contains_key(segment))
        .collect();
    let highest = on_disk
        .iter()
        .chain(segments.keys())
        .max()
        .map_or(0, |id| id.0 + 1);
    let keys = index.len();
    let report = RecoveryReport {
        position: position.clone(),
        frames,
        bytes,
        keys,
        tail,
        removed_segments,
        elapsed: started.elapsed(),
    };
    Ok(Recovered {
        index,
        segments,
        files,
        next_segment: SegmentId(highest),
        cut_tail,
        report,
    })
}

/// Makes the position the end of the store on disk: truncates what follows it in its last
/// segment and removes the segment files it does not name (`report.removed_segments`). This
/// is the only step of opening that changes files, so a caller can verify several candidate
/// positions (or shards) first and cut only once it has chosen.
pub(crate) async fn cut<D: Disk>(disk: &D, recovered: &Recovered<D>) -> Result<()> {
    if let Some((segment, file, len)) = &recovered.cut_tail {
        let (segment, len) = (*segment, *len);
        let path = disk.describe(&segment.file_name());
        file.truncate(len)
            .await
            .map_err(|e| StorageError::io("truncate", &path, len, e))?;
    }
    let removed = &recovered.report.removed_segments;
    for segment in removed {
        let path = disk.describe(&segment.file_name());
        disk.remove(&segment.file_name())
            .await
            .map_err(|e| StorageError::io("remove", &path, 0, e))?;
    }
    if !removed.is_empty() {
        disk.sync_dir()
            .await
            .map_err(|e| StorageError::io("fsync directory", &disk.describe("."), 0, e))?;
    }
    Ok(())
}

/// Verifies one segment's frames and queues them in `batch` (applied whenever it fills);
/// returns the number of frames.
async fn replay<F: DiskFile>(
    file: &Rc<F>,
    path: &str,
    segment: SegmentId,
    len: u64,
    batch: &mut ReplayBatch,
    index: &mut Index,
    segments: &mut BTreeMap<SegmentId, SegmentMeta>,
) -> Result<u64> {
    let mut scan = SegmentScan::new(Rc::clone(file), path.to_owned(), segment, len);
    let mut frames = 0u64;
    let mut visit = |offset: u64, frame: &crate::format::Frame<'_>| -> Result<()> {
        frames += 1;
        if batch.push(segment, offset, frame) {
            batch.apply(index, segments);
        }
        Ok(())
    };
    while scan.next_batch(&mut visit).await? {}
    Ok(frames)
}
