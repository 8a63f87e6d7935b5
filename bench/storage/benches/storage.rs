//! Storage benchmarks, one run, printed as markdown: put/get throughput per shard (16-byte
//! keys, 100-byte values, uniform and Zipf keys) with state inside the memory budget and at 4x
//! the budget, next to a `HashMap` and fjall; seal latency while writing; recovery time for
//! 1 GiB of state next to the disk's O_DIRECT sequential read bandwidth measured in the same
//! run.
//!
//! Run: `cargo bench -p corestrom-bench-storage`. Environment knobs: `STORAGE_BENCH_KEYS`
//! (default 1,000,000), `STORAGE_BENCH_OPS` (2,000,000), `STORAGE_BENCH_RECOVERY_MIB` (1024),
//! `STORAGE_BENCH_DIR` (the system temp dir), `STORAGE_BENCH_ONLY` (comma-separated subset of
//! `throughput,seal,recovery`), `STORAGE_BENCH_ENGINES` (subset of `hashmap,corestrom,fjall`),
//! `STORAGE_BENCH_INDEX_FILES` (`auto` or `never`: the stores' index-file policy in the
//! throughput and seal runs), `STORAGE_BENCH_RECOVERY_ROUNDS` (3), `STORAGE_BENCH_COMPACTION_MS`
//! (100: the compactor's period in the throughput runs; the runtime's shards use 1000).
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::{Duration, Instant};

use corestrom_bench_storage::{KEY_BYTES, Rng, VALUE_BYTES, Zipf, key, mops, value};
use corestrom_storage::{
    IndexFilePolicy, KeyGroup, OperatorId, Position, RecoveryReport, StateKey, Store, StoreConfig,
};
use glommio::io::{DmaFile, OpenOptions};
use hdrhistogram::Histogram;

const FRAME_BYTES: u64 = 20 + KEY_BYTES as u64 + VALUE_BYTES as u64;

/// The store configuration of every corestrom run: the defaults, with the index-file policy
/// from `STORAGE_BENCH_INDEX_FILES` (`auto`, the default, or `never`).
fn store_config() -> StoreConfig {
    let mut config = StoreConfig::default();
    if std::env::var("STORAGE_BENCH_INDEX_FILES").as_deref() == Ok("never") {
        config.index_files = IndexFilePolicy::Never;
    }
    config
}

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

fn sk(k: &[u8]) -> StateKey<'_> {
    StateKey {
        operator: OperatorId(1),
        key_group: KeyGroup(u16::from(k[8]) % 128),
        key: k,
        namespace: b"",
    }
}

#[derive(Clone, Copy)]
enum Dist {
    Uniform,
    Zipf,
}

struct Keys {
    n: u64,
    zipf: Zipf,
}

impl Keys {
    fn draw(&self, dist: Dist, rng: &mut Rng) -> u64 {
        match dist {
            Dist::Uniform => rng.below(self.n),
            Dist::Zipf => self.zipf.sample(rng),
        }
    }
}

/// One row: load (unique inserts), put uniform, put zipf, get uniform, get zipf (M ops/s).
type Row = [f64; 5];

trait Engine {
    async fn put(&mut self, k: &[u8], v: &[u8]);
    async fn get(&mut self, k: &[u8]) -> bool;
}

struct Corestrom(Store);

impl Engine for Corestrom {
    async fn put(&mut self, k: &[u8], v: &[u8]) {
        self.0.put(sk(k), v).await.unwrap();
    }
    async fn get(&mut self, k: &[u8]) -> bool {
        self.0
            .get(sk(k))
            .await
            .unwrap()
            .is_some_and(|v| v.len() == VALUE_BYTES)
    }
}

struct Map(HashMap<Vec<u8>, Vec<u8>>);

impl Engine for Map {
    async fn put(&mut self, k: &[u8], v: &[u8]) {
        match self.0.get_mut(k) {
            Some(slot) => slot.copy_from_slice(v),
            None => drop(self.0.insert(k.to_vec(), v.to_vec())),
        }
    }
    async fn get(&mut self, k: &[u8]) -> bool {
        self.0.get(k).is_some_and(|v| v.len() == VALUE_BYTES)
    }
}

