//! Every default and bound of the runtime in one place, with the relations between them checked
//! at compile time.
//!
//! A default here is what `JobConfig::default()` uses; a `*_MAX` is a hard limit that the config
//! validation enforces, so that every queue, batch and loop in the runtime has a bound.

use std::time::Duration;

/// Records per batch when a batch leaves because it is full.
pub const BATCH_RECORDS_DEFAULT: usize = 1024;
/// Upper bound on `batch_records`: a larger batch only adds latency and cache misses.
pub const BATCH_RECORDS_MAX: usize = 1 << 16;

/// Batches (or control elements) one SPSC ring holds before its producer must wait.
pub const RING_CAPACITY_DEFAULT: usize = 32;
/// Upper bound on `ring_capacity`: memory per exchange grows with shards² × this.
pub const RING_CAPACITY_MAX: usize = 1 << 12;

/// Default number of key groups, Flink's default max parallelism for small jobs.
pub const MAX_KEY_GROUPS_DEFAULT: u32 = 128;
/// Upper bound on key groups (Flink's limit too).
pub const MAX_KEY_GROUPS_MAX: u32 = 1 << 15;

/// Upper bound on shards of one job.
pub const SHARDS_MAX: usize = 256;

/// Most source splits of a job (each is one reader on some shard).
pub const SOURCE_SPLITS_MAX: usize = 4096;

/// Records one poll of a shard's source reads from one split while the shard reads several
/// (`splits::MultiSplitReader`): bounds how far apart in event time its splits drift.
pub const SPLIT_POLL_RECORDS: usize = 64;

/// How long a partial batch may wait in an exchange buffer before it leaves anyway.
pub const MAX_BATCH_DELAY_DEFAULT: Duration = Duration::from_micros(100);

/// How long an idle shard keeps polling before it parks its thread.
pub const SPIN_BEFORE_PARK_DEFAULT: Duration = Duration::from_micros(50);

/// The longest a parked shard sleeps without being woken; a safety net only, since producers wake
/// a parked consumer whenever they hand it data.
pub const PARK_MAX: Duration = Duration::from_millis(1);

/// How often an idle source tells its chain that time passes (for idleness detection).
pub const IDLE_TICK_INTERVAL: Duration = Duration::from_millis(5);

/// Batches a receiver takes from one channel per loop turn, so one busy channel cannot starve
/// the others or the shard's sources.
pub const RECEIVE_BATCHES_PER_TURN: usize = 8;

const _: () = assert!(BATCH_RECORDS_DEFAULT <= BATCH_RECORDS_MAX);
const _: () = assert!(RING_CAPACITY_DEFAULT <= RING_CAPACITY_MAX);
const _: () = assert!(RING_CAPACITY_DEFAULT >= 2);
const _: () = assert!(MAX_KEY_GROUPS_DEFAULT <= MAX_KEY_GROUPS_MAX);
const _: () = assert!(RECEIVE_BATCHES_PER_TURN <= RING_CAPACITY_DEFAULT);
