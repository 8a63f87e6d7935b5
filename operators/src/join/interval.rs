//! The interval join operator (Flink's `IntervalJoinOperator`): joins each left record at `l`
//! with every right record of the same key at `r` such that `l + lower <= r <= l + upper`.
//!
//! Rules, exactly Flink's (bounds already adjusted for exclusiveness: an exclusive lower bound
//! is `lower + 1`, an exclusive upper bound `upper - 1`):
//! - A record whose timestamp is below the operator's watermark (`ts < watermark`, the minimum
//!   of both inputs') is late and dropped. Anything else is buffered under its key and side and
//!   joined with every buffered record of the other side within the bounds, in either arrival
//!   order; each pair is emitted once, with timestamp `max(l, r)`.
//! - Each buffered record gets an event-time cleanup timer: a left record at `l` at
//!   `l + max(upper, 0)`, a right record at `r` at `r + max(-lower, 0)`. When the watermark
//!   reaches the timer the record leaves the buffer. (As in Flink, a non-late record exactly at
//!   the watermark can miss a partner evicted at that watermark.)
//!
//! State ([`IntervalJoinState`]): per key and side, the buffered records ordered by (timestamp,
//! arrival number), plus the cleanup timers; a key whose buffers are empty is removed. Matching
//! a record is a range scan of the other side's buffer over the bounds, not a scan of the key's
//! whole buffer.

use std::collections::BTreeMap;
use std::hash::Hash;

use corestrom_runtime::{
    Data, EventTime, NO_TIMESTAMP, OpResult, OperatorError, Record, TimerQueue,
};
use rustc_hash::FxHashMap;

use crate::keyed_driver::{KeyedCoCore, Outputs, TimedCore};

/// What an interval join function sees for one pair.
pub struct JoinContext<'a, O, S> {
    left_ts: EventTime,
    right_ts: EventTime,
    out: &'a mut Outputs<O, S>,
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
        self.out.main(ts, value);
    }

    /// Emits a record on the side output.
    pub fn side_output(&mut self, value: S) {
        let ts = self.timestamp();
        self.out.side(ts, value);
    }
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

/// Which buffer a cleanup timer evicts from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum BufferSide {
    Left,
    Right,
}

/// Buffered records of one key and side, by (timestamp, arrival number).
type Buffer<T> = BTreeMap<(EventTime, u64), T>;

/// The keyed state of one interval join instance: what a checkpoint snapshots.
pub(crate) struct IntervalJoinState<K, L, R> {
    left: FxHashMap<K, Buffer<L>>,
    right: FxHashMap<K, Buffer<R>>,
    cleanup: TimerQueue<K, BufferSide>,
    /// Makes buffer entries of equal timestamps distinct; never reused.
    arrivals: u64,
}

impl<K: Hash + Eq + Clone, L, R> IntervalJoinState<K, L, R> {
    fn new() -> Self {
        IntervalJoinState {
            left: FxHashMap::default(),
            right: FxHashMap::default(),
            cleanup: TimerQueue::new(),
            arrivals: 0,
        }
    }

    /// Buffered records (both sides, all keys).
    #[cfg(test)]
    fn buffered(&self) -> usize {
        self.left.values().map(BTreeMap::len).sum::<usize>()
            + self.right.values().map(BTreeMap::len).sum::<usize>()
    }
}

/// Interval bounds in ms, inclusive (exclusive bounds already moved inward).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Bounds {
    pub(crate) lower: i64,
    pub(crate) upper: i64,
}

pub(crate) struct IntervalJoinCore<K, L, R, KL, KR, F> {
    key_left: KL,
    key_right: KR,
    f: F,
    bounds: Bounds,
    watermark: EventTime,
    state: IntervalJoinState<K, L, R>,
}

