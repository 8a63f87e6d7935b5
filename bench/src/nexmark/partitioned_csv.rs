//! q10's sink: CSV files in a directory partitioned by event-time day and minute
//! (`dt=YYYY-MM-DD/hm=HH%3Amm/`, Flink's layout with its escaping of `:`), each partition
//! committed with a `_SUCCESS` file once every shard's watermark has passed the partition's end
//! (SPEC.md §3.2, q10; Flink's partition-time commit trigger with a 1-minute delay).
//!
//! Per shard and partition, rows go to a hidden in-progress file
//! (`.part-SHARD-N.csv.inprogress`), which is published (fsynced, renamed to `part-SHARD-N.csv`)
//! when the shard's watermark passes the partition's end: the file "rolls" once per minute of
//! event time. A late row for a published partition starts the partition's next file.
//!
//! Commit across shards: a shard records its watermark in `.progress-RUN/shard-S` (write and
//! rename) each time the watermark crosses a minute boundary, then marks every partition whose
//! end lies at or below the minimum recorded watermark of all shards. `RUN` is chosen when the
//! sink is created, so a previous run's records in the same directory are never read. Several
//! shards may write the same `_SUCCESS` (an empty file): harmless.
//!
//! Invariants: a visible `part-*.csv` is complete; a partition has `_SUCCESS` only when every
//! shard has published all its rows of that partition that were not late. With checkpoints on,
//! the files take no part in two-phase commit (at-least-once).
//!
//! CSV: fields separated by `,`, a string quoted (with `""` for `"`) when it holds `,`, `"`, CR
//! or LF; timestamps `YYYY-MM-DD hh:mm:ss.SSS`.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use corestrom_operators::prelude::*;
use corestrom_runtime::OpResult;

use crate::nexmark::json::{WRITE_BUFFER_BYTES, write_i64};
use crate::nexmark::queries::calendar::{ascii, day_text, minute_text};
use crate::nexmark::timestamp::write_timestamp;

const MINUTE_MS: i64 = 60_000;
const MINUTES_PER_DAY: i64 = 24 * 60;

/// A row that q10's sink writes: its CSV fields and its event time (which picks the partition).
pub trait CsvRow: Clone + Send + 'static {
    /// Appends the row's fields, in order.
    fn write_csv(&self, line: &mut CsvLine);
    /// The event time of the row.
    fn event_time(&self) -> i64;
}

/// One CSV line under construction (reused: no allocation per row).
#[derive(Debug, Default)]
pub struct CsvLine {
    buf: Vec<u8>,
    fields: u32,
}

impl CsvLine {
    fn separator(&mut self) {
        if self.fields > 0 {
            self.buf.push(b',');
        }
        self.fields += 1;
    }

    /// An integer field.
    pub fn int(&mut self, value: i64) {
        self.separator();
        write_i64(&mut self.buf, value);
    }

    /// A timestamp field.
    pub fn timestamp(&mut self, ms: i64) {
        self.separator();
        write_timestamp(&mut self.buf, ms);
    }

    /// A string field, quoted when it must be.
    pub fn str(&mut self, value: &str) {
        self.separator();
        if value
            .bytes()
            .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
        {
            self.buf.push(b'"');
            for b in value.bytes() {
                if b == b'"' {
                    self.buf.push(b'"');
                }
                self.buf.push(b);
            }
            self.buf.push(b'"');
        } else {
            self.buf.extend_from_slice(value.as_bytes());
        }
    }

    fn clear(&mut self) {
        self.buf.clear();
        self.fields = 0;
    }
}

/// The partitioned CSV sink into one directory.
#[derive(Clone, Debug)]
pub struct PartitionedCsvSink {
    dir: PathBuf,
    run: String,
}

impl PartitionedCsvSink {
    /// Writes partitions under `dir` (created if missing).
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        PartitionedCsvSink {
            dir: dir.into(),
            run: format!("{}-{nanos}", std::process::id()),
        }
    }
}

