//! Checkpoint manifests: the one file that makes a checkpoint complete.
//!
//! A manifest names, per shard, everything recovery needs: the source positions, the prepared
//! sink transactions, and (once keyed state lives in the store) the store position and key-group
//! range. It is written only after every shard acknowledged the checkpoint, with the durability
//! discipline temp file → write → fsync → rename → fsync directory, so a crash leaves either no
//! manifest or a complete one. It is self-checking:
//!
//! ```text
//! corestrom-manifest v1 crc32=XXXXXXXX bytes=N\n
//! <N bytes of JSON body>
//! ```
//!
//! The crc32 (IEEE, crc32fast) covers the body. A manifest whose header, length, crc or JSON is
//! wrong is reported as corrupt and never used; recovery falls back to the previous one.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// First bytes of every manifest.
pub const MANIFEST_MAGIC: &str = "corestrom-manifest v1";
/// Directory, under the state directory, that holds the manifests.
pub const MANIFEST_DIR: &str = "checkpoints";

/// What one shard contributed to a checkpoint.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSnapshot {
    /// The shard.
    pub shard: usize,
    /// Key groups `[start, end)` the shard owned.
    pub key_groups: (u32, u32),
    /// Position of each source (by operator name) on this shard, hex-encoded reader bytes.
    pub sources: Vec<NamedBlob>,
    /// Prepared transaction of each sink (by operator name), hex-encoded; empty when the sink
    /// had nothing to commit.
    pub sinks: Vec<NamedBlob>,
    /// Where the shard's keyed state is: absent when the job keeps no keyed state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreSnapshot>,
}

/// A shard's keyed state in a checkpoint: its store, sealed at a position.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoreSnapshot {
    /// The store's directory, relative to the state directory.
    pub dir: String,
    /// The sealed position (`corestrom_storage::Position` bytes, crc included), hex-encoded.
    pub position: String,
    /// The stateful operators whose state it holds (`node:name`).
    pub operators: Vec<String>,
}

/// An operator's opaque bytes, by operator name.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedBlob {
    /// Operator name (unique within a job).
    pub operator: String,
    /// The bytes, hex-encoded.
    pub hex: String,
}

impl NamedBlob {
    /// A blob from bytes.
    pub fn new(operator: &str, bytes: &[u8]) -> Self {
        NamedBlob {
            operator: operator.to_string(),
            hex: hex_encode(bytes),
        }
    }

    /// The bytes.
    ///
    /// # Errors
    /// The hex text is malformed.
    pub fn bytes(&self) -> Result<Vec<u8>, ManifestError> {
        hex_decode(&self.hex).ok_or_else(|| ManifestError::Corrupt {
            path: PathBuf::new(),
            reason: format!("operator '{}': malformed hex", self.operator),
        })
    }
}

/// A complete checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// The checkpoint id.
    pub checkpoint: u64,
    /// True for the checkpoint taken when every input ended: nothing is left to replay.
    pub finished: bool,
    /// Shards of the job that took it.
    pub shards: usize,
    /// Key groups of the job that took it.
    pub max_key_groups: u32,
    /// Wall-clock time it was written (ms since the epoch).
    pub created_ms: i64,
    /// One entry per shard, in shard order.
    pub per_shard: Vec<ShardSnapshot>,
}

/// Why a manifest could not be written or used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ManifestError {
    /// An I/O error on a path.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid manifest.
    #[error("corrupt checkpoint manifest {path}: {reason}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ManifestError + '_ {
    move |source| ManifestError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The file name of checkpoint `id`'s manifest.
pub fn manifest_file_name(id: u64) -> String {
    format!("chk-{id:020}.manifest")
}

/// Encodes a manifest as its file bytes.
pub fn encode(manifest: &Manifest) -> Vec<u8> {
    let body = serde_json::to_vec_pretty(manifest).expect("a manifest always serializes");
    frame(MANIFEST_MAGIC, &body)
}

/// `magic crc32=XXXXXXXX bytes=N\n` followed by `body`: the self-checking framing of manifests
/// (and of savepoint manifests, with their own magic).
pub(crate) fn frame(magic: &str, body: &[u8]) -> Vec<u8> {
    let crc = crc32fast::hash(body);
    let mut bytes = format!("{magic} crc32={crc:08x} bytes={}\n", body.len()).into_bytes();
    bytes.extend_from_slice(body);
    bytes
}

