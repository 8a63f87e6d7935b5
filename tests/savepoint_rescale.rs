//! Savepoints and rescaling through the API: a keyed job (tumbling event-time windows, a
//! rolling fold, a keyed process function with map state and event-time timers) over a seeded
//! replayable source with exactly-once file output runs on 4 shards, stops with a savepoint
//! midway, is restored on 2 shards, stops with a savepoint again, and finishes on 3 shards.
//! Its committed output equals that of a run that was never stopped, as a multiset of lines.
//!
//! "Midway" is made exact by a gate: every split emits records only below a shared limit, and
//! the test asks for the savepoint once every split reached it (the savepoint may still be
//! taken anywhere before; the output must not depend on where).
//!
//! Every output is deterministic whatever the interleaving: each split is in event-time order,
//! the splits share one timeline, and the watermark bound (200 ms) covers how far apart a
//! shard's splits can drift (one poll of 64 records = 64 ms), so no record is ever late.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use corestrom::prelude::*;
use corestrom_operators::state::{MapState, SnapshotHandle, VoidNamespace};
use serde::{Deserialize, Serialize};

mod support;
use support::{committed_lines, diff};

/// Records per split.
const PER_SPLIT: u64 = 6_000;
const SPLITS: usize = 4;
const KEYS: u64 = 61;
/// The outputs, one directory each.
const OUTPUTS: [&str; 3] = ["tumbling", "fold", "process"];

#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
struct Rec {
    split: u32,
    seq: u64,
    key: u64,
}

/// Splits of `PER_SPLIT` records, record `seq` at event time `seq` ms, emitted only below the
/// gate's limit. `at_gate` counts the readers that reached the limit.
#[derive(Clone)]
struct GatedSource {
    limit: Arc<AtomicU64>,
    at_gate: Arc<AtomicUsize>,
}

struct GatedReader {
    split: u32,
    next: u64,
    at_gate: bool,
    source: GatedSource,
}

impl Source<Rec> for GatedSource {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<Rec>>, OperatorError> {
        assert_eq!(split.shards, SPLITS, "the split count survives rescaling");
        Ok(Box::new(GatedReader {
            split: split.shard as u32,
            next: 0,
            at_gate: false,
            source: self.clone(),
        }))
    }
}

impl SourceReader<Rec> for GatedReader {
    fn poll(
        &mut self,
        out: &mut Vec<Record<Rec>>,
        max: usize,
        _now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        let limit = self.source.limit.load(Ordering::Acquire).min(PER_SPLIT);
        let mut appended = 0;
        while self.next < limit && appended < max {
            let seq = self.next;
            let key = (seq.wrapping_mul(0x9e37_79b9) ^ (u64::from(self.split) * 7919)) % KEYS;
            out.push(Record {
                ts: seq as i64,
                value: Rec {
                    split: self.split,
                    seq,
                    key,
                },
            });
            self.next += 1;
            appended += 1;
        }
        if self.next == PER_SPLIT {
            return Ok(SourcePoll::Finished);
        }
        if self.next == limit {
            if !self.at_gate {
                self.at_gate = true;
                self.source.at_gate.fetch_add(1, Ordering::AcqRel);
            }
            if appended == 0 {
                return Ok(SourcePoll::Pending { wake_at_ns: None });
            }
        }
        Ok(SourcePoll::Ready)
    }

    fn position(&self) -> Option<Vec<u8>> {
        Some(self.next.to_le_bytes().to_vec())
    }

    fn restore(&mut self, position: &[u8]) -> Result<(), OperatorError> {
        let bytes: [u8; 8] = position
            .try_into()
            .map_err(|_| OperatorError::Failed("bad position".into()))?;
        self.next = u64::from_le_bytes(bytes);
        Ok(())
    }
}

/// Counts a key's records per 100 ms bucket of event time in map state and emits
/// `(key, bucket end, count)` when the watermark passes the bucket's end.
#[derive(Clone)]
struct BucketCounts {
    counts: Buckets,
}

