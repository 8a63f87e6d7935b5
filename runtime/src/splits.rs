//! Source splits independent of the shard count: which splits a shard reads, and the reader
//! that interleaves them.
//!
//! A job's sources are cut into a fixed number of splits chosen when the job first starts
//! (`JobConfig::source_splits`, default: the shard count) and kept by every restore, so a job
//! restored on another shard count reads exactly the same records. Split `s` is read by shard
//! `s mod shards` (round robin); a shard may read several splits or none. Each split is one
//! reader of the user's `Source`, created with `SplitContext { shard: s, shards: splits }`, so
//! sources keep seeing "split s of n" whatever the shard count.
//!
//! A shard's position of a source is the position of every split it reads:
//!
//! ```text
//! u32 LE  split count of the job
//! u32 LE  number of entries n
//! n ×     u32 LE split index, u32 LE length L, L bytes: the split reader's position
//! ```
//!
//! Restoring gathers the entries of every shard of the restored checkpoint, so each new shard
//! finds the positions of the splits it now owns wherever they were read before.

use std::collections::BTreeMap;

use crate::constants::SPLIT_POLL_RECORDS;
use crate::element::Record;
use crate::error::OperatorError;
use crate::source::{ReaderWatermark, SourcePoll, SourceReader, SplitContext};
use crate::time::EventTime;

/// The splits shard `shard` of `shards` reads when there are `splits`: `s ≡ shard (mod shards)`.
pub fn owned_splits(shard: usize, shards: usize, splits: usize) -> Vec<usize> {
    assert!(shards > 0);
    assert!(shard < shards);
    (shard..splits).step_by(shards).collect()
}

/// Positions by split index, as one shard's position of a source lists them.
pub type SplitPositions = Vec<(usize, Vec<u8>)>;

/// Encodes the positions of a shard's splits (see the module doc).
pub fn encode_positions(splits: usize, positions: &[(usize, Vec<u8>)]) -> Vec<u8> {
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&u32::try_from(splits).expect("splits fit u32").to_le_bytes());
    bytes.extend_from_slice(&(positions.len() as u32).to_le_bytes());
    for (split, position) in positions {
        assert!(*split < splits, "split {split} of {splits}");
        bytes.extend_from_slice(&(*split as u32).to_le_bytes());
        bytes.extend_from_slice(&(position.len() as u32).to_le_bytes());
        bytes.extend_from_slice(position);
    }
    bytes
}

/// Decodes positions written by [`encode_positions`]: the split count and the entries.
///
/// # Errors
/// The bytes are truncated, too long, or name a split outside the split count.
pub fn decode_positions(bytes: &[u8]) -> Result<(usize, SplitPositions), String> {
    let mut rest = bytes;
    let take_u32 = |rest: &mut &[u8]| -> Result<u32, String> {
        let (head, tail) = rest
            .split_at_checked(4)
            .ok_or("source position is truncated")?;
        *rest = tail;
        Ok(u32::from_le_bytes(head.try_into().expect("4 bytes")))
    };
    let splits = take_u32(&mut rest)? as usize;
    let count = take_u32(&mut rest)? as usize;
    let mut entries = Vec::with_capacity(count.min(1024));
    for _ in 0..count {
        let split = take_u32(&mut rest)? as usize;
        let len = take_u32(&mut rest)? as usize;
        if split >= splits {
            return Err(format!("source position names split {split} of {splits}"));
        }
        let (position, tail) = rest
            .split_at_checked(len)
            .ok_or("source position is truncated")?;
        rest = tail;
        entries.push((split, position.to_vec()));
    }
    if !rest.is_empty() {
        return Err(format!("{} bytes after the source position", rest.len()));
    }
    Ok((splits, entries))
}

/// The restored positions of one source, gathered from every shard of a checkpoint.
#[derive(Debug, Default)]
pub struct RestoredSplits {
    /// The split count the checkpoint was taken with.
    pub splits: usize,
    /// Position by split index.
    pub positions: BTreeMap<usize, Vec<u8>>,
}

