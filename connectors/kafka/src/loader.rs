//! `TopicLoader`: a plain producer for set-up code outside jobs (loading a topic for a test, a
//! benchmark or the CLI's `generate`): records are batched by librdkafka, a full queue waits
//! for deliveries, and `finish` waits until every record is acknowledged. Blocking by design;
//! jobs use [`crate::KafkaSink`].

use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;

use crate::connection::KafkaConnection;
use crate::delivery::DeliveryRecorder;
use crate::error::{KafkaConnectorError, client};

/// Loads records into topics.
pub struct TopicLoader {
    producer: BaseProducer<DeliveryRecorder>,
    timeout: Duration,
    sent: u64,
}

impl std::fmt::Debug for TopicLoader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopicLoader")
            .field("sent", &self.sent)
            .finish_non_exhaustive()
    }
}

impl TopicLoader {
    /// An idempotent producer on `connection` (batches up to 64 KiB, 5 ms linger).
    ///
    /// # Errors
    /// The client cannot be created (bad settings).
    pub fn new(connection: &KafkaConnection) -> Result<TopicLoader, KafkaConnectorError> {
        let producer = connection
            .config(&[
                ("enable.idempotence", "true"),
                ("linger.ms", "5"),
                ("batch.size", "65536"),
            ])
            .create_with_context(DeliveryRecorder::default())
            .map_err(client("creating a producer"))?;
        Ok(TopicLoader {
            producer,
            timeout: connection.setup_timeout().max(Duration::from_secs(30)),
            sent: 0,
        })
    }

    /// Queues one record (`partition`: `None` for the partitioner's choice; `timestamp`: `None`
    /// for now).
    ///
    /// # Errors
    /// librdkafka refuses the record (too large, unknown partition).
    pub fn send(
        &mut self,
        topic: &str,
        partition: Option<i32>,
        key: Option<&[u8]>,
        value: &[u8],
        timestamp: Option<i64>,
    ) -> Result<(), KafkaConnectorError> {
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic).payload(value);
        if let Some(key) = key {
            record = record.key(key);
        }
        if let Some(partition) = partition {
            record = record.partition(partition);
        }
        record = record.timestamp(timestamp.unwrap_or_else(crate::sink::now_ms));
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.producer.poll(Duration::from_millis(5));
                    record = back;
                }
                Err((e, _)) => return Err(client(format!("sending to '{topic}'"))(e)),
            }
        }
        self.sent += 1;
        if self.sent.is_multiple_of(4096) {
            self.producer.poll(Duration::ZERO);
        }
        Ok(())
    }

    /// Waits until every record is acknowledged; returns how many were sent.
    ///
    /// # Errors
    /// The flush timed out or a delivery failed.
    pub fn finish(self) -> Result<u64, KafkaConnectorError> {
        self.producer
            .flush(self.timeout)
            .map_err(client("flushing the loader"))?;
        let recorder = self.producer.context();
        if recorder.failed() > 0 {
            return Err(KafkaConnectorError::Delivery {
                topic: "(loader)".into(),
                failed: recorder.failed(),
                first: recorder.first_failure().unwrap_or_default(),
            });
        }
        Ok(self.sent)
    }
}
