//! Joins of two streams by key, with Flink's event-time semantics.
//!
//! ```text
//! // Interval join (Flink's KeyedStream.intervalJoin): each left record with the right records
//! // of its key at most 2 ms before to 5 ms after it.
//! left.key_by(kl).interval_join(&right.key_by(kr))
//!     .between(-2, 5)                        // ms, inclusive; may be negative
//!     .upper_bound_exclusive()               // optional, as lower_bound_exclusive()
//!     .side_output_left_late_data()          // optional, as side_output_right_late_data()
//!     .process(f)                            // or .join(|l, r| (l.id, r.id)) without late data
//!     .left_late_data()                      // the left records dropped as late
//!
//! // Window join (Flink's DataStream.join): pairs of one key in one window.
//! left.join(&right).where_key(kl).equal_to(kr)
//!     .window(TumblingEventTimeWindows::of(10 s))   // or Sliding…, or …ProcessingTimeWindows
//!     .allowed_lateness(2 s)                        // optional (event time)
//!     .apply(|l, r| (l.id, r.id))                   // or .co_group(f)
//!
//! // Regular joins kept in state: a keyed co-process function.
//! left.connect(&right).key_by(kl, kr).process(MyCoProcessFunction)
//! ```
//!
//! What each emits, and when:
//! - **Interval join** ([`IntervalJoin`]): a pair `(l, r)` of one key with `l.ts + lower <=
//!   r.ts <= l.ts + upper` (an exclusive bound moves one ms inward), as soon as the second of
//!   the two arrives; timestamp `max(l.ts, r.ts)`. A record below the watermark (the minimum of
//!   both inputs', `ts < watermark`) is late: it joins nothing and is dropped, or goes to the
//!   left or right late-data side output when asked for
//!   ([`IntervalJoined::side_output_left_late_data`], Flink's `sideOutputLeftLateData`). Each
//!   record stays buffered until the watermark reaches its cleanup time (`l.ts + max(upper, 0)`
//!   on the left, `r.ts + max(-lower, 0)` on the right).
//! - **Window join** ([`WindowJoin::apply`]): every pair of a key's left and right records in
//!   one tumbling or sliding window, when the window fires (the watermark reaches `end - 1`, or
//!   the clock does for processing-time windows); timestamp `end - 1`. A window with records on
//!   only one side emits nothing. [`WindowJoin::co_group`] instead calls its function once per
//!   key and window with any record, with both sides' records. Without allowed lateness a
//!   record whose windows have all fired is dropped; with [`WindowJoin::allowed_lateness`] `L`
//!   a window keeps its records until the watermark reaches `end - 1 + L`, and a record for a
//!   fired window within that time fires it again at once with all its records (a late
//!   firing, as Flink's). Dropped late records are counted
//!   ([`WindowJoin::late_records_dropped`]). Processing-time windows take each record at the
//!   clock's time on arrival; nothing is late there and, as in Flink, windows still open at the
//!   end of bounded input do not fire.
//! - **Keyed co-process function** ([`KeyedConnectedStreams::process`](crate::KeyedConnectedStreams::process)):
//!   whatever the function emits, per record of either input and per timer.
//!
//! All join state is keyed, bounded by the watermark (buffers and panes leave when their
//! cleanup time or last window passes) and stored once per record: the joined records are
//! passed by reference, never cloned into both sides. Keys and records held in join state must
//! be `serde::Serialize + DeserializeOwned`: checkpoints snapshot the interval join's buffers
//! and the window join's panes and timers per key group, and a restarted job restores them
//! before its first record (exactly-once with the transactional sinks).

mod interval;
mod window;

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::{Data, StableHash};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use interval::{JoinContext, ProcessJoinFunction};
pub use window::LateRecordsDropped;

