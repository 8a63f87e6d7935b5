//! The window join and co-group operator (Flink's `JoinedStreams` / `CoGroupedStreams` on
//! tumbling or sliding event-time windows): the records of two inputs with the same key in the
//! same window meet when the window fires.
//!
//! Rules, Flink's (its join is a co-group on a window operator with the default event-time
//! trigger and no allowed lateness):
//! - A record at `t` belongs to every window `[start, end)` with `start <= t < end` (windows
//!   aligned to the epoch plus the assigner's offset).
//! - A window is late once the watermark (the minimum of both inputs') reaches `end - 1`: it has
//!   fired and its state is gone. A record whose windows are all late is dropped; one with some
//!   late windows joins only in the others.
//! - A window fires once, when the watermark reaches `end - 1`: the join emits `f(left, right)`
//!   for every pair of its left and right records of the key (nothing when a side is empty);
//!   the co-group calls `f` once with both sides' records when either side has one. Results
//!   carry timestamp `end - 1`.
//!
//! Panes, as the aligned window operator: time is cut into panes of `gcd(size, slide)`; each
//! record is stored once, in its pane, whatever the number of windows it belongs to, and a
//! window is the range of its key's panes. A pane is dropped when its last window fires (the
//! one starting in `[pane - slide, pane]`), so state is bounded by the watermark.
//!
//! State ([`WindowJoinState`]): per key, one deque of its records of both sides tagged with
//! their side and ordered by pane start (arrival order within a pane): a record usually
//! appends, a fired pane pops from the front, and a key costs one allocation however many panes
//! and sides it has. Plus one firing timer per (key, window end); a key without records is
//! removed.

use std::collections::VecDeque;
use std::collections::vec_deque::Iter;
use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::state::snapshot::{KeyGroupState, KeyGroupWriter, SnapshotError};
use corestrom_runtime::{
    Data, EventTime, NO_TIMESTAMP, OpResult, OperatorError, Record, TimerQueue,
};
use rustc_hash::FxHashMap;

use super::JOIN_NOT_CHECKPOINTED;

use crate::keyed_driver::{KeyedCoCore, Outputs, TimedCore};
use crate::window::{AlignedSpec, window_start};

/// A stored record of either input.
pub(crate) enum Stored<A, B> {
    Left(A),
    Right(B),
}

impl<A, B> Stored<A, B> {
    fn left(&self) -> Option<&A> {
        match self {
            Stored::Left(a) => Some(a),
            Stored::Right(_) => None,
        }
    }

    fn right(&self) -> Option<&B> {
        match self {
            Stored::Left(_) => None,
            Stored::Right(b) => Some(b),
        }
    }
}

/// The records of one window of one key, with their pane starts.
pub(crate) type WindowRecords<'a, A, B> = Iter<'a, (EventTime, Stored<A, B>)>;

/// The records of one key by pane start; never empty while in the map.
type KeyRecords<A, B> = VecDeque<(EventTime, Stored<A, B>)>;

/// What a window join does when a window fires.
pub(crate) trait WindowEmit<A, B>: Clone + Send + Sync + 'static {
    type Out: Data;
    /// Emits the results of one window (timestamp `max_ts`) from its records.
    fn emit(
        &mut self,
        max_ts: EventTime,
        records: WindowRecords<'_, A, B>,
        out: &mut Outputs<Self::Out, ()>,
    ) -> OpResult;
}

/// The join: `f(left, right)` for every pair.
#[derive(Clone)]
pub(crate) struct JoinPairs<F>(pub(crate) F);

impl<A, B, O, F> WindowEmit<A, B> for JoinPairs<F>
where
    A: 'static,
    B: 'static,
    O: Data,
    F: FnMut(&A, &B) -> O + Clone + Send + Sync + 'static,
{
    type Out = O;

    fn emit(
        &mut self,
        max_ts: EventTime,
        records: WindowRecords<'_, A, B>,
        out: &mut Outputs<O, ()>,
    ) -> OpResult {
        for left in records.clone().filter_map(|(_, r)| r.left()) {
            for right in records.clone().filter_map(|(_, r)| r.right()) {
                out.main(max_ts, (self.0)(left, right));
            }
            out.flush_if_full()?;
        }
        Ok(())
    }
}

/// The co-group: `f(lefts, rights, out)` once per window with any record.
#[derive(Clone)]
pub(crate) struct CoGroup<F, O> {
    pub(crate) f: F,
    pub(crate) results: Vec<O>,
}

