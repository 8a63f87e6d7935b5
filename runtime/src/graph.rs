//! The logical job graph and how each shard instantiates it.
//!
//! Nodes are added in topological order (a node's inputs always exist already), each with a
//! typed spec hidden behind `NodeSpec`. Every node runs on every shard. Exchanges cut the graph
//! into stages; everything between them is fused: when a shard instantiates the graph it walks
//! the nodes from sinks back to sources, and each node wraps the collectors of its consumers into
//! its own collector, so a stage becomes one nested chain of plain calls. Nodes that no sink
//! consumes are not instantiated.
//!
//! Exchange ordinals (1, 2, … in node order) are the levels that the shard loop's backpressure
//! rule uses: a driver at level L only feeds exchanges with a higher ordinal.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use crate::channel::{ChannelReceiver, ChannelSender, channel};
use crate::checkpoint::state_store::RestoredState;
use crate::checkpoint::{CheckpointControl, Guarantee, Manifest, ShardCheckpoints};
use crate::collector::{BoxCollector, fan_out, union_inputs};
use crate::config::JobConfig;
use crate::element::Batch;
use crate::error::{JobError, OperatorError};
use crate::exchange::{ExchangeSender, Outbox, Receiver, Route};
use crate::metrics::ShardMetrics;
use crate::park::Parker;
use crate::processing_time::ProcessingTimeService;
use crate::shard::{Driver, Pump};
use crate::sink::{
    RestoredCheckpoint, Sink, SinkCheckpointing, SinkCollector, SinkCommit, SinkState,
};
use crate::source::{Source, SourceDriver, SplitContext};
use crate::splits::{MultiSplitReader, RestoredSplits};
use crate::state::checkpointer::StateCheckpointer;
use crate::state::snapshot::KeyGroupState;
use crate::time::Clock;

/// Values that can flow along a stream: moved between shards, cloned for fan-out and broadcast.
pub trait Data: Clone + Send + 'static {}
impl<T: Clone + Send + 'static> Data for T {}

/// Identifies a node of the job graph.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct NodeId(pub u32);

/// What an operator factory sees when it creates the operator for one shard.
pub struct OperatorContext<'a> {
    /// This shard and the shard count.
    pub split: SplitContext,
    /// The job's runtime configuration.
    pub config: &'a JobConfig,
    /// The job clock.
    pub clock: Clock,
    /// The operator's node id, for `op_scope::enter`.
    pub operator: u32,
    /// The operator's name.
    pub name: &'a str,
    /// The shard's processing-time service, for operators with processing-time timers.
    pub processing_time: &'a ProcessingTimeService,
    /// Set when the job checkpoints.
    pub(crate) checkpointing: Option<&'a ShardCheckpointing>,
    /// Keyed state restored from the checkpoint the job started from.
    pub(crate) restored_state: &'a RefCell<RestoredState>,
}

/// What a stateful operator instance starts with: its restored key groups, and the handle that
/// takes its snapshots when the job checkpoints.
#[derive(Debug)]
pub struct KeyedStateStart {
    /// Key groups restored from the checkpoint the job started from (empty on a fresh start).
    pub restored: Vec<KeyGroupState>,
    /// Present when the job checkpoints.
    pub checkpointer: Option<StateCheckpointer>,
    /// The key groups this shard owns.
    pub key_groups: std::ops::Range<u32>,
    /// The job's number of key groups.
    pub max_key_groups: u32,
}

