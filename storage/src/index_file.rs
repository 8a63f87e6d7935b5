//! Index files: a compact, crc-protected snapshot of the index at one sealed position, and the
//! same bytes used in memory as the index's read-only base layer ([`BaseIndex`]).
//!
//! Why: rebuilding the index by scanning costs one hash-table insert per frame (7.9 M inserts
//! for 1 GiB of log), several times the time to read the log. An index file is read in large
//! sequential chunks and used as it is, with no per-key insert; recovery then replays only the
//! frames written after the file's position into a small mutable overlay (`index.rs`).
//!
//! Layout (byte by byte in `FORMAT.md`, constants below): header, segments (id, sealed length,
//! live bytes), groups (one per `(operator, key group)`, sorted), bucket directory, entries,
//! key heap, trailing crc32 of everything before it. Within a group, entries are bucketed by the
//! top `bits` bits of `hash = crc32(inner key)`; bucket `b` holds the group's entries
//! `[dir[b], dir[b + 1])`, so a lookup reads one directory word pair, about two 20-byte entries
//! and one key. crc32 is used as the hash because it is exactly specified (the hash is part of
//! the format) and crc32fast is already a dependency.
//!
//! Invariants, checked when a file is loaded (`BaseIndex::load`) and asserted when one is
//! built: the trailing crc matches; section sizes agree with the header counts; every group's
//! directory is non-decreasing and ends at its entry count; every entry's key lies inside the
//! heap; each key appears once. A file that fails any check is not used (recovery falls back
//! to an older file or to a full scan and reports why).

use std::collections::HashMap;
use std::rc::Rc;

use crate::bounds::{INDEX_READ_BYTES, INDEX_READS_INFLIGHT};
use crate::disk::DiskFile;
use crate::error::{Result, StorageError};
use crate::format::{FORMAT_VERSION, align_up};
use crate::ids::{KeyGroup, OperatorId, SegmentId};
use crate::index::{FxBuild, Loc, Overlay};

/// Magic at the start of every index file.
pub const INDEX_MAGIC: [u8; 8] = *b"CSTRIDX\0";
/// Offset of the magic.
pub const INDEX_MAGIC_OFFSET: usize = 0;
/// Offset of the format version (u32).
pub const INDEX_VERSION_OFFSET: usize = INDEX_MAGIC_OFFSET + 8;
/// Offset of 4 reserved zero bytes.
pub const INDEX_RESERVED_OFFSET: usize = INDEX_VERSION_OFFSET + 4;
/// Offset of the seal sequence number of the covered position (u64).
pub const INDEX_SEQ_OFFSET: usize = INDEX_RESERVED_OFFSET + 4;
/// Offset of the number of segment records (u32).
pub const INDEX_SEGMENT_COUNT_OFFSET: usize = INDEX_SEQ_OFFSET + 8;
/// Offset of the number of group records (u32).
pub const INDEX_GROUP_COUNT_OFFSET: usize = INDEX_SEGMENT_COUNT_OFFSET + 4;
/// Offset of the number of entries (u32).
pub const INDEX_ENTRY_COUNT_OFFSET: usize = INDEX_GROUP_COUNT_OFFSET + 4;
/// Offset of the number of directory words (u32).
pub const INDEX_DIR_WORDS_OFFSET: usize = INDEX_ENTRY_COUNT_OFFSET + 4;
/// Offset of the key heap size in bytes (u64).
pub const INDEX_HEAP_BYTES_OFFSET: usize = INDEX_DIR_WORDS_OFFSET + 4;
/// Offset of the file's length in bytes up to and including the trailing crc (u64).
pub const INDEX_TOTAL_BYTES_OFFSET: usize = INDEX_HEAP_BYTES_OFFSET + 8;
/// Offset of the header crc: crc32 of bytes `[0, INDEX_HEADER_CRC_OFFSET)`.
pub const INDEX_HEADER_CRC_OFFSET: usize = INDEX_TOTAL_BYTES_OFFSET + 8;
/// Size of the header (4 zero bytes follow the header crc).
pub const INDEX_HEADER_BYTES: usize = INDEX_HEADER_CRC_OFFSET + 8;
/// Size of one segment record: segment u32, sealed length u64, live bytes u64.
pub const INDEX_SEGMENT_BYTES: usize = 20;
/// Size of one group record: operator u32, key group u16, bucket bits u8, reserved u8,
/// first entry u32, entry count u32, first directory word u32.
pub const INDEX_GROUP_BYTES: usize = 20;
/// Size of one entry: hash u32, key heap offset u32, segment u32, offset u32, length u32.
pub const INDEX_ENTRY_BYTES: usize = 20;
/// Size of the trailing crc32 over every byte before it.
pub const INDEX_CRC_BYTES: usize = 4;
/// Most bucket bits of one group (2^24 buckets).
const INDEX_BUCKET_BITS_MAX: u8 = 24;