struct Buckets(MapState<u64, VoidNamespace, i64, u64>);

impl Clone for Buckets {
    fn clone(&self) -> Self {
        // Every shard's instance starts empty.
        Buckets(MapState::new(None))
    }
}

impl KeyedProcessFunction<u64, Rec> for BucketCounts {
    type Out = (u64, i64, u64);
    type Side = ();

    fn process_element(&mut self, rec: Rec, ctx: &mut ProcessContext<'_, u64, Self::Out, ()>) {
        let end = (rec.seq as i64 / 100 + 1) * 100;
        let n = self.counts.0.get(ctx.state(), &end).copied().unwrap_or(0);
        self.counts.0.put(ctx.state(), end, n + 1);
        ctx.register_event_time_timer(end - 1);
    }

    fn on_timer(&mut self, timestamp: i64, ctx: &mut ProcessContext<'_, u64, Self::Out, ()>) {
        let end = timestamp + 1;
        let n = self
            .counts
            .0
            .remove(ctx.state(), &end)
            .expect("a timer has its bucket");
        let key = *ctx.key();
        ctx.output((key, end, n));
    }

    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<u64>>> {
        Some(vec![&mut self.counts.0])
    }
}

/// How one phase of the job runs.
struct Phase<'a> {
    shards: usize,
    state: &'a Path,
    from_savepoint: Option<&'a Path>,
    /// Records per split the source may emit (`PER_SPLIT` = all).
    limit: u64,
    /// Stop with a savepoint into this directory once every split reached the limit.
    stop_into: Option<&'a Path>,
    /// The name of the fold operator (another name = another job graph).
    fold_name: &'a str,
}

fn build(phase: &Phase<'_>, out: &Path, gate: &GatedSource) -> Result<Env, JobError> {
    let mut builder = Env::builder()
        .shards(phase.shards)
        .source_splits(SPLITS)
        .checkpoint_every(Duration::from_millis(20), phase.state);
    if let Some(savepoint) = phase.from_savepoint {
        builder = builder.from_savepoint(savepoint);
    }
    let env = builder.build()?;
    let records = env.source("gated", gate.clone()).with_timestamps(
        |r: &Rec| r.seq as i64,
        WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(200)),
    );
    let by_key = records.key_by(|r: &Rec| r.key);
    by_key
        .window(TumblingEventTimeWindows::of(Duration::from_millis(50)))
        .aggregate_with(
            Count,
            |k: &u64, w: &TimeWindow, n: u64, out: &mut Vec<(u64, i64, u64)>| {
                out.push((*k, w.start, n))
            },
        )
        .main()
        .write_jsonl(out.join("tumbling"));
    by_key
        .fold(0u64, |n: &mut u64, _r: Rec| *n += 1)
        .name(phase.fold_name)
        .write_jsonl(out.join("fold"));
    by_key
        .process(BucketCounts {
            counts: Buckets(MapState::new(None)),
        })
        .write_jsonl(out.join("process"));
    Ok(env)
}

/// Runs one phase to its end (the input's or the savepoint's).
fn run(phase: &Phase<'_>, out: &Path) -> Result<JobReport, JobError> {
    let gate = GatedSource {
        limit: Arc::new(AtomicU64::new(phase.limit)),
        at_gate: Arc::new(AtomicUsize::new(0)),
    };
    let env = build(phase, out, &gate)?;
    let handle = env.execute()?;
    if let Some(dir) = phase.stop_into {
        let started = Instant::now();
        while gate.at_gate.load(Ordering::Acquire) < SPLITS {
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "the splits never reached the gate"
            );
            std::thread::sleep(Duration::from_millis(5));
        }
        handle.savepoint(dir, SavepointMode::Stop)?;
    }
    handle.wait()
}

fn expect_stopped(report: &JobReport, dir: &Path) {
    assert!(report.stopped_with_savepoint, "the job stopped with it");
    assert_eq!(report.savepoints.len(), 1, "{:?}", report.savepoints);
    let savepoint = &report.savepoints[0];
    assert_eq!(savepoint.error, None);
    assert_eq!(savepoint.dir, dir);
    assert!(dir.join("_savepoint").exists());
}

