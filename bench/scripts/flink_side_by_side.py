#!/usr/bin/env python3
"""Nexmark throughput of corestrom and Apache Flink 2.3 side by side, on the same event files.

For each parallelism P: one event set from corestrom's generator (`corestrom nexmark generate
--split-dir DIR --splits P`: P time-ordered files, one per source split; at P=1 the one file is
given directly). For each query both engines run (QUERIES below), corestrom reads it with
`--input DIR --shards P`, Flink with `bench/peers/flink/run.sh QUERY DIR P throughput`, one job
at a time. Measured for both: wall seconds and CPU seconds (user + sys) of the whole process.

* corestrom: wall and CPU of the child process (`resource.getrusage(RUSAGE_CHILDREN)` deltas),
  median of --runs runs (by wall time).
* Flink: run.sh's FLINK line: raw `wall_s`/`cpu_s` (the whole JVM: start, planning, MiniCluster),
  and net `net_wall_s`/`net_cpu_s` (minus a baseline run of the same job on 1000 events per file:
  the fixed start-up cost). The net figures are the headline; they are only trustworthy when the
  net time is long (~20 s or more), which the default size is not (see the printed note).

Events per core, two ways: (a) events / wall / P (what P cores deliver), (b) events per
CPU-second (what one busy core delivers; robust on a shared, loaded machine).

Usage: bench/scripts/flink_side_by_side.py [--events 2000000] [--parallelism 1,2]
           [--queries q0,q1,q2] [--runs 3] [--no-build] [--write-results]
Prints a markdown section; with --write-results also appends it to bench/RESULTS.md.
"""
import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "corestrom")
FLINK = os.path.join(ROOT, "bench", "peers", "flink")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
HEADING = "## Nexmark: corestrom vs Flink 2.3 (side by side)"

# Queries both engines run; add a query here once corestrom has it (Flink's run.sh has q0-q22).
QUERIES = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q10", "q11", "q12", "q13", "q14",
           "q15", "q16", "q17", "q18", "q19", "q20", "q21", "q22"]


def log(message):
    print(f"[side-by-side] {message}", file=sys.stderr, flush=True)


def build():
    log("cargo build --release")
    subprocess.run(["cargo", "build", "--release", "-q"], cwd=ROOT, check=True)


def install_flink():
    # install.sh is idempotent: it skips the download and the compile when their outputs exist.
    subprocess.run([os.path.join(FLINK, "install.sh")], check=True, stdout=sys.stderr)


def generate(events, parallelism, seed, workdir):
    """One event set for parallelism P: a directory of P time-ordered files; returns the path
    both engines read (the directory, or its one file at P=1)."""
    directory = os.path.join(workdir, f"events-{events}-p{parallelism}-s{seed}")
    if not os.path.isdir(directory):
        log(f"generating {events} events into {parallelism} files in {directory}")
        subprocess.run([BIN, "nexmark", "generate", "--events", str(events), "--seed", str(seed),
                        "--splits", str(parallelism), "--split-dir", directory + ".tmp"],
                       check=True, stderr=subprocess.DEVNULL)
        os.rename(directory + ".tmp", directory)
    files = sorted(f for f in os.listdir(directory) if f.endswith(".jsonl") and f[0] != ".")
    assert len(files) == parallelism, files
    return os.path.join(directory, files[0]) if parallelism == 1 else directory


def run_corestrom(query, path, parallelism):
    """One corestrom run: its JSON summary plus the process's wall and CPU seconds."""
    cmd = [BIN, "nexmark", "--query", query, "--input", path, "--shards", str(parallelism),
           "--json"]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.monotonic()
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    wall = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    summary = json.loads(out.strip().splitlines()[-1])
    return {"events": summary["events"], "wall_s": wall, "cpu_s": cpu,
            "job_s": summary["seconds"]}


def run_flink(query, path, parallelism):
    """One Flink run: the key=value pairs of run.sh's FLINK line."""
    cmd = [os.path.join(FLINK, "run.sh"), query, path, str(parallelism), "throughput"]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    line = next(l for l in reversed(out.stdout.splitlines()) if l.startswith("FLINK "))
    fields = dict(kv.split("=", 1) for kv in line.split()[1:])

    def number(key):
        value = fields.get(key, "na")
        return None if value == "na" else float(value)

    return {"events": int(fields["events"]), "wall_s": number("wall_s"),
            "cpu_s": number("cpu_s"), "net_wall_s": number("net_wall_s"),
            "net_cpu_s": number("net_cpu_s"), "line": line}


def per_core(events, wall, cpu, parallelism):
    """(events / wall / P, events per CPU-second); None where the time is not positive."""
    a = events / wall / parallelism if wall and wall > 0 else None
    b = events / cpu if cpu and cpu > 0 else None
    return a, b


def fmt_rate(value):
    if value is None:
        return "n/a"
    if value >= 1e6:
        return f"{value / 1e6:.2f} M"
    if value >= 1e3:
        return f"{value / 1e3:.1f} k"
    return f"{value:.0f}"


def fmt_s(value):
    return "n/a" if value is None else f"{value:.2f}"


def ratio(a, b):
    return "n/a" if a is None or b is None else f"{a / b:.1f}×"


