//! `NexmarkFileSource`: FORMAT.md event files as a corestrom source — which shard reads which
//! bytes, and how a malformed line fails the job or goes to a dead-letter file.
//!
//! Splitting, decided once from the input's shape:
//!
//! * **A directory**: its visible (no leading `.`) `*.jsonl` files sorted by name; file `i` goes
//!   to shard `i mod shards`, and a shard with several files reads them one after another. This
//!   is the layout `corestrom nexmark generate --split-dir` writes and Flink at parallelism `p`
//!   reads (one time-ordered file per source subtask), so both engines see the same per-split
//!   event-time order.
//! * **One file**: cut into `shards` byte ranges of about equal size, each boundary moved forward
//!   to the next line start ([`aligned_ranges`]); shard `s` reads range `s`. A line belongs to
//!   the range holding its first byte, so every line is read exactly once whatever the file size
//!   and shard count, and no shard reads the whole file to find its part. The alternative,
//!   shard `s` taking every `n`-th line, would make every shard parse every line's end.
//!
//! Inside a shard, event-time order is the order of its bytes in the file(s); the queries'
//! watermarks (4 s bounded out-of-orderness) deal with the rest. Records carry the event's
//! `dateTime` as their timestamp.
//!
//! Reading goes through a [`READ_BUFFER_BYTES`] buffer, in which the [`EventReader`] parses
//! canonical lines in place (other lines, and the one line cut by each buffer end, are copied
//! into its reused line buffer first): an event costs no allocation beyond its own strings
//! (`Text`: inline when short, shared when repeated, one `Arc<str>` otherwise).
//!
//! Line numbers: in errors they are 1-based within the whole file. A range that starts inside a
//! file counts the lines before it only when it has to report an error, so the good path never
//! scans bytes it does not own.
//!
//! Counters: [`FileSourceStats`] is shared by all readers; each reader adds its events and dead
//! letters once per poll (one batch), never per record, so a progress display can read it while
//! the job runs.

use std::fs::{self, File};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use corestrom_operators::prelude::*;
use thiserror::Error;

use crate::nexmark::json::{EventReader, FormatError};
use crate::nexmark::model::Event;

/// Bytes each reader buffers from its file: large enough that a read is one big `read(2)` per
/// few thousand events.
pub const READ_BUFFER_BYTES: usize = 1 << 20;

/// Bytes read at a time while looking for a line start or counting lines.
const SCAN_BUFFER_BYTES: usize = 1 << 16;

/// Why a file source cannot be set up.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum FileSourceError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("{dir}: no visible *.jsonl event files in the directory")]
    NoEventFiles { dir: PathBuf },
}

/// Counts shared by every reader of one source; updated once per batch.
#[derive(Debug, Default)]
pub struct FileSourceStats {
    events: AtomicU64,
    dead_letters: AtomicU64,
}

impl FileSourceStats {
    /// Events read so far (good lines), all shards together.
    pub fn events(&self) -> u64 {
        self.events.load(Ordering::Relaxed)
    }

    /// Malformed lines sent to the dead-letter file so far.
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }
}

/// What the source reads: one file, or the sorted event files of a directory.
#[derive(Clone, Debug)]
enum Input {
    File(PathBuf),
    Directory(Vec<PathBuf>),
}

/// A part of one file that one shard reads: bytes `[start, end)`, all whole lines.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Segment {
    path: PathBuf,
    start: u64,
    end: u64,
}

/// Reads FORMAT.md event files; see the module doc for the split between shards.
#[derive(Clone, Debug)]
pub struct NexmarkFileSource {
    input: Input,
    dead_letter: Option<DeadLetter>,
    stats: Arc<FileSourceStats>,
    progress: Option<Arc<AtomicU64>>,
}

/// The dead-letter file, shared by every reader. Malformed lines are rare, so one mutex and an
/// unbuffered write per line are cheap, and keep each line whole when shards write at once.
#[derive(Clone, Debug)]
struct DeadLetter {
    file: Arc<Mutex<File>>,
}

