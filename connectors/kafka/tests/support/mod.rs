//! Test support: a Kafka-protocol broker for the test, and helpers to load and read topics.
//!
//! With `CORESTROM_KAFKA_BROKERS` set, tests use those brokers (a real Kafka cluster, say).
//! Otherwise each test starts its own `noida-db` (PyPI, pinned by `scripts/setup-kafka.sh`,
//! which is run if the binary is missing) on 127.0.0.1 with a fresh data directory and a free
//! port, waits until it accepts connections, and kills it (by its pid) when dropped.

#![allow(dead_code)]

use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use corestrom_kafka::KafkaConnection;
use corestrom_kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use corestrom_kafka::rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use corestrom_kafka::rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

/// The environment variable that points the tests at existing brokers.
pub const BROKERS_VAR: &str = "CORESTROM_KAFKA_BROKERS";

/// A broker for one test.
pub struct Broker {
    pub address: String,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
    port: u16,
}

/// The workspace root: the nearest directory above the crate holding the setup script (this
/// file is also used by the root crate's tests).
fn workspace_root() -> PathBuf {
    let mut dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    while !dir.join("scripts/setup-kafka.sh").exists() {
        assert!(
            dir.pop(),
            "no scripts/setup-kafka.sh above {}",
            env!("CARGO_MANIFEST_DIR")
        );
    }
    dir
}

/// The noida-db binary, installed by the setup script if missing.
pub fn noida_db() -> PathBuf {
    let path = workspace_root().join(".venv-kafka/noida-db");
    if !path.exists() {
        let status = Command::new(workspace_root().join("scripts/setup-kafka.sh"))
            .stdout(Stdio::null())
            .status()
            .expect("running scripts/setup-kafka.sh");
        assert!(status.success(), "scripts/setup-kafka.sh failed");
    }
    path
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

impl Broker {
    /// The configured brokers, or a fresh noida-db.
    pub fn start() -> Broker {
        if let Ok(address) = std::env::var(BROKERS_VAR) {
            return Broker {
                address,
                child: None,
                _data: None,
                port: 0,
            };
        }
        let data = tempfile::tempdir().expect("data dir");
        let port = free_port();
        let child = spawn_noida(data.path(), port);
        let broker = Broker {
            address: format!("127.0.0.1:{port}"),
            child: Some(child),
            _data: Some(data),
            port,
        };
        broker.wait_until_up();
        broker
    }

    fn wait_until_up(&self) {
        let started = Instant::now();
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "noida-db did not listen on {} within 20 s",
                self.address
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// True when this test started the broker (and so can stop and restart it).
    pub fn is_local(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the broker (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().ok();
            child.wait().ok();
        }
    }

    /// Stops the broker gracefully (SIGTERM, as a service manager would) and waits for it.
    pub fn terminate(&mut self) {
        if let Some(mut child) = self.child.take() {
            Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status()
                .expect("kill -TERM");
            child.wait().ok();
        }
    }

    /// Restarts it gracefully on the same port and data directory.
    pub fn restart(&mut self) {
        self.terminate();
        let dir = self
            ._data
            .as_ref()
            .expect("local broker")
            .path()
            .to_path_buf();
        self.child = Some(spawn_noida(&dir, self.port));
        self.wait_until_up();
    }

    pub fn connection(&self) -> KafkaConnection {
        KafkaConnection::new(self.address.clone())
    }
}

fn spawn_noida(dir: &std::path::Path, port: u16) -> Child {
    Command::new(noida_db())
        .args(["start", "--data-dir"])
        .arg(dir)
        .args(["--host", "127.0.0.1", "--only", "kafka", "--kafka-port"])
        .arg(port.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting noida-db")
}

impl Drop for Broker {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A unique topic name for a test.
pub fn topic(name: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static NEXT: AtomicU32 = AtomicU32::new(0);
    format!(
        "{name}-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// A record to produce: partition, key, value.
pub type Outgoing = (i32, Option<Vec<u8>>, Vec<u8>);

/// Produces records and waits until all are acknowledged.
pub fn produce(brokers: &str, topic: &str, records: &[Outgoing]) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("enable.idempotence", "true")
        .create()
        .expect("producer");
    for (partition, key, value) in records {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as i64;
        // An explicit timestamp: noida-db's retention deletes records without one.
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(topic)
            .partition(*partition)
            .payload(value.as_slice())
            .timestamp(now);
        if let Some(key) = key {
            record = record.key(key.as_slice());
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((_, back)) => {
                    producer.poll(Duration::from_millis(10));
                    record = back;
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("flush");
}

/// One consumed record.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Consumed {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Vec<u8>,
}

/// Everything `read_committed` consumers see in `topic` (all partitions, from the start, up to
/// the high-water marks).
pub fn read_committed(brokers: &str, topic: &str) -> Vec<Consumed> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "corestrom-test-checker")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let timeout = Duration::from_secs(10);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .expect("metadata");
    let partitions = metadata.topics()[0].partitions().len() as i32;
    let mut list = TopicPartitionList::new();
    let mut ends = Vec::new();
    for p in 0..partitions {
        let (_, high) = consumer
            .fetch_watermarks(topic, p, timeout)
            .expect("watermarks");
        ends.push(high);
        list.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&list).expect("assign");
    let mut out = Vec::new();
    let started = Instant::now();
    loop {
        let positions = consumer.position().expect("position");
        let done = (0..partitions).all(|p| {
            let end = ends[p as usize];
            end == 0
                || matches!(positions.find_partition(topic, p).map(|e| e.offset()),
                            Some(Offset::Offset(at)) if at >= end)
        });
        if done {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "reading {topic} did not reach the high-water marks {ends:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.expect("consume");
            out.push(Consumed {
                partition: message.partition(),
                offset: message.offset(),
                key: message.key().map(<[u8]>::to_vec),
                value: message.payload().unwrap_or_default().to_vec(),
            });
        }
    }
    out
}
