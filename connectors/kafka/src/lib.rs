//! corestrom's Kafka connector (librdkafka through the `rdkafka` crate).
//!
//! * [`KafkaSource`]: explicit partition assignment across shards, offsets in checkpoints,
//!   bounded mode, event time from timestamps or an extractor, a deserialization-error policy.
//! * [`KafkaSink`]: at-least-once (flushed at every checkpoint) or exactly-once (a Kafka
//!   transaction per checkpoint and shard, committed only once the checkpoint is complete,
//!   recovered and fenced by a stable `transactional.id`).
//!
//! Neither blocks a shard's executor on the network in steady state: librdkafka's own threads
//! do the I/O; the shard hands records over and drains results with zero-timeout polls. The
//! exceptions are set-up (metadata, transaction init) and, in at-least-once mode, the flush at
//! a barrier, which is what makes the checkpoint cover the records.

pub mod admin;
pub mod assignment;
mod connection;
pub mod delivery;
mod error;
mod loader;
pub mod position;
mod sink;
mod source;
pub mod staged_epochs;
mod transactional;

/// The librdkafka binding the connector is built on, for settings and tools beyond it.
pub use rdkafka;

pub use connection::KafkaConnection;
pub use error::KafkaConnectorError;
pub use loader::TopicLoader;
pub use sink::{KafkaOutput, KafkaSink, transactional_id};
pub use source::{KafkaRecord, KafkaSource, KafkaSourceStats, OnDeserializeError};
