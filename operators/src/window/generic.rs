//! The general window operator: any assigner with any trigger, merging (session) windows, and
//! global windows. Each (key, window) keeps its accumulator and its trigger's state.
//!
//! Per key the live windows are a short vector (sessions of a key, or the global window, or the
//! few time windows open at once), searched linearly. Timers are scoped to (key, window); the
//! cleanup timer of a window is at `max_timestamp + L` in event time (`max_timestamp` in
//! processing time) and is not registered for windows that never end (global).
//!
//! Flink's `WindowOperator` rules, step by step for a record:
//! 1. Assign windows (sessions: the new window `[t, t + gap)` first merges with every window of
//!    the key it intersects or touches; the merged window takes their accumulators and trigger
//!    states; their timers are deleted and the trigger's `on_merge` runs).
//! 2. Skip windows that are late (`cleanup_time <= watermark`, event time only).
//! 3. Add the element, call the trigger's `on_element`, fire and/or purge as it says, register
//!    the cleanup timer.
//! 4. A record that went to no window is sent to the late side output if `ts + L <=
//!    watermark`.
//!
//! A timer calls the trigger's `on_event_time` / `on_processing_time` and acts on the result;
//! at the cleanup time the window's state is dropped and its trigger cleared. Purging keeps the
//! trigger state (a count trigger keeps counting), as Flink's.

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::{EventTime, NO_TIMESTAMP, OpResult, Record, TimeDomain, TimerService};
use rustc_hash::FxHashMap;

use super::types::record_time;

use super::assigner::WindowAssigner;
use super::function::WindowAgg;
use super::trigger::{TimerRequest, Trigger, TriggerContext, TriggerResult};
use super::types::Window;
use crate::keyed_driver::{Entry, EntryRef, KeyedCore, Outputs, TimedCore, write_timers};
use corestrom_runtime::StableHash;
use corestrom_runtime::state::snapshot::{
    KeyGroupState, KeyGroupWriter, SnapshotError, StateData, read_entries,
};

/// The live windows of every key.
type WindowsByKey<K, W, Acc, S> = FxHashMap<K, Vec<Slot<W, Acc, S>>>;

#[derive(serde::Serialize, serde::Deserialize)]
struct Slot<W, Acc, S> {
    window: W,
    acc: Option<Acc>,
    trigger: S,
}

pub(crate) struct GenericCore<
    T,
    K,
    KF,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    G: WindowAgg<T>,
    P,
    O,
> {
    key_fn: KF,
    assigner: A,
    trigger: Tr,
    agg: G,
    process: P,
    lateness: i64,
    domain: TimeDomain,
    windows: WindowsByKey<K, A::W, G::Acc, Tr::State>,
    timers: TimerService<K, A::W>,
    watermark: EventTime,
    assigned: Vec<A::W>,
    requests: Vec<TimerRequest>,
    results: Vec<O>,
    _t: PhantomData<fn(T)>,
}

