//! The keyed co-process function (`connect(..).key_by(..).process(..)`), Flink's
//! `KeyedCoProcessFunction`: user code per record of either input and per timer, with the same
//! context as the one-input keyed process function ([`ProcessContext`]: current key, timestamp,
//! watermark, deduplicated event- and processing-time timers, keyed state scopes, main and side
//! output). It is the building block of regular (unwindowed) joins kept in keyed state.
//!
//! Semantics, as Flink's:
//! - Both inputs are partitioned by keys of one type with one stable hash, so a key's records of
//!   either side reach the same shard and the same function instance; `ctx.key()` is the key of
//!   the record or timer being processed.
//! - The watermark (`ctx.current_watermark()`, and what fires event-time timers) is the minimum
//!   of the two inputs' watermarks (an idle input does not hold it back).
//! - Timers are per key, shared by both inputs: a timer registered from either
//!   `process_element1` or `process_element2` fires once in `on_timer`.
//! - Emitted records carry the input record's timestamp, the timer's timestamp in an event-time
//!   `on_timer`, and none in a processing-time `on_timer`.
//!
//! State: the timers live in [`ProcessTimers`], apart from the user function, whose keyed state
//! handles are its own fields (as for the one-input function).

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::{Data, EventTime, OpResult, Record};

use corestrom_runtime::StableHash;
use corestrom_runtime::state::SnapshotHandle;
use corestrom_runtime::state::snapshot::{KeyGroupState, KeyGroupWriter, SnapshotError, StateData};

use crate::keyed_driver::{KeyedCoCore, Outputs, TimedCore};
use crate::process::{ProcessContext, ProcessTimers, undeclared_state_handles};

/// User logic per key over two inputs: called for each record of either input and each timer of
/// the record's key.
///
/// One instance runs per shard (cloned from the one given to `process`), so it may hold keyed
/// state handles (`corestrom_runtime::state`) as fields and address them with `ctx.state()`;
/// both inputs see the same state of a key.
pub trait KeyedCoProcessFunction<K, I1, I2>: Clone + Send + Sync + 'static {
    /// Main output.
    type Out: Data;
    /// Side output (use `()` when unused).
    type Side: Data;

    /// Called for every record of the first input (the stream `connect` was called on).
    fn process_element1(
        &mut self,
        value: I1,
        ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    );

    /// Called for every record of the second input (the stream passed to `connect`).
    fn process_element2(
        &mut self,
        value: I2,
        ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    );

    /// Called when a timer of `ctx.key()` fires; `ctx.time_domain()` says which clock.
    fn on_timer(
        &mut self,
        _timestamp: EventTime,
        _ctx: &mut ProcessContext<'_, K, Self::Out, Self::Side>,
    ) {
    }

    /// The keyed state handles this function keeps, as `KeyedProcessFunction::state_handles`:
    /// `None` (the default) keeps it out of checkpointing jobs.
    fn state_handles(&mut self) -> Option<Vec<&mut dyn SnapshotHandle<K>>> {
        None
    }
}

/// One shard's instance of a keyed co-process function.
pub(crate) struct CoProcessCore<K, I1, I2, K1, K2, F> {
    key_first: K1,
    key_second: K2,
    f: F,
    timers: ProcessTimers<K>,
    _inputs: PhantomData<fn(I1, I2)>,
}

impl<K, I1, I2, K1, K2, F> CoProcessCore<K, I1, I2, K1, K2, F>
where
    K: Hash + Eq + Clone + 'static,
{
    pub(crate) fn new(key_first: K1, key_second: K2, f: F) -> Self {
        CoProcessCore {
            key_first,
            key_second,
            f,
            timers: ProcessTimers::new(),
            _inputs: PhantomData,
        }
    }
}

impl<K, I1, I2, K1, K2, F> TimedCore for CoProcessCore<K, I1, I2, K1, K2, F>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    I1: 'static,
    I2: 'static,
    K1: Fn(&I1) -> K + 'static,
    K2: Fn(&I2) -> K + 'static,
    F: KeyedCoProcessFunction<K, I1, I2>,
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
            .then(|| undeclared_state_handles("keyed co-process function"))
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

