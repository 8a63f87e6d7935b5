//! The in-memory index of one shard: key → location of its newest put frame.
//!
//! Three layers, newest first; a lookup stops at the first layer that knows the key:
//! - the **overlay**, mutable: a hash map from `(operator, key group)` to a hash map from the
//!   encoded `(key, namespace)` to `Some(loc)` (a put) or `None` (a tombstone: deleted here,
//!   still present in a layer below);
//! - the **frozen** overlay, read-only, present while an index file is being built from it
//!   (`index_file::merge` folds it into a new base);
//! - the **base**, read-only: a loaded or freshly built index file ([`BaseIndex`]).
//!
//! Without frozen and base layers (a store that never wrote or loaded an index file) every
//! operation is one overlay lookup, as before the layers existed. Prefix scans by operator or
//! key group walk the first level of each layer. `keys` counts live keys over all layers.
//!
//! Inner keys are encoded as `[key_len u16 LE][key][namespace]` into a reused scratch buffer, so
//! lookups do not allocate; inserting a new key allocates its boxed copy (unavoidable) unless it
//! fits inline.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::rc::Rc;

use crate::ids::{KeyGroup, OperatorId, Prefix, SegmentId, StateKey};
use crate::index_file::BaseIndex;
/// Where a frame lives: segment, byte offset, total frame length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Loc {
    /// Segment holding the frame.
    pub segment: SegmentId,
    /// Offset of the frame's first byte in the segment file.
    pub offset: u32,
    /// Total frame length in bytes.
    pub len: u32,
}

/// Multiply-rotate hasher (FxHash): keys are short byte strings chosen by the application
/// inside one shard, and SipHash would cost more than the rest of a lookup.
#[derive(Default)]
pub(crate) struct FxHasher(u64);

const FX_SEED: u64 = 0x51_7c_c1_b7_27_22_0a_95;

impl FxHasher {
    fn add(&mut self, word: u64) {
        self.0 = (self.0.rotate_left(5) ^ word).wrapping_mul(FX_SEED);
    }
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        let mut chunks = bytes.chunks_exact(8);
        for chunk in &mut chunks {
            let mut word = [0u8; 8];
            word.copy_from_slice(chunk);
            self.add(u64::from_le_bytes(word));
        }
        let rest = chunks.remainder();
        if !rest.is_empty() {
            let mut word = [0u8; 8];
            word.get_mut(..rest.len())
                .unwrap_or_default()
                .copy_from_slice(rest);
            self.add(u64::from_le_bytes(word) ^ ((rest.len() as u64) << 59));
        }
    }

    fn write_usize(&mut self, n: usize) {
        self.add(n as u64);
    }

    fn finish(&self) -> u64 {
        // Fold high bits down: hashbrown takes control bits from the top and buckets from the
        // bottom.
        self.0 ^ (self.0 >> 29)
    }
}

pub(crate) type FxBuild = BuildHasherDefault<FxHasher>;
/// One group's overlay table: `Some(loc)` is a put, `None` a tombstone over a lower layer.
pub(crate) type Group = HashMap<IndexKey, Option<Loc>, FxBuild>;
/// An overlay: every group's table.
pub(crate) type Overlay = HashMap<(OperatorId, KeyGroup), Group, FxBuild>;

/// Encoded keys up to this many bytes are stored inline in the table: no allocation per key,
/// no pointer chase on compare or rehash (recovery inserts millions of keys).
const INLINE_KEY_BYTES: usize = 30;

/// An encoded inner key, inline when short. Hashes and compares as its byte slice, so tables
/// can be probed with a borrowed `&[u8]`.
pub(crate) enum IndexKey {
    Inline {
        len: u8,
        bytes: [u8; INLINE_KEY_BYTES],
    },
    Heap(Box<[u8]>),
}

impl IndexKey {
    fn new(encoded: &[u8]) -> Self {
        if encoded.len() <= INLINE_KEY_BYTES {
            let mut bytes = [0u8; INLINE_KEY_BYTES];
            bytes
                .get_mut(..encoded.len())
                .unwrap_or_default()
                .copy_from_slice(encoded);
            Self::Inline {
                len: encoded.len() as u8,
                bytes,
            }
        } else {
            Self::Heap(encoded.into())
        }
    }

