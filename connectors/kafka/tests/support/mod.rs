//! Test support: a Kafka-protocol broker for the test, and helpers to load and read topics.
//!
//! With `CORESTROM_KAFKA_BROKERS` set, tests use those brokers (a real Kafka cluster, say).
//! Otherwise each test starts its own broker on 127.0.0.1 with a fresh data directory and a free
//! port, waits until it accepts connections, and kills it (by its pid) when dropped. Which
//! broker: `CORESTROM_TEST_BROKER`, one of
//! - `noida-db` (the default): PyPI, pinned by `scripts/setup-kafka.sh`, which is run if the
//!   binary is missing;
//! - `tansu`: crates.io, pinned by `scripts/setup-tansu.sh` (run if the binary is missing; a
//!   long build), with its SQLite storage engine in the data directory, so a restart keeps the
//!   records (`CORESTROM_TANSU_STORAGE=memory` picks the in-memory engine instead).
//!
//! With `CORESTROM_TEST_BROKER_LOG=DIR` the broker's output goes to `DIR/<broker>-<port>.log`.

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

/// The environment variable that picks the broker a test starts (`noida-db` or `tansu`).
pub const BROKER_KIND_VAR: &str = "CORESTROM_TEST_BROKER";

/// The Kafka-protocol brokers a test can start.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BrokerKind {
    NoidaDb,
    Tansu,
}

impl BrokerKind {
    /// The kind `CORESTROM_TEST_BROKER` names (noida-db when unset).
    pub fn from_env() -> BrokerKind {
        match std::env::var(BROKER_KIND_VAR).as_deref() {
            Err(_) | Ok("") | Ok("noida-db") | Ok("noida") => BrokerKind::NoidaDb,
            Ok("tansu") => BrokerKind::Tansu,
            Ok(other) => panic!("{BROKER_KIND_VAR}={other}: expected noida-db or tansu"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            BrokerKind::NoidaDb => "noida-db",
            BrokerKind::Tansu => "tansu",
        }
    }
}

/// A broker for one test.
pub struct Broker {
    pub address: String,
    child: Option<Child>,
    _data: Option<tempfile::TempDir>,
    port: u16,
    kind: BrokerKind,
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

/// The tansu binary, installed by its setup script if missing.
pub fn tansu() -> PathBuf {
    let path = workspace_root().join("target/tansu/bin/tansu");
    if !path.exists() {
        let status = Command::new(workspace_root().join("scripts/setup-tansu.sh"))
            .stdout(Stdio::null())
            .status()
            .expect("running scripts/setup-tansu.sh");
        assert!(status.success(), "scripts/setup-tansu.sh failed");
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
    /// The configured brokers, or a fresh broker of the kind `CORESTROM_TEST_BROKER` names.
    pub fn start() -> Broker {
        let kind = BrokerKind::from_env();
        if let Ok(address) = std::env::var(BROKERS_VAR) {
            return Broker {
                address,
                child: None,
                _data: None,
                port: 0,
                kind,
            };
        }
        let data = tempfile::tempdir().expect("data dir");
        let port = free_port();
        let child = spawn(kind, data.path(), port);
        let broker = Broker {
            address: format!("127.0.0.1:{port}"),
            child: Some(child),
            _data: Some(data),
            port,
            kind,
        };
        broker.wait_until_up();
        broker
    }

    fn wait_until_up(&self) {
        let started = Instant::now();
        while TcpStream::connect(&self.address).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "{} did not listen on {} within 20 s",
                self.kind.name(),
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
        self.child = Some(spawn(self.kind, &dir, self.port));
        self.wait_until_up();
    }

    pub fn connection(&self) -> KafkaConnection {
        KafkaConnection::new(self.address.clone())
    }

    /// Which broker this is (the kind asked for, also when the brokers are external).
    pub fn kind(&self) -> BrokerKind {
        self.kind
    }
}

/// Where the broker's output goes: a log file under `CORESTROM_TEST_BROKER_LOG`, or nowhere.
fn broker_output(kind: BrokerKind, port: u16) -> (Stdio, Stdio) {
    let Ok(dir) = std::env::var("CORESTROM_TEST_BROKER_LOG") else {
        return (Stdio::null(), Stdio::null());
    };
    std::fs::create_dir_all(&dir).expect("broker log dir");
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(PathBuf::from(dir).join(format!("{}-{port}.log", kind.name())))
        .expect("broker log");
    (
        Stdio::from(log.try_clone().expect("broker log")),
        Stdio::from(log),
    )
}

fn spawn(kind: BrokerKind, dir: &std::path::Path, port: u16) -> Child {
    let (stdout, stderr) = broker_output(kind, port);
    let mut command = match kind {
        BrokerKind::NoidaDb => {
            let mut command = Command::new(noida_db());
            command
                .args(["start", "--data-dir"])
                .arg(dir)
                .args(["--host", "127.0.0.1", "--only", "kafka", "--kafka-port"])
                .arg(port.to_string());
            command
        }
        BrokerKind::Tansu => {
            let listener = format!("tcp://127.0.0.1:{port}");
            // tansu's SQLite engine takes its file relative to the working directory.
            let storage = match std::env::var("CORESTROM_TANSU_STORAGE").as_deref() {
                Ok("memory") => "memory://tansu/",
                _ => "sqlite://tansu.db",
            };
            let mut command = Command::new(tansu());
            command
                .current_dir(dir)
                .args(["broker", "--listener-url", &listener])
                .args(["--advertised-listener-url", &listener])
                .args(["--storage-engine", storage]);
            command
        }
    };
    command
        .stdin(Stdio::null())
        .stdout(stdout)
        .stderr(stderr)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", kind.name()))
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
