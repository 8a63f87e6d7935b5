//! The shared shell of keyed operators with timers (the keyed process functions, the window
//! operators and the joins): batching of the main and side outputs, watermark and signal
//! handling, and the processing-time callback from the shard loop.
//!
//! A keyed operator's logic is a [`TimedCore`] plus its record entry points: [`KeyedCore`] for
//! one input, [`KeyedCoCore`] for two. [`install`] wraps a one-input core into the collector
//! its input feeds; [`install_two_inputs`] wraps a two-input core into the two collectors of
//! `two_input::two_inputs`, which hand the core one watermark (the minimum of both inputs') and
//! one end (after both ended). Both register the core with the shard's processing-time service.
//! The core lives in an `Rc<RefCell<…>>` held by the inputs and the callback; the shard loop
//! calls the callback only between batches, never during a `push`, so the cell is never
//! borrowed twice.
//!
//! Checkpoints: at `Barrier(n)` (aligned over both inputs for two-input cores) the core writes
//! its keyed state and timers through the instance's `StateCheckpointer` before the barrier goes
//! on; at the end of input it hands over its final state. At start it loads the key groups
//! restored for it.
//!
//! Order of events, as Flink's: on a watermark the core fires every event-time timer at or below
//! it, then the watermark goes downstream (to both outputs). The end of input arrives after the
//! `END_OF_TIME` watermark, so every event-time timer has fired by then; pending processing-time
//! timers are dropped at the end (Flink does the same for bounded input).

use std::cell::RefCell;
use std::hash::Hash;
use std::rc::{Rc, Weak};

