//! Every limit of the storage crate in one place, with the relations between them checked at
//! compile time.

use crate::format::{BLOCK_BYTES, FRAME_HEADER_BYTES, SEGMENT_HEADER_BYTES};

/// Size of one aligned write buffer; appends are batched into it and it is written in one call.
pub const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Write buffers handed to the writer task but not yet written before `put` waits.
pub const WRITES_INFLIGHT_MAX: u64 = 4;
/// Largest frame (header + key + namespace + value). A frame never spans two write buffers.
pub const FRAME_BYTES_MAX: usize = 512 << 10;
/// Largest key or namespace (their lengths are `u16` in the frame header).
pub const KEY_BYTES_MAX: usize = u16::MAX as usize;
/// Size of one sequential read during recovery and compaction.
pub const SCAN_READ_BYTES: usize = 4 << 20;
/// Size of one read when loading an index file, and of one write when writing one.
pub const INDEX_READ_BYTES: usize = 4 << 20;
/// Index-file reads in flight at once (the file is read sequentially, ahead of parsing).
pub const INDEX_READS_INFLIGHT: usize = 4;
/// Frames recovery collects before applying them to the index group by group (`replay.rs`):
/// large enough that each group's table receives long runs, small enough to bound memory
/// (about 24 B per frame plus its key).
pub const REPLAY_BATCH_FRAMES_MAX: usize = 1 << 21;
/// Key bytes one replay batch may hold (offsets into them are `u32`).
pub const REPLAY_BATCH_KEY_BYTES_MAX: usize = 64 << 20;
/// Smallest allowed segment size.
pub const SEGMENT_BYTES_MIN: u64 = 2 * WRITE_BUFFER_BYTES as u64;
/// Largest allowed segment size: offsets in the index are `u32`.
pub const SEGMENT_BYTES_MAX: u64 = 1 << 31;

const _: () = assert!(WRITE_BUFFER_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(SCAN_READ_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(INDEX_READ_BYTES.is_multiple_of(BLOCK_BYTES));
const _: () = assert!(INDEX_READS_INFLIGHT >= 1);
// A frame plus the carried partial block always fits a fresh write buffer.
const _: () = assert!(FRAME_BYTES_MAX + BLOCK_BYTES <= WRITE_BUFFER_BYTES);
const _: () = assert!(FRAME_BYTES_MAX > FRAME_HEADER_BYTES + 2 * KEY_BYTES_MAX);
const _: () = assert!(SEGMENT_HEADER_BYTES < BLOCK_BYTES);
const _: () = assert!(SEGMENT_BYTES_MAX <= u32::MAX as u64);
const _: () = assert!(REPLAY_BATCH_KEY_BYTES_MAX + 2 * KEY_BYTES_MAX + 2 <= u32::MAX as usize);
