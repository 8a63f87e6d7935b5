#!/usr/bin/env python3
"""Turns Flink's result files for one Nexmark query into FORMAT.md result lines.

    normalize.py QUERY RAW_DIR OUT_DIR

RAW_DIR holds what Flink's filesystem sink wrote: JSON-lines part files (every query but q10),
or for q10 CSV part files under `dt=YYYY-MM-DD/hm=HH:mm/` partition directories. Hidden files
(`.part-…inprogress`, Flink's uncommitted files) and `_SUCCESS` markers are not rows; an
uncommitted file is reported as an error, since its rows would be missing.

OUT_DIR/part-0.jsonl receives one JSON object per row, keys in the query's column order of
SPEC.md §3, so that the multiset of lines can be compared with corestrom's result:

* integers as JSON integers; strings as JSON strings; null as null;
* timestamps as 'YYYY-MM-DD hh:mm:ss.SSS' (Flink drops trailing zeros of the fraction,
  '…:01.1' or '…:01', which is padded back to three digits);
* decimals (q1, q14 price) as JSON numbers in plain notation with trailing fractional zeros
  removed ('908.000' -> 908, '1234.560' -> 1234.56). A comparer should compare them as numbers.

q10's rows also carry the partition columns `dt` and `hm` (from the directory names), since
they are columns of q10's sink table.
"""

import csv
import decimal
import json
import os
import re
import sys
import urllib.parse

I, S, T, D = "int", "str", "ts", "dec"

BID5 = [("auction", I), ("bidder", I), ("price", I), ("dateTime", T), ("extra", S)]
BID7 = [("auction", I), ("bidder", I), ("price", I), ("channel", S), ("url", S),
        ("dateTime", T), ("extra", S)]
AUCTION10 = [("id", I), ("itemName", S), ("description", S), ("initialBid", I),
             ("reserve", I), ("dateTime", T), ("expires", T), ("seller", I), ("category", I),
             ("extra", S)]
RANKS = ["rank1", "rank2", "rank3"]
STATS12 = ([("total_bids", I)] + [(r + "_bids", I) for r in RANKS]
           + [("total_bidders", I)] + [(r + "_bidders", I) for r in RANKS]
           + [("total_auctions", I)] + [(r + "_auctions", I) for r in RANKS])
SESSION = [("bidder", I), ("bid_count", I), ("starttime", T), ("endtime", T)]

COLUMNS = {
    "q0": BID5,
    "q1": [("auction", I), ("bidder", I), ("price", D), ("dateTime", T), ("extra", S)],
    "q2": [("auction", I), ("price", I)],
    "q3": [("name", S), ("city", S), ("state", S), ("id", I)],
    "q4": [("category", I), ("avg", I)],
    "q5": [("auction", I), ("num", I)],
    "q7": BID5,
    "q8": [("id", I), ("name", S), ("stime", T)],
    "q9": AUCTION10 + [("auction", I), ("bidder", I), ("price", I), ("bid_dateTime", T),
                       ("bid_extra", S)],
    "q10": BID5 + [("dt", S), ("hm", S)],
    "q11": SESSION,
    "q12": SESSION,
    "q13": [("auction", I), ("bidder", I), ("price", I), ("dateTime", T), ("value", S)],
    "q14": [("auction", I), ("bidder", I), ("price", D), ("bidTimeType", S), ("dateTime", T),
            ("extra", S), ("c_counts", I)],
    "q15": [("day", S)] + STATS12,
    "q16": [("channel", S), ("day", S), ("minute", S)] + STATS12,
    "q17": [("auction", I), ("day", S)] + [("total_bids", I)] + [(r + "_bids", I) for r in RANKS]
           + [("min_price", I), ("max_price", I), ("avg_price", I), ("sum_price", I)],
    "q18": BID7,
    "q19": BID7 + [("rank_number", I)],
    "q20": [("auction", I), ("bidder", I), ("price", I), ("channel", S), ("url", S),
            ("bid_dateTime", T), ("bid_extra", S), ("itemName", S), ("description", S),
            ("initialBid", I), ("reserve", I), ("auction_dateTime", T), ("expires", T),
            ("seller", I), ("category", I), ("auction_extra", S)],
    "q21": [("auction", I), ("bidder", I), ("price", I), ("channel", S), ("channel_id", S)],
    "q22": [("auction", I), ("bidder", I), ("price", I), ("channel", S), ("dir1", S),
            ("dir2", S), ("dir3", S)],
}

