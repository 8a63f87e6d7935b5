//! `connect`: two streams of possibly different types feeding one operator (Flink's
//! `ConnectedStreams`), the basis of co-process functions and joins.
//!
//! `key_by` on connected streams partitions both inputs by keys of the same type with the same
//! stable hash, so records with equal keys from either side meet on the same shard.

use std::hash::Hash;
use std::marker::PhantomData;

use corestrom_runtime::two_input::{Side, TwoInputOperator, two_inputs};
use corestrom_runtime::{
    Batch, BoxCollector, Data, EventTime, OpResult, OperatorContext, Signal, StableHash,
    StreamStatus, op_scope,
};

use crate::stream::Stream;

/// Two streams connected for a two-input operator.
pub struct ConnectedStreams<A, B> {
    first: Stream<A>,
    second: Stream<B>,
}

impl<A: Data, B: Data> ConnectedStreams<A, B> {
    pub(crate) fn new(first: Stream<A>, second: Stream<B>) -> Self {
        ConnectedStreams { first, second }
    }

    /// Partitions both inputs by key so equal keys meet on one shard.
    pub fn key_by<K, KA, KB>(&self, key_first: KA, key_second: KB) -> ConnectedStreams<A, B>
    where
        K: StableHash + Eq + Hash + Clone + Send + 'static,
        KA: Fn(&A) -> K + Clone + Send + Sync + 'static,
        KB: Fn(&B) -> K + Clone + Send + Sync + 'static,
    {
        ConnectedStreams {
            first: self.first.key_by(key_first).stream(),
            second: self.second.key_by(key_second).stream(),
        }
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