impl<T: CsvRow> Sink<T> for PartitionedCsvSink {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        let progress_dir = self.dir.join(format!(".progress-{}", self.run));
        fs::create_dir_all(&progress_dir)
            .map_err(|e| OperatorError::io(format!("creating {}", progress_dir.display()), e))?;
        Ok(Box::new(PartitionedCsvWriter {
            dir: self.dir.clone(),
            progress_dir,
            shard: split.shard,
            shards: split.shards,
            open: BTreeMap::new(),
            files_started: BTreeMap::new(),
            line: CsvLine::default(),
            progress_minute: i64::MIN,
        }))
    }
}

/// One partition's in-progress file of this shard.
struct OpenPart {
    out: BufWriter<File>,
    hidden: PathBuf,
    visible: PathBuf,
}

struct PartitionedCsvWriter {
    dir: PathBuf,
    progress_dir: PathBuf,
    shard: usize,
    shards: usize,
    /// Open files by partition (minutes since the epoch).
    open: BTreeMap<i64, OpenPart>,
    /// Files this shard started per partition (names the next one).
    files_started: BTreeMap<i64, u32>,
    /// Reused CSV line.
    line: CsvLine,
    /// The minute boundary up to which this shard recorded its progress.
    progress_minute: i64,
}

fn io_error(what: &str, path: &Path) -> impl FnOnce(io::Error) -> OperatorError {
    let context = format!("{what} {}", path.display());
    move |e| OperatorError::io(context, e)
}

/// `dt=YYYY-MM-DD/hm=HH%3Amm` of a partition (minutes since the epoch).
fn partition_path(minute: i64) -> String {
    let day = minute.div_euclid(MINUTES_PER_DAY);
    let hm = minute_text(minute.rem_euclid(MINUTES_PER_DAY));
    let hm = ascii(&hm);
    format!(
        "dt={}/hm={}%3A{}",
        ascii(&day_text(day)),
        &hm[..2],
        &hm[3..]
    )
}

/// The partition of a `dt=…/hm=…` path relative to the result directory, if it is one.
fn partition_of(dt: &str, hm: &str) -> Option<i64> {
    let day = crate::nexmark::timestamp::parse_timestamp(&format!(
        "{} {}:{}:00.000",
        dt.strip_prefix("dt=")?,
        hm.strip_prefix("hm=")?.get(..2)?,
        hm.get(hm.len().checked_sub(2)?..)?
    ))
    .ok()?;
    Some(day.div_euclid(MINUTE_MS))
}

impl PartitionedCsvWriter {
    fn part(&mut self, minute: i64) -> Result<&mut OpenPart, OperatorError> {
        if !self.open.contains_key(&minute) {
            let dir = self.dir.join(partition_path(minute));
            fs::create_dir_all(&dir).map_err(io_error("creating", &dir))?;
            let n = self.files_started.entry(minute).or_insert(0);
            let name = format!("part-{:05}-{n}.csv", self.shard);
            *n += 1;
            let hidden = dir.join(format!(".{name}.inprogress"));
            let file = File::create(&hidden).map_err(io_error("creating", &hidden))?;
            self.open.insert(
                minute,
                OpenPart {
                    out: BufWriter::with_capacity(WRITE_BUFFER_BYTES, file),
                    hidden,
                    visible: dir.join(name),
                },
            );
        }
        Ok(self.open.get_mut(&minute).expect("just inserted"))
    }

    /// Publishes the files of every partition that ends at or before `watermark + 1`.
    fn publish_through(&mut self, watermark: EventTime) -> OpResult {
        while let Some(entry) = self.open.first_entry() {
            let end = (*entry.key() + 1).saturating_mul(MINUTE_MS);
            if end - 1 > watermark {
                break;
            }
            let part = entry.remove();
            let file = part.out.into_inner().map_err(|e| {
                OperatorError::io(format!("writing {}", part.hidden.display()), e.into_error())
            })?;
            file.sync_all().map_err(io_error("syncing", &part.hidden))?;
            fs::rename(&part.hidden, &part.visible)
                .map_err(io_error("publishing", &part.visible))?;
        }
        Ok(())
    }

