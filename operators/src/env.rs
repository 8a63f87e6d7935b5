//! `Env`: the job builder a user starts from, and its configuration.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use corestrom_runtime::checkpoint::CheckpointConfig;
use corestrom_runtime::{
    JobConfig, JobError, JobGraph, JobHandle, JobReport, Pinning, Source, SplitContext,
};

use crate::source::{IterSource, VecSource};
use crate::stream::Stream;

/// Builds an [`Env`] with runtime settings.
#[derive(Clone, Debug, Default)]
pub struct EnvBuilder {
    config: JobConfig,
    from_savepoint: Option<std::path::PathBuf>,
}

impl EnvBuilder {
    /// Number of shards (threads with their own executor); default: the available cores. More
    /// shards than cores is allowed (the shards are then not pinned).
    pub fn shards(mut self, shards: usize) -> Self {
        self.config.shards = shards;
        self
    }

    /// Number of key groups for `key_by` (default 128, at least the shard count).
    pub fn max_key_groups(mut self, groups: u32) -> Self {
        self.config.max_key_groups = groups;
        self
    }

    /// Records per batch (default 1024).
    pub fn batch_records(mut self, records: usize) -> Self {
        self.config.batch_records = records;
        self
    }

    /// Batches per ring between two shards (default 32).
    pub fn ring_capacity(mut self, batches: usize) -> Self {
        self.config.ring_capacity = batches;
        self
    }

    /// Longest time a partial batch waits before it is sent (default 100 µs).
    pub fn max_batch_delay(mut self, delay: Duration) -> Self {
        self.config.max_batch_delay = delay;
        self
    }

    /// How long an idle shard polls before it parks (default 50 µs).
    pub fn spin_before_park(mut self, spin: Duration) -> Self {
        self.config.spin_before_park = spin;
        self
    }

    /// Takes an exactly-once checkpoint every `interval` into `state_dir`, and resumes from the
    /// newest complete checkpoint there when the job starts (see `corestrom_runtime::checkpoint`).
    pub fn checkpoint_every(
        mut self,
        interval: Duration,
        state_dir: impl Into<std::path::PathBuf>,
    ) -> Self {
        self.config.checkpoint = Some(CheckpointConfig::new(interval, state_dir));
        self
    }

    /// Full checkpoint settings (guarantee, retained checkpoints).
    pub fn checkpointing(mut self, checkpoint: CheckpointConfig) -> Self {
        self.config.checkpoint = Some(checkpoint);
        self
    }

    /// Splits of every source (default: the shard count when the job first starts). A job
    /// restored from a checkpoint or savepoint keeps the count it was taken with, so its
    /// sources read the same records whatever the shard count.
    pub fn source_splits(mut self, splits: usize) -> Self {
        self.config.source_splits = Some(splits);
        self
    }

    /// Starts from the savepoint in `dir` (see `corestrom_runtime::checkpoint::savepoint`),
    /// with this builder's shard count, when the state directory holds no checkpoint yet.
    /// Needs checkpointing: call it after `checkpoint_every` or `checkpointing`.
    pub fn from_savepoint(mut self, dir: impl Into<std::path::PathBuf>) -> Self {
        self.from_savepoint = Some(dir.into());
        self
    }

    /// Core pinning (default `Pinning::Auto`).
    pub fn pinning(mut self, pinning: Pinning) -> Self {
        self.config.pinning = pinning;
        self
    }

    /// Checks the settings and creates the environment.
    ///
    /// # Errors
    /// `JobError::Config` naming the invalid setting.
    pub fn build(mut self) -> Result<Env, JobError> {
        if let Some(dir) = self.from_savepoint.take() {
            let checkpoint = self.config.checkpoint.as_mut().ok_or_else(|| {
                JobError::Config(
                    "from_savepoint needs checkpointing (a state directory) to be set first".into(),
                )
            })?;
            checkpoint.from_savepoint = Some(dir);
        }
        self.config.validate()?;
        Ok(Env {
            inner: Rc::new(RefCell::new(EnvInner {
                graph: JobGraph::new(),
                config: self.config,
            })),
        })
    }
}

pub(crate) struct EnvInner {
    pub(crate) graph: JobGraph,
    pub(crate) config: JobConfig,
}

/// The environment a job is built in: add sources, transform the streams, add sinks, execute.
///
/// `Env` is cheap to clone (all clones build the same job) and stays on the thread that builds
/// the job; user functions are cloned into every shard when the job starts.
#[derive(Clone)]
pub struct Env {
    pub(crate) inner: Rc<RefCell<EnvInner>>,
}

impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inner = self.inner.borrow();
        f.debug_struct("Env")
            .field("config", &inner.config)
            .field("graph", &inner.graph)
            .finish()
    }
}

impl Env {
    /// A builder with default settings.
    pub fn builder() -> EnvBuilder {
        EnvBuilder::default()
    }

    /// The runtime settings.
    pub fn config(&self) -> JobConfig {
        self.inner.borrow().config.clone()
    }

    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inner.borrow().config.shards
    }

    /// Adds a parallel source (one reader per source split; see `source_splits`).
    pub fn source<T: corestrom_runtime::Data>(
        &self,
        name: &str,
        source: impl Source<T>,
    ) -> Stream<T> {
        let node = self.inner.borrow_mut().graph.add_source(name, source);
        Stream::new(self.clone(), node)
    }

    /// A source with one iterator per split (by default one per shard): `make(split)` builds
    /// split `split.shard`'s iterator. Bounded if the iterators end, unbounded if they do not.
    pub fn from_iter<T, I, F>(&self, make: F) -> Stream<T>
    where
        T: corestrom_runtime::Data,
        I: IntoIterator<Item = T>,
        I::IntoIter: 'static,
        F: Fn(SplitContext) -> I + Send + Sync + 'static,
    {
        self.source("iterator source", IterSource::new(make))
    }

    /// A bounded source over a vector, split into one contiguous chunk per shard.
    pub fn from_vec<T: corestrom_runtime::Data>(&self, items: Vec<T>) -> Stream<T> {
        let shards = self.shards();
        self.source("vector source", VecSource::new(items, shards))
    }

    /// Starts the job built so far and leaves the environment empty for another job.
    ///
    /// # Errors
    /// An invalid graph (no sink) or a shard that could not start.
    pub fn execute(&self) -> Result<JobHandle, JobError> {
        let (graph, config) = {
            let mut inner = self.inner.borrow_mut();
            (std::mem::take(&mut inner.graph), inner.config.clone())
        };
        corestrom_runtime::execute(graph, config)
    }

    /// Runs the job to completion (bounded sources) and returns what it measured.
    ///
    /// # Errors
    /// The first failure of any shard, naming the operator and shard.
    pub fn execute_and_wait(&self) -> Result<JobReport, JobError> {
        self.execute()?.wait()
    }
}
