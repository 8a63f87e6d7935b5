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
//! allowed lateness, late data); sinks [`Stream::collect`], [`Stream::print`], [`Stream::blackhole`],
//! [`Stream::write_jsonl`], or any [`corestrom_runtime::Sink`].

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
    pub use crate::join::{JoinContext, ProcessJoinFunction};
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
    pub use corestrom_runtime::{
        EventTime, JobError, JobReport, OperatorError, Pinning, Record, Sink, SinkWriter, Source,
        SourcePoll, SourceReader, SplitContext, StableHash,
    };
}
