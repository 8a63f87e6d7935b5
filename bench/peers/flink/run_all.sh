#!/usr/bin/env bash
# Runs run.sh for every standard query (q0-q5, q7-q22), one at a time, and collects the
# FLINK lines.
#
#   run_all.sh EVENTS_PATH PARALLELISM throughput|results [OUTROOT] [QUERY...]
#
# results mode writes OUTROOT/<query>/part-0.jsonl (default OUTROOT: dist/out). The FLINK lines
# are printed and appended to OUTROOT/flink-lines.txt (results) or dist/flink-lines.txt
# (throughput). A query that fails is reported as `FLINK query=qN failed` and the loop goes on.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
[[ $# -ge 3 ]] || { sed -n '5p' "$0" | sed 's/^# //' >&2; exit 2; }
events="$1"; parallelism="$2"; kind="$3"; shift 3
outroot="$here/dist/out"
if [[ $# -gt 0 && ! "$1" =~ ^q[0-9]+$ ]]; then outroot="$1"; shift; fi
queries=("$@")
[[ ${#queries[@]} -gt 0 ]] || queries=(q0 q1 q2 q3 q4 q5 q7 q8 q9 q10 q11 q12 q13 q14 q15 q16 q17 q18 q19 q20 q21 q22)

if [[ "$kind" == results ]]; then lines="$outroot/flink-lines.txt"; else lines="$here/dist/flink-lines.txt"; fi
mkdir -p "$(dirname "$lines")"
for q in "${queries[@]}"; do
    if [[ "$kind" == results ]]; then
        out="$("$here/run.sh" "$q" "$events" "$parallelism" results "$outroot/$q" 2>"$here/dist/tmp/$q.stderr")"
    else
        out="$("$here/run.sh" "$q" "$events" "$parallelism" throughput 2>"$here/dist/tmp/$q.stderr")"
    fi
    line="$(grep '^FLINK ' <<<"$out" | tail -n 1)"
    [[ -n "$line" ]] || line="FLINK query=$q failed (see $here/dist/tmp/$q.stderr)"
    echo "$line" | tee -a "$lines"
done
