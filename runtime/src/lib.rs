//! corestrom-runtime: the thread-per-core engine under corestrom's API.
//!
//! A job is a [`graph::JobGraph`] of sources, operators, exchanges and sinks. [`job::execute`]
//! runs it on `shards` threads, each a pinned glommio executor that runs every node of the graph
//! for its own split of the data:
//!
//! - Operators between two exchanges are **fused** into one chain of [`collector::Collector`]s
//!   called once per batch ([`element::Batch`]), so a record crosses no queue inside a shard.
//! - **Exchanges** (`key_by`, rebalance, broadcast) move batches between shards through an N × N
//!   mesh of bounded lock-free SPSC rings ([`channel`]); a full ring pauses the producers
//!   upstream of it (backpressure), batch buffers are recycled, and a parked shard is woken when
//!   data arrives ([`park`]).
//! - **Event time**: watermarks, idleness and end-of-stream travel in order with the data
//!   ([`element::Signal`]); every multi-input point takes the minimum over its active inputs
//!   ([`collector::InputFrontier`]).
//! - `key_by` places keys by a stable hash into key groups owned by shards in contiguous ranges
//!   ([`hash`]), so state can later be redistributed when the shard count changes.
//! - **Two inputs** ([`two_input`]): `connect`-style operators share one instance per shard
//!   between two input collectors and see one combined watermark.
//! - **Checkpoints** ([`checkpoint`]): barriers injected at all sources of a shard at once,
//!   aligned at every multi-input point, sinks' two-phase commit, crc-checked manifests written
//!   by the coordinator on shard 0, and recovery from the newest manifest that verifies.
//! - **Timers**: keyed operators keep event-time and processing-time timers in a per-operator
//!   [`timers::TimerService`]; the shard loop wakes them for processing time through its
//!   [`processing_time::ProcessingTimeService`] even when no data flows.
//! - **Keyed state** ([`state`]): value, list, map, reducing and aggregating state per (key,
//!   namespace) with optional TTL, in memory behind a backend trait that the store will back.
//!
//! The user-facing builder API lives in `corestrom-operators`; this crate knows nothing about
//! concrete operators.

#![deny(unsafe_op_in_unsafe_fn)]

pub mod channel;
pub mod checkpoint;
pub mod collector;
pub mod config;
pub mod constants;
pub mod element;
pub mod error;
pub mod exchange;
pub mod graph;
pub mod hash;
pub mod job;
pub mod metrics;
pub mod op_scope;
pub mod park;
pub mod processing_time;
pub mod shard;
pub mod sink;
pub mod source;
pub mod splits;
pub mod state;
pub mod time;
pub mod timers;
pub mod two_input;
pub mod watermarks;

pub use collector::{BoxCollector, Collector};
pub use config::{JobConfig, Pinning};
pub use element::{Batch, CheckpointId, Record, Signal, StreamStatus};
pub use error::{JobError, OpResult, OperatorError, ShardId};
pub use graph::{Data, JobGraph, NodeId, OperatorContext};
pub use hash::{KeyGroup, StableHash};
pub use job::{Canceller, JobHandle, JobReport, execute};
pub use processing_time::{ProcessingTimeCallback, ProcessingTimeService, Wakeup};
pub use sink::{Sink, SinkWriter};
pub use source::{Source, SourcePoll, SourceReader, SplitContext};
pub use time::{Clock, END_OF_TIME, EventTime, NO_TIMESTAMP};
pub use timers::{TimeDomain, TimerQueue, TimerService};
