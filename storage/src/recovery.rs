//! Opening a store at a sealed position: load an index file or scan, verify, cut off.
//!
//! Policy (named, not implicit):
//! 1. Every segment named by the position must exist, be at least as long as the position
//!    says, and have a valid header. Any failure is an error naming the file and offset;
//!    nothing is returned from a store that failed to open.
//! 2. The index starts from the newest **index file** whose position `P` lies at or before the
//!    target `T` (`index_file.rs`): its own crc and structure must verify, and `P` must be a
//!    prefix of `T` (same lengths for segments sealed at `P`, no shorter last segment, new
//!    segments numbered after `P`'s). Its bytes become the index's read-only base. A file that
//!    fails is reported in [`RecoveryReport::index_fallbacks`] and the next older one is tried;
//!    with none left, recovery scans every segment from its header (a full scan).
//! 3. Frames written after `P` (all frames for a full scan) are read, their crcs checked, and
//!    replayed into the index in log order, batched by key group (`replay.rs`). Frames before
//!    `P` are **not** read at open: their integrity rests on the index file's crc for the
//!    index, and on the frame crc checked by every read of a value (`segment::read_value`), so
//!    a corrupt value is an error when read, never returned. [`crate::Store::scrub`] verifies
//!    every frame of every segment on demand.
//! 4. Self-check: every segment `P` names but `T` does not (compacted away after `P`) must end
//!    with zero live bytes after the replay: every live key it held was copied or overwritten
//!    by a frame after `P`. Otherwise the index file is inconsistent with the log and recovery
//!    falls back as in 2.
//! 5. Bytes after the position in its last segment are classified (clean / unsealed frames /
//!    torn write), reported, and truncated away. Segment files the position does not name are
//!    removed, and so is every index file but the one used (newer ones belong to a history
//!    after `T` that this open discards; older ones are superseded). Opening at a position
//!    makes it the store's only retained position. Steps 1–4 only read; step 5 ([`cut`]) is
//!    the only one that changes files, and runs once the caller accepted the verified store
//!    (`Store::verify` / `VerifiedStore::open`).
//! 6. Writing resumes in a new segment numbered after every file seen.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use crate::disk::{Disk, DiskFile};
use crate::error::{Result, StorageError};
use crate::format::{Position, SEGMENT_HEADER_BYTES};
use crate::ids::SegmentId;
use crate::index::Index;
use crate::index_file::{BaseIndex, index_file_name, index_file_seq};
use crate::log::SegmentMeta;
use crate::replay::ReplayBatch;
use crate::segment::{SegmentScan, TailState, classify_tail, verify_header};

/// What recovery found and did.
#[derive(Debug, Clone)]
pub struct RecoveryReport {
    /// The position the store was opened at.
    pub position: Position,
    /// Frames verified and replayed (those after the index file's position).
    pub frames: u64,
    /// Bytes of frames verified and replayed.
    pub bytes: u64,
    /// Live keys after replay.
    pub keys: usize,
    /// What followed the position in its last segment (discarded).
    pub tail: TailState,
    /// Segment files not named by the position, removed.
    pub removed_segments: Vec<SegmentId>,
    /// The index file recovery started from; `None` means a full scan.
    pub index_file: Option<IndexFileUse>,
    /// Index files tried and rejected, newest first, each with the reason.
    pub index_fallbacks: Vec<IndexFallback>,
    /// Index files removed (rejected, superseded, or beyond the position).
    pub removed_index_files: Vec<String>,
    /// Wall time of the whole open.
    pub elapsed: Duration,
}

/// The index file a recovery started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFileUse {
    /// The file.
    pub file: String,
    /// Seal sequence number of the position it covers.
    pub seq: u64,
    /// Keys it held.
    pub keys: usize,
}

/// An index file recovery could not use, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexFallback {
    /// The file.
    pub file: String,
    /// The failed check (crc, structure, position, consistency) or I/O error.
    pub reason: String,
}

/// Everything the store needs to resume after recovery.
pub(crate) struct Recovered<D: Disk> {
    pub index: Index,
    pub segments: BTreeMap<SegmentId, SegmentMeta>,
    pub files: HashMap<SegmentId, Rc<D::File>>,
    pub next_segment: SegmentId,
    /// The index file kept on disk: `(seq, name)`.
    pub index_file: Option<(u64, String)>,
    /// The last segment's file, the sealed length it is cut to and its path (when bytes
    /// follow the position).
    pub cut_tail: Option<(Rc<D::File>, u64, String)>,
    /// Index files `cut` removes (all but the one used).
    pub index_files_to_remove: Vec<String>,
    pub report: RecoveryReport,
}

/// One segment of the target position, opened and size-checked.
struct Opened<F> {
    segment: SegmentId,
    len: u64,
    size: u64,
    file: Rc<F>,
    path: String,
}

