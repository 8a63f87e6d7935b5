//! The window operator for tumbling and sliding windows with their default trigger: per-key
//! panes, so every record is stored once however many windows it belongs to.
//!
//! Model: time is cut into panes of `gcd(size, slide)` aligned like the windows. A record adds
//! to the accumulator of its (key, pane); a window `[s, s + size)` is the merge of the key's
//! panes in it, computed when the window fires (10 s windows sliding by 1 s: ten 1 s panes per
//! window, each record in one pane). For tumbling windows pane = window and a firing that also
//! cleans up moves the accumulator out without a copy.
//!
//! Timers (namespace = window end): when a record creates a pane, every non-late window
//! containing the pane gets a firing timer at `end - 1` and, with allowed lateness `L`, a
//! cleanup timer at `end - 1 + L` (one timer when `L = 0`). At cleanup of the window ending at
//! `E` the panes whose last window it is (starts in `[E - size, E - size + slide)`) are dropped.
//!
//! Flink's rules, event time: a window is late when `end - 1 + L <= watermark`; a record whose
//! windows are all late is dropped, and goes to the late side output when `ts + L <=
//! watermark` (always the case then). A record for a window the watermark has passed but that
//! is not late re-fires that window at once with the updated result (late firing). Results carry
//! timestamp `end - 1`. Processing time: records are assigned by the wall clock at arrival;
//! windows fire and are cleaned up when the clock passes `end - 1`; nothing is late.

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::{EventTime, NO_TIMESTAMP, OpResult, Record, TimeDomain, TimerQueue};
use rustc_hash::FxHashMap;

use super::types::record_time;

use super::assigner::AlignedSpec;
use super::function::WindowAgg;
use super::types::{Window, window_start};
use crate::keyed_driver::{Entry, EntryRef, KeyedCore, Outputs, TimedCore, write_timers};
use corestrom_runtime::StableHash;
use corestrom_runtime::state::snapshot::{
    KeyGroupState, KeyGroupWriter, SnapshotError, StateData, read_entries,
};

pub(crate) struct AlignedCore<T, K, KF, W, G: WindowAgg<T>, P, O> {
    key_fn: KF,
    agg: G,
    process: P,
    size: i64,
    slide: i64,
    offset: i64,
    pane: i64,
    lateness: i64,
    domain: TimeDomain,
    panes: FxHashMap<(K, EventTime), G::Acc>,
    timers: TimerQueue<K, EventTime>,
    watermark: EventTime,
    results: Vec<O>,
    _tw: PhantomData<fn(T) -> W>,
}

fn gcd(a: i64, b: i64) -> i64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

impl<T, K, KF, W, G, P, O> AlignedCore<T, K, KF, W, G, P, O>
where
    K: Hash + Eq + Clone + 'static,
    KF: Fn(&T) -> K + 'static,
    W: Window,
    G: WindowAgg<T>,
    P: FnMut(&K, &W, G::Result, &mut Vec<O>) + 'static,
    O: 'static,
    T: 'static,
{
    pub(crate) fn new(
        key_fn: KF,
        agg: G,
        process: P,
        spec: AlignedSpec,
        lateness: i64,
        domain: TimeDomain,
    ) -> Self {
        assert!(spec.slide_ms > 0 && spec.slide_ms <= spec.size_ms);
        assert!(lateness >= 0);
        AlignedCore {
            key_fn,
            agg,
            process,
            size: spec.size_ms,
            slide: spec.slide_ms,
            offset: spec.offset_ms,
            pane: gcd(spec.size_ms, spec.slide_ms),
            // Flink ignores allowed lateness for processing-time windows.
            lateness: if domain == TimeDomain::EventTime {
                lateness
            } else {
                0
            },
            domain,
            panes: FxHashMap::default(),
            timers: TimerQueue::new(),
            watermark: NO_TIMESTAMP,
            results: Vec::new(),
            _tw: PhantomData,
        }
    }

    fn cleanup_time(&self, end: EventTime) -> EventTime {
        (end - 1).saturating_add(self.lateness)
    }

    fn is_late(&self, end: EventTime) -> bool {
        self.domain == TimeDomain::EventTime && self.cleanup_time(end) <= self.watermark
    }

    /// Emits the result of window `[start, end)` of `key`, merging its panes.
    fn fire(&mut self, key: &K, start: EventTime, end: EventTime, out: &mut Outputs<O, T>) {
        let mut acc: Option<G::Acc> = None;
        let mut pane = start;
        while pane < end {
            if let Some(a) = self.panes.get(&(key.clone(), pane)) {
                match &mut acc {
                    None => acc = Some(a.clone()),
                    Some(x) => self.agg.merge(x, a),
                }
            }
            pane += self.pane;
        }
        if let Some(acc) = acc {
            let result = self.agg.result(acc);
            self.emit(key, start, end, result, out);
        }
    }

    fn emit(
        &mut self,
        key: &K,
        start: EventTime,
        end: EventTime,
        result: G::Result,
        out: &mut Outputs<O, T>,
    ) {
        let window = W::from_span(start, end);
        (self.process)(key, &window, result, &mut self.results);
        for value in self.results.drain(..) {
            out.main(end - 1, value);
        }
    }

    fn on_timer(&mut self, key: K, end: EventTime, time: EventTime, out: &mut Outputs<O, T>) {
        let start = end - self.size;
        let is_fire = time == end - 1;
        let is_cleanup = time == self.cleanup_time(end);
        if is_fire && is_cleanup && self.pane == self.size {
            // Tumbling window, no lateness: its one pane leaves state with the firing.
            if let Some(acc) = self.panes.remove(&(key.clone(), start)) {
                let result = self.agg.result(acc);
                self.emit(&key, start, end, result, out);
            }
            return;
        }
        if is_fire {
            self.fire(&key, start, end, out);
        }
        if is_cleanup {
            let mut pane = start;
            while pane < start + self.slide {
                self.panes.remove(&(key.clone(), pane));
                pane += self.pane;
            }
        }
    }
}

