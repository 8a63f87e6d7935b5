//! The keyed process function (`KeyedStream::process`), Flink's `KeyedProcessFunction`: user
//! code per record and per timer, with the current key, timestamps, the watermark, timers,
//! keyed state scopes, a main output and a side output.
//!
//! Side outputs: the operator is a graph node with two typed outputs
//! (`JobGraph::add_operator_with_side`); `ctx.output` writes to the main port and
//! `ctx.side_output` to the side port, so every record goes to exactly one downstream and none is
//! cloned. A tagged union stream split by two filters downstream would instead clone each record
//! into both branches (a tee) and pay a match per record per branch. One side-output type per
//! function: use an enum when several kinds of records leave on the side.
//!
//! Timestamps of emitted records, as Flink's: the input record's timestamp in
//! `process_element`, the timer's timestamp in an event-time `on_timer`, and no timestamp
//! (`NO_TIMESTAMP`) in a processing-time `on_timer`.

use corestrom_runtime::state::{StateScope, VoidNamespace};
use corestrom_runtime::{
    Data, EventTime, NO_TIMESTAMP, OpResult, Record, TimeDomain, TimerService,
};
use std::hash::Hash;

use crate::keyed_driver::{KeyedCore, Outputs, TimedCore};

/// User logic per key: called for each record and each timer of the record's key.
///
/// One instance runs per shard (cloned from the one given to `process`), so it may hold keyed
/// state handles (`corestrom_runtime::state`) as fields and address them with `ctx.state()`.
pub trait KeyedProcessFunction<K, I>: Clone + Send + Sync + 'static {
    /// Main output.
    type Out: Data;
    /// Side output (use `()` when unused).
    type Side: Data;

    /// Called for every input record.
    fn process_element(&mut self, value: I, ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>);

    /// Called when a timer of `ctx.key()` fires; `ctx.time_domain()` says which clock.
    fn on_timer(
        &mut self,
        _timestamp: EventTime,
        _ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    ) {
    }
}

/// What a keyed process function sees during one call.
pub struct ProcessContext<'a, K, O, S> {
    key: &'a K,
    timestamp: EventTime,
    watermark: EventTime,
    now_ms: EventTime,
    domain: Option<TimeDomain>,
    timers: &'a mut TimerService<K, VoidNamespace>,
    out: &'a mut Outputs<O, S>,
}

impl<K: Hash + Eq + Clone, O: 'static, S: 'static> ProcessContext<'_, K, O, S> {
    /// The key of the record or timer being processed.
    pub fn key(&self) -> &K {
        self.key
    }

    /// The record's timestamp; in an event-time `on_timer` the timer's; none in a
    /// processing-time `on_timer` (as Flink's output timestamps).
    pub fn timestamp(&self) -> Option<EventTime> {
        (self.timestamp != NO_TIMESTAMP).then_some(self.timestamp)
    }

    /// The operator's current event-time watermark.
    pub fn current_watermark(&self) -> EventTime {
        self.watermark
    }

    /// The wall clock in ms (read once per batch or timer firing).
    pub fn current_processing_time(&self) -> EventTime {
        self.now_ms
    }

    /// In `on_timer`: which clock fired the timer; `None` in `process_element`.
    pub fn time_domain(&self) -> Option<TimeDomain> {
        self.domain
    }

    /// Registers an event-time timer for the current key (again: still fires once).
    pub fn register_event_time_timer(&mut self, timestamp: EventTime) {
        self.timers
            .event
            .register(self.key.clone(), VoidNamespace, timestamp);
    }

    /// Deletes an event-time timer of the current key.
    pub fn delete_event_time_timer(&mut self, timestamp: EventTime) {
        self.timers
            .event
            .delete(self.key, &VoidNamespace, timestamp);
    }

    /// Registers a processing-time timer for the current key.
    pub fn register_processing_time_timer(&mut self, timestamp: EventTime) {
        self.timers
            .processing
            .register(self.key.clone(), VoidNamespace, timestamp);
    }

    /// Deletes a processing-time timer of the current key.
    pub fn delete_processing_time_timer(&mut self, timestamp: EventTime) {
        self.timers
            .processing
            .delete(self.key, &VoidNamespace, timestamp);
    }

    /// The scope for keyed state of the current key.
    pub fn state(&self) -> StateScope<'_, K> {
        StateScope {
            key: self.key,
            namespace: &VoidNamespace,
            now_ms: self.now_ms,
        }
    }

    /// Emits a record on the main output.
    pub fn output(&mut self, value: O) {
        self.out.main(self.timestamp, value);
    }

    /// Emits a record on the side output.
    pub fn side_output(&mut self, value: S) {
        self.out.side(self.timestamp, value);
    }
}