/// The index and segment metadata replayed up to the target position.
struct Replayed {
    index: Index,
    segments: BTreeMap<SegmentId, SegmentMeta>,
    frames: u64,
    bytes: u64,
    /// Why the replay contradicts the index file it started from (see policy 4).
    inconsistent: Option<String>,
}

fn listed<D: Disk>(disk: &D) -> Result<(Vec<SegmentId>, Vec<u64>)> {
    let names = disk
        .list()
        .map_err(|e| StorageError::io("list", &disk.describe("."), 0, e))?;
    let mut ids: Vec<_> = names
        .iter()
        .filter_map(|n| SegmentId::from_file_name(n))
        .collect();
    ids.sort();
    let mut seqs: Vec<_> = names.iter().filter_map(|n| index_file_seq(n)).collect();
    seqs.sort();
    Ok((ids, seqs))
}

/// Rebuilds the state at `position`. `position: None` starts empty and removes every segment
/// and index file.
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
    let (on_disk, index_seqs) = listed(disk)?;
    let opened = open_segments(disk, position, &on_disk).await?;

    let mut index_fallbacks = Vec::new();
    let mut used = None;
    for &seq in index_seqs.iter().rev().filter(|s| **s <= position.seq) {
        let name = index_file_name(seq);
        match from_index_file(disk, &name, seq, position, &opened).await? {
            Ok(replayed) => {
                used = Some((seq, name, replayed));
                break;
            }
            Err(reason) => index_fallbacks.push(IndexFallback {
                file: disk.describe(&name),
                reason,
            }),
        }
    }
    let (index_file, replayed) = match used {
        Some((seq, name, replayed)) => (Some((seq, name)), replayed),
        None => (None, replay_segments(None, position, &opened).await?),
    };
    let Replayed {
        index,
        segments,
        frames,
        bytes,
        inconsistent,
    } = replayed;
    assert!(
        inconsistent.is_none(),
        "a full scan has no index file to contradict"
    );

    let mut tail = TailState::Clean;
    let mut cut_tail = None;
    if let Some(last) = opened.last()
        && last.size > last.len
    {
        tail = classify_tail(&*last.file, &last.path, last.len, last.size).await?;
        cut_tail = Some((Rc::clone(&last.file), last.len, last.path.clone()));
    }
    let removed_segments: Vec<SegmentId> = on_disk
        .iter()
        .copied()
        .filter(|segment| !segments.contains_key(segment))
        .collect();
    let index_files_to_remove: Vec<String> = index_seqs
        .iter()
        .filter(|&&seq| index_file.as_ref().is_none_or(|(kept, _)| *kept != seq))
        .map(|&seq| index_file_name(seq))
        .collect();
    let removed_index_files = index_files_to_remove
        .iter()
        .map(|name| disk.describe(name))
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
        index_file: index_file.as_ref().map(|(seq, name)| IndexFileUse {
            file: disk.describe(name),
            seq: *seq,
            keys: index.base().map_or(0, |b| b.len()),
        }),
        index_fallbacks,
        removed_index_files,
        elapsed: started.elapsed(),
    };
    let files = opened.into_iter().map(|o| (o.segment, o.file)).collect();
    Ok(Recovered {
        index,
        segments,
        files,
        next_segment: SegmentId(highest),
        index_file,
        cut_tail,
        index_files_to_remove,
        report,
    })
}

/// Makes the position the end of the store on disk: truncates what follows it in its last
/// segment, removes the segment files it does not name (`report.removed_segments`) and every
/// index file but the one used. This is the only step of opening that changes files, so a
/// caller can verify several candidate positions (or shards) first and cut only once it has
/// chosen.
pub(crate) async fn cut<D: Disk>(disk: &D, recovered: &Recovered<D>) -> Result<()> {
    if let Some((file, len, path)) = &recovered.cut_tail {
        file.truncate(*len)
            .await
            .map_err(|e| StorageError::io("truncate", path, *len, e))?;
    }
    let removed = &recovered.report.removed_segments;
    for segment in removed {
        let path = disk.describe(&segment.file_name());
        disk.remove(&segment.file_name())
            .await
            .map_err(|e| StorageError::io("remove", &path, 0, e))?;
    }
    for name in &recovered.index_files_to_remove {
        let path = disk.describe(name);
        disk.remove(name)
            .await
            .map_err(|e| StorageError::io("remove", &path, 0, e))?;
    }
    if !removed.is_empty() || !recovered.index_files_to_remove.is_empty() {
        disk.sync_dir()
            .await
            .map_err(|e| StorageError::io("fsync directory", &disk.describe("."), 0, e))?;
    }
    Ok(())
}

