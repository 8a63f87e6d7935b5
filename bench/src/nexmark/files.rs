//! Whole-run generation into files: the library core of `corestrom nexmark generate`.
//!
//! * [`generate_to_file`]: all splits of a run merged into one file in event-time order — a
//!   k-way merge by (timestamp, split index), so the file is what Flink at parallelism 1 reads
//!   and a stable, total order (ties go to the lower split).
//! * [`generate_split_files`]: one time-ordered file per split in a directory, named by
//!   [`split_file_name`] — what Flink at parallelism p reads (one file per source subtask).
//!
//! Files are written under a hidden temporary name (`.<name>.tmp`) and renamed when complete,
//! so a reader of the directory never sees a partial file. The generator must be bounded
//! (`events.num > 0`).

use crate::nexmark::config::{ConfigError, GeneratorConfig};
use crate::nexmark::generator::NexmarkGenerator;
use crate::nexmark::json::EventWriter;
use crate::nexmark::model::{Event, EventKind};
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use thiserror::Error;

/// Counts of one generated file (or stream).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GenerateSummary {
    pub events: u64,
    pub persons: u64,
    pub auctions: u64,
    pub bids: u64,
    /// Bytes of JSON written.
    pub bytes: u64,
}

impl GenerateSummary {
    fn count(&mut self, event: &Event) {
        self.events += 1;
        match event.kind() {
            EventKind::Person => self.persons += 1,
            EventKind::Auction => self.auctions += 1,
            EventKind::Bid => self.bids += 1,
        }
    }
}

/// Why generation into a file failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum GenerateError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("events.num is 0 (unbounded); a file needs a bounded number of events")]
    Unbounded,
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The events of all `num_splits` splits of a run, merged by (event time, split index).
#[derive(Debug)]
pub struct MergedEvents {
    splits: Vec<NexmarkGenerator>,
    /// The next event of each split, with its time; `None` once the split is finished.
    heads: Vec<Option<Event>>,
}

impl MergedEvents {
    /// # Errors
    /// If the config does not validate or `num_splits` is 0.
    pub fn new(config: &GeneratorConfig, num_splits: u32) -> Result<MergedEvents, ConfigError> {
        let mut splits = (0..num_splits)
            .map(|i| NexmarkGenerator::new(config, i, num_splits))
            .collect::<Result<Vec<_>, _>>()?;
        if splits.is_empty() {
            return Err(ConfigError::BadSplit {
                split_index: 0,
                num_splits,
            });
        }
        let heads = splits
            .iter_mut()
            .map(NexmarkGenerator::next_event)
            .collect();
        Ok(MergedEvents { splits, heads })
    }
}

impl Iterator for MergedEvents {
    type Item = Event;

    // A linear scan over the heads: split counts are small (≤ cores), and the scan touches one
    // i64 per split; a heap would only pay off at hundreds of splits.
    fn next(&mut self) -> Option<Event> {
        let mut best: Option<(i64, usize)> = None;
        for (i, head) in self.heads.iter().enumerate() {
            if let Some(event) = head {
                let t = event.date_time();
                if best.is_none_or(|(best_t, _)| t < best_t) {
                    best = Some((t, i));
                }
            }
        }
        let (_, i) = best?;
        let next = self.splits[i].next_event();
        std::mem::replace(&mut self.heads[i], next)
    }
}

/// Writes `events` as JSON lines into `out`.
///
/// # Errors
/// An I/O error of `out`.
pub fn write_events<W: Write>(
    events: impl Iterator<Item = Event>,
    out: W,
) -> io::Result<(GenerateSummary, W)> {
    let mut writer = EventWriter::new(out);
    let mut summary = GenerateSummary::default();
    for event in events {
        writer.write(&event)?;
        summary.count(&event);
    }
    summary.bytes = writer.bytes();
    Ok((summary, writer.finish()?))
}

/// Generates the run's `config.events_num` events from `num_splits` splits, merged in event-time
/// order, into one JSON-lines file at `path` (replaced if it exists).
///
/// # Errors
/// [`GenerateError::Unbounded`] if `events.num` is 0, a config error, or an I/O error.
pub fn generate_to_file(
    config: &GeneratorConfig,
    num_splits: u32,
    path: &Path,
) -> Result<GenerateSummary, GenerateError> {
    if config.events_num == 0 {
        return Err(GenerateError::Unbounded);
    }
    let events = MergedEvents::new(config, num_splits)?;
    write_file_atomically(path, events)
}

/// Like [`generate_to_file`], into any writer (e.g. stdout); returns the counts and the writer.
///
/// # Errors
/// [`GenerateError::Unbounded`] if `events.num` is 0, a config error, or an I/O error (reported
/// with the path `-`).
pub fn generate_to_writer<W: Write>(
    config: &GeneratorConfig,
    num_splits: u32,
    out: W,
) -> Result<(GenerateSummary, W), GenerateError> {
    if config.events_num == 0 {
        return Err(GenerateError::Unbounded);
    }
    let events = MergedEvents::new(config, num_splits)?;
    write_events(events, out).map_err(|source| GenerateError::Io {
        path: PathBuf::from("-"),
        source,
    })
}

