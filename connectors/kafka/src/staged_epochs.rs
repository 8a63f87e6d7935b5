//! The exactly-once sink's write-ahead files: what one shard wrote between two checkpoints,
//! durable on local disk until its Kafka transaction has committed.
//!
//! Why a local file rather than a transaction left open in Kafka at the barrier: librdkafka
//! cannot resume a transaction after a restart (`init_transactions` aborts whatever the
//! previous producer with the same `transactional.id` left open), so a transaction flushed to
//! Kafka at the barrier of checkpoint `n` would be lost if the process died after the manifest
//! of `n` was written but before the commit. The staged file survives: recovery sends it again
//! in a fresh transaction (see [`crate::sink`]).
//!
//! Layout, for shard `S` under the sink's staging directory:
//!
//! ```text
//! shard-S/current.inprogress   being written (never replayed: covered by no checkpoint)
//! shard-S/C.staged             prepared for checkpoint C (20 digits): complete and fsynced
//! ```
//!
//! Each entry: timestamp `i64` (negative: none, the producer stamps it), partition `i32` (`-1`: the producer's partitioner), key length
//! `u32` (`u32::MAX`: no key), key, value length `u32`, value; little-endian. A staged file is
//! renamed into place only after its bytes are fsynced, so a complete name means complete
//! bytes; a short read is reported as corruption, never skipped.

use std::fs::{self, File};
use std::io::{BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use crate::error::KafkaConnectorError;

const NO_KEY: u32 = u32::MAX;
const WRITE_BUFFER_BYTES: usize = 1 << 16;

/// One record as staged.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StagedRecord {
    /// Kafka timestamp (ms).
    pub timestamp: i64,
    /// Target partition, `-1` for the partitioner's choice.
    pub partition: i32,
    /// Key, if any.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Vec<u8>,
}

