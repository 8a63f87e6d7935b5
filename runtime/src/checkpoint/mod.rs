//! Checkpoints by barriers flowing with the data (Chandy–Lamport as Flink does it), and the
//! exactly-once protocol built on them.
//!
//! 1. **Trigger.** Shard 0 (the coordinator) raises the triggered checkpoint id every
//!    `interval`. At the start of its next loop turn every shard injects `Barrier(n)` into all
//!    of its sources at once, recording each source's position, so no record emitted after the
//!    position precedes the barrier anywhere on the shard.
//! 2. **Alignment.** An exchange receiver that got `Barrier(n)` on a channel stops reading that
//!    channel (its data waits in the ring) until every open channel delivered `Barrier(n)`,
//!    then forwards one barrier. In-shard merges (union, two-input operators) hold back batches
//!    of an input that is past the barrier. (At-least-once mode forwards without blocking.)
//! 3. **Snapshot and pre-commit.** Each stateful operator, on `Barrier(n)`, either encodes its
//!    keyed state and timers per key group (`state::snapshot`) before forwarding the barrier,
//!    or, when it keeps its state in a `state::snapshot_map::SnapshotMap` (fold, reduce), only
//!    marks the key groups written since `n - 1`; the shard loop then encodes them between
//!    batches with copy-on-write, and the operator's part of `n` counts once encoded. Each
//!    sink, on `Barrier(n)`, makes what it wrote so far ready to commit
//!    (`SinkWriter::prepare_commit`) and records the transaction. When every sink and stateful
//!    operator of the shard has seen `n`, the shard puts the state into its log-structured store
//!    and seals it (`state_store`; O(1) synchronous part), and acknowledges `n` to the
//!    coordinator, with the sealed position, once the fsync is done. A job without keyed state
//!    has no store and acknowledges at once.
//! 4. **Complete.** When every shard acknowledged `n`, the coordinator writes the manifest
//!    (`manifest`), and only then is `n` complete: sinks commit `n`'s transactions.
//! 5. **End.** A sink whose input ended keeps what it wrote since its last barrier and
//!    prepares it with the next checkpoint its shard begins (it can no longer receive barriers).
//!    When every shard's inputs ended, the coordinator triggers a final checkpoint, marked
//!    `finished` in its manifest, that commits the rest.
//! 6. **Recovery.** A job started on a state directory with manifests resumes from the newest
//!    one that verifies and whose stores verify at the positions it names (every shard checks
//!    its own, read-only, and all agree: `restore`; a corrupt segment sends every shard to the
//!    previous retained checkpoint, and the newer manifests are renamed `*.rejected`). Sources
//!    seek to their positions, each shard opens its store at the recorded position (cutting
//!    what follows) and hands every stateful operator its key groups, sinks commit the recorded
//!    transactions (idempotently) and discard anything staged or committed after them.
//! 7. **Savepoints** (`savepoint`): a checkpoint taken on request whose state and positions
//!    are also copied into a directory of their own; a job restored from it may have another
//!    shard count (key-group ranges are reassigned, source splits stay).

pub mod align;
pub mod control;
pub mod fault;
pub mod manifest;
pub mod restore;
pub mod savepoint;
pub mod state_store;

use std::path::PathBuf;
use std::time::Duration;

pub use control::{CheckpointControl, ReadyCheckpoint, ShardCheckpoints, SnapshotPause};
pub use manifest::{Manifest, ManifestError, NamedBlob, ShardSnapshot, StoreSnapshot};

/// Whether barriers align (exactly-once) or pass through (at-least-once).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Guarantee {
    /// Aligned barriers: every record affects committed output exactly once.
    ExactlyOnce,
    /// Barriers do not block channels: after a recovery some records may count twice.
    AtLeastOnce,
}

/// Checkpoint settings of a job.
#[derive(Clone, Debug)]
pub struct CheckpointConfig {
    /// Time between checkpoint triggers.
    pub interval: Duration,
    /// Where manifests (and later the shards' stores) live.
    pub state_dir: PathBuf,
    /// Complete checkpoints kept; older manifests are deleted.
    pub retained: usize,
    /// Aligned or not.
    pub guarantee: Guarantee,
    /// Start from this savepoint when the state directory holds no checkpoint yet (a state
    /// directory with checkpoints resumes from them: they descend from the savepoint).
    pub from_savepoint: Option<PathBuf>,
}

impl CheckpointConfig {
    /// Checkpoints every `interval` into `state_dir`, exactly-once, keeping the last 3.
    pub fn new(interval: Duration, state_dir: impl Into<PathBuf>) -> Self {
        CheckpointConfig {
            interval,
            state_dir: state_dir.into(),
            retained: 3,
            guarantee: Guarantee::ExactlyOnce,
            from_savepoint: None,
        }
    }

    /// The directory of the manifests.
    pub fn manifest_dir(&self) -> PathBuf {
        self.state_dir.join(manifest::MANIFEST_DIR)
    }
}