use crate::keyed_driver;
use crate::stream::{KeyedStream, Stream};
use crate::window::{
    SlidingEventTimeWindows, SlidingProcessingTimeWindows, TimeWindow, TumblingEventTimeWindows,
    TumblingProcessingTimeWindows, WindowAssigner,
};
use interval::{Bounds, IntervalJoinCore, JoinSide, LateOutputs, MapPairs};
use window::{CoGroup, JoinPairs, JoinWindows, WindowJoinCore};

/// An interval join of two keyed streams, waiting for its bounds.
pub struct IntervalJoin<L, R, K, KL, KR> {
    left: KeyedStream<L, K, KL>,
    right: KeyedStream<R, K, KR>,
}

/// An interval join with its bounds; finish it with [`process`](Self::process) or
/// [`join`](Self::join).
pub struct IntervalJoined<L, R, K, KL, KR> {
    left: KeyedStream<L, K, KL>,
    right: KeyedStream<R, K, KR>,
    lower_ms: i64,
    upper_ms: i64,
    lower_inclusive: bool,
    upper_inclusive: bool,
    late: LateOutputs,
}

/// The outputs of an interval join: the main stream (this derefs to it), the join function's
/// side output, and the late records of each input when their side output was asked for.
pub struct IntervalJoinStreams<O, S, L, R> {
    main: Stream<O>,
    side: Stream<S>,
    left_late: Option<Stream<L>>,
    right_late: Option<Stream<R>>,
}

impl<O, S, L, R> std::ops::Deref for IntervalJoinStreams<O, S, L, R> {
    type Target = Stream<O>;
    fn deref(&self) -> &Stream<O> {
        &self.main
    }
}

impl<O: Data, S: Data, L: Data, R: Data> IntervalJoinStreams<O, S, L, R> {
    /// The main output (`ctx.output`).
    pub fn main(&self) -> Stream<O> {
        self.main.clone()
    }

    /// The join function's side output (`ctx.side_output`).
    pub fn side_output(&self) -> Stream<S> {
        self.side.clone()
    }

    /// The left records that arrived late (`ts < watermark`) and joined nothing, with their
    /// own timestamps.
    ///
    /// # Panics
    /// When the join was built without
    /// [`side_output_left_late_data`](IntervalJoined::side_output_left_late_data).
    pub fn left_late_data(&self) -> Stream<L> {
        self.left_late
            .clone()
            .expect("call side_output_left_late_data() before process()")
    }

    /// The right records that arrived late, as [`left_late_data`](Self::left_late_data).
    ///
    /// # Panics
    /// When the join was built without
    /// [`side_output_right_late_data`](IntervalJoined::side_output_right_late_data).
    pub fn right_late_data(&self) -> Stream<R> {
        self.right_late
            .clone()
            .expect("call side_output_right_late_data() before process()")
    }
}

impl<L, K, KL> KeyedStream<L, K, KL>
where
    L: Data,
    K: StableHash + Eq + Hash + Clone + Send + 'static,
    KL: Fn(&L) -> K + Clone + Send + Sync + 'static,
{
    /// Joins this keyed stream (the left side) with `other` (the right side) by key and
    /// timestamp distance (Flink's `intervalJoin`); set the bounds with
    /// [`IntervalJoin::between`].
    pub fn interval_join<R, KR>(
        &self,
        other: &KeyedStream<R, K, KR>,
    ) -> IntervalJoin<L, R, K, KL, KR>
    where
        R: Data,
        KR: Fn(&R) -> K + Clone + Send + Sync + 'static,
    {
        IntervalJoin {
            left: self.clone_keyed(),
            right: other.clone_keyed(),
        }
    }
}

impl<L, R, K, KL, KR> IntervalJoin<L, R, K, KL, KR> {
    /// Joins a left record at `l` with the right records at `r` in `[l + lower_ms, l +
    /// upper_ms]` (both inclusive until made exclusive; either bound may be negative).
    ///
    /// # Panics
    /// When `lower_ms > upper_ms` (as Flink's `between`).
    pub fn between(self, lower_ms: i64, upper_ms: i64) -> IntervalJoined<L, R, K, KL, KR> {
        assert!(
            lower_ms <= upper_ms,
            "interval join: the lower bound ({lower_ms} ms) is above the upper bound ({upper_ms} ms)"
        );
        IntervalJoined {
            left: self.left,
            right: self.right,
            lower_ms,
            upper_ms,
            lower_inclusive: true,
            upper_inclusive: true,
            late: LateOutputs::default(),
        }
    }
}

