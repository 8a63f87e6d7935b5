//! The window join and co-group operator (Flink's `JoinedStreams` / `CoGroupedStreams` on
//! tumbling or sliding windows, event or processing time): the records of two inputs with the
//! same key in the same window meet when the window fires.
//!
//! Rules, Flink's (its join is a co-group on a window operator with the default trigger):
//! - A record at `t` belongs to every window `[start, end)` with `start <= t < end` (windows
//!   aligned to the epoch plus the assigner's offset). In processing time `t` is the clock's
//!   time when the record arrives.
//! - A window fires when the watermark (the minimum of both inputs') reaches `end - 1` (the
//!   clock, in processing time): the join emits `f(left, right)` for every pair of its left and
//!   right records of the key (nothing when a side is empty); the co-group calls `f` once with
//!   both sides' records when either side has one. Results carry timestamp `end - 1`.
//! - With allowed lateness `L` (event time only; 0 otherwise) a window is late once the
//!   watermark reaches `end - 1 + L`: its state is gone. A record whose windows are all late is
//!   dropped and counted; one with some late windows joins only in the others. A record for a
//!   window that fired but is not late is stored and fires that window again at once, with all
//!   its records (a late firing re-emits the earlier pairs too, as Flink's).
//!
//! Panes, as the aligned window operator: time is cut into panes of `gcd(size, slide)`; each
//! record is stored once, in its pane, whatever the number of windows it belongs to, and a
//! window is the range of its key's panes. A pane is dropped at the cleanup time of its last
//! window (the one starting in `[pane - slide, pane]`), so state is bounded by the watermark.
//!
//! State ([`WindowJoinState`]): per key, one deque of its records of both sides tagged with
//! their side and ordered by pane start (arrival order within a pane): a record usually
//! appends, a cleaned-up pane pops from the front, and a key costs one allocation however many
//! panes and sides it has. Plus, per (key, window end), a firing timer at `end - 1` and a
//! cleanup timer at `end - 1 + L` (the same timer when `L = 0`); a key without records is
//! removed. Checkpoints write each key's deque and its timers under the key's group; restore
//! loads them back as they were (the pane order is kept by the encoding).

use std::collections::VecDeque;
use std::collections::vec_deque::Iter;
use std::hash::Hash;
use std::marker::PhantomData;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use corestrom_runtime::state::snapshot::{
    KeyGroupState, KeyGroupWriter, SnapshotError, StateData, read_entries,
};
use corestrom_runtime::{
    Data, EventTime, NO_TIMESTAMP, OpResult, OperatorError, Record, StableHash, TimeDomain,
    TimerQueue,
};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::keyed_driver::{KeyedCoCore, Outputs, TimedCore};
use crate::window::{AlignedSpec, window_start};

/// A stored record of either input.
#[derive(Serialize, Deserialize)]
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

/// How many records a window join dropped because every window they belong to was past its
/// allowed lateness (Flink's `numLateRecordsDropped`): one counter shared by the join's
/// instances on all shards, counting since the job (or its latest restart) started.
#[derive(Clone, Debug, Default)]
pub struct LateRecordsDropped(Arc<AtomicU64>);

