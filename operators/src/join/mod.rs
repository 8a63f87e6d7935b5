//! Joins of two streams by key, with Flink's event-time semantics.
//!
//! ```text
//! // Interval join (Flink's KeyedStream.intervalJoin): each left record with the right records
//! // of its key at most 2 ms before to 5 ms after it.
//! left.key_by(kl).interval_join(&right.key_by(kr))
//!     .between(-2, 5)                        // ms, inclusive; may be negative
//!     .upper_bound_exclusive()               // optional, as lower_bound_exclusive()
//!     .join(|l, r| (l.id, r.id))             // or .process(ProcessJoinFunction)
//!
//! // Window join (Flink's DataStream.join): pairs of one key in one window.
//! left.join(&right).where_key(kl).equal_to(kr)
//!     .window(TumblingEventTimeWindows::of(10 s))   // or SlidingEventTimeWindows
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
//!   both inputs') is late and dropped. Each record stays buffered until the watermark reaches
//!   its cleanup time (`l.ts + max(upper, 0)` on the left, `r.ts + max(-lower, 0)` on the
//!   right).
//! - **Window join** ([`WindowJoin::apply`]): every pair of a key's left and right records in
//!   one tumbling or sliding event-time window, when the window fires (the watermark reaches
//!   `end - 1`); timestamp `end - 1`. A window with records on only one side emits nothing.
//!   [`WindowJoin::co_group`] instead calls its function once per key and window with any
//!   record, with both sides' records. A record whose windows have all fired is dropped (no
//!   allowed lateness, as Flink's join without `allowedLateness`).
//! - **Keyed co-process function** ([`KeyedConnectedStreams::process`](crate::KeyedConnectedStreams::process)):
//!   whatever the function emits, per record of either input and per timer.
//!
//! All join state is keyed, bounded by the watermark (buffers and panes leave when their
//! cleanup time or last window passes) and stored once per record: the joined records are
//! passed by reference, never cloned into both sides. Keys and records held in join state must
//! be `serde::Serialize + DeserializeOwned` (checkpoints will snapshot this state); until then
//! a checkpointing job with a join is refused.

mod interval;
mod window;

/// Why a job with an interval or window join cannot checkpoint yet: their buffers are not part
/// of snapshots. `JobGraph::validate_checkpointing` refuses such a job before it starts (the
/// join nodes are stateful without snapshotted state), so their snapshot hooks never run.
pub(crate) const JOIN_NOT_CHECKPOINTED: &str = "interval and window joins keep their buffers in memory outside checkpoints; run this job without checkpoints";

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::{Data, StableHash};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use interval::{JoinContext, ProcessJoinFunction};

use crate::keyed_driver;
use crate::stream::{KeyedStream, ProcessStreams, Stream};
use crate::window::{
    AlignedSpec, SlidingEventTimeWindows, TimeWindow, TumblingEventTimeWindows, WindowAssigner,
};
use interval::{Bounds, IntervalJoinCore, MapPairs};
use window::{CoGroup, JoinPairs, WindowJoinCore};

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

    /// Calls `f` for every joined pair (Flink's `process(ProcessJoinFunction)`); the result
    /// derefs to the main output and has the side output. Output timestamps are `max(l, r)`.
    pub fn process<P: ProcessJoinFunction<L, R>>(&self, f: P) -> ProcessStreams<P::Out, P::Side> {
        let key_left = self.left.key_fn().clone();
        let key_right = self.right.key_fn().clone();
        let bounds = self.bounds();
        self.left
            .stream()
            .connect(&self.right.stream())
            .keyed_operator("interval_join", false, move |cx, main, side| {
                keyed_driver::install_two_inputs(
                    cx,
                    IntervalJoinCore::new(key_left.clone(), key_right.clone(), f.clone(), bounds),
                    main,
                    side,
                )
            })
    }

    /// Emits `f(left, right)` for every joined pair, with timestamp `max(l, r)`.
    pub fn join<O, F>(&self, f: F) -> Stream<O>
    where
        O: Data,
        F: FnMut(&L, &R) -> O + Clone + Send + Sync + 'static,
    {
        self.process(MapPairs(f)).main()
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TumblingEventTimeWindows {}
    impl Sealed for super::SlidingEventTimeWindows {}
}

/// The windows a window join accepts: tumbling and sliding event-time windows.
pub trait JoinWindowAssigner: WindowAssigner<W = TimeWindow> + sealed::Sealed {}
impl JoinWindowAssigner for TumblingEventTimeWindows {}
impl JoinWindowAssigner for SlidingEventTimeWindows {}

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
    spec: AlignedSpec,
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
    /// The windows records meet in: [`TumblingEventTimeWindows`] or
    /// [`SlidingEventTimeWindows`] (with their offset, if any).
    pub fn window<W: JoinWindowAssigner>(&self, assigner: W) -> WindowJoin<A, B, K, KA, KB> {
        WindowJoin {
            first: self.first.clone(),
            second: self.second.clone(),
            key_first: self.key_first.clone(),
            key_second: self.key_second.clone(),
            spec: assigner
                .aligned()
                .expect("tumbling and sliding windows are aligned"),
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
        let spec = self.spec;
        self.first
            .connect(&self.second)
            .key_by(self.key_first.clone(), self.key_second.clone())
            .keyed_operator::<E::Out, (), _>(kind, false, move |cx, main, side| {
                keyed_driver::install_two_inputs(
                    cx,
                    WindowJoinCore::new(key_first.clone(), key_second.clone(), emit.clone(), spec),
                    main,
                    side,
                )
            })
            .main()
    }
}
