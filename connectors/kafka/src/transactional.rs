//! One shard's transactional producer for the exactly-once sink: sends a staged epoch in one
//! Kafka transaction together with a *commit marker*, and reads the marker back on recovery.
//!
//! The marker is the id of the last checkpoint whose epoch is committed, stored as the
//! consumer-group offset of group `<transactional.id>` on partition 0 of the output topic,
//! written by `send_offsets_to_transaction` inside the epoch's transaction. Kafka commits the
//! offset atomically with the records, so "marker ≥ C" holds exactly when epoch `C` is
//! visible to `read_committed` consumers. That makes committing idempotent across crashes:
//! recovery re-sends only epochs above the marker.
//!
//! Fencing: `init_transactions` with the stable `transactional.id` bumps the producer epoch,
//! aborting whatever a previous incarnation left open; a zombie still running with the old
//! epoch fails its next transactional call and its job stops.

use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::connection::KafkaConnection;
use crate::delivery::DeliveryRecorder;
use crate::error::{KafkaConnectorError, client};
use crate::staged_epochs::read_staged;

/// The producer, the marker's consumer, and where they write.
pub(crate) struct TransactionalProducer {
    producer: BaseProducer<DeliveryRecorder>,
    marker: BaseConsumer,
    topic: String,
    transactional_id: String,
    timeout: Duration,
}

impl TransactionalProducer {
    /// Creates the producer and fences any earlier one with the same id (blocking: set-up only).
    pub(crate) fn open(
        connection: &KafkaConnection,
        topic: &str,
        transactional_id: &str,
    ) -> Result<TransactionalProducer, KafkaConnectorError> {
        let producer: BaseProducer<DeliveryRecorder> = connection
            .config(&[
                ("transactional.id", transactional_id),
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("transaction.timeout.ms", "60000"),
            ])
            .create_with_context(DeliveryRecorder::default())
            .map_err(client("creating a transactional producer"))?;
        producer
            .init_transactions(connection.setup_timeout())
            .map_err(|source| {
                connection.unreachable(
                    format!("init_transactions for transactional.id '{transactional_id}'"),
                    source,
                )
            })?;
        let marker: BaseConsumer = connection
            .config(&[
                ("group.id", transactional_id),
                ("enable.auto.commit", "false"),
                ("isolation.level", "read_committed"),
            ])
            .create()
            .map_err(client("creating the commit-marker consumer"))?;
        Ok(TransactionalProducer {
            producer,
            marker,
            topic: topic.to_string(),
            transactional_id: transactional_id.to_string(),
            timeout: connection.setup_timeout(),
        })
    }

    fn marker_list(&self, offset: Offset) -> Result<TopicPartitionList, KafkaConnectorError> {
        let mut list = TopicPartitionList::with_capacity(1);
        list.add_partition_offset(&self.topic, 0, offset)
            .map_err(client("building the commit marker"))?;
        Ok(list)
    }

    /// The last checkpoint whose epoch is committed (0: none).
    pub(crate) fn committed_marker(&self) -> Result<u64, KafkaConnectorError> {
        let asked = self.marker_list(Offset::Invalid)?;
        let got = self
            .marker
            .committed_offsets(asked, self.timeout)
            .map_err(client(format!(
                "reading the commit marker of '{}'",
                self.transactional_id
            )))?;
        Ok(
            match got.find_partition(&self.topic, 0).map(|e| e.offset()) {
                Some(Offset::Offset(n)) if n > 0 => n as u64,
                _ => 0,
            },
        )
    }

    /// Sends the staged file of `checkpoint` and the marker `checkpoint` in one transaction and
    /// commits it (blocking: runs on the committer thread or during recovery). Returns the
    /// records sent.
    pub(crate) fn commit_epoch(
        &self,
        checkpoint: u64,
        staged: &std::path::Path,
    ) -> Result<u64, KafkaConnectorError> {
        let what = |step: &str| format!("{step} of the transaction for checkpoint {checkpoint}");
        self.producer
            .begin_transaction()
            .map_err(client(what("begin")))?;
        let result = (|| {
            let now = crate::sink::now_ms();
            let sent = read_staged(staged, |timestamp, partition, key, value| {
                self.send(
                    if timestamp < 0 { now } else { timestamp },
                    partition,
                    key,
                    value,
                )
            })?;
            let group =
                self.marker
                    .group_metadata()
                    .ok_or_else(|| KafkaConnectorError::Committer {
                        shard: 0,
                        message: "the marker consumer has no group metadata".into(),
                    })?;
            let marker = self.marker_list(Offset::Offset(
                i64::try_from(checkpoint).expect("checkpoint ids fit i64"),
            ))?;
            self.producer
                .send_offsets_to_transaction(&marker, &group, self.timeout)
                .map_err(client(what("commit marker")))?;
            self.producer
                .commit_transaction(self.timeout)
                .map_err(client(what("commit")))?;
            Ok(sent)
        })();
        if result.is_err() {
            // Best effort: a fenced or failed producer cannot abort either; the next
            // incarnation's init_transactions aborts it for us.
            let _ = self.producer.abort_transaction(self.timeout);
        }
        result
    }

    fn send(
        &self,
        timestamp: i64,
        partition: i32,
        key: Option<&[u8]>,
        value: &[u8],
    ) -> Result<(), KafkaConnectorError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&self.topic)
            .payload(value)
            .timestamp(timestamp);
        if let Some(key) = key {
            record = record.key(key);
        }
        if partition >= 0 {
            record = record.partition(partition);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.producer.poll(Duration::from_millis(1));
                    record = back;
                }
                Err((e, _)) => return Err(client(format!("sending to '{}'", self.topic))(e)),
            }
        }
    }
}