impl<K, L, R, KL, KR, F> IntervalJoinCore<K, L, R, KL, KR, F>
where
    K: Hash + Eq + Clone + 'static,
{
    pub(crate) fn new(key_left: KL, key_right: KR, f: F, bounds: Bounds) -> Self {
        IntervalJoinCore {
            key_left,
            key_right,
            f,
            bounds,
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
fn scan<T, O: 'static, S: 'static>(
    buffer: Option<&Buffer<T>>,
    from: EventTime,
    to: EventTime,
    out: &mut Outputs<O, S>,
    mut emit: impl FnMut(EventTime, &T, &mut Outputs<O, S>),
) -> OpResult {
    let Some(buffer) = buffer else {
        return Ok(());
    };
    if from > to {
        return Ok(());
    }
    for (&(ts, _), value) in buffer.range((from, 0)..=(to, u64::MAX)) {
        emit(ts, value, out);
        out.flush_if_full()?;
    }
    Ok(())
}

/// Drops the entries of `key`'s buffer at or before `upto`, and the key when nothing is left.
fn evict<K: Hash + Eq, T>(buffers: &mut FxHashMap<K, Buffer<T>>, key: &K, upto: EventTime) {
    let Some(buffer) = buffers.get_mut(key) else {
        return;
    };
    while let Some(entry) = buffer.first_entry() {
        if entry.key().0 > upto {
            break;
        }
        entry.remove();
    }
    if buffer.is_empty() {
        buffers.remove(key);
    }
}

impl<K, L, R, KL, KR, F> TimedCore for IntervalJoinCore<K, L, R, KL, KR, F>
where
    K: Hash + Eq + Clone + 'static,
    L: 'static,
    R: 'static,
    KL: Fn(&L) -> K + 'static,
    KR: Fn(&R) -> K + 'static,
    F: ProcessJoinFunction<L, R>,
{
    type Out = F::Out;
    type Side = F::Side;

    fn on_watermark(
        &mut self,
        watermark: EventTime,
        _out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        self.watermark = watermark;
        let left_delay = self.bounds.upper.max(0);
        let right_delay = (-self.bounds.lower).max(0);
        while let Some((key, side, time)) = self.state.cleanup.pop_due(watermark) {
            match side {
                BufferSide::Left => evict(&mut self.state.left, &key, time - left_delay),
                BufferSide::Right => evict(&mut self.state.right, &key, time - right_delay),
            }
        }
        Ok(())
    }

    fn on_processing_time(
        &mut self,
        _now_ms: EventTime,
        _out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        Ok(())
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        None
    }
}

impl<K, L, R, KL, KR, F> KeyedCoCore for IntervalJoinCore<K, L, R, KL, KR, F>
where
    K: Hash + Eq + Clone + 'static,
    L: 'static,
    R: 'static,
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
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let ts = record.ts;
        require_timestamp(ts, "left")?;
        if ts < self.watermark {
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
                let mut ctx = JoinContext {
                    left_ts: ts,
                    right_ts,
                    out,
                };
                f.process_element(left, right, &mut ctx);
            },
        )?;
        let state = &mut self.state;
        state.arrivals += 1;
        let cleanup = ts.saturating_add(upper.max(0));
        state
            .cleanup
            .register(key.clone(), BufferSide::Left, cleanup);
        state
            .left
            .entry(key)
            .or_default()
            .insert((ts, state.arrivals), record.value);
        Ok(())
    }

    fn on_second(
        &mut self,
        record: Record<R>,
        _now_ms: EventTime,
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let ts = record.ts;
        require_timestamp(ts, "right")?;
        if ts < self.watermark {
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
                let mut ctx = JoinContext {
                    left_ts,
                    right_ts: ts,
                    out,
                };
                f.process_element(left, right, &mut ctx);
            },
        )?;
        let state = &mut self.state;
        state.arrivals += 1;
        let cleanup = ts.saturating_add((-lower).max(0));
        state
            .cleanup
            .register(key.clone(), BufferSide::Right, cleanup);
        state
            .right
            .entry(key)
            .or_default()
            .insert((ts, state.arrivals), record.value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! The core driven directly: eviction keeps the buffers bounded by the watermark.
    use std::cell::RefCell;
    use std::rc::Rc;

    use corestrom_runtime::{Batch, Collector, Signal};

    use super::*;

    struct Capture<T>(Rc<RefCell<Vec<Record<T>>>>);

    impl<T: 'static> Collector<T> for Capture<T> {
        fn push(&mut self, batch: &mut Batch<T>) -> OpResult {
            self.0.borrow_mut().extend(batch.records.drain(..));
            Ok(())
        }
        fn signal(&mut self, _signal: Signal) -> OpResult {
            Ok(())
        }
    }

    type Pair = (i64, i64);

    type Key = fn(&i64) -> u8;
    type TestCore = IntervalJoinCore<u8, i64, i64, Key, Key, MapPairs<fn(&i64, &i64) -> Pair>>;

    fn core(lower: i64, upper: i64) -> TestCore {
        IntervalJoinCore::new(
            |_| 0,
            |_| 0,
            MapPairs(|l: &i64, r: &i64| (*l, *r)),
            Bounds { lower, upper },
        )
    }

    #[test]
    fn buffers_are_evicted_when_the_watermark_passes_their_cleanup_time() {
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out: Outputs<Pair, ()> = Outputs::new(
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

    #[test]
    fn a_record_without_timestamp_is_an_error_naming_the_input() {
        let mut out: Outputs<Pair, ()> = Outputs::new(
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
}