impl Write for DeadLetter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write(buf)
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .write_all(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl NexmarkFileSource {
    /// Reads `path`: a file, or a directory of `*.jsonl` files.
    ///
    /// # Errors
    /// [`FileSourceError::Io`] if `path` cannot be inspected or listed;
    /// [`FileSourceError::NoEventFiles`] for a directory without visible `*.jsonl` files.
    pub fn open(path: &Path) -> Result<NexmarkFileSource, FileSourceError> {
        let io_error = |source| FileSourceError::Io {
            path: path.to_path_buf(),
            source,
        };
        let input = if fs::metadata(path).map_err(io_error)?.is_dir() {
            let files = list_event_files(path).map_err(io_error)?;
            if files.is_empty() {
                return Err(FileSourceError::NoEventFiles {
                    dir: path.to_path_buf(),
                });
            }
            Input::Directory(files)
        } else {
            Input::File(path.to_path_buf())
        };
        Ok(NexmarkFileSource {
            input,
            dead_letter: None,
            stats: Arc::default(),
            progress: None,
        })
    }

    /// Sends malformed lines to `path` (created or truncated) instead of failing the job; they
    /// are counted in [`FileSourceStats::dead_letters`].
    ///
    /// # Errors
    /// [`FileSourceError::Io`] if the file cannot be created.
    pub fn with_dead_letter(self, path: &Path) -> Result<NexmarkFileSource, FileSourceError> {
        let file = File::create(path).map_err(|source| FileSourceError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(NexmarkFileSource {
            dead_letter: Some(DeadLetter {
                file: Arc::new(Mutex::new(file)),
            }),
            ..self
        })
    }

    /// Also adds every batch's event count to `counter` (e.g. for a progress display shared
    /// with other sources).
    pub fn with_progress(self, counter: Arc<AtomicU64>) -> NexmarkFileSource {
        NexmarkFileSource {
            progress: Some(counter),
            ..self
        }
    }

    /// The counters all readers of this source update.
    pub fn stats(&self) -> Arc<FileSourceStats> {
        Arc::clone(&self.stats)
    }

    /// The input files, in the order they are assigned to shards.
    pub fn files(&self) -> Vec<PathBuf> {
        match &self.input {
            Input::File(path) => vec![path.clone()],
            Input::Directory(files) => files.clone(),
        }
    }

    fn segments(&self, split: SplitContext) -> Result<Vec<Segment>, FileSourceError> {
        match &self.input {
            Input::Directory(files) => files
                .iter()
                .enumerate()
                .filter(|(i, _)| i % split.shards == split.shard)
                .map(|(_, path)| {
                    let end = file_len(path)?;
                    Ok(Segment {
                        path: path.clone(),
                        start: 0,
                        end,
                    })
                })
                .collect(),
            Input::File(path) => {
                let io_error = |source| FileSourceError::Io {
                    path: path.clone(),
                    source,
                };
                let mut file = File::open(path).map_err(io_error)?;
                let (start, end) =
                    aligned_range(&mut file, split.shard, split.shards).map_err(io_error)?;
                Ok(vec![Segment {
                    path: path.clone(),
                    start,
                    end,
                }])
            }
        }
    }
}

fn file_len(path: &Path) -> Result<u64, FileSourceError> {
    fs::metadata(path)
        .map(|m| m.len())
        .map_err(|source| FileSourceError::Io {
            path: path.to_path_buf(),
            source,
        })
}

/// The visible `*.jsonl` files directly in `dir`, sorted by name. Hidden files are files still
/// being written (FORMAT.md), so they are not part of the input.
fn list_event_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with('.') || !name.ends_with(".jsonl") || !entry.file_type()?.is_file() {
            continue;
        }
        files.push(entry.path());
    }
    files.sort();
    Ok(files)
}

/// The smallest line start at or after `pos` in `file` (a line starts at 0 and after each `\n`);
/// the file's length if there is none.
fn line_start_at_or_after(file: &mut File, pos: u64) -> io::Result<u64> {
    if pos == 0 {
        return Ok(0);
    }
    // The byte before `pos` decides: a `\n` there means a line starts exactly at `pos`.
    let mut at = pos - 1;
    file.seek(SeekFrom::Start(at))?;
    let mut buf = vec![0u8; SCAN_BUFFER_BYTES];
    loop {
        let read = file.read(&mut buf)?;
        if read == 0 {
            return Ok(at);
        }
        if let Some(i) = buf[..read].iter().position(|&b| b == b'\n') {
            return Ok(at + i as u64 + 1);
        }
        at += read as u64;
    }
}

