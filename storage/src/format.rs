//! The on-disk format: segment header, entry frame, and serialized position.
//!
//! `storage/FORMAT.md` describes the same layout byte by byte; `tests::format_doc_matches_code`
//! checks the document's constant table against the constants below. All integers are
//! little-endian. Offsets are derived from the previous field so the diagram cannot drift.
//!
//! ```text
//! segment file: [segment header 32 B][frame][frame]...[frame] (then zero padding to a block)
//! frame:        [len u32][crc u32][kind u8][flags u8][key_group u16][operator u32]
//!               [key_len u16][namespace_len u16][key][namespace][value]
//! ```
//! `len` counts the body (key + namespace + value); `crc` is crc32 over bytes `[8, 20 + len)`,
//! that is everything after the crc field.

use crate::error::{Result, StorageError};
use crate::ids::{KeyGroup, OperatorId, SegmentId, StateKey};

/// I/O unit of the log: every write starts and ends on a block boundary (O_DIRECT).
pub const BLOCK_BYTES: usize = 4096;

/// Magic at the start of every segment file.
pub const SEGMENT_MAGIC: [u8; 8] = *b"CSTRSEG\0";
/// Format version written in every segment header and position.
pub const FORMAT_VERSION: u32 = 1;
/// Offset of the magic in the segment header.
pub const SEGMENT_MAGIC_OFFSET: usize = 0;
/// Offset of the format version.
pub const SEGMENT_VERSION_OFFSET: usize = SEGMENT_MAGIC_OFFSET + 8;
/// Offset of the segment id.
pub const SEGMENT_ID_OFFSET: usize = SEGMENT_VERSION_OFFSET + 4;
/// Offset of the reserved (zero) bytes.
pub const SEGMENT_RESERVED_OFFSET: usize = SEGMENT_ID_OFFSET + 4;
/// Offset of the header crc (crc32 of bytes `[0, SEGMENT_CRC_OFFSET)`).
pub const SEGMENT_CRC_OFFSET: usize = SEGMENT_RESERVED_OFFSET + 12;
/// Size of the segment header; the first frame starts here.
pub const SEGMENT_HEADER_BYTES: usize = SEGMENT_CRC_OFFSET + 4;

/// Offset of the body length in a frame.
pub const FRAME_LEN_OFFSET: usize = 0;
/// Offset of the crc32 in a frame.
pub const FRAME_CRC_OFFSET: usize = FRAME_LEN_OFFSET + 4;
/// Offset of the kind byte; the crc covers from here to the end of the frame.
pub const FRAME_KIND_OFFSET: usize = FRAME_CRC_OFFSET + 4;
/// Offset of the flags byte (always 0 in version 1).
pub const FRAME_FLAGS_OFFSET: usize = FRAME_KIND_OFFSET + 1;
/// Offset of the key group.
pub const FRAME_KEY_GROUP_OFFSET: usize = FRAME_FLAGS_OFFSET + 1;
/// Offset of the operator id.
pub const FRAME_OPERATOR_OFFSET: usize = FRAME_KEY_GROUP_OFFSET + 2;
/// Offset of the key length.
pub const FRAME_KEY_LEN_OFFSET: usize = FRAME_OPERATOR_OFFSET + 4;
/// Offset of the namespace length.
pub const FRAME_NAMESPACE_LEN_OFFSET: usize = FRAME_KEY_LEN_OFFSET + 2;
/// Size of the frame header; the body (key, namespace, value) follows.
pub const FRAME_HEADER_BYTES: usize = FRAME_NAMESPACE_LEN_OFFSET + 2;

/// Frame kind: the body's value is the key's new value.
pub const KIND_PUT: u8 = 1;
/// Frame kind: the key is deleted; the body has no value bytes.
pub const KIND_DELETE: u8 = 2;

/// Magic at the start of a serialized position.
pub const POSITION_MAGIC: [u8; 4] = *b"CSPO";
/// Offset of the position magic.
pub const POSITION_MAGIC_OFFSET: usize = 0;
/// Offset of the format version.
pub const POSITION_VERSION_OFFSET: usize = POSITION_MAGIC_OFFSET + 4;
/// Offset of the seal sequence number (u64).
pub const POSITION_SEQ_OFFSET: usize = POSITION_VERSION_OFFSET + 4;
/// Offset of the segment count (u32).
pub const POSITION_COUNT_OFFSET: usize = POSITION_SEQ_OFFSET + 8;
/// Offset of the first `(segment id u32, length u64)` entry.
pub const POSITION_ENTRIES_OFFSET: usize = POSITION_COUNT_OFFSET + 4;
/// Size of one position entry.
pub const POSITION_ENTRY_BYTES: usize = 12;
/// Size of the trailing crc32 (over every byte before it).
pub const POSITION_CRC_BYTES: usize = 4;
/// Most segments one position may name.
pub const POSITION_SEGMENTS_MAX: usize = 1 << 16;

