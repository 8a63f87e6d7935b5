#!/usr/bin/env bash
# Runs one Nexmark query on Apache Flink 2.3 (embedded MiniCluster) over FORMAT.md event files.
#
#   run.sh QUERY EVENTS_PATH PARALLELISM [throughput | results OUTDIR]
#
# QUERY        q0-q5, q7-q22 (q6 is not run by Flink: FLINK-19059).
# EVENTS_PATH  one JSON-lines event file (parallelism 1), or a directory holding one
#              time-ordered file per source subtask (parallelism p: p files).
# throughput   (default) streaming mode, blackhole sink; q10 writes its files to a scratch
#              directory that is removed afterwards.
# results      writes the query's result to OUTDIR as FORMAT.md result lines
#              (OUTDIR/part-0.jsonl, made by normalize.py; OUTDIR is emptied first). Flink's raw
#              files stay in OUTDIR/.flink-raw (hidden, so not part of the result). Append-only
#              queries run in streaming mode; updating ones (q4 q9 q15 q16 q17 q18 q19) in batch
#              mode, so the files hold the final table.
#
# Environment: FLINK_XMX (JVM heap, default 4g); FLINK_MODE=streaming|batch overrides the mode;
# BASELINE=0 skips the baseline run (see below); BASELINE_EVENTS (default 1000).
#
# The last line printed is machine-readable, for example:
#   FLINK query=q1 mode=streaming sink=blackhole events=200000 parallelism=1 wall_s=14.2
#     cpu_s=17.9 events_per_sec=14084 events_per_sec_per_core=11173 base_wall_s=9.1
#     base_cpu_s=10.8 net_wall_s=5.1 net_cpu_s=7.1 net_events_per_sec=39215
#     net_events_per_sec_per_core=28169 job_s=10.1 job_cpu_s=12.3
# (one line). Raw numbers (wall_s, cpu_s and the rates from them) are the whole JVM process:
# JVM start, planning, MiniCluster start and stop, and the job; cpu_s is user + sys CPU of the
# java process from /usr/bin/time. base_* are the same query, mode, sink and parallelism run on
# the first BASELINE_EVENTS lines of each input file (the fixed start-up cost; cached in
# dist/baseline/ by query, mode, sink, parallelism and file count); net_* = raw - base, and the
# net rates divide the events by them ("na" when not positive). job_s / job_cpu_s are measured
# inside the JVM from submitting the INSERT to the job's end (include planning the INSERT and
# starting the MiniCluster).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
dist="$here/dist"
lib="$dist/pylibs/pyflink/lib"
classes="$dist/classes"

