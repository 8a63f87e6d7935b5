//! Where the brokers are and how to talk to them: the settings shared by the source's
//! consumers, the sink's producers and the admin calls, and the blocking metadata look-ups the
//! connector makes once, while a reader or writer is being set up (never in the shard loop).

use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::error::KafkaConnectorError;

/// Bootstrap brokers plus any librdkafka settings the user adds.
#[derive(Clone, Debug)]
pub struct KafkaConnection {
    brokers: String,
    extra: Vec<(String, String)>,
    timeout: Duration,
}

impl KafkaConnection {
    /// Brokers as librdkafka's `bootstrap.servers` takes them: `host:port[,host:port...]`.
    pub fn new(brokers: impl Into<String>) -> KafkaConnection {
        KafkaConnection {
            brokers: brokers.into(),
            extra: Vec::new(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Adds a librdkafka setting (e.g. `security.protocol`); later settings win.
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> KafkaConnection {
        self.extra.push((key.into(), value.into()));
        self
    }

    /// How long set-up requests (metadata, offsets, transaction init) may wait for the brokers
    /// before the job fails with [`KafkaConnectorError::Unreachable`] (default 10 s).
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> KafkaConnection {
        self.timeout = timeout;
        self
    }

    /// The bootstrap list.
    pub fn brokers(&self) -> &str {
        &self.brokers
    }

    /// The set-up timeout.
    pub fn setup_timeout(&self) -> Duration {
        self.timeout
    }

    /// A client configuration with the brokers, the given settings, then the user's.
    pub(crate) fn config(&self, settings: &[(&str, &str)]) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.brokers);
        for (k, v) in settings {
            config.set(*k, *v);
        }
        for (k, v) in &self.extra {
            config.set(k, v);
        }
        config
    }

    /// The partition count of `topic`; fails clearly when the brokers do not answer or the topic
    /// is missing.
    pub(crate) fn partitions(
        &self,
        consumer: &BaseConsumer,
        topic: &str,
    ) -> Result<i32, KafkaConnectorError> {
        let metadata = consumer
            .fetch_metadata(Some(topic), self.timeout)
            .map_err(|source| self.unreachable(format!("metadata of topic '{topic}'"), source))?;
        let partitions = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .filter(|t| t.error().is_none())
            .map_or(0, |t| t.partitions().len());
        if partitions == 0 {
            return Err(KafkaConnectorError::NoSuchTopic {
                topic: topic.to_string(),
                brokers: self.brokers.clone(),
            });
        }
        Ok(i32::try_from(partitions).expect("partition count fits i32"))
    }

    /// The error for a broker that did not answer `what`.
    pub(crate) fn unreachable(
        &self,
        what: String,
        source: rdkafka::error::KafkaError,
    ) -> KafkaConnectorError {
        KafkaConnectorError::Unreachable {
            brokers: self.brokers.clone(),
            what,
            timeout_ms: u64::try_from(self.timeout.as_millis()).unwrap_or(u64::MAX),
            source: Box::new(source),
        }
    }
}
