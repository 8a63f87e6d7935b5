//! Two-input operators: `connect` + `co_map` delivers every record of both inputs once;
//! `connect` + `key_by` co-locates equal keys of both sides, shown by an in-memory equi-join
//! that matches a nested-loop reference on 1 and 4 shards; the operator sees strictly increasing
//! watermarks ending at END_OF_TIME after both inputs ended (the minimum rule itself is unit
//! tested on `InputFrontier`).

use std::collections::HashMap;
use std::time::Duration;

use corestrom::prelude::*;
use corestrom::runtime::two_input::{Side, TwoInputOperator};
use corestrom::runtime::{Batch, BoxCollector, END_OF_TIME, OpResult, Signal, StreamStatus};

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Either {
    Number(u64),
    Word(String),
}

#[test]
fn co_map_delivers_both_inputs_once() {
    for shards in [1, 4] {
        let env = Env::builder().shards(shards).build().expect("config");
        let numbers = env.from_vec((0..5000u64).collect());
        let words = env.from_vec((0..300).map(|i| format!("w{i}")).collect::<Vec<String>>());
        let out = numbers
            .connect(&words.rebalance())
            .co_map(Either::Number, Either::Word)
            .collect();
        env.execute_and_wait().expect("job");
        let mut got = out.take();
        got.sort();
        let mut expected: Vec<Either> = (0..5000).map(Either::Number).collect();
        expected.extend((0..300).map(|i| Either::Word(format!("w{i}"))));
        expected.sort();
        assert_eq!(got, expected, "shards = {shards}");
    }
}

/// A regular inner equi-join kept in memory, checking the watermarks it sees.
struct HashJoin {
    left: HashMap<u32, Vec<u64>>,
    right: HashMap<u32, Vec<String>>,
    out: Batch<(u32, u64, String)>,
    down: BoxCollector<(u32, u64, String)>,
    last_watermark: EventTime,
    watermark_violations: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl TwoInputOperator<(u32, u64), (u32, String)> for HashJoin {
    fn push_first(&mut self, batch: &mut Batch<(u32, u64)>) -> OpResult {
        for r in batch.records.drain(..) {
            let (k, v) = r.value;
            for w in self.right.get(&k).into_iter().flatten() {
                self.out.records.push(Record::new(r.ts, (k, v, w.clone())));
            }
            self.left.entry(k).or_default().push(v);
        }
        self.down.push(&mut self.out)
    }

    fn push_second(&mut self, batch: &mut Batch<(u32, String)>) -> OpResult {
        for r in batch.records.drain(..) {
            let (k, w) = r.value;
            for v in self.left.get(&k).into_iter().flatten() {
                self.out.records.push(Record::new(r.ts, (k, *v, w.clone())));
            }
            self.right.entry(k).or_default().push(w);
        }
        self.down.push(&mut self.out)
    }

    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        if watermark <= self.last_watermark {
            self.watermark_violations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.last_watermark = watermark;
        self.down.signal(Signal::Watermark(watermark))
    }

    fn on_status(&mut self, status: StreamStatus) -> OpResult {
        self.down.signal(Signal::Status(status))
    }

    fn on_other(&mut self, _side: Side, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }

    fn on_end(&mut self) -> OpResult {
        if self.last_watermark != END_OF_TIME {
            self.watermark_violations
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        self.down.signal(Signal::End)
    }
}

#[test]
fn keyed_connect_colocates_equal_keys() {
    let left: Vec<(u32, u64)> = (0..3000u64).map(|i| ((i * 7 % 101) as u32, i)).collect();
    let right: Vec<(u32, String)> = (0..400u32)
        .map(|i| (i * 3 % 101, format!("r{i}")))
        .collect();
    let mut expected = Vec::new();
    for (k, v) in &left {
        for (k2, w) in &right {
            if k == k2 {
                expected.push((*k, *v, w.clone()));
            }
        }
    }
    expected.sort();
    for shards in [1, 4] {
        let violations = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let env = Env::builder().shards(shards).build().expect("config");
        let strategy = WatermarkStrategy::monotonous().with_idleness(Duration::from_secs(60));
        let l = env
            .from_vec(left.clone())
            .with_timestamps(|p: &(u32, u64)| p.1 as EventTime, strategy);
        let r = env
            .from_vec(right.clone())
            .with_timestamps(|p: &(u32, String)| p.0 as EventTime, strategy);
        let v = std::sync::Arc::clone(&violations);
        let out = l
            .connect(&r)
            .key_by(|p: &(u32, u64)| p.0, |p: &(u32, String)| p.0)
            .transform("hash join", move |_, down| HashJoin {
                left: HashMap::new(),
                right: HashMap::new(),
                out: Batch::with_capacity(64),
                down,
                last_watermark: EventTime::MIN,
                watermark_violations: std::sync::Arc::clone(&v),
            })
            .collect();
        env.execute_and_wait().expect("job");
        let mut got = out.take();
        got.sort();
        assert_eq!(got.len(), expected.len());
        assert_eq!(got, expected, "shards = {shards}");
        assert_eq!(violations.load(std::sync::atomic::Ordering::Relaxed), 0);
    }
}
