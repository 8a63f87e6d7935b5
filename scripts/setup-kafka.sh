#!/usr/bin/env bash
# Installs what the Kafka connector needs, each piece only if it is missing:
# - cmake and libcurl headers, to build the bundled librdkafka (rdkafka's `cmake-build` feature);
# - the `noida-db` Kafka-protocol broker (PyPI, pinned) into .venv-kafka/, used by the tests,
#   the benchmarks and the example. Prints the broker binary's path (.venv-kafka/noida-db).
# Usage: scripts/setup-kafka.sh   (idempotent; needs root for apt-get, as on CI)
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v cmake >/dev/null || { [ ! -e /usr/include/x86_64-linux-gnu/curl/curl.h ] && [ ! -e /usr/include/curl/curl.h ]; }; then
  echo "setup-kafka: installing cmake and libcurl4-openssl-dev" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq cmake libcurl4-openssl-dev >&2
fi
venv=.venv-kafka
if [ ! -x "$venv/bin/noida-db" ]; then  # pip installs the wrapper and the binary
  echo "setup-kafka: installing noida-db 0.2.3 into $venv" >&2
  python3 -m venv "$venv" >&2
  "$venv/bin/pip" install -q 'noida-db==0.2.3' >&2
fi
# The console script is a Python wrapper that runs the real binary as a child: killing the
# wrapper would orphan the broker. Tests and tools start the binary itself, linked here.
if [ ! -x "$venv/noida-db" ]; then
  real=$("$venv/bin/python" -c 'import noida_db, os; print(os.path.join(os.path.dirname(noida_db.__file__), "noida-db"))')
  ln -sf "$real" "$venv/noida-db"
fi
echo "$PWD/$venv/noida-db"