impl RestoredSplits {
    /// Merges the decoded blobs of every shard.
    ///
    /// # Errors
    /// A blob does not decode, blobs disagree on the split count, or a split appears twice.
    pub fn gather<'a>(blobs: impl IntoIterator<Item = &'a [u8]>) -> Result<Self, String> {
        let mut gathered: Option<RestoredSplits> = None;
        for blob in blobs {
            let (splits, entries) = decode_positions(blob)?;
            let restored = gathered.get_or_insert_with(|| RestoredSplits {
                splits,
                positions: BTreeMap::new(),
            });
            if restored.splits != splits {
                return Err(format!(
                    "source positions disagree on the split count ({} and {splits})",
                    restored.splits
                ));
            }
            for (split, position) in entries {
                if restored.positions.insert(split, position).is_some() {
                    return Err(format!("split {split} has two positions"));
                }
            }
        }
        gathered.ok_or_else(|| "no source positions".to_string())
    }
}

/// Reads several splits on one shard.
///
/// Each poll reads one split: the one whose last record has the smallest timestamp (ties in
/// turn), at most [`SPLIT_POLL_RECORDS`] records while several splits are open. This keeps the
/// splits of a shard close in event time, so a bounded-out-of-orderness watermark generated
/// after the source stays valid when its bound covers one poll's worth of a split (Flink keeps
/// a watermark per split instead; here watermarks are generated downstream of the source).
/// Each split's own order is kept.
pub struct MultiSplitReader<T> {
    splits: usize,
    readers: Vec<SplitSlot<T>>,
    /// Where the round robin among equal timestamps resumes.
    next: usize,
}

struct SplitSlot<T> {
    split: usize,
    reader: Box<dyn SourceReader<T>>,
    finished: bool,
    /// Timestamp of the last record the split emitted.
    last_ts: i64,
}

impl<T: 'static> MultiSplitReader<T> {
    /// Reads `readers` (split index and reader) of a job with `splits` splits.
    pub fn new(splits: usize, readers: Vec<(usize, Box<dyn SourceReader<T>>)>) -> Self {
        MultiSplitReader {
            splits,
            readers: readers
                .into_iter()
                .map(|(split, reader)| SplitSlot {
                    split,
                    reader,
                    finished: false,
                    last_ts: i64::MIN,
                })
                .collect(),
            next: 0,
        }
    }

    /// The context a split's reader is created with.
    pub fn split_context(split: usize, splits: usize) -> SplitContext {
        SplitContext {
            shard: split,
            shards: splits,
        }
    }

    /// Open splits in the order to try them: furthest behind in event time first, ties in
    /// round-robin order from `next`.
    fn order(&self) -> Vec<usize> {
        let n = self.readers.len();
        let mut open: Vec<usize> = (0..n).filter(|&i| !self.readers[i].finished).collect();
        open.sort_by_key(|&i| (self.readers[i].last_ts, (i + n - self.next % n.max(1)) % n));
        open
    }
}