impl<T, K, KF, W, G, P, O> TimedCore for AlignedCore<T, K, KF, W, G, P, O>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    KF: Fn(&T) -> K + 'static,
    W: Window,
    G: WindowAgg<T>,
    P: FnMut(&K, &W, G::Result, &mut Vec<O>) + 'static,
    O: 'static,
    T: 'static,
{
    type Out = O;
    type Side = T;

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Outputs<O, T>) -> OpResult {
        self.watermark = watermark;
        if self.domain != TimeDomain::EventTime {
            return Ok(());
        }
        while let Some((key, end, time)) = self.timers.pop_due(watermark) {
            self.on_timer(key, end, time, out);
            out.flush_if_full()?;
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: EventTime, out: &mut Outputs<O, T>) -> OpResult {
        if self.domain != TimeDomain::ProcessingTime {
            return Ok(());
        }
        while let Some((key, end, time)) = self.timers.pop_due(now_ms) {
            self.on_timer(key, end, time, out);
            out.flush_if_full()?;
        }
        Ok(())
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        if self.domain == TimeDomain::ProcessingTime {
            self.timers.earliest()
        } else {
            None
        }
    }

    fn snapshot(&mut self, writer: &mut KeyGroupWriter) -> Result<(), SnapshotError> {
        for ((key, pane), acc) in &self.panes {
            let entry = EntryRef::<K, EventTime, _>::Value(key, (pane, acc));
            writer.write(key, &entry)?;
        }
        write_timers::<K, EventTime, (EventTime, &G::Acc)>(&self.timers, self.domain, writer)
    }

    fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError> {
        read_entries::<Entry<K, EventTime, (EventTime, G::Acc)>>(group, |entry| match entry {
            Entry::Value(key, (pane, acc)) => {
                self.panes.insert((key, pane), acc);
            }
            Entry::EventTimer(key, end, at) | Entry::ProcessingTimer(key, end, at) => {
                self.timers.register(key, end, at);
            }
        })
    }
}

