#!/usr/bin/env python3
"""Checks corestrom's Nexmark results against Apache Flink 2.3's on the same event file.

One event file from corestrom's generator (`corestrom nexmark generate`, default 200 000
events). For each query: corestrom `--input FILE --shards S --output DIR` (S=2 by default, so
the one file is split between shards by byte ranges), and Flink `bench/peers/flink/run.sh QUERY
FILE 1 results DIR` (its rows already normalised to FORMAT.md by normalize.py). The two results
are compared as multisets of rows, as FORMAT.md says: integers exactly, timestamps and strings
as strings, non-integral numbers (q1's decimal price) with a relative tolerance of 1e-9.

q10 writes partitioned CSV files in both engines; both directories go through
bench/peers/flink/normalize.py first. q12 (processing time) is not compared.

Usage: bench/scripts/compare_with_flink.py [--events 200000] [--queries q0,q1,q2] [--shards 2]
           [--no-build] [--write-results]
Prints per query: equal (rows) or different (counts and a few example rows on each side). With
--write-results, appends the section to bench/RESULTS.md. Exits 1 if any query differs.
"""
import argparse
import collections
import decimal
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from datetime import datetime, timezone

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.join(ROOT, "target", "release", "corestrom")
FLINK = os.path.join(ROOT, "bench", "peers", "flink")
RESULTS = os.path.join(ROOT, "bench", "RESULTS.md")
HEADING = "## Nexmark: results compared with Flink 2.3"

# Queries both engines run; add a query here once corestrom has it. q12 is not compared: its
# processing-time windows depend on how fast each engine runs (SPEC.md §3.2), by design.
QUERIES = ["q0", "q1", "q2", "q3", "q4", "q5", "q7", "q8", "q9", "q10", "q11", "q13", "q14", "q15",
           "q16", "q17", "q18", "q19", "q20", "q21", "q22"]
# Queries whose result is a partitioned CSV directory (Flink's and corestrom's alike), turned into
# FORMAT.md rows by normalize.py before comparing.
PARTITIONED = {"q10"}
REL_TOLERANCE = 1e-9
EXAMPLES = 3


def log(message):
    print(f"[compare] {message}", file=sys.stderr, flush=True)


def canonical(value):
    """A hashable form of one JSON value: integral numbers as int (908, 908.0 and 908.000 are
    one value), other numbers as Decimal (exact as written), strings as themselves."""
    if isinstance(value, decimal.Decimal):
        if value == value.to_integral_value():
            return int(value)
        return value.normalize()
    if isinstance(value, (list, dict)):
        return json.dumps(value, sort_keys=True)
    return value


def read_rows(directory):
    """The multiset of rows of a FORMAT.md result directory (its visible *.jsonl files)."""
    rows = collections.Counter()
    for name in sorted(os.listdir(directory)):
        if name.startswith(".") or not name.endswith(".jsonl"):
            continue
        with open(os.path.join(directory, name), encoding="utf-8") as f:
            for number, line in enumerate(f, 1):
                if not line.strip():
                    continue
                obj = json.loads(line, parse_float=decimal.Decimal, parse_int=decimal.Decimal)
                rows[tuple(sorted((k, canonical(v)) for k, v in obj.items()))] += 1
    return rows


def close(a, b):
    if a == b:
        return True
    if isinstance(a, (int, decimal.Decimal)) and isinstance(b, (int, decimal.Decimal)):
        a, b = float(a), float(b)
        return abs(a - b) <= REL_TOLERANCE * max(abs(a), abs(b))
    return False


def match_with_tolerance(only_a, only_b):
    """Pairs rows left over from the exact comparison whose non-integral numbers differ by at
    most the relative tolerance; returns what is still unmatched on each side."""
    def exact_part(row):
        return tuple((k, v) for k, v in row if not isinstance(v, decimal.Decimal))

    by_key = collections.defaultdict(list)
    for row, count in only_b.items():
        by_key[exact_part(row)].append([row, count])
    left_a = collections.Counter()
    for row, count in only_a.items():
        for candidate in by_key.get(exact_part(row), []):
            if count == 0:
                break
            other, available = candidate
            if available and len(other) == len(row) and all(
                    ka == kb and close(va, vb) for (ka, va), (kb, vb) in zip(row, other)):
                taken = min(count, available)
                candidate[1] -= taken
                count -= taken
        if count:
            left_a[row] = count
    left_b = collections.Counter({row: n for rows in by_key.values() for row, n in rows if n})
    return left_a, left_b


def compare(a, b):
    """(equal, only in a, only in b) for two multisets of rows."""
    only_a, only_b = a - b, b - a
    if only_a or only_b:
        only_a, only_b = match_with_tolerance(only_a, only_b)
    return not only_a and not only_b, only_a, only_b