/// Opens every segment of `position` and checks that it exists and is long enough.
async fn open_segments<D: Disk>(
    disk: &D,
    position: &Position,
    on_disk: &[SegmentId],
) -> Result<Vec<Opened<D::File>>> {
    let mut opened = Vec::with_capacity(position.segments.len());
    for &(segment, len) in &position.segments {
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
        opened.push(Opened {
            segment,
            len,
            size,
            file,
            path,
        });
    }
    Ok(opened)
}

/// Loads index file `name` and replays the frames after its position. The outer error is a
/// problem with the segments (fatal whatever the index); the inner one says why this index
/// file cannot be used (recovery tries the next).
async fn from_index_file<D: Disk>(
    disk: &D,
    name: &str,
    seq: u64,
    target: &Position,
    opened: &[Opened<D::File>],
) -> Result<std::result::Result<Replayed, String>> {
    let path = disk.describe(name);
    let file = match disk.open(name).await {
        Ok(file) => Rc::new(file),
        Err(e) => return Ok(Err(format!("open failed: {e}"))),
    };
    let base = match BaseIndex::load(&file, &path).await {
        Ok(base) => base,
        Err(e) => return Ok(Err(e.to_string())),
    };
    if base.seq != seq {
        return Ok(Err(format!("file names seal {seq} but holds {}", base.seq)));
    }
    if let Err(reason) = check_prefix(&base, target) {
        return Ok(Err(reason));
    }
    let replayed = replay_segments(Some(base), target, opened).await?;
    if let Some(reason) = replayed.inconsistent {
        return Ok(Err(reason));
    }
    Ok(Ok(replayed))
}

/// Checks that the index file's position `P` is a prefix of the target `T`.
fn check_prefix(base: &BaseIndex, target: &Position) -> std::result::Result<(), String> {
    let newest = base.segments.last().map(|s| s.segment);
    for s in &base.segments {
        let Some(&(_, len)) = target.segments.iter().find(|(id, _)| *id == s.segment) else {
            continue;
        };
        let grows = Some(s.segment) == newest;
        if len < s.len || (!grows && len != s.len) {
            return Err(format!(
                "segment {} has length {len} at the position but {} in the index file",
                s.segment.0, s.len
            ));
        }
    }
    for (id, _) in &target.segments {
        let known = base.segments.iter().any(|s| s.segment == *id);
        if !known && newest.is_some_and(|n| *id < n) {
            return Err(format!(
                "segment {} is older than the index file's newest segment but not in it",
                id.0
            ));
        }
    }
    Ok(())
}

/// Replays every frame of `target` after `base`'s position (every frame without a base).
async fn replay_segments<F: DiskFile>(
    base: Option<BaseIndex>,
    target: &Position,
    opened: &[Opened<F>],
) -> Result<Replayed> {
    let mut segments = BTreeMap::new();
    let mut covered = HashMap::new();
    if let Some(base) = &base {
        for s in &base.segments {
            covered.insert(s.segment, s.len);
            segments.insert(
                s.segment,
                SegmentMeta {
                    len: s.len,
                    live_bytes: s.live_bytes,
                },
            );
        }
    }
    let gone: Vec<SegmentId> = segments
        .keys()
        .filter(|id| !target.segments.iter().any(|(t, _)| t == *id))
        .copied()
        .collect();
    for o in opened {
        let meta = segments.entry(o.segment).or_insert(SegmentMeta {
            len: o.len,
            live_bytes: 0,
        });
        meta.len = o.len;
    }
    let mut index = base.map_or_else(Index::default, Index::with_base);
    let mut batch = ReplayBatch::default();
    let (mut frames, mut bytes) = (0u64, 0u64);
    for o in opened {
        let start = covered.get(&o.segment).copied().unwrap_or(0);
        if start != 0 {
            verify_header(&*o.file, &o.path, o.segment).await?;
        }
        let mut scan =
            SegmentScan::from_offset(Rc::clone(&o.file), o.path.clone(), o.segment, start, o.len);
        let mut visit = |offset: u64, frame: &crate::format::Frame<'_>| -> Result<()> {
            frames += 1;
            if batch.push(o.segment, offset, frame) {
                batch.apply(&mut index, &mut segments);
            }
            Ok(())
        };
        while scan.next_batch(&mut visit).await? {}
        bytes += o.len - start.max(SEGMENT_HEADER_BYTES as u64).min(o.len);
    }
    batch.apply(&mut index, &mut segments);
    let mut inconsistent = None;
    for id in gone {
        let live = segments.remove(&id).map_or(0, |m| m.live_bytes);
        if live != 0 {
            inconsistent = Some(format!(
                "index file leaves {live} live bytes in segment {}, which the position dropped",
                id.0
            ));
        }
    }
    Ok(Replayed {
        index,
        segments,
        frames,
        bytes,
        inconsistent,
    })
}