impl<K, I1, I2, K1, K2, F> KeyedCoCore for CoProcessCore<K, I1, I2, K1, K2, F>
where
    K: Hash + Eq + Clone + StableHash + StateData,
    I1: 'static,
    I2: 'static,
    K1: Fn(&I1) -> K + 'static,
    K2: Fn(&I2) -> K + 'static,
    F: KeyedCoProcessFunction<K, I1, I2>,
{
    type First = I1;
    type Second = I2;

    fn on_first(
        &mut self,
        record: Record<I1>,
        now_ms: EventTime,
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let key = (self.key_first)(&record.value);
        let mut ctx = self.timers.element_context(&key, record.ts, now_ms, out);
        self.f.process_element1(record.value, &mut ctx);
        Ok(())
    }

    fn on_second(
        &mut self,
        record: Record<I2>,
        now_ms: EventTime,
        out: &mut Outputs<F::Out, F::Side>,
    ) -> OpResult {
        let key = (self.key_second)(&record.value);
        let mut ctx = self.timers.element_context(&key, record.ts, now_ms, out);
        self.f.process_element2(record.value, &mut ctx);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    //! Processing-time timers of a co-process function, driven with a scripted clock: the core
    //! is called directly with the wall-clock values a shard loop would pass.
    use std::cell::RefCell;
    use std::rc::Rc;

    use corestrom_runtime::{NO_TIMESTAMP, TimeDomain};

    use super::*;

    use crate::test_capture::Capture;

    /// Left records register a processing-time timer 5 ms later, right ones the same timer
    /// (deduplicated); right records with value 0 delete it. Timers emit (key, time).
    #[derive(Clone)]
    struct Delayed;

    impl KeyedCoProcessFunction<u8, (u8, u32), (u8, u32)> for Delayed {
        type Out = (u8, EventTime);
        type Side = ();

        fn process_element1(
            &mut self,
            _value: (u8, u32),
            ctx: &mut ProcessContext<'_, u8, Self::Out, ()>,
        ) {
            let at = ctx.current_processing_time() + 5;
            ctx.register_processing_time_timer(at);
        }

        fn process_element2(
            &mut self,
            (_, value): (u8, u32),
            ctx: &mut ProcessContext<'_, u8, Self::Out, ()>,
        ) {
            let at = ctx.current_processing_time() + 5;
            if value == 0 {
                ctx.delete_processing_time_timer(at);
            } else {
                ctx.register_processing_time_timer(at);
            }
        }

        fn on_timer(
            &mut self,
            timestamp: EventTime,
            ctx: &mut ProcessContext<'_, u8, Self::Out, ()>,
        ) {
            assert_eq!(ctx.time_domain(), Some(TimeDomain::ProcessingTime));
            assert_eq!(
                ctx.timestamp(),
                None,
                "processing-time output has no timestamp"
            );
            let key = *ctx.key();
            ctx.output((key, timestamp));
        }
    }

    #[test]
    fn processing_time_timers_of_both_inputs_fire_once_when_the_clock_reaches_them() {
        let main = Rc::new(RefCell::new(Vec::new()));
        let mut out: Outputs<(u8, EventTime), ()> = Outputs::new(
            8,
            Box::new(Capture(Rc::clone(&main))),
            Box::new(Capture(Rc::new(RefCell::new(Vec::new())))),
        );
        type Key = fn(&(u8, u32)) -> u8;
        let mut core =
            CoProcessCore::<u8, (u8, u32), (u8, u32), Key, Key, _>::new(|r| r.0, |r| r.0, Delayed);
        core.on_first(Record::new(1, (1, 1)), 100, &mut out)
            .unwrap();
        core.on_second(Record::new(2, (1, 1)), 100, &mut out)
            .unwrap(); // same timer
        core.on_first(Record::new(3, (2, 1)), 102, &mut out)
            .unwrap();
        core.on_first(Record::new(4, (3, 1)), 102, &mut out)
            .unwrap();
        core.on_second(Record::new(5, (3, 0)), 102, &mut out)
            .unwrap(); // deletes key 3's
        assert_eq!(core.next_processing_time(), Some(105));
        core.on_processing_time(104, &mut out).unwrap();
        out.flush().unwrap();
        assert!(main.borrow().is_empty());
        core.on_processing_time(107, &mut out).unwrap();
        out.flush().unwrap();
        let got: Vec<_> = main.borrow().iter().map(|r| (r.ts, r.value)).collect();
        assert_eq!(
            got,
            vec![(NO_TIMESTAMP, (1, 105)), (NO_TIMESTAMP, (2, 107))]
        );
        assert_eq!(core.next_processing_time(), None);
    }
}
