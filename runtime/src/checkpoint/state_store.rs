//! One shard's keyed state in its log-structured store (`corestrom-storage`): what a checkpoint
//! writes, and what a restarted job reads back.
//!
//! At checkpoint `n` every stateful operator instance of the shard hands over its keyed state as
//! bytes per key group (`state::snapshot`). The shard puts each (operator, key group) into the
//! store, seals it (the synchronous part is O(1)), and acknowledges `n` to the coordinator only
//! when the seal is durable (fdatasync done), with the sealed position in its part of the
//! manifest. A restarted job opens the store at the manifest's position (every frame up to it
//! is crc-verified, anything after it is cut off) and hands each operator its key groups.
//!
//! Layout in the store: key `(operator = node id, key group, key = operator name, namespace =
//! chunk index u32 LE)`. A group's bytes are split into chunks of at most [`CHUNK_BYTES`]
//! (frames are bounded); chunk 0 starts with the chunk count (u32 LE). Groups without state
//! have no entry; chunks a smaller snapshot no longer uses are deleted, so the live entries
//! always hold exactly the last snapshot.
//!
//! The store is cumulative: a checkpoint writes only the groups its operators list, and a group
//! not listed keeps the entries of its last write. What a group's absence means depends on the
//! operator state's [`Coverage`]: with `Full` (every group with state listed) an absent group
//! that has entries became empty and its entries are deleted; with `Dirty` (only the groups
//! written since the previous checkpoint listed) an absent group is unchanged, and a listed
//! group with empty bytes became empty and is deleted. Either way the live entries at a sealed
//! position are exactly every operator's state at that checkpoint.
//!
//! Retention: every seal retains its position in the store (segments it names are not deleted
//! by compaction) until `retained` newer checkpoints are complete.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use corestrom_storage::{
    KeyGroup, OperatorId, Position, Prefix, ScanEntry, StateKey, Store, StoreConfig,
};

use crate::checkpoint::CheckpointControl;
use crate::checkpoint::manifest::{ShardSnapshot, StoreSnapshot, hex_decode, hex_encode};
use crate::error::JobError;
use crate::state::snapshot::{Coverage, KeyGroupState, OperatorState};

/// Largest chunk of one key group's bytes in one store entry (a frame holds at most 512 KiB).
pub const CHUNK_BYTES: usize = 256 << 10;
/// Directory, under the state directory, of the shards' stores.
pub const STORE_DIR: &str = "stores";
/// How often the shard's compactor looks for segments to rewrite.
const COMPACTION_PERIOD: Duration = Duration::from_secs(1);

/// The store directory of `shard`, relative to the state directory.
pub fn shard_store_dir(shard: usize) -> String {
    format!("{STORE_DIR}/shard-{shard}")
}

/// Keyed state restored for the operators of one shard, by node id.
#[derive(Debug, Default)]
pub struct RestoredState {
    by_operator: HashMap<u32, (String, Vec<KeyGroupState>)>,
}

impl RestoredState {
    /// The key groups restored for operator `node` named `name` (empty if it had no state).
    ///
    /// # Errors
    /// The state under this node id belongs to an operator of another name: the job graph
    /// changed since the checkpoint.
    pub fn take(&mut self, node: u32, name: &str) -> Result<Vec<KeyGroupState>, String> {
        match self.by_operator.remove(&node) {
            None => Ok(Vec::new()),
            Some((stored, groups)) if stored == name => Ok(groups),
            Some((stored, _)) => Err(format!(
                "the checkpoint holds state of operator '{stored}' for node {node}, which is '{name}' \
                 in this job: restore a checkpoint of the same job graph"
            )),
        }
    }

    /// Operators whose state no node of this job took (reported as an error after building).
    pub fn leftover(&self) -> Vec<String> {
        self.by_operator.values().map(|(n, _)| n.clone()).collect()
    }

    /// Restored state from (node id, `node:name` key, key groups) triples (a savepoint's).
    pub(crate) fn from_operators(operators: Vec<(u32, String, Vec<KeyGroupState>)>) -> Self {
        RestoredState {
            by_operator: operators
                .into_iter()
                .map(|(node, key, groups)| (node, (key, groups)))
                .collect(),
        }
    }