/// Builds one operator instance: given its downstream, returns the collector its input feeds.
pub type OperatorFactory<I, O> = dyn Fn(&OperatorContext<'_>, BoxCollector<O>) -> Result<BoxCollector<I>, OperatorError>
    + Send
    + Sync;

/// Builds one two-input operator instance: given its downstream, returns the collectors of its
/// first and second input (see `two_input::two_inputs`).
pub type TwoInputFactory<A, B, O> = dyn Fn(
        &OperatorContext<'_>,
        BoxCollector<O>,
    ) -> Result<(BoxCollector<A>, BoxCollector<B>), OperatorError>
    + Send
    + Sync;

/// Builds one instance of a two-input operator with a main output `O` and a side output `S`:
/// given both downstreams, returns the collectors of its first and second input.
pub type TwoInputSideFactory<A, B, O, S> = dyn Fn(
        &OperatorContext<'_>,
        BoxCollector<O>,
        BoxCollector<S>,
    ) -> Result<(BoxCollector<A>, BoxCollector<B>), OperatorError>
    + Send
    + Sync;

/// Builds one instance of an operator with a main output `O` and a side output `S`.
pub type SideOperatorFactory<I, O, S> = dyn Fn(
        &OperatorContext<'_>,
        BoxCollector<O>,
        BoxCollector<S>,
    ) -> Result<BoxCollector<I>, OperatorError>
    + Send
    + Sync;

pub(crate) struct Node {
    pub(crate) name: String,
    /// Keeps keyed state in memory that checkpoints do not cover yet.
    pub(crate) stateful: bool,
    /// Keeps keyed state and snapshots it into checkpoints.
    pub(crate) snapshots_state: bool,
    pub(crate) inputs: Vec<NodeId>,
    pub(crate) spec: Box<dyn NodeSpec>,
}

/// A node's behaviour, with its types hidden.
pub(crate) trait NodeSpec: Send + Sync {
    fn is_sink(&self) -> bool {
        false
    }

    /// For exchanges: the channel endpoints of every shard, created before the shards start.
    fn exchange_endpoints(
        &self,
        _config: &JobConfig,
        _parkers: &[Arc<Parker>],
    ) -> Option<Vec<Box<dyn Any + Send>>> {
        None
    }

    /// Instantiates the node on one shard. `outputs` holds a `BoxCollector<Out>` per consumer;
    /// the result holds a `BoxCollector<In_i>` per input, in input order.
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError>;
}

/// The logical graph of a job.
#[derive(Default)]
pub struct JobGraph {
    pub(crate) nodes: Vec<Node>,
}

impl std::fmt::Debug for JobGraph {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.nodes.iter().map(|n| (&n.name, &n.inputs)).collect();
        f.debug_struct("JobGraph").field("nodes", &names).finish()
    }
}

impl JobGraph {
    /// An empty graph.
    pub fn new() -> Self {
        JobGraph::default()
    }

    /// The name of a node.
    pub fn name(&self, node: NodeId) -> &str {
        &self.nodes[node.0 as usize].name
    }

    /// Marks a node as keeping keyed state that it snapshots into checkpoints (its instances
    /// call `OperatorContext::keyed_state`): a checkpointing job gives its shards a store.
    pub fn set_snapshotted_state(&mut self, node: NodeId) {
        self.nodes[node.0 as usize].snapshots_state = true;
    }

    /// True when some node snapshots keyed state.
    pub fn has_snapshotted_state(&self) -> bool {
        self.nodes.iter().any(|n| n.snapshots_state)
    }

    /// Marks a node as keeping keyed state in memory. Unless it is also marked with
    /// [`JobGraph::set_snapshotted_state`], checkpoints do not include that state, so a
    /// checkpointing job with such a node is refused rather than silently restored without it.
    pub fn set_stateful(&mut self, node: NodeId) {
        self.nodes[node.0 as usize].stateful = true;
    }