const _: () = assert!(INDEX_HEADER_BYTES == 64);

/// The file name of the index file covering the position with seal sequence `seq`.
pub(crate) fn index_file_name(seq: u64) -> String {
    format!("idx-{seq:020}.idx")
}

/// Parses a name written by [`index_file_name`].
pub(crate) fn index_file_seq(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("idx-")?.strip_suffix(".idx")?;
    if digits.len() != 20 {
        return None;
    }
    digits.parse().ok()
}

/// One segment as the index file's position saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentRecord {
    pub segment: SegmentId,
    /// Sealed length at the position.
    pub len: u64,
    /// Bytes of put frames the index pointed at, at the position.
    pub live_bytes: u64,
}

#[derive(Debug, Clone, Copy)]
struct GroupRecord {
    operator: OperatorId,
    key_group: KeyGroup,
    bits: u8,
    first_entry: u32,
    entries: u32,
    first_dir: u32,
}

/// The hash every entry is bucketed by: crc32 of the encoded inner key.
pub(crate) fn key_hash(inner: &[u8]) -> u32 {
    crc32fast::hash(inner)
}

fn bucket(hash: u32, bits: u8) -> usize {
    if bits == 0 {
        0
    } else {
        (hash >> (32 - u32::from(bits))) as usize
    }
}

/// Buckets for `entries` keys: about one to two keys per bucket.
fn bucket_bits(entries: usize) -> u8 {
    let mut bits = 0u8;
    while bits < INDEX_BUCKET_BITS_MAX && (2usize << bits) < entries {
        bits += 1;
    }
    bits
}

