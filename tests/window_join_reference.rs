//! The window join (`join(..).where_key(..).equal_to(..).window(..).apply(..)`) and co-group on
//! tumbling and sliding event-time windows against a straightforward single-threaded reference,
//! on random out-of-order input with late records and several keys, plus hand-computed
//! boundary cases.
//!
//! - *Exact replay, 1 shard*: both sides come from one source with their own watermarks, in
//!   batches of one record (see `support::two_sides`), so the operator sees one known
//!   interleaving. The reference keeps every window of every key as two plain lists (one per
//!   side, no panes): a record goes into each of its windows whose `end - 1` the watermark has
//!   not reached; when the watermark reaches `end - 1` the window emits all its pairs (or its
//!   co-group) with timestamp `end - 1` and is dropped. With allowed lateness `L` a window
//!   is kept until the watermark reaches `end - 1 + L`: a record for a fired window within it
//!   fires the window again at once with all its records; a record with no window left is
//!   dropped and counted.
//! - *1 and 4 shards, any interleaving*: a pair in a window is emitted at most once and only if
//!   valid; every pair of records that no interleaving can make late is emitted (such a record
//!   arrives while the watermark is below it, so before any of its windows fires). With the
//!   disorder within the watermark bound nothing can be late, and the co-group equals the
//!   reference's grouping exactly.

mod support;

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use corestrom_operators::prelude::*;
use proptest::prelude::*;
use support::two_sides::{self, Rec, Side, Step};

#[derive(Clone, Copy, Debug)]
enum Kind {
    Tumbling { size: i64 },
    Sliding { size: i64, slide: i64 },
}

impl Kind {
    /// The windows `[start, end)` holding `ts`, from the definition.
    fn windows_of(self, ts: i64) -> Vec<(i64, i64)> {
        let (size, slide) = match self {
            Kind::Tumbling { size } => (size, size),
            Kind::Sliding { size, slide } => (size, slide),
        };
        let mut out = Vec::new();
        let mut start = ts - ts.rem_euclid(slide);
        while start + size > ts {
            out.push((start, start + size));
            start -= slide;
        }
        out
    }
}

/// (window end - 1, left id, right id).
type Pair = (i64, u64, u64);
/// (window end - 1, key, left ids, right ids), ids sorted.
type Group = (i64, u64, Vec<u64>, Vec<u64>);

type KeyFn = fn(&Rec) -> u64;
type Joined = corestrom_operators::join::WindowJoin<Rec, Rec, u64, KeyFn, KeyFn>;

fn build(
    env: &Env,
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    kind: Kind,
    lateness: i64,
) -> Joined {
    let (left, right) = two_sides::streams(env, splits, bound_ms);
    let joined = left
        .join(&right)
        .where_key((|r: &Rec| r.key) as KeyFn)
        .equal_to((|r: &Rec| r.key) as KeyFn);
    let ms = |v: i64| Duration::from_millis(v as u64);
    let windowed = match kind {
        Kind::Tumbling { size } => joined.window(TumblingEventTimeWindows::of(ms(size))),
        Kind::Sliding { size, slide } => {
            joined.window(SlidingEventTimeWindows::of(ms(size), ms(slide)))
        }
    };
    if lateness > 0 {
        windowed.allowed_lateness(ms(lateness))
    } else {
        windowed
    }
}

fn env(shards: usize, batch_records: usize) -> Env {
    Env::builder()
        .shards(shards)
        .batch_records(batch_records)
        .build()
        .expect("config")
}

/// Runs the join; returns the sorted pairs, checking their timestamps are window ends - 1.
fn run_join(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    kind: Kind,
) -> Vec<Pair> {
    run_join_late(splits, bound_ms, batch_records, kind, 0).0
}