TS = re.compile(r"^(\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?$")


def norm_ts(v):
    m = TS.match(v)
    if not m:
        raise ValueError("not a timestamp: %r" % v)
    frac = (m.group(2) or "")
    assert len(frac) <= 3 or set(frac[3:]) == {"0"}, "sub-millisecond timestamp %r" % v
    return "%s.%s" % (m.group(1), (frac + "000")[:3])


def norm_dec(v):
    d = decimal.Decimal(str(v)) if not isinstance(v, decimal.Decimal) else v
    if d == 0:
        return "0"
    return format(d.normalize(), "f")


def encode(row, columns):
    parts = []
    for name, kind in columns:
        v = row[name]
        if v is None:
            text = "null"
        elif kind == I:
            text = str(int(v))
        elif kind == D:
            text = norm_dec(v)
        elif kind == T:
            text = json.dumps(norm_ts(v))
        else:
            text = json.dumps(v, ensure_ascii=False)
        parts.append(json.dumps(name) + ":" + text)
    return "{" + ",".join(parts) + "}"


def visible_files(raw_dir):
    """Yields (path, partition dict) of committed part files; fails on uncommitted ones."""
    for root, dirs, files in os.walk(raw_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            path = os.path.join(root, name)
            if name.startswith(".") and "inprogress" in name:
                raise SystemExit("normalize: uncommitted Flink file %s" % path)
            if name.startswith(".") or name.startswith("_"):
                continue
            rel = os.path.relpath(root, raw_dir)
            # Flink escapes partition values in directory names ('00:00' -> '00%3A00').
            part = dict((k, urllib.parse.unquote(v)) for k, v in
                        (p.split("=", 1) for p in rel.split(os.sep) if "=" in p))
            yield path, part


def json_rows(path, columns):
    names = [n for n, _ in columns]
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            row = json.loads(line, parse_float=decimal.Decimal)
            if sorted(row) != sorted(names):
                raise SystemExit("normalize: %s:%d: keys %s, expected %s"
                                 % (path, lineno, sorted(row), names))
            yield row


def csv_rows(path, columns, partition):
    data_cols = [(n, k) for n, k in columns if n not in partition]
    with open(path, encoding="utf-8", newline="") as f:
        for lineno, rec in enumerate(csv.reader(f), 1):
            if len(rec) != len(data_cols):
                raise SystemExit("normalize: %s:%d: %d fields, expected %d"
                                 % (path, lineno, len(rec), len(data_cols)))
            row = dict(partition)
            for (name, kind), text in zip(data_cols, rec):
                row[name] = None if text == "" and kind != S else text
            yield row


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in COLUMNS:
        raise SystemExit("usage: normalize.py QUERY RAW_DIR OUT_DIR  (QUERY in %s)"
                         % " ".join(COLUMNS))
    query, raw_dir, out_dir = sys.argv[1:]
    columns = COLUMNS[query]
    os.makedirs(out_dir, exist_ok=True)
    out_path = os.path.join(out_dir, "part-0.jsonl")
    tmp_path = os.path.join(out_dir, ".part-0.jsonl.tmp")
    rows = files = 0
    with open(tmp_path, "w", encoding="utf-8") as out:
        for path, partition in visible_files(raw_dir):
            files += 1
            it = csv_rows(path, columns, partition) if query == "q10" else json_rows(path, columns)
            for row in it:
                out.write(encode(row, columns) + "\n")
                rows += 1
    os.replace(tmp_path, out_path)
    print("normalize: %s: %d rows from %d files -> %s" % (query, rows, files, out_path))


if __name__ == "__main__":
    main()
