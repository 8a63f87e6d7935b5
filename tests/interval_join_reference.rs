//! The interval join (`interval_join(..).between(lower, upper)`) against a straightforward
//! single-threaded reference, on random out-of-order input with late records and several keys,
//! plus hand-computed boundary cases.
//!
//! - *Exact replay, 1 shard*: one source per shard feeds both sides, each with its own
//!   bounded-out-of-orderness watermark, in batches of one record, so the operator sees one
//!   known interleaving (see `support::two_sides`). The reference replays it with Flink's rules
//!   written out plainly over lists: a record below the watermark (the minimum of both sides')
//!   is dropped; otherwise it pairs with every kept record of the other side and the same key
//!   whose timestamp is within the bounds, and is kept until the watermark reaches its cleanup
//!   time. Late records go to the late-data side outputs (both asked for): the reference lists
//!   the ids it dropped per side and the join must give exactly those.
//! - *1 and 4 shards, any interleaving*: what is emitted depends on how the shards interleave,
//!   but it must lie between two sets: every pair of records that no interleaving can make late
//!   (`surely_on_time`) is emitted (neither can be evicted before the other arrives, as that
//!   would need a watermark above the later one), and nothing outside the valid pairs is; no
//!   pair twice.

mod support;

use std::collections::HashSet;

use corestrom_operators::join::{JoinContext, ProcessJoinFunction};
use corestrom_operators::prelude::*;
use proptest::prelude::*;
use support::two_sides::{self, Rec, Side, Step};

/// (left id, right id, left ts, right ts).
type Pair = (u64, u64, i64, i64);

#[derive(Clone, Copy, Debug)]
struct Bounds {
    lower: i64,
    upper: i64,
    lower_exclusive: bool,
    upper_exclusive: bool,
}

impl Bounds {
    fn inclusive(lower: i64, upper: i64) -> Self {
        Bounds {
            lower,
            upper,
            lower_exclusive: false,
            upper_exclusive: false,
        }
    }

    /// The definition: `l + lower <= r <= l + upper`, strict where exclusive.
    fn contains(&self, l: i64, r: i64) -> bool {
        let above = if self.lower_exclusive {
            r > l + self.lower
        } else {
            r >= l + self.lower
        };
        let below = if self.upper_exclusive {
            r < l + self.upper
        } else {
            r <= l + self.upper
        };
        above && below
    }
}

/// Emits every pair on the main output, and pairs whose ids sum to a multiple of 3 on the side
/// output too, checking the context's timestamps.
#[derive(Clone)]
struct PairsWithSide;

impl ProcessJoinFunction<Rec, Rec> for PairsWithSide {
    type Out = Pair;
    type Side = (u64, u64);

    fn process_element(&mut self, l: &Rec, r: &Rec, ctx: &mut JoinContext<'_, Pair, (u64, u64)>) {
        assert_eq!(l.key, r.key, "pairs are of one key");
        assert_eq!(ctx.left_timestamp(), l.ts);
        assert_eq!(ctx.right_timestamp(), r.ts);
        assert_eq!(ctx.timestamp(), l.ts.max(r.ts));
        ctx.output((l.id, r.id, l.ts, r.ts));
        if (l.id + r.id).is_multiple_of(3) {
            ctx.side_output((l.id, r.id));
        }
    }
}

/// What a run gives: the sorted main and side outputs, and the ids of the late left and right
/// records (sorted).
struct Joined {
    main: Vec<Pair>,
    side: Vec<(u64, u64)>,
    late_left: Vec<u64>,
    late_right: Vec<u64>,
}

/// Runs the join; returns the sorted main and side outputs.
fn run(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    b: Bounds,
) -> (Vec<Pair>, Vec<(u64, u64)>) {
    let joined = run_with_late(splits, bound_ms, batch_records, b);
    (joined.main, joined.side)
}

/// Runs the join with both late-data side outputs.
fn run_with_late(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    b: Bounds,
) -> Joined {
    let env = Env::builder()
        .shards(splits.len())
        .batch_records(batch_records)
        .build()
        .expect("config");
    let (left, right) = two_sides::streams(&env, splits, bound_ms);
    let mut joined = left
        .key_by(|r: &Rec| r.key)
        .interval_join(&right.key_by(|r: &Rec| r.key))
        .between(b.lower, b.upper)
        .side_output_left_late_data()
        .side_output_right_late_data();
    if b.lower_exclusive {
        joined = joined.lower_bound_exclusive();
    }
    if b.upper_exclusive {
        joined = joined.upper_bound_exclusive();
    }
    let streams = joined.process(PairsWithSide);
    let main = streams.main().collect();
    let side = streams.side_output().collect();
    let late_left = streams.left_late_data().collect();
    let late_right = streams.right_late_data().collect();
    env.execute_and_wait().expect("job succeeds");
    let late_ids = |late: Vec<Record<Rec>>| {
        let mut ids: Vec<u64> = late
            .into_iter()
            .map(|r| {
                assert_eq!(r.ts, r.value.ts, "late records keep their timestamp");
                r.value.id
            })
            .collect();
        ids.sort();
        ids
    };
    let late_left = late_ids(late_left.take_records());
    let late_right = late_ids(late_right.take_records());
    let records = main.take_records();
    for r in &records {
        assert_eq!(
            r.ts,
            r.value.2.max(r.value.3),
            "pairs carry max(l, r): {r:?}"
        );
    }
    let mut main: Vec<Pair> = records.into_iter().map(|r| r.value).collect();
    main.sort();
    let mut side = side.take();
    side.sort();
    Joined {
        main,
        side,
        late_left,
        late_right,
    }
}