/// The same with allowed lateness; also returns the count of late records dropped.
fn run_join_late(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    kind: Kind,
    lateness: i64,
) -> (Vec<Pair>, u64) {
    let env = env(splits.len(), batch_records);
    let join = build(&env, splits, bound_ms, kind, lateness);
    let dropped = join.late_records_dropped();
    let out = join
        .apply(|l: &Rec, r: &Rec| {
            assert_eq!(l.key, r.key, "pairs are of one key");
            (l.id, r.id, l.ts, r.ts)
        })
        .collect();
    env.execute_and_wait().expect("job succeeds");
    let mut got: Vec<Pair> = out
        .take_records()
        .into_iter()
        .map(|rec| {
            let (l, r, lts, rts) = rec.value;
            let windows = kind.windows_of(lts);
            assert!(
                windows.iter().any(|w| w.1 - 1 == rec.ts)
                    && kind.windows_of(rts).iter().any(|w| w.1 - 1 == rec.ts),
                "pair {:?} emitted at {} outside a common window",
                rec.value,
                rec.ts
            );
            (rec.ts, l, r)
        })
        .collect();
    got.sort();
    (got, dropped.get())
}

fn run_co_group(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    kind: Kind,
) -> Vec<Group> {
    run_co_group_late(splits, bound_ms, batch_records, kind, 0)
}

fn run_co_group_late(
    splits: Vec<Vec<(Side, Rec)>>,
    bound_ms: i64,
    batch_records: usize,
    kind: Kind,
    lateness: i64,
) -> Vec<Group> {
    let env = env(splits.len(), batch_records);
    let out = build(&env, splits, bound_ms, kind, lateness)
        .co_group(
            |lefts: &mut dyn Iterator<Item = &Rec>,
             rights: &mut dyn Iterator<Item = &Rec>,
             out: &mut Vec<(u64, Vec<u64>, Vec<u64>)>| {
                let lefts: Vec<&Rec> = lefts.collect();
                let rights: Vec<&Rec> = rights.collect();
                let key = lefts
                    .iter()
                    .chain(&rights)
                    .next()
                    .expect("a group has a record")
                    .key;
                assert!(lefts.iter().chain(&rights).all(|r| r.key == key));
                let mut l: Vec<u64> = lefts.iter().map(|r| r.id).collect();
                let mut r: Vec<u64> = rights.iter().map(|r| r.id).collect();
                l.sort();
                r.sort();
                out.push((key, l, r));
            },
        )
        .collect();
    env.execute_and_wait().expect("job succeeds");
    let mut got: Vec<Group> = out
        .take_records()
        .into_iter()
        .map(|rec| (rec.ts, rec.value.0, rec.value.1, rec.value.2))
        .collect();
    got.sort();
    got
}

/// One window of one key in the reference.
#[derive(Default)]
struct RefWindow {
    lefts: Vec<Rec>,
    rights: Vec<Rec>,
    fired: bool,
}

impl RefWindow {
    /// Emits the window's pairs and group with timestamp `end - 1`.
    fn emit(&self, key: u64, end: i64, pairs: &mut Vec<Pair>, groups: &mut Vec<Group>) {
        let ts = end - 1;
        for l in &self.lefts {
            for r in &self.rights {
                pairs.push((ts, l.id, r.id));
            }
        }
        let mut l: Vec<u64> = self.lefts.iter().map(|r| r.id).collect();
        let mut r: Vec<u64> = self.rights.iter().map(|r| r.id).collect();
        l.sort();
        r.sort();
        groups.push((ts, key, l, r));
    }
}

/// Flink's window rules over plain per-window lists: (pairs, groups).
fn reference(split: &[(Side, Rec)], bound_ms: i64, kind: Kind) -> (Vec<Pair>, Vec<Group>) {
    let (pairs, groups, _) = reference_late(split, bound_ms, kind, 0);
    (pairs, groups)
}