    /// Renames a node (operator names appear in errors and metrics).
    pub fn set_name(&mut self, node: NodeId, name: impl Into<String>) {
        self.nodes[node.0 as usize].name = name.into();
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// True when the graph has no node.
    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    fn add(
        &mut self,
        name: impl Into<String>,
        inputs: Vec<NodeId>,
        spec: Box<dyn NodeSpec>,
    ) -> NodeId {
        for input in &inputs {
            assert!(
                (input.0 as usize) < self.nodes.len(),
                "input {input:?} does not exist"
            );
        }
        let id = NodeId(self.nodes.len() as u32);
        self.nodes.push(Node {
            name: name.into(),
            stateful: false,
            snapshots_state: false,
            inputs,
            spec,
        });
        id
    }

    /// Adds a parallel source.
    pub fn add_source<T: Data>(
        &mut self,
        name: impl Into<String>,
        source: impl Source<T>,
    ) -> NodeId {
        self.add(
            name,
            vec![],
            Box::new(SourceSpec {
                source,
                _t: PhantomData,
            }),
        )
    }

    /// Adds an operator fused into its input's chain.
    pub fn add_operator<I: Data, O: Data>(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        factory: Box<OperatorFactory<I, O>>,
    ) -> NodeId {
        self.add(name, vec![input], Box::new(OperatorSpec { factory }))
    }

    /// Adds an operator with two inputs (possibly of different types), fused into both inputs'
    /// chains.
    pub fn add_two_input<A: Data, B: Data, O: Data>(
        &mut self,
        name: impl Into<String>,
        first: NodeId,
        second: NodeId,
        factory: Box<TwoInputFactory<A, B, O>>,
    ) -> NodeId {
        self.add(
            name,
            vec![first, second],
            Box::new(TwoInputSpec { factory }),
        )
    }

    /// Adds an operator with two typed outputs, fused into its input's chain: returns the node
    /// of its main output `O` and the node of its side output `S`.
    ///
    /// The side output is a port node whose only input is the operator. When a shard builds
    /// the chain, the port (instantiated first, as it comes later in node order) hands the
    /// collector of its consumers to the operator through the operator's output list, tagged by
    /// its own type; the operator then writes each record to exactly one of its two outputs, so
    /// nothing is cloned. Signals go to both outputs. A port nobody consumes is not
    /// instantiated and the operator's side records are discarded.
    pub fn add_operator_with_side<I: Data, O: Data, S: Data>(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        factory: Box<SideOperatorFactory<I, O, S>>,
    ) -> (NodeId, NodeId) {
        let name = name.into();
        let main = self.add(
            name.clone(),
            vec![input],
            Box::new(TwoOutputSpec { factory }),
        );
        let side = self.add(
            format!("{name}.side"),
            vec![main],
            Box::new(SidePortSpec::<S>(PhantomData)),
        );
        (main, side)
    }

    /// Adds a two-input operator with two typed outputs (keyed co-process functions and joins):
    /// the two-input counterpart of [`JobGraph::add_operator_with_side`], with the same side
    /// port rules. Returns the node of its main output `O` and the node of its side output `S`.
    pub fn add_two_input_with_side<A: Data, B: Data, O: Data, S: Data>(
        &mut self,
        name: impl Into<String>,
        first: NodeId,
        second: NodeId,
        factory: Box<TwoInputSideFactory<A, B, O, S>>,
    ) -> (NodeId, NodeId) {
        let name = name.into();
        let main = self.add(
            name.clone(),
            vec![first, second],
            Box::new(TwoInputTwoOutputSpec { factory }),
        );
        let side = self.add(
            format!("{name}.side"),
            vec![main],
            Box::new(SidePortSpec::<S>(PhantomData)),
        );
        (main, side)
    }

    /// Adds an exchange that redistributes its input across shards; `route` builds each shard's
    /// router. The router's type stays concrete down to the sender, so routing a record is an
    /// inlined call, not a virtual one.
    pub fn add_exchange<T, R, F>(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        route: F,
    ) -> NodeId
    where
        T: Data,
        R: Route<T>,
        F: Fn(SplitContext, &JobConfig) -> R + Send + Sync + 'static,
    {
        self.add(
            name,
            vec![input],
            Box::new(ExchangeSpec {
                route,
                _t: PhantomData,
            }),
        )
    }

    /// Adds a union of streams of the same type.
    pub fn add_union<T: Data>(&mut self, name: impl Into<String>, inputs: Vec<NodeId>) -> NodeId {
        assert!(!inputs.is_empty(), "a union needs inputs");
        self.add(name, inputs, Box::new(UnionSpec::<T>(PhantomData)))
    }

    /// Adds a sink.
    pub fn add_sink<T: Data>(
        &mut self,
        name: impl Into<String>,
        input: NodeId,
        sink: impl Sink<T>,
    ) -> NodeId {
        self.add(
            name,
            vec![input],
            Box::new(SinkSpec {
                sink,
                _t: PhantomData,
            }),
        )
    }

    pub(crate) fn validate_checkpointing(&self) -> Result<(), JobError> {
        let unsnapshotted: Vec<&str> = self
            .nodes
            .iter()
            .filter(|n| n.stateful && !n.snapshots_state)
            .map(|n| n.name.as_str())
            .collect();
        if unsnapshotted.is_empty() {
            return Ok(());
        }
        Err(JobError::Config(format!(
            "operators {unsnapshotted:?} keep keyed state in memory that checkpoints do not snapshot; \
             run this job without checkpoints"
        )))
    }

    pub(crate) fn validate(&self) -> Result<(), JobError> {
        if !self.nodes.iter().any(|n| n.spec.is_sink()) {
            return Err(JobError::Graph(
                "the job has no sink, so nothing would run".into(),
            ));
        }
        Ok(())
    }
}

/// One shard's instantiation state: what the nodes register while the chain is built.
pub(crate) struct ShardBuild {
    pub(crate) split: SplitContext,
    pub(crate) config: Arc<JobConfig>,
    pub(crate) clock: Clock,
    pub(crate) loop_now: Rc<Cell<u64>>,
    pub(crate) metrics: Rc<RefCell<ShardMetrics>>,
    pub(crate) drivers: Vec<Box<dyn Driver>>,
    pub(crate) pumps: Vec<Rc<RefCell<dyn Pump>>>,
    pub(crate) sinks_finished: Vec<Rc<Cell<bool>>>,
    /// Exchange endpoints by node id, taken once by the exchange's `instantiate`.
    pub(crate) endpoints: Vec<Option<Box<dyn Any + Send>>>,
    /// Exchange ordinal by node id (0 for other nodes).
    pub(crate) levels: Vec<u32>,
    pub(crate) names: Arc<Vec<String>>,
    /// Set when the job checkpoints.
    pub(crate) checkpointing: Option<ShardCheckpointing>,
    /// Sinks' commit side, for the loop.
    pub(crate) sink_commits: Vec<Rc<RefCell<dyn SinkCommit>>>,
    pub(crate) processing_time: ProcessingTimeService,
    /// Keyed state restored for this shard's operators, taken by each at instantiation.
    pub(crate) restored_state: RefCell<RestoredState>,
}

/// The checkpoint side of one shard's build.
pub(crate) struct ShardCheckpointing {
    pub(crate) control: Arc<CheckpointControl>,
    pub(crate) shard: Rc<RefCell<ShardCheckpoints>>,
    /// The manifest the job restarts from, if any (a savepoint's: of the job that took it).
    pub(crate) restore: Option<Arc<Manifest>>,
    /// Incremental snapshots being encoded between batches.
    pub(crate) work: Rc<crate::state::background::SnapshotWork>,
    /// The savepoint the job starts from, if any (then `restore` is its manifest).
    pub(crate) savepoint: Option<Arc<crate::checkpoint::savepoint::load::Savepoint>>,
}

/// The positions of source `key`'s splits in `manifest`, gathered from every shard (the job
/// that took it may have had another shard count).
fn restored_splits(manifest: &Manifest, key: &str) -> Result<RestoredSplits, OperatorError> {
    let blobs = manifest
        .per_shard
        .iter()
        .map(|shard| {
            let blob = shard
                .sources
                .iter()
                .find(|b| b.operator == key)
                .ok_or_else(|| {
                    OperatorError::Failed(format!(
                        "the restored checkpoint has no position for source '{key}' on shard {}: \
                         restore a checkpoint of the same job graph",
                        shard.shard
                    ))
                })?;
            blob.bytes()
                .map_err(|e| OperatorError::Failed(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    RestoredSplits::gather(blobs.iter().map(Vec::as_slice))
        .map_err(|e| OperatorError::Failed(format!("source '{key}': {e}")))
}

/// The key of an operator in checkpoint manifests: stable as long as the job graph is.
pub(crate) fn operator_key(node: NodeId, name: &str) -> String {
    format!("{}:{name}", node.0)
}

impl OperatorContext<'_> {
    /// Registers this operator instance as keeping keyed state: returns the state restored for
    /// it and, when the job checkpoints, the checkpointer its snapshots go through. The node
    /// must have been marked with `JobGraph::set_snapshotted_state`. Call it once per instance.
    ///
    /// # Errors
    /// The restored checkpoint holds another operator's state under this node id.
    pub fn keyed_state(&self) -> Result<KeyedStateStart, OperatorError> {
        let key = operator_key(NodeId(self.operator), self.name);
        let restored = self
            .restored_state
            .borrow_mut()
            .take(self.operator, &key)
            .map_err(OperatorError::Failed)?;
        let groups = crate::hash::key_group_range(
            self.split.shard,
            self.config.max_key_groups,
            self.split.shards,
        );
        let checkpointer = self.checkpointing.map(|cp| {
            StateCheckpointer::new(
                self.operator,
                key,
                groups.clone(),
                self.config.max_key_groups,
                Rc::clone(&cp.shard),
                Arc::clone(&cp.control),
                Rc::clone(&cp.work),
            )
        });
        Ok(KeyedStateStart {
            restored,
            checkpointer,
            key_groups: groups,
            max_key_groups: self.config.max_key_groups,
        })
    }

    /// True when the job takes exactly-once checkpoints: multi-input operators must hold back
    /// an input that is past a barrier until the others deliver it.
    pub fn aligns_barriers(&self) -> bool {
        self.config
            .checkpoint
            .as_ref()
            .is_some_and(|c| c.guarantee == Guarantee::ExactlyOnce)
    }
}

impl ShardBuild {
    fn guarantee(&self) -> Guarantee {
        self.config
            .checkpoint
            .as_ref()
            .map_or(Guarantee::ExactlyOnce, |c| c.guarantee)
    }

    fn context(&self, node: NodeId) -> OperatorContext<'_> {
        OperatorContext {
            split: self.split,
            config: &self.config,
            clock: self.clock,
            operator: node.0,
            name: &self.names[node.0 as usize],
            processing_time: &self.processing_time,
            checkpointing: self.checkpointing.as_ref(),
            restored_state: &self.restored_state,
        }
    }
}

fn downcast_outputs<T: Data>(outputs: Vec<Box<dyn Any>>) -> Vec<BoxCollector<T>> {
    outputs
        .into_iter()
        .map(|o| {
            *o.downcast::<BoxCollector<T>>()
                .expect("graph wiring: output type matches its node")
        })
        .collect()
}

fn erase<T: Data>(collector: BoxCollector<T>) -> Box<dyn Any> {
    Box::new(collector)
}

struct SourceSpec<T, S> {
    source: S,
    _t: PhantomData<fn() -> T>,
}

impl<T: Data, S: Source<T>> NodeSpec for SourceSpec<T, S> {
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let down = fan_out(downcast_outputs::<T>(outputs));
        crate::op_scope::enter(node.0);
        let key = operator_key(node, &build.names[node.0 as usize]);
        let restored = match build
            .checkpointing
            .as_ref()
            .and_then(|c| c.restore.as_ref())
        {
            Some(manifest) => Some(restored_splits(manifest, &key)?),
            None => None,
        };
        let splits = match (&restored, build.config.source_splits) {
            (Some(r), Some(configured)) if r.splits != configured => {
                return Err(OperatorError::Failed(format!(
                    "the restored checkpoint read source '{key}' in {} splits, the job asks for \
                     {configured}: a restored job keeps its split count",
                    r.splits
                )));
            }
            (Some(r), _) => r.splits,
            (None, configured) => configured.unwrap_or(build.split.shards),
        };
        let mut readers = Vec::new();
        for split in crate::splits::owned_splits(build.split.shard, build.split.shards, splits) {
            let context = MultiSplitReader::<T>::split_context(split, splits);
            let mut reader = self.source.create_reader(context)?;
            if let Some(restored) = &restored {
                let position = restored.positions.get(&split).ok_or_else(|| {
                    OperatorError::Failed(format!(
                        "the restored checkpoint has no position for split {split} of source '{key}'"
                    ))
                })?;
                reader.restore(position)?;
            }
            readers.push((split, reader));
        }
        let reader: Box<dyn crate::source::SourceReader<T>> =
            Box::new(MultiSplitReader::new(splits, readers));
        build.drivers.push(Box::new(SourceDriver {
            operator: node.0,
            key,
            reader,
            down,
            batch: Batch::with_capacity(build.config.batch_records),
            batch_records: build.config.batch_records,
            finished: false,
            last_tick_ns: 0,
            watermark: crate::time::NO_TIMESTAMP,
            idle: false,
            metrics: Rc::clone(&build.metrics),
        }));
        Ok(vec![])
    }
}

struct OperatorSpec<I, O> {
    factory: Box<OperatorFactory<I, O>>,
}

impl<I: Data, O: Data> NodeSpec for OperatorSpec<I, O> {
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let down = fan_out(downcast_outputs::<O>(outputs));
        crate::op_scope::enter(node.0);
        let input = (self.factory)(&build.context(node), down)?;
        Ok(vec![erase(input)])
    }
}

struct TwoInputSpec<A, B, O> {
    factory: Box<TwoInputFactory<A, B, O>>,
}

impl<A: Data, B: Data, O: Data> NodeSpec for TwoInputSpec<A, B, O> {
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let down = fan_out(downcast_outputs::<O>(outputs));
        crate::op_scope::enter(node.0);
        let (first, second) = (self.factory)(&build.context(node), down)?;
        Ok(vec![erase(first), erase(second)])
    }
}