impl<A, B, O, F> WindowEmit<A, B> for CoGroup<F, O>
where
    A: 'static,
    B: 'static,
    O: Data + Sync,
    F: FnMut(&mut dyn Iterator<Item = &A>, &mut dyn Iterator<Item = &B>, &mut Vec<O>)
        + Clone
        + Send
        + Sync
        + 'static,
{
    type Out = O;

    fn emit(
        &mut self,
        max_ts: EventTime,
        records: WindowRecords<'_, A, B>,
        out: &mut Outputs<O, ()>,
    ) -> OpResult {
        let mut lefts = records.clone().filter_map(|(_, r)| r.left());
        let mut rights = records.filter_map(|(_, r)| r.right());
        (self.f)(&mut lefts, &mut rights, &mut self.results);
        for value in self.results.drain(..) {
            out.main(max_ts, value);
        }
        out.flush_if_full()
    }
}

/// The keyed state of one window join instance: what a checkpoint snapshots.
pub(crate) struct WindowJoinState<K, A, B> {
    records: FxHashMap<K, KeyRecords<A, B>>,
    /// Firing timers at `end - 1` per (key, window).
    timers: TimerQueue<K, ()>,
}

impl<K, A, B> WindowJoinState<K, A, B> {
    /// Stored records (both sides, all keys).
    #[cfg(test)]
    fn stored(&self) -> usize {
        self.records.values().map(VecDeque::len).sum()
    }
}

pub(crate) struct WindowJoinCore<K, A, B, KA, KB, E> {
    key_first: KA,
    key_second: KB,
    emit: E,
    size: i64,
    slide: i64,
    offset: i64,
    pane: i64,
    watermark: EventTime,
    state: WindowJoinState<K, A, B>,
    _k: PhantomData<fn() -> K>,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl<K, A, B, KA, KB, E> WindowJoinCore<K, A, B, KA, KB, E>
where
    K: Hash + Eq + Clone + 'static,
    A: 'static,
    B: 'static,
    E: WindowEmit<A, B>,
{
    pub(crate) fn new(key_first: KA, key_second: KB, emit: E, spec: AlignedSpec) -> Self {
        assert!(spec.slide_ms > 0 && spec.slide_ms <= spec.size_ms);
        WindowJoinCore {
            key_first,
            key_second,
            emit,
            size: spec.size_ms,
            slide: spec.slide_ms,
            offset: spec.offset_ms,
            pane: gcd(spec.size_ms, spec.slide_ms),
            watermark: NO_TIMESTAMP,
            state: WindowJoinState {
                records: FxHashMap::default(),
                timers: TimerQueue::new(),
            },
            _k: PhantomData,
        }
    }

    /// Stores a record of `key` at `ts` under its pane, registering the firing timers of the
    /// pane's windows when it is the key's first record in that pane. Late records are dropped.
    fn add(&mut self, ts: EventTime, key: K, side: &str, record: Stored<A, B>) -> OpResult {
        if ts == NO_TIMESTAMP {
            return Err(OperatorError::Failed(format!(
                "window join: a record of the {side} input has no timestamp; assign timestamps \
                 with with_timestamps before the join"
            )));
        }
        let last_start = window_start(ts, self.offset, self.slide);
        // The window starting last ends last: if it has fired, all of the record's windows have.
        if last_start + self.size - 1 <= self.watermark {
            return Ok(());
        }
        let pane_start = window_start(ts, self.offset, self.pane);
        let created = match self.state.records.get_mut(&key) {
            Some(records) => {
                let back = records.back().map_or(EventTime::MIN, |(pane, _)| *pane);
                if back <= pane_start {
                    records.push_back((pane_start, record));
                    back < pane_start
                } else {
                    // Out of order: after the records of its pane, before the later panes'.
                    let at = records.partition_point(|(pane, _)| *pane <= pane_start);
                    let created = at == 0 || records[at - 1].0 != pane_start;
                    records.insert(at, (pane_start, record));
                    created
                }
            }
            None => {
                let mut records = VecDeque::with_capacity(4);
                records.push_back((pane_start, record));
                self.state.records.insert(key.clone(), records);
                true
            }
        };
        if created {
            let mut start = last_start;
            while start > ts - self.size {
                let max_ts = start + self.size - 1;
                if max_ts <= self.watermark {
                    break;
                }
                self.state.timers.register(key.clone(), (), max_ts);
                start -= self.slide;
            }
        }
        Ok(())
    }
}

impl<K, A, B, KA, KB, E> TimedCore for WindowJoinCore<K, A, B, KA, KB, E>
where
    K: Hash + Eq + Clone + 'static,
    A: 'static,
    B: 'static,
    KA: Fn(&A) -> K + 'static,
    KB: Fn(&B) -> K + 'static,
    E: WindowEmit<A, B>,
{
    type Out = E::Out;
    type Side = ();

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Outputs<E::Out, ()>) -> OpResult {
        self.watermark = watermark;
        while let Some((key, (), max_ts)) = self.state.timers.pop_due(watermark) {
            let start = max_ts + 1 - self.size;
            let Some(records) = self.state.records.get_mut(&key) else {
                continue;
            };
            let first = records.partition_point(|(pane, _)| *pane < start);
            let end = records.partition_point(|(pane, _)| *pane <= max_ts);
            self.emit.emit(max_ts, records.range(first..end), out)?;
            // Panes whose last window this is: they start before the next window does.
            while records
                .front()
                .is_some_and(|(pane, _)| *pane < start + self.slide)
            {
                records.pop_front();
            }
            if records.is_empty() {
                self.state.records.remove(&key);
            }
        }
        Ok(())
    }

