//! corestrom-operators: the DataStream-style API and corestrom's built-in operators.
//!
//! Start from an [`Env`], add sources, transform the resulting [`Stream`]s, end them in sinks,
//! and execute. Every operator runs on every shard; operators between exchanges are fused into
//! one chain per shard.
//!
//! ```
//! use corestrom_operators::prelude::*;
//!
//! let env = Env::builder().shards(2).build()?;
//! let counts = env
//!     .from_vec((0..1000u64).collect())
//!     .filter(|n| n % 3 == 0)
//!     .key_by(|n| n % 10)
//!     .fold(0u64, |count, _n| *count += 1)
//!     .collect();
//! env.execute_and_wait()?;
//! let mut last = std::collections::BTreeMap::new();
//! for (key, count) in counts.take() {
//!     last.insert(key, count);
//! }
//! assert_eq!(last.values().sum::<u64>(), 334);
//! # Ok::<(), corestrom_operators::JobError>(())
//! ```
//!
//! Catalog: transforms [`Stream::map`], [`Stream::filter`], [`Stream::filter_map`],
//! [`Stream::flat_map`], [`Stream::inspect`]; event time [`Stream::with_timestamps`] with a
//! [`WatermarkStrategy`]; exchanges [`Stream::key_by`], [`Stream::rebalance`],
//! [`Stream::broadcast`], [`Stream::union`]; two inputs [`Stream::connect`] ([`ConnectedStreams::co_map`],
//! [`ConnectedStreams::transform`]); keyed [`KeyedStream::reduce`],
//! [`KeyedStream::fold`], [`KeyedStream::process`] (timers, keyed state, side outputs),
//! [`KeyedStream::window`] ([`window`]: tumbling, sliding, session and global windows, triggers,
//! allowed lateness, late data); joins ([`join`]): [`KeyedStream::interval_join`],
//! [`Stream::join`] (window join and co-group), [`KeyedConnectedStreams::process`] (keyed
//! co-process function); sinks [`Stream::collect`], [`Stream::print`], [`Stream::blackhole`],
//! [`Stream::write_jsonl`], or any [`corestrom_runtime::Sink`].
//!
//! # Joins
//!
//! Three ways to join two streams by key, with Flink's semantics (details in [`join`]):
//!
//! - **Interval join**: `left.key_by(kl).interval_join(&right.key_by(kr)).between(lower,
//!   upper)` pairs each left record at `l` with the right records of its key at `r` in
//!   `[l + lower, l + upper]` (bounds in ms, either may be negative or made exclusive), as soon
//!   as both have arrived; each pair carries `max(l, r)`. Records behind the watermark are
//!   dropped (or sent to a late-data side output); buffered records leave when the watermark passes `l + max(upper, 0)` (left) or
//!   `r + max(-lower, 0)` (right).
//! - **Window join**: `a.join(&b).where_key(ka).equal_to(kb).window(w).apply(f)` emits
//!   `f(x, y)` for every pair of one key in one tumbling or sliding window (event or
//!   processing time) when the window fires (watermark at `end - 1`), with timestamp `end - 1`;
//!   `.co_group(f)` sees both sides' records of each window instead. Records whose windows have
//!   all passed their allowed lateness (0 unless set) are dropped and counted; a record within
//!   it fires its windows again.
//! - **Keyed co-process function**: `a.connect(&b).key_by(ka, kb).process(f)` with a
//!   [`KeyedCoProcessFunction`]: per-record callbacks for each input, shared keyed state and
//!   timers per key, the minimum of both watermarks, a main and a side output; the basis of
//!   regular joins kept in state.
//!
//! ```
//! use corestrom_operators::prelude::*;
//! use std::time::Duration;
//!
//! let env = Env::builder().shards(2).build()?;
//! let strategy = WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(5));
//! // (user, time): clicks and purchases.
//! let clicks = env.from_vec(vec![(1u64, 10i64), (2, 12), (1, 40)]).with_timestamps(|c| c.1, strategy);
//! let buys = env.from_vec(vec![(1u64, 13i64), (2, 30)]).with_timestamps(|b| b.1, strategy);
//! // Purchases at most 5 ms after a click of the same user.
//! let pairs = clicks
//!     .key_by(|c| c.0)
//!     .interval_join(&buys.key_by(|b| b.0))
//!     .between(0, 5)
//!     .join(|click, buy| (click.0, click.1, buy.1))
//!     .collect();
//! env.execute_and_wait()?;
//! assert_eq!(pairs.take(), vec![(1, 10, 13)]);
//! # Ok::<(), corestrom_operators::JobError>(())
//! ```

mod co_process;
mod connect;
mod env;
mod filter;
mod filter_map;
mod flat_map;
mod inspect;
pub mod join;
mod keyed_driver;
mod keyed_reduce;
mod map;
mod process;
pub mod sink;
pub mod source;
mod stream;
mod timestamps;
pub mod window;

pub use co_process::KeyedCoProcessFunction;
pub use connect::{ConnectedStreams, KeyedConnectedStreams};
pub use corestrom_runtime::state;
pub use corestrom_runtime::state::AggregateFunction;
pub use corestrom_runtime::{JobError, JobReport, OperatorError};
pub use corestrom_runtime::{TimeDomain, TimerService};
pub use env::{Env, EnvBuilder};
pub use process::{KeyedProcessFunction, ProcessContext};
pub use stream::{KeyedStream, ProcessStreams, Stream};
pub use timestamps::WatermarkStrategy;

/// Everything a pipeline usually needs.
pub mod prelude {
    pub use crate::join::{
        IntervalJoinStreams, JoinContext, LateRecordsDropped, ProcessJoinFunction,
    };
    pub use crate::sink::Collected;
    pub use crate::window::{
        Count, CountTrigger, EventTimeSessionWindows, GlobalWindow, GlobalWindows,
        ProcessingTimeSessionWindows, PurgingTrigger, SlidingEventTimeWindows,
        SlidingProcessingTimeWindows, TimeWindow, Trigger, TriggerContext, TriggerResult,
        TumblingEventTimeWindows, TumblingProcessingTimeWindows, Window, WindowStreams,
        WindowedStream,
    };
    pub use crate::{
        AggregateFunction, ConnectedStreams, Env, EnvBuilder, KeyedCoProcessFunction,
        KeyedConnectedStreams, KeyedProcessFunction, KeyedStream, ProcessContext, ProcessStreams,
        Stream, WatermarkStrategy,
    };
    pub use corestrom_runtime::checkpoint::savepoint::SavepointMode;
    pub use corestrom_runtime::{
        EventTime, JobError, JobReport, OperatorError, Pinning, Record, Sink, SinkWriter, Source,
        SourcePoll, SourceReader, SplitContext, StableHash,
    };
}

#[cfg(test)]
mod test_capture;
