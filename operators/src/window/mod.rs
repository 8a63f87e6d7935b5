//! Windows on keyed streams (`KeyedStream::window`), with Flink's event-time semantics.
//!
//! ```text
//! keyed.window(TumblingEventTimeWindows::of(10 s))      // or Sliding…, …SessionWindows, GlobalWindows
//!      .allowed_lateness(2 s)                           // optional
//!      .trigger(CountTrigger::of(100))                  // optional, replaces the default trigger
//!      .aggregate(Count)                                // or reduce / aggregate_with / reduce_with / process
//!      .late_data()                                     // the records dropped for lateness
//! ```
//!
//! Semantics (equal to Flink's):
//! - Tumbling and sliding windows are aligned to the epoch plus an optional offset and end
//!   exclusive: a record at `t` belongs to every window `[start, end)` with `start <= t < end`;
//!   a record exactly at a window's end belongs to the next window.
//! - Session windows `[t, t + gap)` of a key merge when they overlap or touch; a record can
//!   bridge several sessions into one.
//! - An event-time window fires when the watermark reaches `end - 1` (a timer at `end - 1`):
//!   results carry timestamp `end - 1` (`EventTime::MAX` for the global window).
//! - With allowed lateness `L` a window's state lives until the watermark reaches
//!   `end - 1 + L`; a record arriving for a window that already fired but is not yet cleaned up
//!   fires the window again at once with the updated result (a late firing, accumulating).
//! - A record is late when every window it belongs to has `end - 1 + L <= watermark`; such
//!   records go to the late-data side output ([`WindowStreams::late_data`]) and nowhere else.
//! - Processing-time windows use the wall clock at arrival, fire when the clock passes
//!   `end - 1`, ignore allowed lateness, and (as in Flink) do not fire at the end of bounded
//!   input if the clock has not reached them.
//! - Global windows never end by time: a trigger fires them (`count_window(n)` is global
//!   windows with `PurgingTrigger::of(CountTrigger::of(n))`).
//!
//! Implementation: tumbling and sliding windows with their default trigger run on the pane
//! operator ([`aligned`](self) module): each record is stored once, in its slice of
//! `gcd(size, slide)`, and windows merge their panes when they fire. Everything else (sessions,
//! global windows, custom triggers) runs on the general operator, which keeps one accumulator per
//! (key, window). Incremental `reduce`/`aggregate` keep one accumulator, `process` keeps the
//! elements.

mod aligned;
mod assigner;
mod function;
mod generic;
mod trigger;
mod types;

use std::hash::Hash;
use std::time::Duration;

use corestrom_runtime::state::AggregateFunction;
use corestrom_runtime::state::snapshot::StateData;
use corestrom_runtime::{Data, StableHash};

pub use assigner::{
    AlignedSpec, EventTimeSessionWindows, GlobalWindows, ProcessingTimeSessionWindows,
    SlidingEventTimeWindows, SlidingProcessingTimeWindows, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows, WindowAssigner,
};
pub use function::Count;
pub use trigger::{
    CountTrigger, EventTimeTrigger, NeverTrigger, ProcessingTimeTrigger, PurgingTrigger, Trigger,
    TriggerContext, TriggerResult,
};
pub use types::{GlobalWindow, TimeWindow, Window, window_start};

use crate::keyed_driver;
use crate::stream::{KeyedStream, Stream};
use aligned::AlignedCore;
use function::{AggregateAgg, ListAgg, ReduceAgg, WindowAgg};
use generic::GenericCore;

/// A keyed stream cut into windows; finish it with an aggregation.
pub struct WindowedStream<T, K, KF, A, Tr> {
    keyed: KeyedStream<T, K, KF>,
    assigner: A,
    trigger: Tr,
    custom_trigger: bool,
    lateness_ms: i64,
}

/// The result of a window aggregation: the main stream (this derefs to it) and the late data.
pub struct WindowStreams<O, T> {
    main: Stream<O>,
    late: Stream<T>,
}

impl<O, T> std::ops::Deref for WindowStreams<O, T> {
    type Target = Stream<O>;
    fn deref(&self) -> &Stream<O> {
        &self.main
    }
}

impl<O: Data, T: Data> WindowStreams<O, T> {
    /// The window results.
    pub fn main(&self) -> Stream<O> {
        self.main.clone()
    }
    /// The records dropped because all their windows were past their allowed lateness (Flink's
    /// `sideOutputLateData`), with their own timestamps.
    pub fn late_data(&self) -> Stream<T> {
        self.late.clone()
    }
}

