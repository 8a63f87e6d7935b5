//! Event-time windows (tumbling, sliding, session, and global windows with a count trigger)
//! produce exactly what a naive single-threaded model of Flink's rules produces, as multisets of
//! `(key, window start, window end, count, sum)` with timestamp `end - 1`, plus the late-data
//! side output.
//!
//! How it is made deterministic:
//! - *Exact replay, 1 shard*: the source emits batches of one record and the bounded
//!   out-of-orderness strategy emits a watermark after each record, so the operator sees one
//!   known interleaving of records and watermarks. The disorder is larger than the watermark
//!   bound, so records are late, windows fire early, late firings happen within the allowed
//!   lateness (0 or more) and records beyond it go to the side output. The model replays the
//!   same sequence with Flink's rules (windows fire when the watermark reaches `end - 1`; a
//!   record re-fires a window the watermark has passed if `end - 1 + L > watermark`; a record
//!   whose windows are all past that goes to the side output; sessions merge when they touch).
//! - *1 and 4 shards, nothing late*: every split's disorder stays within the watermark bound,
//!   so no record can be late at any shard whatever the arrival order across shards; every
//!   window then fires exactly once with all its records, which the model computes by grouping.
//!   For count windows each key's records come from one split, so their order is fixed.
//!
//! The model keeps every element of every window in lists (no panes, no incremental state), so
//! it shares no logic with the operators under test.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use corestrom_operators::prelude::*;
use corestrom_runtime::END_OF_TIME;
use proptest::prelude::*;

type In = (u64, i64, u64); // key, timestamp, value
type Out = (u64, i64, i64, u64, u64); // key, start, end, count, sum

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tumbling { size: i64 },
    Sliding { size: i64, slide: i64 },
    Session { gap: i64 },
}

fn start_of(ts: i64, size: i64) -> i64 {
    ts - ts.rem_euclid(size)
}

/// The model's window assignment, straight from the definitions.
fn windows_of(kind: Kind, ts: i64) -> Vec<(i64, i64)> {
    match kind {
        Kind::Tumbling { size } => vec![(start_of(ts, size), start_of(ts, size) + size)],
        Kind::Sliding { size, slide } => {
            let mut out = Vec::new();
            let mut s = start_of(ts, slide);
            while s > ts - size {
                out.push((s, s + size));
                s -= slide;
            }
            out
        }
        Kind::Session { gap } => vec![(ts, ts + gap)],
    }
}

struct ModelWindow {
    values: Vec<u64>,
    fired_by_timer: bool,
}

/// Flink's window rules replayed naively over lists of elements.
struct Model {
    kind: Kind,
    lateness: i64,
    watermark: i64,
    windows: BTreeMap<(u64, i64, i64), ModelWindow>,
    out: Vec<Out>,
    late: Vec<In>,
}

impl Model {
    fn emit(&mut self, key: u64, start: i64, end: i64) {
        let values = &self.windows[&(key, start, end)].values;
        self.out
            .push((key, start, end, values.len() as u64, values.iter().sum()));
    }

    fn is_late(&self, end: i64) -> bool {
        (end - 1).saturating_add(self.lateness) <= self.watermark
    }