fn staging(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KafkaConnectorError {
    let path = path.to_path_buf();
    move |source| KafkaConnectorError::Staging { what, path, source }
}

/// One shard's staged epochs.
#[derive(Debug)]
pub struct StagedEpochs {
    dir: PathBuf,
    current: Option<BufWriter<File>>,
    /// Records in the current file.
    current_records: u64,
}

impl StagedEpochs {
    /// The staging directory of `shard` under `root` (created if missing).
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn open(root: &Path, shard: usize) -> Result<StagedEpochs, KafkaConnectorError> {
        let dir = root.join(format!("shard-{shard:05}"));
        fs::create_dir_all(&dir).map_err(staging("creating", &dir))?;
        Ok(StagedEpochs {
            dir,
            current: None,
            current_records: 0,
        })
    }

    fn inprogress(&self) -> PathBuf {
        self.dir.join("current.inprogress")
    }

    /// The file of checkpoint `checkpoint`.
    pub fn staged_path(&self, checkpoint: u64) -> PathBuf {
        self.dir.join(format!("{checkpoint:020}.staged"))
    }

    /// Records appended since the last prepare.
    pub fn pending_records(&self) -> u64 {
        self.current_records
    }

    /// Appends one record to the in-progress file (buffered: a syscall per 64 KiB).
    ///
    /// # Errors
    /// The file cannot be created or written.
    pub fn append(
        &mut self,
        timestamp: i64,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), KafkaConnectorError> {
        if self.current.is_none() {
            let path = self.inprogress();
            let file = File::create(&path).map_err(staging("creating", &path))?;
            self.current = Some(BufWriter::with_capacity(WRITE_BUFFER_BYTES, file));
        }
        let out = self.current.as_mut().expect("just opened");
        let result = (|| {
            out.write_all(&timestamp.to_le_bytes())?;
            out.write_all(&partition.to_le_bytes())?;
            match key {
                Some(key) => {
                    out.write_all(&len_u32(key.len()).to_le_bytes())?;
                    out.write_all(key)?;
                }
                None => out.write_all(&NO_KEY.to_le_bytes())?,
            }
            out.write_all(&len_u32(value.len()).to_le_bytes())?;
            out.write_all(value)
        })();
        result.map_err(staging("writing", &self.inprogress()))?;
        self.current_records += 1;
        Ok(())
    }

    /// Makes what was appended durable as checkpoint `checkpoint`'s file; false when nothing
    /// was appended (no file).
    ///
    /// # Errors
    /// Flush, fsync or rename failed.
    pub fn prepare(&mut self, checkpoint: u64) -> Result<bool, KafkaConnectorError> {
        let Some(writer) = self.current.take() else {
            return Ok(false);
        };
        let from = self.inprogress();
        let file = writer
            .into_inner()
            .map_err(|e| staging("flushing", &from)(e.into_error()))?;
        file.sync_all().map_err(staging("fsync of", &from))?;
        drop(file);
        let to = self.staged_path(checkpoint);
        fs::rename(&from, &to).map_err(staging("renaming to", &to))?;
        sync_dir(&self.dir)?;
        self.current_records = 0;
        Ok(true)
    }

    /// The checkpoints with a staged file, ascending; removes an in-progress file (it belongs
    /// to no checkpoint).
    ///
    /// # Errors
    /// The directory cannot be listed or the in-progress file removed.
    pub fn list(&mut self) -> Result<Vec<u64>, KafkaConnectorError> {
        self.current = None;
        self.current_records = 0;
        let inprogress = self.inprogress();
        if inprogress.exists() {
            fs::remove_file(&inprogress).map_err(staging("removing", &inprogress))?;
        }
        let mut out = Vec::new();
        for entry in fs::read_dir(&self.dir).map_err(staging("listing", &self.dir))? {
            let entry = entry.map_err(staging("listing", &self.dir))?;
            let name = entry.file_name();
            let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".staged")) else {
                continue;
            };
            if let Ok(id) = stem.parse() {
                out.push(id);
            }
        }
        out.sort_unstable();
        Ok(out)
    }

    /// Deletes checkpoint `checkpoint`'s file, if present.
    ///
    /// # Errors
    /// It exists and cannot be removed.
    pub fn remove(&self, checkpoint: u64) -> Result<(), KafkaConnectorError> {
        let path = self.staged_path(checkpoint);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(staging("removing", &path)(e))
            }
            _ => Ok(()),
        }
    }
}

fn len_u32(len: usize) -> u32 {
    u32::try_from(len)
        .ok()
        .filter(|&l| l != NO_KEY)
        .expect("Kafka records are far below 4 GiB")
}

fn sync_dir(dir: &Path) -> Result<(), KafkaConnectorError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(staging("fsync of directory", dir))
}

