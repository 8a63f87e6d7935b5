//! Restoring from a savepoint: what one shard of the new job takes from it, and the copy of a
//! shard's store into a state file when a savepoint is taken.
//!
//! A new shard owns the key groups `key_group_range(shard, max_key_groups, shards)`; since every
//! key group's bytes are self-contained (`state::snapshot`), it takes exactly the groups of its
//! range from every old shard's state file, whatever the old shard count. Every state file it
//! reads is verified whole against the savepoint manifest first.

use std::path::{Path, PathBuf};

use corestrom_storage::Store;

use crate::checkpoint::savepoint::state_file::{self, OperatorGroups};
use crate::checkpoint::savepoint::{SavepointError, SavepointManifest, StateFileRef, io};
use crate::checkpoint::state_store::read_all;

/// A savepoint a job restores from.
#[derive(Debug)]
pub struct Savepoint {
    /// Its directory.
    pub dir: PathBuf,
    /// Its verified manifest.
    pub manifest: SavepointManifest,
}

impl Savepoint {
    /// Reads and verifies the manifest of the savepoint in `dir`.
    ///
    /// # Errors
    /// No savepoint there, or a corrupt manifest (naming the file).
    pub fn open(dir: &Path) -> Result<Savepoint, SavepointError> {
        Ok(Savepoint {
            dir: dir.to_path_buf(),
            manifest: super::read(dir)?,
        })
    }

    /// True when the job that took it kept keyed state.
    pub fn has_keyed_state(&self) -> bool {
        !self.manifest.state_files.is_empty()
    }

    /// The state of key groups `[start, end)`, from every state file, per operator.
    ///
    /// # Errors
    /// A state file that cannot be read or does not verify (the error names it).
    pub fn key_groups(&self, start: u32, end: u32) -> Result<Vec<OperatorGroups>, SavepointError> {
        let mut taken: Vec<OperatorGroups> = Vec::new();
        for entry in &self.manifest.state_files {
            // A file whose range does not meet ours holds nothing for us.
            if entry.key_groups.1 <= start || end <= entry.key_groups.0 {
                continue;
            }
            for operator in self.read_file(entry)? {
                let groups = operator
                    .groups
                    .into_iter()
                    .filter(|g| (start..end).contains(&g.key_group));
                match taken.iter_mut().find(|o| o.operator == operator.operator) {
                    Some(o) if o.key == operator.key => o.groups.extend(groups),
                    Some(o) => {
                        return Err(SavepointError::Corrupt {
                            path: state_file::path(&self.dir, entry),
                            reason: format!(
                                "node {} is '{}' here and '{}' in another state file",
                                operator.operator, operator.key, o.key
                            ),
                        });
                    }
                    None => taken.push(OperatorGroups {
                        groups: groups.collect(),
                        ..operator
                    }),
                }
            }
        }
        for operator in &mut taken {
            operator.groups.sort_by_key(|g| g.key_group);
        }
        Ok(taken)
    }

    /// Reads and verifies every state file.
    ///
    /// # Errors
    /// The first file that cannot be read or does not verify (named).
    pub fn verify(&self) -> Result<(), SavepointError> {
        for entry in &self.manifest.state_files {
            self.read_file(entry)?;
        }
        Ok(())
    }

    fn read_file(&self, entry: &StateFileRef) -> Result<Vec<OperatorGroups>, SavepointError> {
        let path = state_file::path(&self.dir, entry);
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        state_file::decode(&path, entry, &bytes)
    }
}

/// Copies the live state of `operators` (`node:name` keys) in `store` into shard `shard`'s
/// state file in savepoint directory `dir`. Called right after the shard sealed the savepoint's
/// checkpoint and before it acknowledges it: the store is cumulative, so its live entries are
/// exactly the state at the sealed position (nothing writes to it until the next checkpoint,
/// which the coordinator triggers only after this one completed).
///
/// The file is written with blocking I/O on the shard thread: a savepoint is rare and
/// explicit, and a stall of the shard while it writes is the price of a self-contained copy.
///
/// # Errors
/// A store read or the file write failed.
pub async fn capture_shard_state(
    store: &Store,
    store_dir: &Path,
    operators: &[String],
    dir: &Path,
    shard: usize,
    key_groups: (u32, u32),
) -> Result<StateFileRef, String> {
    let mut nodes = Vec::with_capacity(operators.len());
    for key in operators {
        let node = key
            .split_once(':')
            .and_then(|(id, _)| id.parse::<u32>().ok())
            .ok_or_else(|| format!("bad operator key '{key}'"))?;
        nodes.push((node, key.clone()));
    }
    let (restored, _chunks) = read_all(store, store_dir, &nodes)
        .await
        .map_err(|e| e.to_string())?;
    let groups: Vec<OperatorGroups> = restored
        .into_operators()
        .into_iter()
        .map(|(operator, key, groups)| OperatorGroups {
            operator,
            key,
            groups,
        })
        .collect();
    state_file::write(dir, shard, key_groups, &groups).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoint::manifest::Manifest;
    use crate::state::snapshot::KeyGroupState;

    fn groups(operator: u32, range: std::ops::Range<u32>) -> OperatorGroups {
        OperatorGroups {
            operator,
            key: format!("{operator}:op"),
            groups: range
                .map(|g| KeyGroupState {
                    key_group: g,
                    bytes: vec![g as u8; 3],
                })
                .collect(),
        }
    }

    /// State written by 4 shards is taken by 3 new ones: every group exactly once, by the shard
    /// whose range holds it.
    #[test]
    fn new_shards_take_exactly_their_key_groups() {
        let dir = tempfile::tempdir().expect("dir");
        let max = 16u32;
        let old = 4;
        let state_files = (0..old)
            .map(|s| {
                let range = crate::hash::key_group_range(s, max, old);
                state_file::write(
                    dir.path(),
                    s,
                    (range.start, range.end),
                    &[groups(2, range.clone()), groups(9, range)],
                )
                .expect("write")
            })
            .collect();
        let savepoint = Savepoint {
            dir: dir.path().to_path_buf(),
            manifest: SavepointManifest {
                checkpoint: Manifest {
                    checkpoint: 1,
                    finished: false,
                    shards: old,
                    max_key_groups: max,
                    created_ms: 0,
                    per_shard: Vec::new(),
                },
                state_files,
            },
        };
        let mut seen = Vec::new();
        for shard in 0..3 {
            let range = crate::hash::key_group_range(shard, max, 3);
            for operator in savepoint.key_groups(range.start, range.end).expect("load") {
                for g in operator.groups {
                    assert!(range.contains(&g.key_group));
                    assert_eq!(g.bytes, vec![g.key_group as u8; 3]);
                    seen.push((operator.operator, g.key_group));
                }
            }
        }
        seen.sort_unstable();
        let expected: Vec<(u32, u32)> = [2, 9]
            .into_iter()
            .flat_map(|o| (0..max).map(move |g| (o, g)))
            .collect();
        assert_eq!(seen, expected);
        // A damaged file is named.
        let file = dir.path().join(state_file::file_name(2));
        let mut bytes = std::fs::read(&file).expect("read");
        bytes[20] ^= 1;
        std::fs::write(&file, bytes).expect("write");
        let error = savepoint.key_groups(0, max).expect_err("corrupt");
        assert!(error.to_string().contains("state-00002.kgs"), "{error}");
    }
}