fn side_of(main: &[Pair]) -> Vec<(u64, u64)> {
    let mut side: Vec<_> = main
        .iter()
        .filter(|p| (p.0 + p.1).is_multiple_of(3))
        .map(|p| (p.0, p.1))
        .collect();
    side.sort();
    side
}

/// Flink's interval join replayed over plain lists: the pairs, and the ids of the late left and
/// right records (sorted).
fn reference_with_late(
    split: &[(Side, Rec)],
    bound_ms: i64,
    b: Bounds,
) -> (Vec<Pair>, Vec<u64>, Vec<u64>) {
    // Flink moves exclusive bounds inward and cleans a left record up at `l + max(upper, 0)`,
    // a right one at `r + max(-lower, 0)`.
    let upper = b.upper - i64::from(b.upper_exclusive);
    let lower = b.lower + i64::from(b.lower_exclusive);
    let mut kept: Vec<(Side, Rec, i64)> = Vec::new(); // side, record, cleanup time
    let mut out = Vec::new();
    let (mut late_left, mut late_right) = (Vec::new(), Vec::new());
    two_sides::replay(split, bound_ms, |step| match step {
        Step::Record(side, r, watermark) => {
            if r.ts < watermark {
                match side {
                    Side::Left => late_left.push(r.id),
                    Side::Right => late_right.push(r.id),
                }
                return;
            }
            for (other_side, o, _) in &kept {
                if *other_side == side || o.key != r.key {
                    continue;
                }
                let (l, rr) = match side {
                    Side::Left => (r, *o),
                    Side::Right => (*o, r),
                };
                if b.contains(l.ts, rr.ts) {
                    out.push((l.id, rr.id, l.ts, rr.ts));
                }
            }
            let cleanup = match side {
                Side::Left => r.ts + upper.max(0),
                Side::Right => r.ts + (-lower).max(0),
            };
            kept.push((side, r, cleanup));
        }
        Step::Watermark(watermark) => kept.retain(|(_, _, cleanup)| *cleanup > watermark),
    });
    out.sort();
    late_left.sort();
    late_right.sort();
    (out, late_left, late_right)
}

/// Every pair of one key within the bounds, whatever arrived when.
fn valid_pairs(splits: &[Vec<(Side, Rec)>], b: Bounds) -> HashSet<Pair> {
    let all: Vec<(Side, Rec)> = splits.iter().flatten().copied().collect();
    let mut pairs = HashSet::new();
    for (s1, l) in &all {
        for (s2, r) in &all {
            if *s1 == Side::Left && *s2 == Side::Right && l.key == r.key && b.contains(l.ts, r.ts) {
                pairs.insert((l.id, r.id, l.ts, r.ts));
            }
        }
    }
    pairs
}

fn bounds_strategy() -> impl Strategy<Value = Bounds> {
    (-20i64..20, 0i64..25, any::<bool>(), any::<bool>()).prop_map(|(lower, width, le, ue)| Bounds {
        lower,
        upper: lower + width,
        lower_exclusive: le,
        upper_exclusive: ue,
    })
}