/// The same with allowed lateness: (pairs, groups, late records dropped).
fn reference_late(
    split: &[(Side, Rec)],
    bound_ms: i64,
    kind: Kind,
    lateness: i64,
) -> (Vec<Pair>, Vec<Group>, u64) {
    let mut windows: BTreeMap<(u64, i64, i64), RefWindow> = BTreeMap::new();
    let (mut pairs, mut groups, mut dropped) = (Vec::new(), Vec::new(), 0);
    two_sides::replay(split, bound_ms, |step| match step {
        Step::Record(side, r, watermark) => {
            let mut kept = false;
            for (start, end) in kind.windows_of(r.ts) {
                if end - 1 + lateness <= watermark {
                    continue; // this window is gone
                }
                kept = true;
                let w = windows.entry((r.key, start, end)).or_default();
                match side {
                    Side::Left => w.lefts.push(r),
                    Side::Right => w.rights.push(r),
                }
                if end - 1 <= watermark {
                    // Fired already (or would have, had it had records): fire again now.
                    w.fired = true;
                    w.emit(r.key, end, &mut pairs, &mut groups);
                }
            }
            if !kept {
                dropped += 1;
            }
        }
        Step::Watermark(watermark) => {
            for (&(key, _, end), w) in windows.iter_mut() {
                if !w.fired && end - 1 <= watermark {
                    w.fired = true;
                    w.emit(key, end, &mut pairs, &mut groups);
                }
            }
            windows.retain(|&(_, _, end), _| end - 1 + lateness > watermark);
        }
    });
    pairs.sort();
    groups.sort();
    (pairs, groups, dropped)
}

/// Every (window, left, right) of one key, whatever arrived when; and the ids per record.
fn valid_pairs(splits: &[Vec<(Side, Rec)>], kind: Kind) -> HashSet<Pair> {
    let all: Vec<(Side, Rec)> = splits.iter().flatten().copied().collect();
    let mut pairs = HashSet::new();
    for (s1, l) in &all {
        for (s2, r) in &all {
            if *s1 != Side::Left || *s2 != Side::Right || l.key != r.key {
                continue;
            }
            let right_windows = kind.windows_of(r.ts);
            for w in kind.windows_of(l.ts) {
                if right_windows.contains(&w) {
                    pairs.insert((w.1 - 1, l.id, r.id));
                }
            }
        }
    }
    pairs
}

