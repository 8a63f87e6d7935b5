//! A savepoint's state file: the keyed state of one shard of the job that took it, per
//! (operator, key group), read from the shard's store at the savepoint's checkpoint.
//!
//! ```text
//! offset 0   STATE_MAGIC (16 bytes, "corestrom-kgs-v1")
//! then       entries until the end of the file, each:
//!            u32 LE  operator node id
//!            u32 LE  key group
//!            u16 LE  length K, K bytes: the operator's key (`node:name`)
//!            u32 LE  length L, L bytes: the key group's state (`state::snapshot` bytes)
//! ```
//!
//! The savepoint manifest records the file's length and crc32; [`decode`] checks both before
//! it parses anything, so a damaged file is reported (naming it) and never partly used. Within
//! a file, an (operator, key group) appears at most once.

use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::checkpoint::savepoint::{SavepointError, StateFileRef, io};
use crate::state::snapshot::KeyGroupState;

/// First bytes of a state file.
pub const STATE_MAGIC: &[u8; 16] = b"corestrom-kgs-v1";
const _: () = assert!(STATE_MAGIC.len() == 16);

/// The state file name of old shard `shard`.
pub fn file_name(shard: usize) -> String {
    format!("state-{shard:05}.kgs")
}

/// One operator's key groups in a state file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorGroups {
    /// The operator's node id.
    pub operator: u32,
    /// Its key in manifests (`node:name`).
    pub key: String,
    /// Its key groups.
    pub groups: Vec<KeyGroupState>,
}

/// Encodes a shard's state.
pub fn encode(operators: &[OperatorGroups]) -> Vec<u8> {
    let mut bytes = STATE_MAGIC.to_vec();
    for operator in operators {
        let key = operator.key.as_bytes();
        let key_len = u16::try_from(key.len()).expect("operator keys are short");
        for group in &operator.groups {
            bytes.extend_from_slice(&operator.operator.to_le_bytes());
            bytes.extend_from_slice(&group.key_group.to_le_bytes());
            bytes.extend_from_slice(&key_len.to_le_bytes());
            bytes.extend_from_slice(key);
            let len = u32::try_from(group.bytes.len()).expect("a key group's state fits 4 GiB");
            bytes.extend_from_slice(&len.to_le_bytes());
            bytes.extend_from_slice(&group.bytes);
        }
    }
    bytes
}

/// Writes shard `shard`'s state file into `dir` (fsynced) and returns its manifest entry.
///
/// # Errors
/// I/O, naming the file.
pub fn write(
    dir: &Path,
    shard: usize,
    key_groups: (u32, u32),
    operators: &[OperatorGroups],
) -> Result<StateFileRef, SavepointError> {
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let name = file_name(shard);
    let path = dir.join(&name);
    let bytes = encode(operators);
    let mut file = std::fs::File::create(&path).map_err(io(&path))?;
    file.write_all(&bytes).map_err(io(&path))?;
    file.sync_all().map_err(io(&path))?;
    Ok(StateFileRef {
        shard,
        file: name,
        bytes: bytes.len() as u64,
        crc32: crc32fast::hash(&bytes),
        key_groups,
    })
}

