//! The shared shell of keyed operators with timers (the keyed process function and the window
//! operators): batching of the main and side outputs, watermark and signal handling, and the
//! processing-time callback from the shard loop.
//!
//! A keyed operator's logic is a [`KeyedCore`]; [`install`] wraps it into the collector its
//! input feeds and registers it with the shard's processing-time service. The core lives in an
//! `Rc<RefCell<…>>` held by both; the shard loop calls the callback only between batches, never
//! during a `push`, so the cell is never borrowed twice.
//!
//! Order of events, as Flink's: on a watermark the core fires every event-time timer at or below
//! it, then the watermark goes downstream (to both outputs). The end of input arrives after the
//! `END_OF_TIME` watermark, so every event-time timer has fired by then; pending processing-time
//! timers are dropped at the end (Flink does the same for bounded input).

use std::cell::RefCell;
use std::rc::{Rc, Weak};

use corestrom_runtime::processing_time::ProcessingTimeCallback;
use std::hash::Hash;

use corestrom_runtime::state::checkpointer::StateCheckpointer;
use corestrom_runtime::state::snapshot::{KeyGroupState, KeyGroupWriter, SnapshotError};
use corestrom_runtime::time::wall_clock_ms;
use corestrom_runtime::{
    Batch, BoxCollector, Clock, Collector, EventTime, NO_TIMESTAMP, OpResult, OperatorContext,
    OperatorError, Record, Signal, StableHash, TimeDomain, TimerQueue, Wakeup,
};

/// The two outputs of a keyed operator, batched.
pub(crate) struct Outputs<O, S> {
    main: Batch<O>,
    side: Batch<S>,
    down_main: BoxCollector<O>,
    down_side: BoxCollector<S>,
    batch_records: usize,
    emitted_ns: u64,
}

impl<O: 'static, S: 'static> Outputs<O, S> {
    pub(crate) fn new(
        batch_records: usize,
        down_main: BoxCollector<O>,
        down_side: BoxCollector<S>,
    ) -> Self {
        assert!(batch_records > 0);
        Outputs {
            main: Batch::with_capacity(batch_records),
            side: Batch::with_capacity(0),
            down_main,
            down_side,
            batch_records,
            emitted_ns: u64::MAX,
        }
    }

    /// Adds a record to the main output.
    #[inline]
    pub(crate) fn main(&mut self, ts: EventTime, value: O) {
        self.main.records.push(Record::new(ts, value));
    }

    /// Adds a record to the side output.
    #[inline]
    pub(crate) fn side(&mut self, ts: EventTime, value: S) {
        self.side.records.push(Record::new(ts, value));
    }

    /// Sends full batches; called after each input record or fired timer, so batches stay
    /// within `batch_records` plus what one call emitted.
    #[inline]
    pub(crate) fn flush_if_full(&mut self) -> OpResult {
        if self.main.records.len() >= self.batch_records
            || self.side.records.len() >= self.batch_records
        {
            self.flush()?;
        }
        Ok(())
    }

    pub(crate) fn flush(&mut self) -> OpResult {
        if !self.main.records.is_empty() {
            self.main.emitted_ns = self.emitted_ns;
            self.down_main.push(&mut self.main)?;
        }
        if !self.side.records.is_empty() {
            self.side.emitted_ns = self.emitted_ns;
            self.down_side.push(&mut self.side)?;
        }
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.flush()?;
        self.down_main.signal(signal)?;
        self.down_side.signal(signal)
    }
}

