//! The interval join operator (Flink's `IntervalJoinOperator`): joins each left record at `l`
//! with every right record of the same key at `r` such that `l + lower <= r <= l + upper`.
//!
//! Rules, exactly Flink's (bounds already adjusted for exclusiveness: an exclusive lower bound
//! is `lower + 1`, an exclusive upper bound `upper - 1`):
//! - A record whose timestamp is below the operator's watermark (`ts < watermark`, the minimum
//!   of both inputs') is late: it joins nothing and is dropped, or goes to its input's late-data
//!   side output when that was asked for (Flink's `sideOutputLeftLateData` /
//!   `sideOutputRightLateData`). Anything else is buffered under its key and side and
//!   joined with every buffered record of the other side within the bounds, in either arrival
//!   order; each pair is emitted once, with timestamp `max(l, r)`.
//! - Each buffered record has an event-time cleanup time: a left record at `l` at
//!   `l + max(upper, 0)`, a right record at `r` at `r + max(-lower, 0)`. Once the watermark
//!   reaches it the record leaves the buffer, before anything after that watermark is matched.
//!   (As in Flink, a non-late record exactly at the watermark can miss a partner evicted at
//!   that watermark.)
//!
//! State ([`IntervalJoinState`]): per key and side, the buffered records in timestamp order (a
//! deque: in-order records append at the back, eviction pops the front, an out-of-order record
//! is inserted by binary search); a key whose buffer empties is removed. Matching a record is a
//! binary search plus a scan over the bounds, not a scan of the key's whole buffer.
//!
//! Cleanup timers: a cleanup time is `ts + delay` with one delay per side, so a buffer's
//! records fall due front first. The cleanup index therefore holds, per (key, side), only the
//! cleanup time of the buffer's front record (plus stale entries left when an out-of-order
//! record became the new front; popping one is harmless). When an entry falls due, every record
//! of that buffer whose cleanup time the watermark reached leaves and the key is re-indexed at
//! its new front. This evicts exactly what per-record timers (Flink's) would, at the same
//! watermarks, while an in-order record costs no timer operation at all.
//!
//! Checkpoints: each key's buffer of each side is one snapshot entry under the key's group
//! (records in timestamp order). The cleanup index is not written: it is a function of the
//! buffers, so restore rebuilds it (one entry per buffer, at its front's cleanup time) and
//! evicts at the same watermarks as the run that was snapshotted.

use std::collections::{BTreeMap, VecDeque};
use std::hash::Hash;

use corestrom_runtime::state::snapshot::{
    KeyGroupState, KeyGroupWriter, SnapshotError, StateData, read_entries,
};
use corestrom_runtime::{
    Batch, Data, EventTime, NO_TIMESTAMP, OpResult, OperatorError, Record, StableHash,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::keyed_driver::{KeyedCoCore, Outputs, TimedCore};

/// What an interval join function sees for one pair.
pub struct JoinContext<'a, O, S> {
    left_ts: EventTime,
    right_ts: EventTime,
    main: &'a mut Batch<O>,
    /// The side port also carries the late records when asked for, so the function's side
    /// output goes through this (one virtual call per side record, none per main record).
    side: &'a mut dyn SideWriter<S>,
}

impl<O: 'static, S: 'static> JoinContext<'_, O, S> {
    /// The left record's timestamp.
    pub fn left_timestamp(&self) -> EventTime {
        self.left_ts
    }

    /// The right record's timestamp.
    pub fn right_timestamp(&self) -> EventTime {
        self.right_ts
    }

    /// The timestamp of what this call emits: the larger of the two.
    pub fn timestamp(&self) -> EventTime {
        self.left_ts.max(self.right_ts)
    }

    /// Emits a record on the main output.
    pub fn output(&mut self, value: O) {
        let ts = self.timestamp();
        self.main.records.push(Record::new(ts, value));
    }

    /// Emits a record on the side output.
    pub fn side_output(&mut self, value: S) {
        let ts = self.timestamp();
        self.side.write(ts, value);
    }
}