fn le_u16(bytes: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    if let Some(src) = bytes.get(at..at + 2) {
        b.copy_from_slice(src);
    }
    u16::from_le_bytes(b)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = bytes.get(at..at + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = bytes.get(at..at + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

/// A loaded or freshly built index file: the read-only base layer of the index.
pub(crate) struct BaseIndex {
    pub seq: u64,
    pub segments: Vec<SegmentRecord>,
    groups: Vec<GroupRecord>,
    group_of: HashMap<(OperatorId, KeyGroup), usize, FxBuild>,
    dir: Vec<u8>,
    entries: Vec<u8>,
    heap: Vec<u8>,
}

impl std::fmt::Debug for BaseIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BaseIndex")
            .field("seq", &self.seq)
            .field("entries", &self.len())
            .finish()
    }
}

impl BaseIndex {
    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len() / INDEX_ENTRY_BYTES
    }

    fn entry_hash(&self, e: usize) -> u32 {
        le_u32(&self.entries, e * INDEX_ENTRY_BYTES)
    }

    fn entry_key(&self, e: usize) -> &[u8] {
        let at = le_u32(&self.entries, e * INDEX_ENTRY_BYTES + 4) as usize;
        let len = usize::from(le_u16(&self.heap, at));
        self.heap.get(at + 2..at + 2 + len).unwrap_or_default()
    }

    fn entry_loc(&self, e: usize) -> Loc {
        let at = e * INDEX_ENTRY_BYTES;
        Loc {
            segment: SegmentId(le_u32(&self.entries, at + 8)),
            offset: le_u32(&self.entries, at + 12),
            len: le_u32(&self.entries, at + 16),
        }
    }

    fn dir_word(&self, i: usize) -> usize {
        le_u32(&self.dir, i * 4) as usize
    }

    /// The location of `inner` in group `(operator, key_group)`, if the base holds it.
    pub fn get(&self, operator: OperatorId, key_group: KeyGroup, inner: &[u8]) -> Option<Loc> {
        let g = self
            .groups
            .get(*self.group_of.get(&(operator, key_group))?)?;
        let hash = key_hash(inner);
        let b = g.first_dir as usize + bucket(hash, g.bits);
        let first = g.first_entry as usize;
        (first + self.dir_word(b)..first + self.dir_word(b + 1))
            .find(|&e| self.entry_hash(e) == hash && self.entry_key(e) == inner)
            .map(|e| self.entry_loc(e))
    }

    /// Visits every `(operator, key group, inner key, loc)` of the groups `want` accepts.
    pub fn for_each(
        &self,
        mut want: impl FnMut(OperatorId, KeyGroup) -> bool,
        mut visit: impl FnMut(OperatorId, KeyGroup, &[u8], Loc),
    ) {
        for g in self.groups.iter().filter(|g| want(g.operator, g.key_group)) {
            let first = g.first_entry as usize;
            for e in first..first + g.entries as usize {
                visit(
                    g.operator,
                    g.key_group,
                    self.entry_key(e),
                    self.entry_loc(e),
                );
            }
        }
    }

    /// Header, segment records and group records: everything before the directory.
    fn encode_head(&self, total_bytes: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(
            INDEX_HEADER_BYTES
                + self.segments.len() * INDEX_SEGMENT_BYTES
                + self.groups.len() * INDEX_GROUP_BYTES,
        );
        out.extend_from_slice(&INDEX_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        for count in [
            self.segments.len(),
            self.groups.len(),
            self.len(),
            self.dir.len() / 4,
        ] {
            let count = u32::try_from(count).expect("build bounds counts to u32");
            out.extend_from_slice(&count.to_le_bytes());
        }
        out.extend_from_slice(&(self.heap.len() as u64).to_le_bytes());
        out.extend_from_slice(&total_bytes.to_le_bytes());
        assert_eq!(out.len(), INDEX_HEADER_CRC_OFFSET);
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        assert_eq!(out.len(), INDEX_HEADER_BYTES);
        for s in &self.segments {
            out.extend_from_slice(&s.segment.0.to_le_bytes());
            out.extend_from_slice(&s.len.to_le_bytes());
            out.extend_from_slice(&s.live_bytes.to_le_bytes());
        }
        for g in &self.groups {
            out.extend_from_slice(&g.operator.0.to_le_bytes());
            out.extend_from_slice(&g.key_group.0.to_le_bytes());
            out.extend_from_slice(&[g.bits, 0]);
            out.extend_from_slice(&g.first_entry.to_le_bytes());
            out.extend_from_slice(&g.entries.to_le_bytes());
            out.extend_from_slice(&g.first_dir.to_le_bytes());
        }
        out
    }

    /// The file's bytes in order, as slices, ending with the trailing crc.
    pub fn file_parts(&self) -> [Vec<u8>; 2] {
        let body = INDEX_HEADER_BYTES
            + self.segments.len() * INDEX_SEGMENT_BYTES
            + self.groups.len() * INDEX_GROUP_BYTES
            + self.dir.len()
            + self.entries.len()
            + self.heap.len();
        let head = self.encode_head((body + INDEX_CRC_BYTES) as u64);
        let mut crc = crc32fast::Hasher::new();
        crc.update(&head);
        crc.update(&self.dir);
        crc.update(&self.entries);
        crc.update(&self.heap);
        [head, crc.finalize().to_le_bytes().to_vec()]
    }

    /// The sections between the head and the crc, in file order.
    pub fn body_sections(&self) -> [&[u8]; 3] {
        [&self.dir, &self.entries, &self.heap]
    }

    /// Reads and verifies an index file. `name` is used in errors.
    ///
    /// # Errors
    /// [`StorageError::Corrupt`] naming the file and offset when any check fails; I/O errors.
    pub async fn load<F: DiskFile>(file: &Rc<F>, name: &str) -> Result<Self> {
        let corrupt = |offset: u64, reason: &str| StorageError::corrupt(name, offset, reason);
        let size = file
            .size()
            .await
            .map_err(|e| StorageError::io("stat", name, 0, e))?;
        let first = file
            .read_at(0, align_up(INDEX_HEADER_BYTES as u64) as usize)
            .await
            .map_err(|e| StorageError::io("read", name, 0, e))?;
        let Some(header) = first.get(..INDEX_HEADER_BYTES) else {
            return Err(corrupt(0, "index header is truncated"));
        };
        let crc = crc32fast::hash(header.get(..INDEX_HEADER_CRC_OFFSET).unwrap_or_default());
        if crc != le_u32(header, INDEX_HEADER_CRC_OFFSET) {
            return Err(corrupt(0, "index header crc mismatch"));
        }
        if header.get(..8) != Some(&INDEX_MAGIC[..]) {
            return Err(corrupt(0, "bad index magic"));
        }
        if le_u32(header, INDEX_VERSION_OFFSET) != FORMAT_VERSION {
            return Err(corrupt(
                INDEX_VERSION_OFFSET as u64,
                "unknown index version",
            ));
        }
        let count = |at| le_u32(header, at) as u64;
        let head_bytes = INDEX_HEADER_BYTES as u64
            + count(INDEX_SEGMENT_COUNT_OFFSET) * INDEX_SEGMENT_BYTES as u64
            + count(INDEX_GROUP_COUNT_OFFSET) * INDEX_GROUP_BYTES as u64;
        let dir_bytes = count(INDEX_DIR_WORDS_OFFSET) * 4;
        let entry_bytes = count(INDEX_ENTRY_COUNT_OFFSET) * INDEX_ENTRY_BYTES as u64;
        let heap_bytes = le_u64(header, INDEX_HEAP_BYTES_OFFSET);
        let total = le_u64(header, INDEX_TOTAL_BYTES_OFFSET);
        let sizes = [head_bytes, dir_bytes, entry_bytes, heap_bytes];
        let body = sizes.iter().try_fold(0u64, |a, b| a.checked_add(*b));
        if body.and_then(|b| b.checked_add(INDEX_CRC_BYTES as u64)) != Some(total) {
            return Err(corrupt(
                INDEX_TOTAL_BYTES_OFFSET as u64,
                "section sizes disagree with the total",
            ));
        }
        if size < total {
            return Err(corrupt(size, "index file is shorter than its header says"));
        }
        let mut sections: [Vec<u8>; 5] = Default::default();
        for (section, bytes) in sections.iter_mut().zip(sizes.iter().chain([&4u64])) {
            *section = Vec::with_capacity(usize::try_from(*bytes).unwrap_or(usize::MAX));
        }
        read_into(file, name, total, &mut sections, &sizes).await?;
        let [head, dir, entries, heap, trailer] = sections;
        let mut crc = crc32fast::Hasher::new();
        for part in [&head, &dir, &entries, &heap] {
            crc.update(part);
        }
        if crc.finalize() != le_u32(&trailer, 0) {
            return Err(corrupt(total - 4, "index file crc mismatch"));
        }
        let base = Self::parse(le_u64(&head, INDEX_SEQ_OFFSET), &head, dir, entries, heap)
            .map_err(|reason| corrupt(0, reason))?;
        Ok(base)
    }

    /// Builds the in-memory structure from crc-verified sections and checks its invariants.
    fn parse(
        seq: u64,
        head: &[u8],
        dir: Vec<u8>,
        entries: Vec<u8>,
        heap: Vec<u8>,
    ) -> std::result::Result<Self, &'static str> {
        let segment_count = le_u32(head, INDEX_SEGMENT_COUNT_OFFSET) as usize;
        let group_count = le_u32(head, INDEX_GROUP_COUNT_OFFSET) as usize;
        let segments = (0..segment_count)
            .map(|i| {
                let at = INDEX_HEADER_BYTES + i * INDEX_SEGMENT_BYTES;
                SegmentRecord {
                    segment: SegmentId(le_u32(head, at)),
                    len: le_u64(head, at + 4),
                    live_bytes: le_u64(head, at + 12),
                }
            })
            .collect::<Vec<_>>();
        if segments.windows(2).any(|w| match w {
            [a, b] => a.segment >= b.segment,
            _ => false,
        }) {
            return Err("segment records not ascending");
        }
        let groups_at = INDEX_HEADER_BYTES + segment_count * INDEX_SEGMENT_BYTES;
        let groups = (0..group_count)
            .map(|i| {
                let at = groups_at + i * INDEX_GROUP_BYTES;
                GroupRecord {
                    operator: OperatorId(le_u32(head, at)),
                    key_group: KeyGroup(le_u16(head, at + 4)),
                    bits: head.get(at + 6).copied().unwrap_or(u8::MAX),
                    first_entry: le_u32(head, at + 8),
                    entries: le_u32(head, at + 12),
                    first_dir: le_u32(head, at + 16),
                }
            })
            .collect::<Vec<_>>();
        let mut base = Self {
            seq,
            segments,
            groups,
            group_of: HashMap::default(),
            dir,
            entries,
            heap,
        };
        base.check()?;
        Ok(base)
    }

    /// Checks every structural invariant (see the module doc) and fills `group_of`.
    fn check(&mut self) -> std::result::Result<(), &'static str> {
        self.group_of.clear();
        let (mut next_entry, mut next_dir) = (0usize, 0usize);
        for (i, g) in self.groups.iter().enumerate() {
            if g.bits > INDEX_BUCKET_BITS_MAX {
                return Err("group has too many bucket bits");
            }
            if g.first_entry as usize != next_entry || g.first_dir as usize != next_dir {
                return Err("groups are not contiguous");
            }
            let words = (1usize << g.bits) + 1;
            if next_dir + words > self.dir.len() / 4 {
                return Err("group directory past the directory section");
            }
            let mut last = 0;
            for w in next_dir..next_dir + words {
                let at = self.dir_word(w);
                if at < last {
                    return Err("directory not ascending");
                }
                last = at;
            }
            if self.dir_word(next_dir) != 0 || last != g.entries as usize {
                return Err("directory does not cover the group's entries");
            }
            for b in 0..words - 1 {
                for e in self.dir_word(next_dir + b)..self.dir_word(next_dir + b + 1) {
                    let e = e + next_entry;
                    let at = le_u32(&self.entries, e * INDEX_ENTRY_BYTES + 4) as usize;
                    let len = usize::from(le_u16(&self.heap, at));
                    if at + 2 + len > self.heap.len() {
                        return Err("entry key outside the heap");
                    }
                    if bucket(self.entry_hash(e), g.bits) != b {
                        return Err("entry in the wrong bucket");
                    }
                }
            }
            if self.group_of.insert((g.operator, g.key_group), i).is_some() {
                return Err("group listed twice");
            }
            next_entry += g.entries as usize;
            next_dir += words;
        }
        if next_entry * INDEX_ENTRY_BYTES != self.entries.len() || next_dir * 4 != self.dir.len() {
            return Err("groups do not cover the entries and directory");
        }
        Ok(())
    }
}

