#!/usr/bin/env bash
# Installs Apache Flink 2.3's jars (from the PyPI wheel apache-flink-libraries) into dist/ and
# compiles the SQL runner against them. Idempotent: each step is skipped when its output exists.
#
#   bench/peers/flink/install.sh          # FORCE=1 to reinstall the wheel and recompile
#
# Result: dist/pylibs/pyflink/lib/*.jar (Flink), dist/classes/{Runner,CountChar}.class.
# dist/ is git-ignored; nothing here is committed.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dist="$here/dist"
flink_version="2.3.0"
lib="$dist/pylibs/pyflink/lib"
classes="$dist/classes"

mkdir -p "$dist"

java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n 1)"
if [[ -z "$java_major" || "$java_major" -lt 17 ]]; then
    echo "install: need Java 17 or newer, found: $(java -version 2>&1 | head -n 1)" >&2
    exit 1
fi
echo "install: java $java_major ok"
command -v javac >/dev/null || { echo "install: javac not found (need a JDK, not a JRE)" >&2; exit 1; }

if [[ "${FORCE:-0}" == 1 ]]; then
    rm -rf "$dist/pylibs" "$classes"
fi

if [[ -f "$lib/flink-dist-$flink_version.jar" ]]; then
    echo "install: Flink $flink_version jars already in $lib (skipped)"
else
    echo "install: pip installing apache-flink-libraries==$flink_version into $dist/pylibs (~330 MB)"
    rm -rf "$dist/pylibs"
    python3 -m pip install --quiet --no-deps --target "$dist/pylibs" \
        "apache-flink-libraries==$flink_version"
    [[ -f "$lib/flink-dist-$flink_version.jar" ]] || {
        echo "install: wheel installed but $lib/flink-dist-$flink_version.jar is missing" >&2
        exit 1
    }
    echo "install: installed $(ls "$lib" | wc -l) jars in $lib"
fi

sources=("$here/Runner.java" "$here/CountChar.java")
stale=0
for src in "${sources[@]}"; do
    cls="$classes/$(basename "${src%.java}").class"
    [[ -f "$cls" && "$cls" -nt "$src" ]] || stale=1
done
if [[ "$stale" == 0 ]]; then
    echo "install: runner already compiled in $classes (skipped)"
else
    echo "install: compiling ${sources[*]##*/} into $classes"
    mkdir -p "$classes"
    javac -nowarn -d "$classes" -cp "$lib/*" "${sources[@]}"
fi

echo "install: done; run e.g.: $here/run.sh q1 EVENTS.jsonl 1 throughput"
