//! `KafkaSource`: reads topics into a job, one reader per shard, replayable from checkpoints.
//!
//! * **Assignment** is explicit ([`crate::assignment`]): each shard's reader is a
//!   `BaseConsumer` assigned its own partitions; no consumer-group protocol, no rebalancing.
//! * **No blocking in the shard loop**: librdkafka's threads fetch into the consumer's queue;
//!   the reader drains it with zero-timeout polls, at most one batch per shard-loop turn, and
//!   reports `Pending` (with a short wake-up) when the queue is empty. Blocking calls
//!   (metadata, watermarks) happen only while the reader is created.
//! * **Positions**: the next offset of every owned partition (and the stop offset in bounded
//!   mode) go into each checkpoint ([`crate::position`]); `restore` makes the reader assign
//!   its partitions at those offsets. With a group id set, the offsets are also committed to
//!   Kafka at each barrier, asynchronously and for monitoring only: recovery never reads them.
//! * **Bounded mode** stops every partition at the high-water mark it had when the job first
//!   started; a partition whose consumer position reached its stop offset (which also covers
//!   transaction markers at the end of a transactional topic) is done.
//! * **Event time** is the record's Kafka timestamp, or what a user extractor computes from the
//!   value. **Watermarks per partition** ([`KafkaSource::watermarks`], like Flink's
//!   `KafkaSource` with a `WatermarkStrategy`): each partition is watermarked on its own and the
//!   shard's watermark is their minimum (`corestrom_runtime::watermarks`), so a shard reading
//!   several partitions, which librdkafka interleaves in fetch batches of thousands of records,
//!   makes no partition's records late because another ran ahead. With an idleness timeout a
//!   partition without records for that long stops holding the watermark back; a finished
//!   (bounded) partition never does; a shard without partitions is idle. Without
//!   `watermarks`, a downstream `with_timestamps` watermarks the shard's interleaved stream as
//!   one, which needs an out-of-orderness bound covering a fetch batch's time span.
//! * **Deserialization errors** follow [`OnDeserializeError`]: fail the job naming topic,
//!   partition and offset (default), skip and count, or copy the raw record to a dead-letter
//!   topic (flushed before the reader's position is taken, so a completed checkpoint never
//!   covers a dead letter that was not stored).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use corestrom_runtime::source::{Source, SourcePoll, SourceReader, SplitContext};
use corestrom_runtime::time::EventTime;
use corestrom_runtime::watermarks::{ReaderWatermark, SplitWatermarks, WatermarkStrategy};
use corestrom_runtime::{OperatorError, Record};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::assignment::partitions_of_shard;
use crate::connection::KafkaConnection;
use crate::delivery::DeliveryRecorder;
use crate::error::{KafkaConnectorError, client};
use crate::position::{self, PartitionPosition, UNBOUNDED};

/// How long an idle reader lets its shard wait before polling the consumer's queue again.
const IDLE_POLL_NS: u64 = 200_000;

/// One consumed record, as a deserializer sees it.
#[derive(Clone, Copy, Debug)]
pub struct KafkaRecord<'a> {
    /// Its topic.
    pub topic: &'a str,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// Its timestamp (ms since the epoch), if it has one.
    pub timestamp: Option<i64>,
    /// Its key.
    pub key: Option<&'a [u8]>,
    /// Its value (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
}

/// What to do with a record the deserializer rejects.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum OnDeserializeError {
    /// Fail the job; the error names topic, partition and offset.
    #[default]
    Fail,
    /// Drop the record and count it ([`KafkaSourceStats::skipped`]).
    Skip,
    /// Copy key and value to this topic, with headers `corestrom.source` (`topic/partition/
    /// offset`) and `corestrom.error`, and count it ([`KafkaSourceStats::dead_letters`]).
    DeadLetter {
        /// The dead-letter topic.
        topic: String,
    },
}

/// Counters shared by every reader of one source, updated once per batch.
#[derive(Debug, Default)]
pub struct KafkaSourceStats {
    records: AtomicU64,
    skipped: AtomicU64,
    dead_letters: AtomicU64,
}

impl KafkaSourceStats {
    /// Records emitted into the job.
    pub fn records(&self) -> u64 {
        self.records.load(Ordering::Relaxed)
    }