    /// The (node id, key, key groups) triples, by node id.
    pub(crate) fn into_operators(self) -> Vec<(u32, String, Vec<KeyGroupState>)> {
        let mut operators: Vec<_> = self
            .by_operator
            .into_iter()
            .map(|(node, (key, groups))| (node, key, groups))
            .collect();
        operators.sort_by_key(|(node, _, _)| *node);
        operators
    }
}

/// A seal whose fsync failed, reported by the durability task to the shard loop.
type Failure = Rc<RefCell<Option<String>>>;

/// The shard's store and the bookkeeping of what it holds.
pub struct ShardStateStore {
    store: Store,
    dir: Rc<str>,
    /// Chunks currently live per (operator, key group), to delete the unused ones.
    chunks: Rc<RefCell<HashMap<(u32, u32), u32>>>,
    /// Positions retained for checkpoints, oldest first.
    positions: Rc<RefCell<VecDeque<(u64, Position)>>>,
    failure: Failure,
    /// Checkpoints being written or sealed (0 or 1: one checkpoint is in flight at a time).
    in_flight: Rc<RefCell<usize>>,
    _compactor: glommio::task::JoinHandle<corestrom_storage::Result<()>>,
}

fn store_error(what: &str, dir: &Path, e: impl std::fmt::Display) -> JobError {
    JobError::Checkpoint(format!("{what} keyed-state store {}: {e}", dir.display()))
}

/// Why a shard's store cannot be opened at a checkpoint's position.
#[derive(Debug)]
pub enum StoreVerifyError {
    /// The bytes the position names do not verify (crc, a missing or short segment, a position
    /// that does not decode): an older checkpoint may still be intact.
    Corrupt(String),
    /// Anything else (I/O, permissions): no other checkpoint would fare better.
    Fatal(JobError),
}

/// A shard's store verified at the position of the checkpoint it restarts from (or about to be
/// created empty), not opened yet: no file has changed (see `corestrom_storage::VerifiedStore`).
pub struct VerifiedShardStore {
    path: PathBuf,
    dir: String,
    /// `None`: the job starts without a checkpoint and the store is created empty.
    verified: Option<(u64, Position, corestrom_storage::VerifiedStore)>,
    /// The operators' state read back while verifying (every value's frame crc-checked).
    restored: RestoredState,
    /// Chunks per (operator, key group) of that state.
    chunks: HashMap<(u32, u32), u32>,
}

impl VerifiedShardStore {
    /// Verifies `shard`'s store under `state_dir` at the position `restore` names (every frame
    /// up to it is crc-checked); with no `restore` there is nothing to verify.
    ///
    /// # Errors
    /// [`StoreVerifyError::Corrupt`] naming the file and offset, or a fatal I/O error.
    pub async fn verify(
        state_dir: &Path,
        shard: usize,
        restore: Option<(u64, &StoreSnapshot)>,
    ) -> Result<Self, StoreVerifyError> {
        let dir = shard_store_dir(shard);
        let path: PathBuf = state_dir.join(&dir);
        let fatal = |what: &str, e: &dyn std::fmt::Display| {
            StoreVerifyError::Fatal(store_error(what, &path, e))
        };
        std::fs::create_dir_all(&path).map_err(|e| fatal("creating", &e))?;
        let Some((checkpoint, snapshot)) = restore else {
            return Ok(VerifiedShardStore {
                path,
                dir,
                verified: None,
                restored: RestoredState::default(),
                chunks: HashMap::new(),
            });
        };
        let corrupt = |e: &dyn std::fmt::Display| {
            StoreVerifyError::Corrupt(store_error("restoring", &path, e).to_string())
        };
        let bytes = hex_decode(&snapshot.position)
            .ok_or_else(|| corrupt(&"the manifest's store position is not hex"))?;
        let position = Position::from_bytes(&bytes).map_err(|e| corrupt(&e))?;
        let mut operators = Vec::new();
        for key in &snapshot.operators {
            let node = key
                .split_once(':')
                .and_then(|(id, _)| id.parse::<u32>().ok())
                .ok_or_else(|| corrupt(&format!("bad operator key '{key}'")))?;
            operators.push((node, key.clone()));
        }
        let verified = match Store::verify(&path, StoreConfig::default(), &position).await {
            Ok(verified) => verified,
            Err(e) if e.is_corruption() => return Err(corrupt(&e)),
            Err(e) => return Err(fatal("restoring", &e)),
        };
        // Opening from an index file leaves the frames it covers unread; the state to restore
        // is read (and crc-checked) now, so a corrupt value still sends the job to an older
        // checkpoint instead of failing it after the cut.
        let (restored, chunks) = read_all(&verified, &path, &operators)
            .await
            .map_err(|e| StoreVerifyError::Corrupt(e.to_string()))?;
        Ok(VerifiedShardStore {
            path,
            dir,
            verified: Some((checkpoint, position, verified)),
            restored,
            chunks,
        })
    }

