//! The keyed process function: per-key value state, event-time timers that fire once the
//! watermark passes them (deduplicated: registered on every record, fired once per key and
//! time), timer deletion, and a side output that receives only what `side_output` sent —
//! checked on 1 and 4 shards against a direct computation.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use corestrom_operators::TimeDomain;
use corestrom_operators::prelude::*;
use corestrom_operators::state::{MapState, ValueState, VoidNamespace};

type In = (u64, i64, u64); // key, timestamp, value

/// Sums values per (key, next multiple of 100 after the record) in map state; every record
/// (re)registers the timer at that multiple, and a value of 0 deletes the timer and the sum. On
/// a timer it emits (key, timer, sum) and the record count seen so far (value state). Odd values
/// also go to the side output.
#[derive(Clone)]
struct SumUntil {
    sums: SumState,
}

struct SumState {
    by_timer: MapState<u64, VoidNamespace, i64, u64>,
    records: ValueState<u64, VoidNamespace, u64>,
}

impl Clone for SumState {
    fn clone(&self) -> Self {
        // Each shard's instance starts with empty state.
        SumState {
            by_timer: MapState::new(None),
            records: ValueState::new(None),
        }
    }
}

impl KeyedProcessFunction<u64, In> for SumUntil {
    type Out = (u64, i64, u64);
    type Side = u64;

    fn process_element(
        &mut self,
        (_, ts, value): In,
        ctx: &mut ProcessContext<'_, u64, Self::Out, u64>,
    ) {
        assert_eq!(ctx.timestamp(), Some(ts));
        assert!(ctx.time_domain().is_none());
        let timer = (ts / 100 + 1) * 100;
        let seen = self.sums.records.value(ctx.state()).copied().unwrap_or(0);
        self.sums.records.update(ctx.state(), seen + 1);
        if value == 0 {
            ctx.delete_event_time_timer(timer);
            self.sums.by_timer.remove(ctx.state(), &timer);
            return;
        }
        let sum = self
            .sums
            .by_timer
            .get(ctx.state(), &timer)
            .copied()
            .unwrap_or(0)
            + value;
        self.sums.by_timer.put(ctx.state(), timer, sum);
        ctx.register_event_time_timer(timer);
        if value % 2 == 1 {
            ctx.side_output(value);
        }
    }

    fn on_timer(&mut self, timestamp: i64, ctx: &mut ProcessContext<'_, u64, Self::Out, u64>) {
        assert_eq!(ctx.time_domain(), Some(TimeDomain::EventTime));
        assert!(ctx.current_watermark() >= timestamp);
        let sum = self
            .sums
            .by_timer
            .remove(ctx.state(), &timestamp)
            .expect("a live timer has a sum");
        assert!(self.sums.records.value(ctx.state()).is_some());
        ctx.output((*ctx.key(), timestamp, sum));
    }
}

fn run(shards: usize, splits: Vec<Vec<In>>) -> (Vec<(u64, i64, u64)>, Vec<u64>) {
    let env = Env::builder()
        .shards(shards)
        .batch_records(7)
        .build()
        .expect("config");
    let splits = Arc::new(splits);
    let out = env
        .from_iter(move |split| splits[split.shard].clone())
        .with_timestamps(
            |r: &In| r.1,
            WatermarkStrategy::bounded_out_of_orderness(Duration::ZERO),
        )
        .key_by(|r: &In| r.0)
        .process(SumUntil {
            sums: SumState {
                by_timer: MapState::new(None),
                records: ValueState::new(None),
            },
        });
    let main = out.main().collect();
    let side = out.side_output().collect();
    env.execute_and_wait().expect("job succeeds");
    let main_records = main.take_records();
    for r in &main_records {
        assert_eq!(
            r.ts, r.value.1,
            "timer output carries the timer's timestamp"
        );
    }
    let mut main: Vec<_> = main_records.into_iter().map(|r| r.value).collect();
    let mut side = side.take();
    main.sort();
    side.sort();
    (main, side)
}

#[test]
fn timers_state_and_side_output_match_a_direct_computation() {
    for shards in [1, 4] {
        // Each key lives in one split with increasing timestamps, so per-key order is fixed.
        let mut splits = vec![Vec::new(); shards];
        let mut expected_side = Vec::new();
        // Per (key, timer): the sum of the values after the last 0, if any came after it.
        let mut open: BTreeMap<(u64, i64), u64> = BTreeMap::new();
        for i in 0..2000u64 {
            let key = i % 13;
            let ts = (i as i64) * 3;
            let value = (i * 7919) % 11;
            splits[key as usize % shards].push((key, ts, value));
            let timer = (ts / 100 + 1) * 100;
            if value == 0 {
                open.remove(&(key, timer));
                continue;
            }
            *open.entry((key, timer)).or_default() += value;
            if value % 2 == 1 {
                expected_side.push(value);
            }
        }
        // Each key's records come from one split in timestamp order, so every record for a
        // timer arrives before the watermark can reach it: the outcome is fixed.
        let mut expected: Vec<(u64, i64, u64)> =
            open.into_iter().map(|((k, t), sum)| (k, t, sum)).collect();
        expected.sort();
        expected_side.sort();
        let (main, side) = run(shards, splits);
        assert_eq!(main, expected, "shards = {shards}");
        assert_eq!(side, expected_side, "shards = {shards}");
    }
}