impl<T, K, KF, A, Tr, G, P, O> GenericCore<T, K, KF, A, Tr, G, P, O>
where
    T: Clone + 'static,
    K: Hash + Eq + Clone + 'static,
    KF: Fn(&T) -> K + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    G: WindowAgg<T>,
    P: FnMut(&K, &A::W, G::Result, &mut Vec<O>) + 'static,
    O: 'static,
{
    pub(crate) fn new(
        key_fn: KF,
        assigner: A,
        trigger: Tr,
        agg: G,
        process: P,
        lateness: i64,
    ) -> Self {
        assert!(lateness >= 0);
        let domain = assigner.domain();
        GenericCore {
            key_fn,
            assigner,
            trigger,
            agg,
            process,
            lateness: if domain == TimeDomain::EventTime {
                lateness
            } else {
                0
            },
            domain,
            windows: FxHashMap::default(),
            timers: TimerService::new(),
            watermark: NO_TIMESTAMP,
            assigned: Vec::new(),
            requests: Vec::new(),
            results: Vec::new(),
            _t: PhantomData,
        }
    }

    /// Flink's `cleanupTime`: `MAX` (never) when it would overflow.
    fn cleanup_time(&self, window: &A::W) -> EventTime {
        window.max_timestamp().saturating_add(self.lateness)
    }

    fn is_window_late(&self, window: &A::W) -> bool {
        self.domain == TimeDomain::EventTime && self.cleanup_time(window) <= self.watermark
    }

    /// Applies the timer requests of the last trigger call to (key, window).
    fn apply_requests(&mut self, key: &K, window: &A::W) {
        for request in self.requests.drain(..) {
            match request {
                TimerRequest::RegisterEvent(t) => {
                    self.timers.event.register(key.clone(), window.clone(), t);
                }
                TimerRequest::DeleteEvent(t) => {
                    self.timers.event.delete(key, window, t);
                }
                TimerRequest::RegisterProcessing(t) => {
                    self.timers
                        .processing
                        .register(key.clone(), window.clone(), t);
                }
                TimerRequest::DeleteProcessing(t) => {
                    self.timers.processing.delete(key, window, t);
                }
            }
        }
    }

    fn register_cleanup(&mut self, key: &K, window: &A::W) {
        let t = self.cleanup_time(window);
        if t != EventTime::MAX {
            self.timers
                .queue(self.domain)
                .register(key.clone(), window.clone(), t);
        }
    }

    fn emit(&mut self, key: &K, window: &A::W, acc: G::Acc, out: &mut Outputs<O, T>) {
        let result = self.agg.result(acc);
        (self.process)(key, window, result, &mut self.results);
        for value in self.results.drain(..) {
            out.main(window.max_timestamp(), value);
        }
    }

    /// Merges the new session `window` with the key's windows it touches; returns the window
    /// the element goes to, or `None` when it is a lone late window.
    fn merge_session(&mut self, key: &K, window: A::W, now_ms: EventTime) -> Option<A::W> {
        let new = window
            .as_time_window()
            .expect("merging assigners produce time windows");
        let lone_is_late = self.is_window_late(&window);
        let slots = self.windows.entry(key.clone()).or_default();
        let mut hull = new;
        let mut touching = 0;
        for slot in slots.iter() {
            let w = slot.window.as_time_window().expect("time window");
            if w.intersects(&new) {
                hull = hull.cover(&w);
                touching += 1;
            }
        }
        if touching == 0 {
            if lone_is_late {
                if slots.is_empty() {
                    self.windows.remove(key);
                }
                return None;
            }
            slots.push(Slot {
                window: window.clone(),
                acc: None,
                trigger: Tr::State::default(),
            });
            return Some(window);
        }
        let merged = A::W::from_span(hull.start, hull.end);
        if touching == 1 && slots.iter().any(|s| s.window == merged) {
            // The new window lies inside an existing one: nothing merges (as Flink).
            return Some(merged);
        }
        let mut old = Vec::new();
        let mut i = 0;
        while i < slots.len() {
            let w = slots[i].window.as_time_window().expect("time window");
            if w.intersects(&new) {
                old.push(slots.swap_remove(i));
            } else {
                i += 1;
            }
        }
        let mut acc: Option<G::Acc> = None;
        let mut trigger_state = Tr::State::default();
        for mut slot in old {
            let mut cx = TriggerContext {
                watermark: self.watermark,
                processing_time: now_ms,
                requests: &mut self.requests,
            };
            self.trigger.clear(&slot.window, &mut slot.trigger, &mut cx);
            self.apply_requests(key, &slot.window);
            let cleanup = self.cleanup_time(&slot.window);
            self.timers
                .queue(self.domain)
                .delete(key, &slot.window, cleanup);
            if let Some(a) = slot.acc {
                match &mut acc {
                    None => acc = Some(a),
                    Some(x) => self.agg.merge(x, &a),
                }
            }
            self.trigger.merge_state(&mut trigger_state, slot.trigger);
        }
        let mut cx = TriggerContext {
            watermark: self.watermark,
            processing_time: now_ms,
            requests: &mut self.requests,
        };
        self.trigger.on_merge(&merged, &mut trigger_state, &mut cx);
        self.apply_requests(key, &merged);
        self.windows.entry(key.clone()).or_default().push(Slot {
            window: merged.clone(),
            acc,
            trigger: trigger_state,
        });
        Some(merged)
    }

    /// Adds the element to one non-late window of `key` and runs its trigger.
    fn add_to_window(
        &mut self,
        key: &K,
        window: A::W,
        value: &T,
        time: EventTime,
        now_ms: EventTime,
        out: &mut Outputs<O, T>,
    ) {
        let slots = self.windows.entry(key.clone()).or_default();
        let index = match slots.iter().position(|s| s.window == window) {
            Some(i) => i,
            None => {
                slots.push(Slot {
                    window: window.clone(),
                    acc: None,
                    trigger: Tr::State::default(),
                });
                slots.len() - 1
            }
        };
        let slot = &mut slots[index];
        let acc = slot.acc.get_or_insert_with(|| self.agg.create());
        self.agg.add(acc, value.clone());
        let mut cx = TriggerContext {
            watermark: self.watermark,
            processing_time: now_ms,
            requests: &mut self.requests,
        };
        let result = self
            .trigger
            .on_element(value, time, &window, &mut slot.trigger, &mut cx);
        let fired = self.act(result, index, key);
        if let Some(acc) = fired {
            self.emit(key, &window, acc, out);
        }
        self.apply_requests(key, &window);
        self.register_cleanup(key, &window);
    }

    /// Fires and/or purges slot `index` of `key` as `result` says; returns what to emit.
    fn act(&mut self, result: TriggerResult, index: usize, key: &K) -> Option<G::Acc> {
        let slot = &mut self.windows.get_mut(key).expect("key has windows")[index];
        match (result.is_fire(), result.is_purge()) {
            (true, true) => slot.acc.take(),
            (true, false) => slot.acc.clone(),
            (false, true) => {
                slot.acc = None;
                None
            }
            (false, false) => None,
        }
    }

    fn on_timer(
        &mut self,
        key: K,
        window: A::W,
        time: EventTime,
        domain: TimeDomain,
        now_ms: EventTime,
        out: &mut Outputs<O, T>,
    ) {
        let Some(slots) = self.windows.get_mut(&key) else {
            return;
        };
        let Some(index) = slots.iter().position(|s| s.window == window) else {
            return;
        };
        let slot = &mut slots[index];
        let mut cx = TriggerContext {
            watermark: self.watermark,
            processing_time: now_ms,
            requests: &mut self.requests,
        };
        let result = match domain {
            TimeDomain::EventTime => {
                self.trigger
                    .on_event_time(time, &window, &mut slot.trigger, &mut cx)
            }
            TimeDomain::ProcessingTime => {
                self.trigger
                    .on_processing_time(time, &window, &mut slot.trigger, &mut cx)
            }
        };
        if let Some(acc) = self.act(result, index, &key) {
            self.emit(&key, &window, acc, out);
        }
        self.apply_requests(&key, &window);
        if domain == self.domain && time == self.cleanup_time(&window) {
            let slots = self.windows.get_mut(&key).expect("key has windows");
            let mut slot = slots.swap_remove(index);
            if slots.is_empty() {
                self.windows.remove(&key);
            }
            let mut cx = TriggerContext {
                watermark: self.watermark,
                processing_time: now_ms,
                requests: &mut self.requests,
            };
            self.trigger.clear(&window, &mut slot.trigger, &mut cx);
            self.apply_requests(&key, &window);
        }
    }
}