impl LateRecordsDropped {
    /// The records dropped so far.
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one more (only late records pay for it, so the atomic costs nothing per record on
    /// time).
    fn add_one(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

/// The keyed state of one window join instance: what a checkpoint snapshots.
pub(crate) struct WindowJoinState<K, A, B> {
    records: FxHashMap<K, KeyRecords<A, B>>,
    /// Per (key, window end): the firing timer at `end - 1` and, with allowed lateness `L > 0`,
    /// the cleanup timer at `end - 1 + L` (one timer does both when `L = 0`).
    timers: TimerQueue<K, EventTime>,
}

impl<K, A, B> WindowJoinState<K, A, B> {
    /// Stored records (both sides, all keys).
    #[cfg(test)]
    fn stored(&self) -> usize {
        self.records.values().map(VecDeque::len).sum()
    }
}

/// One snapshot entry, written with references and read back owned: a key's records, or a
/// timer (namespace: the window end).
#[derive(Serialize, Deserialize)]
enum StateEntry<K, V> {
    Records(K, V),
    EventTimer(K, EventTime, EventTime),
    ProcessingTimer(K, EventTime, EventTime),
}

/// How a window join assigns and fires windows: the windows' shape, their clock, and the
/// allowed lateness (event time only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct JoinWindows {
    pub(crate) spec: AlignedSpec,
    pub(crate) domain: TimeDomain,
    pub(crate) lateness_ms: i64,
}

pub(crate) struct WindowJoinCore<K, A, B, KA, KB, E> {
    key_first: KA,
    key_second: KB,
    emit: E,
    size: i64,
    slide: i64,
    offset: i64,
    pane: i64,
    /// Allowed lateness in ms; 0 in processing time (Flink ignores it there).
    lateness: i64,
    domain: TimeDomain,
    watermark: EventTime,
    dropped: LateRecordsDropped,
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
    pub(crate) fn new(
        key_first: KA,
        key_second: KB,
        emit: E,
        windows: JoinWindows,
        dropped: LateRecordsDropped,
    ) -> Self {
        let spec = windows.spec;
        assert!(spec.slide_ms > 0 && spec.slide_ms <= spec.size_ms);
        assert!(windows.lateness_ms >= 0);
        WindowJoinCore {
            key_first,
            key_second,
            emit,
            size: spec.size_ms,
            slide: spec.slide_ms,
            offset: spec.offset_ms,
            pane: gcd(spec.size_ms, spec.slide_ms),
            lateness: match windows.domain {
                TimeDomain::EventTime => windows.lateness_ms,
                TimeDomain::ProcessingTime => 0,
            },
            domain: windows.domain,
            watermark: NO_TIMESTAMP,
            dropped,
            state: WindowJoinState {
                records: FxHashMap::default(),
                timers: TimerQueue::new(),
            },
            _k: PhantomData,
        }
    }

    fn cleanup_time(&self, end: EventTime) -> EventTime {
        (end - 1).saturating_add(self.lateness)
    }

    /// A window is late (its state gone or going) once the watermark reached its cleanup time.
    fn is_late(&self, end: EventTime) -> bool {
        self.domain == TimeDomain::EventTime && self.cleanup_time(end) <= self.watermark
    }

    /// The time a record counts at: its timestamp in event time, the clock in processing time.
    fn record_time(
        &self,
        ts: EventTime,
        now_ms: EventTime,
        side: &str,
    ) -> Result<EventTime, OperatorError> {
        match self.domain {
            TimeDomain::ProcessingTime => Ok(now_ms),
            TimeDomain::EventTime if ts == NO_TIMESTAMP => Err(OperatorError::Failed(format!(
                "window join: a record of the {side} input has no timestamp; assign timestamps \
                 with with_timestamps before the join (or join in processing-time windows)"
            ))),
            TimeDomain::EventTime => Ok(ts),
        }
    }

    /// Emits window `[end - size, end)` of `key` from its panes (nothing if it has none).
    fn fire(&mut self, key: &K, end: EventTime, out: &mut Outputs<E::Out, ()>) -> OpResult {
        let start = end - self.size;
        let Some(records) = self.state.records.get(key) else {
            return Ok(());
        };
        let first = records.partition_point(|(pane, _)| *pane < start);
        let last = records.partition_point(|(pane, _)| *pane < end);
        if first == last {
            return Ok(());
        }
        self.emit.emit(end - 1, records.range(first..last), out)
    }

    /// Drops the panes whose last window ends at `end` (they start before the next window
    /// does); a key left without records is removed.
    fn clean_up(&mut self, key: &K, end: EventTime) {
        let next_start = end - self.size + self.slide;
        let Some(records) = self.state.records.get_mut(key) else {
            return;
        };
        while records.front().is_some_and(|(pane, _)| *pane < next_start) {
            records.pop_front();
        }
        if records.is_empty() {
            self.state.records.remove(key);
        }
    }

    /// A due timer of window `end`: fires it, cleans it up, or both.
    fn on_timer(
        &mut self,
        key: K,
        end: EventTime,
        time: EventTime,
        out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        if time == end - 1 {
            self.fire(&key, end, out)?;
        }
        if time == self.cleanup_time(end) {
            self.clean_up(&key, end);
        }
        Ok(())
    }

    /// Stores a record of `key` at `time` under its pane. When it is the key's first record in
    /// that pane, registers the firing and cleanup timers of the pane's windows; a window the
    /// watermark has passed but that is within its allowed lateness fires again at once (a
    /// late firing). A record whose windows are all late is dropped and counted.
    fn add(
        &mut self,
        time: EventTime,
        key: K,
        record: Stored<A, B>,
        out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        let last_start = window_start(time, self.offset, self.slide);
        // The window starting last ends last: if it is late, all of the record's windows are.
        if self.is_late(last_start + self.size) {
            self.dropped.add_one();
            return Ok(());
        }
        let pane_start = window_start(time, self.offset, self.pane);
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
        // An existing pane's windows got their timers when it was created; only a window the
        // watermark already passed needs work then, and if any has, the one ending first has.
        let first_start =
            last_start - (last_start - time + self.size - 1) / self.slide * self.slide;
        let passed =
            self.domain == TimeDomain::EventTime && first_start + self.size - 1 <= self.watermark;
        if !created && !passed {
            return Ok(());
        }
        let mut start = last_start;
        while start > time - self.size {
            let end = start + self.size;
            if self.is_late(end) {
                break;
            }
            let fired = self.domain == TimeDomain::EventTime && end - 1 <= self.watermark;
            if created {
                if !fired {
                    self.state.timers.register(key.clone(), end, end - 1);
                }
                // The cleanup timer drops the pane with its last window, also when a late
                // record created the pane.
                self.state
                    .timers
                    .register(key.clone(), end, self.cleanup_time(end));
            }
            if fired {
                self.fire(&key, end, out)?;
            }
            start -= self.slide;
        }
        Ok(())
    }
}

impl<K, A, B, KA, KB, E> TimedCore for WindowJoinCore<K, A, B, KA, KB, E>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    A: StateData,
    B: StateData,
    KA: Fn(&A) -> K + 'static,
    KB: Fn(&B) -> K + 'static,
    E: WindowEmit<A, B>,
{
    type Out = E::Out;
    type Side = ();

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Outputs<E::Out, ()>) -> OpResult {
        self.watermark = watermark;
        if self.domain != TimeDomain::EventTime {
            return Ok(());
        }
        while let Some((key, end, time)) = self.state.timers.pop_due(watermark) {
            self.on_timer(key, end, time, out)?;
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: EventTime, out: &mut Outputs<E::Out, ()>) -> OpResult {
        if self.domain != TimeDomain::ProcessingTime {
            return Ok(());
        }
        while let Some((key, end, time)) = self.state.timers.pop_due(now_ms) {
            self.on_timer(key, end, time, out)?;
        }
        Ok(())
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        match self.domain {
            TimeDomain::ProcessingTime => self.state.timers.earliest(),
            TimeDomain::EventTime => None,
        }
    }

    fn snapshot(&mut self, writer: &mut KeyGroupWriter) -> Result<(), SnapshotError> {
        for (key, records) in &self.state.records {
            writer.write(key, &StateEntry::Records(key, records))?;
        }
        for (key, end, at) in self.state.timers.iter() {
            let entry: StateEntry<_, &KeyRecords<A, B>> = match self.domain {
                TimeDomain::EventTime => StateEntry::EventTimer(key, *end, at),
                TimeDomain::ProcessingTime => StateEntry::ProcessingTimer(key, *end, at),
            };
            writer.write(key, &entry)?;
        }
        Ok(())
    }

    fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError> {
        let state = &mut self.state;
        read_entries::<StateEntry<K, KeyRecords<A, B>>>(group, |entry| match entry {
            StateEntry::Records(key, records) => {
                let previous = state.records.insert(key, records);
                assert!(previous.is_none(), "a key's records are restored once");
            }
            StateEntry::EventTimer(key, end, at) | StateEntry::ProcessingTimer(key, end, at) => {
                state.timers.register(key, end, at);
            }
        })
    }
}

impl<K, A, B, KA, KB, E> KeyedCoCore for WindowJoinCore<K, A, B, KA, KB, E>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    A: StateData,
    B: StateData,
    KA: Fn(&A) -> K + 'static,
    KB: Fn(&B) -> K + 'static,
    E: WindowEmit<A, B>,
{
    type First = A;
    type Second = B;

    fn on_first(
        &mut self,
        record: Record<A>,
        now_ms: EventTime,
        out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        let time = self.record_time(record.ts, now_ms, "first")?;
        let key = (self.key_first)(&record.value);
        self.add(time, key, Stored::Left(record.value), out)
    }

    fn on_second(
        &mut self,
        record: Record<B>,
        now_ms: EventTime,
        out: &mut Outputs<E::Out, ()>,
    ) -> OpResult {
        let time = self.record_time(record.ts, now_ms, "second")?;
        let key = (self.key_second)(&record.value);
        self.add(time, key, Stored::Right(record.value), out)
    }
}

#[cfg(test)]
mod tests {
    //! The core driven directly: panes hold each record once and leave with their last window.
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;

    use crate::test_capture::Capture;

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
            JoinWindows {
                spec: AlignedSpec {
                    size_ms: 10,
                    slide_ms: 5,
                    offset_ms: 0,
                },
                domain: TimeDomain::EventTime,
                lateness_ms: 0,
            },
            LateRecordsDropped::default(),
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

    type KeyFn = fn(&(u8, i64)) -> u8;
    type TestCore = WindowJoinCore<
        u8,
        (u8, i64),
        (u8, i64),
        KeyFn,
        KeyFn,
        JoinPairs<fn(&(u8, i64), &(u8, i64)) -> (u8, i64, i64)>,
    >;

    fn sliding_core(domain: TimeDomain, lateness_ms: i64) -> TestCore {
        WindowJoinCore::new(
            |r| r.0,
            |r| r.0,
            JoinPairs(|l, r| (l.0, l.1, r.1)),
            JoinWindows {
                spec: AlignedSpec {
                    size_ms: 12,
                    slide_ms: 4,
                    offset_ms: 0,
                },
                domain,
                lateness_ms,
            },
            LateRecordsDropped::default(),
        )
    }

    type Captured = Rc<RefCell<Vec<Record<(u8, i64, i64)>>>>;

    fn outputs(main: &Captured) -> Outputs<(u8, i64, i64), ()> {
        Outputs::new(
            8,
            Box::new(Capture(Rc::clone(main))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        )
    }

    /// Feeds `steps` (left?, key, ts), a watermark 5 ms behind every 3rd record if it rises.
    fn feed(core: &mut TestCore, steps: &[(bool, u8, i64)], out: &mut Outputs<(u8, i64, i64), ()>) {
        for (i, &(left, key, ts)) in steps.iter().enumerate() {
            if left {
                core.on_first(Record::new(ts, (key, ts)), 0, out).unwrap();
            } else {
                core.on_second(Record::new(ts, (key, ts)), 0, out).unwrap();
            }
            // Watermarks only rise (the driver drops the others).
            if i % 3 == 2 && ts - 5 > core.watermark {
                core.on_watermark(ts - 5, out).unwrap();
            }
        }
    }

    fn sorted(records: Vec<Record<(u8, i64, i64)>>) -> Vec<(i64, (u8, i64, i64))> {
        let mut v: Vec<_> = records.into_iter().map(|r| (r.ts, r.value)).collect();
        v.sort();
        v
    }

    #[test]
    fn a_restored_core_continues_exactly_as_the_one_snapshotted() {
        // Out-of-order records, late firings (lateness 6) and drops: the run split by a
        // snapshot and restore gives the output of the run in one piece.
        let steps: Vec<(bool, u8, i64)> = (0..150i64)
            .map(|i| (i % 2 == 0, (i % 3) as u8, i - (i * 7) % 41))
            .collect();
        let whole_out = Rc::new(RefCell::new(Vec::new()));
        let mut whole = sliding_core(TimeDomain::EventTime, 6);
        let mut out = outputs(&whole_out);
        feed(&mut whole, &steps, &mut out);
        whole.on_watermark(EventTime::MAX, &mut out).unwrap();
        out.flush().unwrap();
        assert!(
            whole.dropped.get() > 0,
            "the input has records past their lateness"
        );

        let (before, after) = steps.split_at(75);
        let split_out = Rc::new(RefCell::new(Vec::new()));
        let mut first = sliding_core(TimeDomain::EventTime, 6);
        let mut out = outputs(&split_out);
        feed(&mut first, before, &mut out);
        out.flush().unwrap();
        let stored = first.state.stored();
        assert!(stored > 0 && !first.state.timers.is_empty());
        let mut writer = KeyGroupWriter::new(0..8, 8);
        first.snapshot(&mut writer).unwrap();
        let mut second = sliding_core(TimeDomain::EventTime, 6);
        for group in writer.finish() {
            second.restore(&group).unwrap();
        }
        assert_eq!(second.state.stored(), stored);
        assert_eq!(second.state.timers.len(), first.state.timers.len());
        // The watermark comes back with the first one after the restart.
        second.watermark = first.watermark;
        feed(&mut second, after, &mut out);
        second.on_watermark(EventTime::MAX, &mut out).unwrap();
        out.flush().unwrap();
        assert!(second.state.records.is_empty() && second.state.timers.is_empty());
        assert_eq!(sorted(split_out.take()), sorted(whole_out.take()));
    }

    #[test]
    fn processing_time_windows_take_the_clock_and_fire_when_it_passes_their_end() {
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out = outputs(&main);
        let mut c = sliding_core(TimeDomain::ProcessingTime, 100);
        // Event timestamps do not matter (none at all is fine); the clock at arrival does.
        c.on_first(Record::new(NO_TIMESTAMP, (1, 0)), 101, &mut out)
            .unwrap();
        c.on_second(Record::new(500, (1, 1)), 103, &mut out)
            .unwrap();
        c.on_second(Record::new(-7, (1, 2)), 105, &mut out).unwrap();
        // Watermarks do nothing in processing time.
        c.on_watermark(EventTime::MAX - 1, &mut out).unwrap();
        out.flush().unwrap();
        assert!(main.borrow().is_empty());
        // Windows [92, 104), [96, 108), [100, 112), [104, 116): the first fires at 103.
        assert_eq!(c.next_processing_time(), Some(103));
        c.on_processing_time(103, &mut out).unwrap();
        out.flush().unwrap();
        assert_eq!(sorted(main.take()), vec![(103, (1, 0, 1))]);
        c.on_processing_time(200, &mut out).unwrap();
        out.flush().unwrap();
        assert_eq!(
            sorted(main.take()),
            vec![
                (107, (1, 0, 1)),
                (107, (1, 0, 2)),
                (111, (1, 0, 1)),
                (111, (1, 0, 2)),
            ]
        );
        // Lateness is ignored in processing time: everything is cleaned up with the firing.
        assert!(c.state.records.is_empty() && c.state.timers.is_empty());
        assert_eq!(c.next_processing_time(), None);
        assert_eq!(c.dropped.get(), 0);
    }
}