/// Reads `[0, total)` of `file` in large pipelined reads, splitting the bytes into `sections`
/// of the given sizes (the last section takes the rest: the trailing crc).
async fn read_into<F: DiskFile>(
    file: &Rc<F>,
    name: &str,
    total: u64,
    sections: &mut [Vec<u8>; 5],
    sizes: &[u64; 4],
) -> Result<()> {
    let mut reads = std::collections::VecDeque::new();
    let mut next_read = 0u64;
    let mut section = 0usize;
    let mut done = 0u64;
    while done < total {
        while reads.len() < INDEX_READS_INFLIGHT && next_read < total {
            let len = (INDEX_READ_BYTES as u64).min(align_up(total) - next_read) as usize;
            let f = Rc::clone(file);
            let at = next_read;
            reads.push_back((
                at,
                glommio::spawn_local(async move { f.read_at(at, len).await }),
            ));
            next_read += len as u64;
        }
        let Some((at, task)) = reads.pop_front() else {
            break;
        };
        let buf = task
            .await
            .map_err(|e| StorageError::io("read", name, at, e))?;
        let want = (total - at).min(INDEX_READ_BYTES as u64) as usize;
        let Some(mut rest) = buf.get(..want) else {
            return Err(StorageError::corrupt(
                name,
                at + buf.len() as u64,
                "index file ends early",
            ));
        };
        while !rest.is_empty() {
            let Some(target) = sections.get_mut(section) else {
                break;
            };
            let cap = sizes
                .get(section)
                .copied()
                .unwrap_or(INDEX_CRC_BYTES as u64);
            let room = (cap - target.len() as u64).min(rest.len() as u64) as usize;
            let (now, later) = rest.split_at(room);
            target.extend_from_slice(now);
            rest = later;
            done += room as u64;
            if target.len() as u64 == cap {
                section += 1;
            }
        }
    }
    Ok(())
}

