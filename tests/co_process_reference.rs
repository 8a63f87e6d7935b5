//! The keyed co-process function (`connect(..).key_by(..).process(..)`) against a
//! straightforward single-threaded reference, on random out-of-order input with late records and
//! several keys, on 1 and 4 shards; plus hand-computed cases for the watermark (the minimum of
//! both inputs'), timer deduplication across the inputs, and timers registered behind the
//! watermark.
//!
//! The function under test keeps per key, in map state, a bucket per 10 ms of event time (the
//! sum of left ids + 1 and the count of right records), and registers an event-time timer at the
//! bucket's end from either input (so both inputs register the same timers). A right record
//! whose id is a multiple of 7 deletes its bucket and timer instead. On the timer it emits the
//! bucket, the key's record count (value state shared by both inputs) and the watermark; odd
//! right ids go to the side output with the watermark seen in `process_element2`.
//!
//! - *Exact replay, 1 shard*: one known interleaving with each side's own watermark (see
//!   `support::two_sides`); the reference replays Flink's rules over plain maps: a timer fires
//!   when the watermark (minimum of both sides') reaches it, a timer registered at or behind the
//!   watermark fires at the next rise, output timestamps are the timer's.
//! - *1 and 4 shards, nothing late* (disorder within the watermark bound) and no deletions:
//!   every record of a bucket arrives before its timer fires, so the buckets do not depend on
//!   the interleaving (the counts and watermarks seen do, and are left out).

mod support;

use std::collections::{BTreeMap, BTreeSet};

use corestrom_operators::TimeDomain;
use corestrom_operators::prelude::*;
use corestrom_operators::state::{MapState, ValueState, VoidNamespace};
use proptest::prelude::*;
use support::two_sides::{self, Rec, Side, Step};

/// (key, bucket end, sum of left ids + 1, right count, key's records so far, watermark).
type Out = (u64, i64, u64, u64, u64, i64);
/// (right id, watermark in process_element2).
type SideOut = (u64, i64);

fn bucket_end(ts: i64) -> i64 {
    (ts.div_euclid(10) + 1) * 10
}

#[derive(Clone)]
struct Buckets {
    deletes: bool,
    state: BucketState,
}

struct BucketState {
    buckets: MapState<u64, VoidNamespace, i64, (u64, u64)>,
    records: ValueState<u64, VoidNamespace, u64>,
}

impl Clone for BucketState {
    fn clone(&self) -> Self {
        // Each shard's instance starts with empty state.
        BucketState {
            buckets: MapState::new(None),
            records: ValueState::new(None),
        }
    }
}

impl Buckets {
    fn new(deletes: bool) -> Self {
        Buckets {
            deletes,
            state: BucketState {
                buckets: MapState::new(None),
                records: ValueState::new(None),
            },
        }
    }

    /// Counts the record for its key and returns its bucket, checking the context.
    fn enter(&mut self, r: &Rec, ctx: &mut ProcessContext<'_, u64, Out, SideOut>) -> i64 {
        assert_eq!(*ctx.key(), r.key);
        assert_eq!(ctx.timestamp(), Some(r.ts));
        assert_eq!(ctx.time_domain(), None);
        let seen = self.state.records.value(ctx.state()).copied().unwrap_or(0);
        self.state.records.update(ctx.state(), seen + 1);
        bucket_end(r.ts)
    }

    fn add(
        &mut self,
        bucket: i64,
        ctx: &ProcessContext<'_, u64, Out, SideOut>,
        sum: u64,
        count: u64,
    ) {
        let (s, c) = self
            .state
            .buckets
            .get(ctx.state(), &bucket)
            .copied()
            .unwrap_or((0, 0));
        self.state
            .buckets
            .put(ctx.state(), bucket, (s + sum, c + count));
    }
}

impl KeyedCoProcessFunction<u64, Rec, Rec> for Buckets {
    type Out = Out;
    type Side = SideOut;

    fn process_element1(&mut self, r: Rec, ctx: &mut ProcessContext<'_, u64, Out, SideOut>) {
        let bucket = self.enter(&r, ctx);
        self.add(bucket, ctx, r.id + 1, 0);
        ctx.register_event_time_timer(bucket);
    }

