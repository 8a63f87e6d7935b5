//! Batched index replay: frames arrive in log order from recovery's segment scans and are
//! applied to the index group by group (`(operator, key group)`).
//!
//! Why batch: rebuilding the index is one hash-table insert per frame, and a shard's group
//! tables together are far larger than the CPU caches. Applied in log order, consecutive frames
//! land in unrelated tables, so each insert is a cache and TLB miss. Applied group by group,
//! one table at a time is hot (on the dev VM, 7.9 M keys over 128 key groups: ~120 instead of
//! ~400 ns per key). The batch holds up to [`REPLAY_BATCH_FRAMES_MAX`] frames, so its memory
//! is bounded whatever the log's size.
//!
//! Invariants:
//! - within one group, frames are applied in log order (the partition is a stable counting
//!   sort), so later frames win exactly as in one-by-one replay; frames of different groups
//!   never name the same key, so their relative order is irrelevant;
//! - per-segment live bytes end exactly as one-by-one replay leaves them: every put adds its
//!   length to its segment, every displaced location (overwritten or deleted) subtracts its
//!   length from its own segment.

use std::collections::{BTreeMap, HashMap};

use crate::bounds::{REPLAY_BATCH_FRAMES_MAX, REPLAY_BATCH_KEY_BYTES_MAX};
use crate::format::{Frame, FrameKind};
use crate::ids::{KeyGroup, OperatorId, SegmentId};
use crate::index::{FxBuild, Index, Loc, Replayed, append_inner};
use crate::log::SegmentMeta;

/// One frame waiting in the batch. Its encoded inner key is `keys[previous key_end..key_end]`.
#[derive(Clone, Copy)]
struct Pending {
    key_end: u32,
    group: u32,
    /// The frame's location; `None` for a delete.
    put: Option<Loc>,
}

/// Frames collected in log order, waiting to be applied to the index.
#[derive(Default)]
pub(crate) struct ReplayBatch {
    /// Dense ids of the groups seen in this batch (groups are few; frames are many).
    group_ids: HashMap<(OperatorId, KeyGroup), u32, FxBuild>,
    group_keys: Vec<(OperatorId, KeyGroup)>,
    pending: Vec<Pending>,
    keys: Vec<u8>,
    /// Scratch for the counting sort, reused across batches.
    order: Vec<u32>,
    starts: Vec<u32>,
}

impl ReplayBatch {
    /// Adds one verified frame found at `offset` of `segment`. Returns true when the batch is
    /// full and must be applied before the next push.
    pub fn push(&mut self, segment: SegmentId, offset: u64, frame: &Frame<'_>) -> bool {
        let group_key = (frame.key.operator, frame.key.key_group);
        let next_id = self.group_keys.len() as u32;
        let group = *self.group_ids.entry(group_key).or_insert(next_id);
        if group == next_id {
            self.group_keys.push(group_key);
        }
        let put = match frame.kind {
            FrameKind::Put => Some(Loc {
                segment,
                offset: u32::try_from(offset).expect("segment offsets fit u32"),
                len: u32::try_from(frame.value_offset + frame.value.len()).expect("frame fits u32"),
            }),
            FrameKind::Delete => None,
        };
        append_inner(&mut self.keys, &frame.key);
        let key_end = u32::try_from(self.keys.len()).expect("batch key bytes are bounded");
        self.pending.push(Pending {
            key_end,
            group,
            put,
        });
        self.pending.len() >= REPLAY_BATCH_FRAMES_MAX
            || self.keys.len() >= REPLAY_BATCH_KEY_BYTES_MAX
    }

