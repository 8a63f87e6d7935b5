//! Per-partition watermarks against a real Kafka-protocol broker: one shard reads two
//! partitions whose event times are 10 s apart (librdkafka hands them out in interleaved fetch
//! batches); with `KafkaSource::watermarks` each partition is watermarked on its own and the
//! shard's watermark is their minimum, so tumbling windows count every record of both
//! partitions, none late (a watermark combined by maximum instead, as one watermark over the
//! interleaved stream behaves, fails this). Also with more shards than partitions, behind a
//! `key_by` exchange.

mod support;

use std::time::Duration;

use corestrom_kafka::admin::create_topic;
use corestrom_kafka::{KafkaRecord, KafkaSource};
use corestrom_operators::prelude::*;
use support::{Broker, produce, topic};

const PER_PARTITION: u32 = 5_000;
const WINDOW_MS: i64 = 100;

/// (partition, sequence) from "p:seq"; event time: partition 0 runs 10 s ahead of partition 1.
fn parse(record: &KafkaRecord<'_>) -> Result<(i32, i64), String> {
    let text = std::str::from_utf8(record.value.unwrap_or_default()).map_err(|e| e.to_string())?;
    let (p, s) = text.split_once(':').ok_or("no ':'")?;
    let p: i32 = p.parse().map_err(|_| "bad partition")?;
    let s: i64 = s.parse().map_err(|_| "bad sequence")?;
    Ok((p, if p == 0 { 10_000 + s } else { s }))
}

fn run(shards: usize) {
    let broker = Broker::start();
    let input = topic("in");
    create_topic(&broker.connection(), &input, 2).expect("create input");
    // Partition 0 first: the shard sees the far-ahead partition before the other.
    let records: Vec<_> = (0..2)
        .flat_map(|p| (0..PER_PARTITION).map(move |s| (p, None, format!("{p}:{s}").into_bytes())))
        .collect();
    produce(&broker.address, &input, &records);

    let env = Env::builder().shards(shards).build().expect("config");
    let source = KafkaSource::new(broker.connection(), &[&input], parse)
        .bounded()
        .event_time(|r: &(i32, i64)| r.1)
        .watermarks(
            WatermarkStrategy::bounded_out_of_orderness(Duration::from_millis(10))
                .with_idleness(Duration::from_secs(1)),
        );
    let counts = env
        .source("kafka", source)
        .key_by(|r: &(i32, i64)| r.0)
        .window(TumblingEventTimeWindows::of(Duration::from_millis(
            WINDOW_MS as u64,
        )))
        .aggregate_with(
            Count,
            |p: &i32, w: &TimeWindow, n: u64, out: &mut Vec<(i32, i64, u64)>| {
                out.push((*p, w.start, n))
            },
        )
        .main()
        .collect();
    env.execute_and_wait().expect("job");
    let mut counts = counts.take();
    counts.sort();
    let windows = i64::from(PER_PARTITION) / WINDOW_MS;
    assert_eq!(
        counts.len() as i64,
        2 * windows,
        "every window of both partitions fires"
    );
    for (p, start, n) in counts {
        assert_eq!(
            n, WINDOW_MS as u64,
            "partition {p}, window {start}: records were late"
        );
    }
}

#[test]
fn one_shard_reading_two_partitions_loses_no_record_to_lateness() {
    run(1);
}

#[test]
fn more_shards_than_partitions_count_every_record() {
    run(3);
}