    fn record(&mut self, (key, ts, value): In) {
        let mut targets = windows_of(self.kind, ts);
        if let Kind::Session { .. } = self.kind {
            let (mut start, mut end) = targets[0];
            let touching: Vec<(u64, i64, i64)> = self
                .windows
                .keys()
                .filter(|(k, s, e)| *k == key && *s <= ts + (end - ts) && *e >= ts)
                .copied()
                .collect();
            if touching.is_empty() {
                if self.is_late(end) {
                    targets.clear();
                }
            } else {
                let mut values = Vec::new();
                for id in &touching {
                    start = start.min(id.1);
                    end = end.max(id.2);
                    values.extend(self.windows.remove(id).expect("present").values);
                }
                // A merged window the watermark has passed fires through the element (below);
                // otherwise it waits for its timer.
                self.windows.insert(
                    (key, start, end),
                    ModelWindow {
                        values,
                        fired_by_timer: false,
                    },
                );
                targets = vec![(start, end)];
            }
        }
        let mut added = false;
        for (start, end) in targets {
            if self.is_late(end) {
                continue;
            }
            added = true;
            let w = self
                .windows
                .entry((key, start, end))
                .or_insert(ModelWindow {
                    values: vec![],
                    fired_by_timer: false,
                });
            w.values.push(value);
            if end - 1 <= self.watermark {
                w.fired_by_timer = true;
                self.emit(key, start, end);
            }
        }
        if !added && ts.saturating_add(self.lateness) <= self.watermark {
            self.late.push((key, ts, value));
        }
    }

    fn advance(&mut self, watermark: i64) {
        if watermark <= self.watermark {
            return;
        }
        self.watermark = watermark;
        let due: Vec<_> = self
            .windows
            .iter()
            .filter(|(id, w)| !w.fired_by_timer && id.2 - 1 <= watermark)
            .map(|(id, _)| *id)
            .collect();
        for (k, s, e) in due {
            self.windows
                .get_mut(&(k, s, e))
                .expect("present")
                .fired_by_timer = true;
            self.emit(k, s, e);
        }
        let lateness = self.lateness;
        self.windows
            .retain(|id, _| (id.2 - 1).saturating_add(lateness) > watermark);
    }
}

/// Replays `input` as the 1-shard pipeline sees it: each record, then the watermark
/// `max_ts - bound - 1`.
fn model_replay(kind: Kind, lateness: i64, bound: i64, input: &[In]) -> (Vec<Out>, Vec<In>) {
    let mut m = Model {
        kind,
        lateness,
        watermark: i64::MIN,
        windows: BTreeMap::new(),
        out: vec![],
        late: vec![],
    };
    let mut max_ts = i64::MIN;
    for &r in input {
        m.record(r);
        max_ts = max_ts.max(r.1);
        m.advance(max_ts - bound - 1);
    }
    m.advance(END_OF_TIME);
    (m.out, m.late)
}

#[derive(Clone, Copy, Debug)]
enum Function {
    Aggregate,
    Process,
    Reduce,
}

#[derive(Clone)]
struct CountSum;

impl AggregateFunction<In> for CountSum {
    type Acc = (u64, u64);
    type Out = (u64, u64);
    fn create_accumulator(&self) -> (u64, u64) {
        (0, 0)
    }
    fn add(&self, v: In, acc: &mut (u64, u64)) {
        acc.0 += 1;
        acc.1 += v.2;
    }
    fn get_result(&self, acc: &(u64, u64)) -> (u64, u64) {
        *acc
    }
    fn merge(&self, acc: &mut (u64, u64), o: &(u64, u64)) {
        acc.0 += o.0;
        acc.1 += o.1;
    }
}

/// Builds the window operator for `kind` on `keyed` with `function`.
fn windowed<KF>(
    keyed: &KeyedStream<In, u64, KF>,
    kind: Kind,
    lateness: i64,
    function: Function,
) -> WindowStreams<Out, In>
where
    KF: Fn(&In) -> u64 + Clone + Send + Sync + 'static,
{
    let ms = |v: i64| Duration::from_millis(v as u64);
    let lateness = ms(lateness);
    match kind {
        Kind::Tumbling { size } => finish(
            keyed
                .window(TumblingEventTimeWindows::of(ms(size)))
                .allowed_lateness(lateness),
            function,
        ),
        Kind::Sliding { size, slide } => finish(
            keyed
                .window(SlidingEventTimeWindows::of(ms(size), ms(slide)))
                .allowed_lateness(lateness),
            function,
        ),
        Kind::Session { gap } => finish(
            keyed
                .window(EventTimeSessionWindows::with_gap(ms(gap)))
                .allowed_lateness(lateness),
            function,
        ),
    }
}