/// Calls `each` for every record of a staged file, in order, reusing one buffer.
///
/// # Errors
/// The file cannot be read or is malformed ([`KafkaConnectorError::CorruptStage`]); or `each`
/// failed.
pub fn read_staged(
    path: &Path,
    mut each: impl FnMut(i64, i32, Option<&[u8]>, &[u8]) -> Result<(), KafkaConnectorError>,
) -> Result<u64, KafkaConnectorError> {
    let mut bytes = Vec::new();
    File::open(path)
        .and_then(|mut f| f.read_to_end(&mut bytes))
        .map_err(staging("reading", path))?;
    let corrupt = |at: usize, message: &str| KafkaConnectorError::CorruptStage {
        path: path.to_path_buf(),
        at: at as u64,
        message: message.to_string(),
    };
    let mut at = 0usize;
    let mut count = 0;
    let take = |at: &mut usize, n: usize| -> Option<&[u8]> {
        let end = at.checked_add(n).filter(|&e| e <= bytes.len())?;
        let slice = &bytes[*at..end];
        *at = end;
        Some(slice)
    };
    while at < bytes.len() {
        let start = at;
        let header = take(&mut at, 12).ok_or_else(|| corrupt(start, "entry header cut short"))?;
        let timestamp = i64::from_le_bytes(header[..8].try_into().expect("8 bytes"));
        let partition = i32::from_le_bytes(header[8..].try_into().expect("4 bytes"));
        let key_len = take(&mut at, 4).ok_or_else(|| corrupt(start, "key length cut short"))?;
        let key_len = u32::from_le_bytes(key_len.try_into().expect("4 bytes"));
        let key = if key_len == NO_KEY {
            None
        } else {
            Some(take(&mut at, key_len as usize).ok_or_else(|| corrupt(start, "key cut short"))?)
        };
        let value_len = take(&mut at, 4).ok_or_else(|| corrupt(start, "value length cut short"))?;
        let value_len = u32::from_le_bytes(value_len.try_into().expect("4 bytes"));
        let value =
            take(&mut at, value_len as usize).ok_or_else(|| corrupt(start, "value cut short"))?;
        each(timestamp, partition, key, value)?;
        count += 1;
    }
    Ok(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn record() -> impl Strategy<Value = StagedRecord> {
        (
            any::<i64>(),
            -1..8i32,
            proptest::option::of(proptest::collection::vec(any::<u8>(), 0..16)),
            proptest::collection::vec(any::<u8>(), 0..64),
        )
            .prop_map(|(timestamp, partition, key, value)| StagedRecord {
                timestamp,
                partition,
                key,
                value,
            })
    }

    fn read_all(path: &Path) -> Result<Vec<StagedRecord>, KafkaConnectorError> {
        let mut out = Vec::new();
        read_staged(path, |timestamp, partition, key, value| {
            out.push(StagedRecord {
                timestamp,
                partition,
                key: key.map(<[u8]>::to_vec),
                value: value.to_vec(),
            });
            Ok(())
        })?;
        Ok(out)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Reference model: a list of epochs, each a list of records. Whatever is prepared reads
        /// back exactly; what was appended after the last prepare is dropped by `list`.
        #[test]
        fn prepared_epochs_read_back_exactly_and_unprepared_tail_is_dropped(
            epochs in proptest::collection::vec(proptest::collection::vec(record(), 0..20), 1..5),
            tail in proptest::collection::vec(record(), 0..5),
        ) {
            let dir = tempfile::tempdir().unwrap();
            let mut staged = StagedEpochs::open(dir.path(), 3).unwrap();
            let mut expected = Vec::new();
            for (i, epoch) in epochs.iter().enumerate() {
                for r in epoch {
                    staged.append(r.timestamp, r.partition, r.key.as_deref(), &r.value).unwrap();
                }
                let checkpoint = i as u64 + 1;
                prop_assert_eq!(staged.prepare(checkpoint).unwrap(), !epoch.is_empty());
                if !epoch.is_empty() {
                    expected.push((checkpoint, epoch.clone()));
                }
            }
            for r in &tail {
                staged.append(r.timestamp, r.partition, r.key.as_deref(), &r.value).unwrap();
            }
            let mut reopened = StagedEpochs::open(dir.path(), 3).unwrap();
            let ids = reopened.list().unwrap();
            prop_assert_eq!(&ids, &expected.iter().map(|e| e.0).collect::<Vec<_>>());
            for (checkpoint, records) in expected {
                prop_assert_eq!(read_all(&reopened.staged_path(checkpoint)).unwrap(), records);
            }
            prop_assert!(!dir.path().join("shard-00003/current.inprogress").exists());
        }
    }

    #[test]
    fn a_truncated_file_is_reported_with_the_entry_offset() {
        let dir = tempfile::tempdir().unwrap();
        let mut staged = StagedEpochs::open(dir.path(), 0).unwrap();
        staged.append(1, -1, Some(b"k"), b"first").unwrap();
        staged.append(2, 0, None, b"second").unwrap();
        staged.prepare(7).unwrap();
        let path = staged.staged_path(7);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..bytes.len() - 2]).unwrap();
        let err = read_all(&path).unwrap_err().to_string();
        assert!(
            err.contains("corrupt at byte 26") && err.contains("value cut short"),
            "{err}"
        );
    }
}