/// Byte range `[start, end)` of shard `shard` of `shards` over `file`: the nominal range
/// `[len·s/n, len·(s+1)/n)` with both ends moved to the next line start. Consecutive shards'
/// ranges meet exactly, so together they cover the file once.
fn aligned_range(file: &mut File, shard: usize, shards: usize) -> io::Result<(u64, u64)> {
    assert!(shard < shards);
    let len = file.metadata()?.len();
    let nominal = |s: usize| (u128::from(len) * s as u128 / shards as u128) as u64;
    let start = line_start_at_or_after(file, nominal(shard))?;
    let end = line_start_at_or_after(file, nominal(shard + 1))?;
    debug_assert!(start <= end);
    Ok((start, end))
}

/// The byte ranges of all `shards` shards over the file at `path` (for tests and tools).
///
/// # Errors
/// An I/O error reading the file.
pub fn aligned_ranges(path: &Path, shards: usize) -> io::Result<Vec<(u64, u64)>> {
    let mut file = File::open(path)?;
    (0..shards)
        .map(|s| aligned_range(&mut file, s, shards))
        .collect()
}

/// Lines (`\n` bytes) in the first `bytes` bytes of `path`: only used to report an error.
fn count_lines_before(path: &Path, bytes: u64) -> io::Result<u64> {
    let mut input = File::open(path)?.take(bytes);
    let mut buf = vec![0u8; SCAN_BUFFER_BYTES];
    let mut lines = 0;
    loop {
        let read = input.read(&mut buf)?;
        if read == 0 {
            return Ok(lines);
        }
        lines += buf[..read].iter().filter(|&&b| b == b'\n').count() as u64;
    }
}

type SegmentReader = EventReader<BufReader<io::Take<File>>>;

struct FileReader {
    /// This shard's segments not yet opened, in reading order (reversed, popped from the end).
    pending: Vec<Segment>,
    /// Segments of this shard finished so far (part of the position).
    segments_done: u32,
    current: Option<(Segment, SegmentReader)>,
    dead_letter: Option<DeadLetter>,
    /// Dead letters of the current segment already added to `stats`.
    dead_letters_counted: u64,
    stats: Arc<FileSourceStats>,
    progress: Option<Arc<AtomicU64>>,
}

impl Source<Event> for NexmarkFileSource {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<Event>>, OperatorError> {
        let mut pending = self
            .segments(split)
            .map_err(|e| OperatorError::Failed(e.to_string()))?;
        pending.reverse();
        Ok(Box::new(FileReader {
            pending,
            segments_done: 0,
            current: None,
            dead_letter: self.dead_letter.clone(),
            dead_letters_counted: 0,
            stats: Arc::clone(&self.stats),
            progress: self.progress.clone(),
        }))
    }
}

/// Opens one segment: its file, positioned at the segment's start, limited to its bytes.
fn open_segment(
    segment: &Segment,
    dead_letter: Option<&DeadLetter>,
) -> Result<SegmentReader, OperatorError> {
    let name = segment.path.display().to_string();
    let mut file =
        File::open(&segment.path).map_err(|e| OperatorError::io(format!("opening {name}"), e))?;
    file.seek(SeekFrom::Start(segment.start))
        .map_err(|e| OperatorError::io(format!("seeking in {name}"), e))?;
    let input = BufReader::with_capacity(READ_BUFFER_BYTES, file.take(segment.end - segment.start));
    let reader = EventReader::new(input, name);
    Ok(match dead_letter {
        Some(dead_letter) => reader.with_dead_letter(dead_letter.clone()),
        None => reader,
    })
}

impl FileReader {
    /// Reads up to `max` events, opening the next segment when one ends. Returns whether every
    /// segment is exhausted.
    fn fill(&mut self, out: &mut Vec<Record<Event>>, max: usize) -> Result<bool, OperatorError> {
        let target = out.len() + max;
        while out.len() < target {
            let (segment, reader) = match self.current.as_mut() {
                Some(current) => current,
                None => {
                    let Some(segment) = self.pending.pop() else {
                        return Ok(true);
                    };
                    let reader = open_segment(&segment, self.dead_letter.as_ref())?;
                    self.dead_letters_counted = 0;
                    self.current.insert((segment, reader))
                }
            };
            match reader.next_event() {
                Ok(Some(event)) => out.push(Record::new(event.date_time(), event)),
                Ok(None) => {
                    self.count_dead_letters();
                    self.current = None;
                    self.segments_done += 1;
                }
                Err(error) => return Err(located(segment, error)),
            }
        }
        Ok(self.current.is_none() && self.pending.is_empty())
    }

