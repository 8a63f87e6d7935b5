//! corestrom-storage: each shard's own log-structured store for keyed state.
//!
//! One [`Store`] per shard, living on that shard's glommio executor (`!Send`). Keyed state is
//! addressed by [`StateKey`] `(operator, key group, key, namespace)`; values are bytes (rkyv
//! archives through [`TypedState`]).
//!
//! ```text
//!  put/delete ──► log.rs: frame into the aligned write buffer ──► writer task ──► segment files
//!       │                      │ flushed buffers stay as cache chunks        (O_DIRECT, io_uring)
//!       ▼                      ▼
//!  index.rs: key → (segment, offset, len)    cache.rs: chunks + cold values, memory budget
//!  get: index ─► active buffer / chunk / cold cache ─► segment.rs read + crc check
//!  seal(): O(1) flush + queued fdatasync ─► Position (+ Sealing future)
//!  open(position): recovery.rs verifies every crc, rebuilds the index, cuts the tail
//!  compact(): compaction.rs rewrites live entries of mostly-dead segments
//! ```
//!
//! Durability contract: data is durable once [`Sealing::durable`] returns `Ok`; opening at that
//! position yields exactly the state at the seal. A failed write or fsync fail-stops the store.
//! The byte format is in `FORMAT.md` and [`mod@format`]. All I/O goes through [`disk::Disk`];
//! [`disk_sim::SimDisk`] injects faults for tests.
//!
//! ```no_run
//! use corestrom_storage::{KeyGroup, OperatorId, StateKey, Store, StoreConfig};
//! glommio::LocalExecutorBuilder::default()
//!     .spawn(|| async move {
//!         let store = Store::create("/tmp/shard-0", StoreConfig::default()).await.unwrap();
//!         let key = StateKey { operator: OperatorId(1), key_group: KeyGroup(7), key: b"user-42", namespace: b"" };
//!         store.put(key, b"value").await.unwrap();
//!         let sealing = store.seal().unwrap(); // returns at once
//!         let position = sealing.durable().await.unwrap(); // after fdatasync
//!         drop(store);
//!         let (store, _report) = Store::open("/tmp/shard-0", StoreConfig::default(), &position).await.unwrap();
//!         assert_eq!(&*store.get(key).await.unwrap().unwrap(), b"value");
//!     })
//!     .unwrap()
//!     .join()
//!     .unwrap();
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::indexing_slicing))]
#![deny(unsafe_op_in_unsafe_fn)]

pub mod bounds;
mod cache;
mod compaction;
pub mod disk;
pub mod disk_sim;
mod error;
pub mod format;
mod ids;
mod index;
mod log;
mod recovery;
mod replay;
mod segment;
mod state;
mod store;

pub use cache::CacheStats;
pub use compaction::CompactionReport;
pub use error::{Result, StorageError};
pub use format::Position;
pub use ids::{KeyGroup, OperatorId, Prefix, SegmentId, StateKey};
pub use recovery::RecoveryReport;
pub use segment::TailState;
pub use state::{ArchivedRef, TypedState};
pub use store::{ScanEntry, Sealing, Store, StoreConfig, StoreStats, ValueRef, VerifiedStore};