    /// What verification read: frames and bytes (`None` for a store to be created empty).
    pub fn report(&self) -> Option<&corestrom_storage::RecoveryReport> {
        self.verified.as_ref().map(|(_, _, v)| v.report())
    }

    /// Opens the verified store (cutting what follows the position), handing back the state
    /// read while verifying, or creates the store empty.
    ///
    /// # Errors
    /// I/O, or restored bytes that do not decode.
    pub async fn open(self) -> Result<(ShardStateStore, RestoredState), JobError> {
        let VerifiedShardStore {
            path,
            dir,
            verified,
            restored,
            chunks,
        } = self;
        let mut positions = VecDeque::new();
        let store = match verified {
            None => Store::create(&path, StoreConfig::default())
                .await
                .map_err(|e| store_error("creating", &path, e))?,
            Some((checkpoint, position, verified)) => {
                let (store, _report) = verified
                    .open()
                    .await
                    .map_err(|e| store_error("restoring", &path, e))?;
                // `open` retained the position; it is released like a sealed one.
                positions.push_back((checkpoint, position));
                store
            }
        };
        let compactor = store.spawn_compactor(COMPACTION_PERIOD);
        Ok((
            ShardStateStore {
                store,
                dir: dir.into(),
                chunks: Rc::new(RefCell::new(chunks)),
                positions: Rc::new(RefCell::new(positions)),
                failure: Rc::default(),
                in_flight: Rc::default(),
                _compactor: compactor,
            },
            restored,
        ))
    }
}

impl ShardStateStore {
    /// True while a checkpoint's state is being written or its seal's fsync is in flight (the
    /// loop must not park the thread, or the I/O completions would wait for the next wake-up).
    pub fn durability_pending(&self) -> bool {
        *self.in_flight.borrow() > 0
    }

    /// The error of a failed seal, if any: the job must fail (fail-stop).
    pub fn failure(&self) -> Option<String> {
        self.failure.borrow().clone()
    }

    /// Starts writing checkpoint `id`'s state in a task of its own, so the shard keeps
    /// processing while the store takes the bytes: put every (operator, key group), seal, and
    /// acknowledge `id` with `snapshot` once the seal is durable. A failure is kept for
    /// [`ShardStateStore::failure`].
    pub fn persist(
        &mut self,
        id: u64,
        snapshot: ShardSnapshot,
        state: Vec<OperatorState>,
        control: Arc<CheckpointControl>,
    ) {
        *self.in_flight.borrow_mut() += 1;
        let job = PersistJob {
            store: self.store.clone(),
            dir: Rc::clone(&self.dir),
            chunks: Rc::clone(&self.chunks),
            positions: Rc::clone(&self.positions),
        };
        let failure = Rc::clone(&self.failure);
        let in_flight = Rc::clone(&self.in_flight);
        glommio::spawn_local(async move {
            if let Err(e) = job.run(id, snapshot, state, control).await {
                *failure.borrow_mut() = Some(e);
            }
            *in_flight.borrow_mut() -= 1;
        })
        .detach();
    }

