//! Per-shard counters and the end-to-end latency histogram, merged into the job's report.
//!
//! Sinks record, per batch, the time from its oldest record's emission at the source to its
//! arrival at the sink, weighted by the batch's record count: one histogram update per batch.

use hdrhistogram::Histogram;

/// Highest latency the histogram tracks exactly (60 s); larger values are clamped.
const LATENCY_MAX_NS: u64 = 60_000_000_000;

/// What one shard measured.
#[derive(Debug, Clone)]
pub struct ShardMetrics {
    /// Records emitted by sources on this shard.
    pub source_records: u64,
    /// Records that reached sinks on this shard.
    pub sink_records: u64,
    /// Source-to-sink latency in ns, one entry per record.
    pub latency_ns: Histogram<u64>,
    /// CPU time this shard's thread used, in ns.
    pub cpu_ns: u64,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            source_records: 0,
            sink_records: 0,
            latency_ns: Histogram::new_with_bounds(1, LATENCY_MAX_NS, 3).expect("valid bounds"),
            cpu_ns: 0,
        }
    }
}

impl ShardMetrics {
    /// Records that `count` records arrived `latency_ns` after their batch was emitted.
    #[inline]
    pub fn record_latency(&mut self, latency_ns: u64, count: u64) {
        let value = latency_ns.clamp(1, LATENCY_MAX_NS);
        // Cannot fail: the value is clamped into the histogram's range.
        let _ = self.latency_ns.record_n(value, count);
    }

    /// Adds another shard's numbers to these.
    pub fn merge(&mut self, other: &ShardMetrics) {
        self.source_records += other.source_records;
        self.sink_records += other.sink_records;
        self.cpu_ns += other.cpu_ns;
        // Both histograms have the same bounds, so adding cannot fail.
        let _ = self.latency_ns.add(&other.latency_ns);
    }
}

/// CPU time used by the calling thread, in ns.
pub fn thread_cpu_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; the clock id is a constant the kernel knows.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    if rc != 0 {
        return 0;
    }
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time (user + system) used by the whole process so far, in ns: every thread, including
/// those outside the shards (the CLI reports it next to the shard threads' sum).
pub fn process_cpu_ns() -> u64 {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable rusage; RUSAGE_SELF is a constant the kernel knows.
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    if rc != 0 {
        return 0;
    }
    let ns = |t: libc::timeval| t.tv_sec as u64 * 1_000_000_000 + t.tv_usec as u64 * 1_000;
    ns(usage.ru_utime) + ns(usage.ru_stime)
}
