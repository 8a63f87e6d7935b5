#!/usr/bin/env bash
# Installs tansu (crates.io, pinned), a second open-source Kafka-protocol broker the Kafka
# connector's tests can run against (CORESTROM_TEST_BROKER=tansu; see connectors/kafka/README.md),
# into target/tansu/ (git-ignored), only if it is missing. Prints the binary's path.
# Features: dynostore (the in-memory engine, memory://) and libsql (the SQLite engine, sqlite://,
# which the tests use so that a restarted broker keeps its records).
# It is a long build (~410 crates; 71 minutes on 2 busy cores on 2026-11-25, 1.5 GB of build files, removed
# afterwards), which is why CI does not run it: noida-db stays the tests' default broker.
# Needs cmake (aws-lc-sys, libsql): scripts/setup-kafka.sh installs it.
# Usage: scripts/setup-tansu.sh   (idempotent)
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.6.0
root="$PWD/target/tansu"
bin="$root/bin/tansu"
if [ ! -x "$bin" ] || [ "$(cat "$root/VERSION" 2>/dev/null)" != "$version" ]; then
  echo "setup-tansu: building tansu $version into $root (a long build)" >&2
  command -v cmake >/dev/null || scripts/setup-kafka.sh >/dev/null
  build="$PWD/target/tansu-build"
  cargo install tansu --version "$version" --locked --force \
    --features dynostore,libsql \
    --root "$root" --target-dir "$build" ${CARGO_BUILD_JOBS:+-j "$CARGO_BUILD_JOBS"} >&2
  rm -rf "$build"
  echo "$version" > "$root/VERSION"
fi
echo "$bin"