const _: () = assert!(SEGMENT_HEADER_BYTES == 32);
const _: () = assert!(FRAME_HEADER_BYTES == 20);
const _: () = assert!(BLOCK_BYTES.is_power_of_two());

/// Rounds `n` up to a multiple of [`BLOCK_BYTES`].
pub const fn align_up(n: u64) -> u64 {
    n.div_ceil(BLOCK_BYTES as u64) * BLOCK_BYTES as u64
}

/// Rounds `n` down to a multiple of [`BLOCK_BYTES`].
pub const fn align_down(n: u64) -> u64 {
    n / BLOCK_BYTES as u64 * BLOCK_BYTES as u64
}

fn le_u16(bytes: &[u8], at: usize) -> u16 {
    let mut b = [0u8; 2];
    b.copy_from_slice(bytes.get(at..at + 2).unwrap_or(&[0, 0]));
    u16::from_le_bytes(b)
}

fn le_u32(bytes: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(bytes.get(at..at + 4).unwrap_or(&[0; 4]));
    u32::from_le_bytes(b)
}

fn le_u64(bytes: &[u8], at: usize) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(bytes.get(at..at + 8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(b)
}

fn put(dst: &mut [u8], at: usize, src: &[u8]) {
    // Callers size `dst` from the constants above; a short buffer is a programmer error.
    let slot = dst
        .get_mut(at..at + src.len())
        .expect("buffer sized from format constants");
    slot.copy_from_slice(src);
}

/// Writes a segment header for `segment` into `dst[..SEGMENT_HEADER_BYTES]`.
pub fn encode_segment_header(dst: &mut [u8], segment: SegmentId) {
    assert!(dst.len() >= SEGMENT_HEADER_BYTES);
    put(dst, SEGMENT_MAGIC_OFFSET, &SEGMENT_MAGIC);
    put(dst, SEGMENT_VERSION_OFFSET, &FORMAT_VERSION.to_le_bytes());
    put(dst, SEGMENT_ID_OFFSET, &segment.0.to_le_bytes());
    put(
        dst,
        SEGMENT_RESERVED_OFFSET,
        &[0u8; SEGMENT_CRC_OFFSET - SEGMENT_RESERVED_OFFSET],
    );
    let crc = crc32fast::hash(dst.get(..SEGMENT_CRC_OFFSET).unwrap_or_default());
    put(dst, SEGMENT_CRC_OFFSET, &crc.to_le_bytes());
}

/// Checks a segment header; `file` names the file in the error.
pub fn verify_segment_header(bytes: &[u8], segment: SegmentId, file: &str) -> Result<()> {
    let Some(header) = bytes.get(..SEGMENT_HEADER_BYTES) else {
        return Err(StorageError::corrupt(
            file,
            0,
            "segment header is truncated",
        ));
    };
    let crc = crc32fast::hash(header.get(..SEGMENT_CRC_OFFSET).unwrap_or_default());
    if crc != le_u32(header, SEGMENT_CRC_OFFSET) {
        return Err(StorageError::corrupt(
            file,
            0,
            "segment header crc mismatch",
        ));
    }
    if header.get(..8) != Some(&SEGMENT_MAGIC[..]) {
        return Err(StorageError::corrupt(file, 0, "bad segment magic"));
    }
    let version = le_u32(header, SEGMENT_VERSION_OFFSET);
    if version != FORMAT_VERSION {
        return Err(StorageError::corrupt(
            file,
            0,
            format!("unknown format version {version}"),
        ));
    }
    let id = le_u32(header, SEGMENT_ID_OFFSET);
    if id != segment.0 {
        return Err(StorageError::corrupt(
            file,
            0,
            format!("header names segment {id}"),
        ));
    }
    Ok(())
}

/// Put or delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// A new value for the key.
    Put,
    /// The key is deleted.
    Delete,
}

impl FrameKind {
    fn byte(self) -> u8 {
        match self {
            Self::Put => KIND_PUT,
            Self::Delete => KIND_DELETE,
        }
    }
}

