//! Kafka in, keyed tumbling window, Kafka out: page views (`user,page,time_ms` text messages)
//! from topic `views` are counted per page in 1 s event-time windows, and each window's count
//! goes to topic `view-counts` as `page,window_start,count`, keyed by page, exactly-once
//! (checkpointed window state and offsets, one Kafka transaction per checkpoint).
//!
//! Run with `cargo run --release --example kafka_window_counts`. With `CORESTROM_KAFKA_BROKERS`
//! set it uses those brokers; otherwise it starts a local noida-db (installed by
//! `scripts/setup-kafka.sh`) on a free port with a temporary data directory and stops it at the
//! end.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use corestrom::kafka::admin::create_topic;
use corestrom::kafka::rdkafka::consumer::{BaseConsumer, Consumer};
use corestrom::kafka::rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};
use corestrom::kafka::{
    KafkaConnection, KafkaOutput, KafkaRecord, KafkaSink, KafkaSource, TopicLoader,
};
use corestrom::prelude::*;

const PAGES: [&str; 4] = ["home", "search", "cart", "checkout"];
const VIEWS: u64 = 20_000;

/// A page view: (page, event time in ms).
fn parse_view(record: &KafkaRecord<'_>) -> Result<(String, EventTime), String> {
    let text = std::str::from_utf8(record.value.unwrap_or_default()).map_err(|e| e.to_string())?;
    let mut fields = text.split(',');
    let (_user, page, time) = (fields.next(), fields.next(), fields.next());
    match (page, time.and_then(|t| t.parse().ok())) {
        (Some(page), Some(time)) => Ok((page.to_string(), time)),
        _ => Err(format!("expected user,page,time_ms, got '{text}'")),
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (brokers, _broker) = brokers()?;
    let connection = KafkaConnection::new(brokers.clone());
    // Two partitions: the source watermarks each one on its own (their minimum is the shard's
    // watermark), so a shard reading both loses nothing to their interleaving.
    create_topic(&connection, "views", 2)?;
    create_topic(&connection, "view-counts", 1)?;

    // 20 000 views, 4 ms of event time apart: 80 s of traffic.
    let mut loader = TopicLoader::new(&connection)?;
    for i in 0..VIEWS {
        let line = format!("user{},{},{}", i % 97, PAGES[(i % 7 % 4) as usize], i * 4);
        loader.send("views", Some((i % 2) as i32), None, line.as_bytes(), None)?;
    }
    loader.finish()?;

    // Checkpoints every 200 ms: window state, source offsets and the sink's transactions.
    let state = tempfile::tempdir()?;
    let env = Env::builder()
        .shards(2)
        .checkpoint_every(Duration::from_millis(200), state.path().join("state"))
        .build()?;
    env.source(
        "views",
        KafkaSource::new(connection.clone(), &["views"], parse_view)
            .bounded()
            .event_time(|view: &(String, EventTime)| view.1)
            .watermarks(WatermarkStrategy::bounded_out_of_orderness(
                Duration::from_millis(200),
            )),
    )
    .key_by(|view: &(String, EventTime)| view.0.clone())
    .window(TumblingEventTimeWindows::of(Duration::from_secs(1)))
    .aggregate_with(
        Count,
        |page: &String, w: &TimeWindow, n: u64, out: &mut Vec<(String, i64, u64)>| {
            out.push((page.clone(), w.start, n))
        },
    )
    .main()
    .sink(
        "view-counts",
        // Exactly-once: each checkpoint's counts are one Kafka transaction, committed when the
        // checkpoint completes; a read_committed consumer never sees a count twice.
        KafkaSink::exactly_once(
            connection,
            "view-counts",
            "kafka-window-counts",
            &state.path().join("staging"),
            |row: &(String, i64, u64), out: &mut KafkaOutput| {
                out.key().extend_from_slice(row.0.as_bytes());
                out.value()
                    .extend_from_slice(format!("{},{},{}", row.0, row.1, row.2).as_bytes());
            },
        ),
    );
    let report = env.execute_and_wait()?;
    println!(
        "read {} views, wrote {} window counts",
        report.totals.source_records, report.totals.sink_records
    );

    let counts = read_all(&brokers, "view-counts", report.totals.sink_records)?;
    let total: u64 = counts
        .iter()
        .filter_map(|line| line.rsplit(',').next()?.parse::<u64>().ok())
        .sum();
    for line in counts.iter().take(8) {
        println!("{line}");
    }
    println!("... {} rows, {total} views counted", counts.len());
    assert_eq!(total, VIEWS);
    Ok(())
}

/// Reads `expected` messages from partition 0 of `topic`.
fn read_all(
    brokers: &str,
    topic: &str,
    expected: u64,
) -> Result<Vec<String>, Box<dyn std::error::Error>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "kafka-window-counts-example")
        .set("isolation.level", "read_committed")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    assignment.add_partition_offset(topic, 0, Offset::Beginning)?;
    consumer.assign(&assignment)?;
    let mut lines = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (lines.len() as u64) < expected && std::time::Instant::now() < deadline {
        if let Some(message) = consumer.poll(Duration::from_millis(200)) {
            lines
                .push(String::from_utf8_lossy(message?.payload().unwrap_or_default()).into_owned());
        }
    }
    Ok(lines)
}

/// A broker that is stopped (killed by pid) when dropped, with its data directory.
struct LocalBroker(Child, std::path::PathBuf);

impl Drop for LocalBroker {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
        let _ = std::fs::remove_dir_all(&self.1);
    }
}

fn brokers() -> Result<(String, Option<LocalBroker>), Box<dyn std::error::Error>> {
    if let Ok(brokers) = std::env::var("CORESTROM_KAFKA_BROKERS") {
        return Ok((brokers, None));
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let setup = Command::new(root.join("scripts/setup-kafka.sh")).output()?;
    if !setup.status.success() {
        return Err(format!(
            "scripts/setup-kafka.sh failed: {}",
            String::from_utf8_lossy(&setup.stderr)
        )
        .into());
    }
    let binary = String::from_utf8(setup.stdout)?.trim().to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let data = std::env::temp_dir().join(format!("corestrom-example-kafka-{}", std::process::id()));
    let child = Command::new(binary)
        .args(["start", "--data-dir"])
        .arg(&data)
        .args([
            "--host",
            "127.0.0.1",
            "--only",
            "kafka",
            "--kafka-port",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let broker = LocalBroker(child, data);
    let address = format!("127.0.0.1:{port}");
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(&address).is_err() {
        if std::time::Instant::now() > deadline {
            return Err("noida-db did not start within 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok((address, Some(broker)))
}