    /// Releases the positions of checkpoints no retained manifest names any more: all but the
    /// newest `retained` complete ones (the checkpoint in flight stays).
    pub fn release_completed(&mut self, completed: u64, retained: usize) {
        let mut positions = self.positions.borrow_mut();
        let complete = positions.iter().filter(|(id, _)| *id <= completed).count();
        let mut excess = complete.saturating_sub(retained.max(1));
        while excess > 0 {
            let Some((_, position)) = positions.pop_front() else {
                break;
            };
            self.store.release(&position);
            excess -= 1;
        }
    }
}

impl ShardStateStore {
    /// Writes restored state into a fresh store (a savepoint's key groups of this shard), in
    /// the entry layout checkpoints use, so that the store holds it like state it checkpointed
    /// itself: later checkpoints need not rewrite groups that did not change.
    ///
    /// # Errors
    /// A store write failed.
    pub async fn seed(&mut self, state: &[OperatorState]) -> Result<(), JobError> {
        assert!(
            self.chunks.borrow().is_empty(),
            "only a fresh store is seeded"
        );
        let path = PathBuf::from(&*self.dir);
        for operator in state {
            for group in operator.groups.iter() {
                let chunks = chunk(&group.bytes);
                let count = chunks.len() as u32;
                for (index, bytes) in chunks.iter().enumerate() {
                    let namespace = (index as u32).to_le_bytes();
                    let key = state_key(operator, group.key_group, &namespace);
                    let value = if index == 0 {
                        [count.to_le_bytes().as_slice(), bytes].concat()
                    } else {
                        bytes.to_vec()
                    };
                    self.store
                        .put(key, &value)
                        .await
                        .map_err(|e| store_error("seeding", &path, e))?;
                }
                self.chunks
                    .borrow_mut()
                    .insert((operator.operator, group.key_group), count);
            }
        }
        Ok(())
    }
}

/// What the task writing one checkpoint's state shares with the shard's store.
struct PersistJob {
    store: Store,
    dir: Rc<str>,
    chunks: Rc<RefCell<HashMap<(u32, u32), u32>>>,
    positions: Rc<RefCell<VecDeque<(u64, Position)>>>,
}

