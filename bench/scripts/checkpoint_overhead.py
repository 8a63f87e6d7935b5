#!/usr/bin/env python3
"""Throughput with checkpoints vs without, in one run (interleaved repetitions).

For each query: the same `corestrom nexmark` command without checkpoints, and with
`--state-dir` at each interval; q2 writes its results exactly-once into files (`--output`),
q1 goes to the blackhole (barriers, positions and manifests only). Prints a markdown table of
median events/s, the ratio to no checkpoints, checkpoints completed, and p99 latency.

Usage: bench/scripts/checkpoint_overhead.py [--events N] [--shards S] [--runs R] [--intervals 1000,100]
"""
import argparse, json, os, shutil, statistics, subprocess, tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "corestrom")


def run(query, events, shards, interval, work):
    out = os.path.join(work, "out")
    state = os.path.join(work, "state")
    shutil.rmtree(out, ignore_errors=True)
    shutil.rmtree(state, ignore_errors=True)
    cmd = [BIN, "nexmark", "--query", query, "--events", str(events), "--shards", str(shards), "--json"]
    if query == "q2":
        cmd += ["--output", out]
    if interval:
        cmd += ["--state-dir", state, "--checkpoint-interval", str(interval)]
    text = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    result = json.loads(text.strip().splitlines()[-1])
    manifests = os.path.join(state, "checkpoints")
    listed = subprocess.run([BIN, "checkpoints", "list", state], capture_output=True, text=True).stdout if interval else ""
    result["last_checkpoint"] = max((int(l.split()[0]) for l in listed.splitlines() if l.strip() and l.split()[0].isdigit()), default=0)
    return result


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--events", type=int, default=40_000_000)
    p.add_argument("--shards", type=int, default=2)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--intervals", default="1000,100")
    a = p.parse_args()
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)
    intervals = [0] + [int(i) for i in a.intervals.split(",")]
    print(f"Command: `bench/scripts/checkpoint_overhead.py --events {a.events} --shards {a.shards} --runs {a.runs} --intervals {a.intervals}`; load1 before {os.getloadavg()[0]:.2f}\n")
    print("| query | sink | checkpoint interval | events/s (median) | vs none | checkpoints (last id) | p99 µs |")
    print("|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as work:
        for query in ("q1", "q2"):
            results = {i: [] for i in intervals}
            for _ in range(a.runs):
                for i in intervals:
                    results[i].append(run(query, a.events, a.shards, i, work))
            base = statistics.median(r["events_per_sec"] for r in results[0])
            for i in intervals:
                eps = statistics.median(r["events_per_sec"] for r in results[i])
                p99 = statistics.median(r["latency_p99_us"] for r in results[i])
                last = statistics.median(r["last_checkpoint"] for r in results[i])
                sink = "files, exactly-once" if query == "q2" else "blackhole"
                label = f"{i} ms" if i else "none"
                print(f"| {query} | {sink} | {label} | {eps/1e6:.2f} M | {eps/base:.3f} | {last:.0f} | {p99:.1f} |")
    print(f"\nload1 after {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