/// One key of a group being built: its hash, its heap offset, and its location.
#[derive(Clone, Copy)]
struct Item {
    hash: u32,
    key_at: u32,
    loc: Loc,
}

/// Keys a build handles between two yields to the shard. Unconditional yields, because
/// glommio's `yield_if_needed` yields only when the task queue's time slice (100 ms by
/// default) is used up, and puts and seals should not wait that long behind a build.
const BUILD_YIELD_KEYS: usize = 4096;

/// Builds the base that equals `old` overlaid with `frozen` (a frozen overlay: live entries
/// win, tombstones delete), for the position `seq` with its `segments`. Yields to the shard
/// between groups and every few thousand keys, so the shard keeps processing.
///
/// Returns `None` if the result would exceed the format's u32 counts (the caller keeps the
/// layers as they are).
pub(crate) async fn merge(
    seq: u64,
    segments: Vec<SegmentRecord>,
    old: Option<&BaseIndex>,
    frozen: &Overlay,
) -> Option<BaseIndex> {
    let mut ids: Vec<(OperatorId, KeyGroup)> = frozen.keys().copied().collect();
    if let Some(old) = old {
        ids.extend(old.groups.iter().map(|g| (g.operator, g.key_group)));
    }
    ids.sort_unstable();
    ids.dedup();
    let mut out = BaseIndex {
        seq,
        segments,
        groups: Vec::with_capacity(ids.len()),
        group_of: HashMap::default(),
        dir: Vec::new(),
        entries: Vec::new(),
        heap: Vec::new(),
    };
    let mut items: Vec<Item> = Vec::new();
    for (operator, key_group) in ids {
        items.clear();
        let fresh = frozen.get(&(operator, key_group));
        for (n, (inner, slot)) in fresh.into_iter().flatten().enumerate() {
            if let Some(loc) = slot {
                items.push(push_key(&mut out.heap, inner.as_slice(), *loc)?);
            }
            if n % BUILD_YIELD_KEYS == BUILD_YIELD_KEYS - 1 {
                futures_lite::future::yield_now().await;
            }
        }
        if let Some(old) = old
            && let Some(&g) = old.group_of.get(&(operator, key_group))
            && let Some(g) = old.groups.get(g)
        {
            let first = g.first_entry as usize;
            for e in first..first + g.entries as usize {
                let inner = old.entry_key(e);
                // Keys in the frozen overlay (put or deleted) were handled above.
                if fresh.is_some_and(|f| f.contains_key(inner)) {
                    continue;
                }
                items.push(push_key(&mut out.heap, inner, old.entry_loc(e))?);
                if e % BUILD_YIELD_KEYS == BUILD_YIELD_KEYS - 1 {
                    futures_lite::future::yield_now().await;
                }
            }
        }
        if !items.is_empty() {
            out.push_group(operator, key_group, &items)?;
        }
        futures_lite::future::yield_now().await;
    }
    out.check()
        .expect("a freshly built index file is well formed");
    Some(out)
}