/// Decodes a state file's bytes after checking them against the manifest's entry; `path`
/// names the file in errors.
///
/// # Errors
/// `Corrupt`: length or crc differ from the manifest's, bad magic, truncated entries, a group
/// outside the shard's range, or a duplicate (operator, key group).
pub fn decode(
    path: &Path,
    entry: &StateFileRef,
    bytes: &[u8],
) -> Result<Vec<OperatorGroups>, SavepointError> {
    let corrupt = |reason: String| SavepointError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.len() as u64 != entry.bytes {
        return Err(corrupt(format!(
            "{} bytes, the savepoint manifest says {}",
            bytes.len(),
            entry.bytes
        )));
    }
    let crc = crc32fast::hash(bytes);
    if crc != entry.crc32 {
        return Err(corrupt(format!(
            "crc32 {crc:08x}, the savepoint manifest says {:08x}",
            entry.crc32
        )));
    }
    let mut rest = bytes
        .strip_prefix(STATE_MAGIC.as_slice())
        .ok_or_else(|| corrupt("bad magic".into()))?;
    let mut operators: Vec<OperatorGroups> = Vec::new();
    let mut seen = HashSet::new();
    while !rest.is_empty() {
        let mut take = |n: usize| -> Result<&[u8], SavepointError> {
            let (head, tail) = rest
                .split_at_checked(n)
                .ok_or_else(|| corrupt("truncated entry".into()))?;
            rest = tail;
            Ok(head)
        };
        let operator = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let key_group = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
        let key_len = u16::from_le_bytes(take(2)?.try_into().expect("2 bytes")) as usize;
        let key = String::from_utf8(take(key_len)?.to_vec())
            .map_err(|_| corrupt(format!("operator {operator}: key is not UTF-8")))?;
        let len = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes")) as usize;
        let state = take(len)?.to_vec();
        if !(entry.key_groups.0..entry.key_groups.1).contains(&key_group) {
            return Err(corrupt(format!(
                "key group {key_group} lies outside the shard's range {:?}",
                entry.key_groups
            )));
        }
        if !seen.insert((operator, key_group)) {
            return Err(corrupt(format!(
                "operator {operator} key group {key_group} appears twice"
            )));
        }
        let group = KeyGroupState {
            key_group,
            bytes: state,
        };
        match operators.iter_mut().find(|o| o.operator == operator) {
            Some(o) if o.key == key => o.groups.push(group),
            Some(o) => {
                return Err(corrupt(format!(
                    "node {operator} is stored as '{}' and as '{key}'",
                    o.key
                )));
            }
            None => operators.push(OperatorGroups {
                operator,
                key,
                groups: vec![group],
            }),
        }
    }
    Ok(operators)
}

/// The path of `entry` in savepoint directory `dir`.
pub fn path(dir: &Path, entry: &StateFileRef) -> PathBuf {
    dir.join(&entry.file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<OperatorGroups> {
        vec![
            OperatorGroups {
                operator: 3,
                key: "3:window".into(),
                groups: vec![
                    KeyGroupState {
                        key_group: 4,
                        bytes: vec![1, 2, 3],
                    },
                    KeyGroupState {
                        key_group: 6,
                        bytes: vec![],
                    },
                ],
            },
            OperatorGroups {
                operator: 5,
                key: "5:fold".into(),
                groups: vec![KeyGroupState {
                    key_group: 7,
                    bytes: vec![9; 300],
                }],
            },
        ]
    }

    #[test]
    fn round_trip_and_every_flip_or_truncation_is_detected() {
        let dir = tempfile::tempdir().expect("dir");
        let entry = write(dir.path(), 1, (4, 8), &sample()).expect("write");
        let file = path(dir.path(), &entry);
        let bytes = std::fs::read(&file).expect("read");
        assert_eq!(decode(&file, &entry, &bytes).expect("valid"), sample());
        // The documented offsets: magic, then the first entry's fields.
        assert_eq!(&bytes[..16], STATE_MAGIC);
        assert_eq!(u32::from_le_bytes(bytes[16..20].try_into().unwrap()), 3);
        assert_eq!(u32::from_le_bytes(bytes[20..24].try_into().unwrap()), 4);
        assert_eq!(u16::from_le_bytes(bytes[24..26].try_into().unwrap()), 8);
        assert_eq!(&bytes[26..34], b"3:window");
        assert_eq!(u32::from_le_bytes(bytes[34..38].try_into().unwrap()), 3);
        for i in 0..bytes.len() {
            let mut bad = bytes.clone();
            bad[i] ^= 0x10;
            let error = decode(&file, &entry, &bad).expect_err("flip accepted");
            assert!(error.to_string().contains("state-00001.kgs"), "{error}");
        }
        for len in 0..bytes.len() {
            assert!(decode(&file, &entry, &bytes[..len]).is_err());
        }
    }

    #[test]
    fn groups_outside_the_range_or_twice_are_refused() {
        let outside = encode(&sample());
        let entry = StateFileRef {
            shard: 0,
            file: file_name(0),
            bytes: outside.len() as u64,
            crc32: crc32fast::hash(&outside),
            key_groups: (0, 4),
        };
        let error = decode(Path::new("f"), &entry, &outside).expect_err("outside");
        assert!(error.to_string().contains("outside"), "{error}");
        let mut twice = sample();
        let first = twice[0].groups[0].clone();
        twice[0].groups.push(first);
        let bytes = encode(&twice);
        let entry = StateFileRef {
            bytes: bytes.len() as u64,
            crc32: crc32fast::hash(&bytes),
            key_groups: (0, 8),
            ..entry
        };
        let error = decode(Path::new("f"), &entry, &bytes).expect_err("twice");
        assert!(error.to_string().contains("twice"), "{error}");
    }
}