    fn count_dead_letters(&mut self) {
        if let Some((_, reader)) = &self.current {
            let total = reader.dead_letter_count();
            let new = total - self.dead_letters_counted;
            if new > 0 {
                self.stats.dead_letters.fetch_add(new, Ordering::Relaxed);
                self.dead_letters_counted = total;
            }
        }
    }
}

/// Turns a reader error into the job's error, with the line number counted from the start of
/// the file (the reader counts from the start of its segment).
fn located(segment: &Segment, error: FormatError) -> OperatorError {
    match error {
        FormatError::Malformed {
            file,
            line,
            field,
            reason,
        } => {
            let before = if segment.start == 0 {
                Ok(0)
            } else {
                count_lines_before(&segment.path, segment.start)
            };
            let location = match before {
                Ok(before) => format!("{file}:{}", before + line),
                Err(_) => format!("{file}: byte {} + line {line}", segment.start),
            };
            let message = match field {
                Some(field) => format!("field `{field}`: {reason}"),
                None => reason,
            };
            OperatorError::BadInput { location, message }
        }
        FormatError::Io { file, source } => OperatorError::io(format!("reading {file}"), source),
    }
}

impl SourceReader<Event> for FileReader {
    /// (segments finished: u32, byte offset in the current file: u64), little-endian: the
    /// reader resumes at a line start, so a restored reader emits exactly the lines after it.
    fn position(&self) -> Option<Vec<u8>> {
        let offset = match (&self.current, self.pending.last()) {
            (Some((segment, reader)), _) => segment.start + reader.bytes_read(),
            (None, Some(next)) => next.start,
            (None, None) => 0,
        };
        let mut bytes = self.segments_done.to_le_bytes().to_vec();
        bytes.extend_from_slice(&offset.to_le_bytes());
        Some(bytes)
    }

    fn restore(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let bad = || {
            OperatorError::Failed(format!(
                "a file-source position is 12 bytes, got {}",
                position.len()
            ))
        };
        let done = u32::from_le_bytes(
            position
                .get(..4)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(bad)?,
        );
        let offset = u64::from_le_bytes(
            position
                .get(4..12)
                .and_then(|b| b.try_into().ok())
                .ok_or_else(bad)?,
        );
        if done as usize > self.pending.len() {
            return Err(OperatorError::Failed(format!(
                "position names segment {done}, but this shard reads {}",
                self.pending.len()
            )));
        }
        for _ in 0..done {
            self.pending.pop();
        }
        self.segments_done = done;
        if let Some(next) = self.pending.last_mut() {
            if offset < next.start || offset > next.end {
                return Err(OperatorError::Failed(format!(
                    "position {offset} lies outside {} bytes {}..{}",
                    next.path.display(),
                    next.start,
                    next.end
                )));
            }
            next.start = offset;
        }
        Ok(())
    }