fn push_key(heap: &mut Vec<u8>, inner: &[u8], loc: Loc) -> Option<Item> {
    let key_at = u32::try_from(heap.len()).ok()?;
    let len = u16::try_from(inner.len()).ok()?;
    heap.extend_from_slice(&len.to_le_bytes());
    heap.extend_from_slice(inner);
    Some(Item {
        hash: key_hash(inner),
        key_at,
        loc,
    })
}

impl BaseIndex {
    /// Appends one group: a counting sort of `items` into buckets, its directory and entries.
    fn push_group(
        &mut self,
        operator: OperatorId,
        key_group: KeyGroup,
        items: &[Item],
    ) -> Option<()> {
        let bits = bucket_bits(items.len());
        let buckets = 1usize << bits;
        let first_entry = u32::try_from(self.len()).ok()?;
        let first_dir = u32::try_from(self.dir.len() / 4).ok()?;
        let count = u32::try_from(items.len()).ok()?;
        u32::try_from(self.len() + items.len()).ok()?;
        let mut starts = vec![0u32; buckets + 1];
        for item in items {
            if let Some(s) = starts.get_mut(bucket(item.hash, bits) + 1) {
                *s += 1;
            }
        }
        for b in 0..buckets {
            let before = starts.get(b).copied().unwrap_or(0);
            if let Some(s) = starts.get_mut(b + 1) {
                *s += before;
            }
        }
        for word in &starts {
            self.dir.extend_from_slice(&word.to_le_bytes());
        }
        let base = self.entries.len();
        self.entries
            .resize(base + items.len() * INDEX_ENTRY_BYTES, 0);
        let mut fill = starts;
        for item in items {
            let Some(slot) = fill.get_mut(bucket(item.hash, bits)) else {
                continue;
            };
            let at = base + *slot as usize * INDEX_ENTRY_BYTES;
            *slot += 1;
            let words = [
                item.hash,
                item.key_at,
                item.loc.segment.0,
                item.loc.offset,
                item.loc.len,
            ];
            for (i, w) in words.iter().enumerate() {
                if let Some(dst) = self.entries.get_mut(at + 4 * i..at + 4 * i + 4) {
                    dst.copy_from_slice(&w.to_le_bytes());
                }
            }
        }
        self.group_of
            .insert((operator, key_group), self.groups.len());
        self.groups.push(GroupRecord {
            operator,
            key_group,
            bits,
            first_entry,
            entries: count,
            first_dir,
        });
        Some(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::disk::Disk;
    use crate::disk_sim::SimDisk;
    use crate::ids::{Prefix, StateKey};
    use crate::index::Index;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    #[derive(Debug, Clone)]
    enum Op {
        Put(u8, u8, u32),
        Delete(u8, u8),
        Relocate(u8, u8, u32),
        Freeze,
        Install,
        Thaw,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            50 => (0u8..3, any::<u8>(), any::<u32>()).prop_map(|(g, k, o)| Op::Put(g, k, o)),
            20 => (0u8..3, any::<u8>()).prop_map(|(g, k)| Op::Delete(g, k)),
            10 => (0u8..3, any::<u8>(), any::<u32>()).prop_map(|(g, k, o)| Op::Relocate(g, k, o)),
            5 => Just(Op::Freeze),
            5 => Just(Op::Install),
            2 => Just(Op::Thaw),
        ]
    }

    fn sk(g: u8, k: &[u8]) -> StateKey<'_> {
        StateKey {
            operator: OperatorId(u32::from(g % 2)),
            key_group: KeyGroup(u16::from(g)),
            key: k,
            namespace: if k[0].is_multiple_of(3) { b"ns" } else { b"" },
        }
    }