    fn on_processing_time(
        &mut self,
        _now_ms: EventTime,
        _out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        Ok(())
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        None
    }

    fn refuses_checkpoints(&mut self) -> Option<String> {
        Some(JOIN_NOT_CHECKPOINTED.to_string())
    }

    fn snapshot(&mut self, _writer: &mut KeyGroupWriter) -> Result<(), SnapshotError> {
        unreachable!("{JOIN_NOT_CHECKPOINTED}")
    }

    fn restore(&mut self, _group: &KeyGroupState) -> Result<(), SnapshotError> {
        unreachable!("{JOIN_NOT_CHECKPOINTED}")
    }
}

impl<K, A, B, KA, KB, E> KeyedCoCore for WindowJoinCore<K, A, B, KA, KB, E>
where
    K: Hash + Eq + Clone + 'static,
    A: 'static,
    B: 'static,
    KA: Fn(&A) -> K + 'static,
    KB: Fn(&B) -> K + 'static,
    E: WindowEmit<A, B>,
{
    type First = A;
    type Second = B;

    fn on_first(
        &mut self,
        record: Record<A>,
        _now_ms: EventTime,
        _out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        let key = (self.key_first)(&record.value);
        self.add(record.ts, key, "first", Stored::Left(record.value))
    }

    fn on_second(
        &mut self,
        record: Record<B>,
        _now_ms: EventTime,
        _out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        let key = (self.key_second)(&record.value);
        self.add(record.ts, key, "second", Stored::Right(record.value))
    }
}

#[cfg(test)]
mod tests {
    //! The core driven directly: panes hold each record once and leave with their last window.
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

    #[test]
    fn sliding_panes_store_each_record_once_and_are_dropped_after_their_last_window() {
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out: Outputs<(i64, i64), ()> = Outputs::new(
            8,
            Box::new(Capture(Rc::clone(&main))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        );
        type F = fn(&i64) -> u8;
        let mut c = WindowJoinCore::<u8, i64, i64, F, F, _>::new(
            |_| 0,
            |_| 0,
            JoinPairs(|l: &i64, r: &i64| (*l, *r)),
            AlignedSpec {
                size_ms: 10,
                slide_ms: 5,
                offset_ms: 0,
            },
        );
        for t in 0..20 {
            c.on_first(Record::new(t, t), 0, &mut out).unwrap();
        }
        c.on_second(Record::new(7, 7), 0, &mut out).unwrap();
        assert_eq!(
            c.state.stored(),
            21,
            "each record once, not once per window"
        );
        // Window [0, 10) fires at 9; panes [0, 5) leave (their last window), [5, 10) stays.
        c.on_watermark(9, &mut out).unwrap();
        assert_eq!(c.state.stored(), 16);
        // A record whose last window has fired is dropped, not stored.
        c.on_first(Record::new(3, 3), 0, &mut out).unwrap();
        assert_eq!(c.state.stored(), 16, "late records are not stored");
        c.on_watermark(14, &mut out).unwrap();
        assert_eq!(
            c.state.stored(),
            10,
            "panes [5, 10) and the right record leave"
        );
        c.on_watermark(EventTime::MAX, &mut out).unwrap();
        assert_eq!(c.state.stored(), 0);
        assert!(c.state.records.is_empty() && c.state.timers.is_empty());
        out.flush().unwrap();
        let mut got: Vec<(i64, i64, i64)> = main
            .borrow()
            .iter()
            .map(|r| (r.ts, r.value.0, r.value.1))
            .collect();
        got.sort();
        // The right record at 7 is in [0, 10) and [5, 15).
        let mut want: Vec<(i64, i64, i64)> = (0..10).map(|l| (9, l, 7)).collect();
        want.extend((5..15).map(|l| (14, l, 7)));
        want.sort();
        assert_eq!(got, want);
    }
}
