-- q10 Log to file system: every bid written as CSV, partitioned by event-time day and minute,
-- files rolled every minute, a partition committed (success file) once the watermark passes
-- its minute plus 1 minute (SPEC.md §3.2). This query always writes files: ${Q10_PATH} is a
-- scratch directory in throughput mode and the result's raw directory in results mode.
CREATE TABLE nexmark_q10 (
    auction  BIGINT,
    bidder  BIGINT,
    price  BIGINT,
    `dateTime`  TIMESTAMP(3),
    extra  VARCHAR,
    dt  STRING,
    hm  STRING
) PARTITIONED BY (dt, hm) WITH (
    'connector' = 'filesystem',
    'path' = '${Q10_PATH}',
    'format' = 'csv',
    'sink.partition-commit.trigger' = 'partition-time',
    'sink.partition-commit.delay' = '1 min',
    'sink.partition-commit.policy.kind' = 'success-file',
    'partition.time-extractor.timestamp-pattern' = '$dt $hm:00',
    'sink.rolling-policy.rollover-interval' = '1min',
    'sink.rolling-policy.check-interval' = '1min'
);

INSERT INTO nexmark_q10
SELECT auction, bidder, price, `dateTime`, extra,
       DATE_FORMAT(`dateTime`, 'yyyy-MM-dd'), DATE_FORMAT(`dateTime`, 'HH:mm')
FROM bid;