def show(row):
    return json.dumps({k: (str(v) if isinstance(v, decimal.Decimal) else v) for k, v in row})


def run(cmd, **kwargs):
    log(" ".join(shlex.quote(c) for c in cmd))
    return subprocess.run(cmd, check=True, **kwargs)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rate", type=int, default=10_000_000,
                   help="event-time density (events per second of event time) of the file; "
                        "a low rate spreads the events over many windows")
    p.add_argument("--queries", default=",".join(QUERIES))
    p.add_argument("--shards", type=int, default=2, help="corestrom shards")
    p.add_argument("--workdir", default=os.path.join(ROOT, "bench", "out", "compare"))
    p.add_argument("--no-build", action="store_true")
    p.add_argument("--write-results", action="store_true")
    a = p.parse_args()
    queries = a.queries.split(",")
    if not a.no_build:
        run(["cargo", "build", "--release", "-q"], cwd=ROOT)
    run([os.path.join(FLINK, "install.sh")], stdout=sys.stderr)
    os.makedirs(a.workdir, exist_ok=True)
    suffix = "" if a.rate == 10_000_000 else f"-r{a.rate}"
    events = os.path.join(a.workdir, f"events-{a.events}-s{a.seed}{suffix}.jsonl")
    if not os.path.exists(events):
        run([BIN, "nexmark", "generate", "--events", str(a.events), "--seed", str(a.seed),
             "--rate", str(a.rate), "--out", events], stderr=subprocess.DEVNULL)

    commit = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    lines = [
        HEADING, "",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}; "
        f"corestrom commit {commit}; {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC.", "",
        "Command: `" + " ".join(shlex.quote(x) for x in ["bench/scripts/compare_with_flink.py"]
                                  + sys.argv[1:]) + "`", "",
        f"{a.events:,} events from corestrom's generator (seed {a.seed}, {a.rate:,} events per "
        "second of event time) in one file; corestrom "
        f"reads it on {a.shards} shards (byte-range splits), Flink at parallelism 1 in "
        "results mode (streaming, filesystem JSON sink, normalize.py). Rows compared as "
        "multisets (FORMAT.md): integers exactly, strings and timestamps as strings, "
        f"non-integral numbers within a relative {REL_TOLERANCE:g}.", "",
        "| query | corestrom rows | Flink rows | result |",
        "|---|---|---|---|",
    ]
    details = []
    all_equal = True
    for query in queries:
        ours = os.path.join(a.workdir, "corestrom" + suffix, query)
        theirs = os.path.join(a.workdir, "flink" + suffix, query)
        written = os.path.join(a.workdir, "corestrom-raw" + suffix, query) if query in PARTITIONED else ours
        for path in {ours, written}:
            shutil.rmtree(path, ignore_errors=True)
        run([BIN, "nexmark", "--query", query, "--input", events, "--shards", str(a.shards),
             "--output", written], stdout=subprocess.DEVNULL)
        if query in PARTITIONED:
            run([sys.executable, os.path.join(FLINK, "normalize.py"), query, written, ours],
                stdout=subprocess.DEVNULL)
        run([os.path.join(FLINK, "run.sh"), query, events, "1", "results", theirs],
            stdout=subprocess.DEVNULL)
        a_rows, b_rows = read_rows(ours), read_rows(theirs)
        equal, only_a, only_b = compare(a_rows, b_rows)
        all_equal &= equal
        n_a, n_b = sum(a_rows.values()), sum(b_rows.values())
        if equal:
            verdict = "equal"
        else:
            verdict = (f"**different**: {sum(only_a.values())} rows only in corestrom, "
                       f"{sum(only_b.values())} only in Flink")
            details += [f"{query}, only in corestrom (first {EXAMPLES}):", "```"]
            details += [show(r) for r in list(only_a)[:EXAMPLES]] + ["```"]
            details += [f"{query}, only in Flink (first {EXAMPLES}):", "```"]
            details += [show(r) for r in list(only_b)[:EXAMPLES]] + ["```"]
        lines.append(f"| {query} | {n_a:,} | {n_b:,} | {verdict} |")
        log(f"{query}: {verdict}")
    if details:
        lines += [""] + details
    section = "\n".join(lines) + "\n"
    print(section)
    if a.write_results:
        new = not os.path.exists(RESULTS)
        with open(RESULTS, "a", encoding="utf-8") as out:
            if new:
                out.write("# corestrom benchmark results\n")
            out.write("\n" + section)
        log(f"appended to {RESULTS}")
    sys.exit(0 if all_equal else 1)


if __name__ == "__main__":
    main()