impl PersistJob {
    async fn run(
        self,
        id: u64,
        mut snapshot: ShardSnapshot,
        state: Vec<OperatorState>,
        control: Arc<CheckpointControl>,
    ) -> Result<(), String> {
        let fail = |e: corestrom_storage::StorageError| {
            format!("checkpoint {id}: writing keyed state to {}: {e}", self.dir)
        };
        for operator in &state {
            for group in operator.groups.iter() {
                // Empty bytes (a `Dirty` group that became empty) give no chunk: every chunk
                // the group had is deleted below.
                let chunks = chunk(&group.bytes);
                let count = chunks.len() as u32;
                let slot = (operator.operator, group.key_group);
                let before = self.chunks.borrow().get(&slot).copied().unwrap_or(0);
                for (index, bytes) in chunks.iter().enumerate() {
                    let namespace = (index as u32).to_le_bytes();
                    let key = state_key(operator, group.key_group, &namespace);
                    if index == 0 {
                        let mut first = Vec::with_capacity(4 + bytes.len());
                        first.extend_from_slice(&count.to_le_bytes());
                        first.extend_from_slice(bytes);
                        self.store.put(key, &first).await.map_err(fail)?;
                    } else {
                        self.store.put(key, bytes).await.map_err(fail)?;
                    }
                }
                for index in count..before {
                    let namespace = index.to_le_bytes();
                    let key = state_key(operator, group.key_group, &namespace);
                    self.store.delete(key).await.map_err(fail)?;
                }
                if count == 0 {
                    self.chunks.borrow_mut().remove(&slot);
                } else {
                    self.chunks.borrow_mut().insert(slot, count);
                }
            }
        }
        // Key groups of `Full` operators that had state at the previous checkpoint and have
        // none now: delete their chunks, or a restart would bring the old state back. (A
        // `Dirty` operator's absent groups are unchanged.)
        let written: HashSet<(u32, u32)> = state
            .iter()
            .flat_map(|o| o.groups.iter().map(move |g| (o.operator, g.key_group)))
            .collect();
        let emptied: Vec<((u32, u32), u32)> = self
            .chunks
            .borrow()
            .iter()
            .filter(|(slot, _)| !written.contains(slot))
            .map(|(slot, count)| (*slot, *count))
            .collect();
        for ((operator, key_group), count) in emptied {
            let Some(owner) = state
                .iter()
                .find(|o| o.operator == operator && o.coverage == Coverage::Full)
            else {
                continue;
            };
            for index in 0..count {
                let namespace = index.to_le_bytes();
                let key = state_key(owner, key_group, &namespace);
                self.store.delete(key).await.map_err(fail)?;
            }
            self.chunks.borrow_mut().remove(&(operator, key_group));
        }
        crate::checkpoint::fault::hit("state.before_seal");
        let sealing = self.store.seal().map_err(fail)?;
        let position = sealing.position().clone();
        snapshot.store = Some(StoreSnapshot {
            dir: self.dir.to_string(),
            position: hex_encode(&position.to_bytes()),
            operators: state.iter().map(|o| o.name.clone()).collect(),
        });
        self.positions.borrow_mut().push_back((id, position));
        sealing
            .durable()
            .await
            .map_err(|e| format!("checkpoint {id}: sealing keyed state: {e}"))?;
        crate::checkpoint::fault::hit("state.after_fsync");
        // A savepoint copies the state at the sealed position before the acknowledgement
        // (see `savepoint`); a failed copy fails the savepoint, not the job.
        if let Some(dir) = control.savepoint_dir(id) {
            let store_dir = Path::new(&*self.dir);
            let operators = &snapshot.store.as_ref().expect("set above").operators;
            let (shard, groups) = (snapshot.shard, snapshot.key_groups);
            let file = crate::checkpoint::savepoint::load::capture_shard_state(
                &self.store,
                store_dir,
                operators,
                &dir,
                shard,
                groups,
            )
            .await;
            control.record_savepoint_state(id, file);
        }
        control.acknowledge(id, snapshot);
        Ok(())
    }
}

fn state_key<'a>(operator: &'a OperatorState, key_group: u32, namespace: &'a [u8]) -> StateKey<'a> {
    StateKey {
        operator: OperatorId(operator.operator),
        key_group: KeyGroup(u16::try_from(key_group).expect("key groups fit u16")),
        key: operator.name.as_bytes(),
        namespace,
    }
}

/// `bytes` in chunks of at most `CHUNK_BYTES` (none for empty bytes).
fn chunk(bytes: &[u8]) -> Vec<&[u8]> {
    bytes.chunks(CHUNK_BYTES).collect()
}

/// Reads every live entry back into operator state, checking the chunk structure.
/// A live entry read back from a shard's store.
type StoreEntry = ScanEntry<corestrom_storage::disk::GlommioDisk>;

/// What the state can be read back from: an open store, or one verified and not yet opened.
pub(crate) trait ScanState {
    /// Every live entry under `prefix`.
    async fn scan_state(&self, prefix: Prefix) -> corestrom_storage::Result<Vec<StoreEntry>>;
}

impl ScanState for Store {
    async fn scan_state(&self, prefix: Prefix) -> corestrom_storage::Result<Vec<StoreEntry>> {
        self.scan(prefix).await
    }
}

impl ScanState for corestrom_storage::VerifiedStore {
    async fn scan_state(&self, prefix: Prefix) -> corestrom_storage::Result<Vec<StoreEntry>> {
        self.scan(prefix).await
    }
}

