//! Cost of reading FORMAT.md event lines per event, single-threaded: what the file source pays
//! before any query runs.
//!
//! Run: `cargo bench -p corestrom-bench --bench json_decode [-- FILE]` (release profile, fat
//! LTO). Without FILE it encodes 1,000,000 generated events (seed 0) in memory and also writes
//! them to a temporary file. Prints the best and median wall time of [`ROUNDS`] rounds and the
//! thread's CPU time per event over all rounds (from `/proc/thread-self/stat`; on a shared,
//! loaded machine the CPU figure is the one to read, wall time counts other processes' turns):
//!
//! * `EventReader` over the bytes in memory (decoding alone: line splitting, parsing, strings);
//! * `open_event_file` over the file (the same plus `read(2)` and buffering);
//! * heap allocations per event while decoding (with a counting global allocator), the figure
//!   that says whether strings are still allocated per record.

use corestrom_bench::alloc_counter::{self, CountingAllocator};
use corestrom_bench::nexmark::json::{EventReader, EventWriter, open_event_file};
use corestrom_bench::nexmark::{GeneratorConfig, NexmarkGenerator};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::Instant;

const ROUNDS: usize = 5;
const EVENTS: u64 = 1_000_000;

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` (which processes `items` items) ROUNDS times; prints best and median wall ns/item
/// and the thread's CPU ns/item over all rounds.
fn measure(name: &str, items: u64, mut f: impl FnMut() -> u64) {
    let cpu_before = thread_cpu_ticks();
    let mut ns_per_item: Vec<f64> = (0..ROUNDS)
        .map(|_| {
            let start = Instant::now();
            black_box(f());
            start.elapsed().as_nanos() as f64 / items as f64
        })
        .collect();
    let cpu_ns = (thread_cpu_ticks() - cpu_before) as f64 * 1e9 / ticks_per_second();
    ns_per_item.sort_by(f64::total_cmp);
    let best = ns_per_item[0];
    let median = ns_per_item[ROUNDS / 2];
    let cpu = cpu_ns / (items * ROUNDS as u64) as f64;
    println!(
        "{name:<40} CPU {cpu:7.1} ns/event ({:5.2} M/CPU-s)   wall best {best:7.1} median {median:7.1} ns/event",
        1e3 / cpu
    );
}

/// User + system CPU time of this thread so far, in clock ticks (fields 14 and 15 of
/// `/proc/thread-self/stat`, after the parenthesised command name).
fn thread_cpu_ticks() -> u64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("Linux /proc");
    let after_name = &stat[stat.rfind(')').expect("stat has a command name") + 2..];
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // after_name starts at field 3 (state), so fields 14 and 15 are at indices 11 and 12.
    fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
}

/// Clock ticks per second of `/proc` times (USER_HZ; 100 on every Linux this runs on).
fn ticks_per_second() -> f64 {
    100.0
}

/// Sums the event times so that nothing is optimised away; panics on a malformed line.
fn decode_all<R: std::io::BufRead>(reader: EventReader<R>) -> (u64, u64) {
    let mut events = 0;
    let mut checksum = 0u64;
    for event in reader {
        let event = event.expect("a generated line decodes");
        checksum = checksum.wrapping_add(event.date_time() as u64);
        events += 1;
        black_box(&event);
    }
    (events, checksum)
}

fn main() {
    let file_arg = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    let temp = tempfile_path();
    let path: PathBuf = match &file_arg {
        Some(file) => PathBuf::from(file),
        None => {
            let config = GeneratorConfig::with_events(EVENTS, 10_000_000);
            let mut writer = EventWriter::new(Vec::new());
            for event in NexmarkGenerator::new(&config, 0, 1).unwrap() {
                writer.write(&event).unwrap();
            }
            std::fs::write(&temp, writer.finish().unwrap()).unwrap();
            temp.clone()
        }
    };
    let bytes = std::fs::read(&path).unwrap();
    let (events, _) = decode_all(EventReader::new(bytes.as_slice(), "mem"));
    println!(
        "{}: {events} events, mean line {:.1} bytes",
        path.display(),
        bytes.len() as f64 / events as f64
    );

    let before = alloc_counter::allocations();
    decode_all(EventReader::new(bytes.as_slice(), "mem"));
    let allocations = alloc_counter::allocations() - before;
    println!(
        "heap allocations while decoding: {:.3} per event",
        allocations as f64 / events as f64
    );

    measure("EventReader over memory", events, || {
        decode_all(EventReader::new(bytes.as_slice(), "mem")).1
    });
    measure("open_event_file (read(2) + decode)", events, || {
        decode_all(open_event_file(Path::new(&path)).unwrap()).1
    });
    if file_arg.is_none() {
        let _ = std::fs::remove_file(&temp);
    }
}

fn tempfile_path() -> PathBuf {
    std::env::temp_dir().join(format!("json_decode_bench_{}.jsonl", std::process::id()))
}