    /// Applies every pending frame to `index` and to the live-byte counts of `segments`, which
    /// must hold every segment a frame or a displaced location belongs to; then empties itself.
    pub fn apply(&mut self, index: &mut Index, segments: &mut BTreeMap<SegmentId, SegmentMeta>) {
        if self.pending.is_empty() {
            return;
        }
        // Adds first, subtractions after: a location displaced within this batch was added
        // above, so no count ever goes below zero.
        let mut last: Option<(SegmentId, u64)> = None;
        for loc in self.pending.iter().filter_map(|p| p.put) {
            match &mut last {
                Some((segment, bytes)) if *segment == loc.segment => *bytes += u64::from(loc.len),
                _ => {
                    if let Some((segment, bytes)) = last.take() {
                        add_live(segments, segment, bytes);
                    }
                    last = Some((loc.segment, u64::from(loc.len)));
                }
            }
        }
        if let Some((segment, bytes)) = last {
            add_live(segments, segment, bytes);
        }

        // Stable counting sort of frame indices by group.
        let groups = self.group_keys.len();
        self.starts.clear();
        self.starts.resize(groups + 1, 0);
        for p in &self.pending {
            if let Some(count) = self.starts.get_mut(p.group as usize + 1) {
                *count += 1;
            }
        }
        for g in 0..groups {
            let before = self.starts.get(g).copied().unwrap_or(0);
            if let Some(start) = self.starts.get_mut(g + 1) {
                *start += before;
            }
        }
        self.order.clear();
        self.order.resize(self.pending.len(), 0);
        let mut fill = self.starts.clone();
        for (i, p) in self.pending.iter().enumerate() {
            if let Some(at) = fill.get_mut(p.group as usize) {
                if let Some(slot) = self.order.get_mut(*at as usize) {
                    *slot = i as u32;
                }
                *at += 1;
            }
        }

        let (pending, keys) = (&self.pending, &self.keys);
        for (g, &(operator, key_group)) in self.group_keys.iter().enumerate() {
            let start = self.starts.get(g).copied().unwrap_or(0) as usize;
            let end = self.starts.get(g + 1).copied().unwrap_or(0) as usize;
            let frames = self
                .order
                .get(start..end)
                .unwrap_or_default()
                .iter()
                .map(|&i| {
                    let i = i as usize;
                    let from = match i.checked_sub(1).and_then(|j| pending.get(j)) {
                        Some(prev) => prev.key_end as usize,
                        None => 0,
                    };
                    let p = pending.get(i).copied();
                    let to = p.map_or(from, |p| p.key_end as usize);
                    Replayed {
                        inner: keys.get(from..to).unwrap_or_default(),
                        put: p.and_then(|p| p.put),
                    }
                });
            index.replay_group(operator, key_group, frames, |old| {
                if let Some(meta) = segments.get_mut(&old.segment) {
                    debug_assert!(meta.live_bytes >= u64::from(old.len));
                    meta.live_bytes -= u64::from(old.len);
                }
            });
        }
        self.pending.clear();
        self.keys.clear();
        self.group_ids.clear();
        self.group_keys.clear();
    }
}

fn add_live(segments: &mut BTreeMap<SegmentId, SegmentMeta>, segment: SegmentId, bytes: u64) {
    let meta = segments.get_mut(&segment);
    meta.expect("recovery registers a segment before replaying its frames")
        .live_bytes += bytes;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::format::{decode_frame, encode_frame, frame_bytes};
    use crate::ids::StateKey;
    use proptest::prelude::*;

    /// Replays the same frames one by one with `Index::insert`/`remove` (the reference) and
    /// through a batch applied every `flush_every` frames; index and live bytes must agree.
    fn check(ops: &[(bool, u8, u8, u8)], flush_every: usize) {
        let mut reference = Index::default();
        let mut ref_segments = BTreeMap::new();
        let mut batched = Index::default();
        let mut segments = BTreeMap::new();
        let mut batch = ReplayBatch::default();
        let mut offset = 32u64;
        for (i, &(put, op, kg, key)) in ops.iter().enumerate() {
            let segment = SegmentId(1 + (i / 7) as u32);
            for map in [&mut ref_segments, &mut segments] {
                map.entry(segment).or_insert(SegmentMeta {
                    len: 0,
                    live_bytes: 0,
                });
            }
            let k = [key];
            let sk = StateKey {
                operator: OperatorId(u32::from(op % 3)),
                key_group: KeyGroup(u16::from(kg % 4)),
                key: &k,
                namespace: if key % 2 == 0 { b"" } else { b"ns" },
            };
            let (kind, value) = if put {
                (FrameKind::Put, &[7u8; 5][..])
            } else {
                (FrameKind::Delete, &[][..])
            };
            let mut bytes = vec![0; frame_bytes(&sk, value.len()).unwrap()];
            encode_frame(&mut bytes, kind, &sk, value);
            let frame = decode_frame(&bytes).unwrap();
            let loc = Loc {
                segment,
                offset: offset as u32,
                len: bytes.len() as u32,
            };
            let old = if put {
                ref_segments.get_mut(&segment).unwrap().live_bytes += u64::from(loc.len);
                reference.insert(&sk, loc)
            } else {
                reference.remove(&sk)
            };
            if let Some(old) = old {
                ref_segments.get_mut(&old.segment).unwrap().live_bytes -= u64::from(old.len);
            }
            let full = batch.push(segment, offset, &frame);
            if full || (i + 1) % flush_every == 0 {
                batch.apply(&mut batched, &mut segments);
            }
            offset += bytes.len() as u64;
        }
        batch.apply(&mut batched, &mut segments);
        assert_eq!(batched.len(), reference.len());
        assert_eq!(segments, ref_segments);
        let mut want = Vec::new();
        let mut got = Vec::new();
        for op in 0..3 {
            let prefix = crate::ids::Prefix::Operator(OperatorId(op));
            reference.scan(prefix, |o, g, inner, loc| {
                want.push((o, g, inner.to_vec(), loc))
            });
            batched.scan(prefix, |o, g, inner, loc| {
                got.push((o, g, inner.to_vec(), loc))
            });
        }
        want.sort_by_key(|e| (e.0, e.1, e.2.clone()));
        got.sort_by_key(|e| (e.0, e.1, e.2.clone()));
        assert_eq!(got, want);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn batched_replay_equals_one_by_one(
            ops in proptest::collection::vec((any::<bool>(), any::<u8>(), any::<u8>(), 0u8..12), 0..200),
            flush_every in 1usize..64,
        ) {
            check(&ops, flush_every);
        }
    }
}