struct TwoOutputSpec<I, O, S> {
    factory: Box<SideOperatorFactory<I, O, S>>,
}

/// The collector of a side-output port's consumers, on its way to the port's operator.
struct SidePort<S>(BoxCollector<S>);

impl<I: Data, O: Data, S: Data> NodeSpec for TwoOutputSpec<I, O, S> {
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let (main, side) = split_side_port::<O, S>(outputs);
        crate::op_scope::enter(node.0);
        let input = (self.factory)(&build.context(node), main, side)?;
        Ok(vec![erase(input)])
    }
}

/// Separates the consumers of a two-output node: the side port (if consumed) from the main
/// output's consumers.
fn split_side_port<O: Data, S: Data>(
    outputs: Vec<Box<dyn Any>>,
) -> (BoxCollector<O>, BoxCollector<S>) {
    let mut main = Vec::new();
    let mut side = Vec::new();
    for output in outputs {
        match output.downcast::<SidePort<S>>() {
            Ok(port) => side.push(port.0),
            Err(other) => main.push(
                *other
                    .downcast::<BoxCollector<O>>()
                    .expect("graph wiring: output type matches its node"),
            ),
        }
    }
    assert!(side.len() <= 1, "a node has one side-output port");
    (fan_out(main), fan_out(side))
}