/// The body of bytes framed by [`frame`] with `magic`, verified; `path` only names the file.
///
/// # Errors
/// `Corrupt` with the reason: header, length or crc.
pub(crate) fn unframe<'a>(
    path: &Path,
    magic: &str,
    bytes: &'a [u8],
) -> Result<&'a [u8], ManifestError> {
    let corrupt = |reason: String| ManifestError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let newline = bytes
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| corrupt("no header line".into()))?;
    let header = std::str::from_utf8(&bytes[..newline])
        .map_err(|_| corrupt("header is not UTF-8".into()))?;
    let rest = header
        .strip_prefix(magic)
        .ok_or_else(|| corrupt(format!("bad magic in header '{header}'")))?;
    let mut crc = None;
    let mut len = None;
    for field in rest.split_whitespace() {
        if let Some(v) = field.strip_prefix("crc32=") {
            crc = u32::from_str_radix(v, 16).ok();
        } else if let Some(v) = field.strip_prefix("bytes=") {
            len = v.parse::<usize>().ok();
        }
    }
    let (crc, len) = match (crc, len) {
        (Some(c), Some(l)) => (c, l),
        _ => return Err(corrupt(format!("header '{header}' lacks crc32 or bytes"))),
    };
    // Only the canonical rendering is accepted, so no bit of the header can flip unnoticed
    // (an upper-case hex digit would parse to the same crc).
    if header != format!("{magic} crc32={crc:08x} bytes={len}") {
        return Err(corrupt(format!(
            "header '{header}' is not in canonical form"
        )));
    }
    let body = &bytes[newline + 1..];
    if body.len() != len {
        return Err(corrupt(format!(
            "body is {} bytes, header says {len} (torn write?)",
            body.len()
        )));
    }
    let actual = crc32fast::hash(body);
    if actual != crc {
        return Err(corrupt(format!(
            "crc32 mismatch: header {crc:08x}, body {actual:08x}"
        )));
    }
    Ok(body)
}

/// Decodes and verifies a manifest's file bytes; `path` only names the file in errors.
///
/// # Errors
/// `Corrupt` with the reason: header, length, crc or JSON.
pub fn decode(path: &Path, bytes: &[u8]) -> Result<Manifest, ManifestError> {
    let corrupt = |reason: String| ManifestError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let body = unframe(path, MANIFEST_MAGIC, bytes)?;
    let manifest: Manifest =
        serde_json::from_slice(body).map_err(|e| corrupt(format!("body: {e}")))?;
    if manifest.per_shard.len() != manifest.shards {
        return Err(corrupt(format!(
            "{} shard entries for {} shards",
            manifest.per_shard.len(),
            manifest.shards
        )));
    }
    Ok(manifest)
}

/// Writes `bytes` as `dir/name` durably: temp file, fsync, rename, fsync of the directory. A
/// failure leaves no file under the final name.
///
/// # Errors
/// Any I/O failure, naming the path.
pub(crate) fn write_atomically(
    dir: &Path,
    name: &str,
    bytes: &[u8],
) -> Result<PathBuf, ManifestError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let temp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(name);
    {
        let mut file = File::create(&temp).map_err(io(&temp))?;
        file.write_all(bytes).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
    }
    fs::rename(&temp, &path).map_err(io(&path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    Ok(path)
}

/// Writes `manifest` durably into `dir` (temp file, fsync, rename, fsync of the directory).
///
/// # Errors
/// Any I/O failure, naming the path; a failure leaves no file under the final name.
pub fn write(dir: &Path, manifest: &Manifest) -> Result<PathBuf, ManifestError> {
    fs::create_dir_all(dir).map_err(io(dir))?;
    let name = manifest_file_name(manifest.checkpoint);
    let temp = dir.join(format!(".{name}.tmp"));
    let path = dir.join(&name);
    {
        let mut file = File::create(&temp).map_err(io(&temp))?;
        file.write_all(&encode(manifest)).map_err(io(&temp))?;
        file.sync_all().map_err(io(&temp))?;
    }
    crate::checkpoint::fault::hit("manifest.before_rename");
    fs::rename(&temp, &path).map_err(io(&path))?;
    crate::checkpoint::fault::hit("manifest.after_rename");
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io(dir))?;
    crate::checkpoint::fault::hit("manifest.after_dir_fsync");
    Ok(path)
}

/// One manifest file found in a directory, verified or not.
#[derive(Debug)]
pub struct ListedManifest {
    /// The checkpoint id from the file name.
    pub checkpoint: u64,
    /// The file.
    pub path: PathBuf,
    /// The manifest, or why it cannot be used.
    pub manifest: Result<Manifest, ManifestError>,
}