/// The logic of one keyed operator instance.
pub(crate) trait KeyedCore: 'static {
    type In: 'static;
    type Out: 'static;
    type Side: 'static;
    /// One input record; `now_ms` is the wall clock read once per batch.
    fn on_record(
        &mut self,
        record: Record<Self::In>,
        now_ms: EventTime,
        out: &mut Outputs<Self::Out, Self::Side>,
    ) -> OpResult;
    /// The watermark advanced: fire the event-time timers at or below it.
    fn on_watermark(
        &mut self,
        watermark: EventTime,
        out: &mut Outputs<Self::Out, Self::Side>,
    ) -> OpResult;
    /// The wall clock reached `now_ms`: fire the processing-time timers at or below it.
    fn on_processing_time(
        &mut self,
        now_ms: EventTime,
        out: &mut Outputs<Self::Out, Self::Side>,
    ) -> OpResult;
    /// The earliest pending processing-time timer.
    fn next_processing_time(&mut self) -> Option<EventTime>;
    /// Writes every entry of the keyed state and timers (checkpoint barrier or end of input).
    fn snapshot(&mut self, writer: &mut KeyGroupWriter) -> Result<(), SnapshotError>;
    /// Loads one key group of a restored snapshot (before any record arrives).
    fn restore(&mut self, group: &KeyGroupState) -> Result<(), SnapshotError>;
    /// Why this operator cannot take part in checkpoints, if it cannot (checked at start).
    fn refuses_checkpoints(&mut self) -> Option<String> {
        None
    }
}

/// One entry of a keyed operator's snapshot, as written: a key's state (whatever the operator
/// keeps per key, e.g. a `(namespace, value)` pair of references) or a timer with its key and
/// namespace. [`Entry`] is the same layout, owned, as read back (serde encodes a reference
/// like the value).
#[derive(serde::Serialize)]
pub(crate) enum EntryRef<'a, K, N, V> {
    Value(&'a K, V),
    EventTimer(&'a K, &'a N, EventTime),
    ProcessingTimer(&'a K, &'a N, EventTime),
}

/// A snapshot entry read back (see [`EntryRef`]).
#[derive(serde::Deserialize)]
pub(crate) enum Entry<K, N, V> {
    Value(K, V),
    EventTimer(K, N, EventTime),
    ProcessingTimer(K, N, EventTime),
}

/// Writes the timers of `queue`, which follow `domain`, as snapshot entries.
pub(crate) fn write_timers<K, N, V>(
    queue: &TimerQueue<K, N>,
    domain: TimeDomain,
    writer: &mut KeyGroupWriter,
) -> Result<(), SnapshotError>
where
    K: StableHash + serde::Serialize + Hash + Eq + Clone,
    N: serde::Serialize + Hash + Eq + Clone,
    V: serde::Serialize,
{
    for (key, namespace, at) in queue.iter() {
        let entry: EntryRef<'_, K, N, V> = match domain {
            TimeDomain::EventTime => EntryRef::EventTimer(key, namespace, at),
            TimeDomain::ProcessingTime => EntryRef::ProcessingTimer(key, namespace, at),
        };
        writer.write(key, &entry)?;
    }
    Ok(())
}

struct Shared<C: KeyedCore> {
    operator: u32,
    core: C,
    /// Present when the job checkpoints.
    checkpointer: Option<StateCheckpointer>,
    out: Outputs<C::Out, C::Side>,
    clock: Clock,
    wakeup: Option<Wakeup>,
    /// The earliest wake-up asked of the shard loop and not yet delivered (`MAX`: none).
    requested_ms: EventTime,
    watermark: EventTime,
    ended: bool,
}

impl<C: KeyedCore> Shared<C> {
    /// Asks the shard loop for a wake-up when the core's earliest processing-time timer is
    /// earlier than what was asked already.
    fn reschedule(&mut self) {
        if let Some(at) = self.core.next_processing_time()
            && at < self.requested_ms
        {
            self.requested_ms = at;
            self.wakeup.as_ref().expect("installed").wake_at(at);
        }
    }
}

impl<C: KeyedCore> ProcessingTimeCallback for Shared<C> {
    fn on_processing_time(&mut self, now_ms: EventTime) -> OpResult {
        self.requested_ms = EventTime::MAX;
        if self.ended {
            return Ok(());
        }
        self.out.emitted_ns = self.clock.now_ns();
        self.core.on_processing_time(now_ms, &mut self.out)?;
        self.out.flush()?;
        self.reschedule();
        Ok(())
    }
}