    fn process_element2(&mut self, r: Rec, ctx: &mut ProcessContext<'_, u64, Out, SideOut>) {
        let bucket = self.enter(&r, ctx);
        if !r.id.is_multiple_of(2) {
            let wm = ctx.current_watermark();
            ctx.side_output((r.id, wm));
        }
        if self.deletes && r.id.is_multiple_of(7) {
            ctx.delete_event_time_timer(bucket);
            self.state.buckets.remove(ctx.state(), &bucket);
            return;
        }
        self.add(bucket, ctx, 0, 1);
        ctx.register_event_time_timer(bucket);
    }

    fn on_timer(&mut self, timestamp: i64, ctx: &mut ProcessContext<'_, u64, Out, SideOut>) {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::EventTime));
        assert_eq!(ctx.timestamp(), Some(timestamp));
        let (sum, count) = self
            .state
            .buckets
            .remove(ctx.state(), &timestamp)
            .expect("a timer has its bucket");
        let seen = self.state.records.value(ctx.state()).copied().unwrap_or(0);
        let wm = ctx.current_watermark();
        ctx.output((*ctx.key(), timestamp, sum, count, seen, wm));
    }
}

fn run(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    deletes: bool,
) -> (Vec<Out>, Vec<SideOut>) {
    let env = Env::builder()
        .shards(splits.len())
        .batch_records(batch_records)
        .build()
        .expect("config");
    let (left, right) = two_sides::streams(&env, splits, bound_ms);
    let streams = left
        .connect(&right)
        .key_by(|r: &Rec| r.key, |r: &Rec| r.key)
        .process(Buckets::new(deletes));
    let main = streams.main().collect();
    let side = streams.side_output().collect();
    env.execute_and_wait().expect("job succeeds");
    let records = main.take_records();
    for r in &records {
        assert_eq!(r.ts, r.value.1, "timer output carries the timer's time");
    }
    let mut main: Vec<Out> = records.into_iter().map(|r| r.value).collect();
    main.sort();
    let mut side = side.take();
    side.sort();
    (main, side)
}

/// The same rules over plain maps, replaying the one-shard interleaving.
fn reference(split: &[(Side, Rec)], bound_ms: i64, deletes: bool) -> (Vec<Out>, Vec<SideOut>) {
    let mut buckets: BTreeMap<(u64, i64), (u64, u64)> = BTreeMap::new();
    let mut timers: BTreeSet<(i64, u64)> = BTreeSet::new();
    let mut seen: BTreeMap<u64, u64> = BTreeMap::new();
    let (mut out, mut side) = (Vec::new(), Vec::new());
    two_sides::replay(split, bound_ms, |step| match step {
        Step::Record(s, r, watermark) => {
            *seen.entry(r.key).or_default() += 1;
            let t = bucket_end(r.ts);
            if s == Side::Right && !r.id.is_multiple_of(2) {
                side.push((r.id, watermark));
            }
            if s == Side::Right && deletes && r.id.is_multiple_of(7) {
                timers.remove(&(t, r.key));
                buckets.remove(&(r.key, t));
                return;
            }
            let b = buckets.entry((r.key, t)).or_default();
            match s {
                Side::Left => b.0 += r.id + 1,
                Side::Right => b.1 += 1,
            }
            timers.insert((t, r.key));
        }
        Step::Watermark(watermark) => {
            while let Some(&(t, key)) = timers.first() {
                if t > watermark {
                    break;
                }
                timers.pop_first();
                let (sum, count) = buckets.remove(&(key, t)).expect("bucket");
                out.push((key, t, sum, count, seen[&key], watermark));
            }
        }
    });
    out.sort();
    side.sort();
    (out, side)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// One shard, one known interleaving, late records, deletions: exactly the reference.
    #[test]
    fn co_process_matches_the_reference_exactly(
        bound in 0i64..10,
        mut splits in two_sides::input_strategy(1, 3, 30, 150),
    ) {
        two_sides::close(&mut splits, 99, 1_000);
        let (want, want_side) = reference(&splits[0], bound, true);
        let (got, side) = run(splits, bound, 1, true);
        prop_assert_eq!(got, want, "bound {}", bound);
        prop_assert_eq!(side, want_side);
    }

    /// 1 and 4 shards, any interleaving and batch size, nothing late: the buckets equal the
    /// reference's.
    #[test]
    fn co_process_on_four_shards_without_late_records(
        (bound, splits) in (prop_oneof![Just(1usize), Just(4usize)], 0i64..20)
            .prop_flat_map(|(shards, bound)| (Just(bound), two_sides::input_strategy(shards, 5, bound, 200))),
        batch_records in 1usize..16,
    ) {
        let mut all: Vec<(Side, Rec)> = splits.iter().flatten().copied().collect();
        all.sort_by_key(|(_, r)| r.id);
        prop_assert_eq!(two_sides::surely_on_time(&splits, bound).len(), all.len());
        let (want, want_side) = reference(&all, i64::MAX / 4, false);
        let (got, side) = run(splits, bound, batch_records, false);
        let buckets = |v: Vec<Out>| {
            let mut v: Vec<_> = v.into_iter().map(|o| (o.0, o.1, o.2, o.3)).collect();
            v.sort();
            v
        };
        prop_assert_eq!(buckets(got), buckets(want));
        let ids = |v: Vec<SideOut>| {
            let mut v: Vec<u64> = v.into_iter().map(|s| s.0).collect();
            v.sort();
            v
        };
        prop_assert_eq!(ids(side), ids(want_side));
    }
}