use corestrom_runtime::processing_time::ProcessingTimeCallback;
use corestrom_runtime::state::checkpointer::StateCheckpointer;
use corestrom_runtime::state::snapshot::{KeyGroupState, KeyGroupWriter, SnapshotError};
use corestrom_runtime::time::wall_clock_ms;
use corestrom_runtime::two_input::{Side, TwoInputOperator, two_inputs};
use corestrom_runtime::{
    Batch, BoxCollector, Clock, Collector, END_OF_TIME, EventTime, NO_TIMESTAMP, OpResult,
    OperatorContext, OperatorError, Record, Signal, StableHash, StreamStatus, TimeDomain,
    TimerQueue, Wakeup,
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

    /// The main and side batches, for a context that writes to both without knowing the other
    /// side's type (the interval join's `JoinContext`).
    #[inline]
    pub(crate) fn batches(&mut self) -> (&mut Batch<O>, &mut Batch<S>) {
        (&mut self.main, &mut self.side)
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

/// The time-driven part of one keyed operator instance: its outputs and timers.
pub(crate) trait TimedCore: 'static {
    type Out: 'static;
    type Side: 'static;
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

/// A keyed operator with one input.
pub(crate) trait KeyedCore: TimedCore {
    type In: 'static;
    /// One input record; `now_ms` is the wall clock read once per batch.
    fn on_record(
        &mut self,
        record: Record<Self::In>,
        now_ms: EventTime,
        out: &mut Outputs<Self::Out, Self::Side>,
    ) -> OpResult;
}

/// A keyed operator with two inputs (both keyed by the same key type).
pub(crate) trait KeyedCoCore: TimedCore {
    type First: 'static;
    type Second: 'static;
    /// One record of the first input; `now_ms` is the wall clock read once per batch.
    fn on_first(
        &mut self,
        record: Record<Self::First>,
        now_ms: EventTime,
        out: &mut Outputs<Self::Out, Self::Side>,
    ) -> OpResult;
    /// One record of the second input.
    fn on_second(
        &mut self,
        record: Record<Self::Second>,
        now_ms: EventTime,
        out: &mut Outputs<Self::Out, Self::Side>,
    ) -> OpResult;
}

struct Shared<C: TimedCore> {
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

impl<C: TimedCore> Shared<C> {
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

impl<C: TimedCore> ProcessingTimeCallback for Shared<C> {
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

impl<C: TimedCore> Shared<C> {
    /// Feeds every record of `batch` to `on_record`, flushing full output batches on the way.
    fn push<I>(
        &mut self,
        batch: &mut Batch<I>,
        mut on_record: impl FnMut(
            &mut C,
            Record<I>,
            EventTime,
            &mut Outputs<C::Out, C::Side>,
        ) -> OpResult,
    ) -> OpResult {
        if batch.records.is_empty() {
            return Ok(());
        }
        corestrom_runtime::op_scope::enter(self.operator);
        // One clock read per batch: processing-time windows and state TTL use it.
        let now_ms = wall_clock_ms();
        self.out.emitted_ns = batch.emitted_ns;
        for record in batch.records.drain(..) {
            on_record(&mut self.core, record, now_ms, &mut self.out)?;
            self.out.flush_if_full()?;
        }
        self.out.flush()?;
        self.reschedule();
        Ok(())
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        corestrom_runtime::op_scope::enter(self.operator);
        match signal {
            Signal::Watermark(wm) => {
                if wm <= self.watermark {
                    return Ok(());
                }
                self.watermark = wm;
                // What the watermark fires is stamped with the source emission time of the last
                // input batch (the one whose records advanced the watermark, on this path), so
                // the sink's latency of a window result runs from when its closing input left
                // the source. Without input so far, and for the end of input, it is now.
                if wm == END_OF_TIME || self.out.emitted_ns == u64::MAX {
                    self.out.emitted_ns = self.clock.now_ns();
                }
                self.core.on_watermark(wm, &mut self.out)?;
                self.out.signal(signal)?;
                self.reschedule();
                Ok(())
            }
            Signal::End => {
                self.ended = true;
                if let Some(checkpointer) = self.checkpointer.as_mut() {
                    checkpointer.on_end(|w| self.core.snapshot(w))?;
                }
                self.out.signal(signal)
            }
            Signal::Barrier(id) => {
                // Everything before the barrier is processed; its output goes first.
                self.out.flush()?;
                if let Some(checkpointer) = self.checkpointer.as_mut() {
                    checkpointer.on_barrier(id, |w| self.core.snapshot(w))?;
                }
                self.out.signal(signal)
            }
            Signal::Status(_) | Signal::Tick(_) => self.out.signal(signal),
        }
    }
}

/// Builds the shared cell of `core`, loads its restored keyed state, and registers it with the
/// shard's processing-time service.
///
/// # Errors
/// The restored state does not belong to this operator or does not decode, or the core cannot
/// take part in the job's checkpoints.
fn share<C: TimedCore>(
    cx: &OperatorContext<'_>,
    mut core: C,
    main: BoxCollector<C::Out>,
    side: BoxCollector<C::Side>,
) -> Result<Rc<RefCell<Shared<C>>>, OperatorError> {
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
    Ok(shared)
}

/// The collector a one-input keyed operator's input feeds.
struct KeyedInput<C: KeyedCore> {
    shared: Rc<RefCell<Shared<C>>>,
}

/// Wraps `core` into its input collector, with `main` and `side` downstream (see [`share`]).
///
/// # Errors
/// As [`share`].
pub(crate) fn install<C: KeyedCore>(
    cx: &OperatorContext<'_>,
    core: C,
    main: BoxCollector<C::Out>,
    side: BoxCollector<C::Side>,
) -> Result<BoxCollector<C::In>, OperatorError> {
    Ok(Box::new(KeyedInput {
        shared: share(cx, core, main, side)?,
    }))
}

impl<C: KeyedCore> Collector<C::In> for KeyedInput<C> {
    fn push(&mut self, batch: &mut Batch<C::In>) -> OpResult {
        self.shared.borrow_mut().push(batch, C::on_record)
    }

    fn signal(&mut self, signal: Signal) -> OpResult {
        self.shared.borrow_mut().signal(signal)
    }
}

/// The collectors of a two-input core's first and second input.
type TwoInputCollectors<C> = (
    BoxCollector<<C as KeyedCoCore>::First>,
    BoxCollector<<C as KeyedCoCore>::Second>,
);

/// A two-input keyed operator as `two_input::two_inputs` drives it.
struct KeyedCoInput<C: KeyedCoCore> {
    shared: Rc<RefCell<Shared<C>>>,
}

/// Wraps a two-input `core` into the collectors of its first and second input, with `main` and
/// `side` downstream (see [`share`]).
///
/// # Errors
/// As [`share`].
pub(crate) fn install_two_inputs<C: KeyedCoCore>(
    cx: &OperatorContext<'_>,
    core: C,
    main: BoxCollector<C::Out>,
    side: BoxCollector<C::Side>,
) -> Result<TwoInputCollectors<C>, OperatorError> {
    let input = KeyedCoInput {
        shared: share(cx, core, main, side)?,
    };
    Ok(two_inputs(input, cx.aligns_barriers()))
}

impl<C: KeyedCoCore> TwoInputOperator<C::First, C::Second> for KeyedCoInput<C> {
    fn push_first(&mut self, batch: &mut Batch<C::First>) -> OpResult {
        self.shared.borrow_mut().push(batch, C::on_first)
    }

    fn push_second(&mut self, batch: &mut Batch<C::Second>) -> OpResult {
        self.shared.borrow_mut().push(batch, C::on_second)
    }

    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        self.shared
            .borrow_mut()
            .signal(Signal::Watermark(watermark))
    }

    fn on_status(&mut self, status: StreamStatus) -> OpResult {
        self.shared.borrow_mut().signal(Signal::Status(status))
    }

    fn on_other(&mut self, _side: Side, signal: Signal) -> OpResult {
        self.shared.borrow_mut().signal(signal)
    }

    fn on_end(&mut self) -> OpResult {
        self.shared.borrow_mut().signal(Signal::End)
    }
}