    fn loc(o: u32) -> Loc {
        Loc {
            segment: SegmentId(1 + o % 5),
            offset: o,
            len: 40 + o % 9,
        }
    }

    fn contents(index: &Index) -> BTreeMap<(u32, u16, Vec<u8>), Loc> {
        let mut out = BTreeMap::new();
        for op in 0..2 {
            index.scan(Prefix::Operator(OperatorId(op)), |o, g, inner, l| {
                assert!(
                    out.insert((o.0, g.0, inner.to_vec()), l).is_none(),
                    "key visited twice"
                );
            });
        }
        out
    }

    /// Writes `base` to a simulated file, loads it back, and checks it is the same index.
    async fn round_trip(base: &BaseIndex) -> BaseIndex {
        let disk = SimDisk::new(1);
        let file = disk.create("idx").await.unwrap();
        let [head, crc] = base.file_parts();
        let mut bytes = head.clone();
        for part in base.body_sections() {
            bytes.extend_from_slice(part);
        }
        bytes.extend_from_slice(&crc);
        bytes.resize(align_up(bytes.len() as u64) as usize, 0);
        let mut buf = disk.alloc_buf(bytes.len());
        buf.as_mut().copy_from_slice(&bytes);
        crate::disk::DiskFile::write_at(&file, Rc::new(buf), 0)
            .await
            .unwrap();
        let loaded = BaseIndex::load(&Rc::new(disk.open("idx").await.unwrap()), "idx")
            .await
            .unwrap();
        assert_eq!(loaded.len(), base.len());
        assert_eq!(loaded.segments, base.segments);
        // Every bit of the file's meaningful bytes is protected.
        let total = head.len() + base.body_sections().iter().map(|p| p.len()).sum::<usize>() + 4;
        for bit in (0..total * 8).step_by((total * 8 / 48).max(1)) {
            assert!(disk.flip_bit("idx", (bit / 8) as u64, (bit % 8) as u8));
            let damaged = BaseIndex::load(&Rc::new(disk.open("idx").await.unwrap()), "idx").await;
            assert!(damaged.is_err(), "bit {bit} flip accepted");
            assert!(disk.flip_bit("idx", (bit / 8) as u64, (bit % 8) as u8));
        }
        loaded
    }

    /// The layered index (overlay, frozen overlay, base built by `merge` and round-tripped
    /// through a file) answers exactly like a map, whatever the interleaving of freezes,
    /// installs and thaws.
    async fn check(ops: Vec<Op>) {
        let mut index = Index::default();
        let mut model: BTreeMap<(u32, u16, Vec<u8>), Loc> = BTreeMap::new();
        let mut pending: Option<(Rc<crate::index::Overlay>, Option<Rc<BaseIndex>>)> = None;
        let mut seq = 0;
        for op in ops {
            match op {
                Op::Put(g, k, o) => {
                    let kb = [k];
                    let key = sk(g, &kb);
                    let inner = [&[1u8, 0][..], &[k][..], key.namespace].concat();
                    let want = model.insert((key.operator.0, g.into(), inner), loc(o));
                    assert_eq!(index.insert(&key, loc(o)), want);
                }
                Op::Delete(g, k) => {
                    let kb = [k];
                    let key = sk(g, &kb);
                    let inner = [&[1u8, 0][..], &[k][..], key.namespace].concat();
                    let want = model.remove(&(key.operator.0, g.into(), inner));
                    assert_eq!(index.remove(&key), want);
                }
                Op::Relocate(g, k, o) => {
                    let kb = [k];
                    let key = sk(g, &kb);
                    let inner = [&[1u8, 0][..], &[k][..], key.namespace].concat();
                    let id = (key.operator.0, u16::from(g), inner);
                    if let Some(from) = model.get(&id).copied() {
                        assert!(index.relocate(&key, from, loc(o)));
                        model.insert(id, loc(o));
                    } else {
                        assert!(!index.relocate(&key, loc(o), loc(o)));
                    }
                }
                Op::Freeze => {
                    if pending.is_none() {
                        pending = index.freeze();
                        assert!(pending.is_some());
                    } else {
                        assert!(index.freeze().is_none());
                    }
                }
                Op::Install => {
                    if let Some((frozen, base)) = pending.take() {
                        seq += 1;
                        let segments = vec![SegmentRecord {
                            segment: SegmentId(1),
                            len: 4096,
                            live_bytes: 7,
                        }];
                        let merged = merge(seq, segments, base.as_deref(), &frozen)
                            .await
                            .unwrap();
                        let loaded = round_trip(&merged).await;
                        index.install(Rc::new(loaded));
                    }
                }
                Op::Thaw => {
                    if pending.take().is_some() {
                        index.thaw();
                    }
                }
            }
            assert_eq!(index.len(), model.len());
        }
        assert_eq!(contents(&index), model);
        for ((op, g, inner), l) in &model {
            let (key, ns) = crate::index::decode_inner(inner);
            let key = StateKey {
                operator: OperatorId(*op),
                key_group: KeyGroup(*g),
                key,
                namespace: ns,
            };
            assert_eq!(index.get(&key), Some(*l));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]
        #[test]
        fn layered_index_equals_a_map(ops in proptest::collection::vec(op(), 0..300)) {
            glommio::LocalExecutorBuilder::default()
                .spawn(move || check(ops))
                .unwrap()
                .join()
                .unwrap();
        }
    }

