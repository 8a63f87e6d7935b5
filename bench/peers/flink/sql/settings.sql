-- Table options of the Flink Nexmark project's benchmark set-up (SPEC.md §3.0): mini-batch
-- aggregation (2 s, 50 000 rows, which also enables two-phase local/global aggregation) and
-- split distinct aggregation. The reference set-up's RocksDB state backend and checkpoints are
-- not used here: state lives on the JVM heap of the embedded MiniCluster.
SET 'table.exec.mini-batch.enabled' = 'true';
SET 'table.exec.mini-batch.allow-latency' = '2s';
SET 'table.exec.mini-batch.size' = '50000';
SET 'table.optimizer.distinct-agg.split.enabled' = 'true';
-- Timestamps are UTC wall-clock values (TIMESTAMP(3) without time zone); HOUR() and
-- DATE_FORMAT() must not shift them.
SET 'table.local-time-zone' = 'UTC';
