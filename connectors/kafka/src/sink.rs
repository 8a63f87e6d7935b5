//! `KafkaSink`: writes a stream to a topic, at-least-once or exactly-once.
//!
//! * **At-least-once**: an idempotent producer per shard; records are handed to librdkafka as
//!   they come (its threads batch and send them), and at every barrier the writer flushes, so
//!   a completed checkpoint covers only acknowledged records. A failed delivery fails the job.
//! * **Exactly-once**: per shard, records of the epoch between two barriers are appended to a
//!   local write-ahead file ([`crate::staged_epochs`]); the barrier of checkpoint `C` fsyncs it
//!   as `C`'s file (pre-commit) and the manifest records `C`. When `C` is complete, a committer
//!   thread sends the file in one Kafka transaction of the shard's stable
//!   `transactional.id` (`corestrom-<job>-<shard>`), together with the commit marker
//!   ([`crate::transactional`]), so nothing of `C` is visible to `read_committed` consumers
//!   before the checkpoint is complete, and all of it after. Recovery from checkpoint `R`
//!   fences the previous producer, re-sends every staged epoch `C ≤ R` above the marker, and
//!   deletes staged epochs after `R` (their records are replayed by the sources).
//!
//! The shard never waits on the network in exactly-once mode: appends are buffered file
//! writes, commits are handed to the committer thread through a channel, and a committer
//! failure is seen through an atomic flag at the next batch. Without checkpoints, exactly-once
//! mode commits everything in one transaction when the stream ends.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use corestrom_runtime::sink::{RestoredCheckpoint, Sink, SinkWriter};
use corestrom_runtime::source::SplitContext;
use corestrom_runtime::{CheckpointId, OpResult, OperatorError, Record};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::connection::KafkaConnection;
use crate::delivery::DeliveryRecorder;
use crate::error::{KafkaConnectorError, client};
use crate::staged_epochs::StagedEpochs;
use crate::transactional::TransactionalProducer;

/// One output record, filled by the user's serializer. Its buffers are reused from record to
/// record, so serializing allocates nothing once they have grown.
#[derive(Debug, Default)]
pub struct KafkaOutput {
    key: Vec<u8>,
    has_key: bool,
    value: Vec<u8>,
    partition: Option<i32>,
}

impl KafkaOutput {
    fn clear(&mut self) {
        self.key.clear();
        self.value.clear();
        self.has_key = false;
        self.partition = None;
    }

    /// The key's buffer (empty); using it gives the record a key, which the partitioner hashes.
    pub fn key(&mut self) -> &mut Vec<u8> {
        self.has_key = true;
        &mut self.key
    }

    /// The value's buffer (empty).
    pub fn value(&mut self) -> &mut Vec<u8> {
        &mut self.value
    }

    /// Sends the record to this partition instead of the partitioner's choice.
    pub fn set_partition(&mut self, partition: i32) {
        self.partition = Some(partition);
    }

    fn key_bytes(&self) -> Option<&[u8]> {
        self.has_key.then_some(self.key.as_slice())
    }
}

type Serializer<T> = dyn Fn(&T, &mut KafkaOutput) + Send + Sync;

/// The sink's guarantee.
#[derive(Clone, Debug)]
enum Guarantee {
    AtLeastOnce,
    ExactlyOnce { job: String, staging: PathBuf },
}

/// Writes to one topic; see the module doc.
pub struct KafkaSink<T> {
    connection: KafkaConnection,
    topic: String,
    serialize: Arc<Serializer<T>>,
    guarantee: Guarantee,
    event_time_timestamps: bool,
}

/// A staged record without its own timestamp: stamped when it is produced.
const NO_TIMESTAMP: i64 = -1;

/// Milliseconds since the epoch: the timestamp of records produced now. Set explicitly because
/// a record sent without one reaches the broker as "no timestamp" (-1), which retention can
/// treat as infinitely old (noida-db 0.2.3 deleted such records at once).
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl<T> std::fmt::Debug for KafkaSink<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSink")
            .field("brokers", &self.connection.brokers())
            .field("topic", &self.topic)
            .field("guarantee", &self.guarantee)
            .finish_non_exhaustive()
    }
}