struct Fjall(#[allow(dead_code)] fjall::Keyspace, fjall::PartitionHandle);

impl Engine for Fjall {
    async fn put(&mut self, k: &[u8], v: &[u8]) {
        self.1.insert(k, v).unwrap();
    }
    async fn get(&mut self, k: &[u8]) -> bool {
        self.1
            .get(k)
            .unwrap()
            .is_some_and(|v| v.len() == VALUE_BYTES)
    }
}

async fn workload(engine: &mut impl Engine, keys: &Keys, ops: u64) -> Row {
    let mut row = [0.0; 5];
    let started = Instant::now();
    for i in 0..keys.n {
        engine.put(&key(i), &value(i)).await;
    }
    row[0] = mops(keys.n, started.elapsed());
    let mut rng = Rng::new(42);
    for (slot, dist) in [(1, Dist::Uniform), (2, Dist::Zipf)] {
        let started = Instant::now();
        for i in 0..ops {
            let k = keys.draw(dist, &mut rng);
            engine.put(&key(k), &value(k ^ i)).await;
            if i % 1024 == 0 {
                // A shard yields between batches; this lets background tasks (compaction) run.
                glommio::yield_if_needed().await;
            }
        }
        row[slot] = mops(ops, started.elapsed());
    }
    for (slot, dist) in [(3, Dist::Uniform), (4, Dist::Zipf)] {
        let started = Instant::now();
        let mut found = 0u64;
        for _ in 0..ops {
            let k = keys.draw(dist, &mut rng);
            found += u64::from(engine.get(&key(k)).await);
        }
        row[slot] = mops(ops, started.elapsed());
        assert_eq!(found, ops, "every key was loaded");
    }
    row
}

fn fresh_dir(base: &Path, name: &str) -> PathBuf {
    let dir = base.join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn throughput(base: &Path, keys: &Keys, ops: u64) {
    let state_bytes = keys.n * FRAME_BYTES;
    println!("## put/get throughput, one shard (M ops/s)\n");
    println!(
        "{} keys x ({KEY_BYTES} B key + {VALUE_BYTES} B value) = {:.0} MiB of state; {ops} ops per column; Zipf theta 0.99 (scrambled).\n",
        keys.n,
        state_bytes as f64 / 1048576.0
    );
    println!(
        "| engine | state vs budget | budget MiB | load (insert) | put uniform | put zipf | get uniform | get zipf |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    let print = |engine: &str, fit: &str, budget: u64, r: Row| {
        println!(
            "| {engine} | {fit} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            budget >> 20,
            r[0],
            r[1],
            r[2],
            r[3],
            r[4]
        );
    };
    let engines = std::env::var("STORAGE_BENCH_ENGINES").unwrap_or_default();
    let enabled = |name: &str| engines.is_empty() || engines.split(',').any(|e| e == name);
    if enabled("hashmap") {
        let mut map = Map(HashMap::new());
        print(
            "std HashMap",
            "in memory",
            0,
            workload(&mut map, keys, ops).await,
        );
    }
    // "Fits": the budget is 4x the live state, room for the log's not yet compacted bytes.
    for (fit, budget) in [("fits", state_bytes * 4), ("4x budget", state_bytes / 4)] {
        // With the state inside the budget, also show puts with no compaction running: the
        // cost of compaction (write amplification) is then visible as the difference.
        let compaction = if fit == "fits" {
            &[false, true][..]
        } else {
            &[true][..]
        };
        for &compact in compaction.iter().filter(|_| enabled("corestrom")) {
            let dir = fresh_dir(base, "corestrom");
            let config = StoreConfig {
                memory_budget_bytes: budget as usize,
                ..store_config()
            };
            let store = Store::create(&dir, config).await.unwrap();
            let period_ms = env("STORAGE_BENCH_COMPACTION_MS", 100);
            let compactor =
                compact.then(|| store.spawn_compactor(Duration::from_millis(period_ms)));
            let mut engine = Corestrom(store.clone());
            let row = workload(&mut engine, keys, ops).await;
            if let Some(compactor) = compactor {
                compactor.cancel();
            }
            let stats = store.stats();
            let name = if compact {
                format!("corestrom-storage, compactor every {period_ms} ms")
            } else {
                "corestrom-storage, no compaction".to_string()
            };
            print(&name, fit, budget, row);
            eprintln!("{name} {fit}: {stats:?}");
            drop((engine, store));
        }
        if enabled("fjall") {
            let dir = fresh_dir(base, "fjall");
            let ks = fjall::Config::new(&dir).cache_size(budget).open().unwrap();
            let part = ks
                .open_partition("bench", fjall::PartitionCreateOptions::default())
                .unwrap();
            let mut engine = Fjall(ks, part);
            print(
                "fjall 2.11",
                fit,
                budget,
                workload(&mut engine, keys, ops).await,
            );
            drop(engine);
            let _ = std::fs::remove_dir_all(&dir);
        }
    }
    println!();
}

async fn seal_latency(base: &Path, keys: &Keys) {
    let dir = fresh_dir(base, "seal");
    let store = Store::create(&dir, store_config()).await.unwrap();
    let stop = Rc::new(Cell::new(false));
    let puts = Rc::new(Cell::new(0u64));
    let writer = {
        let (store, stop, puts, n) = (store.clone(), Rc::clone(&stop), Rc::clone(&puts), keys.n);
        glommio::spawn_local(async move {
            let mut rng = Rng::new(7);
            while !stop.get() {
                for _ in 0..256 {
                    let k = rng.below(n);
                    store.put(sk(&key(k)), &value(k)).await.unwrap();
                }
                puts.set(puts.get() + 256);
                glommio::yield_if_needed().await;
            }
        })
    };
    let sync_part = Rc::new(RefCell::new(Histogram::<u64>::new(3).unwrap()));
    let mut durable = Histogram::<u64>::new(3).unwrap();
    let started = Instant::now();
    let mut previous = None;
    for _ in 0..300 {
        glommio::timer::sleep(Duration::from_millis(10)).await;
        let t0 = Instant::now();
        let sealing = store.seal().unwrap();
        sync_part
            .borrow_mut()
            .record(t0.elapsed().as_nanos() as u64)
            .unwrap();
        let pos = sealing.durable().await.unwrap();
        durable.record(t0.elapsed().as_micros() as u64).unwrap();
        if let Some(old) = previous.replace(pos) {
            store.release(&old);
        }
    }
    stop.set(true);
    writer.await;
    let elapsed = started.elapsed();
    let s = sync_part.borrow();
    println!("## seal latency while writing\n");
    println!(
        "300 seals, one every 10 ms, while another task on the same shard puts uniform keys ({:.2} M puts/s sustained during the run).\n",
        mops(puts.get(), elapsed)
    );
    println!("| part | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| `seal()` synchronous part | {:.1} us | {:.1} us | {:.1} us |",
        s.value_at_quantile(0.5) as f64 / 1e3,
        s.value_at_quantile(0.99) as f64 / 1e3,
        s.max() as f64 / 1e3
    );
    println!(
        "| seal to durable (write + fdatasync) | {:.2} ms | {:.2} ms | {:.2} ms |\n",
        durable.value_at_quantile(0.5) as f64 / 1e3,
        durable.value_at_quantile(0.99) as f64 / 1e3,
        durable.max() as f64 / 1e3
    );
}

/// Reads every file in `dir` with O_DIRECT, 4 MiB per read, 4 reads in flight.
async fn sequential_read_bandwidth(dir: &Path) -> (u64, Duration) {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .collect();
    files.sort();
    let chunk = 4usize << 20;
    let started = Instant::now();
    let mut total = 0u64;
    for path in files {
        let file = Rc::new(OpenOptions::new().read(true).dma_open(&path).await.unwrap());
        let size = file.file_size().await.unwrap();
        let mut offset = 0;
        while offset < size {
            let mut batch = Vec::new();
            for _ in 0..4 {
                if offset >= size {
                    break;
                }
                let f: Rc<DmaFile> = Rc::clone(&file);
                let at = offset;
                batch.push(glommio::spawn_local(async move {
                    f.read_at_aligned(at, chunk).await.unwrap().len()
                }));
                offset += chunk as u64;
            }
            for task in batch {
                total += task.await as u64;
            }
        }
    }
    (total, started.elapsed())
}

/// Opens the store at `position` and returns the report; `hide_index` moves the index files
/// out of the directory first (and back after), so the open scans the whole log as before
/// index files existed.
async fn timed_open(
    dir: &Path,
    config: StoreConfig,
    position: &Position,
    hide_index: bool,
) -> RecoveryReport {
    let hidden = dir.with_extension("hidden");
    let _ = std::fs::remove_dir_all(&hidden);
    std::fs::create_dir_all(&hidden).unwrap();
    let index_files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n.to_string_lossy().starts_with("idx-"))
        .collect();
    if hide_index {
        for name in &index_files {
            std::fs::rename(dir.join(name), hidden.join(name)).unwrap();
        }
    }
    let (store, report) = Store::open(dir, config, position).await.unwrap();
    drop(store);
    if hide_index {
        for name in &index_files {
            std::fs::rename(hidden.join(name), dir.join(name)).unwrap();
        }
    }
    report
}

async fn recovery(base: &Path, mib: u64) {
    let dir = fresh_dir(base, "recovery");
    let config = StoreConfig::default();
    let store = Store::create(&dir, config).await.unwrap();
    let n = (mib << 20) / FRAME_BYTES;
    let started = Instant::now();
    for i in 0..n {
        store.put(sk(&key(i)), &value(i)).await.unwrap();
    }
    let position = store.seal().unwrap().durable().await.unwrap();
    let load = started.elapsed();
    let built = Instant::now();
    let outcome = store.wait_index_file().await;
    let build = built.elapsed();
    let state_bytes: u64 = position.segments.iter().map(|(_, len)| *len).sum();
    let index_bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("idx-"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    drop(store);
    let rounds = env("STORAGE_BENCH_RECOVERY_ROUNDS", 3);
    let (mut scan, mut indexed) = (Vec::new(), Vec::new());
    for _ in 0..rounds {
        let report = timed_open(&dir, config, &position, true).await;
        assert_eq!(report.keys as u64, n);
        assert!(report.index_file.is_none());
        scan.push(report.elapsed.as_secs_f64());
        let report = timed_open(&dir, config, &position, false).await;
        assert_eq!(report.keys as u64, n);
        assert!(report.index_file.is_some(), "{:?}", report.index_fallbacks);
        indexed.push(report.elapsed.as_secs_f64());
    }
    let (read, read_time) = sequential_read_bandwidth(&dir).await;
    let bandwidth = read as f64 / read_time.as_secs_f64();
    let floor = state_bytes as f64 / bandwidth;
    println!("## recovery\n");
    println!(
        "{n} keys loaded in {:.1} s ({:.2} M puts/s), sealed; the seal's index-file build ({outcome:?}, {:.0} MiB) finished {:.2} s after the seal was durable. Then `Store::open` at that position, alternately without the index file (full scan: verify every crc, rebuild the index) and with it (load the index file, verify the segment headers and the frames after it), {rounds} rounds.\n",
        load.as_secs_f64(),
        mops(n, load),
        index_bytes as f64 / 1048576.0,
        build.as_secs_f64(),
    );
    println!(
        "| open | state bytes | recovery times (s) | O_DIRECT sequential read bandwidth (4 MiB reads, depth 4, same files) | state / bandwidth | recovery / floor |"
    );
    println!("|---|---|---|---|---|---|");
    for (name, times) in [
        ("full scan (before)", &scan),
        ("index file (after)", &indexed),
    ] {
        let list: Vec<String> = times.iter().map(|t| format!("{t:.2}")).collect();
        let ratios: Vec<String> = times.iter().map(|t| format!("{:.2}x", t / floor)).collect();
        println!(
            "| {name} | {:.0} MiB | {} | {:.0} MiB/s | {:.2} s | {} (target <= 1.5x) |",
            state_bytes as f64 / 1048576.0,
            list.join(" / "),
            bandwidth / 1048576.0,
            floor,
            ratios.join(" / "),
        );
    }
    println!();
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let keys_n = env("STORAGE_BENCH_KEYS", 1_000_000);
    let ops = env("STORAGE_BENCH_OPS", 2_000_000);
    let mib = env("STORAGE_BENCH_RECOVERY_MIB", 1024);
    let base = std::env::var("STORAGE_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| std::env::temp_dir())
        .join("corestrom-storage-bench");
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` probes with --list; nothing to list.
    }
    glommio::LocalExecutorBuilder::new(glommio::Placement::Fixed(0))
        .spawn(move || async move {
            let keys = Keys {
                n: keys_n,
                zipf: Zipf::new(keys_n, 0.99),
            };
            println!("# corestrom-storage benchmarks\n");
            let only = std::env::var("STORAGE_BENCH_ONLY").unwrap_or_default();
            let run = |section: &str| only.is_empty() || only.split(',').any(|s| s == section);
            if run("throughput") {
                throughput(&base, &keys, ops).await;
            }
            if run("seal") {
                seal_latency(&base, &keys).await;
            }
            if run("recovery") {
                recovery(&base, mib).await;
            }
            let _ = std::fs::remove_dir_all(&base);
        })
        .unwrap()
        .join()
        .unwrap();
}
