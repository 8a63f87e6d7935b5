//! Savepoints: self-contained, relocatable copies of a checkpoint, taken on demand, that a job
//! can be restored from with another shard count.
//!
//! A savepoint is an ordinary checkpoint `n` (barriers, alignment, sink pre-commit) whose
//! coordinator was asked for it (`SavepointRequest`, from `JobHandle::savepoint` or a request
//! file the CLI writes). On top of the checkpoint, each shard with keyed state copies the state
//! of its store, read at the sealed position of `n`, into one state file of the savepoint
//! directory before it acknowledges `n` (`state_file`). When every shard acknowledged, the
//! coordinator writes the checkpoint manifest as usual and then the savepoint manifest; the
//! savepoint exists once that file does. Nothing in the directory refers to the running job's
//! stores, so compaction and retention cannot break it, and it can be moved.
//!
//! ```text
//! DIR/_savepoint            manifest: framed like checkpoint manifests (magic, crc32, length)
//!                           around JSON: the checkpoint's manifest (sources' split positions,
//!                           sink transactions, shard count, key-group ranges; no store
//!                           positions) and every state file's name, length and crc32
//! DIR/state-SSSSS.kgs       keyed state of shard S of the job that took it (`state_file`)
//! ```
//!
//! Restoring (`load`): each shard of the new job computes its key-group range, reads the
//! groups of that range from every state file (each verified against the manifest's length
//! and crc32; a mismatch is an error naming the file), writes them into its fresh store, and
//! hands them to the operators through the usual restore path. Sources gather the split
//! positions of all old shards (`crate::splits`); sinks resolve the transactions of the old
//! shards they adopt. A restored job's checkpoint ids continue after the savepoint's.
//!
//! Stop with savepoint: once the savepoint is complete the coordinator triggers nothing more;
//! every shard commits the savepoint's sink transactions and then leaves its loop, and the job
//! ends without error. Output written after the savepoint's barrier stays uncommitted and is
//! discarded by the restored job.

pub mod load;
pub mod state_file;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::checkpoint::manifest::{self, Manifest, ManifestError};

/// First bytes of a savepoint manifest.
pub const SAVEPOINT_MAGIC: &str = "corestrom-savepoint v1";
/// The savepoint manifest's file name in a savepoint directory.
pub const SAVEPOINT_MANIFEST: &str = "_savepoint";
/// The request file the coordinator looks for in the state directory (see [`write_request`]).
pub const REQUEST_FILE: &str = "savepoint.request";

/// What the job does once the savepoint is complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum SavepointMode {
    /// Keep running.
    Continue,
    /// Commit the savepoint's output and end the job.
    Stop,
}

/// A request for a savepoint into `dir`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointRequest {
    /// The savepoint directory (created; must not hold a savepoint yet).
    pub dir: PathBuf,
    /// Continue or stop afterwards.
    pub mode: SavepointMode,
}

/// A savepoint the job took, or failed to take.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavepointOutcome {
    /// The checkpoint it copies.
    pub checkpoint: u64,
    /// Its directory.
    pub dir: PathBuf,
    /// Whether the job was asked to stop with it.
    pub mode: SavepointMode,
    /// Why it failed, if it did (the job keeps running, and does not stop).
    pub error: Option<String>,
}

/// One shard's state file, as the savepoint manifest names it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFileRef {
    /// The shard of the job that took the savepoint.
    pub shard: usize,
    /// File name in the savepoint directory.
    pub file: String,
    /// Its length.
    pub bytes: u64,
    /// crc32 (IEEE) of the whole file.
    pub crc32: u32,
    /// The key groups `[start, end)` the shard owned (every group in the file lies there).
    pub key_groups: (u32, u32),
}

/// The savepoint manifest.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SavepointManifest {
    /// The checkpoint it copies, store positions removed (they name the old job's stores).
    pub checkpoint: Manifest,
    /// The shards' state files, in shard order (none when the job keeps no keyed state).
    pub state_files: Vec<StateFileRef>,
}

/// Why a savepoint could not be written or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SavepointError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A file of the savepoint is damaged or inconsistent.
    #[error("corrupt savepoint file {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The directory holds no savepoint manifest.
    #[error("{dir} is not a savepoint: it has no {SAVEPOINT_MANIFEST} file")]
    Missing {
        /// The directory.
        dir: PathBuf,
    },
}

impl From<ManifestError> for SavepointError {
    fn from(e: ManifestError) -> Self {
        match e {
            ManifestError::Io { path, source } => SavepointError::Io { path, source },
            ManifestError::Corrupt { path, reason } => SavepointError::Corrupt { path, reason },
        }
    }
}

pub(crate) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> SavepointError + '_ {
    move |source| SavepointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Encodes a savepoint manifest as its file bytes.
pub fn encode(savepoint: &SavepointManifest) -> Vec<u8> {
    let body = serde_json::to_vec_pretty(savepoint).expect("a savepoint manifest serializes");
    manifest::frame(SAVEPOINT_MAGIC, &body)
}

