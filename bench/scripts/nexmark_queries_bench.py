#!/usr/bin/env python3
"""Nexmark throughput per query on the built-in generator, printed as a markdown table for
bench/RESULTS.md.

For each query: `corestrom nexmark --query Q --events N --shards S` (blackhole output; q10 writes
its partitioned files into a scratch directory), --runs times; reports the median of
(a) events/s per core from wall time (events / seconds / shards) and (b) events per CPU-second
of the whole process (user + sys; robust on a shared, loaded machine), with the run's rows.

Usage: bench/scripts/nexmark_queries_bench.py [--events 10000000] [--shards 1] [--runs 3]
           [--queries q5,q7,...]
Expects the release binary (cargo build --release).
"""
import argparse
import os
import platform
import re
import statistics
import subprocess
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "corestrom")
QUERIES = "q0,q1,q2,q3,q4,q5,q6,q7,q8,q9,q10,q11,q12,q13,q14,q15,q16,q17,q18,q19,q20,q21,q22"


def field(text, name):
    m = re.search(r"^" + re.escape(name) + r"\s+([0-9.]+)", text, re.M)
    if not m:
        raise SystemExit(f"no '{name}' in corestrom's summary:\n{text}")
    return float(m.group(1))


def one_run(query, events, shards):
    out = subprocess.run([BIN, "nexmark", "--query", query, "--events", str(events),
                          "--shards", str(shards)], check=True, capture_output=True,
                         text=True).stdout
    seconds, cpu, rows = field(out, "seconds"), field(out, "cpu seconds"), field(out, "results")
    return events / seconds / shards, events / cpu, int(rows)


def rate(x):
    return f"{x / 1e6:.2f} M" if x >= 1e6 else f"{x / 1e3:.0f} k"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--queries", default=QUERIES)
    a = p.parse_args()
    with open("/proc/loadavg") as f:
        load_before = " ".join(f.read().split()[:3])
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average before {load_before}.")
    print()
    print("| query | rows | events/s per core (wall) | events per CPU-second |")
    print("|---|---|---|---|")
    for query in a.queries.split(","):
        runs = [one_run(query, a.events, a.shards) for _ in range(a.runs)]
        wall = statistics.median(r[0] for r in runs)
        cpu = statistics.median(r[1] for r in runs)
        print(f"| {query} | {runs[0][2]:,} | {rate(wall)} | {rate(cpu)} |", flush=True)


if __name__ == "__main__":
    main()
