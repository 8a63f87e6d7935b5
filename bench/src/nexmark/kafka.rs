//! Nexmark over Kafka (feature `kafka`): FORMAT.md event lines from a topic as the event
//! stream, query results to a topic as one JSON row per message, and loading a topic with
//! generated events.
//!
//! Decoding and encoding reuse per-thread state (the event-line decoder's shared texts, one
//! row buffer), so neither allocates per record beyond the event's own strings; each shard's
//! thread has its own.

use std::cell::RefCell;
use std::path::PathBuf;

use corestrom_kafka::admin::create_topic;
use corestrom_kafka::{
    KafkaConnection, KafkaConnectorError, KafkaOutput, KafkaSink, KafkaSource, TopicLoader,
};

use crate::nexmark::config::GeneratorConfig;
use crate::nexmark::generator::NexmarkGenerator;
use crate::nexmark::json::{EventLineDecoder, encode_event};
use crate::nexmark::model::Event;
use crate::nexmark::result::ResultWriter;
use crate::nexmark::result_sink::ResultRow;

thread_local! {
    static DECODER: RefCell<EventLineDecoder> = RefCell::new(EventLineDecoder::default());
    static ROW: RefCell<ResultWriter<Vec<u8>>> = RefCell::new(ResultWriter::new(Vec::new()));
}

/// Events from `topic` (every partition); event time from each event's `dateTime`. A line that
/// does not decode fails the job with topic, partition, offset and the field at fault.
pub fn event_source(connection: KafkaConnection, topic: &str, bounded: bool) -> KafkaSource<Event> {
    let source = KafkaSource::new(connection, &[topic], |record| {
        let line = record.value.ok_or("a message without a value")?;
        DECODER.with(|d| d.borrow_mut().decode(line))
    })
    .event_time(Event::date_time);
    if bounded { source.bounded() } else { source }
}

/// Where a query's results go in Kafka.
#[derive(Clone, Debug)]
pub struct KafkaResults {
    /// The brokers.
    pub connection: KafkaConnection,
    /// The output topic.
    pub topic: String,
    /// Exactly-once: the job name (for `transactional.id`s) and the staging directory.
    /// `None`: at-least-once.
    pub exactly_once: Option<(String, PathBuf)>,
}

/// Writes `row` as one JSON object (no newline) into `out`.
fn encode_row<T: ResultRow>(row: &T, out: &mut Vec<u8>) {
    ROW.with(|writer| {
        let mut writer = writer.borrow_mut();
        row.columns(writer.row())
            .end()
            .expect("rows are written to memory");
        let bytes = writer.flushed_inner().expect("rows are written to memory");
        out.extend_from_slice(bytes.strip_suffix(b"\n").unwrap_or(bytes));
        bytes.clear();
    });
}

impl KafkaResults {
    /// The sink for rows of type `T`.
    pub fn sink<T: ResultRow>(&self) -> KafkaSink<T> {
        let serialize = |row: &T, out: &mut KafkaOutput| encode_row(row, out.value());
        match &self.exactly_once {
            Some((job, staging)) => KafkaSink::exactly_once(
                self.connection.clone(),
                &self.topic,
                job,
                staging,
                serialize,
            ),
            None => KafkaSink::at_least_once(self.connection.clone(), &self.topic, serialize),
        }
    }
}

/// Creates `topic` with `partitions` partitions and loads the events of `config`: generator
/// split `i` (time-ordered) into partition `i`, each event one FORMAT.md line without newline.
/// Returns the events written.
///
/// Messages keep the producer's timestamp (now), not the event time: Nexmark's event times lie
/// years back, and a broker's time-based retention would delete such messages at once. The
/// source takes event time from the events themselves.
///
/// # Errors
/// The brokers do not answer, or a record is not acknowledged.
pub fn load_events(
    connection: &KafkaConnection,
    topic: &str,
    partitions: u32,
    config: &GeneratorConfig,
) -> Result<u64, LoadError> {
    let count = i32::try_from(partitions).map_err(|_| LoadError::Partitions(partitions))?;
    if count == 0 {
        return Err(LoadError::Partitions(partitions));
    }
    create_topic(connection, topic, count)?;
    let mut loader = TopicLoader::new(connection)?;
    let mut line = Vec::with_capacity(512);
    for split in 0..partitions {
        let mut generator = NexmarkGenerator::new(config, split, partitions)?;
        while let Some(event) = generator.next_event() {
            line.clear();
            encode_event(&mut line, &event);
            let line = line.strip_suffix(b"\n").unwrap_or(&line);
            loader.send(topic, Some(split as i32), None, line, None)?;
        }
    }
    Ok(loader.finish()?)
}

/// Why loading a topic failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoadError {
    /// Kafka refused or did not answer.
    #[error(transparent)]
    Kafka(#[from] KafkaConnectorError),
    /// The generator settings are invalid.
    #[error(transparent)]
    Config(#[from] crate::nexmark::config::ConfigError),
    /// A partition count Kafka cannot have.
    #[error("{0} partitions: give 1 to 2^31-1")]
    Partitions(u32),
}