/// 1 or 4 splits of random input, sometimes with no disorder at all.
fn sharded_input() -> impl Strategy<Value = Vec<Vec<(Side, Rec)>>> {
    (
        prop_oneof![Just(1usize), Just(4usize)],
        prop_oneof![Just(0i64), 0i64..40],
    )
        .prop_flat_map(|(shards, disorder)| two_sides::input_strategy(shards, 5, disorder, 200))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// One shard, one known interleaving, late records: exactly the reference.
    #[test]
    fn interval_join_matches_the_reference_exactly(
        b in bounds_strategy(),
        bound in 0i64..10,
        splits in two_sides::input_strategy(1, 3, 30, 150),
    ) {
        let (want, want_late_left, want_late_right) = reference_with_late(&splits[0], bound, b);
        let got = run_with_late(splits, bound, 1, b);
        prop_assert_eq!(&got.main, &want, "bounds {:?} watermark bound {}", b, bound);
        prop_assert_eq!(got.side, side_of(&got.main));
        prop_assert_eq!(got.late_left, want_late_left);
        prop_assert_eq!(got.late_right, want_late_right);
    }

    /// 1 and 4 shards, any interleaving and batch size: between the surely-on-time pairs and
    /// the valid pairs, each at most once.
    #[test]
    fn interval_join_on_four_shards_emits_every_sure_pair_and_only_valid_ones(
        b in bounds_strategy(),
        bound in 0i64..20,
        splits in sharded_input(),
        batch_records in 1usize..16,
    ) {
        let valid = valid_pairs(&splits, b);
        let on_time = two_sides::surely_on_time(&splits, bound);
        let (got, side) = run(splits, bound, batch_records, b);
        let distinct: HashSet<Pair> = got.iter().copied().collect();
        prop_assert_eq!(distinct.len(), got.len(), "a pair was emitted twice");
        for p in &got {
            prop_assert!(valid.contains(p), "invalid pair {:?} for {:?}", p, b);
        }
        for p in &valid {
            if on_time.contains(&p.0) && on_time.contains(&p.1) {
                prop_assert!(distinct.contains(p), "missing sure pair {:?} for {:?}", p, b);
            }
        }
        prop_assert_eq!(side, side_of(&got));
    }
}

fn rec(key: u64, ts: i64, id: u64) -> Rec {
    Rec { key, ts, id }
}

fn pairs(got: &[Pair]) -> Vec<(u64, u64)> {
    got.iter().map(|p| (p.0, p.1)).collect()
}

/// A left record at 10 and right records at the bounds 10 - 2 and 10 + 3 and one ms outside.
fn at_the_bounds() -> Vec<Vec<(Side, Rec)>> {
    vec![vec![
        (Side::Left, rec(1, 10, 0)),
        (Side::Right, rec(1, 7, 1)),
        (Side::Right, rec(1, 8, 2)),
        (Side::Right, rec(1, 13, 3)),
        (Side::Right, rec(1, 14, 4)),
        (Side::Right, rec(2, 10, 5)), // another key never joins
    ]]
}

#[test]
fn records_exactly_at_inclusive_bounds_join() {
    let (got, _) = run(at_the_bounds(), 100, 1, Bounds::inclusive(-2, 3));
    assert_eq!(pairs(&got), vec![(0, 2), (0, 3)]);
}

#[test]
fn exclusive_bounds_exclude_exactly_the_bound() {
    let mut b = Bounds::inclusive(-2, 3);
    b.lower_exclusive = true;
    let (got, _) = run(at_the_bounds(), 100, 1, b);
    assert_eq!(pairs(&got), vec![(0, 3)]);
    b.upper_exclusive = true;
    let (got, _) = run(at_the_bounds(), 100, 1, b);
    assert_eq!(pairs(&got), vec![]);
    b.lower_exclusive = false;
    let (got, _) = run(at_the_bounds(), 100, 1, b);
    assert_eq!(pairs(&got), vec![(0, 2)]);
}

#[test]
fn a_record_below_the_watermark_is_dropped_and_one_at_it_is_not() {
    // Bound 0: after left 20 and right 20 the watermark is 19 (the minimum of both sides').
    let input = vec![vec![
        (Side::Left, rec(1, 20, 0)),
        (Side::Right, rec(1, 20, 1)), // joins 0; watermark 19
        (Side::Right, rec(1, 18, 2)), // 18 < 19: late, dropped
        (Side::Right, rec(1, 19, 3)), // exactly at the watermark: not late, joins 0
    ]];
    let (got, _) = run(input, 0, 1, Bounds::inclusive(-5, 5));
    assert_eq!(pairs(&got), vec![(0, 1), (0, 3)]);
}

#[test]
fn late_records_go_to_their_side_outputs_and_one_exactly_at_the_watermark_does_not() {
    // Bound 0, bounds [-5, 5]. After left 20 and right 20 the watermark is 19.
    let input = vec![vec![
        (Side::Left, rec(1, 20, 0)),
        (Side::Right, rec(1, 20, 1)), // joins 0; watermark 19
        (Side::Right, rec(1, 18, 2)), // 18 < 19: late, to the right late output
        (Side::Left, rec(1, 18, 3)),  // late, to the left late output
        (Side::Left, rec(1, 19, 4)),  // exactly at the watermark: joins 1
        (Side::Right, rec(2, 5, 5)),  // late, whatever its key
    ]];
    let got = run_with_late(input, 0, 1, Bounds::inclusive(-5, 5));
    assert_eq!(pairs(&got.main), vec![(0, 1), (4, 1)]);
    assert_eq!(got.late_left, vec![3]);
    assert_eq!(got.late_right, vec![2, 5]);
}