impl<T, K, KF> KeyedStream<T, K, KF>
where
    T: Data,
    K: StableHash + Eq + Hash + Clone + Send + StateData,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// Cuts the keyed stream into windows of `assigner`, with its default trigger.
    pub fn window<A: WindowAssigner>(
        &self,
        assigner: A,
    ) -> WindowedStream<T, K, KF, A, A::DefaultTrigger> {
        WindowedStream {
            keyed: self.clone_keyed(),
            trigger: assigner.default_trigger(),
            assigner,
            custom_trigger: false,
            lateness_ms: 0,
        }
    }

    /// Windows of `count` records per key (global windows, purging count trigger).
    pub fn count_window(
        &self,
        count: u64,
    ) -> WindowedStream<T, K, KF, GlobalWindows, PurgingTrigger<CountTrigger>> {
        self.window(GlobalWindows)
            .trigger(PurgingTrigger::of(CountTrigger::of(count)))
    }
}

impl<T, K, KF, A, Tr> WindowedStream<T, K, KF, A, Tr>
where
    T: Data,
    K: StableHash + Eq + Hash + Clone + Send + StateData,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
    A: WindowAssigner,
    Tr: Trigger<T, A::W>,
{
    /// Replaces the default trigger (the windows then use the general operator, without panes).
    pub fn trigger<Tr2: Trigger<T, A::W>>(self, trigger: Tr2) -> WindowedStream<T, K, KF, A, Tr2> {
        WindowedStream {
            keyed: self.keyed,
            assigner: self.assigner,
            trigger,
            custom_trigger: true,
            lateness_ms: self.lateness_ms,
        }
    }

    /// Keeps windows for `lateness` after the watermark passed their end, re-firing them for
    /// late records (event time only).
    pub fn allowed_lateness(mut self, lateness: Duration) -> Self {
        self.lateness_ms = i64::try_from(lateness.as_millis()).expect("lateness fits in i64 ms");
        self
    }

    /// Incremental reduce: each window emits `f` folded over its elements.
    pub fn reduce<F>(&self, f: F) -> WindowStreams<T, T>
    where
        T: StateData,
        F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
    {
        self.build(
            "window_reduce",
            ReduceAgg(f),
            |_: &K, _: &A::W, r: T, out: &mut Vec<T>| out.push(r),
        )
    }

    /// Incremental reduce, then `process(key, window, reduced, out)` per firing.
    pub fn reduce_with<F, P, O>(&self, f: F, process: P) -> WindowStreams<O, T>
    where
        T: StateData,
        F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
        P: FnMut(&K, &A::W, T, &mut Vec<O>) + Clone + Send + Sync + 'static,
        O: Data,
    {
        self.build("window_reduce", ReduceAgg(f), process)
    }

    /// Incremental aggregation (Flink's `AggregateFunction`).
    pub fn aggregate<G>(&self, agg: G) -> WindowStreams<G::Out, T>
    where
        G: AggregateFunction<T>,
        G::Out: Data,
    {
        self.build(
            "window_aggregate",
            AggregateAgg(agg),
            |_: &K, _: &A::W, r: G::Out, out: &mut Vec<G::Out>| out.push(r),
        )
    }

    /// Incremental aggregation, then `process(key, window, result, out)` per firing.
    pub fn aggregate_with<G, P, O>(&self, agg: G, process: P) -> WindowStreams<O, T>
    where
        G: AggregateFunction<T>,
        P: FnMut(&K, &A::W, G::Out, &mut Vec<O>) + Clone + Send + Sync + 'static,
        O: Data,
    {
        self.build("window_aggregate", AggregateAgg(agg), process)
    }

    /// Full-window processing: `process(key, window, elements, out)` sees every element.
    pub fn process<P, O>(&self, process: P) -> WindowStreams<O, T>
    where
        T: StateData,
        P: FnMut(&K, &A::W, Vec<T>, &mut Vec<O>) + Clone + Send + Sync + 'static,
        O: Data,
    {
        self.build("window_process", ListAgg, process)
    }

    fn build<G, P, O>(&self, kind: &str, agg: G, process: P) -> WindowStreams<O, T>
    where
        G: WindowAgg<T>,
        P: FnMut(&K, &A::W, G::Result, &mut Vec<O>) + Clone + Send + Sync + 'static,
        O: Data,
    {
        let key = self.keyed.key_fn().clone();
        let assigner = self.assigner.clone();
        let trigger = self.trigger.clone();
        let lateness = self.lateness_ms;
        let panes = if self.custom_trigger {
            None
        } else {
            assigner.aligned()
        };
        let (main, late) =
            self.keyed
                .stream()
                .operator_with_side::<O, T>(kind, move |cx, main, side| {
                    let domain = assigner.domain();
                    match panes {
                        Some(spec) => keyed_driver::install(
                            cx,
                            AlignedCore::<T, K, KF, A::W, G, P, O>::new(
                                key.clone(),
                                agg.clone(),
                                process.clone(),
                                spec,
                                lateness,
                                domain,
                            ),
                            main,
                            side,
                        ),
                        None => keyed_driver::install(
                            cx,
                            GenericCore::new(
                                key.clone(),
                                assigner.clone(),
                                trigger.clone(),
                                agg.clone(),
                                process.clone(),
                                lateness,
                            ),
                            main,
                            side,
                        ),
                    }
                });
        main.mark_snapshotted_state();
        WindowStreams { main, late }
    }
}