/// Where a join function's side output goes.
pub(crate) trait SideWriter<S> {
    fn write(&mut self, ts: EventTime, value: S);
}

/// What leaves an interval join on its side port: the function's side output, and the late
/// records of either input when their side outputs were asked for. The join's builder splits
/// the port into one stream per kind.
#[derive(Clone, Debug)]
pub(crate) enum JoinSide<S, L, R> {
    User(S),
    LateLeft(L),
    LateRight(R),
}

/// The side batch seen as the function's side output.
struct UserSide<'a, S, L, R>(&'a mut Batch<JoinSide<S, L, R>>);

impl<S, L, R> SideWriter<S> for UserSide<'_, S, L, R> {
    fn write(&mut self, ts: EventTime, value: S) {
        self.0.records.push(Record::new(ts, JoinSide::User(value)));
    }
}

/// Which late records go to the side port (Flink's `sideOutputLeftLateData` /
/// `sideOutputRightLateData`); the others are dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct LateOutputs {
    pub(crate) left: bool,
    pub(crate) right: bool,
}

/// User logic per joined pair (Flink's `ProcessJoinFunction`). One instance runs per shard.
pub trait ProcessJoinFunction<L, R>: Clone + Send + Sync + 'static {
    /// Main output.
    type Out: Data;
    /// Side output (use `()` when unused).
    type Side: Data;

    /// Called once per pair of a left and a right record of one key within the bounds.
    fn process_element(
        &mut self,
        left: &L,
        right: &R,
        ctx: &mut JoinContext<'_, Self::Out, Self::Side>,
    );
}

/// A join function from a closure: each pair becomes one output record.
#[derive(Clone)]
pub(crate) struct MapPairs<F>(pub(crate) F);

impl<L, R, O, F> ProcessJoinFunction<L, R> for MapPairs<F>
where
    O: Data,
    F: FnMut(&L, &R) -> O + Clone + Send + Sync + 'static,
{
    type Out = O;
    type Side = ();

    fn process_element(&mut self, left: &L, right: &R, ctx: &mut JoinContext<'_, O, ()>) {
        let value = (self.0)(left, right);
        ctx.output(value);
    }
}

/// Which buffer a cleanup entry evicts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BufferSide {
    Left,
    Right,
}

/// Buffered records of one key and side, in timestamp order (arrival order among equals);
/// never empty while in the map.
type Buffer<T> = VecDeque<(EventTime, T)>;

/// The keys whose buffer front falls due at each cleanup time.
type CleanupIndex<K> = BTreeMap<EventTime, Vec<(K, BufferSide)>>;

/// The keyed state of one interval join instance: what a checkpoint snapshots.
pub(crate) struct IntervalJoinState<K, L, R> {
    left: FxHashMap<K, Buffer<L>>,
    right: FxHashMap<K, Buffer<R>>,
    cleanup: CleanupIndex<K>,
    /// Emptied lists of `cleanup`, reused so a new cleanup time does not allocate.
    spare_lists: Vec<Vec<(K, BufferSide)>>,
}

impl<K: Hash + Eq + Clone, L, R> IntervalJoinState<K, L, R> {
    fn new() -> Self {
        IntervalJoinState {
            left: FxHashMap::default(),
            right: FxHashMap::default(),
            cleanup: BTreeMap::new(),
            spare_lists: Vec::new(),
        }
    }

    /// Buffered records (both sides, all keys).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.left.values().map(VecDeque::len).sum::<usize>()
            + self.right.values().map(VecDeque::len).sum::<usize>()
    }
}

/// Indexes `key`'s buffer on `side` at cleanup time `at`.
fn schedule<K>(
    cleanup: &mut CleanupIndex<K>,
    spare_lists: &mut Vec<Vec<(K, BufferSide)>>,
    at: EventTime,
    key: K,
    side: BufferSide,
) {
    cleanup
        .entry(at)
        .or_insert_with(|| spare_lists.pop().unwrap_or_default())
        .push((key, side));
}