impl<T: 'static> KafkaSink<T> {
    /// At-least-once to `topic`: flushed at every checkpoint barrier.
    pub fn at_least_once(
        connection: KafkaConnection,
        topic: &str,
        serialize: impl Fn(&T, &mut KafkaOutput) + Send + Sync + 'static,
    ) -> KafkaSink<T> {
        KafkaSink {
            connection,
            topic: topic.to_string(),
            serialize: Arc::new(serialize),
            guarantee: Guarantee::AtLeastOnce,
            event_time_timestamps: false,
        }
    }

    /// Exactly-once to `topic` with Kafka transactions. `job` names the job stably across
    /// restarts (it makes the `transactional.id`s; two jobs writing at once need different
    /// names); `staging` holds the epochs until their transactions commit (keep it with the
    /// job's state directory).
    pub fn exactly_once(
        connection: KafkaConnection,
        topic: &str,
        job: &str,
        staging: &Path,
        serialize: impl Fn(&T, &mut KafkaOutput) + Send + Sync + 'static,
    ) -> KafkaSink<T> {
        KafkaSink {
            connection,
            topic: topic.to_string(),
            serialize: Arc::new(serialize),
            guarantee: Guarantee::ExactlyOnce {
                job: job.to_string(),
                staging: staging.to_path_buf(),
            },
            event_time_timestamps: false,
        }
    }

    /// Gives each Kafka record its event time as timestamp (by default: the time it is
    /// produced; exactly-once: when its transaction is sent). Beware: a broker deletes records by timestamp under
    /// time-based retention, so event times further back than `retention.ms` (replayed
    /// history, Nexmark's synthetic times) are deleted as soon as they are written.
    #[must_use]
    pub fn timestamps_from_event_time(mut self) -> KafkaSink<T> {
        self.event_time_timestamps = true;
        self
    }
}

/// The `transactional.id` of a job's shard.
pub fn transactional_id(job: &str, shard: usize) -> String {
    format!("corestrom-{job}-{shard}")
}

impl<T: 'static> Sink<T> for KafkaSink<T> {
    fn create_writer(&self, split: SplitContext) -> Result<Box<dyn SinkWriter<T>>, OperatorError> {
        match &self.guarantee {
            Guarantee::AtLeastOnce => {
                let producer = self
                    .connection
                    .config(&[("enable.idempotence", "true"), ("linger.ms", "5")])
                    .create_with_context(DeliveryRecorder::default())
                    .map_err(client("creating a producer"))?;
                Ok(Box::new(AtLeastOnceWriter {
                    producer,
                    topic: self.topic.clone(),
                    serialize: Arc::clone(&self.serialize),
                    out: KafkaOutput::default(),
                    timeout: self.connection.setup_timeout(),
                    event_time_timestamps: self.event_time_timestamps,
                }))
            }
            Guarantee::ExactlyOnce { job, staging } => Ok(Box::new(ExactlyOnceWriter {
                shard: split.shard,
                connection: self.connection.clone(),
                topic: self.topic.clone(),
                transactional_id: transactional_id(job, split.shard),
                staged: StagedEpochs::open(&staging.join(job), split.shard)?,
                serialize: Arc::clone(&self.serialize),
                out: KafkaOutput::default(),
                committer: None,
                checkpointing: false,
                next_unchecked: 1,
                event_time_timestamps: self.event_time_timestamps,
            })),
        }
    }
}

/// Hands a record to librdkafka, serving delivery reports while its queue is full (the
/// backpressure of a producer that cannot keep up; the same pause as a full ring).
fn send_with_backpressure<C: rdkafka::producer::ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    topic: &str,
    ts: i64,
    out: &KafkaOutput,
) -> Result<(), KafkaConnectorError> {
    let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
        .payload(out.value.as_slice())
        .timestamp(ts);
    if let Some(key) = out.key_bytes() {
        record = record.key(key);
    }
    if let Some(partition) = out.partition {
        record = record.partition(partition);
    }
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                producer.poll(Duration::from_millis(1));
                record = back;
            }
            Err((e, _)) => return Err(client(format!("sending to '{topic}'"))(e)),
        }
    }
}

/// At-least-once: produce directly, flush at barriers.
struct AtLeastOnceWriter<T> {
    producer: BaseProducer<DeliveryRecorder>,
    topic: String,
    serialize: Arc<Serializer<T>>,
    out: KafkaOutput,
    timeout: Duration,
    event_time_timestamps: bool,
}