impl<T: 'static> SourceReader<T> for MultiSplitReader<T> {
    fn poll(
        &mut self,
        out: &mut Vec<Record<T>>,
        max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        // One split per shard (the default): the reader itself, nothing to choose or allocate.
        if let [slot] = self.readers.as_mut_slice() {
            if slot.finished {
                return Ok(SourcePoll::Finished);
            }
            let status = slot.reader.poll(out, max, now_ns)?;
            slot.finished = status == SourcePoll::Finished;
            return Ok(status);
        }
        let order = self.order();
        if order.is_empty() {
            return Ok(SourcePoll::Finished);
        }
        let cap = if order.len() > 1 {
            max.min(SPLIT_POLL_RECORDS)
        } else {
            max
        };
        let mut wake: Option<u64> = None;
        for index in order {
            self.next = index + 1;
            let slot = &mut self.readers[index];
            let before = out.len();
            let status = slot.reader.poll(out, cap, now_ns)?;
            let produced = out.len() > before;
            if let Some(last) = out.last().filter(|_| produced) {
                slot.last_ts = last.ts;
            }
            match status {
                SourcePoll::Ready => return Ok(SourcePoll::Ready),
                SourcePoll::Finished => {
                    slot.finished = true;
                    let left = self.readers.iter().any(|r| !r.finished);
                    return Ok(if left {
                        SourcePoll::Ready
                    } else {
                        SourcePoll::Finished
                    });
                }
                // It produced records: report them now, the next poll chooses again.
                SourcePoll::Pending { .. } if produced => return Ok(SourcePoll::Ready),
                SourcePoll::Pending { wake_at_ns } => {
                    wake = match (wake, wake_at_ns) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
        Ok(SourcePoll::Pending { wake_at_ns: wake })
    }

    /// The minimum over the open splits that are not idle (each split's reader watermarks
    /// itself, e.g. per Kafka partition); idle when every open split is.
    fn watermark(&mut self, now_ns: u64) -> ReaderWatermark {
        if let [slot] = self.readers.as_mut_slice() {
            return slot.reader.watermark(now_ns);
        }
        let mut combined: Option<EventTime> = None;
        for slot in self.readers.iter_mut().filter(|s| !s.finished) {
            match slot.reader.watermark(now_ns) {
                // Splits of one source agree: a reader that makes no watermarks leaves them to
                // a downstream `with_timestamps`.
                ReaderWatermark::Unsupported => return ReaderWatermark::Unsupported,
                ReaderWatermark::At(t) => combined = Some(combined.map_or(t, |c| c.min(t))),
                ReaderWatermark::Idle => {}
            }
        }
        combined.map_or(ReaderWatermark::Idle, ReaderWatermark::At)
    }

    fn position(&self) -> Option<Vec<u8>> {
        let mut positions = Vec::with_capacity(self.readers.len());
        for slot in &self.readers {
            positions.push((slot.split, slot.reader.position()?));
        }
        Some(encode_positions(self.splits, &positions))
    }

    fn restore(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let (splits, entries) = decode_positions(position).map_err(OperatorError::Failed)?;
        if splits != self.splits {
            return Err(OperatorError::Failed(format!(
                "position of {splits} splits restored into a job of {}",
                self.splits
            )));
        }
        for (split, bytes) in entries {
            let slot = self
                .readers
                .iter_mut()
                .find(|slot| slot.split == split)
                .ok_or_else(|| {
                    OperatorError::Failed(format!("split {split} is not read by this shard"))
                })?;
            slot.reader.restore(&bytes)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_split_has_one_owner_whatever_the_shard_count() {
        for splits in 1..9 {
            for shards in 1..6 {
                let mut owners = vec![0; splits];
                for shard in 0..shards {
                    for s in owned_splits(shard, shards, splits) {
                        assert_eq!(s % shards, shard);
                        owners[s] += 1;
                    }
                }
                assert!(owners.iter().all(|&n| n == 1), "{splits} over {shards}");
            }
        }
    }

    #[test]
    fn positions_round_trip_and_gather_across_shards() {
        let a = encode_positions(4, &[(0, vec![1, 2]), (2, vec![])]);
        let b = encode_positions(4, &[(1, vec![9]), (3, vec![7, 7, 7])]);
        assert_eq!(
            decode_positions(&a).expect("valid"),
            (4, vec![(0, vec![1, 2]), (2, vec![])])
        );
        let gathered = RestoredSplits::gather([a.as_slice(), b.as_slice()]).expect("gather");
        assert_eq!(gathered.splits, 4);
        assert_eq!(gathered.positions.len(), 4);
        assert_eq!(gathered.positions[&3], vec![7, 7, 7]);
        for len in 0..a.len() {
            assert!(decode_positions(&a[..len]).is_err(), "truncated to {len}");
        }
        let mut long = a.clone();
        long.push(0);
        assert!(decode_positions(&long).is_err());
        let other = encode_positions(3, &[(1, vec![])]);
        assert!(RestoredSplits::gather([a.as_slice(), other.as_slice()]).is_err());
        assert!(RestoredSplits::gather([a.as_slice(), a.as_slice()]).is_err());
    }

    struct Counter {
        next: u64,
        end: u64,
    }

    impl SourceReader<u64> for Counter {
        fn poll(
            &mut self,
            out: &mut Vec<Record<u64>>,
            max: usize,
            _now_ns: u64,
        ) -> Result<SourcePoll, OperatorError> {
            let mut appended = 0;
            while self.next < self.end && appended < max {
                out.push(Record {
                    ts: 0,
                    value: self.next,
                });
                self.next += 1;
                appended += 1;
            }
            Ok(if self.next == self.end {
                SourcePoll::Finished
            } else {
                SourcePoll::Ready
            })
        }

        fn position(&self) -> Option<Vec<u8>> {
            Some(self.next.to_le_bytes().to_vec())
        }

        fn restore(&mut self, position: &[u8]) -> Result<(), OperatorError> {
            self.next = u64::from_le_bytes(position.try_into().expect("8 bytes"));
            Ok(())
        }
    }

    fn reader(splits: &[(usize, u64, u64)]) -> MultiSplitReader<u64> {
        MultiSplitReader::new(
            8,
            splits
                .iter()
                .map(|&(s, next, end)| {
                    (
                        s,
                        Box::new(Counter { next, end }) as Box<dyn SourceReader<u64>>,
                    )
                })
                .collect(),
        )
    }

    struct Marked(ReaderWatermark);

    impl SourceReader<u64> for Marked {
        fn poll(
            &mut self,
            _out: &mut Vec<Record<u64>>,
            _max: usize,
            _now_ns: u64,
        ) -> Result<SourcePoll, OperatorError> {
            Ok(SourcePoll::Pending { wake_at_ns: None })
        }

        fn watermark(&mut self, _now_ns: u64) -> ReaderWatermark {
            self.0
        }
    }

    fn marked(marks: &[ReaderWatermark]) -> MultiSplitReader<u64> {
        MultiSplitReader::new(
            8,
            marks
                .iter()
                .enumerate()
                .map(|(s, &m)| (s, Box::new(Marked(m)) as Box<dyn SourceReader<u64>>))
                .collect(),
        )
    }

    #[test]
    fn the_watermark_is_the_minimum_over_splits_that_are_not_idle() {
        use ReaderWatermark::{At, Idle, Unsupported};
        assert_eq!(marked(&[At(5), At(3), Idle]).watermark(0), At(3));
        assert_eq!(marked(&[Idle, At(9)]).watermark(0), At(9));
        assert_eq!(marked(&[Idle, Idle]).watermark(0), Idle);
        assert_eq!(
            marked(&[Unsupported, Unsupported]).watermark(0),
            Unsupported
        );
        assert_eq!(marked(&[At(4)]).watermark(0), At(4));
    }

    #[test]
    fn reads_every_split_to_its_end_and_restores_its_position() {
        let mut multi = reader(&[(1, 0, 5), (3, 100, 103)]);
        let mut out = Vec::new();
        let mut polls = 0;
        loop {
            polls += 1;
            assert!(polls < 100);
            if multi.poll(&mut out, 2, 0).expect("poll") == SourcePoll::Finished {
                break;
            }
        }
        let mut values: Vec<u64> = out.iter().map(|r| r.value).collect();
        values.sort_unstable();
        assert_eq!(values, vec![0, 1, 2, 3, 4, 100, 101, 102]);

        let mut half = reader(&[(1, 0, 5), (3, 100, 103)]);
        let mut out = Vec::new();
        half.poll(&mut out, 2, 0).expect("poll");
        let position = half.position().expect("replayable");
        let mut fresh = reader(&[(1, 0, 5), (3, 100, 103)]);
        fresh.restore(&position).expect("restore");
        let mut rest = Vec::new();
        while fresh.poll(&mut rest, 2, 0).expect("poll") != SourcePoll::Finished {}
        let mut all: Vec<u64> = out.iter().chain(&rest).map(|r| r.value).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 2, 3, 4, 100, 101, 102]);
        assert!(reader(&[(2, 0, 1)]).restore(&position).is_err());
    }
}