    pub(crate) fn as_slice(&self) -> &[u8] {
        match self {
            Self::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Self::Heap(bytes) => bytes,
        }
    }
}

impl std::borrow::Borrow<[u8]> for IndexKey {
    fn borrow(&self) -> &[u8] {
        self.as_slice()
    }
}

impl std::hash::Hash for IndexKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Must equal `<[u8] as Hash>::hash` for `Borrow<[u8]>` lookups to work.
        self.as_slice().hash(state);
    }
}

impl PartialEq for IndexKey {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl Eq for IndexKey {}

const _: () = assert!(std::mem::size_of::<IndexKey>() == 32);

/// One frame handed to [`Index::replay_group`]: its encoded inner key (see [`append_inner`])
/// and, for a put, its location (`None` is a delete).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Replayed<'a> {
    pub inner: &'a [u8],
    pub put: Option<Loc>,
}

/// The index of one shard.
#[derive(Default)]
pub(crate) struct Index {
    overlay: Overlay,
    frozen: Option<Rc<Overlay>>,
    base: Option<Rc<BaseIndex>>,
    scratch: Vec<u8>,
    keys: usize,
}

fn encode_inner(scratch: &mut Vec<u8>, key: &StateKey<'_>) {
    scratch.clear();
    append_inner(scratch, key);
}

/// Appends `key`'s encoded inner key `[key_len u16 LE][key][namespace]` to `out`.
pub(crate) fn append_inner(out: &mut Vec<u8>, key: &StateKey<'_>) {
    let key_len = u16::try_from(key.key.len()).expect("frame_bytes bounds key length");
    out.extend_from_slice(&key_len.to_le_bytes());
    out.extend_from_slice(key.key);
    out.extend_from_slice(key.namespace);
}

/// Splits an encoded inner key into `(key, namespace)`.
pub(crate) fn decode_inner(inner: &[u8]) -> (&[u8], &[u8]) {
    let key_len = match inner {
        [a, b, ..] => usize::from(u16::from_le_bytes([*a, *b])),
        _ => 0,
    };
    let rest = inner.get(2..).unwrap_or_default();
    rest.split_at(key_len.min(rest.len()))
}

/// The key's location in the layers below the overlay: the frozen overlay decides if it knows
/// the key (a tombstone there hides the base).
fn lower(
    frozen: Option<&Overlay>,
    base: Option<&BaseIndex>,
    group: (OperatorId, KeyGroup),
    inner: &[u8],
) -> Option<Loc> {
    if let Some(slot) = frozen
        .and_then(|f| f.get(&group))
        .and_then(|g| g.get(inner))
    {
        return *slot;
    }
    base?.get(group.0, group.1, inner)
}

impl Index {
    /// An index whose base layer is a loaded index file.
    pub fn with_base(base: BaseIndex) -> Self {
        Self {
            keys: base.len(),
            base: Some(Rc::new(base)),
            ..Self::default()
        }
    }

    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// The base layer, if any.
    pub fn base(&self) -> Option<&Rc<BaseIndex>> {
        self.base.as_ref()
    }

    fn lookup(&self, group: (OperatorId, KeyGroup), inner: &[u8]) -> Option<Loc> {
        if let Some(slot) = self.overlay.get(&group).and_then(|g| g.get(inner)) {
            return *slot;
        }
        lower(self.frozen.as_deref(), self.base.as_deref(), group, inner)
    }

    /// The location of `key`'s newest put, if live.
    pub fn get(&mut self, key: &StateKey<'_>) -> Option<Loc> {
        encode_inner(&mut self.scratch, key);
        self.lookup((key.operator, key.key_group), &self.scratch)
    }

    /// Points `key` at `loc`; returns the previous location.
    pub fn insert(&mut self, key: &StateKey<'_>, loc: Loc) -> Option<Loc> {
        encode_inner(&mut self.scratch, key);
        let scratch = std::mem::take(&mut self.scratch);
        let old = self.insert_inner((key.operator, key.key_group), &scratch, loc);
        self.scratch = scratch;
        old
    }

    fn insert_inner(
        &mut self,
        group: (OperatorId, KeyGroup),
        inner: &[u8],
        loc: Loc,
    ) -> Option<Loc> {
        let table = self.overlay.entry(group).or_default();
        let old = match table.get_mut(inner) {
            Some(slot) => slot.replace(loc),
            None => {
                let old = lower(self.frozen.as_deref(), self.base.as_deref(), group, inner);
                table.insert(IndexKey::new(inner), Some(loc));
                old
            }
        };
        self.keys += usize::from(old.is_none());
        old
    }

