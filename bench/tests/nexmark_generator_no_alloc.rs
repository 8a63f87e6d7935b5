//! Proves the hard requirement on the Nexmark generator: generating events allocates nothing
//! on the heap. A counting global allocator (this test binary only) counts allocations while
//! `fill()` produces 100,000 events into a buffer whose capacity is already reserved; the
//! count must be zero. This file holds a single test so that no other test thread allocates
//! concurrently.

use corestrom_bench::nexmark::{GeneratorConfig, NexmarkGenerator};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

struct CountingAllocator;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards every call unchanged to the system allocator; only adds a counter.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: same contract as the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn generator_fill_allocates_nothing() {
    let config = GeneratorConfig::with_events(200_000, 10_000_000);
    // Warm-up builds the process-wide pools (allocates once per process, by design).
    NexmarkGenerator::new(&config, 1, 2).unwrap().next_event();
    let mut generator = NexmarkGenerator::new(&config, 0, 2).unwrap();
    let mut out = Vec::with_capacity(1024);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    let mut events = 0;
    while events < 100_000 {
        out.clear();
        events += generator.fill(&mut out, 1024);
    }
    let allocations = ALLOCATIONS.load(Ordering::Relaxed) - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {events} events"
    );
}
