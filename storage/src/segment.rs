//! Reading one segment file back: sequential, crc-verified frame scans (recovery and
//! compaction), single-frame reads (cold values), and tail classification past a position.
//!
//! Invariant checked by every scan: from the segment header to the sealed length, the file is
//! an exact sequence of frames that pass their crc. Any gap, short file, bad length or bad crc
//! before the sealed length is [`StorageError::Corrupt`] naming the file and the frame offset.
//! Reads are [`SCAN_READ_BYTES`] long and the next one is issued before the current one is
//! parsed, so parsing overlaps the disk.

use std::rc::Rc;

use glommio::Task;

use crate::bounds::SCAN_READ_BYTES;
use crate::disk::DiskFile;
use crate::error::{Result, StorageError};
use crate::format::{
    FRAME_HEADER_BYTES, Frame, SEGMENT_HEADER_BYTES, align_down, align_up, decode_frame,
    frame_total_bytes, verify_segment_header,
};
use crate::ids::{SegmentId, StateKey};
use crate::index::Loc;

type ReadTask<F> = Task<std::io::Result<<F as DiskFile>::ReadBuf>>;

/// A sequential scan of `[0, end)` of one segment.
pub(crate) struct SegmentScan<F: DiskFile> {
    file: Rc<F>,
    name: String,
    segment: SegmentId,
    end: u64,
    next_read: u64,
    /// Offset of the next frame to decode.
    pos: u64,
    ahead: Option<(u64, ReadTask<F>)>,
    carry: Vec<u8>,
    header_checked: bool,
}

fn spawn_read<F: DiskFile>(file: &Rc<F>, offset: u64, len: usize) -> ReadTask<F> {
    let file = Rc::clone(file);
    glommio::spawn_local(async move { file.read_at(offset, len).await })
}

impl<F: DiskFile> SegmentScan<F> {
    /// Prepares a scan of the whole segment (header and frames); `name` is used in errors.
    pub fn new(file: Rc<F>, name: String, segment: SegmentId, end: u64) -> Self {
        Self::from_offset(file, name, segment, 0, end)
    }

    /// Prepares a scan of the frames in `[start, end)`. `start` must be a frame boundary (a
    /// sealed length); the header is checked only when `start` is 0, so a caller starting
    /// later checks it itself ([`verify_header`]).
    pub fn from_offset(
        file: Rc<F>,
        name: String,
        segment: SegmentId,
        start: u64,
        end: u64,
    ) -> Self {
        assert!(end >= SEGMENT_HEADER_BYTES as u64);
        assert!(start == 0 || (SEGMENT_HEADER_BYTES as u64..=end).contains(&start));
        Self {
            file,
            name,
            segment,
            end,
            next_read: align_down(start),
            pos: start,
            ahead: None,
            carry: Vec::new(),
            header_checked: start != 0,
        }
    }