struct TwoInputTwoOutputSpec<A, B, O, S> {
    factory: Box<TwoInputSideFactory<A, B, O, S>>,
}

impl<A: Data, B: Data, O: Data, S: Data> NodeSpec for TwoInputTwoOutputSpec<A, B, O, S> {
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let (main, side) = split_side_port::<O, S>(outputs);
        crate::op_scope::enter(node.0);
        let (first, second) = (self.factory)(&build.context(node), main, side)?;
        Ok(vec![erase(first), erase(second)])
    }
}

struct SidePortSpec<S>(PhantomData<fn() -> S>);

impl<S: Data> NodeSpec for SidePortSpec<S> {
    fn instantiate(
        &self,
        _build: &mut ShardBuild,
        _node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let down = fan_out(downcast_outputs::<S>(outputs));
        Ok(vec![Box::new(SidePort(down)) as Box<dyn Any>])
    }
}

/// One shard's endpoints of an exchange: senders to every shard, receivers from every shard.
type Endpoints<T> = (Vec<ChannelSender<T>>, Vec<ChannelReceiver<T>>);

struct ExchangeSpec<T, F> {
    route: F,
    _t: PhantomData<fn(T)>,
}

impl<T, R, F> NodeSpec for ExchangeSpec<T, F>
where
    T: Data,
    R: Route<T>,
    F: Fn(SplitContext, &JobConfig) -> R + Send + Sync + 'static,
{
    fn exchange_endpoints(
        &self,
        config: &JobConfig,
        parkers: &[Arc<Parker>],
    ) -> Option<Vec<Box<dyn Any + Send>>> {
        let n = config.shards;
        let mut senders: Vec<Vec<ChannelSender<T>>> =
            (0..n).map(|_| Vec::with_capacity(n)).collect();
        let mut receivers: Vec<Vec<Option<ChannelReceiver<T>>>> =
            (0..n).map(|_| (0..n).map(|_| None).collect()).collect();
        for (from, senders_from) in senders.iter_mut().enumerate() {
            for (to, receivers_to) in receivers.iter_mut().enumerate() {
                let (tx, rx) = channel(
                    config.ring_capacity,
                    Arc::clone(&parkers[from]),
                    Arc::clone(&parkers[to]),
                );
                senders_from.push(tx);
                receivers_to[from] = Some(rx);
            }
        }
        Some(
            senders
                .into_iter()
                .zip(receivers)
                .map(|(tx, rx)| {
                    let rx: Vec<_> = rx
                        .into_iter()
                        .map(|r| r.expect("every pair has a channel"))
                        .collect();
                    Box::new((tx, rx)) as Box<dyn Any + Send>
                })
                .collect(),
        )
    }

    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let down = fan_out(downcast_outputs::<T>(outputs));
        let endpoints = build.endpoints[node.0 as usize]
            .take()
            .expect("exchange endpoints are taken once");
        if build.split.shards == 1 {
            // With one shard every route leads back here: skip the ring (as timely does) and
            // fuse the exchange's upstream and downstream chains.
            return Ok(vec![erase::<T>(down)]);
        }
        let (senders, receivers) = *endpoints
            .downcast::<Endpoints<T>>()
            .expect("exchange endpoint type");
        let level = build.levels[node.0 as usize];
        debug_assert!(level > 0);
        let outbox = Rc::new(RefCell::new(Outbox::new(
            level,
            senders,
            build.config.batch_records,
            Rc::clone(&build.loop_now),
        )));
        build
            .pumps
            .push(Rc::clone(&outbox) as Rc<RefCell<dyn Pump>>);
        build.drivers.push(Box::new(Receiver::new(
            level,
            node.0,
            receivers,
            down,
            build.guarantee(),
        )));
        let route = (self.route)(build.split, &build.config);
        Ok(vec![erase::<T>(Box::new(ExchangeSender::new(
            outbox, route,
        )))])
    }
}