    /// Encodes a header and reads every field back at its documented offset.
    #[test]
    fn header_fields_sit_at_their_offsets() {
        glommio::LocalExecutorBuilder::default()
            .spawn(|| async {
                let mut index = Index::default();
                for k in 0..10u8 {
                    let kb = [k];
                    index.insert(&sk(k % 3, &kb), loc(u32::from(k)));
                }
                let (frozen, _) = index.freeze().unwrap();
                let segments = vec![SegmentRecord {
                    segment: SegmentId(4),
                    len: 9000,
                    live_bytes: 123,
                }];
                let base = merge(77, segments, None, &frozen).await.unwrap();
                let [head, crc] = base.file_parts();
                let u32_at = |at: usize| u32::from_le_bytes(head[at..at + 4].try_into().unwrap());
                let u64_at = |at: usize| u64::from_le_bytes(head[at..at + 8].try_into().unwrap());
                assert_eq!(&head[INDEX_MAGIC_OFFSET..8], b"CSTRIDX\0");
                assert_eq!(u32_at(INDEX_VERSION_OFFSET), FORMAT_VERSION);
                assert_eq!(u32_at(INDEX_RESERVED_OFFSET), 0);
                assert_eq!(u64_at(INDEX_SEQ_OFFSET), 77);
                assert_eq!(u32_at(INDEX_SEGMENT_COUNT_OFFSET), 1);
                assert_eq!(u32_at(INDEX_GROUP_COUNT_OFFSET), 3);
                assert_eq!(u32_at(INDEX_ENTRY_COUNT_OFFSET), 10);
                let [dir, entries, heap] = base.body_sections();
                assert_eq!(u32_at(INDEX_DIR_WORDS_OFFSET) as usize * 4, dir.len());
                assert_eq!(entries.len(), 10 * INDEX_ENTRY_BYTES);
                assert_eq!(u64_at(INDEX_HEAP_BYTES_OFFSET) as usize, heap.len());
                let total = head.len() + dir.len() + entries.len() + heap.len() + crc.len();
                assert_eq!(u64_at(INDEX_TOTAL_BYTES_OFFSET), total as u64);
                assert_eq!(
                    u32_at(INDEX_HEADER_CRC_OFFSET),
                    crc32fast::hash(&head[..INDEX_HEADER_CRC_OFFSET])
                );
                let seg = INDEX_HEADER_BYTES;
                assert_eq!(u32_at(seg), 4);
                assert_eq!(u64_at(seg + 4), 9000);
                assert_eq!(u64_at(seg + 12), 123);
                let group = seg + INDEX_SEGMENT_BYTES;
                assert_eq!(head.len(), group + 3 * INDEX_GROUP_BYTES);
                // Groups ascend by (operator, key group): (0, 0), (0, 2), (1, 1).
                assert_eq!(
                    (u32_at(group), &head[group + 4..group + 6]),
                    (0, &[0u8, 0][..])
                );
                assert_eq!(u32_at(group + 8), 0, "first group starts at entry 0");
                // Every entry's key is found through its hash's bucket.
                for k in 0..10u8 {
                    let kb = [k];
                    let key = sk(k % 3, &kb);
                    let mut inner = Vec::new();
                    crate::index::append_inner(&mut inner, &key);
                    assert_eq!(
                        base.get(key.operator, key.key_group, &inner),
                        Some(loc(u32::from(k)))
                    );
                }
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn names_round_trip() {
        assert_eq!(index_file_seq(&index_file_name(42)), Some(42));
        assert_eq!(index_file_seq("idx-42.idx"), None);
        assert_eq!(index_file_seq("seg-00000001.log"), None);
    }
}
