#!/usr/bin/env bash
# Soak test of exactly-once under SIGKILL: runs the kill -9 harness with RUNS runs (each killed
# up to 5 times) and a fresh seed, then the exchange and keyed-state variants. Usage: scripts/soak-kill.sh [RUNS] [SEED]
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${1:-500}
seed=${2:-$(date +%s)}
echo "soak: $runs runs, seed $seed"
CORESTROM_KILL_RUNS=$runs CORESTROM_KILL_SEED=$seed \
  cargo test --release --test checkpoint_kill_restart killed_with_sigkill -- --nocapture
# The same through two exchanges (barrier alignment), runs/5 + 1 runs.
CORESTROM_KILL_RUNS=$runs cargo test --release --test checkpoint_kill_through_exchanges -- --nocapture
# Keyed state (windows, sessions, fold, process function with timers) through a key_by,
# runs/5 + 1 runs.
CORESTROM_KILL_RUNS=$runs cargo test --release --test checkpoint_kill_keyed_state -- --nocapture