    /// Removes `key`; returns its location if it was live.
    pub fn remove(&mut self, key: &StateKey<'_>) -> Option<Loc> {
        encode_inner(&mut self.scratch, key);
        let scratch = std::mem::take(&mut self.scratch);
        let old = self.remove_inner((key.operator, key.key_group), &scratch);
        self.scratch = scratch;
        old
    }

    fn remove_inner(&mut self, group: (OperatorId, KeyGroup), inner: &[u8]) -> Option<Loc> {
        let old = self.lookup(group, inner)?;
        self.keys -= 1;
        let below = lower(self.frozen.as_deref(), self.base.as_deref(), group, inner);
        let table = self.overlay.entry(group).or_default();
        if below.is_some() {
            // A lower layer still holds the key: hide it with a tombstone.
            match table.get_mut(inner) {
                Some(slot) => *slot = None,
                None => {
                    table.insert(IndexKey::new(inner), None);
                }
            }
        } else {
            table.remove(inner);
            if table.is_empty() {
                self.overlay.remove(&group);
            }
        }
        Some(old)
    }

    /// Moves `key` from `from` to `to` if it still lives at `from` (compaction's copy; a put
    /// from the shard since the copy was read wins). Returns whether it moved.
    pub fn relocate(&mut self, key: &StateKey<'_>, from: Loc, to: Loc) -> bool {
        if self.get(key) != Some(from) {
            return false;
        }
        let old = self.insert(key, to);
        assert_eq!(old, Some(from));
        true
    }