    /// Decodes the frames of the next read and passes each, with its offset, to `visit`.
    /// Returns false once the scan reached `end`.
    pub async fn next_batch(
        &mut self,
        visit: &mut dyn FnMut(u64, &Frame<'_>) -> Result<()>,
    ) -> Result<bool> {
        let read_end = align_up(self.end);
        if self.next_read >= read_end {
            return Ok(false);
        }
        let offset = self.next_read;
        let want = SCAN_READ_BYTES.min((read_end - offset) as usize);
        let pending = match self.ahead.take() {
            Some((at, task)) if at == offset => task,
            _ => spawn_read(&self.file, offset, want),
        };
        self.next_read += want as u64;
        if self.next_read < read_end {
            let len = SCAN_READ_BYTES.min((read_end - self.next_read) as usize);
            self.ahead = Some((self.next_read, spawn_read(&self.file, self.next_read, len)));
        }
        let buf = pending
            .await
            .map_err(|e| StorageError::io("read", &self.name, offset, e))?;
        let in_state = (self.end - offset).min(want as u64) as usize;
        if buf.len() < in_state {
            let at = offset + buf.len() as u64;
            return Err(StorageError::corrupt(
                &self.name,
                at,
                "file ends before the sealed length",
            ));
        }
        let data = buf.get(..in_state).unwrap_or_default();
        let mut i = 0;
        if !self.header_checked {
            verify_segment_header(data, self.segment, &self.name)?;
            self.header_checked = true;
            self.pos = SEGMENT_HEADER_BYTES as u64;
            i = SEGMENT_HEADER_BYTES;
        }
        if self.carry.is_empty() && self.pos > offset {
            // A scan from a sealed length starts inside its first read.
            i = i.max((self.pos - offset) as usize);
        }
        if !self.carry.is_empty() {
            i = self.finish_carry(data, visit)?;
        }
        if self.carry.is_empty() {
            self.decode_run(data.get(i..).unwrap_or_default(), visit)?;
        }
        assert!(self.pos + self.carry.len() as u64 == offset + in_state as u64);
        Ok(self.next_read < read_end)
    }

    /// Completes a frame that started in the previous read; returns how much of `data` it used.
    fn finish_carry(
        &mut self,
        data: &[u8],
        visit: &mut dyn FnMut(u64, &Frame<'_>) -> Result<()>,
    ) -> Result<usize> {
        let mut used = 0;
        if self.carry.len() < FRAME_HEADER_BYTES {
            used = (FRAME_HEADER_BYTES - self.carry.len()).min(data.len());
            self.carry
                .extend_from_slice(data.get(..used).unwrap_or_default());
            if self.carry.len() < FRAME_HEADER_BYTES {
                return Ok(used);
            }
        }
        let total = frame_total_bytes(&self.carry);
        self.check_fits(total)?;
        let take = (total as usize - self.carry.len()).min(data.len() - used);
        self.carry
            .extend_from_slice(data.get(used..used + take).unwrap_or_default());
        used += take;
        if self.carry.len() as u64 == total {
            let carry = std::mem::take(&mut self.carry);
            let frame =
                decode_frame(&carry).map_err(|r| StorageError::corrupt(&self.name, self.pos, r))?;
            visit(self.pos, &frame)?;
            self.pos += total;
            self.carry = carry;
            self.carry.clear();
        }
        Ok(used)
    }

    fn decode_run(
        &mut self,
        mut rest: &[u8],
        visit: &mut dyn FnMut(u64, &Frame<'_>) -> Result<()>,
    ) -> Result<()> {
        while !rest.is_empty() {
            if rest.len() < FRAME_HEADER_BYTES {
                self.check_fits(FRAME_HEADER_BYTES as u64)?;
                self.carry.extend_from_slice(rest);
                return Ok(());
            }
            let total = frame_total_bytes(rest);
            self.check_fits(total)?;
            let Some(bytes) = rest.get(..total as usize) else {
                self.carry.extend_from_slice(rest);
                return Ok(());
            };
            let frame =
                decode_frame(bytes).map_err(|r| StorageError::corrupt(&self.name, self.pos, r))?;
            visit(self.pos, &frame)?;
            self.pos += total;
            rest = rest.get(total as usize..).unwrap_or_default();
        }
        Ok(())
    }

    fn check_fits(&self, total: u64) -> Result<()> {
        if self.pos + total > self.end {
            return Err(StorageError::corrupt(
                &self.name,
                self.pos,
                "frame extends past the sealed length",
            ));
        }
        Ok(())
    }
}

/// Reads and checks the header of a segment whose frames are not scanned from the start.
pub(crate) async fn verify_header<F: DiskFile>(
    file: &F,
    name: &str,
    segment: SegmentId,
) -> Result<()> {
    let buf = file
        .read_at(0, crate::format::BLOCK_BYTES)
        .await
        .map_err(|e| StorageError::io("read", name, 0, e))?;
    verify_segment_header(&buf, segment, name)
}

/// What lies in a segment after the sealed length.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TailState {
    /// Nothing, or only zero padding.
    Clean,
    /// Intact frames written after the seal (not durable by contract), then zeros.
    Unsealed {
        /// Intact frames discarded.
        frames: u64,
        /// Bytes they occupied.
        bytes: u64,
    },
    /// Intact frames, then bytes that are neither a frame nor zeros: a torn write.
    Torn {
        /// Intact frames discarded before the tear.
        frames: u64,
        /// Offset of the first bad byte run.
        offset: u64,
    },
}

/// Classifies `[start, size)` of a segment: frames that were appended after the seal, then
/// zero padding or a torn write.
pub(crate) async fn classify_tail<F: DiskFile>(
    file: &F,
    name: &str,
    start: u64,
    size: u64,
) -> Result<TailState> {
    if size <= start {
        return Ok(TailState::Clean);
    }
    let from = align_down(start);
    let len = (align_up(size) - from) as usize;
    let buf = file
        .read_at(from, len)
        .await
        .map_err(|e| StorageError::io("read", name, from, e))?;
    let mut rest = buf.get((start - from) as usize..).unwrap_or_default();
    let (mut frames, mut at) = (0u64, start);
    loop {
        if rest.iter().all(|b| *b == 0) {
            return Ok(if frames == 0 {
                TailState::Clean
            } else {
                TailState::Unsealed {
                    frames,
                    bytes: at - start,
                }
            });
        }
        let total = if rest.len() >= FRAME_HEADER_BYTES {
            frame_total_bytes(rest) as usize
        } else {
            usize::MAX
        };
        match rest.get(..total).map(decode_frame) {
            Some(Ok(_)) => {
                frames += 1;
                at += total as u64;
                rest = rest.get(total..).unwrap_or_default();
            }
            _ => return Ok(TailState::Torn { frames, offset: at }),
        }
    }
}

/// Reads one frame at `loc`, verifies its crc and that it belongs to `key`, and returns the
/// value bytes.
pub(crate) async fn read_value<F: DiskFile>(
    file: &F,
    name: &str,
    loc: Loc,
    key: &StateKey<'_>,
) -> Result<Rc<[u8]>> {
    let offset = u64::from(loc.offset);
    let from = align_down(offset);
    let len = (align_up(offset + u64::from(loc.len)) - from) as usize;
    let buf = file
        .read_at(from, len)
        .await
        .map_err(|e| StorageError::io("read", name, offset, e))?;
    let start = (offset - from) as usize;
    let Some(bytes) = buf.get(start..start + loc.len as usize) else {
        return Err(StorageError::corrupt(
            name,
            offset,
            "file ends inside an indexed frame",
        ));
    };
    let frame = decode_frame(bytes).map_err(|r| StorageError::corrupt(name, offset, r))?;
    if frame.key != *key {
        return Err(StorageError::corrupt(
            name,
            offset,
            "indexed frame holds a different key",
        ));
    }
    Ok(Rc::from(frame.value))
}