pub(crate) async fn read_all(
    store: &impl ScanState,
    path: &Path,
    operators: &[(u32, String)],
) -> Result<(RestoredState, HashMap<(u32, u32), u32>), JobError> {
    let corrupt = |reason: String| store_error("restoring", path, reason);
    let mut restored = RestoredState::default();
    let mut chunks = HashMap::new();
    for (operator, key) in operators {
        let operator = *operator;
        let entries = store
            .scan_state(Prefix::Operator(OperatorId(operator)))
            .await
            .map_err(|e| store_error("restoring", path, e))?;
        // (key group) -> (name, chunk index -> bytes)
        let mut groups: std::collections::BTreeMap<u32, Vec<(u32, Vec<u8>)>> = Default::default();
        for entry in entries {
            if *entry.key != *key.as_bytes() {
                return Err(corrupt(format!(
                    "state of node {operator} is stored under '{}', the manifest names '{key}'",
                    String::from_utf8_lossy(&entry.key)
                )));
            }
            let index = <[u8; 4]>::try_from(&*entry.namespace)
                .map(u32::from_le_bytes)
                .map_err(|_| corrupt(format!("operator {operator}: bad chunk namespace")))?;
            groups
                .entry(u32::from(entry.key_group.0))
                .or_default()
                .push((index, entry.value.to_vec()));
        }
        let mut states = Vec::with_capacity(groups.len());
        for (key_group, mut parts) in groups {
            parts.sort_by_key(|(i, _)| *i);
            let first = parts.first().map(|(_, b)| b.as_slice()).unwrap_or_default();
            let count = first
                .get(..4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or_else(|| {
                    corrupt(format!(
                        "operator {operator} group {key_group}: chunk 0 missing"
                    ))
                })?;
            let indices: Vec<u32> = parts.iter().map(|(i, _)| *i).collect();
            if indices != (0..count).collect::<Vec<_>>() {
                return Err(corrupt(format!(
                    "operator {operator} group {key_group}: chunks {indices:?}, expected 0..{count}"
                )));
            }
            let mut bytes = Vec::new();
            for (i, part) in parts {
                bytes.extend_from_slice(if i == 0 { &part[4..] } else { &part });
            }
            chunks.insert((operator, key_group), count);
            states.push(KeyGroupState { key_group, bytes });
        }
        restored.by_operator.insert(operator, (key.clone(), states));
    }
    Ok((restored, chunks))
}

/// One shard's store checked at a checkpoint's position by [`verify_checkpoint_stores`].
#[derive(Debug)]
pub struct StoreCheck {
    /// The shard.
    pub shard: usize,
    /// Frames and bytes verified, or why the store does not verify at the position.
    pub outcome: Result<(u64, u64), String>,
}

/// Verifies, read-only, every shard's store at the positions `manifest` names (every frame up
/// to each position crc-checked; nothing cut or removed), on a glommio executor of its own: for
/// `corestrom checkpoints verify` and other tools outside a running job. Shards without keyed
/// state are skipped.
///
/// # Errors
/// The executor cannot start.
pub fn verify_checkpoint_stores(
    state_dir: &Path,
    manifest: &crate::checkpoint::Manifest,
) -> Result<Vec<StoreCheck>, JobError> {
    let state_dir = state_dir.to_path_buf();
    let manifest = manifest.clone();
    let spawned = glommio::LocalExecutorBuilder::default()
        .name("corestrom-verify")
        .spawn(move || async move {
            let mut checks = Vec::new();
            for (shard, snapshot) in manifest.per_shard.iter().enumerate() {
                let Some(store) = &snapshot.store else {
                    continue;
                };
                let restore = Some((manifest.checkpoint, store));
                let outcome = match VerifiedShardStore::verify(&state_dir, shard, restore).await {
                    Ok(verified) => Ok(verified.report().map_or((0, 0), |r| (r.frames, r.bytes))),
                    Err(StoreVerifyError::Corrupt(why)) => Err(why),
                    Err(StoreVerifyError::Fatal(e)) => Err(e.to_string()),
                };
                checks.push(StoreCheck { shard, outcome });
            }
            checks
        })
        .map_err(|e| JobError::Checkpoint(format!("starting a verification executor: {e}")))?;
    spawned
        .join()
        .map_err(|e| JobError::Checkpoint(format!("verification executor: {e}")))
}