impl<T, K, KF, A, Tr, G, P, O> TimedCore for GenericCore<T, K, KF, A, Tr, G, P, O>
where
    T: Clone + 'static,
    K: Hash + Eq + Clone + StableHash + StateData,
    KF: Fn(&T) -> K + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    G: WindowAgg<T>,
    P: FnMut(&K, &A::W, G::Result, &mut Vec<O>) + 'static,
    O: 'static,
{
    type Out = O;
    type Side = T;

    fn on_watermark(&mut self, watermark: EventTime, out: &mut Outputs<O, T>) -> OpResult {
        self.watermark = watermark;
        let now_ms = corestrom_runtime::time::wall_clock_ms();
        while let Some((key, window, time)) = self.timers.event.pop_due(watermark) {
            self.on_timer(key, window, time, TimeDomain::EventTime, now_ms, out);
            out.flush_if_full()?;
        }
        Ok(())
    }

    fn on_processing_time(&mut self, now_ms: EventTime, out: &mut Outputs<O, T>) -> OpResult {
        while let Some((key, window, time)) = self.timers.processing.pop_due(now_ms) {
            self.on_timer(key, window, time, TimeDomain::ProcessingTime, now_ms, out);
            out.flush_if_full()?;
        }
        Ok(())
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        self.timers.processing.earliest()
    }

    fn snapshot(&mut self, writer: &mut KeyGroupWriter) -> Result<(), SnapshotError> {
        for (key, slots) in &self.windows {
            writer.write(key, &EntryRef::<K, A::W, _>::Value(key, slots))?;
        }
        type Written<'a, W, Acc, S> = &'a Vec<Slot<W, Acc, S>>;
        write_timers::<K, A::W, Written<'_, A::W, G::Acc, Tr::State>>(
            &self.timers.event,
            TimeDomain::EventTime,
            writer,
        )?;
        write_timers::<K, A::W, Written<'_, A::W, G::Acc, Tr::State>>(
            &self.timers.processing,
            TimeDomain::ProcessingTime,
            writer,
        )
    }

    fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError> {
        type Read<W, Acc, S> = Vec<Slot<W, Acc, S>>;
        read_entries::<Entry<K, A::W, Read<A::W, G::Acc, Tr::State>>>(group, |entry| match entry {
            Entry::Value(key, slots) => {
                self.windows.insert(key, slots);
            }
            Entry::EventTimer(key, window, at) => {
                self.timers.event.register(key, window, at);
            }
            Entry::ProcessingTimer(key, window, at) => {
                self.timers.processing.register(key, window, at);
            }
        })
    }
}

