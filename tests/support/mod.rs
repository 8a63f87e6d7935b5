//! Helpers shared by the integration tests that run the real `corestrom` binary.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};

/// The `corestrom` binary built for these tests.
pub fn corestrom() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_corestrom"));
    command
        .env_remove("CORESTROM_CRASH_AT")
        .env("RUST_BACKTRACE", "0");
    command
}

/// The child process of a kill harness: this test binary again, running only its `child_job`
/// test, which runs the job when `var` is set to `STATE_DIR|OUT_DIR`. No crash point is armed
/// and the child's output is discarded unless the caller redirects it.
pub fn child_job_command(var: &str, state: &Path, out: &Path) -> Command {
    let mut command = Command::new(std::env::current_exe().expect("test binary"));
    command
        .args(["--exact", "child_job", "--nocapture", "--test-threads", "1"])
        .env(var, format!("{}|{}", state.display(), out.display()))
        .env_remove("CORESTROM_CRASH_AT")
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    command
}

/// The committed result of a FORMAT.md result directory: the multiset of lines of its visible
/// `*.jsonl` files (hidden files are not part of the result).
pub fn committed_lines(dir: &Path) -> HashMap<String, u32> {
    let mut lines = HashMap::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return lines;
    };
    for entry in entries {
        let path = entry.expect("dir entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        if name.starts_with('.') || !name.ends_with(".jsonl") {
            continue;
        }
        for line in std::fs::read_to_string(&path)
            .expect("read result file")
            .lines()
        {
            *lines.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    lines
}

/// Compares two multisets of lines: (lost, duplicated, unexpected) line counts.
pub fn diff(expected: &HashMap<String, u32>, got: &HashMap<String, u32>) -> (u64, u64, u64) {
    let (mut lost, mut duplicated, mut unexpected) = (0, 0, 0);
    for (line, &n) in expected {
        let m = got.get(line).copied().unwrap_or(0);
        if m < n {
            lost += u64::from(n - m);
        } else {
            duplicated += u64::from(m - n);
        }
    }
    for (line, &m) in got {
        if !expected.contains_key(line) {
            unexpected += u64::from(m);
        }
    }
    (lost, duplicated, unexpected)
}

/// Runs `corestrom` to completion with `args`; panics with its stderr if it fails.
pub fn run_ok(args: &[&str]) {
    let out = corestrom()
        .args(args)
        .stdout(Stdio::null())
        .output()
        .expect("run corestrom");
    assert!(
        out.status.success(),
        "corestrom {args:?} failed:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small deterministic PRNG (SplitMix64) so failures replay from the printed seed.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// How a job is run through kills: up to `kills` attempts, each killed with SIGKILL after a
/// random delay in `delay_ms` unless it ended first, then (if none ended) one last run that
/// must end within `limit` (a hang fails the test instead of stalling it).
pub struct KillPlan {
    pub kills: usize,
    pub delay_ms: std::ops::Range<u64>,
    pub limit: std::time::Duration,
}

impl KillPlan {
    /// Runs the job `spawn` starts through the plan; every run that ends must succeed. Returns
    /// how many runs were killed.
    pub fn run(&self, rng: &mut Rng, mut spawn: impl FnMut() -> std::process::Child) -> u64 {
        use std::time::{Duration, Instant};
        let mut killed = 0;
        for _ in 0..self.kills {
            let mut child = spawn();
            let span = self.delay_ms.end - self.delay_ms.start;
            let delay = Duration::from_millis(self.delay_ms.start + rng.below(span));
            let started = Instant::now();
            loop {
                if let Some(status) = child.try_wait().expect("wait") {
                    assert!(status.success(), "child failed: {status}");
                    return killed;
                }
                if started.elapsed() >= delay {
                    child.kill().expect("SIGKILL");
                    child.wait().expect("reap");
                    killed += 1;
                    break;
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        let mut child = spawn();
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().expect("wait") {
                assert!(status.success(), "final run failed: {status}");
                return killed;
            }
            if started.elapsed() > self.limit {
                child.kill().expect("SIGKILL");
                child.wait().expect("reap");
                panic!("the restarted job did not finish within {:?}", self.limit);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Two-input pipelines for the join and co-process tests: one record type for both sides, and a
/// builder that gives each side its own watermark with a known interleaving.
pub mod two_sides {
    use std::sync::Arc;
    use std::time::Duration;

    use corestrom_operators::prelude::*;
    use serde::{Deserialize, Serialize};

    /// A record of either input; `id` is unique over both inputs.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
    pub struct Rec {
        pub key: u64,
        pub ts: i64,
        pub id: u64,
    }

    /// Which input a record goes to.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
    pub enum Side {
        Left,
        Right,
    }

    /// The left and right streams of `splits` (`splits[shard]` is that shard's input, in
    /// order). Each side gets timestamps `rec.ts` and its own bounded-out-of-orderness
    /// watermark, so a two-input operator sees the minimum of the two. With one shard and
    /// batches of one record the operator sees exactly the split's order, each record followed
    /// by its side's new watermark `max_ts(side) - bound - 1` (when it rises).
    pub fn streams(
        env: &Env,
        splits: Vec<Vec<(Side, Rec)>>,
        bound_ms: i64,
    ) -> (Stream<Rec>, Stream<Rec>) {
        let splits = Arc::new(splits);
        let tagged = env.from_iter(move |split| splits[split.shard].clone());
        let strategy =
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound_ms as u64));
        let left = tagged
            .filter_map(|(side, r): (Side, Rec)| (side == Side::Left).then_some(r))
            .with_timestamps(|r: &Rec| r.ts, strategy);
        let right = tagged
            .filter_map(|(side, r): (Side, Rec)| (side == Side::Right).then_some(r))
            .with_timestamps(|r: &Rec| r.ts, strategy);
        (left, right)
    }

    /// The ids of records that no operator can see as late, however the shards interleave:
    /// those above their own side's watermark on their own split when they are emitted
    /// (`ts > max_ts_before(split, side) - bound - 1`). An operator's watermark is at most
    /// that side's, and it reaches the record after that watermark was emitted.
    pub fn surely_on_time(
        splits: &[Vec<(Side, Rec)>],
        bound_ms: i64,
    ) -> std::collections::HashSet<u64> {
        let mut ids = std::collections::HashSet::new();
        for split in splits {
            let (mut max_left, mut max_right) = (i64::MIN, i64::MIN);
            for (side, r) in split {
                let max = match side {
                    Side::Left => &mut max_left,
                    Side::Right => &mut max_right,
                };
                if *max == i64::MIN || r.ts > *max - bound_ms - 1 {
                    ids.insert(r.id);
                }
                *max = (*max).max(r.ts);
            }
        }
        ids
    }

    /// Appends to every split a record on each side at `ts` (key `key`, fresh ids), so both
    /// sides' watermarks reach `ts - bound - 1` before the input ends. Without it the side that
    /// ends first lifts the operator's watermark to the other side's last one, which depends on
    /// the order the end reaches the two sides; with it that watermark is the same on both.
    pub fn close(splits: &mut [Vec<(Side, Rec)>], key: u64, ts: i64) {
        let mut id = splits
            .iter()
            .flatten()
            .map(|(_, r)| r.id + 1)
            .max()
            .unwrap_or(0);
        for split in splits {
            for side in [Side::Left, Side::Right] {
                split.push((side, Rec { key, ts, id }));
                id += 1;
            }
        }
    }

    /// What the operator of a one-shard [`streams`] pipeline sees next.
    #[derive(Clone, Copy, Debug)]
    pub enum Step {
        /// A record, with the operator's watermark when it arrives.
        Record(Side, Rec, i64),
        /// The operator's watermark (the minimum of both sides') rose to this.
        Watermark(i64),
    }

    /// Replays one split as the one-shard pipeline of [`streams`] delivers it: every record
    /// with the operator's watermark before it, and every rise of the minimum of both sides'
    /// watermarks, ending with `END_OF_TIME`.
    pub fn replay(split: &[(Side, Rec)], bound_ms: i64, mut step: impl FnMut(Step)) {
        let (mut max_left, mut max_right) = (i64::MIN, i64::MIN);
        let mut watermark = i64::MIN;
        let side_wm = |max: i64| {
            if max == i64::MIN {
                i64::MIN
            } else {
                max - bound_ms - 1
            }
        };
        for &(side, r) in split {
            step(Step::Record(side, r, watermark));
            match side {
                Side::Left => max_left = max_left.max(r.ts),
                Side::Right => max_right = max_right.max(r.ts),
            }
            let wm = side_wm(max_left).min(side_wm(max_right));
            if wm > watermark {
                watermark = wm;
                step(Step::Watermark(wm));
            }
        }
        step(Step::Watermark(i64::MAX));
    }

    /// Random input for `shards` splits: records drift upward in time (1 ms per record, so
    /// equal timestamps and exact bounds are frequent) with jitter up to `disorder`, keys below
    /// `keys`, sides at random, ids in order.
    pub fn input_strategy(
        shards: usize,
        keys: u64,
        disorder: i64,
        len: usize,
    ) -> impl proptest::strategy::Strategy<Value = Vec<Vec<(Side, Rec)>>> {
        use proptest::prelude::*;
        prop::collection::vec((0..shards, any::<bool>(), 0..keys, 0i64..=disorder), 0..len)
            .prop_map(move |v| {
                let mut splits = vec![Vec::new(); shards];
                for (i, (shard, left, key, jitter)) in v.into_iter().enumerate() {
                    let side = if left { Side::Left } else { Side::Right };
                    let rec = Rec {
                        key,
                        ts: i as i64 - jitter,
                        id: i as u64,
                    };
                    splits[shard].push((side, rec));
                }
                splits
            })
    }
}