usage() {
    sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

[[ $# -ge 3 ]] || usage
query="$1"
events_path="$2"
parallelism="$3"
kind="${4:-throughput}"
outdir=""
if [[ "$kind" == results ]]; then
    [[ $# -eq 5 ]] || usage
    outdir="$5"
elif [[ "$kind" != throughput || $# -ne 4 && $# -ne 3 ]]; then
    usage
fi

case "$query" in
    q6) echo "run.sh: q6 is not run by Flink (an OVER window cannot consume the top-1's retractions, FLINK-19059)" >&2; exit 2 ;;
    q[0-9]|q1[0-9]|q2[0-2]) ;;
    *) echo "run.sh: unknown query '$query' (q0-q5, q7-q22)" >&2; exit 2 ;;
esac
[[ "$parallelism" =~ ^[1-9][0-9]*$ ]] || { echo "run.sh: bad parallelism '$parallelism'" >&2; exit 2; }
[[ -e "$events_path" ]] || { echo "run.sh: no such events file or directory: $events_path" >&2; exit 2; }
[[ -f "$lib/flink-dist-2.3.0.jar" && -f "$classes/Runner.class" ]] || {
    echo "run.sh: Flink not installed; run $here/install.sh first" >&2
    exit 2
}

events_path="$(cd "$(dirname "$events_path")" && pwd)/$(basename "$events_path")"
if [[ -d "$events_path" ]]; then
    mapfile -t event_files < <(find "$events_path" -maxdepth 1 -type f ! -name '.*' ! -name '_*' | sort)
    [[ ${#event_files[@]} -gt 0 ]] || { echo "run.sh: no event files in $events_path" >&2; exit 2; }
    if [[ ${#event_files[@]} -ne "$parallelism" ]]; then
        echo "run.sh: warning: ${#event_files[@]} files for parallelism $parallelism; a source subtask that reads several time-ordered files sees the later ones as late data" >&2
    fi
else
    event_files=("$events_path")
fi
events="$(cat "${event_files[@]}" | wc -l)"

case "$query" in
    q4|q9|q15|q16|q17|q18|q19) updating=1 ;;
    *) updating=0 ;;
esac
mode=streaming
if [[ "$kind" == results && "$updating" == 1 ]]; then mode=batch; fi
mode="${FLINK_MODE:-$mode}"
if [[ "$kind" == results ]]; then sink=files; else sink=blackhole; fi

mkdir -p "$dist/tmp" "$dist/data"
side_input="$dist/data/side_input.csv"
if [[ "$query" == q13 && ! -s "$side_input" ]]; then
    # SPEC.md §3.2 q13: 10 000 rows `k,k`, k = 0..9999.
    seq 0 9999 | awk '{ print $1 "," $1 }' > "$side_input.tmp"
    mv "$side_input.tmp" "$side_input"
fi

java_opts=(
    "-Xmx${FLINK_XMX:-4g}" "-Dlog4j.configurationFile=$here/log4j2.properties"
    -XX:+IgnoreUnrecognizedVMOptions
    --add-exports=java.base/sun.net.util=ALL-UNNAMED
    --add-exports=java.rmi/sun.rmi.registry=ALL-UNNAMED
    --add-exports=java.security.jgss/sun.security.krb5=ALL-UNNAMED
    --add-opens=java.base/java.lang=ALL-UNNAMED --add-opens=java.base/java.net=ALL-UNNAMED
    --add-opens=java.base/java.io=ALL-UNNAMED --add-opens=java.base/java.nio=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang.reflect=ALL-UNNAMED
    --add-opens=java.base/java.text=ALL-UNNAMED --add-opens=java.base/java.time=ALL-UNNAMED
    --add-opens=java.base/java.util=ALL-UNNAMED --add-opens=java.base/java.util.concurrent=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.atomic=ALL-UNNAMED
    --add-opens=java.base/java.util.concurrent.locks=ALL-UNNAMED
)

# run_flink INPUT SINK_DIR -> prints "wall cpu job_s job_cpu_s"; Flink's output goes to stderr.
# SINK_DIR is where the files sink (or q10) writes; empty means blackhole.
run_flink() {
    local input="$1" sink_dir="$2"
    local sql="$dist/tmp/$query.$$.sql" timing="$dist/tmp/$query.$$.time" log="$dist/tmp/$query.$$.log"
    local sink_opts="'connector' = 'blackhole'" q10_path
    if [[ -n "$sink_dir" ]]; then
        sink_opts="'connector' = 'filesystem', 'path' = 'file://$sink_dir', 'format' = 'json'"
        q10_path="file://$sink_dir"
    else
        q10_path="file://$dist/tmp/q10-scratch.$$"
    fi
    cat "$here/sql/settings.sql" "$here/sql/ddl.sql" "$here/sql/$query.sql" > "$sql"
    local rc=0
    /usr/bin/time -f "%e %U %S" -o "$timing" \
        java "${java_opts[@]}" -cp "$lib/*:$classes" Runner \
            --sql "$sql" --mode "$mode" --parallelism "$parallelism" \
            --var "EVENTS_PATH=file://$input" --var "SINK=$sink_opts" \
            --var "Q10_PATH=$q10_path" --var "SIDE_INPUT_PATH=file://$side_input" \
            > "$log" 2>&1 || rc=$?
    rm -rf "$dist/tmp/q10-scratch.$$" "$sql"
    if [[ "$rc" != 0 ]]; then
        grep -v '^\s*at ' "$log" | tail -n 40 >&2
        echo "run.sh: Flink failed on $query (exit $rc); full log: $log" >&2
        exit 1
    fi
    grep -v '^RUNNER ' "$log" | grep -v 'WARN ' >&2 || true
    local runner
    runner="$(grep '^RUNNER ' "$log" | tail -n 1)"
    rm -f "$log"
    awk -v r="$runner" '{
        n = split(r, kv, " "); job = "na"; jobcpu = "na"
        for (i = 2; i <= n; i++) { split(kv[i], p, "="); if (p[1] == "job_s") job = p[2]; if (p[1] == "job_cpu_s") jobcpu = p[2] }
        printf "%s %.3f %s %s\n", $1, $2 + $3, job, jobcpu
    }' "$timing"
    rm -f "$timing"
}

# Baseline: the same query on the first BASELINE_EVENTS lines of each input file.
base_wall=na; base_cpu=na
if [[ "${BASELINE:-1}" != 0 ]]; then
    base_events="${BASELINE_EVENTS:-1000}"
    base_key="$query-$mode-$sink-p$parallelism-f${#event_files[@]}-e$base_events"
    base_file="$dist/baseline/$base_key.txt"
    if [[ ! -s "$base_file" ]]; then
        mkdir -p "$dist/baseline"
        tiny="$dist/baseline/input-f${#event_files[@]}-e$base_events"
        if [[ ! -d "$tiny" ]]; then
            mkdir -p "$tiny.tmp"
            for i in "${!event_files[@]}"; do
                head -n "$base_events" "${event_files[$i]}" > "$tiny.tmp/events-$i.jsonl"
            done
            mv "$tiny.tmp" "$tiny"
        fi
        tiny_input="$tiny"
        [[ ${#event_files[@]} -eq 1 ]] && tiny_input="$tiny/events-0.jsonl"
        base_sink=""
        [[ "$sink" == files ]] && base_sink="$dist/tmp/baseline-out.$$"
        echo "run.sh: measuring baseline $base_key" >&2
        run_flink "$tiny_input" "$base_sink" > "$base_file.tmp"
        rm -rf "$dist/tmp/baseline-out.$$"
        mv "$base_file.tmp" "$base_file"
    fi
    read -r base_wall base_cpu _ _ < "$base_file"
fi

raw_dir=""
if [[ "$kind" == results ]]; then
    mkdir -p "$outdir"
    outdir="$(cd "$outdir" && pwd)"
    find "$outdir" -mindepth 1 -delete
    raw_dir="$outdir/.flink-raw"
fi

read -r wall cpu job_s job_cpu < <(run_flink "$events_path" "$raw_dir")

if [[ "$kind" == results ]]; then
    python3 "$here/normalize.py" "$query" "$raw_dir" "$outdir" >&2
fi

awk -v q="$query" -v m="$mode" -v s="$sink" -v n="$events" -v p="$parallelism" \
    -v w="$wall" -v c="$cpu" -v bw="$base_wall" -v bc="$base_cpu" -v js="$job_s" -v jc="$job_cpu" '
function rate(x) { return (x + 0 > 0) ? sprintf("%.0f", n / x) : "na" }
function net(x, b) { return (b == "na") ? "na" : sprintf("%.3f", x - b) }
BEGIN {
    nw = net(w, bw); nc = net(c, bc)
    printf "FLINK query=%s mode=%s sink=%s events=%d parallelism=%d wall_s=%.3f cpu_s=%.3f events_per_sec=%s events_per_sec_per_core=%s base_wall_s=%s base_cpu_s=%s net_wall_s=%s net_cpu_s=%s net_events_per_sec=%s net_events_per_sec_per_core=%s job_s=%s job_cpu_s=%s\n",
        q, m, s, n, p, w, c, rate(w), rate(c), bw, bc, nw, nc,
        (nw == "na") ? "na" : rate(nw), (nc == "na") ? "na" : rate(nc), js, jc
}'