#[test]
#[should_panic(expected = "call side_output_left_late_data() before process()")]
fn late_data_not_asked_for_has_no_stream() {
    let env = Env::builder().shards(1).build().expect("config");
    let s = env.from_vec(vec![rec(1, 1, 1)]);
    let joined = s
        .key_by(|r: &Rec| r.key)
        .interval_join(&s.key_by(|r: &Rec| r.key))
        .between(0, 1)
        .side_output_right_late_data()
        .process(PairsWithSide);
    let _ = joined.right_late_data();
    let _ = joined.left_late_data();
}

#[test]
#[should_panic(expected = "late-data side outputs come with process(), not join()")]
fn late_data_with_join_is_refused_rather_than_dropped() {
    let env = Env::builder().shards(1).build().expect("config");
    let s = env.from_vec(vec![rec(1, 1, 1)]);
    let _ = s
        .key_by(|r: &Rec| r.key)
        .interval_join(&s.key_by(|r: &Rec| r.key))
        .between(0, 1)
        .side_output_left_late_data()
        .join(|l: &Rec, r: &Rec| (l.id, r.id));
}

#[test]
fn the_watermark_is_the_minimum_of_both_sides() {
    // The left side races ahead to 100 (its watermark 99), the right stays at 10 (9): a right
    // record at 12 is not late, because the join's watermark is 9.
    let input = vec![vec![
        (Side::Right, rec(1, 10, 0)),
        (Side::Left, rec(1, 14, 1)),
        (Side::Left, rec(1, 100, 2)),
        (Side::Right, rec(1, 12, 3)),
    ]];
    let (got, _) = run(input, 0, 1, Bounds::inclusive(-5, 5));
    assert_eq!(pairs(&got), vec![(1, 0), (1, 3)]);
}

#[test]
fn buffered_records_leave_when_the_watermark_passes_their_cleanup_time() {
    // Bounds [0, 5]: left 10 is kept until the watermark reaches 15. A right record at exactly
    // 15 arriving when the watermark is 15 is not late but its partner is gone (Flink's rule).
    let input = vec![vec![
        (Side::Left, rec(1, 10, 0)),
        (Side::Right, rec(1, 14, 1)), // joins; watermark min(9, 13) = 9
        (Side::Left, rec(1, 16, 2)),  // left watermark 15, join watermark 13
        (Side::Right, rec(1, 16, 3)), // joins 2; watermark 15: left 10 is evicted
        (Side::Right, rec(1, 15, 4)), // at the watermark: kept, but left 10 is gone
    ]];
    let (got, _) = run(input, 0, 1, Bounds::inclusive(0, 5));
    assert_eq!(pairs(&got), vec![(0, 1), (2, 3)]);
    // With more out-of-orderness the watermark stays back and the record at 15 joins.
    let input = vec![vec![
        (Side::Left, rec(1, 10, 0)),
        (Side::Right, rec(1, 14, 1)),
        (Side::Left, rec(1, 16, 2)),
        (Side::Right, rec(1, 16, 3)),
        (Side::Right, rec(1, 15, 4)),
    ]];
    let (got, _) = run(input, 1, 1, Bounds::inclusive(0, 5));
    assert_eq!(pairs(&got), vec![(0, 1), (0, 4), (2, 3)]);
}

#[test]
fn a_record_leaves_at_its_own_cleanup_time_not_its_neighbours() {
    // Bounds [0, 5], bound 0: left 10 is cleaned up at watermark 15, left 11 only at 16.
    let input = vec![vec![
        (Side::Left, rec(1, 10, 0)),
        (Side::Left, rec(1, 11, 1)),
        (Side::Right, rec(1, 15, 2)), // joins 10 and 11; watermark min(10, 14) = 10
        (Side::Left, rec(1, 20, 3)),  // watermark min(19, 14) = 14
        (Side::Right, rec(1, 16, 4)), // joins 11; watermark 15: left 10 leaves
        (Side::Right, rec(1, 16, 5)), // left 11 is still there
    ]];
    let (got, _) = run(input, 0, 1, Bounds::inclusive(0, 5));
    assert_eq!(pairs(&got), vec![(0, 2), (1, 2), (1, 4), (1, 5)]);
}

#[test]
#[should_panic(expected = "lower bound (5 ms) is above the upper bound (4 ms)")]
fn a_lower_bound_above_the_upper_bound_is_refused() {
    let env = Env::builder().shards(1).build().expect("config");
    let s = env.from_vec(vec![rec(1, 1, 1)]);
    let _ = s
        .key_by(|r: &Rec| r.key)
        .interval_join(&s.key_by(|r: &Rec| r.key))
        .between(5, 4);
}