    /// Records dropped under [`OnDeserializeError::Skip`].
    pub fn skipped(&self) -> u64 {
        self.skipped.load(Ordering::Relaxed)
    }

    /// Records sent to the dead-letter topic.
    pub fn dead_letters(&self) -> u64 {
        self.dead_letters.load(Ordering::Relaxed)
    }
}

type Deserializer<T> = dyn Fn(&KafkaRecord<'_>) -> Result<T, String> + Send + Sync;
type TimeExtractor<T> = dyn Fn(&T) -> EventTime + Send + Sync;

/// Reads Kafka topics; see the module doc.
pub struct KafkaSource<T> {
    connection: KafkaConnection,
    topics: Vec<String>,
    deserialize: Arc<Deserializer<T>>,
    event_time: Option<Arc<TimeExtractor<T>>>,
    bounded: bool,
    on_error: OnDeserializeError,
    group_id: Option<String>,
    watermarks: Option<WatermarkStrategy>,
    stats: Arc<KafkaSourceStats>,
}

impl<T> std::fmt::Debug for KafkaSource<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KafkaSource")
            .field("brokers", &self.connection.brokers())
            .field("topics", &self.topics)
            .field("bounded", &self.bounded)
            .field("on_error", &self.on_error)
            .finish_non_exhaustive()
    }
}

impl<T: Send + 'static> KafkaSource<T> {
    /// Reads every partition of `topics`, turning each record into a `T` with `deserialize`
    /// (an `Err` text is the reason a record is rejected). Unbounded, from the earliest offset,
    /// event time from the record timestamps, failing on the first rejected record.
    pub fn new(
        connection: KafkaConnection,
        topics: &[&str],
        deserialize: impl Fn(&KafkaRecord<'_>) -> Result<T, String> + Send + Sync + 'static,
    ) -> KafkaSource<T> {
        KafkaSource {
            connection,
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
            deserialize: Arc::new(deserialize),
            event_time: None,
            bounded: false,
            on_error: OnDeserializeError::Fail,
            group_id: None,
            watermarks: None,
            stats: Arc::default(),
        }
    }

    /// Watermarks per partition by `strategy` (bound, idleness), combined by minimum over the
    /// shard's partitions (see the module doc). Use it instead of a downstream
    /// `with_timestamps`, which would replace these watermarks with its own.
    #[must_use]
    pub fn watermarks(mut self, strategy: WatermarkStrategy) -> KafkaSource<T> {
        self.watermarks = Some(strategy);
        self
    }

    /// Stops at the high-water marks the partitions had when the job first started.
    #[must_use]
    pub fn bounded(mut self) -> KafkaSource<T> {
        self.bounded = true;
        self
    }

    /// Event time from the value instead of the Kafka timestamp.
    #[must_use]
    pub fn event_time(
        mut self,
        extract: impl Fn(&T) -> EventTime + Send + Sync + 'static,
    ) -> KafkaSource<T> {
        self.event_time = Some(Arc::new(extract));
        self
    }

    /// What to do with records the deserializer rejects.
    #[must_use]
    pub fn on_deserialize_error(mut self, policy: OnDeserializeError) -> KafkaSource<T> {
        self.on_error = policy;
        self
    }

    /// Commits the checkpointed offsets to this consumer group (monitoring only).
    #[must_use]
    pub fn commit_offsets_to_group(mut self, group_id: impl Into<String>) -> KafkaSource<T> {
        self.group_id = Some(group_id.into());
        self
    }

    /// The counters every reader updates.
    pub fn stats(&self) -> Arc<KafkaSourceStats> {
        Arc::clone(&self.stats)
    }

    fn open(&self, split: SplitContext) -> Result<KafkaSourceReader<T>, KafkaConnectorError> {
        let group = self
            .group_id
            .clone()
            .unwrap_or_else(|| format!("corestrom-source-{}", self.topics.join(",")));
        let consumer: BaseConsumer = self
            .connection
            .config(&[
                ("group.id", &group),
                ("enable.auto.commit", "false"),
                ("enable.auto.offset.store", "false"),
                ("enable.partition.eof", "false"),
                ("isolation.level", "read_committed"),
                ("auto.offset.reset", "earliest"),
            ])
            .create()
            .map_err(client("creating a consumer"))?;
        let mut counts = Vec::with_capacity(self.topics.len());
        for topic in &self.topics {
            counts.push((topic.clone(), self.connection.partitions(&consumer, topic)?));
        }
        let mut parts = Vec::new();
        for (topic, partition) in partitions_of_shard(&counts, split.shard, split.shards) {
            let (low, high) = consumer
                .fetch_watermarks(&topic, partition, self.connection.setup_timeout())
                .map_err(|source| {
                    self.connection
                        .unreachable(format!("offsets of {topic}/{partition}"), source)
                })?;
            parts.push(PartitionPosition {
                topic,
                partition,
                next: low,
                stop: if self.bounded { high } else { UNBOUNDED },
            });
        }
        let dead_letter = match &self.on_error {
            OnDeserializeError::DeadLetter { topic } => Some(DeadLetterProducer {
                topic: topic.clone(),
                producer: self
                    .connection
                    .config(&[("enable.idempotence", "true"), ("linger.ms", "5")])
                    .create_with_context(DeliveryRecorder::default())
                    .map_err(client("creating the dead-letter producer"))?,
                unflushed: std::cell::Cell::new(0),
                timeout: self.connection.setup_timeout(),
            }),
            _ => None,
        };
        let single_topic = self.topics.len() == 1;
        let parts_len = parts.len();
        Ok(KafkaSourceReader {
            consumer,
            parts,
            single_topic,
            assigned: false,
            bounded: self.bounded,
            deserialize: Arc::clone(&self.deserialize),
            event_time: self.event_time.clone(),
            on_error: self.on_error.clone(),
            dead_letter,
            commit_offsets: self.group_id.is_some(),
            stats: Arc::clone(&self.stats),
            last_part: 0,
            // Readers are created as the job starts, at 0 on its clock.
            watermarks: self
                .watermarks
                .map(|strategy| SplitWatermarks::new(strategy, parts_len, 0)),
        })
    }
}