/// Decodes and verifies a savepoint manifest's bytes; `path` names the file in errors.
///
/// # Errors
/// `Corrupt`: framing, crc, JSON, or inconsistent contents.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<SavepointManifest, SavepointError> {
    let corrupt = |reason: String| SavepointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let body = manifest::unframe(path, SAVEPOINT_MAGIC, bytes)?;
    let savepoint: SavepointManifest =
        serde_json::from_slice(body).map_err(|e| corrupt(format!("body: {e}")))?;
    let checkpoint = &savepoint.checkpoint;
    if checkpoint.per_shard.len() != checkpoint.shards {
        return Err(corrupt(format!(
            "{} shard entries for {} shards",
            checkpoint.per_shard.len(),
            checkpoint.shards
        )));
    }
    if checkpoint.per_shard.iter().any(|s| s.store.is_some()) {
        return Err(corrupt("names a store of the job that took it".into()));
    }
    for (i, file) in savepoint.state_files.iter().enumerate() {
        if file.shard >= checkpoint.shards || file.file != state_file::file_name(file.shard) {
            return Err(corrupt(format!("state file entry {i} ('{}')", file.file)));
        }
    }
    Ok(savepoint)
}

/// Writes the savepoint manifest into `dir` atomically (temp file, fsync, rename, directory
/// fsync): after this the savepoint is complete.
///
/// # Errors
/// Any I/O failure, naming the path.
pub fn write(dir: &Path, savepoint: &SavepointManifest) -> Result<PathBuf, SavepointError> {
    Ok(manifest::write_atomically(
        dir,
        SAVEPOINT_MANIFEST,
        &encode(savepoint),
    )?)
}

/// Reads and verifies the savepoint manifest of `dir` (the state files are verified when
/// they are loaded).
///
/// # Errors
/// No manifest, or a corrupt one (the error names the file).
pub fn read(dir: &Path) -> Result<SavepointManifest, SavepointError> {
    let path = dir.join(SAVEPOINT_MANIFEST);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(SavepointError::Missing {
                dir: dir.to_path_buf(),
            });
        }
        Err(e) => return Err(io(&path)(e)),
    };
    decode(&path, &bytes)
}

/// Asks the job running on `state_dir` for a savepoint: writes the request file atomically.
/// The coordinator looks for it once per checkpoint interval, deletes it and takes the
/// savepoint. A request already waiting is replaced.
///
/// # Errors
/// The file cannot be written.
pub fn write_request(state_dir: &Path, request: &SavepointRequest) -> Result<(), SavepointError> {
    let body = serde_json::to_vec(request).expect("a request serializes");
    manifest::write_atomically(state_dir, REQUEST_FILE, &body)?;
    Ok(())
}

/// Takes the request file of `state_dir`, if there is one (it is deleted).
///
/// # Errors
/// A request that cannot be read or parsed (it is deleted too, so it is reported once).
pub fn take_request(state_dir: &Path) -> Result<Option<SavepointRequest>, SavepointError> {
    let path = state_dir.join(REQUEST_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io(&path)(e)),
    };
    std::fs::remove_file(&path).map_err(io(&path))?;
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| SavepointError::Corrupt {
            path,
            reason: format!("savepoint request: {e}"),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::manifest::{NamedBlob, ShardSnapshot};

    fn sample() -> SavepointManifest {
        SavepointManifest {
            checkpoint: Manifest {
                checkpoint: 4,
                finished: false,
                shards: 2,
                max_key_groups: 8,
                created_ms: 1,
                per_shard: (0..2)
                    .map(|s| ShardSnapshot {
                        shard: s,
                        key_groups: (s as u32 * 4, s as u32 * 4 + 4),
                        sources: vec![NamedBlob::new("0:src", &[1, 2])],
                        sinks: vec![],
                        store: None,
                    })
                    .collect(),
            },
            state_files: vec![StateFileRef {
                shard: 1,
                file: state_file::file_name(1),
                bytes: 10,
                crc32: 7,
                key_groups: (4, 8),
            }],
        }
    }

    #[test]
    fn manifest_round_trips_and_corruption_is_detected() {
        let dir = tempfile::tempdir().expect("dir");
        let savepoint = sample();
        write(dir.path(), &savepoint).expect("write");
        assert_eq!(read(dir.path()).expect("read"), savepoint);
        let path = dir.path().join(SAVEPOINT_MANIFEST);
        let mut bytes = std::fs::read(&path).expect("read");
        let at = bytes.len() / 2;
        bytes[at] ^= 1;
        std::fs::write(&path, &bytes).expect("corrupt");
        let error = read(dir.path()).expect_err("corrupt").to_string();
        assert!(error.contains(SAVEPOINT_MANIFEST), "{error}");
        assert!(error.contains("crc32"), "{error}");
        let empty = tempfile::tempdir().expect("dir");
        assert!(matches!(
            read(empty.path()),
            Err(SavepointError::Missing { .. })
        ));
    }

    #[test]
    fn a_manifest_naming_a_store_is_refused() {
        let mut savepoint = sample();
        savepoint.checkpoint.per_shard[0].store = Some(Default::default());
        let error = decode(Path::new("x"), &encode(&savepoint)).expect_err("refused");
        assert!(error.to_string().contains("store"), "{error}");
    }

    #[test]
    fn a_request_is_taken_once() {
        let dir = tempfile::tempdir().expect("dir");
        assert_eq!(take_request(dir.path()).expect("none"), None);
        let request = SavepointRequest {
            dir: dir.path().join("sp"),
            mode: SavepointMode::Stop,
        };
        write_request(dir.path(), &request).expect("write");
        assert_eq!(take_request(dir.path()).expect("taken"), Some(request));
        assert_eq!(take_request(dir.path()).expect("gone"), None);
        std::fs::write(dir.path().join(REQUEST_FILE), b"{").expect("write");
        assert!(take_request(dir.path()).is_err());
        assert_eq!(take_request(dir.path()).expect("deleted"), None);
    }
}
