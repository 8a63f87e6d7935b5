//! The connector's errors. Every variant says what was being done and where (brokers, topic,
//! partition, offset, file), so a failed job's message is enough to find the cause.

use std::path::PathBuf;

/// A failure of the Kafka source or sink.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaConnectorError {
    /// The brokers did not answer a metadata request in time (down, wrong address, firewall).
    #[error(
        "cannot reach the Kafka brokers at {brokers} ({what}) within {timeout_ms} ms: {source}"
    )]
    Unreachable {
        /// The bootstrap list as configured.
        brokers: String,
        /// What was asked of them.
        what: String,
        /// How long the request waited.
        timeout_ms: u64,
        /// librdkafka's error (boxed: it is large, and errors are rare).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// A topic the source should read does not exist or has no partitions.
    #[error("topic '{topic}' does not exist on {brokers} (or has no partitions)")]
    NoSuchTopic {
        /// The topic.
        topic: String,
        /// The bootstrap list.
        brokers: String,
    },
    /// A client call failed.
    #[error("kafka {what}: {source}")]
    Client {
        /// The call and its subject, e.g. "commit of transaction for checkpoint 7".
        what: String,
        /// librdkafka's error (boxed: it is large, and errors are rare).
        #[source]
        source: Box<rdkafka::error::KafkaError>,
    },
    /// A record could not be deserialized and the policy is to fail.
    #[error(
        "cannot deserialize the record at topic '{topic}' partition {partition} offset {offset}: {message}"
    )]
    Deserialize {
        /// Where the record is.
        topic: String,
        /// Its partition.
        partition: i32,
        /// Its offset.
        offset: i64,
        /// What the deserializer said.
        message: String,
    },
    /// A produced record was not acknowledged by the broker.
    #[error(
        "kafka delivery to topic '{topic}' failed ({failed} records so far); first error: {first}"
    )]
    Delivery {
        /// The output topic.
        topic: String,
        /// Records whose delivery failed.
        failed: u64,
        /// The first failure, as librdkafka reported it.
        first: String,
    },
    /// A checkpoint position that this source did not write.
    #[error("not a Kafka source position: {0}")]
    BadPosition(String),
    /// The sink's staging directory or one of its files failed.
    #[error("{what} {path}: {source}")]
    Staging {
        /// The operation.
        what: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A staged epoch file is cut short or malformed.
    #[error("staged file {path} is corrupt at byte {at}: {message}")]
    CorruptStage {
        /// The file.
        path: PathBuf,
        /// The byte offset of the bad entry.
        at: u64,
        /// What is wrong.
        message: String,
    },
    /// The sink's background committer stopped (its error was reported before, or it panicked).
    #[error("the Kafka transaction committer of shard {shard} failed: {message}")]
    Committer {
        /// The shard.
        shard: usize,
        /// Its error.
        message: String,
    },
}

impl From<KafkaConnectorError> for corestrom_runtime::OperatorError {
    fn from(e: KafkaConnectorError) -> Self {
        match e {
            KafkaConnectorError::Deserialize {
                topic,
                partition,
                offset,
                message,
            } => corestrom_runtime::OperatorError::BadInput {
                location: format!("topic '{topic}' partition {partition} offset {offset}"),
                message,
            },
            other => corestrom_runtime::OperatorError::Failed(other.to_string()),
        }
    }
}

/// `map_err` helper: a client error with what was being done.
pub(crate) fn client(
    what: impl Into<String>,
) -> impl FnOnce(rdkafka::error::KafkaError) -> KafkaConnectorError {
    move |source| KafkaConnectorError::Client {
        what: what.into(),
        source: Box::new(source),
    }
}