/// Every manifest in `dir`, oldest first, each verified.
///
/// # Errors
/// The directory cannot be read (a missing directory is an empty list).
pub fn list(dir: &Path) -> Result<Vec<ListedManifest>, ManifestError> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(ManifestError::Io {
                path: dir.to_path_buf(),
                source: e,
            });
        }
    };
    let mut found = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io(dir))?;
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(id) = name
            .strip_prefix("chk-")
            .and_then(|n| n.strip_suffix(".manifest"))
            .and_then(|n| n.parse().ok())
        else {
            continue;
        };
        let path = entry.path();
        let manifest = fs::read(&path)
            .map_err(io(&path))
            .and_then(|bytes| decode(&path, &bytes));
        let manifest = manifest.and_then(|m| {
            if m.checkpoint == id {
                Ok(m)
            } else {
                Err(ManifestError::Corrupt {
                    path: path.clone(),
                    reason: format!("file name says checkpoint {id}, body says {}", m.checkpoint),
                })
            }
        });
        found.push(ListedManifest {
            checkpoint: id,
            path,
            manifest,
        });
    }
    found.sort_by_key(|m| m.checkpoint);
    Ok(found)
}

/// The newest manifest that verifies, and the newer ones that did not (to report).
///
/// # Errors
/// The directory cannot be read.
pub fn newest_valid(dir: &Path) -> Result<(Option<Manifest>, Vec<ManifestError>), ManifestError> {
    let mut skipped = Vec::new();
    for listed in list(dir)?.into_iter().rev() {
        match listed.manifest {
            Ok(m) => return Ok((Some(m), skipped)),
            Err(e) => skipped.push(e),
        }
    }
    Ok((None, skipped))
}

/// Deletes all but the newest `keep` manifests (and stray temp files).
///
/// # Errors
/// A file that cannot be deleted.
pub fn retain_newest(dir: &Path, keep: usize) -> Result<(), ManifestError> {
    let listed = list(dir)?;
    let excess = listed.len().saturating_sub(keep);
    for old in listed.into_iter().take(excess) {
        fs::remove_file(&old.path).map_err(io(&old.path))?;
    }
    Ok(())
}

pub(crate) fn hex_encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        s.push(DIGITS[(b >> 4) as usize] as char);
        s.push(DIGITS[(b & 15) as usize] as char);
    }
    s
}

pub(crate) fn hex_decode(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: u64) -> Manifest {
        Manifest {
            checkpoint: id,
            finished: false,
            shards: 2,
            max_key_groups: 128,
            created_ms: 1,
            per_shard: (0..2)
                .map(|s| ShardSnapshot {
                    shard: s,
                    key_groups: (s as u32 * 64, s as u32 * 64 + 64),
                    sources: vec![NamedBlob::new("src", &[s as u8, 0xff])],
                    sinks: vec![NamedBlob::new("sink", b"part-1")],
                    store: (s == 1).then(|| StoreSnapshot {
                        dir: "stores/shard-1".into(),
                        position: "00ff".into(),
                        operators: vec!["3:window".into()],
                    }),
                })
                .collect(),
        }
    }

    #[test]
    fn round_trip_and_every_corruption_is_detected() {
        let m = sample(7);
        let bytes = encode(&m);
        let path = Path::new("chk");
        assert_eq!(decode(path, &bytes).expect("valid"), m);
        assert_eq!(
            m.per_shard[0].sources[0].bytes().expect("hex"),
            vec![0, 0xff]
        );
        // Every single-bit flip and every truncation is rejected.
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut bad = bytes.clone();
                bad[i] ^= 1 << bit;
                assert!(
                    decode(path, &bad).is_err(),
                    "flip of bit {bit} at byte {i} accepted"
                );
            }
        }
        for len in 0..bytes.len() {
            assert!(
                decode(path, &bytes[..len]).is_err(),
                "truncation to {len} accepted"
            );
        }
    }

    #[test]
    fn newest_valid_skips_a_corrupt_newest() {
        let dir = tempfile::tempdir().expect("dir");
        for id in 1..=3 {
            write(dir.path(), &sample(id)).expect("write");
        }
        let newest = dir.path().join(manifest_file_name(3));
        let mut bytes = fs::read(&newest).expect("read");
        let last = bytes.len() - 2;
        bytes[last] ^= 0x20;
        fs::write(&newest, bytes).expect("corrupt");
        let (manifest, skipped) = newest_valid(dir.path()).expect("list");
        assert_eq!(manifest.expect("previous").checkpoint, 2);
        assert_eq!(skipped.len(), 1);
        assert!(
            skipped[0].to_string().contains("crc32 mismatch"),
            "{}",
            skipped[0]
        );
        retain_newest(dir.path(), 1).expect("retain");
        assert_eq!(list(dir.path()).expect("list").len(), 1);
    }
}
