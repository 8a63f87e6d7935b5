//! Hand-computed boundary cases of event-time windows, each pinned against Flink's rules: a
//! record exactly at a window's end belongs to the next window; a watermark exactly at
//! `end - 1` fires (and with no lateness closes) the window; a record exactly at the lateness
//! limit is still accepted and re-fires the window, one millisecond later it is late data; three
//! sessions merge through a chain of bridging records. One shard and batches of one record, so
//! the watermark after each record is exactly `max_ts - bound - 1`.

use std::time::Duration;

use corestrom_operators::prelude::*;

type In = (u64, i64); // key, timestamp
type Out = (u64, i64, i64, u64); // key, start, end, count

fn run<A>(input: Vec<In>, bound_ms: u64, lateness_ms: u64, assigner: A) -> (Vec<Out>, Vec<In>)
where
    A: corestrom_operators::window::WindowAssigner<W = TimeWindow>,
    A::DefaultTrigger: Trigger<In, TimeWindow>,
{
    let env = Env::builder()
        .shards(1)
        .batch_records(1)
        .build()
        .expect("config");
    let windows = env
        .from_vec(input)
        .with_timestamps(
            |r: &In| r.1,
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(bound_ms)),
        )
        .key_by(|r: &In| r.0)
        .window(assigner)
        .allowed_lateness(Duration::from_millis(lateness_ms))
        .aggregate_with(
            Count,
            |k: &u64, w: &TimeWindow, c: u64, out: &mut Vec<Out>| out.push((*k, w.start, w.end, c)),
        );
    let main = windows.main().collect();
    let late = windows.late_data().collect();
    env.execute_and_wait().expect("job succeeds");
    let mut main = main.take();
    main.sort();
    (main, late.take())
}

fn tumbling(size_ms: u64) -> TumblingEventTimeWindows {
    TumblingEventTimeWindows::of(Duration::from_millis(size_ms))
}

#[test]
fn a_record_at_the_window_end_belongs_to_the_next_window() {
    let (out, late) = run(vec![(1, 0), (1, 9), (1, 10)], 100, 0, tumbling(10));
    assert_eq!(out, vec![(1, 0, 10, 2), (1, 10, 20, 1)]);
    assert!(late.is_empty());
}

#[test]
fn a_watermark_at_end_minus_one_fires_and_closes_the_window() {
    // ts 10 with bound 0 gives watermark 9 = end - 1 of [0, 10): it fires and, without
    // lateness, closes, so the record at 3 is late.
    let (out, late) = run(vec![(1, 5), (1, 10), (1, 3)], 0, 0, tumbling(10));
    assert_eq!(out, vec![(1, 0, 10, 1), (1, 10, 20, 1)]);
    assert_eq!(late, vec![(1, 3)]);
    // Watermark 8 does not: the record at 3 still counts.
    let (out, late) = run(vec![(1, 5), (1, 9), (1, 3)], 0, 0, tumbling(10));
    assert_eq!(out, vec![(1, 0, 10, 3)]);
    assert!(late.is_empty());
}

#[test]
fn lateness_exactly_at_the_limit_is_accepted_and_refires() {
    // Window [0, 10), lateness 5: cleaned up when the watermark reaches 9 + 5 = 14.
    let input = vec![
        (1, 5),  // watermark 4
        (1, 14), // watermark 13: [0, 10) fires with 1
        (1, 2),  // 9 + 5 > 13: accepted, re-fires [0, 10) with 2
        (1, 15), // watermark 14: [0, 10) is cleaned up
        (1, 1),  // 9 + 5 <= 14: late data
    ];
    let (out, late) = run(input, 0, 5, tumbling(10));
    assert_eq!(out, vec![(1, 0, 10, 1), (1, 0, 10, 2), (1, 10, 20, 2)]);
    assert_eq!(late, vec![(1, 1)]);
}

#[test]
fn a_chain_of_bridging_records_merges_three_sessions() {
    let gap = EventTimeSessionWindows::with_gap(Duration::from_millis(10));
    // Sessions [0, 10), [15, 25), [30, 40); 10 bridges the first two (touching at 10), 25 the
    // result and the third (touching at 30... [25, 35) overlaps it).
    let input = vec![(1, 0), (1, 15), (1, 30), (2, 100), (1, 10), (1, 25)];
    let (out, late) = run(input, 1000, 0, gap);
    assert_eq!(out, vec![(1, 0, 40, 5), (2, 100, 110, 1)]);
    assert!(late.is_empty());
    // Without the bridges, three sessions.
    let (out, _) = run(vec![(1, 0), (1, 15), (1, 30)], 1000, 0, gap);
    assert_eq!(out, vec![(1, 0, 10, 1), (1, 15, 25, 1), (1, 30, 40, 1)]);
}

#[test]
fn sessions_that_only_touch_merge() {
    let gap = EventTimeSessionWindows::with_gap(Duration::from_millis(10));
    let (out, _) = run(vec![(1, 0), (1, 10), (1, 21)], 1000, 0, gap);
    assert_eq!(out, vec![(1, 0, 20, 2), (1, 21, 31, 1)]);
}

#[test]
fn sliding_windows_with_an_offset() {
    let sliding = SlidingEventTimeWindows::of(Duration::from_millis(10), Duration::from_millis(5))
        .with_offset(Duration::from_millis(2));
    let (out, _) = run(vec![(1, 2), (1, 6), (1, 7)], 1000, 0, sliding);
    assert_eq!(
        out,
        vec![(1, -3, 7, 2), (1, 2, 12, 3), (1, 7, 17, 1)],
        "windows start at 5k + 2"
    );
}
