//! The shard's value cache, bounded by its memory budget.
//!
//! Two parts share the budget:
//! - **Chunks** (3/4 of the budget): the aligned write buffers the log has handed to the writer,
//!   kept as `Rc`s after they are written. Values written recently are read straight out of
//!   them, without a copy and without an allocation on the put path. Evicted oldest first, and
//!   only once written (`write_seq <= completed`), so a read never goes to disk for bytes that
//!   are not there yet.
//! - **Cold values** (1/4): values read back from disk, verified, copied into an `Rc<[u8]>`,
//!   evicted by CLOCK (second chance).
//!
//! Chunks of one segment may overlap by one block (the rewritten tail block); a lookup takes
//! the chunk with the greatest start at or below the frame's offset, which holds the newest
//! copy of those bytes.

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::rc::Rc;

use crate::disk::DiskBuf;
use crate::ids::SegmentId;
use crate::index::{FxBuild, Loc};

struct Chunk<B> {
    buf: Rc<B>,
    valid_bytes: u32,
    write_seq: u64,
}

struct ColdSlot {
    value: Rc<[u8]>,
    referenced: Cell<bool>,
}

/// Cache counters.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CacheStats {
    /// Bytes held in written chunks.
    pub chunk_bytes: usize,
    /// Bytes held in cold values.
    pub cold_bytes: usize,
    /// Reads served from a chunk.
    pub chunk_hits: u64,
    /// Reads served from the cold-value cache.
    pub cold_hits: u64,
    /// Reads that went to disk.
    pub misses: u64,
}

pub(crate) struct Cache<B> {
    chunks: BTreeMap<(SegmentId, u32), Chunk<B>>,
    fifo: VecDeque<((SegmentId, u32), u64)>,
    chunk_cap: usize,
    cold: HashMap<Loc, ColdSlot, FxBuild>,
    clock: VecDeque<Loc>,
    cold_cap: usize,
    pub stats: CacheStats,
}

impl<B: DiskBuf> Cache<B> {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            chunks: BTreeMap::new(),
            fifo: VecDeque::new(),
            chunk_cap: budget_bytes / 4 * 3,
            cold: HashMap::default(),
            clock: VecDeque::new(),
            cold_cap: budget_bytes / 4,
            stats: CacheStats::default(),
        }
    }

    /// Adds a buffer handed to the writer as write number `write_seq`.
    pub fn insert_chunk(
        &mut self,
        segment: SegmentId,
        start: u32,
        buf: Rc<B>,
        valid: u32,
        write_seq: u64,
    ) {
        let len = (*buf).as_ref().len();
        assert!(valid as usize <= len);
        let chunk = Chunk {
            buf,
            valid_bytes: valid,
            write_seq,
        };
        if let Some(old) = self.chunks.insert((segment, start), chunk) {
            self.stats.chunk_bytes -= (*old.buf).as_ref().len();
        }
        self.stats.chunk_bytes += len;
        self.fifo.push_back(((segment, start), write_seq));
    }

    /// Evicts written chunks, oldest first, while over the chunk share of the budget.
    pub fn evict_chunks(&mut self, completed_seq: u64) {
        while self.stats.chunk_bytes > self.chunk_cap {
            let Some(&(key, seq)) = self.fifo.front() else {
                break;
            };
            let current = self.chunks.get(&key).map(|c| c.write_seq);
            if current != Some(seq) {
                // Replaced by a newer chunk at the same start, or dropped with its segment.
                self.fifo.pop_front();
                continue;
            }
            if seq > completed_seq {
                break;
            }
            self.fifo.pop_front();
            if let Some(chunk) = self.chunks.remove(&key) {
                self.stats.chunk_bytes -= (*chunk.buf).as_ref().len();
            }
        }
    }

    /// The chunk holding the frame at `loc`, with the frame's start inside the buffer.
    pub fn chunk_for(&mut self, loc: Loc) -> Option<(Rc<B>, usize)> {
        let (&(segment, start), chunk) = self
            .chunks
            .range(..=(loc.segment, loc.offset))
            .next_back()?;
        if segment != loc.segment || loc.offset + loc.len > start + chunk.valid_bytes {
            return None;
        }
        self.stats.chunk_hits += 1;
        Some((Rc::clone(&chunk.buf), (loc.offset - start) as usize))
    }

    /// A cached cold value for the frame at `loc`.
    pub fn cold_value(&mut self, loc: Loc) -> Option<Rc<[u8]>> {
        let slot = self.cold.get(&loc)?;
        slot.referenced.set(true);
        self.stats.cold_hits += 1;
        Some(Rc::clone(&slot.value))
    }

    /// Caches a verified value read from disk.
    pub fn insert_cold(&mut self, loc: Loc, value: Rc<[u8]>) {
        if value.len() > self.cold_cap {
            return;
        }
        self.stats.cold_bytes += value.len();
        let slot = ColdSlot {
            value,
            referenced: Cell::new(false),
        };
        if let Some(old) = self.cold.insert(loc, slot) {
            self.stats.cold_bytes -= old.value.len();
        } else {
            self.clock.push_back(loc);
        }
        while self.stats.cold_bytes > self.cold_cap {
            let Some(victim) = self.clock.pop_front() else {
                break;
            };
            let Some(slot) = self.cold.get(&victim) else {
                continue;
            };
            if slot.referenced.replace(false) {
                self.clock.push_back(victim);
            } else if let Some(old) = self.cold.remove(&victim) {
                self.stats.cold_bytes -= old.value.len();
            }
        }
    }

    /// Forgets everything cached for `segment` (it was compacted away).
    pub fn drop_segment(&mut self, segment: SegmentId) {
        let keys: Vec<_> = self
            .chunks
            .range((segment, 0)..=(segment, u32::MAX))
            .map(|(k, _)| *k)
            .collect();
        for key in keys {
            if let Some(chunk) = self.chunks.remove(&key) {
                self.stats.chunk_bytes -= (*chunk.buf).as_ref().len();
            }
        }
        let before = self.cold.len();
        let cold_bytes = &mut self.stats.cold_bytes;
        self.cold.retain(|loc, slot| {
            let keep = loc.segment != segment;
            if !keep {
                *cold_bytes -= slot.value.len();
            }
            keep
        });
        if self.cold.len() != before {
            self.clock.retain(|loc| loc.segment != segment);
        }
    }
}
