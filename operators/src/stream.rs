//! `Stream` and `KeyedStream`: the DataStream-style builder methods.
//!
//! Each method adds one node to the job graph. User functions must be `Clone + Send + Sync +
//! 'static`: the job clones one instance per shard, and each instance then runs on its shard
//! only (so it may keep mutable state of its own: `FnMut` is fine).

use std::hash::Hash;
use std::marker::PhantomData;
use std::path::PathBuf;

use corestrom_runtime::exchange::{BroadcastRoute, HashRoute, RoundRobinRoute};
use corestrom_runtime::state::snapshot::StateData;
use corestrom_runtime::{
    Batch, BoxCollector, Data, EventTime, NodeId, OperatorContext, OperatorError, Sink, StableHash,
};

use crate::env::Env;
use crate::filter::Filter;
use crate::filter_map::FilterMap;
use crate::flat_map::FlatMap;
use crate::inspect::Inspect;
use crate::keyed_driver;
use crate::keyed_reduce::{Fold, Reduce};
use crate::map::Map;
use crate::process::{KeyedProcessFunction, ProcessCore, ProcessTimers};
use crate::sink::{BlackholeSink, Collected, JsonLinesSink, PrintSink};
use crate::timestamps::{AssignTimestamps, WatermarkStrategy};
use corestrom_runtime::state::incremental::IncrementalState;

/// A stream of `T` records.
pub struct Stream<T> {
    env: Env,
    node: NodeId,
    _t: PhantomData<fn() -> T>,
}

impl<T> Clone for Stream<T> {
    fn clone(&self) -> Self {
        Stream {
            env: self.env.clone(),
            node: self.node,
            _t: PhantomData,
        }
    }
}

impl<T> std::fmt::Debug for Stream<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream").field("node", &self.node).finish()
    }
}

impl<T: Data> Stream<T> {
    pub(crate) fn new(env: Env, node: NodeId) -> Self {
        Stream {
            env,
            node,
            _t: PhantomData,
        }
    }

    /// The graph node that produces this stream.
    pub fn node(&self) -> NodeId {
        self.node
    }

    /// The environment this stream belongs to.
    pub fn env(&self) -> &Env {
        &self.env
    }

    /// Names the operator that produces this stream (names appear in errors and metrics).
    pub fn name(self, name: &str) -> Self {
        self.env.inner.borrow_mut().graph.set_name(self.node, name);
        self
    }