struct UnionSpec<T>(PhantomData<fn() -> T>);

impl<T: Data> NodeSpec for UnionSpec<T> {
    fn instantiate(
        &self,
        build: &mut ShardBuild,
        _node: NodeId,
        inputs: usize,
        outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        let down = fan_out(downcast_outputs::<T>(outputs));
        let block =
            build.config.checkpoint.is_some() && build.guarantee() == Guarantee::ExactlyOnce;
        Ok(union_inputs(down, inputs, block)
            .into_iter()
            .map(erase)
            .collect())
    }
}

struct SinkSpec<T, S> {
    sink: S,
    _t: PhantomData<fn(T)>,
}

impl<T: Data, S: Sink<T>> NodeSpec for SinkSpec<T, S> {
    fn is_sink(&self) -> bool {
        true
    }

    fn instantiate(
        &self,
        build: &mut ShardBuild,
        node: NodeId,
        _inputs: usize,
        _outputs: Vec<Box<dyn Any>>,
    ) -> Result<Vec<Box<dyn Any>>, OperatorError> {
        crate::op_scope::enter(node.0);
        let mut writer = self.sink.create_writer(build.split)?;
        let key = operator_key(node, &build.names[node.0 as usize]);
        let finished = Rc::new(Cell::new(false));
        build.sinks_finished.push(Rc::clone(&finished));
        let mut restored_checkpoint = 0;
        let checkpointing = match &build.checkpointing {
            Some(cp) => {
                let restored = cp.restore.as_ref().map(|m| {
                    // Shard `o` of the job that took the checkpoint is adopted by shard
                    // `o mod shards`: with another shard count every old shard's output is
                    // still resolved exactly once.
                    let adopted_shards: Vec<usize> = (0..m.shards)
                        .filter(|o| o % build.split.shards == build.split.shard)
                        .collect();
                    RestoredCheckpoint {
                        checkpoint: m.checkpoint,
                        finished: m.finished,
                        transactions: m
                            .per_shard
                            .iter()
                            .filter(|p| adopted_shards.contains(&p.shard))
                            .flat_map(|p| p.sinks.iter())
                            .filter(|b| b.operator == key)
                            .filter_map(|b| b.bytes().ok())
                            .collect(),
                        adopted_shards,
                    }
                });
                restored_checkpoint = restored.as_ref().map_or(0, |r| r.checkpoint);
                writer.recover(restored.as_ref())?;
                cp.shard.borrow_mut().register_sink();
                Some(SinkCheckpointing {
                    shard: Rc::clone(&cp.shard),
                    control: Arc::clone(&cp.control),
                })
            }
            None => None,
        };
        let state = Rc::new(RefCell::new(SinkState::new(
            key,
            writer,
            restored_checkpoint,
        )));
        build
            .sink_commits
            .push(Rc::clone(&state) as Rc<RefCell<dyn SinkCommit>>);
        let collector: BoxCollector<T> = Box::new(SinkCollector {
            operator: node.0,
            state,
            metrics: Rc::clone(&build.metrics),
            clock: build.clock,
            finished,
            checkpointing,
        });
        Ok(vec![erase(collector)])
    }
}