    /// Records this shard's progress and marks the partitions every shard has passed.
    fn record_progress(&mut self, watermark: EventTime) -> OpResult {
        let minute = watermark.saturating_add(1).div_euclid(MINUTE_MS);
        if minute <= self.progress_minute {
            return Ok(());
        }
        self.progress_minute = minute;
        let path = self.progress_dir.join(format!("shard-{}", self.shard));
        let tmp = self.progress_dir.join(format!(".shard-{}.tmp", self.shard));
        fs::write(&tmp, watermark.to_string()).map_err(io_error("writing", &tmp))?;
        fs::rename(&tmp, &path).map_err(io_error("writing", &path))?;
        let mut all = EventTime::MAX;
        for shard in 0..self.shards {
            let path = self.progress_dir.join(format!("shard-{shard}"));
            match fs::read_to_string(&path) {
                Ok(text) => {
                    let recorded: EventTime = text.trim().parse().map_err(|_| {
                        OperatorError::Failed(format!(
                            "{}: not a watermark: {text:?}",
                            path.display()
                        ))
                    })?;
                    all = all.min(recorded);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(OperatorError::io(format!("reading {}", path.display()), e)),
            }
        }
        self.mark_complete_partitions(all)
    }

    fn mark_complete_partitions(&self, watermark: EventTime) -> OpResult {
        for day in read_dir_names(&self.dir)? {
            if !day.starts_with("dt=") {
                continue;
            }
            for hm in read_dir_names(&self.dir.join(&day))? {
                let Some(minute) = partition_of(&day, &hm) else {
                    continue;
                };
                let marker = self.dir.join(&day).join(&hm).join("_SUCCESS");
                if (minute + 1) * MINUTE_MS - 1 <= watermark && !marker.exists() {
                    File::create(&marker).map_err(io_error("committing", &marker))?;
                }
            }
        }
        Ok(())
    }
}

fn read_dir_names(dir: &Path) -> Result<Vec<String>, OperatorError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_error("listing", dir))? {
        let entry = entry.map_err(io_error("listing", dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    Ok(names)
}

impl<T: CsvRow> SinkWriter<T> for PartitionedCsvWriter {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        for record in records.drain(..) {
            let minute = record.value.event_time().div_euclid(MINUTE_MS);
            let mut line = std::mem::take(&mut self.line);
            line.clear();
            record.value.write_csv(&mut line);
            line.buf.push(b'\n');
            let part = self.part(minute)?;
            let written = part.out.write_all(&line.buf);
            let hidden = &part.hidden;
            written.map_err(io_error("writing", hidden))?;
            self.line = line;
        }
        Ok(())
    }

    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        self.publish_through(watermark)?;
        self.record_progress(watermark)
    }

    fn finish(&mut self) -> OpResult {
        self.publish_through(EventTime::MAX)?;
        self.record_progress(EventTime::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_paths_round_trip() {
        let minute = crate::nexmark::timestamp::parse_timestamp("2015-07-15 13:07:59.999")
            .unwrap()
            .div_euclid(MINUTE_MS);
        let path = partition_path(minute);
        assert_eq!(path, "dt=2015-07-15/hm=13%3A07");
        let (dt, hm) = path.split_once('/').unwrap();
        assert_eq!(partition_of(dt, hm), Some(minute));
        assert_eq!(partition_of("dt=x", "hm=1"), None);
    }

    #[test]
    fn strings_are_quoted_only_when_needed() {
        let mut line = CsvLine::default();
        line.str("");
        line.int(-5);
        line.str("plain");
        line.str("a,\"b\"");
        line.timestamp(0);
        assert_eq!(
            String::from_utf8(line.buf).unwrap(),
            ",-5,plain,\"a,\"\"b\"\"\",1970-01-01 00:00:00.000"
        );
    }
}
