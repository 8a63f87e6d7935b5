//! `connect`: two streams of possibly different types feeding one operator (Flink's
//! `ConnectedStreams`), the basis of co-process functions and joins.
//!
//! `key_by` on connected streams partitions both inputs by keys of the same type with the same
//! stable hash, so records with equal keys from either side meet on the same shard; the result
//! ([`KeyedConnectedStreams`]) keeps both key functions for keyed two-input operators
//! ([`KeyedConnectedStreams::process`], Flink's `KeyedCoProcessFunction`).

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::two_input::{Side, TwoInputOperator, two_inputs};
use corestrom_runtime::{
    Batch, BoxCollector, Data, EventTime, OpResult, OperatorContext, OperatorError, Signal,
    StableHash, StreamStatus, op_scope,
};

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::co_process::{CoProcessCore, KeyedCoProcessFunction};
use crate::keyed_driver;
use crate::stream::{ProcessStreams, Stream};

/// Two streams connected for a two-input operator.
pub struct ConnectedStreams<A, B> {
    first: Stream<A>,
    second: Stream<B>,
}

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    pub(crate) fn new(first: Stream<A>, second: Stream<B>) -> Self {
        ConnectedStreams { first, second }
    }

    /// Partitions both inputs by key so equal keys meet on one shard. The result derefs to the
    /// (partitioned) connected streams, and keeps the key functions for
    /// [`KeyedConnectedStreams::process`].
    pub fn key_by<K, KA, KB>(
        &self,
        key_first: KA,
        key_second: KB,
    ) -> KeyedConnectedStreams<A, B, K, KA, KB>
    where
        K: StableHash + Eq + Hash + Clone + Send + 'static,
        KA: Fn(&A) -> K + Clone + Send + Sync + 'static,
        KB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        KeyedConnectedStreams {
            connected: ConnectedStreams {
                first: self.first.key_by(key_first.clone()).stream(),
                second: self.second.key_by(key_second.clone()).stream(),
            },
            key_first,
            key_second,
            _k: PhantomData,
        }
    }

    /// Adds a two-input operator that keeps keyed state, with a main and a side output (two
    /// typed ports: each record goes to one of them). `factory` builds one instance per shard
    /// and returns the collectors of its two inputs.
    pub(crate) fn keyed_operator<O: Data, S: Data, F>(
        &self,
        kind: &str,
        snapshots_state: bool,
        factory: F,
    ) -> ProcessStreams<O, S>
    where
        F: Fn(
                &OperatorContext<'_>,
                BoxCollector<O>,
                BoxCollector<S>,
            ) -> Result<(BoxCollector<A>, BoxCollector<B>), OperatorError>
            + Send
            + Sync
            + 'static,
    {
        let env = self.first.env().clone();
        let mut inner = env.inner.borrow_mut();
        let name = format!("{kind}#{}", inner.graph.len());
        let (main, side) = inner.graph.add_two_input_with_side::<A, B, O, S>(
            name,
            self.first.node(),
            self.second.node(),
            Box::new(factory),
        );
        inner.graph.set_stateful(main);
        if snapshots_state {
            inner.graph.set_snapshotted_state(main);
        }
        drop(inner);
        ProcessStreams::new(Stream::new(env.clone(), main), Stream::new(env, side))
    }

    /// Adds a custom two-input operator: `factory` builds one instance per shard from its
    /// downstream collector (see `corestrom_runtime::two_input`).
    pub fn transform<O: Data, Op, F>(&self, kind: &str, factory: F) -> Stream<O>
    where
        Op: TwoInputOperator<A, B>,
        F: Fn(&OperatorContext<'_>, BoxCollector<O>) -> Op + Send + Sync + 'static,
    {
        let env = self.first.env().clone();
        let mut inner = env.inner.borrow_mut();
        let name = format!("{kind}#{}", inner.graph.len());
        let node = inner.graph.add_two_input::<A, B, O>(
            name,
            self.first.node(),
            self.second.node(),
            Box::new(move |cx, down| Ok(two_inputs(factory(cx, down), cx.aligns_barriers()))),
        );
        drop(inner);
        Stream::new(env.clone(), node)
    }

    /// Maps each side with its own function into one output stream (Flink's `CoMapFunction`).
    /// The output's watermark is the minimum of the two inputs'.
    pub fn co_map<O, FA, FB>(&self, map_first: FA, map_second: FB) -> Stream<O>
    where
        O: Data,
        FA: FnMut(A) -> O + Clone + Send + Sync + 'static,
        FB: FnMut(B) -> O + Clone + Send + Sync + 'static,
    {
        self.transform("co_map", move |cx, down| CoMap {
            operator: cx.operator,
            first: map_first.clone(),
            second: map_second.clone(),
            out: Batch::with_capacity(cx.config.batch_records),
            down,
            _types: PhantomData,
        })
    }
}

