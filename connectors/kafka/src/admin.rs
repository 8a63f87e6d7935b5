//! Topic administration for set-up code (tests, the CLI's loader, examples): create a topic
//! with a partition count, waiting for the answer. Blocking; never called from a shard loop.

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;

use crate::connection::KafkaConnection;
use crate::error::{KafkaConnectorError, client};

/// Creates `topic` with `partitions` partitions (replication 1); an existing topic is left as
/// it is.
///
/// # Errors
/// The brokers do not answer in the connection's timeout, or refuse the topic.
pub fn create_topic(
    connection: &KafkaConnection,
    topic: &str,
    partitions: i32,
) -> Result<(), KafkaConnectorError> {
    let admin: AdminClient<DefaultClientContext> = connection
        .config(&[])
        .create()
        .map_err(client("creating an admin client"))?;
    let options = AdminOptions::new()
        .operation_timeout(Some(connection.setup_timeout()))
        .request_timeout(Some(connection.setup_timeout()));
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let results = futures_lite::future::block_on(admin.create_topics([&new], &options))
        .map_err(|source| connection.unreachable(format!("creating topic '{topic}'"), source))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                return Err(client(format!("creating topic '{name}'"))(
                    rdkafka::error::KafkaError::AdminOp(code),
                ));
            }
        }
    }
    Ok(())
}