impl<T> AtLeastOnceWriter<T> {
    fn check(&self) -> Result<(), KafkaConnectorError> {
        let recorder = self.producer.context();
        if recorder.failed() > 0 {
            return Err(KafkaConnectorError::Delivery {
                topic: self.topic.clone(),
                failed: recorder.failed(),
                first: recorder.first_failure().unwrap_or_default(),
            });
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), KafkaConnectorError> {
        self.producer
            .flush(self.timeout)
            .map_err(client(format!("flushing '{}'", self.topic)))?;
        self.check()
    }
}

impl<T: 'static> SinkWriter<T> for AtLeastOnceWriter<T> {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        let now = now_ms(); // once per batch
        for record in records.iter() {
            self.out.clear();
            (self.serialize)(&record.value, &mut self.out);
            let ts = if self.event_time_timestamps {
                record.ts
            } else {
                now
            };
            send_with_backpressure(&self.producer, &self.topic, ts, &self.out)?;
        }
        self.producer.poll(Duration::ZERO);
        Ok(self.check()?)
    }

    fn prepare_commit(&mut self, _checkpoint: CheckpointId) -> Result<Vec<u8>, OperatorError> {
        self.flush()?;
        Ok(Vec::new())
    }

    fn finish(&mut self) -> OpResult {
        Ok(self.flush()?)
    }
}

enum CommitRequest {
    Commit(u64),
    Stop,
}

/// The thread that commits staged epochs, and how the shard sees its failure.
struct Committer {
    requests: mpsc::Sender<CommitRequest>,
    thread: Option<std::thread::JoinHandle<()>>,
    failed: Arc<AtomicBool>,
    error: Arc<Mutex<Option<String>>>,
    shard: usize,
}

impl Committer {
    fn spawn(
        producer: TransactionalProducer,
        staged_dir: StagedPaths,
        mut marker: u64,
        shard: usize,
    ) -> Committer {
        let (requests, inbox) = mpsc::channel();
        let failed = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (thread_failed, thread_error) = (Arc::clone(&failed), Arc::clone(&error));
        let thread = std::thread::Builder::new()
            .name(format!("kafka-commit-{shard}"))
            .spawn(move || {
                while let Ok(CommitRequest::Commit(checkpoint)) = inbox.recv() {
                    if checkpoint <= marker {
                        continue;
                    }
                    let result = commit_staged(&producer, &staged_dir, checkpoint);
                    if let Err(e) = result {
                        *thread_error.lock().unwrap_or_else(|p| p.into_inner()) =
                            Some(e.to_string());
                        thread_failed.store(true, Ordering::Release);
                        return;
                    }
                    marker = checkpoint;
                }
            })
            .expect("spawning the Kafka committer thread");
        Committer {
            requests,
            thread: Some(thread),
            failed,
            error,
            shard,
        }
    }

    fn check(&self) -> Result<(), KafkaConnectorError> {
        if self.failed.load(Ordering::Acquire) {
            return Err(self.failure());
        }
        Ok(())
    }

    fn failure(&self) -> KafkaConnectorError {
        KafkaConnectorError::Committer {
            shard: self.shard,
            message: self
                .error
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
                .unwrap_or_else(|| "stopped".into()),
        }
    }

    fn request(&self, checkpoint: u64) -> Result<(), KafkaConnectorError> {
        self.check()?;
        self.requests
            .send(CommitRequest::Commit(checkpoint))
            .map_err(|_| self.failure())
    }

    /// Waits until every requested commit is done (end of the job only).
    fn stop(&mut self) -> Result<(), KafkaConnectorError> {
        let _ = self.requests.send(CommitRequest::Stop);
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            return Err(KafkaConnectorError::Committer {
                shard: self.shard,
                message: "panicked".into(),
            });
        }
        self.check()
    }
}

impl Drop for Committer {
    fn drop(&mut self) {
        // A failed job does not wait for outstanding commits: recovery redoes them.
        let _ = self.requests.send(CommitRequest::Stop);
    }
}

/// Where a shard's staged files are, for the committer thread (which does not own them).
#[derive(Clone)]
struct StagedPaths {
    staged: Arc<dyn Fn(u64) -> PathBuf + Send + Sync>,
}

