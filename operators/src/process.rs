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

use crate::keyed_driver::{Entry, EntryRef, KeyedCore, Outputs, TimedCore, write_timers};
use corestrom_runtime::StableHash;
use corestrom_runtime::state::SnapshotHandle;
use corestrom_runtime::state::snapshot::{
    KeyGroupState, KeyGroupWriter, SnapshotError, StateData, read_entries,
};

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

    /// The keyed state handles this function keeps as fields, always in the same order, so
    /// that checkpoints snapshot them and a restarted job restores them (Flink registers state
    /// through descriptors for the same reason). Return `Some(vec![])` when the function keeps
    /// no keyed state. `None` (the default) means undeclared: the function then cannot run in
    /// a checkpointing job, because its state would silently be lost on recovery. Timers need
    /// no declaration; they are always part of the snapshot.
    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<K>>> {
        None
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

/// Why a function that did not declare its state handles cannot checkpoint.
pub(crate) fn undeclared_state_handles(kind: &str) -> String {
    format!(
        "this {kind} does not declare its state handles (`state_handles`), so checkpoints \
         cannot include its state; return `Some(vec![...])` with every handle it keeps (an empty \
         list if none)"
    )
}

/// A process function's snapshot entry: state handle `index`'s entry, encoded by the handle.
type HandleEntry = (u16, Vec<u8>);

impl<K: Hash + Eq + Clone + StableHash + StateData> ProcessTimers<K> {
    /// Writes the entries of `handles` (tagged with their position) and every timer.
    pub(crate) fn snapshot(
        &self,
        handles: Vec<&mut dyn SnapshotHandle<K>>,
        writer: &mut KeyGroupWriter,
    ) -> Result<(), SnapshotError> {
        for (index, handle) in handles.into_iter().enumerate() {
            let index = u16::try_from(index).expect("fewer than 65536 state handles");
            handle.snapshot_entries(&mut |key, bytes| {
                writer.write(
                    key,
                    &EntryRef::<K, VoidNamespace, _>::Value(key, (index, bytes)),
                )
            })?;
        }
        write_timers::<K, VoidNamespace, HandleEntry>(
            &self.timers.event,
            TimeDomain::EventTime,
            writer,
        )?;
        write_timers::<K, VoidNamespace, HandleEntry>(
            &self.timers.processing,
            TimeDomain::ProcessingTime,
            writer,
        )
    }

    /// Loads one key group written by [`ProcessTimers::snapshot`] into `handles` and the timers.
    pub(crate) fn restore(
        &mut self,
        mut handles: Vec<&mut dyn SnapshotHandle<K>>,
        group: &KeyGroupState,
    ) -> Result<(), SnapshotError> {
        let timers = &mut self.timers;
        let mut failure = Ok(());
        read_entries::<Entry<K, VoidNamespace, HandleEntry>>(group, |entry| match entry {
            Entry::Value(_, (index, bytes)) => {
                let declared = handles.len();
                let result = match handles.get_mut(usize::from(index)) {
                    Some(handle) => handle.restore_entry(&bytes),
                    None => Err(SnapshotError::Decode {
                        key_group: group.key_group,
                        offset: 0,
                        len: bytes.len(),
                        reason: format!(
                            "the snapshot has state handle #{index}, the function declares {declared}"
                        ),
                    }),
                };
                if failure.is_ok() {
                    failure = result;
                }
            }
            Entry::EventTimer(key, namespace, at) => {
                timers.event.register(key, namespace, at);
            }
            Entry::ProcessingTimer(key, namespace, at) => {
                timers.processing.register(key, namespace, at);
            }
        })?;
        failure
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
    K: Hash + Eq + Clone + StableHash + StateData,
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

    fn refuses_checkpoints(&mut self) -> Option<String> {
        self.f
            .state_handles()
            .is_none()
            .then(|| undeclared_state_handles("keyed process function"))
    }

    fn snapshot(&mut self, writer: &mut KeyGroupWriter) -> Result<(), SnapshotError> {
        let handles = self.f.state_handles().unwrap_or_default();
        self.timers.snapshot(handles, writer)
    }

    fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError> {
        let handles = self.f.state_handles().unwrap_or_default();
        self.timers.restore(handles, group)
    }
}

impl<K, I, KF, F> KeyedCore for ProcessCore<K, I, KF, F>
where
    K: Hash + Eq + Clone + StableHash + StateData,
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