/// The timers and watermark of a keyed process function (one input or two), and the contexts
/// its calls see. Held apart from the user function so a snapshot hook can take the timers.
pub(crate) struct ProcessTimers<K> {
    timers: TimerService<K, VoidNamespace>,
    watermark: EventTime,
}

impl<K: Hash + Eq + Clone + 'static> ProcessTimers<K> {
    pub(crate) fn new() -> Self {
        ProcessTimers {
            timers: TimerService::new(),
            watermark: NO_TIMESTAMP,
        }
    }

    /// The context of a `process_element` call for a record of `key` at `timestamp`.
    pub(crate) fn element_context<'a, O, S>(
        &'a mut self,
        key: &'a K,
        timestamp: EventTime,
        now_ms: EventTime,
        out: &'a mut Outputs<O, S>,
    ) -> ProcessContext<'a, K, O, S> {
        ProcessContext {
            key,
            timestamp,
            watermark: self.watermark,
            now_ms,
            domain: None,
            timers: &mut self.timers,
            out,
        }
    }

    /// Fires every event-time timer at or below `watermark` through `on_timer`.
    pub(crate) fn fire_event_time<O: 'static, S: 'static>(
        &mut self,
        watermark: EventTime,
        out: &mut Outputs<O, S>,
        mut on_timer: impl FnMut(EventTime, &mut ProcessContext<'_, K, O, S>),
    ) -> OpResult {
        // Flink moves the timer service's watermark first, so `on_timer` sees the new one.
        self.watermark = watermark;
        let now_ms = corestrom_runtime::time::wall_clock_ms();
        while let Some((key, _, ts)) = self.timers.event.pop_due(watermark) {
            let mut ctx = ProcessContext {
                key: &key,
                timestamp: ts,
                watermark,
                now_ms,
                domain: Some(TimeDomain::EventTime),
                timers: &mut self.timers,
                out,
            };
            on_timer(ts, &mut ctx);
            out.flush_if_full()?;
        }
        Ok(())
    }

    /// Fires every processing-time timer at or below `now_ms` through `on_timer`.
    pub(crate) fn fire_processing_time<O: 'static, S: 'static>(
        &mut self,
        now_ms: EventTime,
        out: &mut Outputs<O, S>,
        mut on_timer: impl FnMut(EventTime, &mut ProcessContext<'_, K, O, S>),
    ) -> OpResult {
        while let Some((key, _, ts)) = self.timers.processing.pop_due(now_ms) {
            let mut ctx = ProcessContext {
                key: &key,
                timestamp: NO_TIMESTAMP,
                watermark: self.watermark,
                now_ms,
                domain: Some(TimeDomain::ProcessingTime),
                timers: &mut self.timers,
                out,
            };
            on_timer(ts, &mut ctx);
            out.flush_if_full()?;
        }
        Ok(())
    }

    pub(crate) fn next_processing_time(&mut self) -> Option<EventTime> {
        self.timers.processing.earliest()
    }
}

pub(crate) struct ProcessCore<K, I, KF, F> {
    pub(crate) key_fn: KF,
    pub(crate) f: F,
    pub(crate) timers: ProcessTimers<K>,
    pub(crate) _i: std::marker::PhantomData<fn(I)>,
}

impl<K, I, KF, F> TimedCore for ProcessCore<K, I, KF, F>
where
    K: Hash + Eq + Clone + 'static,
    I: 'static,
    KF: Fn(&I) -> K + 'static,
    F: KeyedProcessFunction<K, I>,
{
    type Out = F::Out;
    type Side = F::Side;

    fn on_watermark(
        &mut self,
        watermark: EventTime,
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let f = &mut self.f;
        self.timers
            .fire_event_time(watermark, out, |ts, ctx| f.on_timer(ts, ctx))
    }

    fn on_processing_time(
        &mut self,
        now_ms: EventTime,
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let f = &mut self.f;
        self.timers
            .fire_processing_time(now_ms, out, |ts, ctx| f.on_timer(ts, ctx))
    }

    fn next_processing_time(&mut self) -> Option<EventTime> {
        self.timers.next_processing_time()
    }
}

impl<K, I, KF, F> KeyedCore for ProcessCore<K, I, KF, F>
where
    K: Hash + Eq + Clone + 'static,
    I: 'static,
    KF: Fn(&I) -> K + 'static,
    F: KeyedProcessFunction<K, I>,
{
    type In = I;

    fn on_record(
        &mut self,
        record: Record<I>,
        now_ms: EventTime,
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let key = (self.key_fn)(&record.value);
        let mut ctx = self.timers.element_context(&key, record.ts, now_ms, out);
        self.f.process_element(record.value, &mut ctx);
        Ok(())
    }
}