impl<T, K, KF, A, Tr, G, P, O> KeyedCore for GenericCore<T, K, KF, A, Tr, G, P, O>
where
    T: Clone + 'static,
    K: Hash + Eq + Clone + StableHash + StateData,
    KF: Fn(&T) -> K + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
    G: WindowAgg<T>,
    P: FnMut(&K, &A::W, G::Result, &mut Vec<O>) + 'static,
    O: 'static,
{
    type In = T;

    fn on_record(
        &mut self,
        record: Record<T>,
        now_ms: EventTime,
        out: &mut Outputs<O, T>,
    ) -> OpResult {
        let time = record_time(self.domain, record.ts, now_ms)?;
        let key = (self.key_fn)(&record.value);
        let mut assigned = std::mem::take(&mut self.assigned);
        self.assigner.assign(time, &mut assigned);
        let mut added = false;
        for window in assigned.drain(..) {
            let window = if self.assigner.is_merging() {
                match self.merge_session(&key, window, now_ms) {
                    Some(w) => w,
                    None => continue,
                }
            } else {
                window
            };
            if self.is_window_late(&window) {
                continue;
            }
            added = true;
            self.add_to_window(&key, window, &record.value, time, now_ms, out);
        }
        self.assigned = assigned;
        if !added
            && self.domain == TimeDomain::EventTime
            && time.saturating_add(self.lateness) <= self.watermark
        {
            out.side(record.ts, record.value);
        }
        Ok(())
    }
}