impl<T: Send + 'static> Source<T> for KafkaSource<T> {
    fn create_reader(
        &self,
        split: SplitContext,
    ) -> Result<Box<dyn SourceReader<T>>, OperatorError> {
        Ok(Box::new(self.open(split)?))
    }
}

/// The dead-letter topic's producer (one per reader; used only for rejected records).
struct DeadLetterProducer {
    topic: String,
    producer: BaseProducer<DeliveryRecorder>,
    /// Dead letters sent since the last flush.
    unflushed: std::cell::Cell<u64>,
    timeout: Duration,
}

impl DeadLetterProducer {
    fn send(&self, record: &KafkaRecord<'_>, error: &str) -> Result<(), KafkaConnectorError> {
        let origin = format!("{}/{}/{}", record.topic, record.partition, record.offset);
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "corestrom.source",
                value: Some(origin.as_str()),
            })
            .insert(Header {
                key: "corestrom.error",
                value: Some(error),
            });
        let mut out: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic)
            .headers(headers)
            .timestamp(crate::sink::now_ms());
        if let Some(key) = record.key {
            out = out.key(key);
        }
        if let Some(value) = record.value {
            out = out.payload(value);
        }
        let mut pending = out;
        loop {
            match self.producer.send(pending) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Backpressure from librdkafka's queue: serve delivery reports, retry.
                    self.producer.poll(Duration::from_millis(1));
                    pending = back;
                }
                Err((e, _)) => {
                    return Err(client(format!(
                        "sending to dead-letter topic '{}'",
                        self.topic
                    ))(e));
                }
            }
        }
        self.unflushed.set(self.unflushed.get() + 1);
        Ok(())
    }

    /// Waits until every dead letter sent so far is acknowledged (only when there are some).
    fn flush(&self) -> Result<(), KafkaConnectorError> {
        if self.unflushed.get() == 0 {
            return Ok(());
        }
        self.producer.flush(self.timeout).map_err(client(format!(
            "flushing dead-letter topic '{}'",
            self.topic
        )))?;
        self.unflushed.set(0);
        self.check()
    }

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
}

