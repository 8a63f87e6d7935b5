//! The source and sink against a real Kafka-protocol broker: round trip with per-partition
//! order (at-least-once and exactly-once), offsets restored into a fresh reader, and a zombie
//! exactly-once writer fenced by its successor.

mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use corestrom_kafka::admin::create_topic;
use corestrom_kafka::{KafkaOutput, KafkaRecord, KafkaSink, KafkaSource};
use corestrom_operators::prelude::*;
use corestrom_runtime::CheckpointId;
use corestrom_runtime::sink::Sink;
use corestrom_runtime::source::SourcePoll;
use support::{Broker, produce, read_committed, topic};

/// (partition, sequence) as text "p:seq".
fn value(partition: i32, seq: u32) -> Vec<u8> {
    format!("{partition}:{seq}").into_bytes()
}

fn parse(record: &KafkaRecord<'_>) -> Result<(i32, u32), String> {
    let text = std::str::from_utf8(record.value.unwrap_or_default()).map_err(|e| e.to_string())?;
    let (p, s) = text.split_once(':').ok_or("no ':'")?;
    Ok((
        p.parse().map_err(|_| "bad partition")?,
        s.parse().map_err(|_| "bad sequence")?,
    ))
}

fn write_back(row: &(i32, u32), out: &mut KafkaOutput) {
    out.set_partition(row.0);
    out.key().extend_from_slice(&row.1.to_le_bytes());
    out.value()
        .extend_from_slice(format!("{}:{}", row.0, row.1).as_bytes());
}

fn load_input(broker: &Broker, partitions: i32, per_partition: u32) -> String {
    let input = topic("in");
    create_topic(&broker.connection(), &input, partitions).expect("create input");
    let records: Vec<_> = (0..per_partition)
        .flat_map(|s| (0..partitions).map(move |p| (p, None, value(p, s))))
        .collect();
    produce(&broker.address, &input, &records);
    input
}

/// Every partition of `output` holds exactly `0..per_partition` of its own sequence, in order.
fn assert_in_order(broker: &Broker, output: &str, partitions: i32, per_partition: u32) {
    let mut by_partition: BTreeMap<i32, Vec<u32>> = BTreeMap::new();
    for record in read_committed(&broker.address, output) {
        let text = String::from_utf8(record.value).expect("utf8");
        let (p, s) = text.split_once(':').expect("p:s");
        assert_eq!(
            p.parse::<i32>().unwrap(),
            record.partition,
            "kept its partition"
        );
        by_partition
            .entry(record.partition)
            .or_default()
            .push(s.parse().unwrap());
    }
    assert_eq!(by_partition.len(), partitions as usize);
    for (p, seqs) in by_partition {
        assert_eq!(
            seqs,
            (0..per_partition).collect::<Vec<_>>(),
            "partition {p}"
        );
    }
}

#[test]
fn round_trip_at_least_once_keeps_every_record_and_per_partition_order() {
    let broker = Broker::start();
    let input = load_input(&broker, 4, 2_000);
    let output = topic("out");
    create_topic(&broker.connection(), &output, 4).unwrap();
    let env = Env::builder().shards(3).build().unwrap();
    let source = KafkaSource::new(broker.connection(), &[&input], parse).bounded();
    let stats = source.stats();
    env.source("kafka", source).sink(
        "kafka-out",
        KafkaSink::at_least_once(broker.connection(), &output, write_back),
    );
    let report = env.execute_and_wait().expect("job");
    assert_eq!(report.totals.source_records, 8_000);
    assert_eq!(stats.records(), 8_000);
    assert_in_order(&broker, &output, 4, 2_000);
}

#[test]
fn round_trip_exactly_once_with_checkpoints_keeps_every_record_once_and_in_order() {
    let broker = Broker::start();
    let input = load_input(&broker, 3, 3_000);
    let output = topic("out");
    create_topic(&broker.connection(), &output, 3).unwrap();
    let state = tempfile::tempdir().unwrap();
    let env = Env::builder()
        .shards(4) // more shards than partitions: one shard reads nothing
        .checkpoint_every(Duration::from_millis(20), state.path().join("state"))
        .build()
        .unwrap();
    env.source(
        "kafka",
        KafkaSource::new(broker.connection(), &[&input], parse).bounded(),
    )
    .sink(
        "kafka-out",
        KafkaSink::exactly_once(
            broker.connection(),
            &output,
            &topic("job"),
            &state.path().join("staging"),
            write_back,
        ),
    );
    env.execute_and_wait().expect("job");
    assert_in_order(&broker, &output, 3, 3_000);
}

