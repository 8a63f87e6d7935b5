//! `StorageError`: the one error type of the storage crate.
//!
//! Every variant that concerns bytes on disk names the file and the byte offset. After an I/O
//! error on the write path the store is fail-stop: it keeps the first cause and answers every
//! later write or seal with [`StorageError::FailStopped`], it never retries as if nothing happened.

use std::io;

/// Result alias used throughout the crate.
pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Everything that can go wrong in the storage crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StorageError {
    /// An operating-system I/O call failed.
    #[error("{op} failed on {file} at offset {offset}: {source}")]
    Io {
        /// What was attempted (`write`, `fdatasync`, `read`, ...).
        op: &'static str,
        /// The file, as a path or name.
        file: String,
        /// Byte offset in the file (0 where the operation has none).
        offset: u64,
        /// The underlying error.
        #[source]
        source: io::Error,
    },
    /// Bytes before the durable position failed their checks; nothing from them is returned.
    #[error("corruption in {file} at offset {offset}: {reason}")]
    Corrupt {
        /// The file.
        file: String,
        /// Byte offset of the bad frame or header.
        offset: u64,
        /// What check failed.
        reason: String,
    },
    /// A segment named by the position is not in the directory.
    #[error("segment file {file} named by the position is missing")]
    SegmentMissing {
        /// The missing file.
        file: String,
    },
    /// A serialized position failed its checks.
    #[error("invalid position bytes: {reason}")]
    PositionInvalid {
        /// What check failed.
        reason: String,
    },
    /// An earlier write or fsync failed; the store refuses further writes (fail-stop).
    #[error("store is fail-stopped after an earlier I/O error: {cause}")]
    FailStopped {
        /// The first error that stopped the store.
        cause: String,
    },
    /// A key, namespace or value is larger than the format allows.
    #[error("entry of {bytes} bytes exceeds the maximum of {max} bytes")]
    EntryTooLarge {
        /// The size asked for.
        bytes: usize,
        /// The limit.
        max: usize,
    },
    /// A configuration value is out of range.
    #[error("invalid configuration: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// A stored value is not a valid archive of the requested type.
    #[error("value at {file} offset {offset} is not a valid archive: {reason}")]
    Archive {
        /// The file the value came from (or `memory`).
        file: String,
        /// Offset of the frame.
        offset: u64,
        /// The validator's message.
        reason: String,
    },
    /// A value could not be serialized.
    #[error("serialization failed: {reason}")]
    Serialize {
        /// The serializer's message.
        reason: String,
    },
}

impl StorageError {
    /// Builds an [`StorageError::Io`].
    pub(crate) fn io(op: &'static str, file: &str, offset: u64, source: io::Error) -> Self {
        Self::Io {
            op,
            file: file.to_owned(),
            offset,
            source,
        }
    }

    /// Builds a [`StorageError::Corrupt`].
    pub(crate) fn corrupt(file: &str, offset: u64, reason: impl Into<String>) -> Self {
        Self::Corrupt {
            file: file.to_owned(),
            offset,
            reason: reason.into(),
        }
    }

    /// True for errors that mean bytes on disk failed a check.
    pub fn is_corruption(&self) -> bool {
        matches!(self, Self::Corrupt { .. } | Self::SegmentMissing { .. })
    }
}