/// One shard's reader.
struct KafkaSourceReader<T> {
    consumer: BaseConsumer,
    parts: Vec<PartitionPosition>,
    single_topic: bool,
    assigned: bool,
    bounded: bool,
    deserialize: Arc<Deserializer<T>>,
    event_time: Option<Arc<TimeExtractor<T>>>,
    on_error: OnDeserializeError,
    dead_letter: Option<DeadLetterProducer>,
    commit_offsets: bool,
    stats: Arc<KafkaSourceStats>,
    /// The part of the previous record: consecutive records mostly share a partition.
    last_part: usize,
    /// Per-partition watermarks, indexed like `parts` (when the source has a strategy).
    watermarks: Option<SplitWatermarks>,
}

impl<T> KafkaSourceReader<T> {
    fn is_done(p: &PartitionPosition) -> bool {
        p.stop != UNBOUNDED && p.next >= p.stop
    }

    fn all_done(&self) -> bool {
        self.bounded && self.parts.iter().all(Self::is_done)
    }

    fn assign(&mut self) -> Result<(), KafkaConnectorError> {
        let mut list = TopicPartitionList::with_capacity(self.parts.len());
        for p in self.parts.iter().filter(|p| !Self::is_done(p)) {
            list.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next))
                .map_err(client(format!("assigning {}/{}", p.topic, p.partition)))?;
        }
        self.consumer
            .assign(&list)
            .map_err(client("assigning partitions"))?;
        self.assigned = true;
        Ok(())
    }

    /// Marks partitions done whose consumer position passed their stop offset: after the last
    /// record of a transactional topic come commit markers, which are never delivered.
    fn settle_positions(&mut self) -> Result<(), KafkaConnectorError> {
        let positions = self
            .consumer
            .position()
            .map_err(client("reading consumer positions"))?;
        for p in self.parts.iter_mut().filter(|p| !Self::is_done(p)) {
            if let Some(Offset::Offset(at)) = positions
                .find_partition(&p.topic, p.partition)
                .map(|e| e.offset())
                && at >= p.stop
            {
                p.next = p.next.max(p.stop);
            }
        }
        Ok(())
    }

    fn poll_batch(
        &mut self,
        out: &mut Vec<Record<T>>,
        max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, KafkaConnectorError> {
        if !self.assigned {
            self.assign()?;
        }
        let mut emitted = 0u64;
        let mut skipped = 0u64;
        let mut dead = 0u64;
        let mut polled = 0usize;
        let mut drained = false;
        while polled < max {
            let Some(result) = self.consumer.poll(Duration::ZERO) else {
                drained = true;
                break;
            };
            polled += 1;
            let message = match result {
                Ok(message) => message,
                // librdkafka reconnects by itself; these only report that it is trying.
                Err(KafkaError::MessageConsumption(
                    RDKafkaErrorCode::AllBrokersDown | RDKafkaErrorCode::BrokerTransportFailure,
                )) => continue,
                Err(e) => return Err(client("consuming")(e)),
            };
            let partition = message.partition();
            let Some(index) = part_index(
                &self.parts,
                &mut self.last_part,
                self.single_topic,
                || message.topic(),
                partition,
            ) else {
                continue; // not ours (cannot happen with explicit assignment)
            };
            let offset = message.offset();
            let part = &mut self.parts[index];
            if part.stop != UNBOUNDED && offset >= part.stop {
                part.next = part.next.max(part.stop);
                continue;
            }
            part.next = offset + 1;
            let record = KafkaRecord {
                topic: message.topic(),
                partition,
                offset,
                timestamp: message.timestamp().to_millis(),
                key: message.key(),
                value: message.payload(),
            };
            match (self.deserialize)(&record) {
                Ok(value) => {
                    let ts = match &self.event_time {
                        Some(extract) => extract(&value),
                        None => record.timestamp.unwrap_or(0),
                    };
                    if let Some(watermarks) = &mut self.watermarks {
                        watermarks.observe(index, ts, now_ns);
                    }
                    out.push(Record::new(ts, value));
                    emitted += 1;
                }
                Err(reason) => match &self.on_error {
                    OnDeserializeError::Fail => {
                        return Err(KafkaConnectorError::Deserialize {
                            topic: record.topic.to_string(),
                            partition,
                            offset,
                            message: reason,
                        });
                    }
                    OnDeserializeError::Skip => skipped += 1,
                    OnDeserializeError::DeadLetter { .. } => {
                        self.dead_letter
                            .as_ref()
                            .expect("a dead-letter policy has a producer")
                            .send(&record, &reason)?;
                        dead += 1;
                    }
                },
            }
        }
        if emitted > 0 {
            self.stats.records.fetch_add(emitted, Ordering::Relaxed);
        }
        if skipped > 0 {
            self.stats.skipped.fetch_add(skipped, Ordering::Relaxed);
        }
        if dead > 0 {
            self.stats.dead_letters.fetch_add(dead, Ordering::Relaxed);
        }
        if let Some(dl) = &self.dead_letter {
            dl.producer.poll(Duration::ZERO);
            dl.check()?;
        }
        if self.bounded && drained {
            self.settle_positions()?;
        }
        if self.all_done() {
            if let Some(dl) = &self.dead_letter {
                dl.flush()?;
            }
            return Ok(SourcePoll::Finished);
        }
        Ok(if drained && polled == 0 {
            SourcePoll::Pending {
                wake_at_ns: Some(now_ns + IDLE_POLL_NS),
            }
        } else {
            SourcePoll::Ready
        })
    }
}