/// Buffers `value` at `ts` under `key`, indexing the buffer when the record is its new front.
fn buffer<K: Hash + Eq + Clone, T>(
    buffers: &mut FxHashMap<K, Buffer<T>>,
    cleanup: &mut CleanupIndex<K>,
    spare_lists: &mut Vec<Vec<(K, BufferSide)>>,
    (side, delay): (BufferSide, i64),
    key: K,
    ts: EventTime,
    value: T,
) {
    let at = ts.saturating_add(delay);
    match buffers.get_mut(&key) {
        Some(buf) => {
            let front = buf.front().map_or(EventTime::MAX, |e| e.0);
            if buf.back().is_none_or(|e| e.0 <= ts) {
                buf.push_back((ts, value));
            } else {
                let at_index = buf.partition_point(|e| e.0 <= ts);
                buf.insert(at_index, (ts, value));
            }
            if ts < front {
                schedule(cleanup, spare_lists, at, key, side);
            }
        }
        None => {
            let mut buf = VecDeque::with_capacity(4);
            buf.push_back((ts, value));
            buffers.insert(key.clone(), buf);
            schedule(cleanup, spare_lists, at, key, side);
        }
    }
}

/// Drops the records of `key`'s buffer whose cleanup time the watermark reached, then removes
/// the key or re-indexes it at its new front.
fn evict<K: Hash + Eq, T>(
    buffers: &mut FxHashMap<K, Buffer<T>>,
    cleanup: &mut CleanupIndex<K>,
    spare_lists: &mut Vec<Vec<(K, BufferSide)>>,
    (side, delay): (BufferSide, i64),
    key: K,
    watermark: EventTime,
) {
    let Some(buf) = buffers.get_mut(&key) else {
        return;
    };
    while buf
        .front()
        .is_some_and(|e| e.0.saturating_add(delay) <= watermark)
    {
        buf.pop_front();
    }
    match buf.front() {
        None => {
            buffers.remove(&key);
        }
        Some(&(ts, _)) => {
            // Still due later; an entry that was stale (its record already gone) lands here too.
            schedule(cleanup, spare_lists, ts.saturating_add(delay), key, side);
        }
    }
}

/// Interval bounds in ms, inclusive (exclusive bounds already moved inward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) lower: i64,
    pub(crate) upper: i64,
}

impl Bounds {
    /// How long after its timestamp a left record stays buffered: until no right record that
    /// is not late can still fall within its upper bound.
    fn left_delay(self) -> i64 {
        self.upper.max(0)
    }

    /// The same for a right record, through the lower bound.
    fn right_delay(self) -> i64 {
        (-self.lower).max(0)
    }
}

pub(crate) struct IntervalJoinCore<K, L, R, KL, KR, F> {
    key_left: KL,
    key_right: KR,
    f: F,
    bounds: Bounds,
    late: LateOutputs,
    watermark: EventTime,
    state: IntervalJoinState<K, L, R>,
}

impl<K, L, R, KL, KR, F> IntervalJoinCore<K, L, R, KL, KR, F>
where
    K: Hash + Eq + Clone + 'static,
{
    pub(crate) fn new(
        key_left: KL,
        key_right: KR,
        f: F,
        bounds: Bounds,
        late: LateOutputs,
    ) -> Self {
        IntervalJoinCore {
            key_left,
            key_right,
            f,
            bounds,
            late,
            watermark: NO_TIMESTAMP,
            state: IntervalJoinState::new(),
        }
    }
}

fn require_timestamp(ts: EventTime, side: &str) -> Result<(), OperatorError> {
    if ts == NO_TIMESTAMP {
        return Err(OperatorError::Failed(format!(
            "interval join: a record of the {side} input has no timestamp; assign timestamps \
             with with_timestamps before the join"
        )));
    }
    Ok(())
}