    /// Adds a custom operator (Flink's `transform`): `factory` builds one instance per shard,
    /// given the collector downstream of it, and returns the collector its input feeds. The
    /// operator must forward signals it does not handle, `End` included.
    pub fn transform<O: Data>(
        &self,
        kind: &str,
        factory: impl Fn(&OperatorContext<'_>, BoxCollector<O>) -> BoxCollector<T>
        + Send
        + Sync
        + 'static,
    ) -> Stream<O> {
        self.operator(kind, factory)
    }

    fn operator<O: Data>(
        &self,
        kind: &str,
        factory: impl Fn(&OperatorContext<'_>, BoxCollector<O>) -> BoxCollector<T>
        + Send
        + Sync
        + 'static,
    ) -> Stream<O> {
        let mut inner = self.env.inner.borrow_mut();
        let name = format!("{kind}#{}", inner.graph.len());
        let node = inner.graph.add_operator::<T, O>(
            name,
            self.node,
            Box::new(move |cx, down| Ok(factory(cx, down))),
        );
        drop(inner);
        Stream::new(self.env.clone(), node)
    }

    /// Adds an operator whose instantiation may fail (e.g. restoring its state).
    pub(crate) fn try_operator<O: Data>(
        &self,
        kind: &str,
        factory: impl Fn(
            &OperatorContext<'_>,
            BoxCollector<O>,
        ) -> Result<BoxCollector<T>, OperatorError>
        + Send
        + Sync
        + 'static,
    ) -> Stream<O> {
        let mut inner = self.env.inner.borrow_mut();
        let name = format!("{kind}#{}", inner.graph.len());
        let node = inner
            .graph
            .add_operator::<T, O>(name, self.node, Box::new(factory));
        drop(inner);
        Stream::new(self.env.clone(), node)
    }

    /// Adds an operator with a main output `O` and a side output `S` (two typed ports: each
    /// record goes to one of them, nothing is cloned).
    pub(crate) fn operator_with_side<O: Data, S: Data>(
        &self,
        kind: &str,
        factory: impl Fn(
            &OperatorContext<'_>,
            BoxCollector<O>,
            BoxCollector<S>,
        ) -> Result<BoxCollector<T>, OperatorError>
        + Send
        + Sync
        + 'static,
    ) -> (Stream<O>, Stream<S>) {
        let mut inner = self.env.inner.borrow_mut();
        let name = format!("{kind}#{}", inner.graph.len());
        let (main, side) =
            inner
                .graph
                .add_operator_with_side::<T, O, S>(name, self.node, Box::new(factory));
        drop(inner);
        (
            Stream::new(self.env.clone(), main),
            Stream::new(self.env.clone(), side),
        )
    }

    /// Marks this stream's operator as keeping keyed state that it snapshots into checkpoints.
    pub(crate) fn mark_snapshotted_state(&self) {
        let mut inner = self.env.inner.borrow_mut();
        inner.graph.set_stateful(self.node);
        inner.graph.set_snapshotted_state(self.node);
    }

    /// Transforms every record.
    pub fn map<O: Data, F>(&self, f: F) -> Stream<O>
    where
        F: FnMut(T) -> O + Clone + Send + Sync + 'static,
    {
        self.operator("map", move |cx, down| {
            Box::new(Map {
                operator: cx.operator,
                f: f.clone(),
                out: Batch::with_capacity(cx.config.batch_records),
                down,
            })
        })
    }

    /// Keeps the records for which `f` is true.
    pub fn filter<F>(&self, f: F) -> Stream<T>
    where
        F: FnMut(&T) -> bool + Clone + Send + Sync + 'static,
    {
        self.operator("filter", move |cx, down| {
            Box::new(Filter {
                operator: cx.operator,
                f: f.clone(),
                down,
            })
        })
    }

    /// Transforms every record into zero or one record.
    pub fn filter_map<O: Data, F>(&self, f: F) -> Stream<O>
    where
        F: FnMut(T) -> Option<O> + Clone + Send + Sync + 'static,
    {
        self.operator("filter_map", move |cx, down| {
            Box::new(FilterMap {
                operator: cx.operator,
                f: f.clone(),
                out: Batch::with_capacity(cx.config.batch_records),
                down,
            })
        })
    }

    /// Transforms every record into any number of records.
    pub fn flat_map<O: Data, I, F>(&self, f: F) -> Stream<O>
    where
        I: IntoIterator<Item = O>,
        F: FnMut(T) -> I + Clone + Send + Sync + 'static,
    {
        self.operator("flat_map", move |cx, down| {
            Box::new(FlatMap {
                operator: cx.operator,
                f: f.clone(),
                out: Batch::with_capacity(cx.config.batch_records),
                batch_records: cx.config.batch_records,
                down,
            })
        })
    }

    /// Calls `f` on every record, passing the stream on unchanged.
    pub fn inspect<F>(&self, f: F) -> Stream<T>
    where
        F: FnMut(&T) + Clone + Send + Sync + 'static,
    {
        self.operator("inspect", move |cx, down| {
            Box::new(Inspect {
                operator: cx.operator,
                f: f.clone(),
                down,
            })
        })
    }

    /// Assigns event timestamps with `timestamp` and generates watermarks by `strategy`.
    pub fn with_timestamps<F>(&self, timestamp: F, strategy: WatermarkStrategy) -> Stream<T>
    where
        F: FnMut(&T) -> EventTime + Clone + Send + Sync + 'static,
    {
        self.operator("timestamps", move |cx, down| {
            Box::new(AssignTimestamps::new(
                cx.operator,
                timestamp.clone(),
                strategy,
                down,
            ))
        })
    }

    /// Partitions by key: every record with the same key goes to the shard owning its key
    /// group. Order is kept per (sending shard, receiving shard).
    pub fn key_by<K, KF>(&self, key: KF) -> KeyedStream<T, K, KF>
    where
        K: StableHash + Eq + Hash + Clone + Send + 'static,
        KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
    {
        let route_key = key.clone();
        let stream = self.exchange("key_by", move |split, config| {
            let key = route_key.clone();
            HashRoute::new(
                move |v: &T| key(v).stable_hash(),
                config.max_key_groups,
                split.shards,
            )
        });
        KeyedStream {
            stream,
            key,
            _k: PhantomData,
        }
    }

    /// Redistributes records round robin over all shards.
    pub fn rebalance(&self) -> Stream<T> {
        self.exchange("rebalance", |split, _| {
            RoundRobinRoute::new(split.shard, split.shards)
        })
    }

    /// Sends every record to every shard.
    pub fn broadcast(&self) -> Stream<T> {
        self.exchange("broadcast", |_, _| BroadcastRoute)
    }

    /// Keeps records on the shard they are on (the default between operators; a no-op that
    /// documents intent).
    pub fn forward(&self) -> Stream<T> {
        self.clone()
    }

    fn exchange<R: corestrom_runtime::exchange::Route<T>>(
        &self,
        kind: &str,
        route: impl Fn(corestrom_runtime::SplitContext, &corestrom_runtime::JobConfig) -> R
        + Send
        + Sync
        + 'static,
    ) -> Stream<T> {
        let mut inner = self.env.inner.borrow_mut();
        let name = format!("{kind}#{}", inner.graph.len());
        let node = inner.graph.add_exchange(name, self.node, route);
        drop(inner);
        Stream::new(self.env.clone(), node)
    }

    /// Merges this stream with others of the same type (watermark: the minimum of the inputs).
    pub fn union(&self, others: &[Stream<T>]) -> Stream<T> {
        let mut inputs = vec![self.node];
        inputs.extend(others.iter().map(|s| s.node));
        let mut inner = self.env.inner.borrow_mut();
        let name = format!("union#{}", inner.graph.len());
        let node = inner.graph.add_union::<T>(name, inputs);
        drop(inner);
        Stream::new(self.env.clone(), node)
    }

    /// Connects this stream with `other` for a two-input operator.
    pub fn connect<B: Data>(&self, other: &Stream<B>) -> crate::ConnectedStreams<T, B> {
        crate::ConnectedStreams::new(self.clone(), other.clone())
    }

    /// Writes the stream to `sink`.
    pub fn sink(&self, name: &str, sink: impl Sink<T>) {
        self.env
            .inner
            .borrow_mut()
            .graph
            .add_sink(name, self.node, sink);
    }

    /// Collects the stream in memory; the handle yields the records after the job finished.
    pub fn collect(&self) -> Collected<T> {
        let (sink, handle) = crate::sink::collect::collect_pair();
        self.sink("collect", sink);
        handle
    }

    /// Discards the stream (counted and timed by the runtime).
    pub fn blackhole(&self) {
        self.sink("blackhole", BlackholeSink);
    }

    /// Prints each record as `shard> value` to standard output.
    pub fn print(&self)
    where
        T: std::fmt::Debug,
    {
        self.sink("print", PrintSink);
    }

    /// Writes JSON lines into `dir`, one file per shard, published when the stream ends.
    pub fn write_jsonl(&self, dir: impl Into<PathBuf>)
    where
        T: serde::Serialize,
    {
        self.sink("jsonl", JsonLinesSink::new(dir));
    }
}

/// The outputs of a keyed process function: the main stream (this derefs to it) and the side
/// output.
pub struct ProcessStreams<O, S> {
    main: Stream<O>,
    side: Stream<S>,
}

impl<O, S> std::ops::Deref for ProcessStreams<O, S> {
    type Target = Stream<O>;
    fn deref(&self) -> &Stream<O> {
        &self.main
    }
}

impl<O: Data, S: Data> ProcessStreams<O, S> {
    pub(crate) fn new(main: Stream<O>, side: Stream<S>) -> Self {
        ProcessStreams { main, side }
    }

    /// The main output (`ctx.output`).
    pub fn main(&self) -> Stream<O> {
        self.main.clone()
    }
    /// The side output (`ctx.side_output`).
    pub fn side_output(&self) -> Stream<S> {
        self.side.clone()
    }
}

/// A stream partitioned by key (after `key_by`).
pub struct KeyedStream<T, K, KF> {
    stream: Stream<T>,
    key: KF,
    _k: PhantomData<fn() -> K>,
}

/// A keyed stream is still a stream: every `Stream` method applies (as in Flink, where
/// `KeyedStream` extends `DataStream`).
impl<T, K, KF> std::ops::Deref for KeyedStream<T, K, KF> {
    type Target = Stream<T>;
    fn deref(&self) -> &Stream<T> {
        &self.stream
    }
}

impl<T, K, KF> KeyedStream<T, K, KF>
where
    T: Data,
    K: StableHash + Eq + Hash + Clone + Send + 'static,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// The partitioned stream itself.
    pub fn stream(&self) -> Stream<T> {
        self.stream.clone()
    }

    /// The key function.
    pub fn key_fn(&self) -> &KF {
        &self.key
    }

    pub(crate) fn clone_keyed(&self) -> KeyedStream<T, K, KF> {
        KeyedStream {
            stream: self.stream.clone(),
            key: self.key.clone(),
            _k: PhantomData,
        }
    }
}

/// Keyed operators: their state is per key, so keys must be encodable for checkpoints.
impl<T, K, KF> KeyedStream<T, K, KF>
where
    T: Data,
    K: StableHash + Eq + Hash + Clone + Send + StateData,
    KF: Fn(&T) -> K + Clone + Send + Sync + 'static,
{
    /// Runs a keyed process function (Flink's `KeyedProcessFunction`) on every record and timer;
    /// the result derefs to the main output and has the side output.
    pub fn process<P: KeyedProcessFunction<K, T>>(&self, f: P) -> ProcessStreams<P::Out, P::Side> {
        let key = self.key.clone();
        let (main, side) =
            self.stream
                .operator_with_side::<P::Out, P::Side>("process", move |cx, main, side| {
                    keyed_driver::install(
                        cx,
                        ProcessCore {
                            key_fn: key.clone(),
                            f: f.clone(),
                            timers: ProcessTimers::new(),
                            _i: PhantomData,
                        },
                        main,
                        side,
                    )
                });
        main.mark_snapshotted_state();
        ProcessStreams { main, side }
    }

    /// Rolling reduce: each record is combined with its key's accumulated value by
    /// `f(accumulated, record)`, and the new accumulated value is emitted.
    pub fn reduce<F>(&self, f: F) -> Stream<T>
    where
        T: StateData,
        F: FnMut(T, T) -> T + Clone + Send + Sync + 'static,
    {
        let key = self.key.clone();
        let stream = self.stream.try_operator("reduce", move |cx, down| {
            let state = IncrementalState::install(cx.keyed_state()?).map_err(|e| {
                OperatorError::Failed(format!("restoring operator '{}': {e}", cx.name))
            })?;
            Ok(Box::new(Reduce {
                operator: cx.operator,
                key: key.clone(),
                f: f.clone(),
                state,
                out: Batch::with_capacity(cx.config.batch_records),
                down,
            }))
        });
        stream.mark_snapshotted_state();
        stream
    }

    /// Rolling fold: each record updates its key's accumulator (starting from `init`) with
    /// `f(&mut acc, record)`, and `(key, acc)` is emitted.
    pub fn fold<A, F>(&self, init: A, f: F) -> Stream<(K, A)>
    where
        A: Data + Sync + StateData,
        F: FnMut(&mut A, T) + Clone + Send + Sync + 'static,
    {
        let key = self.key.clone();
        let stream = self.stream.try_operator("fold", move |cx, down| {
            let state = IncrementalState::install(cx.keyed_state()?).map_err(|e| {
                OperatorError::Failed(format!("restoring operator '{}': {e}", cx.name))
            })?;
            Ok(Box::new(Fold {
                operator: cx.operator,
                key: key.clone(),
                init: init.clone(),
                f: f.clone(),
                state,
                out: Batch::with_capacity(cx.config.batch_records),
                down,
            }))
        });
        stream.mark_snapshotted_state();
        stream
    }
}