/// The index of `(topic, partition)` in `parts`; `last` caches the previous answer, since
/// consecutive records mostly come from one partition. With a single topic the topic name is
/// never compared (reading it from librdkafka costs a UTF-8 check).
fn part_index<'t>(
    parts: &[PartitionPosition],
    last: &mut usize,
    single_topic: bool,
    topic: impl Fn() -> &'t str,
    partition: i32,
) -> Option<usize> {
    let matches =
        |p: &PartitionPosition| p.partition == partition && (single_topic || p.topic == topic());
    if parts.get(*last).is_some_and(matches) {
        return Some(*last);
    }
    let found = parts.iter().position(matches)?;
    *last = found;
    Some(found)
}

impl<T: 'static> SourceReader<T> for KafkaSourceReader<T> {
    fn poll(
        &mut self,
        out: &mut Vec<Record<T>>,
        max: usize,
        now_ns: u64,
    ) -> Result<SourcePoll, OperatorError> {
        Ok(self.poll_batch(out, max, now_ns)?)
    }

    fn position(&self) -> Option<Vec<u8>> {
        // A checkpoint must not cover a dead letter that is not stored; a failed flush makes
        // the position unavailable, which fails the checkpoint (and the job) loudly.
        if let Some(dl) = &self.dead_letter {
            dl.flush().ok()?;
        }
        if self.commit_offsets {
            let mut list = TopicPartitionList::with_capacity(self.parts.len());
            for p in &self.parts {
                // Best effort: a failed monitoring commit must not fail the job.
                let _ = list.add_partition_offset(&p.topic, p.partition, Offset::Offset(p.next));
            }
            let _ = self.consumer.commit(&list, CommitMode::Async);
        }
        Some(position::encode(&self.parts))
    }

    fn restore(&mut self, bytes: &[u8]) -> Result<(), OperatorError> {
        let restored = position::decode(bytes)?;
        let names = |ps: &[PartitionPosition]| {
            let mut v: Vec<(String, i32)> =
                ps.iter().map(|p| (p.topic.clone(), p.partition)).collect();
            v.sort();
            v
        };
        if names(&restored) != names(&self.parts) {
            return Err(KafkaConnectorError::BadPosition(format!(
                "the checkpoint's partitions {:?} are not this shard's {:?} (did the shard count \
                 or a topic's partition count change?)",
                names(&restored),
                names(&self.parts)
            ))
            .into());
        }
        self.parts = restored;
        self.assigned = false;
        Ok(())
    }

    fn watermark(&mut self, now_ns: u64) -> ReaderWatermark {
        let Some(watermarks) = &mut self.watermarks else {
            return ReaderWatermark::Unsupported;
        };
        for (index, part) in self.parts.iter().enumerate() {
            if Self::is_done(part) {
                watermarks.finish(index);
            }
        }
        watermarks.current(now_ns)
    }
}