impl<L, R, K, KL, KR> IntervalJoined<L, R, K, KL, KR>
where
    L: Data + Serialize + DeserializeOwned,
    R: Data + Serialize + DeserializeOwned,
    K: StableHash + Eq + Hash + Clone + Send + Serialize + DeserializeOwned + 'static,
    KL: Fn(&L) -> K + Clone + Send + Sync + 'static,
    KR: Fn(&R) -> K + Clone + Send + Sync + 'static,
{
    /// Excludes the lower bound: `r > l + lower`.
    pub fn lower_bound_exclusive(mut self) -> Self {
        self.lower_inclusive = false;
        self
    }

    /// Excludes the upper bound: `r < l + upper`.
    pub fn upper_bound_exclusive(mut self) -> Self {
        self.upper_inclusive = false;
        self
    }

    fn bounds(&self) -> Bounds {
        // As Flink's operator: exclusive bounds move inward, so matching only tests inclusive
        // bounds (an empty interval then simply matches nothing).
        Bounds {
            lower: self.lower_ms + i64::from(!self.lower_inclusive),
            upper: self.upper_ms - i64::from(!self.upper_inclusive),
        }
    }

    /// Sends the left records that arrive late (below the watermark, so they join nothing) to
    /// [`IntervalJoinStreams::left_late_data`] instead of dropping them (Flink's
    /// `sideOutputLeftLateData`).
    pub fn side_output_left_late_data(mut self) -> Self {
        self.late.left = true;
        self
    }

    /// The same for the right input's late records ([`IntervalJoinStreams::right_late_data`]).
    pub fn side_output_right_late_data(mut self) -> Self {
        self.late.right = true;
        self
    }

    /// Calls `f` for every joined pair (Flink's `process(ProcessJoinFunction)`); the result
    /// derefs to the main output and has the side outputs. Output timestamps are `max(l, r)`.
    pub fn process<P: ProcessJoinFunction<L, R>>(
        &self,
        f: P,
    ) -> IntervalJoinStreams<P::Out, P::Side, L, R> {
        let key_left = self.left.key_fn().clone();
        let key_right = self.right.key_fn().clone();
        let bounds = self.bounds();
        let late = self.late;
        let streams = self
            .left
            .stream()
            .connect(&self.right.stream())
            .keyed_operator("interval_join", true, move |cx, main, side| {
                let core = IntervalJoinCore::new(
                    key_left.clone(),
                    key_right.clone(),
                    f.clone(),
                    bounds,
                    late,
                );
                keyed_driver::install_two_inputs(cx, core, main, side)
            });
        // One side port carries the three kinds of side records (late ones only when asked
        // for); each stream takes its kind. Side records are rare, so the match is cheap.
        let port: Stream<JoinSide<P::Side, L, R>> = streams.side_output();
        IntervalJoinStreams {
            main: streams.main(),
            side: port.filter_map(|s| match s {
                JoinSide::User(s) => Some(s),
                JoinSide::LateLeft(_) | JoinSide::LateRight(_) => None,
            }),
            left_late: late.left.then(|| {
                port.filter_map(|s| match s {
                    JoinSide::LateLeft(l) => Some(l),
                    JoinSide::User(_) | JoinSide::LateRight(_) => None,
                })
            }),
            right_late: late.right.then(|| {
                port.filter_map(|s| match s {
                    JoinSide::LateRight(r) => Some(r),
                    JoinSide::User(_) | JoinSide::LateLeft(_) => None,
                })
            }),
        }
    }

    /// Emits `f(left, right)` for every joined pair, with timestamp `max(l, r)`.
    ///
    /// # Panics
    /// When a late-data side output was asked for: only [`process`](Self::process) returns
    /// those streams, so this would drop the late records silently.
    pub fn join<O, F>(&self, f: F) -> Stream<O>
    where
        O: Data,
        F: FnMut(&L, &R) -> O + Clone + Send + Sync + 'static,
    {
        assert!(
            self.late == LateOutputs::default(),
            "interval join: late-data side outputs come with process(), not join()"
        );
        self.process(MapPairs(f)).main()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TumblingEventTimeWindows {}
    impl Sealed for super::SlidingEventTimeWindows {}
    impl Sealed for super::TumblingProcessingTimeWindows {}
    impl Sealed for super::SlidingProcessingTimeWindows {}
}

/// The windows a window join accepts: tumbling and sliding windows, in event time or
/// processing time.
pub trait JoinWindowAssigner: WindowAssigner<W = TimeWindow> + sealed::Sealed {}
impl JoinWindowAssigner for TumblingEventTimeWindows {}
impl JoinWindowAssigner for SlidingEventTimeWindows {}
impl JoinWindowAssigner for TumblingProcessingTimeWindows {}
impl JoinWindowAssigner for SlidingProcessingTimeWindows {}

/// Two streams to be joined in windows; name the key of the first with
/// [`where_key`](Self::where_key).
pub struct JoinedStreams<A, B> {
    first: Stream<A>,
    second: Stream<B>,
}

/// A window join with the first key; name the second with [`equal_to`](Self::equal_to).
pub struct JoinWhere<A, B, K, KA> {
    first: Stream<A>,
    second: Stream<B>,
    key_first: KA,
    _k: PhantomData<fn() -> K>,
}

/// A window join with both keys; choose the windows with [`window`](Self::window).
pub struct JoinEqualTo<A, B, K, KA, KB> {
    first: Stream<A>,
    second: Stream<B>,
    key_first: KA,
    key_second: KB,
    _k: PhantomData<fn() -> K>,
}

/// A window join ready to run; finish it with [`apply`](Self::apply) or
/// [`co_group`](Self::co_group).
pub struct WindowJoin<A, B, K, KA, KB> {
    first: Stream<A>,
    second: Stream<B>,
    key_first: KA,
    key_second: KB,
    windows: JoinWindows,
    dropped: LateRecordsDropped,
    _k: PhantomData<fn() -> K>,
}

impl<A: Data> Stream<A> {
    /// Joins this stream with `other` in windows (Flink's `join`):
    /// `.where_key(ka).equal_to(kb).window(w).apply(f)`.
    pub fn join<B: Data>(&self, other: &Stream<B>) -> JoinedStreams<A, B> {
        JoinedStreams {
            first: self.clone(),
            second: other.clone(),
        }
    }
}

impl<A: Data, B: Data> JoinedStreams<A, B> {
    /// The key of the first stream's records.
    pub fn where_key<K, KA>(&self, key_first: KA) -> JoinWhere<A, B, K, KA>
    where
        KA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    {
        JoinWhere {
            first: self.first.clone(),
            second: self.second.clone(),
            key_first,
            _k: PhantomData,
        }
    }
}

impl<A: Data, B: Data, K, KA: Clone> JoinWhere<A, B, K, KA> {
    /// The key of the second stream's records (equal keys join).
    pub fn equal_to<KB>(&self, key_second: KB) -> JoinEqualTo<A, B, K, KA, KB>
    where
        KB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        JoinEqualTo {
            first: self.first.clone(),
            second: self.second.clone(),
            key_first: self.key_first.clone(),
            key_second,
            _k: PhantomData,
        }
    }
}

