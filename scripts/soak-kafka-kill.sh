#!/usr/bin/env bash
# Soak test of exactly-once Kafka in -> Kafka out under SIGKILL: RUNS runs (each killed up to 5
# times, then run to completion) against a fresh noida-db, with a fresh seed; every run's
# read_committed output must hold each input record exactly once.
# Usage: scripts/soak-kafka-kill.sh [RUNS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-200}
seed=${2:-$(date +%s)}
scripts/setup-kafka.sh >/dev/null
echo "kafka soak: $runs runs, seed $seed"
CORESTROM_KAFKA_KILL_RUNS=$runs CORESTROM_KAFKA_KILL_SEED=$seed \
  cargo test --release -p corestrom-kafka --test kill_exactly_once -- --nocapture
