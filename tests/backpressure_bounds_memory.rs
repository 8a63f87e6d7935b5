//! Backpressure: an unbounded fast source feeding a slow sink through an exchange, for 10
//! seconds, with 4 shards on this machine's cores. The records in flight (produced minus
//! consumed) never exceed what the rings and outbox overflows can hold, and the process's peak
//! memory stays under a stated bound; without backpressure the source would have produced
//! gigabytes in that time.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use corestrom_operators::prelude::*;

const SHARDS: usize = 4;
const RING_CAPACITY: usize = 8;
const BATCH_RECORDS: usize = 1024;
const RUN_FOR: Duration = Duration::from_secs(10);
/// Peak memory growth allowed, over the process's resident size before the job started.
const MEMORY_BOUND_BYTES: u64 = 200 << 20;

#[derive(Clone, Copy)]
struct Payload {
    key: u64,
    _pad: [u8; 248],
}

fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("procfs");
    status
        .lines()
        .find(|l| l.starts_with(field))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .expect("field present")
}

#[test]
fn fast_source_into_slow_sink_keeps_memory_bounded() {
    let baseline_bytes = status_kib("VmRSS:") * 1024;
    let produced = Arc::new(AtomicU64::new(0));
    let consumed = Arc::new(AtomicU64::new(0));
    let env = Env::builder()
        .shards(SHARDS)
        .ring_capacity(RING_CAPACITY)
        .batch_records(BATCH_RECORDS)
        .build()
        .expect("config");
    let p = Arc::clone(&produced);
    let c = Arc::clone(&consumed);
    env.from_iter(|_| {
        (0u64..).map(|key| Payload {
            key,
            _pad: [7; 248],
        })
    })
    .inspect(move |_| {
        p.fetch_add(1, Ordering::Relaxed);
    })
    .key_by(|p: &Payload| p.key)
    .inspect(move |_| {
        // The slow sink: about 2 µs per record.
        let until = Instant::now() + Duration::from_micros(2);
        while Instant::now() < until {
            std::hint::spin_loop();
        }
        c.fetch_add(1, Ordering::Relaxed);
    })
    .blackhole();
    let job = env.execute().expect("starts");

    // Every channel holds at most RING_CAPACITY batches; each outbox holds one open batch and
    // at most one input batch of overflow per destination; receivers hold one batch in hand.
    let channels = (SHARDS * SHARDS) as u64;
    let in_flight_bound = channels * (RING_CAPACITY as u64 + 3) * BATCH_RECORDS as u64
        + SHARDS as u64 * 2 * BATCH_RECORDS as u64;
    let started = Instant::now();
    let mut max_in_flight = 0;
    while started.elapsed() < RUN_FOR {
        std::thread::sleep(Duration::from_millis(20));
        // Read consumed first: in flight can then only be over-estimated.
        let c = consumed.load(Ordering::Relaxed);
        let p = produced.load(Ordering::Relaxed);
        max_in_flight = max_in_flight.max(p.saturating_sub(c));
    }
    job.cancel();
    assert!(matches!(job.wait(), Err(JobError::Cancelled)));
    let peak_bytes = status_kib("VmHWM:") * 1024;

    let total_consumed = consumed.load(Ordering::Relaxed);
    eprintln!(
        "consumed {total_consumed} records in {RUN_FOR:?}; max in flight {max_in_flight} (bound {in_flight_bound}); \
         peak RSS {} MiB over a baseline of {} MiB",
        peak_bytes.saturating_sub(baseline_bytes) >> 20,
        baseline_bytes >> 20
    );
    assert!(total_consumed > 100_000, "the sink made progress");
    assert!(
        max_in_flight <= in_flight_bound,
        "in flight {max_in_flight} > bound {in_flight_bound}"
    );
    assert!(
        peak_bytes.saturating_sub(baseline_bytes) < MEMORY_BOUND_BYTES,
        "peak memory grew by {} MiB",
        peak_bytes.saturating_sub(baseline_bytes) >> 20
    );
}