fn outputs(out: &Path) -> Vec<std::collections::HashMap<String, u32>> {
    OUTPUTS
        .iter()
        .map(|o| committed_lines(&out.join(o)))
        .collect()
}

#[test]
fn rescale_4_to_2_to_3_through_savepoints_equals_an_unscaled_run() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);

    let reference_out = path("reference");
    let reference = Phase {
        shards: 4,
        state: &path("reference-state"),
        from_savepoint: None,
        limit: PER_SPLIT,
        stop_into: None,
        fold_name: "fold",
    };
    let report = run(&reference, &reference_out).expect("reference run");
    assert!(!report.stopped_with_savepoint);
    let expected = outputs(&reference_out);
    let fold_lines: u32 = expected[1].values().sum();
    assert_eq!(u64::from(fold_lines), PER_SPLIT * SPLITS as u64);
    for (name, lines) in OUTPUTS.iter().zip(&expected) {
        assert!(lines.len() > 500, "{name}: too little output to test");
    }

    let out = path("out");
    let (sp1, sp2) = (path("savepoint-1"), path("savepoint-2"));
    let first = Phase {
        shards: 4,
        state: &path("state-4"),
        from_savepoint: None,
        limit: PER_SPLIT / 3,
        stop_into: Some(&sp1),
        fold_name: "fold",
    };
    expect_stopped(&run(&first, &out).expect("4 shards"), &sp1);
    let committed: u32 = committed_lines(&out.join("fold")).values().sum();
    assert!(
        committed > 0 && u64::from(committed) < PER_SPLIT * SPLITS as u64,
        "stopped midway with its output committed ({committed} fold lines)"
    );

    let second = Phase {
        shards: 2,
        state: &path("state-2"),
        from_savepoint: Some(&sp1),
        limit: PER_SPLIT * 2 / 3,
        stop_into: Some(&sp2),
        fold_name: "fold",
    };
    expect_stopped(&run(&second, &out).expect("2 shards"), &sp2);

    let third = Phase {
        shards: 3,
        state: &path("state-3"),
        from_savepoint: Some(&sp2),
        limit: PER_SPLIT,
        stop_into: None,
        fold_name: "fold",
    };
    let report = run(&third, &out).expect("3 shards");
    assert!(!report.stopped_with_savepoint);

    for ((name, want), got) in OUTPUTS.iter().zip(&expected).zip(outputs(&out)) {
        assert_eq!(
            diff(want, &got),
            (0, 0, 0),
            "{name}: lost, duplicated, unexpected lines"
        );
    }

    // The savepoint of a different job graph is refused, naming the reason.
    let other = Phase {
        shards: 3,
        state: &path("state-other"),
        from_savepoint: Some(&sp1),
        limit: PER_SPLIT,
        stop_into: None,
        fold_name: "renamed fold",
    };
    let error = run(&other, &path("out-other"))
        .expect_err("another job graph")
        .to_string();
    assert!(error.contains("same job graph"), "{error}");

    // A damaged state file is detected and named; so is a damaged manifest.
    let state_file = sp2.join("state-00001.kgs");
    let mut bytes = std::fs::read(&state_file).expect("state file");
    let at = bytes.len() - 3;
    bytes[at] ^= 0x40;
    std::fs::write(&state_file, bytes).expect("corrupt");
    let corrupt = Phase {
        state: &path("state-corrupt"),
        from_savepoint: Some(&sp2),
        ..third
    };
    let error = run(&corrupt, &path("out-corrupt"))
        .expect_err("corrupt state file")
        .to_string();
    assert!(error.contains("state-00001.kgs"), "{error}");
    assert!(error.contains("crc32"), "{error}");
    let manifest = sp1.join("_savepoint");
    let mut bytes = std::fs::read(&manifest).expect("manifest");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&manifest, bytes).expect("corrupt");
    let corrupt = Phase {
        state: &path("state-corrupt-manifest"),
        from_savepoint: Some(&sp1),
        ..third
    };
    let error = run(&corrupt, &path("out-corrupt-manifest"))
        .expect_err("corrupt manifest")
        .to_string();
    assert!(error.contains("_savepoint"), "{error}");
}

