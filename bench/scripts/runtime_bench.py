#!/usr/bin/env python3
"""Runtime benchmarks of issue 2, printed as markdown for bench/RESULTS.md.

1. Throughput: q0, q1, q2 at 1 and 2 shards (median of RUNS runs), events/s per core and the
   2-shard/1-shard scaling ratio.
2. Latency at half of peak: for each query and shard count, run with --rate = half of the
   measured peak events/s and report p50/p99/p99.9 (median of RUNS runs).

Usage: bench/scripts/runtime_bench.py [--events N] [--runs R] [--queries q0,q1] [--shards 1,2]
Builds the release binary first. Each run is one `corestrom nexmark ... --json` process.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "corestrom")


def run(query, events, shards, rate=None):
    cmd = [BIN, "nexmark", "--query", query, "--events", str(events), "--shards", str(shards), "--json"]
    if rate:
        cmd += ["--rate", str(int(rate))]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    lines = out.strip().splitlines()
    result = json.loads(lines[-1])
    # The shard threads' CPU time (text summary): events per CPU-second is robust to other load.
    for line in lines:
        if line.startswith("cpu seconds"):
            result["shard_cpu_s"] = float(line.split()[2])
    return result


def median(values):
    return statistics.median(values)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=50_000_000)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--queries", default="q0,q1,q2")
    p.add_argument("--shards", default="1,2")
    p.add_argument("--latency-events", type=int, default=20_000_000)
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    queries = a.queries.split(",")
    shard_counts = [int(s) for s in a.shards.split(",")]
    load = os.getloadavg()[0]
    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.release()}; "
          f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load1 before: {load:.2f}\n")
    print(f"Command: `bench/scripts/runtime_bench.py --events {a.events} --runs {a.runs} "
          f"--queries {a.queries} --shards {a.shards} --latency-events {a.latency_events}`\n")
    peak = {}
    print("| query | shards | events/s | events/s per core (wall) | min .. max | events per shard-CPU-second | p99 µs at peak |")
    print("|---|---|---|---|---|---|---|")
    for q in queries:
        for s in shard_counts:
            results = [run(q, a.events, s) for _ in range(a.runs)]
            per_core = [r["events_per_sec_per_core"] for r in results]
            total = median([r["events_per_sec"] for r in results])
            peak[(q, s)] = total
            per_cpu = median([r["events"] / r["shard_cpu_s"] for r in results if r.get("shard_cpu_s")])
            print(f"| {q} | {s} | {total/1e6:.2f} M | **{median(per_core)/1e6:.2f} M** | "
                  f"{min(per_core)/1e6:.2f} .. {max(per_core)/1e6:.2f} M | {per_cpu/1e6:.2f} M | "
                  f"{median([r['latency_p99_us'] for r in results]):.0f} |")
            sys.stdout.flush()
    if 1 in shard_counts and 2 in shard_counts:
        print("\n| query | 2 shards / 1 shard (total events/s) |")
        print("|---|---|")
        for q in queries:
            print(f"| {q} | {peak[(q, 2)] / peak[(q, 1)]:.2f}x |")
    print("\nLatency at half of the peak rate (source emit → sink receive, per record; µs):\n")
    print("| query | shards | offered events/s | achieved events/s | p50 | p99 | p99.9 |")
    print("|---|---|---|---|---|---|---|")
    for q in queries:
        for s in shard_counts:
            rate = peak[(q, s)] / 2
            results = [run(q, a.latency_events, s, rate) for _ in range(a.runs)]
            print(f"| {q} | {s} | {rate/1e6:.2f} M | {median([r['events_per_sec'] for r in results])/1e6:.2f} M | "
                  f"{median([r['latency_p50_us'] for r in results]):.1f} | "
                  f"{median([r['latency_p99_us'] for r in results]):.1f} | "
                  f"{median([r['latency_p999_us'] for r in results]):.1f} |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