/// Calls `emit` for every entry of `buffer` with a timestamp in `[from, to]` (empty when
/// `from > to`), flushing full output batches on the way.
fn scan<T, O: 'static, S: 'static, L: 'static, R: 'static>(
    buffer: Option<&Buffer<T>>,
    from: EventTime,
    to: EventTime,
    out: &mut Outputs<O, JoinSide<S, L, R>>,
    mut emit: impl FnMut(EventTime, &T, &mut Outputs<O, JoinSide<S, L, R>>),
) -> OpResult {
    let Some(buffer) = buffer else {
        return Ok(());
    };
    let first = buffer.partition_point(|e| e.0 < from);
    for (ts, value) in buffer.range(first..) {
        if *ts > to {
            break;
        }
        emit(*ts, value, out);
        out.flush_if_full()?;
    }
    Ok(())
}

impl<K, L, R, KL, KR, F> TimedCore for IntervalJoinCore<K, L, R, KL, KR, F>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    L: StateData,
    R: StateData,
    KL: Fn(&L) -> K + 'static,
    KR: Fn(&R) -> K + 'static,
    F: ProcessJoinFunction<L, R>,
{
    type Out = F::Out;
    type Side = JoinSide<F::Side, L, R>;

    fn on_watermark(
        &mut self,
        watermark: EventTime,
        _out: &mut Outputs<F::Out, Self::Side>,
    ) -> OpResult {
        self.watermark = watermark;
        let left = (BufferSide::Left, self.bounds.left_delay());
        let right = (BufferSide::Right, self.bounds.right_delay());
        let state = &mut self.state;
        while let Some(due) = state.cleanup.first_entry() {
            if *due.key() > watermark {
                break;
            }
            let mut keys = due.remove();
            for (key, side) in keys.drain(..) {
                let (cleanup, spare) = (&mut state.cleanup, &mut state.spare_lists);
                match side {
                    BufferSide::Left => {
                        evict(&mut state.left, cleanup, spare, left, key, watermark)
                    }
                    BufferSide::Right => {
                        evict(&mut state.right, cleanup, spare, right, key, watermark)
                    }
                }
            }
            state.spare_lists.push(keys);
        }
        Ok(())
    }

    fn on_processing_time(
        &mut self,
        _now_ms: EventTime,
        _out: &mut Outputs<F::Out, Self::Side>,
    ) -> OpResult {
        Ok(())
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        None
    }

    fn snapshot(&mut self, writer: &mut KeyGroupWriter) -> Result<(), SnapshotError> {
        for (key, buffer) in &self.state.left {
            writer.write(key, &BufferEntry::<_, _, &Buffer<R>>::Left(key, buffer))?;
        }
        for (key, buffer) in &self.state.right {
            writer.write(key, &BufferEntry::<_, &Buffer<L>, _>::Right(key, buffer))?;
        }
        Ok(())
    }

    fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError> {
        let left = (BufferSide::Left, self.bounds.left_delay());
        let right = (BufferSide::Right, self.bounds.right_delay());
        let state = &mut self.state;
        read_entries::<BufferEntry<K, Buffer<L>, Buffer<R>>>(group, |entry| {
            let (cleanup, spare) = (&mut state.cleanup, &mut state.spare_lists);
            match entry {
                BufferEntry::Left(key, buffer) => {
                    restore_buffer(&mut state.left, cleanup, spare, left, key, buffer)
                }
                BufferEntry::Right(key, buffer) => {
                    restore_buffer(&mut state.right, cleanup, spare, right, key, buffer)
                }
            }
        })
    }
}

/// One snapshot entry: a key's whole buffer on one side (written with references, read back
/// owned). The cleanup index is not written: it is a function of the buffers (one entry per
/// buffer, at its front record's cleanup time), so restore rebuilds it.
#[derive(Serialize, Deserialize)]
enum BufferEntry<K, BL, BR> {
    Left(K, BL),
    Right(K, BR),
}

