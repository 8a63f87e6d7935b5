//! The in-memory index of one shard: key → location of its newest put frame.
//!
//! Two levels: a hash map from `(operator, key group)` to a hash map from the encoded
//! `(key, namespace)` to a [`Loc`]. Prefix scans by operator or by key group walk the first
//! level; point operations cost two hash lookups (a small one, then the group). Deleted keys are
//! absent. The index holds no values; recovery rebuilds it from the log.
//!
//! Inner keys are encoded as `[key_len u16 LE][key][namespace]` into a reused scratch buffer, so
//! lookups do not allocate; inserting a new key allocates its boxed copy (unavoidable).

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::ids::{KeyGroup, OperatorId, Prefix, SegmentId, StateKey};

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
type Group = HashMap<IndexKey, Loc, FxBuild>;

/// Encoded keys up to this many bytes are stored inline in the table: no allocation per key,
/// no pointer chase on compare or rehash (recovery inserts millions of keys).
const INLINE_KEY_BYTES: usize = 30;

/// An encoded inner key, inline when short. Hashes and compares as its byte slice, so tables
/// can be probed with a borrowed `&[u8]`.
enum IndexKey {
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

    fn as_slice(&self) -> &[u8] {
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
    groups: HashMap<(OperatorId, KeyGroup), Group, FxBuild>,
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

impl Index {
    /// Number of live keys.
    pub fn len(&self) -> usize {
        self.keys
    }

    /// The location of `key`'s newest put, if live.
    pub fn get(&mut self, key: &StateKey<'_>) -> Option<Loc> {
        let group = self.groups.get(&(key.operator, key.key_group))?;
        encode_inner(&mut self.scratch, key);
        group.get(self.scratch.as_slice()).copied()
    }

    /// The slot holding `key`'s location, if live: compaction checks and moves a key with one
    /// lookup.
    pub fn slot_mut(&mut self, key: &StateKey<'_>) -> Option<&mut Loc> {
        let group = self.groups.get_mut(&(key.operator, key.key_group))?;
        encode_inner(&mut self.scratch, key);
        group.get_mut(self.scratch.as_slice())
    }

    /// Points `key` at `loc`; returns the previous location.
    pub fn insert(&mut self, key: &StateKey<'_>, loc: Loc) -> Option<Loc> {
        encode_inner(&mut self.scratch, key);
        let group = self
            .groups
            .entry((key.operator, key.key_group))
            .or_default();
        if let Some(slot) = group.get_mut(self.scratch.as_slice()) {
            return Some(std::mem::replace(slot, loc));
        }
        group.insert(IndexKey::new(&self.scratch), loc);
        self.keys += 1;
        None
    }

    /// Removes `key`; returns its location if it was live.
    pub fn remove(&mut self, key: &StateKey<'_>) -> Option<Loc> {
        let group_key = (key.operator, key.key_group);
        let group = self.groups.get_mut(&group_key)?;
        encode_inner(&mut self.scratch, key);
        let old = group.remove(self.scratch.as_slice())?;
        self.keys -= 1;
        if group.is_empty() {
            self.groups.remove(&group_key);
        }
        Some(old)
    }

    /// Replays frames of one `(operator, key group)` in log order: a put points its key at its
    /// location, a delete removes the key. `displaced` receives every location that stops being
    /// live. The group's table is looked up once for the whole run (recovery applies frames
    /// group by group so that one table at a time is hot in the caches).
    pub fn replay_group<'a>(
        &mut self,
        operator: OperatorId,
        key_group: KeyGroup,
        frames: impl IntoIterator<Item = Replayed<'a>>,
        mut displaced: impl FnMut(Loc),
    ) {
        let group_key = (operator, key_group);
        let group = self.groups.entry(group_key).or_default();
        for frame in frames {
            match frame.put {
                Some(loc) => {
                    if let Some(slot) = group.get_mut(frame.inner) {
                        displaced(std::mem::replace(slot, loc));
                    } else {
                        group.insert(IndexKey::new(frame.inner), loc);
                        self.keys += 1;
                    }
                }
                None => {
                    if let Some(old) = group.remove(frame.inner) {
                        self.keys -= 1;
                        displaced(old);
                    }
                }
            }
        }
        if group.is_empty() {
            self.groups.remove(&group_key);
        }
    }

    /// Visits every live key under `prefix`: `(operator, key group, encoded inner key, loc)`.
    pub fn scan(&self, prefix: Prefix, mut visit: impl FnMut(OperatorId, KeyGroup, &[u8], Loc)) {
        let mut visit_group = |(op, kg): (OperatorId, KeyGroup), group: &Group| {
            for (inner, loc) in group {
                visit(op, kg, inner.as_slice(), *loc);
            }
        };
        match prefix {
            Prefix::KeyGroup(op, kg) => {
                if let Some(group) = self.groups.get(&(op, kg)) {
                    visit_group((op, kg), group);
                }
            }
            // Groups are few (key groups x operators); walking them all is cheap next to the
            // keys visited.
            Prefix::Operator(op) => {
                for (id, group) in self.groups.iter().filter(|(id, _)| id.0 == op) {
                    visit_group(*id, group);
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
        *index.slot_mut(&k(2, 2, b"a", b"")).unwrap() = loc(1);
        assert_eq!(index.get(&k(2, 2, b"a", b"")), Some(loc(1)));
        assert!(index.slot_mut(&k(2, 2, b"b", b"")).is_none());
        assert_eq!(index.len(), 3);
    }
}