/// Generates each of the `num_splits` splits into its own time-ordered file in `dir` (created
/// if missing), named [`split_file_name`]. Returns the paths and counts in split order.
///
/// # Errors
/// [`GenerateError::Unbounded`] if `events.num` is 0, a config error, or an I/O error.
pub fn generate_split_files(
    config: &GeneratorConfig,
    num_splits: u32,
    dir: &Path,
) -> Result<Vec<(PathBuf, GenerateSummary)>, GenerateError> {
    if config.events_num == 0 {
        return Err(GenerateError::Unbounded);
    }
    // Validate every split before creating anything.
    let splits = (0..num_splits)
        .map(|i| NexmarkGenerator::new(config, i, num_splits))
        .collect::<Result<Vec<_>, _>>()?;
    fs::create_dir_all(dir).map_err(|source| GenerateError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    splits
        .into_iter()
        .map(|split| {
            let path = dir.join(split_file_name(split.split_index(), num_splits));
            let summary = write_file_atomically(&path, split)?;
            Ok((path, summary))
        })
        .collect()
}

/// `events-<i>-of-<n>.jsonl` with zero padding, so names sort in split order.
pub fn split_file_name(split_index: u32, num_splits: u32) -> String {
    format!("events-{split_index:04}-of-{num_splits:04}.jsonl")
}

fn write_file_atomically(
    path: &Path,
    events: impl Iterator<Item = Event>,
) -> Result<GenerateSummary, GenerateError> {
    let io_error = |source| GenerateError::Io {
        path: path.to_path_buf(),
        source,
    };
    let name = path
        .file_name()
        .ok_or_else(|| io_error(io::Error::new(io::ErrorKind::InvalidInput, "no file name")))?;
    let temporary = path.with_file_name(format!(".{}.tmp", name.to_string_lossy()));
    let file = File::create(&temporary).map_err(io_error)?;
    let (summary, buffered) = write_events(events, BufWriter::new(file)).map_err(io_error)?;
    buffered
        .into_inner()
        .map_err(|e| io_error(e.into_error()))?;
    fs::rename(&temporary, path).map_err(io_error)?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nexmark::json::open_event_file;

    fn read(path: &Path) -> Vec<Event> {
        open_event_file(path)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    #[test]
    fn files_same_seed_is_byte_identical_other_seed_differs() {
        let dir = tempfile::tempdir().unwrap();
        let config = GeneratorConfig::with_events(10_000, 100_000);
        let paths = ["a.jsonl", "b.jsonl", "c.jsonl"].map(|n| dir.path().join(n));
        let summary = generate_to_file(&config, 4, &paths[0]).unwrap();
        generate_to_file(&config, 4, &paths[1]).unwrap();
        let reseeded = GeneratorConfig { seed: 99, ..config };
        generate_to_file(&reseeded, 4, &paths[2]).unwrap();
        let [a, b, c] = paths.map(|p| fs::read(p).unwrap());
        assert_eq!(a, b);
        let (_, in_memory) = generate_to_writer(&config, 4, Vec::new()).unwrap();
        assert_eq!(in_memory, a);
        assert_ne!(a, c);
        assert_eq!(summary.events, 10_000);
        assert_eq!(
            (summary.persons, summary.auctions, summary.bids),
            (200, 600, 9200)
        );
        assert_eq!(summary.bytes, a.len() as u64);
        // No temporary file is left behind.
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 3);
    }

    #[test]
    fn files_split_files_merged_by_time_equal_the_single_file() {
        let dir = tempfile::tempdir().unwrap();
        let config = GeneratorConfig::with_events(20_003, 1_000_000);
        let single = dir.path().join("all.jsonl");
        generate_to_file(&config, 3, &single).unwrap();
        let splits = generate_split_files(&config, 3, &dir.path().join("splits")).unwrap();
        assert_eq!(splits.len(), 3);
        assert!(splits[0].0.ends_with("events-0000-of-0003.jsonl"));
        let per_split: Vec<Vec<Event>> = splits.iter().map(|(p, _)| read(p)).collect();
        assert_eq!(per_split.iter().map(Vec::len).sum::<usize>(), 20_003);
        for events in &per_split {
            assert!(
                events
                    .windows(2)
                    .all(|w| w[0].date_time() <= w[1].date_time())
            );
        }
        // Merge the read-back split files by (time, split) and compare with the single file.
        let mut cursors = vec![0usize; per_split.len()];
        let mut merged = Vec::new();
        loop {
            let best = (0..per_split.len())
                .filter(|&i| cursors[i] < per_split[i].len())
                .min_by_key(|&i| (per_split[i][cursors[i]].date_time(), i));
            let Some(i) = best else { break };
            merged.push(per_split[i][cursors[i]].clone());
            cursors[i] += 1;
        }
        assert_eq!(merged, read(&single));
    }

    #[test]
    fn files_reject_unbounded_runs() {
        let dir = tempfile::tempdir().unwrap();
        let error = generate_to_file(&GeneratorConfig::default(), 1, &dir.path().join("x"));
        assert!(matches!(error, Err(GenerateError::Unbounded)));
    }
}