/// Loads a restored buffer and indexes it at its front record's cleanup time.
fn restore_buffer<K: Hash + Eq + Clone, T>(
    buffers: &mut FxHashMap<K, Buffer<T>>,
    cleanup: &mut CleanupIndex<K>,
    spare_lists: &mut Vec<Vec<(K, BufferSide)>>,
    (side, delay): (BufferSide, i64),
    key: K,
    buffer: Buffer<T>,
) {
    // Written from a buffer in the map, which is never empty and in timestamp order.
    let Some(&(front, _)) = buffer.front() else {
        return;
    };
    debug_assert!(
        buffer
            .iter()
            .zip(buffer.iter().skip(1))
            .all(|(a, b)| a.0 <= b.0)
    );
    schedule(
        cleanup,
        spare_lists,
        front.saturating_add(delay),
        key.clone(),
        side,
    );
    let previous = buffers.insert(key, buffer);
    assert!(
        previous.is_none(),
        "a key's buffer is restored once per side"
    );
}

impl<K, L, R, KL, KR, F> KeyedCoCore for IntervalJoinCore<K, L, R, KL, KR, F>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    L: StateData,
    R: StateData,
    KL: Fn(&L) -> K + 'static,
    KR: Fn(&R) -> K + 'static,
    F: ProcessJoinFunction<L, R>,
{
    type First = L;
    type Second = R;

    fn on_first(
        &mut self,
        record: Record<L>,
        _now_ms: EventTime,
        out: &mut Outputs<F::Out, Self::Side>,
    ) -> OpResult {
        let ts = record.ts;
        require_timestamp(ts, "left")?;
        if ts < self.watermark {
            if self.late.left {
                out.side(ts, JoinSide::LateLeft(record.value));
            }
            return Ok(());
        }
        let key = (self.key_left)(&record.value);
        let Bounds { lower, upper } = self.bounds;
        let f = &mut self.f;
        let left = &record.value;
        scan(
            self.state.right.get(&key),
            ts.saturating_add(lower),
            ts.saturating_add(upper),
            out,
            |right_ts, right, out| {
                let (main, side) = out.batches();
                let mut ctx = JoinContext {
                    left_ts: ts,
                    right_ts,
                    main,
                    side: &mut UserSide(side),
                };
                f.process_element(left, right, &mut ctx);
            },
        )?;
        let state = &mut self.state;
        buffer(
            &mut state.left,
            &mut state.cleanup,
            &mut state.spare_lists,
            (BufferSide::Left, self.bounds.left_delay()),
            key,
            ts,
            record.value,
        );
        Ok(())
    }

    fn on_second(
        &mut self,
        record: Record<R>,
        _now_ms: EventTime,
        out: &mut Outputs<F::Out, Self::Side>,
    ) -> OpResult {
        let ts = record.ts;
        require_timestamp(ts, "right")?;
        if ts < self.watermark {
            if self.late.right {
                out.side(ts, JoinSide::LateRight(record.value));
            }
            return Ok(());
        }
        let key = (self.key_right)(&record.value);
        let Bounds { lower, upper } = self.bounds;
        let f = &mut self.f;
        let right = &record.value;
        scan(
            self.state.left.get(&key),
            ts.saturating_sub(upper),
            ts.saturating_sub(lower),
            out,
            |left_ts, left, out| {
                let (main, side) = out.batches();
                let mut ctx = JoinContext {
                    left_ts,
                    right_ts: ts,
                    main,
                    side: &mut UserSide(side),
                };
                f.process_element(left, right, &mut ctx);
            },
        )?;
        let state = &mut self.state;
        buffer(
            &mut state.right,
            &mut state.cleanup,
            &mut state.spare_lists,
            (BufferSide::Right, self.bounds.right_delay()),
            key,
            ts,
            record.value,
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The core driven directly: eviction keeps the buffers bounded by the watermark.
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    use crate::test_capture::Capture;

    type Pair = (i64, i64);

    type Key = fn(&i64) -> u8;
    type TestCore = IntervalJoinCore<u8, i64, i64, Key, Key, MapPairs<fn(&i64, &i64) -> Pair>>;

    fn core(lower: i64, upper: i64) -> TestCore {
        IntervalJoinCore::new(
            |_| 0,
            |_| 0,
            MapPairs(|l: &i64, r: &i64| (*l, *r)),
            Bounds { lower, upper },
            LateOutputs::default(),
        )
    }

    #[test]
    fn buffers_are_evicted_when_the_watermark_passes_their_cleanup_time() {
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out: Outputs<Pair, JoinSide<(), i64, i64>> = Outputs::new(
            4,
            Box::new(Capture(Rc::clone(&main))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        );
        let mut c = core(-2, 3);
        for t in 0..100 {
            c.on_first(Record::new(t, t), 0, &mut out).unwrap();
            c.on_second(Record::new(t, t), 0, &mut out).unwrap();
            c.on_watermark(t - 1, &mut out).unwrap();
            // Left records live until t + 3, right ones until t + 2: at most 5 + 4 buffered.
            assert!(
                c.state.buffered() <= 9,
                "at t = {t}: {}",
                c.state.buffered()
            );
        }
        c.on_watermark(EventTime::MAX, &mut out).unwrap();
        assert_eq!(c.state.buffered(), 0);
        assert!(c.state.left.is_empty() && c.state.right.is_empty());
        assert!(c.state.cleanup.is_empty());
        out.flush().unwrap();
        // Every pair with r - l in [-2, 3], each once (no record is late in this order).
        let got = main.borrow().len();
        let want = (0..100i64)
            .flat_map(|l| (0..100i64).map(move |r| (l, r)))
            .filter(|(l, r)| (-2..=3).contains(&(r - l)))
            .count();
        assert_eq!(got, want);
        assert!(
            main.borrow()
                .iter()
                .all(|r| r.ts == r.value.0.max(r.value.1))
        );
    }

    proptest::proptest! {
        /// Out-of-order input on both sides and several keys: after every watermark the buffers
        /// hold exactly the records that were not late and whose cleanup time is above it.
        #[test]
        fn buffers_hold_exactly_the_records_not_yet_due(
            lower in -10i64..10,
            width in 0i64..15,
            steps in proptest::collection::vec((proptest::bool::ANY, 0u8..3, 0i64..40, 0i64..4), 1..200),
        ) {
            let upper = lower + width;
            let mut out: Outputs<Pair, KeyedSide> = Outputs::new(
                64,
                Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
                Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
            );
            let mut c = IntervalJoinCore::new(
                |r: &(u8, i64)| r.0,
                |r: &(u8, i64)| r.0,
                MapPairs(|l: &(u8, i64), r: &(u8, i64)| (l.1, r.1)),
                Bounds { lower, upper },
                LateOutputs::default(),
            );
            let mut kept: Vec<i64> = Vec::new(); // cleanup times of buffered records
            let mut watermark = EventTime::MIN;
            for (i, (left, key, jitter, advance)) in steps.into_iter().enumerate() {
                let ts = i as i64 - jitter;
                if ts >= watermark {
                    kept.push(if left { ts + upper.max(0) } else { ts + (-lower).max(0) });
                }
                if left {
                    c.on_first(Record::new(ts, (key, ts)), 0, &mut out).unwrap();
                } else {
                    c.on_second(Record::new(ts, (key, ts)), 0, &mut out).unwrap();
                }
                if advance == 0 {
                    watermark = watermark.max(ts - 5);
                    c.on_watermark(watermark, &mut out).unwrap();
                    kept.retain(|&cleanup| cleanup > watermark);
                }
                proptest::prop_assert_eq!(c.state.buffered(), kept.len());
            }
        }
    }

    #[test]
    fn a_record_without_timestamp_is_an_error_naming_the_input() {
        let mut out: Outputs<Pair, JoinSide<(), i64, i64>> = Outputs::new(
            4,
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        );
        let mut c = core(0, 1);
        let err = c
            .on_second(Record::new(NO_TIMESTAMP, 1), 0, &mut out)
            .unwrap_err();
        assert!(
            err.to_string().contains("right input has no timestamp"),
            "{err}"
        );
    }

    /// Drives `core` through `steps` (left?, key, ts) with a watermark 3 ms behind every 4th
    /// record; returns the main output.
    fn drive(core: &mut TestKeyed, steps: &[(bool, u8, i64)]) -> Vec<Record<(u8, i64, i64)>> {
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out: Outputs<(u8, i64, i64), KeyedSide> = Outputs::new(
            8,
            Box::new(Capture(Rc::clone(&main))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        );
        for (i, &(left, key, ts)) in steps.iter().enumerate() {
            if left {
                core.on_first(Record::new(ts, (key, ts)), 0, &mut out)
                    .unwrap();
            } else {
                core.on_second(Record::new(ts, (key, ts)), 0, &mut out)
                    .unwrap();
            }
            if i % 4 == 3 && ts - 3 > core.watermark {
                core.on_watermark(ts - 3, &mut out).unwrap();
            }
        }
        core.on_watermark(EventTime::MAX, &mut out).unwrap();
        out.flush().unwrap();
        main.take()
    }

    type KeyedSide = JoinSide<(), (u8, i64), (u8, i64)>;
    type KeyFn = fn(&(u8, i64)) -> u8;
    type TestKeyed = IntervalJoinCore<
        u8,
        (u8, i64),
        (u8, i64),
        KeyFn,
        KeyFn,
        MapPairs<fn(&(u8, i64), &(u8, i64)) -> (u8, i64, i64)>,
    >;

    fn keyed_core() -> TestKeyed {
        IntervalJoinCore::new(
            |r| r.0,
            |r| r.0,
            MapPairs(|l, r| (l.0, l.1, r.1)),
            Bounds {
                lower: -4,
                upper: 6,
            },
            LateOutputs::default(),
        )
    }

    #[test]
    fn a_restored_core_continues_exactly_as_the_one_snapshotted() {
        let steps: Vec<(bool, u8, i64)> = (0..120i64)
            .map(|i| (i % 3 != 0, (i % 5) as u8, i - (i * 7) % 4))
            .collect();
        let mut whole = keyed_core();
        let want = drive(&mut whole, &steps);
        // Stop after 60 steps, snapshot (the watermark is set again by the next one, as after a
        // restart), restore into a fresh core and go on.
        let (before, after) = steps.split_at(60);
        let mut first = keyed_core();
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out: Outputs<(u8, i64, i64), KeyedSide> = Outputs::new(
            8,
            Box::new(Capture(Rc::clone(&main))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        );
        for (i, &(left, key, ts)) in before.iter().enumerate() {
            if left {
                first
                    .on_first(Record::new(ts, (key, ts)), 0, &mut out)
                    .unwrap();
            } else {
                first
                    .on_second(Record::new(ts, (key, ts)), 0, &mut out)
                    .unwrap();
            }
            if i % 4 == 3 && ts - 3 > first.watermark {
                first.on_watermark(ts - 3, &mut out).unwrap();
            }
        }
        out.flush().unwrap();
        let buffered = first.state.buffered();
        assert!(buffered > 0, "the snapshot holds buffered records");
        let mut writer = KeyGroupWriter::new(0..16, 16);
        first.snapshot(&mut writer).unwrap();
        let mut second = keyed_core();
        for group in writer.finish() {
            second.restore(&group).unwrap();
        }
        assert_eq!(second.state.buffered(), buffered);
        second.watermark = first.watermark;
        let mut got = main.take();
        got.extend(drive(&mut second, after));
        assert!(second.state.cleanup.is_empty() && second.state.left.is_empty());
        let key = |r: &Record<(u8, i64, i64)>| (r.ts, r.value);
        let (mut got, mut want): (Vec<_>, Vec<_>) = (
            got.iter().map(key).collect(),
            want.iter().map(key).collect(),
        );
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
}