def machine_lines(args, load_before):
    def cmd_out(cmd):
        try:
            return subprocess.run(cmd, capture_output=True, text=True).stdout.strip()
        except OSError:
            return "?"

    java = cmd_out(["bash", "-c", "java -version 2>&1 | head -n 1"])
    commit = cmd_out(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"])
    load_after = os.getloadavg()
    return [
        f"Machine: {platform.machine()}, nproc {cmd_out(['nproc'])}, kernel {platform.release()}, "
        f"{java}; corestrom commit {commit}; "
        f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.",
        f"Load average (1/5/15 min) before: {' '.join(f'{x:.2f}' for x in load_before)}; "
        f"after: {' '.join(f'{x:.2f}' for x in load_after)} (a shared machine: other builds ran).",
        "",
        "Command: `" + " ".join(shlex.quote(a) for a in ["bench/scripts/flink_side_by_side.py"]
                                  + sys.argv[1:]) + "`",
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=2_000_000)
    p.add_argument("--parallelism", default="1,2")
    p.add_argument("--queries", default=",".join(QUERIES))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--runs", type=int, default=3, help="corestrom runs per cell (median)")
    p.add_argument("--workdir", default=os.path.join(ROOT, "bench", "out", "side-by-side"))
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--write-results", action="store_true")
    a = p.parse_args()
    queries = a.queries.split(",")
    unknown = [q for q in queries if q not in QUERIES]
    if unknown:
        p.error(f"queries not run by both engines: {unknown}; known: {QUERIES}")
    parallelisms = [int(x) for x in a.parallelism.split(",")]
    load_before = os.getloadavg()
    if not a.no_build:
        build()
    install_flink()
    os.makedirs(a.workdir, exist_ok=True)

    rows = []
    for parallelism in parallelisms:
        path = generate(a.events, parallelism, a.seed, a.workdir)
        for query in queries:
            log(f"{query} P={parallelism}: corestrom x{a.runs}")
            runs = sorted((run_corestrom(query, path, parallelism) for _ in range(a.runs)),
                          key=lambda r: r["wall_s"])
            c = runs[len(runs) // 2]
            log(f"{query} P={parallelism}: flink")
            f = run_flink(query, path, parallelism)
            log(f.get("line", ""))
            if c["events"] != f["events"]:
                log(f"warning: event counts differ: corestrom {c['events']}, flink {f['events']}")
            rows.append((query, parallelism, c, f))

    lines = [HEADING, ""] + machine_lines(a, load_before) + [""]
    lines += [
        f"{a.events:,} events (corestrom's generator, seed {a.seed}); P time-ordered files "
        "read by P source splits in both engines; throughput mode (Flink: streaming, blackhole "
        f"sink; corestrom: blackhole). corestrom: median of {a.runs} runs; Flink: one run, "
        "baseline (fixed start-up cost, 1000 events per file) from run.sh, cached in "
        "`bench/peers/flink/dist/baseline/`.",
        "",
        "Per core: (a) = events / wall s / P; (b) = events per CPU-second (user + sys of the "
        "whole process). Flink *net* = minus its baseline (JVM start, planning, MiniCluster); "
        "*raw* = the whole process. corestrom's wall and CPU are the whole process too "
        "(its start-up is milliseconds).",
        "",
        "| query | P | engine | events | wall s | CPU s | (a) events/s per core | "
        "(b) events per CPU-s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    ratios = []
    short_net = False
    for query, parallelism, c, f in rows:
        ca, cb = per_core(c["events"], c["wall_s"], c["cpu_s"], parallelism)
        na, nb = per_core(f["events"], f["net_wall_s"], f["net_cpu_s"], parallelism)
        ra, rb = per_core(f["events"], f["wall_s"], f["cpu_s"], parallelism)
        short_net |= f["net_wall_s"] is None or f["net_wall_s"] < 20
        lines.append(f"| {query} | {parallelism} | corestrom | {c['events']:,} | "
                     f"{fmt_s(c['wall_s'])} | {fmt_s(c['cpu_s'])} | {fmt_rate(ca)} | "
                     f"{fmt_rate(cb)} |")
        lines.append(f"| {query} | {parallelism} | Flink net | {f['events']:,} | "
                     f"{fmt_s(f['net_wall_s'])} | {fmt_s(f['net_cpu_s'])} | {fmt_rate(na)} | "
                     f"{fmt_rate(nb)} |")
        lines.append(f"| {query} | {parallelism} | Flink raw | {f['events']:,} | "
                     f"{fmt_s(f['wall_s'])} | {fmt_s(f['cpu_s'])} | {fmt_rate(ra)} | "
                     f"{fmt_rate(rb)} |")
        ratios.append((query, parallelism, ratio(ca, na), ratio(cb, nb), ratio(ca, ra),
                       ratio(cb, rb)))
    lines += [
        "",
        "corestrom / Flink, events per core:",
        "",
        "| query | P | (a) vs Flink net | (b) vs Flink net | (a) vs Flink raw | (b) vs Flink raw |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {q} | {p_} | {a1} | {b1} | {a2} | {b2} |"
              for q, p_, a1, b1, a2, b2 in ratios]
    lines += [
        "",
        "Note: corestrom pins shard i to the i-th core the process may use (Flink's threads are "
        "not pinned), so on a shared machine a busy core 0 stretches corestrom's wall time at "
        "P=1 while its CPU seconds stay put; (b) is the figure that load does not distort.",
    ]
    if short_net:
        lines += [
            "",
            "Note: Flink's net wall time is below 20 s in some rows, so its net figures carry "
            "the noise of subtracting two start-up-dominated runs on a shared machine; treat "
            "them as indicative (a larger `--events` gives firmer numbers).",
        ]
    section = "\n".join(lines) + "\n"
    print(section)
    if a.write_results:
        new = not os.path.exists(RESULTS)
        with open(RESULTS, "a", encoding="utf-8") as out:
            if new:
                out.write("# corestrom benchmark results\n")
            out.write("\n" + section)
        log(f"appended to {RESULTS}")


if __name__ == "__main__":
    main()
