#!/usr/bin/env bash
# Runs the Kafka connector's broker tests against one broker, one test at a time, and prints a
# line per test (PASS/FAIL) then 'N passed, N failed'.
# Usage: scripts/run-kafka-tests-against.sh BROKER [all|plain|transactional]
#   BROKER: noida-db (the default broker of `cargo test`) or tansu (scripts/setup-tansu.sh
#           installs it, a long build); each test starts its own broker on 127.0.0.1.
#   plain (the default): the tests that use no Kafka transaction; transactional: those that do;
#   all: both.
# Each test's output goes to target/kafka-tests-BROKER/TEST.log and the brokers' output to
# target/kafka-tests-BROKER/brokers/. TEST_TIMEOUT_S (default 600) bounds each test.
set -uo pipefail
cd "$(dirname "$0")/.."
broker=${1:?usage: $0 noida-db|tansu [all|plain|transactional]}
which=${2:-plain}
case "$broker" in
  noida-db) scripts/setup-kafka.sh >/dev/null || exit 1 ;;
  tansu) scripts/setup-kafka.sh >/dev/null && scripts/setup-tansu.sh >/dev/null || exit 1 ;;
  *) echo "unknown broker '$broker': noida-db or tansu" >&2; exit 2 ;;
esac

# package test-target test-name
plain=(
  "corestrom-kafka source_sink_round_trip round_trip_at_least_once_keeps_every_record_and_per_partition_order"
  "corestrom-kafka source_sink_round_trip offsets_restored_into_a_fresh_reader_continue_exactly_after_the_position"
  "corestrom-kafka source_sink_round_trip a_restored_position_of_other_partitions_is_refused"
  "corestrom-kafka malformed_records_and_broker_failures fail_policy_names_topic_partition_and_offset"
  "corestrom-kafka malformed_records_and_broker_failures skip_policy_drops_and_counts_exactly_the_bad_records"
  "corestrom-kafka malformed_records_and_broker_failures dead_letter_policy_copies_the_bad_records_with_their_origin"
  "corestrom-kafka malformed_records_and_broker_failures a_missing_topic_is_named"
  "corestrom-kafka malformed_records_and_broker_failures broker_restarted_mid_run_loses_nothing"
  "corestrom-kafka partition_watermarks one_shard_reading_two_partitions_loses_no_record_to_lateness"
  "corestrom-kafka partition_watermarks more_shards_than_partitions_count_every_record"
  "corestrom cli_nexmark_kafka kafka_in_kafka_out_at_least_once_matches_the_file_run"
)
transactional=(
  "corestrom-kafka source_sink_round_trip round_trip_exactly_once_with_checkpoints_keeps_every_record_once_and_in_order"
  "corestrom-kafka source_sink_round_trip exactly_once_without_checkpoints_commits_once_at_the_end"
  "corestrom-kafka source_sink_round_trip a_zombie_exactly_once_writer_is_fenced_by_its_successor"
  "corestrom-kafka kill_exactly_once killed_with_sigkill_at_random_moments_kafka_output_is_exactly_once"
  "corestrom cli_nexmark_kafka kafka_in_kafka_out_matches_the_file_run_exactly_once"
  "corestrom cli_nexmark_kafka killed_and_rerun_the_kafka_output_is_exactly_once"
)
case "$which" in
  plain) tests=("${plain[@]}") ;;
  transactional) tests=("${transactional[@]}") ;;
  all) tests=("${plain[@]}" "${transactional[@]}") ;;
  *) echo "unknown selection '$which': all, plain or transactional" >&2; exit 2 ;;
esac

out="$PWD/target/kafka-tests-$broker"
rm -rf "$out" && mkdir -p "$out/brokers"
export CORESTROM_TEST_BROKER="$broker" CORESTROM_TEST_BROKER_LOG="$out/brokers"
unset CORESTROM_KAFKA_BROKERS
# Build once, before the clock starts for the first test.
cargo test -q -p corestrom-kafka --tests --no-run 2>&1 | tail -n 20
cargo test -q -p corestrom --test cli_nexmark_kafka --no-run 2>&1 | tail -n 20
passed=0 failed=0
for t in "${tests[@]}"; do
  read -r package target name <<<"$t"
  started=$(date +%s)
  if timeout "${TEST_TIMEOUT_S:-600}" cargo test -q -p "$package" --test "$target" -- --exact "$name" --test-threads 1 \
      >"$out/$name.log" 2>&1; then
    result=PASS passed=$((passed + 1))
  else
    result=FAIL failed=$((failed + 1))
  fi
  echo "$result $(( $(date +%s) - started ))s $target::$name"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