/// Two streams connected and partitioned by keys of the same type (after
/// [`ConnectedStreams::key_by`]). Derefs to the connected streams, so `co_map` and `transform`
/// still apply.
pub struct KeyedConnectedStreams<A, B, K, KA, KB> {
    connected: ConnectedStreams<A, B>,
    key_first: KA,
    key_second: KB,
    _k: PhantomData<fn() -> K>,
}

impl<A, B, K, KA, KB> std::ops::Deref for KeyedConnectedStreams<A, B, K, KA, KB> {
    type Target = ConnectedStreams<A, B>;
    fn deref(&self) -> &ConnectedStreams<A, B> {
        &self.connected
    }
}

impl<A, B, K, KA, KB> KeyedConnectedStreams<A, B, K, KA, KB>
where
    A: Data,
    B: Data,
    K: StableHash + Eq + Hash + Clone + Send + Serialize + DeserializeOwned + 'static,
    KA: Fn(&A) -> K + Clone + Send + Sync + 'static,
    KB: Fn(&B) -> K + Clone + Send + Sync + 'static,
{
    /// Runs a keyed co-process function (Flink's `KeyedCoProcessFunction`) on every record of
    /// both inputs and on every timer: `process_element1` for the first input,
    /// `process_element2` for the second, `on_timer` for timers of the key. The watermark the
    /// function sees, and that fires its event-time timers, is the minimum of both inputs'.
    /// The result derefs to the main output and has the side output.
    pub fn process<P: KeyedCoProcessFunction<K, A, B>>(
        &self,
        f: P,
    ) -> ProcessStreams<P::Out, P::Side> {
        let key_first = self.key_first.clone();
        let key_second = self.key_second.clone();
        self.connected
            .keyed_operator("co_process", true, move |cx, main, side| {
                keyed_driver::install_two_inputs(
                    cx,
                    CoProcessCore::new(key_first.clone(), key_second.clone(), f.clone()),
                    main,
                    side,
                )
            })
    }
}

struct CoMap<A, B, O, FA, FB> {
    operator: u32,
    first: FA,
    second: FB,
    out: Batch<O>,
    down: BoxCollector<O>,
    _types: PhantomData<fn(A, B)>,
}

impl<A, B, O, FA, FB> TwoInputOperator<A, B> for CoMap<A, B, O, FA, FB>
where
    A: 'static,
    B: 'static,
    O: 'static,
    FA: FnMut(A) -> O + 'static,
    FB: FnMut(B) -> O + 'static,
{
    fn push_first(&mut self, batch: &mut Batch<A>) -> OpResult {
        op_scope::enter(self.operator);
        crate::map::map_batch(&mut self.first, batch, &mut self.out);
        self.down.push(&mut self.out)
    }

    fn push_second(&mut self, batch: &mut Batch<B>) -> OpResult {
        op_scope::enter(self.operator);
        crate::map::map_batch(&mut self.second, batch, &mut self.out);
        self.down.push(&mut self.out)
    }

    fn on_watermark(&mut self, watermark: EventTime) -> OpResult {
        self.down.signal(Signal::Watermark(watermark))
    }

    fn on_status(&mut self, status: StreamStatus) -> OpResult {
        self.down.signal(Signal::Status(status))
    }

    fn on_other(&mut self, _side: Side, signal: Signal) -> OpResult {
        self.down.signal(signal)
    }

    fn on_end(&mut self) -> OpResult {
        self.down.signal(Signal::End)
    }
}