fn commit_staged(
    producer: &TransactionalProducer,
    paths: &StagedPaths,
    checkpoint: u64,
) -> Result<(), KafkaConnectorError> {
    let path = (paths.staged)(checkpoint);
    producer.commit_epoch(checkpoint, &path)?;
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(KafkaConnectorError::Staging {
            what: "removing committed",
            path,
            source: e,
        }),
        _ => Ok(()),
    }
}

/// Exactly-once: stage, pre-commit at barriers, commit in a transaction when complete.
struct ExactlyOnceWriter<T> {
    shard: usize,
    connection: KafkaConnection,
    topic: String,
    transactional_id: String,
    staged: StagedEpochs,
    serialize: Arc<Serializer<T>>,
    out: KafkaOutput,
    committer: Option<Committer>,
    /// True once `recover` ran: the runtime drives prepare and commit.
    checkpointing: bool,
    /// Without checkpoints: the epoch id the final commit uses (above the marker).
    next_unchecked: u64,
    event_time_timestamps: bool,
}

impl<T> ExactlyOnceWriter<T> {
    /// Fences the previous producer, resolves staged epochs against the restored checkpoint
    /// `restored` (0: none), and starts the committer.
    fn start(&mut self, restored: u64) -> Result<(), KafkaConnectorError> {
        let producer =
            TransactionalProducer::open(&self.connection, &self.topic, &self.transactional_id)?;
        let mut marker = producer.committed_marker()?;
        for checkpoint in self.staged.list()? {
            if checkpoint <= marker || checkpoint > restored {
                self.staged.remove(checkpoint)?;
            } else {
                producer.commit_epoch(checkpoint, &self.staged.staged_path(checkpoint))?;
                self.staged.remove(checkpoint)?;
                marker = checkpoint;
            }
        }
        self.next_unchecked = marker.max(restored) + 1;
        let root = self.staged.staged_path(0);
        let dir = root
            .parent()
            .expect("staged files live in a directory")
            .to_path_buf();
        let paths = StagedPaths {
            staged: Arc::new(move |c| dir.join(format!("{c:020}.staged"))),
        };
        self.committer = Some(Committer::spawn(producer, paths, marker, self.shard));
        Ok(())
    }

    fn committer(&mut self) -> Result<&mut Committer, KafkaConnectorError> {
        if self.committer.is_none() {
            // No checkpoints: nothing to restore; stale staged files belong to no run.
            self.start(0)?;
        }
        Ok(self.committer.as_mut().expect("started"))
    }
}

impl<T: 'static> SinkWriter<T> for ExactlyOnceWriter<T> {
    fn write(&mut self, records: &mut Vec<Record<T>>) -> OpResult {
        self.committer()?.check()?;
        for record in records.iter() {
            self.out.clear();
            (self.serialize)(&record.value, &mut self.out);
            self.staged.append(
                if self.event_time_timestamps {
                    record.ts
                } else {
                    NO_TIMESTAMP
                },
                self.out.partition.unwrap_or(-1),
                self.out.key_bytes(),
                &self.out.value,
            )?;
        }
        Ok(())
    }

    fn prepare_commit(&mut self, checkpoint: CheckpointId) -> Result<Vec<u8>, OperatorError> {
        self.committer()?.check()?;
        if self.staged.prepare(checkpoint.0)? {
            Ok(checkpoint.0.to_le_bytes().to_vec())
        } else {
            Ok(Vec::new())
        }
    }

    fn commit(&mut self, transaction: &[u8]) -> OpResult {
        let checkpoint = <[u8; 8]>::try_from(transaction)
            .map(u64::from_le_bytes)
            .map_err(|_| {
                OperatorError::Failed(format!(
                    "a Kafka sink transaction is 8 bytes, got {}",
                    transaction.len()
                ))
            })?;
        Ok(self.committer()?.request(checkpoint)?)
    }

    fn recover(&mut self, restored: Option<&RestoredCheckpoint>) -> OpResult {
        self.checkpointing = true;
        Ok(self.start(restored.map_or(0, |r| r.checkpoint))?)
    }

    fn finish(&mut self) -> OpResult {
        if !self.checkpointing && self.staged.pending_records() > 0 {
            let epoch = self.next_unchecked;
            self.staged.prepare(epoch)?;
            self.committer()?.request(epoch)?;
        }
        Ok(self.committer()?.stop()?)
    }
}