fn kind_strategy() -> impl Strategy<Value = Kind> {
    prop_oneof![
        (1i64..30).prop_map(|size| Kind::Tumbling { size }),
        (1i64..10, 1i64..5).prop_map(|(slide, k)| Kind::Sliding {
            size: slide * k,
            slide
        }),
        (2i64..25, 1i64..25).prop_map(|(size, slide)| Kind::Sliding {
            size: size.max(slide),
            slide: slide.min(size)
        }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// One shard, one known interleaving, late records: exactly the reference, for the join and
    /// the co-group.
    #[test]
    fn window_join_and_co_group_match_the_reference_exactly(
        kind in kind_strategy(),
        bound in 0i64..10,
        splits in two_sides::input_strategy(1, 3, 30, 120),
    ) {
        let (want_pairs, want_groups) = reference(&splits[0], bound, kind);
        let got = run_join(splits.clone(), bound, 1, kind);
        prop_assert_eq!(got, want_pairs, "{:?} bound {}", kind, bound);
        let got = run_co_group(splits, bound, 1, kind);
        prop_assert_eq!(got, want_groups, "{:?} bound {}", kind, bound);
    }

    /// One shard, one known interleaving, allowed lateness: exactly the reference, late
    /// firings (repeated pairs) and the count of dropped records included.
    #[test]
    fn window_join_with_allowed_lateness_matches_the_reference_exactly(
        kind in kind_strategy(),
        bound in 0i64..10,
        lateness in 0i64..25,
        splits in two_sides::input_strategy(1, 3, 40, 120),
    ) {
        let (want_pairs, want_groups, want_dropped) = reference_late(&splits[0], bound, kind, lateness);
        let (got, dropped) = run_join_late(splits.clone(), bound, 1, kind, lateness);
        prop_assert_eq!(got, want_pairs, "{:?} bound {} lateness {}", kind, bound, lateness);
        prop_assert_eq!(dropped, want_dropped);
        let got = run_co_group_late(splits, bound, 1, kind, lateness);
        prop_assert_eq!(got, want_groups, "{:?} bound {} lateness {}", kind, bound, lateness);
    }

    /// 1 and 4 shards, any interleaving and batch size, late records: every sure pair, only
    /// valid pairs, none twice.
    #[test]
    fn window_join_on_four_shards_emits_every_sure_pair_and_only_valid_ones(
        kind in kind_strategy(),
        bound in 0i64..20,
        splits in (prop_oneof![Just(1usize), Just(4usize)], 0i64..40)
            .prop_flat_map(|(shards, disorder)| two_sides::input_strategy(shards, 4, disorder, 200)),
        batch_records in 1usize..16,
    ) {
        let valid = valid_pairs(&splits, kind);
        let on_time = two_sides::surely_on_time(&splits, bound);
        let got = run_join(splits, bound, batch_records, kind);
        let distinct: HashSet<Pair> = got.iter().copied().collect();
        prop_assert_eq!(distinct.len(), got.len(), "a pair was emitted twice");
        for p in &got {
            prop_assert!(valid.contains(p), "invalid pair {:?} for {:?}", p, kind);
        }
        for p in &valid {
            if on_time.contains(&p.1) && on_time.contains(&p.2) {
                prop_assert!(distinct.contains(p), "missing sure pair {:?} for {:?}", p, kind);
            }
        }
    }

    /// 1 and 4 shards with the disorder within the watermark bound (nothing can be late): the
    /// join and the co-group equal the reference's grouping of everything.
    #[test]
    fn window_join_and_co_group_on_four_shards_without_late_records(
        kind in kind_strategy(),
        (bound, splits) in (prop_oneof![Just(1usize), Just(4usize)], 0i64..20)
            .prop_flat_map(|(shards, bound)| (Just(bound), two_sides::input_strategy(shards, 4, bound, 200))),
        batch_records in 1usize..16,
    ) {
        let all: Vec<(Side, Rec)> = {
            let mut all: Vec<_> = splits.iter().flatten().copied().collect();
            all.sort_by_key(|(_, r)| r.id);
            all
        };
        prop_assert_eq!(two_sides::surely_on_time(&splits, bound).len(), all.len());
        // Nothing is late: replaying everything with a watermark that never passes a record
        // gives the result whatever the interleaving.
        let (want_pairs, want_groups) = reference(&all, i64::MAX / 4, kind);
        prop_assert_eq!(run_join(splits.clone(), bound, batch_records, kind), want_pairs);
        prop_assert_eq!(run_co_group(splits, bound, batch_records, kind), want_groups);
    }
}

fn rec(key: u64, ts: i64, id: u64) -> Rec {
    Rec { key, ts, id }
}

fn tumbling(size: i64) -> Kind {
    Kind::Tumbling { size }
}

#[test]
fn a_record_at_the_window_end_belongs_to_the_next_window() {
    let input = vec![vec![
        (Side::Left, rec(1, 9, 0)),
        (Side::Right, rec(1, 0, 1)),
        (Side::Right, rec(1, 10, 2)), // [10, 20), not [0, 10)
        (Side::Left, rec(1, 19, 3)),
        (Side::Left, rec(2, 5, 4)), // another key: no pair
    ]];
    let got = run_join(input, 100, 1, tumbling(10));
    assert_eq!(got, vec![(9, 0, 1), (19, 3, 2)]);
}

#[test]
fn a_window_fires_when_the_watermark_reaches_its_end_minus_one_and_later_records_are_late() {
    // Bound 0. Left 10 and right 10 move the watermark to 9 = end - 1 of [0, 10): it fires
    // with (0, 1); a right record at 5 is then late for [0, 10) and dropped.
    let input = vec![vec![
        (Side::Left, rec(1, 3, 0)),
        (Side::Right, rec(1, 4, 1)),
        (Side::Left, rec(1, 10, 2)),
        (Side::Right, rec(1, 10, 3)), // watermark 9: [0, 10) fires
        (Side::Right, rec(1, 5, 4)),  // late
    ]];
    let got = run_join(input, 0, 1, tumbling(10));
    assert_eq!(got, vec![(9, 0, 1), (19, 2, 3)]);
    // Watermark 8 (right only up to 9): the record at 5 still joins.
    let input = vec![vec![
        (Side::Left, rec(1, 3, 0)),
        (Side::Right, rec(1, 4, 1)),
        (Side::Left, rec(1, 10, 2)),
        (Side::Right, rec(1, 9, 3)), // watermark min(9, 8) = 8
        (Side::Right, rec(1, 5, 4)),
    ]];
    let got = run_join(input, 0, 1, tumbling(10));
    assert_eq!(got, vec![(9, 0, 1), (9, 0, 3), (9, 0, 4)]);
}

#[test]
fn a_sliding_record_late_for_some_windows_joins_in_the_others() {
    // Windows of 10 sliding by 5, bound 0. The watermark reaches 9: [0, 10) fired. A right
    // record at 7 is late for [0, 10) but joins in [5, 15).
    let input = vec![vec![
        (Side::Left, rec(1, 6, 0)),
        (Side::Left, rec(1, 10, 1)),
        (Side::Right, rec(1, 10, 2)), // watermark 9: [0, 10) fires (no right record in it)
        (Side::Right, rec(1, 7, 3)),  // only [5, 15)
    ]];
    let got = run_join(input, 0, 1, Kind::Sliding { size: 10, slide: 5 });
    assert_eq!(
        got,
        vec![(14, 0, 2), (14, 0, 3), (14, 1, 2), (14, 1, 3), (19, 1, 2)]
    );
}

#[test]
fn co_group_sees_windows_with_one_side_only() {
    let input = vec![vec![
        (Side::Left, rec(1, 1, 0)),
        (Side::Left, rec(1, 2, 1)),
        (Side::Right, rec(2, 3, 2)),
        (Side::Right, rec(1, 12, 3)),
    ]];
    let got = run_co_group(input, 100, 1, tumbling(10));
    assert_eq!(
        got,
        vec![
            (9, 1, vec![0, 1], vec![]),
            (9, 2, vec![], vec![2]),
            (19, 1, vec![], vec![3]),
        ]
    );
}

#[test]
fn lateness_exactly_at_the_limit_drops_and_one_below_fires_again() {
    // Tumbling 10 ms, allowed lateness 5 ms, bound 0: [0, 10) fires at watermark 9 and is
    // cleaned up at watermark 9 + 5 = 14.
    let input = vec![vec![
        (Side::Left, rec(1, 3, 0)),
        (Side::Right, rec(1, 4, 1)),
        (Side::Left, rec(1, 20, 2)),  // left watermark 19
        (Side::Right, rec(1, 14, 3)), // watermark min(19, 13) = 13: [0, 10) fires (0, 1)
        (Side::Right, rec(1, 5, 4)),  // 9 <= 13 < 14: late firing, (0, 1) and (0, 4)
        (Side::Right, rec(1, 15, 5)), // watermark 14 = 9 + 5: [0, 10) is cleaned up
        (Side::Left, rec(1, 6, 6)),   // its only window is at the limit: dropped, counted
    ]];
    let (got, dropped) = run_join_late(input.clone(), 0, 1, tumbling(10), 5);
    assert_eq!(got, vec![(9, 0, 1), (9, 0, 1), (9, 0, 4)]);
    assert_eq!(dropped, 1);
    // The co-group sees the window at its firing and again at the late firing; [10, 20) has
    // rights only and [20, 30) a left only.
    let got = run_co_group_late(input.clone(), 0, 1, tumbling(10), 5);
    assert_eq!(
        got,
        vec![
            (9, 1, vec![0], vec![1]),
            (9, 1, vec![0], vec![1, 4]),
            (19, 1, vec![], vec![3, 5]),
            (29, 1, vec![2], vec![]),
        ]
    );
    // Without lateness the record at 5 is dropped as well.
    let (got, dropped) = run_join_late(input, 0, 1, tumbling(10), 0);
    assert_eq!(got, vec![(9, 0, 1)]);
    assert_eq!(dropped, 2);
}