fn finish<KF, A, Tr>(
    w: WindowedStream<In, u64, KF, A, Tr>,
    function: Function,
) -> WindowStreams<Out, In>
where
    KF: Fn(&In) -> u64 + Clone + Send + Sync + 'static,
    A: corestrom_operators::window::WindowAssigner<W = TimeWindow>,
    Tr: Trigger<In, TimeWindow>,
{
    match function {
        Function::Aggregate => w.aggregate_with(
            CountSum,
            |k: &u64, win: &TimeWindow, (c, s), out: &mut Vec<Out>| {
                out.push((*k, win.start, win.end, c, s))
            },
        ),
        Function::Process => w.process(
            |k: &u64, win: &TimeWindow, all: Vec<In>, out: &mut Vec<Out>| {
                out.push((
                    *k,
                    win.start,
                    win.end,
                    all.len() as u64,
                    all.iter().map(|r| r.2).sum(),
                ))
            },
        ),
        Function::Reduce => w.reduce_with(
            |a: In, b: In| (a.0, a.1, a.2 + b.2 + (1 << 32)),
            // The reduce carries count in the high bits: one element is (value), each combine
            // adds 2^32 to count the extra element.
            |k: &u64, win: &TimeWindow, r: In, out: &mut Vec<Out>| {
                out.push((*k, win.start, win.end, (r.2 >> 32) + 1, r.2 & 0xffff_ffff))
            },
        ),
    }
}

/// Runs the pipeline: `splits[i]` is shard i's input, in order.
fn run(
    splits: Vec<Vec<In>>,
    bound: i64,
    batch_records: usize,
    build: impl FnOnce(&KeyedStream<In, u64, fn(&In) -> u64>) -> WindowStreams<Out, In>,
) -> (Vec<Out>, Vec<In>) {
    let shards = splits.len();
    let env = Env::builder()
        .shards(shards)
        .batch_records(batch_records)
        .build()
        .expect("config");
    let splits = Arc::new(splits);
    let keyed = env
        .from_iter(move |split| splits[split.shard].clone())
        .with_timestamps(
            |r: &In| r.1,
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound as u64)),
        )
        .key_by((|r: &In| r.0) as fn(&In) -> u64);
    let streams = build(&keyed);
    let main = streams.main().collect();
    let late = streams.late_data().collect();
    env.execute_and_wait().expect("job succeeds");
    let records = main.take_records();
    for r in &records {
        assert_eq!(r.ts, r.value.2 - 1, "results carry end - 1: {r:?}");
    }
    let mut out: Vec<Out> = records.into_iter().map(|r| r.value).collect();
    let mut late = late.take();
    out.sort();
    late.sort();
    (out, late)
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (1i64..40).prop_map(|size| Kind::Tumbling { size }),
        (1i64..15, 1i64..5).prop_map(|(slide, k)| Kind::Sliding {
            size: slide * k,
            slide
        }),
        (2i64..30, 1i64..30).prop_map(|(size, slide)| Kind::Sliding {
            size: size.max(slide),
            slide: slide.min(size)
        }),
        (1i64..20).prop_map(|gap| Kind::Session { gap }),
    ]
}

fn function_strategy() -> impl Strategy<Value = Function> {
    prop_oneof![
        Just(Function::Aggregate),
        Just(Function::Process),
        Just(Function::Reduce)
    ]
}