    /// Replays frames of one `(operator, key group)` in log order: a put points its key at its
    /// location, a delete removes the key. `displaced` receives every location that stops being
    /// live. Without lower layers the group's table is looked up once for the whole run
    /// (recovery applies frames group by group so that one table at a time is hot in the
    /// caches); with a base, each frame goes through the layered insert and remove.
    pub fn replay_group<'a>(
        &mut self,
        operator: OperatorId,
        key_group: KeyGroup,
        frames: impl IntoIterator<Item = Replayed<'a>>,
        mut displaced: impl FnMut(Loc),
    ) {
        let group_key = (operator, key_group);
        if self.frozen.is_some() || self.base.is_some() {
            for frame in frames {
                let old = match frame.put {
                    Some(loc) => self.insert_inner(group_key, frame.inner, loc),
                    None => self.remove_inner(group_key, frame.inner),
                };
                if let Some(old) = old {
                    displaced(old);
                }
            }
            return;
        }
        let group = self.overlay.entry(group_key).or_default();
        for frame in frames {
            match frame.put {
                Some(loc) => {
                    if let Some(slot) = group.get_mut(frame.inner) {
                        if let Some(old) = slot.replace(loc) {
                            displaced(old);
                        }
                    } else {
                        group.insert(IndexKey::new(frame.inner), Some(loc));
                        self.keys += 1;
                    }
                }
                None => {
                    if let Some(old) = group.remove(frame.inner).flatten() {
                        self.keys -= 1;
                        displaced(old);
                    }
                }
            }
        }
        if group.is_empty() {
            self.overlay.remove(&group_key);
        }
    }

    /// Visits every live key under `prefix`: `(operator, key group, encoded inner key, loc)`.
    pub fn scan(&self, prefix: Prefix, mut visit: impl FnMut(OperatorId, KeyGroup, &[u8], Loc)) {
        let want = |op: OperatorId, kg: KeyGroup| match prefix {
            Prefix::KeyGroup(o, g) => o == op && g == kg,
            Prefix::Operator(o) => o == op,
        };
        // Groups are few (key groups x operators); walking them all is cheap next to the keys
        // visited.
        let overlay = &self.overlay;
        let in_overlay = |id: &(OperatorId, KeyGroup), inner: &[u8]| {
            overlay.get(id).is_some_and(|g| g.contains_key(inner))
        };
        for (id, group) in overlay.iter().filter(|(id, _)| want(id.0, id.1)) {
            for (inner, loc) in group {
                if let Some(loc) = loc {
                    visit(id.0, id.1, inner.as_slice(), *loc);
                }
            }
        }
        let frozen = self.frozen.as_deref();
        if let Some(frozen) = frozen {
            for (id, group) in frozen.iter().filter(|(id, _)| want(id.0, id.1)) {
                for (inner, loc) in group {
                    if let Some(loc) = loc
                        && !in_overlay(id, inner.as_slice())
                    {
                        visit(id.0, id.1, inner.as_slice(), *loc);
                    }
                }
            }
        }
        if let Some(base) = &self.base {
            base.for_each(want, |op, kg, inner, loc| {
                let id = (op, kg);
                let in_frozen = frozen
                    .and_then(|f| f.get(&id))
                    .is_some_and(|g| g.contains_key(inner));
                if !in_frozen && !in_overlay(&id, inner) {
                    visit(op, kg, inner, loc);
                }
            });
        }
    }

    /// Freezes the overlay for an index-file build and starts an empty one; returns the frozen
    /// overlay and the base it lies on. `None` while an earlier build has not been installed.
    pub fn freeze(&mut self) -> Option<(Rc<Overlay>, Option<Rc<BaseIndex>>)> {
        if self.frozen.is_some() {
            return None;
        }
        let frozen = Rc::new(std::mem::take(&mut self.overlay));
        self.frozen = Some(Rc::clone(&frozen));
        Some((frozen, self.base.clone()))
    }

    /// Replaces the frozen overlay and the old base by `base`, which must equal them merged.
    pub fn install(&mut self, base: Rc<BaseIndex>) {
        assert!(self.frozen.is_some(), "install without a frozen overlay");
        self.base = Some(base);
        self.frozen = None;
    }

    /// Folds the frozen overlay back into the overlay (a build that could not finish): keys
    /// the overlay knows are newer and stay.
    pub fn thaw(&mut self) {
        let Some(frozen) = self.frozen.take() else {
            return;
        };
        for (id, group) in frozen.iter() {
            let table = self.overlay.entry(*id).or_default();
            for (inner, loc) in group {
                if !table.contains_key(inner.as_slice()) {
                    table.insert(IndexKey::new(inner.as_slice()), *loc);
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn k<'a>(op: u32, kg: u16, key: &'a [u8], ns: &'a [u8]) -> StateKey<'a> {
        StateKey {
            operator: OperatorId(op),
            key_group: KeyGroup(kg),
            key,
            namespace: ns,
        }
    }

    #[test]
    fn insert_get_remove_scan() {
        let mut index = Index::default();
        let loc = |o| Loc {
            segment: SegmentId(1),
            offset: o,
            len: 30,
        };
        assert_eq!(index.insert(&k(1, 2, b"a", b""), loc(32)), None);
        assert_eq!(index.insert(&k(1, 2, b"a", b"w"), loc(64)), None);
        assert_eq!(index.insert(&k(1, 3, b"a", b""), loc(96)), None);
        assert_eq!(index.insert(&k(2, 2, b"a", b""), loc(128)), None);
        assert_eq!(index.insert(&k(1, 2, b"a", b""), loc(160)), Some(loc(32)));
        assert_eq!(index.len(), 4);
        assert_eq!(index.get(&k(1, 2, b"a", b"")), Some(loc(160)));
        // Key/namespace boundaries are part of the key: ("a","w") differs from ("aw","").
        assert_eq!(index.get(&k(1, 2, b"aw", b"")), None);
        let mut seen = Vec::new();
        index.scan(Prefix::Operator(OperatorId(1)), |_, kg, inner, _| {
            seen.push((
                kg.0,
                decode_inner(inner).0.to_vec(),
                decode_inner(inner).1.to_vec(),
            ));
        });
        seen.sort();
        assert_eq!(seen.len(), 3);
        assert_eq!(seen.first().unwrap(), &(2, b"a".to_vec(), b"".to_vec()));
        assert_eq!(index.remove(&k(1, 2, b"a", b"")), Some(loc(160)));
        assert_eq!(index.remove(&k(1, 2, b"a", b"")), None);
        assert!(index.relocate(&k(2, 2, b"a", b""), loc(128), loc(1)));
        assert_eq!(index.get(&k(2, 2, b"a", b"")), Some(loc(1)));
        assert!(!index.relocate(&k(2, 2, b"b", b""), loc(1), loc(2)));
        assert_eq!(index.len(), 3);
    }
}