impl<T, K, KF, W, G, P, O> KeyedCore for AlignedCore<T, K, KF, W, G, P, O>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    KF: Fn(&T) -> K + 'static,
    W: Window,
    G: WindowAgg<T>,
    P: FnMut(&K, &W, G::Result, &mut Vec<O>) + 'static,
    O: 'static,
    T: 'static,
{
    type In = T;

    fn on_record(
        &mut self,
        record: Record<T>,
        now_ms: EventTime,
        out: &mut Outputs<O, T>,
    ) -> OpResult {
        let time = record_time(self.domain, record.ts, now_ms)?;
        let last_start = window_start(time, self.offset, self.slide);
        // The window starting last ends last: if it is late, all of the record's windows are.
        if self.is_late(last_start + self.size) {
            // All windows late implies `ts + L <= watermark`: Flink's late-element rule.
            debug_assert!(time.saturating_add(self.lateness) <= self.watermark);
            out.side(record.ts, record.value);
            return Ok(());
        }
        let key = (self.key_fn)(&record.value);
        let pane = window_start(time, self.offset, self.pane);
        let id = (key, pane);
        let created = match self.panes.get_mut(&id) {
            Some(acc) => {
                self.agg.add(acc, record.value);
                false
            }
            None => {
                let mut acc = self.agg.create();
                self.agg.add(&mut acc, record.value);
                self.panes.insert((id.0.clone(), pane), acc);
                true
            }
        };
        let key = id.0;
        // For an existing pane the windows' timers were registered when it was created; only a
        // window the watermark has already passed needs work, and if any has, the one that
        // ends first has.
        let first_start =
            last_start - (last_start - time + self.size - 1) / self.slide * self.slide;
        debug_assert!(first_start > time - self.size && first_start <= time);
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
            if self.domain == TimeDomain::EventTime && end - 1 <= self.watermark {
                // A late firing: the window fired already and is within its allowed lateness.
                self.fire(&key, start, end, out);
            } else if created {
                self.timers.register(key.clone(), end, end - 1);
                let cleanup = self.cleanup_time(end);
                if cleanup != end - 1 {
                    self.timers.register(key.clone(), end, cleanup);
                }
            }
            start -= self.slide;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Processing-time windows driven by a scripted clock: the core is called directly with the
    //! wall-clock values a shard loop would pass.
    use std::cell::RefCell;
    use std::rc::Rc;

    use super::*;
    use crate::window::Count;
    use crate::window::function::AggregateAgg;
    use crate::window::types::TimeWindow;

    use crate::test_capture::Capture;

    type Out = (u64, i64, i64, u64);

    fn core(spec: AlignedSpec) -> impl KeyedCore<In = (u64, u32), Out = Out, Side = (u64, u32)> {
        AlignedCore::<(u64, u32), u64, _, TimeWindow, _, _, Out>::new(
            |r: &(u64, u32)| r.0,
            AggregateAgg(Count),
            |k: &u64, w: &TimeWindow, c: u64, out: &mut Vec<Out>| out.push((*k, w.start, w.end, c)),
            spec,
            0,
            TimeDomain::ProcessingTime,
        )
    }

    #[test]
    fn processing_time_windows_fire_when_the_clock_passes_their_end() {
        let main = Rc::new(RefCell::new(Vec::new()));
        let side = Rc::new(RefCell::new(Vec::new()));
        let mut out = Outputs::new(
            16,
            Box::new(Capture(Rc::clone(&main))),
            Box::new(Capture(Rc::clone(&side))),
        );
        let spec = AlignedSpec {
            size_ms: 10,
            slide_ms: 5,
            offset_ms: 0,
        };
        let mut c = core(spec);
        // Records carry event timestamps that processing time ignores.
        c.on_record(Record::new(999, (1, 0)), 3, &mut out).unwrap();
        c.on_record(Record::new(-5, (1, 0)), 7, &mut out).unwrap();
        c.on_record(Record::new(0, (2, 0)), 12, &mut out).unwrap();
        assert_eq!(
            c.next_processing_time(),
            Some(4),
            "window [-5, 5) ends first"
        );
        c.on_processing_time(8, &mut out).unwrap();
        out.flush().unwrap();
        assert_eq!(
            main.borrow().iter().map(|r| r.value).collect::<Vec<_>>(),
            vec![(1, -5, 5, 1)]
        );
        assert_eq!(main.borrow()[0].ts, 4, "results carry end - 1");
        c.on_processing_time(100, &mut out).unwrap();
        out.flush().unwrap();
        let mut got: Vec<Out> = main.borrow().iter().map(|r| r.value).collect();
        got.sort();
        assert_eq!(
            got,
            vec![
                (1, -5, 5, 1),
                (1, 0, 10, 2),
                (1, 5, 15, 1),
                (2, 5, 15, 1),
                (2, 10, 20, 1)
            ]
        );
        assert!(
            side.borrow().is_empty(),
            "nothing is late in processing time"
        );
        assert_eq!(c.next_processing_time(), None);
    }
}
