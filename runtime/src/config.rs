//! A job's runtime configuration and its validation.

use std::time::Duration;

use crate::constants::*;
use crate::error::JobError;

/// Whether shard threads are pinned to cores.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pinning {
    /// Pin shard `i` to the `i`-th core this process may run on, when there are at least as
    /// many cores as shards; otherwise leave the placement to the OS.
    Auto,
    /// Never pin.
    Off,
}

/// Runtime settings of one job.
#[derive(Clone, Debug)]
pub struct JobConfig {
    /// Number of shards (threads, each with its own executor). Default: available cores.
    pub shards: usize,
    /// Key groups for `key_by` (at least `shards`; the unit of rescaling).
    pub max_key_groups: u32,
    /// Records per batch when a batch leaves because it is full.
    pub batch_records: usize,
    /// Messages (batches or signals) per SPSC ring.
    pub ring_capacity: usize,
    /// How long a partial batch may wait before it leaves anyway (Flink's buffer timeout).
    pub max_batch_delay: Duration,
    /// How long an idle shard polls before it parks its thread.
    pub spin_before_park: Duration,
    /// Core pinning.
    pub pinning: Pinning,
    /// Checkpointing (exactly-once), off when `None`.
    pub checkpoint: Option<crate::checkpoint::CheckpointConfig>,
    /// Splits of every source, read round robin by the shards (`crate::splits`). `None`: the
    /// shard count when the job first starts; a restored job keeps its checkpoint's count.
    pub source_splits: Option<usize>,
}

impl Default for JobConfig {
    fn default() -> Self {
        JobConfig {
            shards: available_cores(),
            max_key_groups: MAX_KEY_GROUPS_DEFAULT,
            batch_records: BATCH_RECORDS_DEFAULT,
            ring_capacity: RING_CAPACITY_DEFAULT,
            max_batch_delay: MAX_BATCH_DELAY_DEFAULT,
            spin_before_park: SPIN_BEFORE_PARK_DEFAULT,
            pinning: Pinning::Auto,
            checkpoint: None,
            source_splits: None,
        }
    }
}

impl JobConfig {
    /// Checks every bound; the error says which setting is wrong and why.
    ///
    /// # Errors
    /// `JobError::Config` naming the setting.
    pub fn validate(&self) -> Result<(), JobError> {
        let fail = |m: String| Err(JobError::Config(m));
        if self.shards == 0 || self.shards > SHARDS_MAX {
            return fail(format!(
                "shards must be in 1..={SHARDS_MAX}, got {}",
                self.shards
            ));
        }
        if self.max_key_groups == 0 || self.max_key_groups > MAX_KEY_GROUPS_MAX {
            return fail(format!(
                "max_key_groups must be in 1..={MAX_KEY_GROUPS_MAX}, got {}",
                self.max_key_groups
            ));
        }
        if (self.max_key_groups as usize) < self.shards {
            return fail(format!(
                "max_key_groups ({}) must be at least the number of shards ({})",
                self.max_key_groups, self.shards
            ));
        }
        if self.batch_records == 0 || self.batch_records > BATCH_RECORDS_MAX {
            return fail(format!(
                "batch_records must be in 1..={BATCH_RECORDS_MAX}, got {}",
                self.batch_records
            ));
        }
        if self.ring_capacity < 2 || self.ring_capacity > RING_CAPACITY_MAX {
            return fail(format!(
                "ring_capacity must be in 2..={RING_CAPACITY_MAX}, got {}",
                self.ring_capacity
            ));
        }
        if let Some(splits) = self.source_splits
            && (splits == 0 || splits > SOURCE_SPLITS_MAX)
        {
            return fail(format!(
                "source_splits must be in 1..={SOURCE_SPLITS_MAX}, got {splits}"
            ));
        }
        if let Some(checkpoint) = &self.checkpoint
            && checkpoint.interval < std::time::Duration::from_millis(1)
        {
            return fail(format!(
                "checkpoint interval must be at least 1 ms, got {:?}",
                checkpoint.interval
            ));
        }
        Ok(())
    }
}

/// The CPUs this process may run on, in order (from its affinity mask).
pub fn allowed_cpus() -> Vec<usize> {
    // SAFETY: `cpu_set_t` is plain data for which all-zero is a valid (empty) value, and
    // `sched_getaffinity` writes at most `size_of::<cpu_set_t>()` bytes into it.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: pid 0 is the calling thread; the pointer and size describe `set` exactly.
    let rc =
        unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect();
    }
    (0..libc::CPU_SETSIZE as usize)
        // SAFETY: `cpu` is below CPU_SETSIZE, the bound of `set`.
        .filter(|&cpu| unsafe { libc::CPU_ISSET(cpu, &set) })
        .collect()
}

/// Number of cores this process may run on.
pub fn available_cores() -> usize {
    allowed_cpus().len().max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        JobConfig::default().validate().expect("default config");
        assert!(!allowed_cpus().is_empty());
    }

    #[test]
    fn bad_settings_name_the_setting() {
        let c = JobConfig {
            shards: 0,
            ..JobConfig::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("shards"));
        let c = JobConfig {
            shards: 8,
            max_key_groups: 4,
            ..JobConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("max_key_groups")
        );
        let c = JobConfig {
            ring_capacity: 1,
            ..JobConfig::default()
        };
        assert!(
            c.validate()
                .unwrap_err()
                .to_string()
                .contains("ring_capacity")
        );
    }
}