    fn poll(
        &mut self,
        out: &mut Vec<Record<Event>>,
        max: usize,
        _now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let before = out.len();
        let finished = self.fill(out, max)?;
        self.count_dead_letters();
        let read = (out.len() - before) as u64;
        if read > 0 {
            self.stats.events.fetch_add(read, Ordering::Relaxed);
            if let Some(progress) = &self.progress {
                progress.fetch_add(read, Ordering::Relaxed);
            }
        }
        Ok(if finished {
            SourcePoll::Finished
        } else {
            SourcePoll::Ready
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::GeneratorConfig;
    use crate::nexmark::files::{generate_split_files, generate_to_file};
    use crate::nexmark::json::open_event_file;

    /// Runs the reader of every split to the end, the way the shard loop would.
    fn read_split(
        source: &NexmarkFileSource,
        shard: usize,
        shards: usize,
    ) -> Result<Vec<Record<Event>>, OperatorError> {
        let mut reader = source.create_reader(SplitContext { shard, shards })?;
        let mut out = Vec::new();
        loop {
            let mut batch = Vec::new();
            let status = reader.poll(&mut batch, 1024, 0)?;
            assert!(batch.len() <= 1024);
            out.extend(batch);
            if status == SourcePoll::Finished {
                return Ok(out);
            }
        }
    }

    fn read_all(source: &NexmarkFileSource, shards: usize) -> Vec<Vec<Record<Event>>> {
        (0..shards)
            .map(|s| read_split(source, s, shards).unwrap())
            .collect()
    }

    fn expected(path: &Path) -> Vec<Event> {
        open_event_file(path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn file_source_round_trips_a_generated_file_on_any_shard_count() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        let config = GeneratorConfig::with_events(5_003, 100_000);
        generate_to_file(&config, 2, &path).unwrap();
        let events = expected(&path);
        assert_eq!(events.len(), 5_003);
        for shards in [1, 3] {
            let source = NexmarkFileSource::open(&path).unwrap();
            let splits = read_all(&source, shards);
            // Concatenating the splits in shard order gives the file's order.
            let back: Vec<Event> = splits.into_iter().flatten().map(|r| r.value).collect();
            assert_eq!(back, events, "{shards} shards");
            assert_eq!(source.stats().events(), 5_003);
            assert_eq!(source.stats().dead_letters(), 0);
        }
        let source = NexmarkFileSource::open(&path).unwrap();
        for record in read_split(&source, 0, 1).unwrap() {
            assert_eq!(record.ts, record.value.date_time());
        }
    }

    /// A reader restored to a position it reported emits exactly the records that followed it:
    /// checked for every shard of 1..4 shards, over a single file and over a directory of
    /// several files per shard, at positions inside segments and at their boundaries.
    #[test]
    fn file_source_restored_position_resumes_exactly() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.jsonl");
        generate_to_file(&GeneratorConfig::with_events(4_001, 100_000), 1, &path).unwrap();
        let split_dir = dir.path().join("splits");
        generate_split_files(&GeneratorConfig::with_events(3_000, 100_000), 5, &split_dir).unwrap();
        for input in [&path, &split_dir] {
            for shards in 1..=4 {
                for shard in 0..shards {
                    let source = NexmarkFileSource::open(input).unwrap();
                    let all = read_split(&source, shard, shards).unwrap();
                    for batch in [1usize, 97, 700] {
                        let mut reader = source
                            .create_reader(SplitContext { shard, shards })
                            .unwrap();
                        let mut head = Vec::new();
                        let _ = reader.poll(&mut head, batch, 0).unwrap();
                        let position = reader.position().unwrap();
                        let mut restored = source
                            .create_reader(SplitContext { shard, shards })
                            .unwrap();
                        restored.restore(&position).unwrap();
                        let mut tail = Vec::new();
                        while restored.poll(&mut tail, 1024, 0).unwrap() != SourcePoll::Finished {}
                        head.extend(tail);
                        assert_eq!(
                            head.len(),
                            all.len(),
                            "{input:?} shard {shard}/{shards} after {batch}"
                        );
                        assert!(head.iter().zip(&all).all(|(a, b)| a.value == b.value));
                    }
                }
            }
        }
    }

    #[test]
    fn file_source_directory_assigns_file_i_to_shard_i_mod_shards() {
        let dir = tempfile::tempdir().unwrap();
        let config = GeneratorConfig::with_events(3_000, 100_000);
        let files = generate_split_files(&config, 3, dir.path()).unwrap();
        // Hidden and non-jsonl files are not input.
        fs::write(dir.path().join(".partial.jsonl"), "garbage\n").unwrap();
        fs::write(dir.path().join("notes.txt"), "garbage\n").unwrap();
        let per_file: Vec<Vec<Event>> = files.iter().map(|(p, _)| expected(p)).collect();
        let source = NexmarkFileSource::open(dir.path()).unwrap();
        assert_eq!(source.files().len(), 3);
        let splits = read_all(&source, 2);
        let values = |s: usize| {
            splits[s]
                .iter()
                .map(|r| r.value.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(
            values(0),
            [per_file[0].clone(), per_file[2].clone()].concat()
        );
        assert_eq!(values(1), per_file[1]);
        // More shards than files: the extra shards finish at once.
        let splits = read_all(&source, 4);
        assert!(splits[3].is_empty());
        assert_eq!(splits.iter().map(Vec::len).sum::<usize>(), 3_000);
    }

    #[test]
    fn file_source_byte_ranges_hold_every_line_exactly_once() {
        let dir = tempfile::tempdir().unwrap();
        // Odd sizes, including lines shorter than the shard count and a missing final newline.
        let mut texts: Vec<String> = vec![
            String::new(),
            "a".into(),
            "a\n".into(),
            "\n\n\n".into(),
            "ab\nc".into(),
        ];
        let long: String = (0..997)
            .map(|i| format!("line {i} {}\n", "x".repeat(i % 13)))
            .collect();
        texts.push(long.clone());
        texts.push(long.trim_end().to_owned());
        for (t, text) in texts.iter().enumerate() {
            let path = dir.path().join(format!("t{t}"));
            fs::write(&path, text).unwrap();
            let len = text.len() as u64;
            for shards in 1..=8 {
                let ranges = aligned_ranges(&path, shards).unwrap();
                assert_eq!(ranges[0].0, 0);
                assert_eq!(ranges[shards - 1].1, len, "text {t}, {shards} shards");
                let mut lines = Vec::new();
                for (s, &(start, end)) in ranges.iter().enumerate() {
                    if s > 0 {
                        assert_eq!(start, ranges[s - 1].1, "ranges meet");
                    }
                    let part = &text[start as usize..end as usize];
                    assert!(start == 0 || text.as_bytes()[start as usize - 1] == b'\n');
                    lines.extend(part.split_inclusive('\n'));
                }
                let all: Vec<&str> = text.split_inclusive('\n').collect();
                assert_eq!(lines, all, "text {t}, {shards} shards");
            }
        }
    }

    fn bad_file(dir: &Path) -> (PathBuf, usize) {
        let path = dir.join("events.jsonl");
        let config = GeneratorConfig::with_events(2_000, 100_000);
        generate_to_file(&config, 1, &path).unwrap();
        let text = fs::read_to_string(&path).unwrap();
        let mut lines: Vec<String> = text.lines().map(str::to_owned).collect();
        // Line 1500 (1-based): a bid whose price is a string; it lies in shard 1's range of 2.
        let index = lines
            .iter()
            .enumerate()
            .skip(1_499)
            .find(|(_, l)| l.contains("\"bid\""))
            .map(|(i, _)| i)
            .unwrap();
        lines[index] = lines[index].replacen("\"price\":", "\"price\":\"x\",\"was\":", 1);
        fs::write(&path, lines.join("\n") + "\n").unwrap();
        (path, index + 1)
    }

    #[test]
    fn file_source_malformed_line_names_file_line_and_field() {
        let dir = tempfile::tempdir().unwrap();
        let (path, line) = bad_file(dir.path());
        let source = NexmarkFileSource::open(&path).unwrap();
        let error = read_split(&source, 1, 2).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "bad input at {}:{line}: field `bid.price`: expected a 64-bit integer",
                path.display()
            )
        );
        // Shard 0's range does not hold the line.
        assert!(read_split(&source, 0, 2).is_ok());
    }

    #[test]
    fn file_source_dead_letter_counts_and_keeps_bad_lines() {
        let dir = tempfile::tempdir().unwrap();
        let (path, line) = bad_file(dir.path());
        let bad_line = fs::read_to_string(&path)
            .unwrap()
            .lines()
            .nth(line - 1)
            .unwrap()
            .to_owned();
        let dead = dir.path().join("dead.jsonl");
        let source = NexmarkFileSource::open(&path)
            .unwrap()
            .with_dead_letter(&dead)
            .unwrap();
        let progress = Arc::new(AtomicU64::new(0));
        let source = source.with_progress(Arc::clone(&progress));
        let events: usize = read_all(&source, 2).iter().map(Vec::len).sum();
        assert_eq!(events, 1_999);
        assert_eq!(source.stats().dead_letters(), 1);
        assert_eq!(source.stats().events(), 1_999);
        assert_eq!(progress.load(Ordering::Relaxed), 1_999);
        assert_eq!(fs::read_to_string(&dead).unwrap(), format!("{bad_line}\n"));
    }

    #[test]
    fn file_source_rejects_a_directory_without_event_files() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("a.txt"), "x").unwrap();
        let error = NexmarkFileSource::open(dir.path()).unwrap_err();
        assert!(matches!(error, FileSourceError::NoEventFiles { .. }));
        let missing = NexmarkFileSource::open(&dir.path().join("nope")).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