/// The collector a keyed operator's input feeds.
struct KeyedInput<C: KeyedCore> {
    shared: Rc<RefCell<Shared<C>>>,
}

/// Wraps `core` into its input collector, with `main` and `side` downstream, registers it
/// with the shard's processing-time service, and loads its restored keyed state.
///
/// # Errors
/// The restored state does not belong to this operator or does not decode.
pub(crate) fn install<C: KeyedCore>(
    cx: &OperatorContext<'_>,
    mut core: C,
    main: BoxCollector<C::Out>,
    side: BoxCollector<C::Side>,
) -> Result<BoxCollector<C::In>, OperatorError> {
    let start = cx.keyed_state()?;
    if start.checkpointer.is_some()
        && let Some(reason) = core.refuses_checkpoints()
    {
        return Err(OperatorError::Failed(reason));
    }
    for group in &start.restored {
        core.restore(group)
            .map_err(|e| OperatorError::Failed(format!("restoring operator '{}': {e}", cx.name)))?;
    }
    let shared = Rc::new(RefCell::new(Shared {
        operator: cx.operator,
        core,
        checkpointer: start.checkpointer,
        out: Outputs::new(cx.config.batch_records, main, side),
        clock: cx.clock,
        wakeup: None,
        requested_ms: EventTime::MAX,
        watermark: NO_TIMESTAMP,
        ended: false,
    }));
    let strong: Rc<RefCell<dyn ProcessingTimeCallback>> = shared.clone();
    let weak: Weak<RefCell<dyn ProcessingTimeCallback>> = Rc::downgrade(&strong);
    shared.borrow_mut().wakeup = Some(cx.processing_time.register(cx.operator, weak));
    // Restored processing-time timers need their wake-up.
    shared.borrow_mut().reschedule();
    Ok(Box::new(KeyedInput { shared }))
}

impl<C: KeyedCore> Collector<C::In> for KeyedInput<C> {
    fn push(&mut self, batch: &mut Batch<C::In>) -> OpResult {
        if batch.records.is_empty() {
            return Ok(());
        }
        let mut shared = self.shared.borrow_mut();
        let s = &mut *shared;
        corestrom_runtime::op_scope::enter(s.operator);
        // One clock read per batch: processing-time windows and state TTL use it.
        let now_ms = wall_clock_ms();
        s.out.emitted_ns = batch.emitted_ns;
        for record in batch.records.drain(..) {
            s.core.on_record(record, now_ms, &mut s.out)?;
            s.out.flush_if_full()?;
        }
        s.out.flush()?;
        s.reschedule();
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        let mut shared = self.shared.borrow_mut();
        let s = &mut *shared;
        corestrom_runtime::op_scope::enter(s.operator);
        match signal {
            Signal::Watermark(wm) => {
                if wm <= s.watermark {
                    return Ok(());
                }
                s.watermark = wm;
                s.out.emitted_ns = s.clock.now_ns();
                s.core.on_watermark(wm, &mut s.out)?;
                s.out.signal(signal)?;
                s.reschedule();
                Ok(())
            }
            Signal::End => {
                s.ended = true;
                if let Some(checkpointer) = s.checkpointer.as_mut() {
                    checkpointer.on_end(|w| s.core.snapshot(w))?;
                }
                s.out.signal(signal)
            }
            Signal::Barrier(id) => {
                // Everything before the barrier is processed; its output goes first.
                s.out.flush()?;
                if let Some(checkpointer) = s.checkpointer.as_mut() {
                    checkpointer.on_barrier(id, |w| s.core.snapshot(w))?;
                }
                s.out.signal(signal)
            }
            Signal::Status(_) | Signal::Tick(_) => s.out.signal(signal),
        }
    }
}
