//! Proves the hard requirement on the Nexmark generator: generating events allocates nothing
//! on the heap. A counting global allocator (this test binary only) counts allocations while
//! `fill()` produces 100,000 events into a buffer whose capacity is already reserved; the
//! count must be zero. This file holds a single test so that no other test thread allocates
//! concurrently.

use corestrom_bench::alloc_counter::{self, CountingAllocator};
use corestrom_bench::nexmark::{GeneratorConfig, NexmarkGenerator};

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn generator_fill_allocates_nothing() {
    let config = GeneratorConfig::with_events(200_000, 10_000_000);
    // Warm-up builds the process-wide pools (allocates once per process, by design).
    NexmarkGenerator::new(&config, 1, 2).unwrap().next_event();
    let mut generator = NexmarkGenerator::new(&config, 0, 2).unwrap();
    let mut out = Vec::with_capacity(1024);
    let before = alloc_counter::allocations();
    let mut events = 0;
    while events < 100_000 {
        out.clear();
        events += generator.fill(&mut out, 1024);
    }
    let allocations = alloc_counter::allocations() - before;
    assert_eq!(
        allocations, 0,
        "{allocations} allocations for {events} events"
    );
}