/// Total frame size for a key and value, or an error if it exceeds the bounds.
pub fn frame_bytes(key: &StateKey<'_>, value_len: usize) -> Result<usize> {
    use crate::bounds::{FRAME_BYTES_MAX, KEY_BYTES_MAX};
    let longest = key.key.len().max(key.namespace.len());
    if longest > KEY_BYTES_MAX {
        return Err(StorageError::EntryTooLarge {
            bytes: longest,
            max: KEY_BYTES_MAX,
        });
    }
    let total = FRAME_HEADER_BYTES + key.key.len() + key.namespace.len() + value_len;
    if total > FRAME_BYTES_MAX {
        return Err(StorageError::EntryTooLarge {
            bytes: total,
            max: FRAME_BYTES_MAX,
        });
    }
    Ok(total)
}

/// Encodes one frame into `dst`, which must be exactly [`frame_bytes`] long.
pub fn encode_frame(dst: &mut [u8], kind: FrameKind, key: &StateKey<'_>, value: &[u8]) {
    let body = key.key.len() + key.namespace.len() + value.len();
    assert_eq!(dst.len(), FRAME_HEADER_BYTES + body);
    assert!(kind == FrameKind::Put || value.is_empty());
    let body_u32 = u32::try_from(body).expect("frame_bytes bounds the body");
    let key_len = u16::try_from(key.key.len()).expect("frame_bytes bounds the key");
    let ns_len = u16::try_from(key.namespace.len()).expect("frame_bytes bounds the namespace");
    put(dst, FRAME_LEN_OFFSET, &body_u32.to_le_bytes());
    put(dst, FRAME_KIND_OFFSET, &[kind.byte(), 0]);
    put(dst, FRAME_KEY_GROUP_OFFSET, &key.key_group.0.to_le_bytes());
    put(dst, FRAME_OPERATOR_OFFSET, &key.operator.0.to_le_bytes());
    put(dst, FRAME_KEY_LEN_OFFSET, &key_len.to_le_bytes());
    put(dst, FRAME_NAMESPACE_LEN_OFFSET, &ns_len.to_le_bytes());
    let mut at = FRAME_HEADER_BYTES;
    for part in [key.key, key.namespace, value] {
        put(dst, at, part);
        at += part.len();
    }
    let crc = crc32fast::hash(dst.get(FRAME_KIND_OFFSET..).unwrap_or_default());
    put(dst, FRAME_CRC_OFFSET, &crc.to_le_bytes());
}

/// Total size of the frame whose header starts `bytes` (needs [`FRAME_HEADER_BYTES`] bytes).
pub fn frame_total_bytes(header: &[u8]) -> u64 {
    FRAME_HEADER_BYTES as u64 + u64::from(le_u32(header, FRAME_LEN_OFFSET))
}

/// Offset of the value inside a frame whose header starts `header` (no crc check: for frames
/// the store itself wrote into memory).
pub fn frame_value_offset(header: &[u8]) -> usize {
    FRAME_HEADER_BYTES
        + usize::from(le_u16(header, FRAME_KEY_LEN_OFFSET))
        + usize::from(le_u16(header, FRAME_NAMESPACE_LEN_OFFSET))
}

/// One decoded, crc-verified frame borrowing its bytes.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    /// Put or delete.
    pub kind: FrameKind,
    /// Decoded key.
    pub key: StateKey<'a>,
    /// Value bytes (empty for deletes).
    pub value: &'a [u8],
    /// Offset of the value inside the frame.
    pub value_offset: usize,
}

