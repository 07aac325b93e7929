#!/usr/bin/env bash
# End-to-end push benchmark: wrk (1 thread, 32 connections, bench/e2e/push.lua) PUTs the 646-byte, 10-series group
# bench/payloads/push-646.txt to servers on 127.0.0.1 whose store holds a fixed number of series, and prints one
# markdown table (medians of RUNS runs). Servers: the empty-200 calibration server (wrk's own ceiling), Ferry in
# three listener/thread set-ups, and the reference Pushgateway 1.5.1 at the sizes where it can keep up.
# All servers of one size are started and filled together, then measured round-robin, so machine noise (it is
# shared) spreads over all of them instead of landing on one.
# Usage: scripts/bench-e2e.sh [BUILD_DIR]       (default: build; needs BUILD_DIR/ferry)
# Knobs (environment): DURATION=10 (s per run), RUNS=3, SIZES="1000 10000 100000 1000000" (stored series),
#   REF_SIZES="1000 10000" (sizes at which the reference runs; empty: none), FERRY_MODES="shared2 reuseport2 shared1"
#   (also: durable2 = reuseport2 with --persistence.durable, its file and log in OUT, on the disk of OUT;
#   durable2_before = the same with the binary FERRY_BEFORE, e.g. a build of an older commit),
#   (also: pinned2 = reuseport2 with each loop thread pinned to one core by taskset, an experiment for the p99;
#   split = Ferry with no thread flag started by `taskset -c 0` (so its default is one loop) and wrk on core 1 by
#   `taskset -c 1`: the two cores partitioned between the server and the load generator;
#   before2 = reuseport2 with the binary FERRY_BEFORE),
#   CALIBRATE=first (the empty-200 server in the first size's round only; all: in every size's round),
#   PORT_BASE=19200, CONNS=32 (a list, e.g. CONNS="8 16 32 64", measures every server at every count round-robin;
#   the fill uses the first), OUT=<dir for raw results> (default: a temporary directory, kept on failure).
# Each row also records run-queue waits from /proc/*/task/*/schedstat: the time the server's threads and wrk's
# threads were runnable but not running during the run (the p99 section of docs/benchmarks.md).
# scripts/bench-durable.sh runs this at several CONNS for the durable-mode comparison (docs/benchmarks.md).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
duration=${DURATION:-10}
runs=${RUNS:-3}
sizes=${SIZES:-1000 10000 100000 1000000}
ref_sizes=${REF_SIZES-1000 10000}
ferry_modes=${FERRY_MODES:-shared2 reuseport2 shared1}
port_base=${PORT_BASE:-19200}
calibrate=${CALIBRATE:-first}
conns_list=${CONNS:-32}
conns=${conns_list%% *}
body=$root/bench/payloads/push-646.txt
ferry=$build/ferry
ref=/usr/bin/prometheus-pushgateway
out=${OUT:-$(mktemp -d /tmp/bench-e2e.XXXXXX)}
mkdir -p "$out"
results=$out/results.tsv
: >"$results"

# Bench-only dependencies (wrk, the reference): installed by the bench set of install-deps.sh, only when missing.
"$root/scripts/install-deps.sh" bench
empty200=$build/bench/compare/empty200 # the calibration server, built with the benchmarks (bench/compare/CMakeLists.txt)
for exe in "$ferry" "$empty200"; do
    [ -x "$exe" ] || { echo "bench-e2e: $exe not built (make build)" >&2; exit 1; }
done

declare -A pid port
started=()

stop_all() {
    local name p
    for name in "${started[@]}"; do
        p=${pid[$name]:-}
        [ -n "$p" ] || continue
        kill "$p" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
        pid[$name]=
    done
    started=()
}
trap stop_all EXIT