fn rec(key: u64, ts: i64, id: u64) -> Rec {
    Rec { key, ts, id }
}

#[test]
fn timers_follow_the_minimum_watermark_and_fire_once_for_both_inputs() {
    // Bound 0. Left and right both register the timer at 10 for key 1: it fires once. The
    // left side runs ahead to 30 (watermark 29) but the right stays at 9 (watermark 8), so the
    // timer waits until the right side reaches 11 (watermark 10).
    let input = vec![vec![
        (Side::Left, rec(1, 3, 0)),   // bucket 10: sum 1
        (Side::Right, rec(1, 5, 1)),  // bucket 10: count 1; side (1, MIN)
        (Side::Left, rec(1, 30, 2)),  // bucket 40; left watermark 29
        (Side::Right, rec(1, 9, 3)),  // count 2; watermark min(29, 8) = 8; side (3, 5 - 1)
        (Side::Right, rec(1, 11, 5)), // bucket 20; watermark 10: timer 10 fires, 5 records
    ]];
    let mut input = input;
    // Both sides reach 100 (watermark 99) before the end: timers 20 and 40 fire at 99.
    two_sides::close(&mut input, 9, 100);
    let (got, side) = run(input, 0, 1, false);
    assert_eq!(
        got,
        vec![
            (1, 10, 1, 2, 5, 10),
            (1, 20, 0, 1, 5, 99),
            (1, 40, 3, 0, 5, 99),
            (9, 110, 6 + 1, 1, 2, i64::MAX),
        ]
    );
    assert_eq!(side, vec![(1, i64::MIN), (3, 4), (5, 8), (7, 10)]);
}

#[test]
fn a_timer_behind_the_watermark_fires_at_the_next_rise() {
    // Bound 0: after left 25 and right 25 the watermark is 24; a late left record at 3
    // registers the timer at 10, behind the watermark; it fires when the watermark rises to 25.
    let input = vec![vec![
        (Side::Left, rec(1, 25, 0)),
        (Side::Right, rec(1, 25, 1)), // watermark 24
        (Side::Left, rec(1, 3, 2)),   // timer 10 <= 24
        (Side::Left, rec(1, 26, 3)),  // left watermark 25, still 24 overall
        (Side::Right, rec(1, 26, 4)), // watermark 25: timer 10 fires
    ]];
    let mut input = input;
    two_sides::close(&mut input, 9, 100);
    let (got, _) = run(input, 0, 1, false);
    assert_eq!(
        got,
        vec![
            (1, 10, 3, 0, 5, 25),
            (1, 30, 1 + 4, 2, 5, 99),
            (9, 110, 5 + 1, 1, 2, i64::MAX)
        ]
    );
}

#[test]
fn a_deleted_timer_never_fires() {
    let input = vec![vec![
        (Side::Left, rec(1, 3, 1)),
        (Side::Right, rec(1, 4, 7)), // deletes bucket 10 and its timer
        (Side::Left, rec(2, 3, 8)),  // another key keeps its timer at 10
    ]];
    let (got, side) = run(input, 100, 1, true);
    assert_eq!(got, vec![(2, 10, 9, 0, 1, i64::MAX)]);
    assert_eq!(side, vec![(7, i64::MIN)]);
}