/// Decodes a complete frame (`bytes` is exactly one frame) and verifies its crc.
///
/// # Errors
/// A string saying which check failed; the caller adds file and offset.
pub fn decode_frame(bytes: &[u8]) -> std::result::Result<Frame<'_>, &'static str> {
    if bytes.len() < FRAME_HEADER_BYTES {
        return Err("frame shorter than its header");
    }
    if frame_total_bytes(bytes) != bytes.len() as u64 {
        return Err("frame length field disagrees with the frame");
    }
    let crc = crc32fast::hash(bytes.get(FRAME_KIND_OFFSET..).unwrap_or_default());
    if crc != le_u32(bytes, FRAME_CRC_OFFSET) {
        return Err("frame crc mismatch");
    }
    let kind = match bytes.get(FRAME_KIND_OFFSET) {
        Some(&KIND_PUT) => FrameKind::Put,
        Some(&KIND_DELETE) => FrameKind::Delete,
        _ => return Err("unknown frame kind"),
    };
    if bytes.get(FRAME_FLAGS_OFFSET) != Some(&0) {
        return Err("unknown frame flags");
    }
    let key_len = usize::from(le_u16(bytes, FRAME_KEY_LEN_OFFSET));
    let ns_len = usize::from(le_u16(bytes, FRAME_NAMESPACE_LEN_OFFSET));
    let value_offset = FRAME_HEADER_BYTES + key_len + ns_len;
    if value_offset > bytes.len() {
        return Err("key and namespace lengths exceed the frame");
    }
    if kind == FrameKind::Delete && value_offset != bytes.len() {
        return Err("delete frame carries a value");
    }
    let key = StateKey {
        operator: OperatorId(le_u32(bytes, FRAME_OPERATOR_OFFSET)),
        key_group: KeyGroup(le_u16(bytes, FRAME_KEY_GROUP_OFFSET)),
        key: bytes
            .get(FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + key_len)
            .unwrap_or_default(),
        namespace: bytes
            .get(FRAME_HEADER_BYTES + key_len..value_offset)
            .unwrap_or_default(),
    };
    let value = bytes.get(value_offset..).unwrap_or_default();
    Ok(Frame {
        kind,
        key,
        value,
        value_offset,
    })
}

/// A point in a shard's log that a checkpoint can name: every segment that makes up the state,
/// in id order, with the byte length that belongs to the state.
///
/// Opening the store at a position reproduces exactly the state at the `seal()` that returned it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    /// Seal sequence number within the store's lifetime (informational, strictly increasing).
    pub seq: u64,
    /// `(segment, length in bytes)` for every segment of the state, ascending ids.
    pub segments: Vec<(SegmentId, u64)>,
}