/// Random out-of-order input: timestamps drift upward with jitter of up to `disorder`.
fn input_strategy(disorder: i64, len: usize) -> impl Strategy<Value = Vec<In>> {
    prop::collection::vec((0u64..4, 0i64..=disorder, 1u64..100), 1..len).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (k, jitter, value))| (k, i as i64 * 2 - jitter, value))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Exact replay on one shard, with late records, late firings and the late side output.
    #[test]
    fn windows_match_the_model_with_late_data(
        kind in kind_strategy(),
        function in function_strategy(),
        lateness in prop_oneof![Just(0i64), 1i64..30],
        bound in 0i64..10,
        input in input_strategy(40, 120),
    ) {
        let (want, want_late) = model_replay(kind, lateness, bound, &input);
        let (got, got_late) = run(vec![input], bound, 1, |k| windowed(k, kind, lateness, function));
        prop_assert_eq!(got, sorted(want), "kind {:?} lateness {} bound {}", kind, lateness, bound);
        prop_assert_eq!(got_late, sorted(want_late));
    }

    /// 1 and 4 shards with arbitrary interleaving: nothing is late, every window fires once.
    #[test]
    fn windows_match_the_model_on_four_shards(
        kind in kind_strategy(),
        function in function_strategy(),
        lateness in prop_oneof![Just(0i64), 1i64..30],
        shards in prop_oneof![Just(1usize), Just(4usize)],
        bound in 0i64..20,
        inputs in prop::collection::vec(input_strategy(0, 80), 4),
        batch_records in 1usize..16,
    ) {
        // Disorder within each split below the bound: clamp every record to max_so_far - bound.
        let splits: Vec<Vec<In>> = inputs
            .into_iter()
            .take(shards)
            .map(|split| {
                let mut max = i64::MIN;
                split.into_iter().enumerate().map(|(i, (k, ts, v))| {
                    let ts = ts - (i as i64 * 7919 % (bound + 1));
                    let ts = ts.max(max.saturating_sub(bound));
                    max = max.max(ts);
                    (k, ts, v)
                }).collect()
            })
            .collect();
        let all: Vec<In> = splits.iter().flatten().copied().collect();
        // With nothing late the result does not depend on the interleaving: replay the
        // concatenation with a watermark that never passes a record.
        let (want, want_late) = model_replay(kind, lateness, i64::MAX / 4, &all);
        prop_assert!(want_late.is_empty());
        let (got, got_late) = run(splits, bound, batch_records, |k| windowed(k, kind, lateness, function));
        prop_assert_eq!(got, sorted(want), "kind {:?} shards {}", kind, shards);
        prop_assert!(got_late.is_empty(), "late: {:?}", got_late);
    }

    /// Count windows (global windows, purging count trigger): every `n` records of a key form
    /// one result, in arrival order; leftovers never fire. Each key's records come from one
    /// split so their order is fixed on 4 shards too.
    #[test]
    fn count_windows_match_the_model(
        n in 1u64..6,
        shards in prop_oneof![Just(1usize), Just(4usize)],
        input in prop::collection::vec((0u64..8, 1u64..100), 0..200),
    ) {
        let mut splits = vec![Vec::new(); shards];
        let mut want = Vec::new();
        let mut open: BTreeMap<u64, Vec<u64>> = BTreeMap::new();
        for (i, &(key, value)) in input.iter().enumerate() {
            splits[key as usize % shards].push((key, i as i64, value));
            let w = open.entry(key).or_default();
            w.push(value);
            if w.len() as u64 == n {
                want.push((key, n, w.iter().sum::<u64>()));
                w.clear();
            }
        }
        let env = Env::builder().shards(shards).batch_records(3).build().expect("config");
        let splits = Arc::new(splits);
        let out = env
            .from_iter(move |split| splits[split.shard].clone())
            .key_by(|r: &In| r.0)
            .count_window(n)
            .aggregate_with(CountSum, |k: &u64, _w: &GlobalWindow, (c, s), out: &mut Vec<(u64, u64, u64)>| {
                out.push((*k, c, s))
            })
            .main()
            .collect();
        env.execute_and_wait().expect("job succeeds");
        let records = out.take_records();
        prop_assert!(records.iter().all(|r| r.ts == i64::MAX), "global window results carry MAX");
        let got = sorted(records.into_iter().map(|r| r.value).collect());
        prop_assert_eq!(got, sorted(want));
    }
}