#[test]
fn exactly_once_without_checkpoints_commits_once_at_the_end() {
    let broker = Broker::start();
    let input = load_input(&broker, 2, 500);
    let output = topic("out");
    create_topic(&broker.connection(), &output, 2).unwrap();
    let staging = tempfile::tempdir().unwrap();
    let env = Env::builder().shards(2).build().unwrap();
    env.source(
        "kafka",
        KafkaSource::new(broker.connection(), &[&input], parse).bounded(),
    )
    .sink(
        "kafka-out",
        KafkaSink::exactly_once(
            broker.connection(),
            &output,
            &topic("job"),
            staging.path(),
            write_back,
        ),
    );
    env.execute_and_wait().expect("job");
    assert_in_order(&broker, &output, 2, 500);
}

/// A reader's position, restored into a fresh reader of the same split, continues exactly
/// after the last record emitted: nothing skipped, nothing read twice.
#[test]
fn offsets_restored_into_a_fresh_reader_continue_exactly_after_the_position() {
    let broker = Broker::start();
    let input = load_input(&broker, 2, 1_000);
    let source = KafkaSource::new(broker.connection(), &[&input], parse).bounded();
    let split = SplitContext {
        shard: 0,
        shards: 1,
    };
    let mut first = source.create_reader(split).expect("reader");
    let mut seen = Vec::new();
    let mut batch = Vec::new();
    while seen.len() < 700 {
        first.poll(&mut batch, 100, 0).expect("poll");
        seen.extend(batch.drain(..).map(|r| r.value));
    }
    let position = first.position().expect("replayable");
    drop(first);
    let mut second = source.create_reader(split).expect("reader");
    second.restore(&position).expect("restore");
    loop {
        let status = second.poll(&mut batch, 100, 0).expect("poll");
        seen.extend(batch.drain(..).map(|r| r.value));
        if status == SourcePoll::Finished {
            break;
        }
    }
    seen.sort_unstable();
    let expected: Vec<_> = (0..2)
        .flat_map(|p| (0..1_000).map(move |s| (p, s)))
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    assert_eq!(seen, expected);
}

#[test]
fn a_restored_position_of_other_partitions_is_refused() {
    let broker = Broker::start();
    let input = load_input(&broker, 2, 10);
    let source = KafkaSource::new(broker.connection(), &[&input], parse).bounded();
    let whole = source
        .create_reader(SplitContext {
            shard: 0,
            shards: 1,
        })
        .unwrap();
    let position = whole.position().unwrap();
    let mut half = source
        .create_reader(SplitContext {
            shard: 0,
            shards: 2,
        })
        .unwrap();
    let err = half.restore(&position).unwrap_err().to_string();
    assert!(err.contains("are not this shard's"), "{err}");
}

/// Two writers with one transactional.id: the second fences the first, whose commit then fails;
/// nothing the zombie staged becomes visible.
#[test]
fn a_zombie_exactly_once_writer_is_fenced_by_its_successor() {
    let broker = Broker::start();
    let output = topic("out");
    create_topic(&broker.connection(), &output, 1).unwrap();
    let job = topic("job");
    let (zombie_dir, successor_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let sink = |dir: &std::path::Path| {
        KafkaSink::exactly_once(broker.connection(), &output, &job, dir, write_back)
    };
    let split = SplitContext {
        shard: 0,
        shards: 1,
    };
    let mut zombie = sink(zombie_dir.path()).create_writer(split).unwrap();
    zombie.recover(None).unwrap();
    zombie
        .write(&mut vec![Record::new(1, (0, 1)), Record::new(2, (0, 2))])
        .unwrap();
    let transaction = zombie.prepare_commit(CheckpointId(1)).unwrap();
    assert!(!transaction.is_empty());

    let mut successor = sink(successor_dir.path()).create_writer(split).unwrap();
    successor.recover(None).unwrap();
    successor.write(&mut vec![Record::new(3, (0, 3))]).unwrap();
    let t = successor.prepare_commit(CheckpointId(1)).unwrap();
    successor.commit(&t).unwrap();
    successor.finish().unwrap();

    zombie.commit(&transaction).unwrap(); // handed to the committer thread
    let err = zombie.finish().unwrap_err().to_string();
    assert!(err.to_lowercase().contains("fenced"), "{err}");
    let values: Vec<_> = read_committed(&broker.address, &output)
        .into_iter()
        .map(|r| String::from_utf8(r.value).unwrap())
        .collect();
    assert_eq!(values, vec!["0:3".to_string()]);
}