impl Position {
    /// Serializes to the byte layout in FORMAT.md, crc included.
    pub fn to_bytes(&self) -> Vec<u8> {
        let len = POSITION_ENTRIES_OFFSET
            + self.segments.len() * POSITION_ENTRY_BYTES
            + POSITION_CRC_BYTES;
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&POSITION_MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.seq.to_le_bytes());
        let count = u32::try_from(self.segments.len()).expect("bounded by POSITION_SEGMENTS_MAX");
        out.extend_from_slice(&count.to_le_bytes());
        for (segment, length) in &self.segments {
            out.extend_from_slice(&segment.0.to_le_bytes());
            out.extend_from_slice(&length.to_le_bytes());
        }
        let crc = crc32fast::hash(&out);
        out.extend_from_slice(&crc.to_le_bytes());
        assert_eq!(out.len(), len);
        out
    }

    /// Parses bytes written by [`Position::to_bytes`].
    ///
    /// # Errors
    /// [`StorageError::PositionInvalid`] if the crc, magic, version or lengths are wrong.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let invalid = |reason: &str| StorageError::PositionInvalid {
            reason: reason.to_owned(),
        };
        if bytes.len() < POSITION_ENTRIES_OFFSET + POSITION_CRC_BYTES {
            return Err(invalid("too short"));
        }
        let body_len = bytes.len() - POSITION_CRC_BYTES;
        let crc = crc32fast::hash(bytes.get(..body_len).unwrap_or_default());
        if crc != le_u32(bytes, body_len) {
            return Err(invalid("crc mismatch"));
        }
        if bytes.get(..4) != Some(&POSITION_MAGIC[..]) {
            return Err(invalid("bad magic"));
        }
        if le_u32(bytes, POSITION_VERSION_OFFSET) != FORMAT_VERSION {
            return Err(invalid("unknown version"));
        }
        let count = le_u32(bytes, POSITION_COUNT_OFFSET) as usize;
        if count > POSITION_SEGMENTS_MAX
            || POSITION_ENTRIES_OFFSET + count * POSITION_ENTRY_BYTES != body_len
        {
            return Err(invalid("segment count disagrees with the length"));
        }
        let segments = (0..count)
            .map(|i| {
                let at = POSITION_ENTRIES_OFFSET + i * POSITION_ENTRY_BYTES;
                (SegmentId(le_u32(bytes, at)), le_u64(bytes, at + 4))
            })
            .collect::<Vec<_>>();
        if segments
            .windows(2)
            .any(|w| matches!(w, [a, b] if a.0 >= b.0))
        {
            return Err(invalid("segment ids not ascending"));
        }
        if segments
            .iter()
            .any(|(_, len)| *len < SEGMENT_HEADER_BYTES as u64)
        {
            return Err(invalid("segment length shorter than its header"));
        }
        Ok(Self {
            seq: le_u64(bytes, POSITION_SEQ_OFFSET),
            segments,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use super::*;
    use crate::index_file::*;

    fn key() -> StateKey<'static> {
        StateKey {
            operator: OperatorId(7),
            key_group: KeyGroup(3),
            key: b"k1",
            namespace: b"ns",
        }
    }

    #[test]
    fn frame_round_trips_and_offsets_match() {
        let k = key();
        let n = frame_bytes(&k, 5).unwrap();
        let mut buf = vec![0u8; n];
        encode_frame(&mut buf, FrameKind::Put, &k, b"hello");
        assert_eq!(
            u32::from_le_bytes(buf[0..4].try_into().unwrap()) as usize,
            2 + 2 + 5
        );
        assert_eq!(buf[FRAME_KIND_OFFSET], KIND_PUT);
        assert_eq!(
            buf[FRAME_KEY_GROUP_OFFSET..FRAME_KEY_GROUP_OFFSET + 2],
            3u16.to_le_bytes()
        );
        assert_eq!(
            buf[FRAME_OPERATOR_OFFSET..FRAME_OPERATOR_OFFSET + 4],
            7u32.to_le_bytes()
        );
        assert_eq!(&buf[FRAME_HEADER_BYTES..FRAME_HEADER_BYTES + 2], b"k1");
        let crc = crc32fast::hash(&buf[8..]);
        assert_eq!(buf[4..8], crc.to_le_bytes());
        let f = decode_frame(&buf).unwrap();
        assert_eq!(f.key, k);
        assert_eq!(f.value, b"hello");
        for bit in 0..n * 8 {
            let mut bad = buf.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert!(decode_frame(&bad).is_err(), "bit {bit} flip accepted");
        }
    }

    #[test]
    fn segment_header_round_trips() {
        let mut buf = [0u8; SEGMENT_HEADER_BYTES];
        encode_segment_header(&mut buf, SegmentId(9));
        assert_eq!(&buf[..8], b"CSTRSEG\0");
        verify_segment_header(&buf, SegmentId(9), "f").unwrap();
        assert!(verify_segment_header(&buf, SegmentId(8), "f").is_err());
        buf[3] ^= 1;
        assert!(verify_segment_header(&buf, SegmentId(9), "f").is_err());
    }

    #[test]
    fn position_round_trips_and_rejects_damage() {
        let p = Position {
            seq: 5,
            segments: vec![(SegmentId(1), 4096), (SegmentId(3), 77)],
        };
        let b = p.to_bytes();
        assert_eq!(
            b.len(),
            POSITION_ENTRIES_OFFSET + 2 * POSITION_ENTRY_BYTES + 4
        );
        assert_eq!(&b[..4], b"CSPO");
        assert_eq!(
            b[POSITION_SEQ_OFFSET..POSITION_SEQ_OFFSET + 8],
            5u64.to_le_bytes()
        );
        assert_eq!(Position::from_bytes(&b).unwrap(), p);
        for i in 0..b.len() {
            let mut bad = b.clone();
            bad[i] ^= 0x10;
            assert!(Position::from_bytes(&bad).is_err());
        }
    }

    /// Every constant in FORMAT.md's table must equal the code's value, and vice versa.
    #[test]
    fn format_doc_matches_code() {
        let doc = include_str!("../FORMAT.md");
        let code: &[(&str, u64)] = &[
            ("BLOCK_BYTES", BLOCK_BYTES as u64),
            ("FORMAT_VERSION", u64::from(FORMAT_VERSION)),
            ("SEGMENT_MAGIC_OFFSET", SEGMENT_MAGIC_OFFSET as u64),
            ("SEGMENT_VERSION_OFFSET", SEGMENT_VERSION_OFFSET as u64),
            ("SEGMENT_ID_OFFSET", SEGMENT_ID_OFFSET as u64),
            ("SEGMENT_RESERVED_OFFSET", SEGMENT_RESERVED_OFFSET as u64),
            ("SEGMENT_CRC_OFFSET", SEGMENT_CRC_OFFSET as u64),
            ("SEGMENT_HEADER_BYTES", SEGMENT_HEADER_BYTES as u64),
            ("FRAME_LEN_OFFSET", FRAME_LEN_OFFSET as u64),
            ("FRAME_CRC_OFFSET", FRAME_CRC_OFFSET as u64),
            ("FRAME_KIND_OFFSET", FRAME_KIND_OFFSET as u64),
            ("FRAME_FLAGS_OFFSET", FRAME_FLAGS_OFFSET as u64),
            ("FRAME_KEY_GROUP_OFFSET", FRAME_KEY_GROUP_OFFSET as u64),
            ("FRAME_OPERATOR_OFFSET", FRAME_OPERATOR_OFFSET as u64),
            ("FRAME_KEY_LEN_OFFSET", FRAME_KEY_LEN_OFFSET as u64),
            (
                "FRAME_NAMESPACE_LEN_OFFSET",
                FRAME_NAMESPACE_LEN_OFFSET as u64,
            ),
            ("FRAME_HEADER_BYTES", FRAME_HEADER_BYTES as u64),
            ("KIND_PUT", u64::from(KIND_PUT)),
            ("KIND_DELETE", u64::from(KIND_DELETE)),
            ("POSITION_MAGIC_OFFSET", POSITION_MAGIC_OFFSET as u64),
            ("POSITION_VERSION_OFFSET", POSITION_VERSION_OFFSET as u64),
            ("POSITION_SEQ_OFFSET", POSITION_SEQ_OFFSET as u64),
            ("POSITION_COUNT_OFFSET", POSITION_COUNT_OFFSET as u64),
            ("POSITION_ENTRIES_OFFSET", POSITION_ENTRIES_OFFSET as u64),
            ("POSITION_ENTRY_BYTES", POSITION_ENTRY_BYTES as u64),
            ("POSITION_CRC_BYTES", POSITION_CRC_BYTES as u64),
            ("INDEX_MAGIC_OFFSET", INDEX_MAGIC_OFFSET as u64),
            ("INDEX_VERSION_OFFSET", INDEX_VERSION_OFFSET as u64),
            ("INDEX_RESERVED_OFFSET", INDEX_RESERVED_OFFSET as u64),
            ("INDEX_SEQ_OFFSET", INDEX_SEQ_OFFSET as u64),
            (
                "INDEX_SEGMENT_COUNT_OFFSET",
                INDEX_SEGMENT_COUNT_OFFSET as u64,
            ),
            ("INDEX_GROUP_COUNT_OFFSET", INDEX_GROUP_COUNT_OFFSET as u64),
            ("INDEX_ENTRY_COUNT_OFFSET", INDEX_ENTRY_COUNT_OFFSET as u64),
            ("INDEX_DIR_WORDS_OFFSET", INDEX_DIR_WORDS_OFFSET as u64),
            ("INDEX_HEAP_BYTES_OFFSET", INDEX_HEAP_BYTES_OFFSET as u64),
            ("INDEX_TOTAL_BYTES_OFFSET", INDEX_TOTAL_BYTES_OFFSET as u64),
            ("INDEX_HEADER_CRC_OFFSET", INDEX_HEADER_CRC_OFFSET as u64),
            ("INDEX_HEADER_BYTES", INDEX_HEADER_BYTES as u64),
            ("INDEX_SEGMENT_BYTES", INDEX_SEGMENT_BYTES as u64),
            ("INDEX_GROUP_BYTES", INDEX_GROUP_BYTES as u64),
            ("INDEX_ENTRY_BYTES", INDEX_ENTRY_BYTES as u64),
            ("INDEX_CRC_BYTES", INDEX_CRC_BYTES as u64),
        ];
        let mut documented = std::collections::BTreeMap::new();
        for line in doc.lines() {
            let cells: Vec<&str> = line.split('|').map(str::trim).collect();
            if let [_, name, value, ..] = cells.as_slice()
                && let Some(name) = name.strip_prefix('`').and_then(|n| n.strip_suffix('`'))
                && let Ok(value) = value.parse::<u64>()
            {
                documented.insert(name.to_owned(), value);
            }
        }
        for (name, value) in code {
            assert_eq!(
                documented.get(*name),
                Some(value),
                "FORMAT.md entry for {name}"
            );
        }
        assert_eq!(
            documented.len(),
            code.len(),
            "FORMAT.md documents unknown constants"
        );
        assert!(
            doc.contains("CSTRSEG\\0") && doc.contains("CSPO") && doc.contains("CSTRIDX\\0"),
            "magics documented"
        );
        assert_eq!(&INDEX_MAGIC, b"CSTRIDX\0");
    }
}