impl<A: Data, B: Data, K, KA: Clone, KB: Clone> JoinEqualTo<A, B, K, KA, KB> {
    /// The windows records meet in: tumbling or sliding windows (with their offset, if any),
    /// in event time ([`TumblingEventTimeWindows`], [`SlidingEventTimeWindows`]) or processing
    /// time ([`TumblingProcessingTimeWindows`], [`SlidingProcessingTimeWindows`]).
    pub fn window<W: JoinWindowAssigner>(&self, assigner: W) -> WindowJoin<A, B, K, KA, KB> {
        WindowJoin {
            first: self.first.clone(),
            second: self.second.clone(),
            key_first: self.key_first.clone(),
            key_second: self.key_second.clone(),
            windows: JoinWindows {
                spec: assigner
                    .aligned()
                    .expect("tumbling and sliding windows are aligned"),
                domain: assigner.domain(),
                lateness_ms: 0,
            },
            dropped: LateRecordsDropped::default(),
            _k: PhantomData,
        }
    }
}

impl<A, B, K, KA, KB> WindowJoin<A, B, K, KA, KB>
where
    A: Data + Serialize + DeserializeOwned,
    B: Data + Serialize + DeserializeOwned,
    K: StableHash + Eq + Hash + Clone + Send + Serialize + DeserializeOwned + 'static,
    KA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    KB: Fn(&B) -> K + Clone + Send + Sync + 'static,
{
    /// Keeps each window's records for `lateness` after the watermark passed its end (Flink's
    /// `allowedLateness`; event time only, ignored in processing time as Flink does).
    ///
    /// A record for a window that has fired but whose `end - 1 + lateness` the watermark has
    /// not reached is stored and fires that window again at once (a late firing): the join
    /// emits every pair of the window again, the earlier ones included, and the co-group calls
    /// its function again with all the window's records, as Flink's accumulating late firings
    /// do. A record whose windows have all reached `end - 1 + lateness <= watermark` is dropped
    /// and counted in [`late_records_dropped`](Self::late_records_dropped).
    pub fn allowed_lateness(mut self, lateness: std::time::Duration) -> Self {
        self.windows.lateness_ms =
            i64::try_from(lateness.as_millis()).expect("lateness fits in i64 ms");
        self
    }

    /// The counter of records this join drops for lateness, on every shard (read it while or
    /// after the job runs).
    pub fn late_records_dropped(&self) -> LateRecordsDropped {
        self.dropped.clone()
    }

    /// Emits `f(first, second)` for every pair of one key in one window when the window fires,
    /// with timestamp `end - 1` (Flink's `JoinFunction`).
    pub fn apply<O, F>(&self, f: F) -> Stream<O>
    where
        O: Data,
        F: FnMut(&A, &B) -> O + Clone + Send + Sync + 'static,
    {
        self.build("window_join", JoinPairs(f))
    }

    /// Calls `f(firsts, seconds, out)` once per key and window with a record on either side,
    /// when the window fires (Flink's `CoGroupFunction`); what `f` pushes to `out` is emitted
    /// with timestamp `end - 1`.
    pub fn co_group<O, F>(&self, f: F) -> Stream<O>
    where
        O: Data + Sync,
        F: FnMut(&mut dyn Iterator<Item = &A>, &mut dyn Iterator<Item = &B>, &mut Vec<O>)
            + Clone
            + Send
            + Sync
            + 'static,
    {
        self.build(
            "window_co_group",
            CoGroup {
                f,
                results: Vec::new(),
            },
        )
    }

    fn build<E: window::WindowEmit<A, B>>(&self, kind: &str, emit: E) -> Stream<E::Out> {
        let key_first = self.key_first.clone();
        let key_second = self.key_second.clone();
        let windows = self.windows;
        let dropped = self.dropped.clone();
        self.first
            .connect(&self.second)
            .key_by(self.key_first.clone(), self.key_second.clone())
            .keyed_operator::<E::Out, (), _>(kind, true, move |cx, main, side| {
                let core = WindowJoinCore::new(
                    key_first.clone(),
                    key_second.clone(),
                    emit.clone(),
                    windows,
                    dropped.clone(),
                );
                keyed_driver::install_two_inputs(cx, core, main, side)
            })
            .main()
    }
}