/// The committed lines of `dir`'s part files of checkpoints up to `last`.
fn committed_up_to(dir: &Path, last: u64) -> std::collections::HashMap<String, u32> {
    let mut lines = std::collections::HashMap::new();
    for entry in std::fs::read_dir(dir).expect("output dir") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .to_string();
        let Some(checkpoint) = name
            .strip_suffix(".jsonl")
            .and_then(|n| n.rsplit_once('-'))
            .and_then(|(_, c)| c.parse::<u64>().ok())
        else {
            continue;
        };
        if name.starts_with('.') || checkpoint > last {
            continue;
        }
        for line in std::fs::read_to_string(&path).expect("read").lines() {
            *lines.entry(line.to_string()).or_insert(0) += 1;
        }
    }
    lines
}

/// A savepoint without stop: the job keeps running to its end (its output is complete), and
/// the savepoint restored on another shard count produces exactly what followed it.
#[test]
fn a_savepoint_without_stop_keeps_the_job_running_and_restores_what_follows() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = |name: &str| dir.path().join(name);
    let reference_out = path("reference");
    let reference = Phase {
        shards: 2,
        state: &path("reference-state"),
        from_savepoint: None,
        limit: PER_SPLIT,
        stop_into: None,
        fold_name: "fold",
    };
    run(&reference, &reference_out).expect("reference run");
    let expected = outputs(&reference_out);

    // Runs to the gate, takes the savepoint, then opens the gate and runs to the end.
    let out = path("out");
    let savepoint = path("savepoint");
    let phase = Phase {
        state: &path("state"),
        limit: PER_SPLIT / 2,
        ..reference
    };
    let gate = GatedSource {
        limit: Arc::new(AtomicU64::new(phase.limit)),
        at_gate: Arc::new(AtomicUsize::new(0)),
    };
    let handle = build(&phase, &out, &gate)
        .expect("env")
        .execute()
        .expect("start");
    let started = Instant::now();
    while gate.at_gate.load(Ordering::Acquire) < SPLITS {
        assert!(started.elapsed() < Duration::from_secs(60), "gate");
        std::thread::sleep(Duration::from_millis(5));
    }
    handle
        .savepoint(&savepoint, SavepointMode::Continue)
        .expect("request");
    while handle.savepoints().is_empty() {
        assert!(started.elapsed() < Duration::from_secs(60), "savepoint");
        std::thread::sleep(Duration::from_millis(5));
    }
    gate.limit.store(PER_SPLIT, Ordering::Release);
    let report = handle.wait().expect("job");
    assert!(!report.stopped_with_savepoint);
    let taken = &report.savepoints[0];
    assert_eq!(taken.error, None);
    for ((name, want), got) in OUTPUTS.iter().zip(&expected).zip(outputs(&out)) {
        assert_eq!(diff(want, &got), (0, 0, 0), "{name}: the job ran on");
    }

    // Restored on 3 shards into another directory: what the first job committed up to the
    // savepoint plus everything the restored job commits is the whole output, once.
    let restored_out = path("restored");
    let restored = Phase {
        shards: 3,
        state: &path("state-restored"),
        from_savepoint: Some(&savepoint),
        limit: PER_SPLIT,
        ..reference
    };
    run(&restored, &restored_out).expect("restored run");
    for ((name, want), after) in OUTPUTS.iter().zip(&expected).zip(outputs(&restored_out)) {
        let mut got = committed_up_to(&out.join(name), taken.checkpoint);
        for (line, n) in after {
            *got.entry(line).or_insert(0) += n;
        }
        assert_eq!(
            diff(want, &got),
            (0, 0, 0),
            "{name}: before + after savepoint"
        );
    }
}