# start NAME PORT: starts the server NAME on 127.0.0.1:PORT and waits until it answers.
start() {
    local name=$1 p=$2 addr=127.0.0.1:$2
    case $name in
        empty200) "$empty200" "$p" & ;;
        shared2) "$ferry" --web.listen-address=$addr --web.threads=2 --no-web.reuseport --log.level=warn & ;;
        reuseport2) "$ferry" --web.listen-address=$addr --web.threads=2 --web.reuseport --log.level=warn & ;;
        shared1) "$ferry" --web.listen-address=$addr --web.threads=1 --log.level=warn & ;;
        split) taskset -c 0 "$ferry" --web.listen-address=$addr --log.level=warn & ;;
        pinned2) "$ferry" --web.listen-address=$addr --web.threads=2 --web.reuseport --log.level=warn & ;;
        before2) "${FERRY_BEFORE:?before2 needs FERRY_BEFORE=<ferry binary>}" --web.listen-address=$addr --web.threads=2 \
                     --web.reuseport --log.level=warn & ;;
        durable2) rm -rf "$out/durable.data" "$out/durable.data.wal"
                  "$ferry" --web.listen-address=$addr --web.threads=2 --web.reuseport --log.level=warn \
                      --persistence.file="$out/durable.data" --persistence.durable & ;;
        durable2_before) rm -rf "$out/before.data" "$out/before.data.wal"
                  "${FERRY_BEFORE:?durable2_before needs FERRY_BEFORE=<ferry binary>}" --web.listen-address=$addr \
                      --web.threads=2 --web.reuseport --log.level=warn --persistence.file="$out/before.data" \
                      --persistence.durable & ;;
        reference) "$ref" --web.listen-address=$addr --persistence.file= --log.level=warn & ;;
        *) echo "bench-e2e: unknown server $name" >&2; return 1 ;;
    esac
    pid[$name]=$!
    port[$name]=$p
    started+=("$name")
    for _ in $(seq 100); do
        if curl -s -o /dev/null "http://$addr/"; then
            [ "$name" = pinned2 ] && pin_loops "${pid[$name]}"
            return 0
        fi
        sleep 0.1
    done
    echo "bench-e2e: $name did not start on $addr" >&2
    return 1
}

# pin_loops PID: pins Ferry's loop threads (named ferry-loopN by src/server.c) to cores 0 and 1.
pin_loops() {
    local t cpu=0
    for t in /proc/"$1"/task/*; do
        [[ $(cat "$t/comm") == ferry-loop* ]] || continue
        taskset -pc $cpu "${t##*/}" >/dev/null
        cpu=$((cpu + 1))
    done
    [ $cpu -eq 2 ] || { echo "bench-e2e: pinned2 found $cpu loop threads" >&2; return 1; }
}

# Run-queue wait (ns, field 2 of schedstat) summed over every thread of a process.
run_wait() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $2 } END { printf "%.0f", s }'; }

# CPU time (utime+stime, in clock ticks) of a process, all its threads included.
cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# "tid ticks" for every thread of a process.
task_ticks() {
    local t
    for t in /proc/"$1"/task/*; do
        awk -v t="${t##*/}" '{ sub(/^.*\) /, ""); print t, $12 + $13 }' "$t/stat" 2>/dev/null || true
    done
}
# Share (%) of the CPU used between two task_ticks snapshots that went to the busiest thread.
busiest_share() {
    awk 'NR == FNR { a[$1] = $2; next } { d = $2 - a[$1]; s += d; if (d > m) m = d } END { printf "%.0f", s ? 100 * m / s : 0 }' \
        "$1" "$2"
}
status_kb() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }

# fill NAME GROUPS: creates GROUPS groups with bench/e2e/fill.lua and checks that the store holds them.
fill() {
    local name=$1 groups=$2 url=http://127.0.0.1:${port[$1]} marker=$out/fill-$1.done limit=300 t0 t1 n wpid
    [ "$name" = empty200 ] && return 0
    rm -f "$marker"
    t0=$(date +%s.%N)
    wrk -t1 -c"$conns" -d${limit}s --timeout 30s -s "$root/bench/e2e/fill.lua" "$url" -- "$groups" "$body" "$marker" \
        >"$out/fill-$name-$groups.txt" 2>&1 &
    wpid=$!
    for _ in $(seq $((limit * 10))); do
        [ -e "$marker" ] && break
        kill -0 "$wpid" 2>/dev/null || break
        sleep 0.1
    done
    t1=$(date +%s.%N)
    kill -INT "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    n=$(curl -s --max-time 120 "$url/metrics" | grep -c '^push_time_seconds{' || true)
    echo "bench-e2e: filled $name with $n groups ($((n * 10)) series) in $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }') s" >&2
    [ "$n" -eq "$groups" ] || { echo "bench-e2e: $name holds $n groups, wanted $groups" >&2; return 1; }
}

# measure NAME GROUPS RUN CONNS: one wrk run; appends a result row.
measure() {
    local name=$1 groups=$2 run=$3 c=$4 url=http://127.0.0.1:${port[$1]} p=${pid[$1]} c0 c1 s0 s1 w1 line f wpid
    f=$out/run-$name-$groups-$c-$run.txt
    c0=$(cpu_ticks "$p")
    s0=$(run_wait "$p")
    task_ticks "$p" >"$out/tasks0"
    local pin=()
    [ "$name" = split ] && pin=(taskset -c 1)
    timeout $((duration + 60)) "${pin[@]}" wrk -t1 -c"$c" -d${duration}s --timeout 10s --latency -s "$root/bench/e2e/push.lua" \
        "$url" -- "$groups" "$body" $((run * 7919)) >"$f" 2>&1 &
    wpid=$!
    # wrk's own wait (wrk is timeout's child), sampled every 0.1 s while it runs: the last sample before it exits
    local wp="" w
    w1=0
    for _ in $(seq 50); do wp=$(pgrep -P "$wpid" -x wrk || true); [ -n "$wp" ] && break; sleep 0.02; done
    while [ -n "$wp" ] && w=$(run_wait "$wp") && [ -e "/proc/$wp/stat" ]; do
        [ "$w" -gt 0 ] && w1=$w
        sleep 0.1
    done
    wait "$wpid" || true
    c1=$(cpu_ticks "$p")
    s1=$(run_wait "$p")
    task_ticks "$p" >"$out/tasks1"
    line=$(grep '^E2E ' "$f" || echo "E2E requests=0 duration_us=1 p50_us=0 p99_us=0 max_us=0 status=0 timeout=0")
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$groups" "$run" "$line" "$((c1 - c0))" \
        "$(getconf CLK_TCK)" "$(status_kb "$p" VmRSS)" "$(status_kb "$p" VmHWM)" \
        "$(busiest_share "$out/tasks0" "$out/tasks1")" "$c" "$((s1 - s0))" "$w1" >>"$results"
    echo "bench-e2e: $name $((groups * 10)) series, $c connections, run $run: $line" >&2
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
first=1
for series in $sizes; do
    groups=$((series / 10))
    names=()
    [ $first -eq 1 ] || [ "$calibrate" = all ] && names+=(empty200)
    names+=($ferry_modes)
    for s in $ref_sizes; do [ "$s" = "$series" ] && names+=(reference); done
    first=0
    i=0
    for name in "${names[@]}"; do
        start "$name" $((port_base + i))
        fill "$name" "$groups"
        i=$((i + 1))
    done
    for run in $(seq "$runs"); do
        for c in $conns_list; do
            for name in "${names[@]}"; do measure "$name" "$groups" "$run" "$c"; done
        done
    done
    stop_all
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before $load_before," \
    "after $load_after; wrk -t1 -c$conns_list -d${duration}s --timeout 10s, medians of $runs runs; raw results: $results"
echo
python3 "$root/bench/e2e/report.py" "$results"
