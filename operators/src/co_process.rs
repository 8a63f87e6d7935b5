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

use crate::keyed_driver::{KeyedCoCore, Outputs, TimedCore};
use crate::process::{ProcessContext, ProcessTimers};

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
    K: Hash + Eq + Clone + 'static,
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
}

impl<K, I1, I2, K1, K2, F> KeyedCoCore for CoProcessCore<K, I1, I2, K1, K2, F>
where
    K: Hash + Eq + Clone + 'static,
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
