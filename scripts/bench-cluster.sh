#!/usr/bin/env bash
# Replication cost and catch-up (issue 15, "Performance"; design note T7), in one run on 127.0.0.1:
#
# 1. Pushes: wrk (bench/e2e/push.lua, 646-byte PUTs over PUSH_GROUPS groups, 1 thread) against
#      before    FERRY_BEFORE (a build of the commit before replication), default flags      [if FERRY_BEFORE is set]
#      single    this build, default flags, no --cluster flags
#      cl-one    a three-replica cluster (default write quorum: majority, 2 of 3), wrk against replica 1 only
#      cl-rr     the same cluster, wrk -t3 with one thread per replica (bench/cluster/push-rr.lua), the connections
#                split evenly (rounded up to a multiple of 3)
#    all started and filled together and measured round-robin (run 1 of each, run 2 of each, ...), at each
#    connection count of CONNS. Per run: acknowledged pushes/s (2xx answers), p50/p99 from wrk, and CPU per
#    acknowledged push = utime+stime of every ferry process of the set-up (/proc/PID/stat, all threads) over the
#    run / acknowledged pushes, split by thread kind (HTTP loops, other threads: the replication thread).
# 2. Catch-up: a second three-replica cluster; replicas 1 and 2 are filled over HTTP with CATCHUP_GROUPS groups of
#    10 series (bench/e2e/fill.lua through replica 1, each push acknowledged by the quorum), then replica 3 is started
#    empty CATCHUP_RUNS times (killed with SIGKILL between runs) and bench/cluster/catchup.py measures the time from
#    its exec to /-/ready 200 and to /api/v1/metrics identical to replica 1's, its peak RSS, and the CPU of the
#    three replicas meanwhile.
#
# Usage: scripts/bench-cluster.sh [BUILD_DIR]        (default: build; needs BUILD_DIR/ferry)
# Knobs (environment): FERRY_BEFORE=<ferry binary> (the "unchanged without --cluster" check), RUNS=3, DURATION=10,
#   CONNS="32 1" (wrk connections; the fill uses 32), PUSH_GROUPS=100 (1k series stored during the push runs),
#   CATCHUP_GROUPS=100000 (1M series), CATCHUP_RUNS=3, CATCHUP_FERRY=<ferry binary> (the new replica's binary;
#   default: this build; the peers are always this build), CATCHUP_ALSO=<ferry binary> (CATCHUP_RUNS more runs with
#   this one as the new replica, after those of CATCHUP_FERRY), CATCHUP_LIMIT=30 (s to wait for ready, then for
#   identical), PHASES="push catchup", PORT_BASE=19400,
#   FERRY_FLAGS="" (extra flags for every ferry, e.g. --web.threads=1), FERRY_CPUS / WRK_CPUS (taskset -c lists for
#   every ferry / every wrk, e.g. 0 and 1: no wake-up then has to bring an idle CPU back), OUT=<dir for raw results>
#   (default: a temporary directory). Raw rows: OUT/push.tsv, OUT/catchup.jsonl; the tables: bench/cluster/report.py.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=$(cd "${1:-$root/build}" && pwd)
ferry=$build/ferry
before=${FERRY_BEFORE:-}
runs=${RUNS:-3}
duration=${DURATION:-10}
conns_list=${CONNS:-32 1}
groups=${PUSH_GROUPS:-100}
cu_groups=${CATCHUP_GROUPS:-100000}
cu_runs=${CATCHUP_RUNS:-3}
phases=${PHASES:-push catchup}
port_base=${PORT_BASE:-19400}
# shellcheck disable=SC2206 # split on purpose: several flags
extra=(${FERRY_FLAGS:-})
ferry_pin=()
[ -z "${FERRY_CPUS:-}" ] || ferry_pin=(taskset -c "$FERRY_CPUS")
wrk_pin=()
[ -z "${WRK_CPUS:-}" ] || wrk_pin=(taskset -c "$WRK_CPUS")
body=$root/bench/payloads/push-646.txt
out=${OUT:-$(mktemp -d /tmp/bench-cluster.XXXXXX)}
mkdir -p "$out"
hz=$(getconf CLK_TCK)

"$root/scripts/install-deps.sh" bench
[ -x "$ferry" ] || { echo "bench-cluster: $ferry not built" >&2; exit 1; }
[ -z "$before" ] || [ -x "$before" ] || { echo "bench-cluster: FERRY_BEFORE=$before is not executable" >&2; exit 1; }

pids=()
stop_all() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do
        for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$p" 2>/dev/null || true
        wait "$p" 2>/dev/null || true
    done
    pids=()
}
trap stop_all EXIT

# wait_ready PORT: until /-/ready answers 200 (60 s at most).
wait_ready() {
    for _ in $(seq 600); do
        [ "$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1/-/ready" || true)" = 200 ] && return 0
        sleep 0.1
    done
    echo "bench-cluster: 127.0.0.1:$1 not ready" >&2
    return 1
}

# start_ferry LOG BINARY ARGS...: starts a ferry in the background, its pid in $started_pid.
start_ferry() {
    local log=$1 bin=$2
    shift 2
    "${ferry_pin[@]}" "$bin" --log.level=warn "${extra[@]}" "$@" >"$log" 2>&1 &
    started_pid=$!
    pids+=("$started_pid")
}

# peer_flags BASE: --cluster.peer for the three peer ports BASE..BASE+2 (each replica lists itself too).
peer_flags() { echo "--cluster.peer=127.0.0.1:$1 --cluster.peer=127.0.0.1:$(($1 + 1)) --cluster.peer=127.0.0.1:$(($1 + 2))"; }

# start_replica HTTP_PORT PEER_PORT PEER_BASE LOG: one replica of the cluster whose peer ports are PEER_BASE..+2.
start_replica() {
    local http=$1 peer=$2 pbase=$3 log=$4
    # shellcheck disable=SC2046
    start_ferry "$log" "$ferry" --web.listen-address=127.0.0.1:$http --cluster.listen-address=127.0.0.1:$peer \
        $(peer_flags "$pbase")
}

cpu_ticks() { awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }
# "kind ticks" per thread of each pid given: kind = loop (ferry-loopN), main (tid = pid), other (the replication
# thread, the loader, auth workers).
thread_ticks() {
    local p t comm kind
    for p in "$@"; do
        for t in /proc/"$p"/task/*; do
            comm=$(cat "$t/comm" 2>/dev/null) || continue
            case $comm in ferry-loop*) kind=loop ;; *) kind=other ;; esac
            [ "${t##*/}" = "$p" ] && kind=main
            awk -v k="$kind" '{ sub(/^.*\) /, ""); print k, $12 + $13 }' "$t/stat" 2>/dev/null || true
        done
    done | awk '{ s[$1] += $2 } END { printf "loop=%d,main=%d,other=%d", s["loop"], s["main"], s["other"] }'
}
sum_ticks() { local s=0 p; for p in "$@"; do s=$((s + $(cpu_ticks "$p"))); done; echo $s; }
hwm_list() { local p r=(); for p in "$@"; do r+=("$(awk '$1 == "VmHWM:" { print $2 }' /proc/"$p"/status)"); done; local IFS=,; echo "${r[*]}"; }

# fill PORT GROUPS NAME: creates GROUPS groups through wrk (bench/e2e/fill.lua, 32 connections); prints the seconds.
fill() {
    local port=$1 n=$2 name=$3 marker=$out/fill-$3.done t0 t1 wpid
    rm -f "$marker"
    t0=$(date +%s.%N)
    wrk -t1 -c32 -d600s --timeout 30s -s "$root/bench/e2e/fill.lua" "http://127.0.0.1:$port" -- "$n" "$body" "$marker" \
        >"$out/fill-$name.txt" 2>&1 &
    wpid=$!
    for _ in $(seq 6000); do
        [ -e "$marker" ] && break
        kill -0 "$wpid" 2>/dev/null || break
        sleep 0.05
    done
    t1=$(date +%s.%N)
    kill -INT "$wpid" 2>/dev/null || true
    wait "$wpid" 2>/dev/null || true
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }'
}

# count PORT: groups held (push_time_seconds series in /metrics).
count() { curl -s --max-time 300 "http://127.0.0.1:$1/metrics" | grep -c '^push_time_seconds{' || true; }

load_before=$(cut -d' ' -f1-3 /proc/loadavg)

# ---------------------------------------------------------------------------------------------------------------
if [[ " $phases " == *" push "* ]]; then
    results=$out/push.tsv
    : >"$results"
    p_single=$port_base
    p_before=$((port_base + 1))
    p_cl=$((port_base + 10))   # HTTP ports of replicas 1-3
    p_peer=$((port_base + 20)) # their peer ports
    declare -A mode_pids mode_port
    start_ferry "$out/single.log" "$ferry" --web.listen-address=127.0.0.1:$p_single
    mode_pids[single]=$started_pid
    mode_port[single]=$p_single
    modes=(single)
    if [ -n "$before" ]; then
        start_ferry "$out/before.log" "$before" --web.listen-address=127.0.0.1:$p_before
        mode_pids[before]=$started_pid
        mode_port[before]=$p_before
        modes=(before single)
    fi
    cpids=()
    for i in 0 1 2; do
        start_replica $((p_cl + i)) $((p_peer + i)) $p_peer "$out/replica$((i + 1)).log"
        cpids+=("$started_pid")
    done
    mode_pids[cl-one]="${cpids[*]}"
    mode_pids[cl-rr]="${cpids[*]}"
    mode_port[cl-one]=$p_cl
    mode_port[cl-rr]=$p_cl
    modes+=(cl-one cl-rr)
    for p in ${mode_port[single]} ${before:+$p_before} $p_cl $((p_cl + 1)) $((p_cl + 2)); do wait_ready "$p"; done
    for m in ${before:+before} single cl-one; do
        s=$(fill "${mode_port[$m]}" "$groups" "push-$m")
        echo "bench-cluster: filled $m with $groups groups in $s s" >&2
    done
    for p in ${mode_port[single]} ${before:+$p_before} $p_cl $((p_cl + 1)) $((p_cl + 2)); do
        n=$(count "$p")
        [ "$n" -eq "$groups" ] || { echo "bench-cluster: 127.0.0.1:$p holds $n groups, wanted $groups" >&2; exit 1; }
    done

    for run in $(seq "$runs"); do
        for c in $conns_list; do
            for m in "${modes[@]}"; do
                # shellcheck disable=SC2206
                mp=(${mode_pids[$m]})
                f=$out/run-$m-$c-$run.txt
                wc=$c
                wt=1
                script=$root/bench/e2e/push.lua
                if [ "$m" = cl-rr ]; then
                    wt=3
                    wc=$(((c + 2) / 3 * 3))
                    script=$root/bench/cluster/push-rr.lua
                fi
                c0=$(sum_ticks "${mp[@]}")
                k0=$(thread_ticks "${mp[@]}")
                FERRY_RR_PORTS="$p_cl $((p_cl + 1)) $((p_cl + 2))" timeout $((duration + 60)) \
                    "${wrk_pin[@]}" wrk -t$wt -c"$wc" -d${duration}s --timeout 10s --latency -s "$script" \
                    "http://127.0.0.1:${mode_port[$m]}" -- "$groups" "$body" $((run * 7919)) >"$f" 2>&1 || true
                c1=$(sum_ticks "${mp[@]}")
                k1=$(thread_ticks "${mp[@]}")
                line=$(grep '^E2E ' "$f" || echo "E2E requests=0 duration_us=1 p50_us=0 p99_us=0 max_us=0 status=0 timeout=0")
                for p in "${mp[@]}"; do
                    kill -0 "$p" 2>/dev/null || { echo "bench-cluster: ferry $p ($m) is gone after run $run" >&2; exit 1; }
                done
                printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$m" "$run" "$c" "$line" "$((c1 - c0))" "$hz" "$k0" "$k1" \
                    "$(hwm_list "${mp[@]}")" "$wc" >>"$results"
                echo "bench-cluster: $m, $wc connections, run $run: $line cpu_ticks=$((c1 - c0))" >&2
            done
        done
    done
    for p in ${mode_port[single]} ${before:+$p_before} $p_cl $((p_cl + 1)) $((p_cl + 2)); do
        curl -s "http://127.0.0.1:$p/api/v1/metrics" | md5sum | sed "s/-$/127.0.0.1:$p/"
    done >"$out/push-final-md5.txt"
    stop_all
fi

# ---------------------------------------------------------------------------------------------------------------
if [[ " $phases " == *" catchup "* ]]; then
    cu=$out/catchup.jsonl
    : >"$cu"
    h=$((port_base + 30))
    pp=$((port_base + 40))
    start_replica $h $pp $pp "$out/cu-replica1.log"
    r1=$started_pid
    start_replica $((h + 1)) $((pp + 1)) $pp "$out/cu-replica2.log"
    r2=$started_pid
    wait_ready $h
    wait_ready $((h + 1))
    s=$(fill $h "$cu_groups" catchup)
    n1=$(count $h)
    n2=$(count $((h + 1)))
    echo "bench-cluster: filled replicas 1 and 2 with $cu_groups groups in $s s (they hold $n1 and $n2)" >&2
    [ "$n1" -eq "$cu_groups" ] && [ "$n2" -eq "$cu_groups" ] || { echo "bench-cluster: fill incomplete" >&2; exit 1; }
    curl -s "http://127.0.0.1:$h/api/v1/metrics" >"$out/cu-ref.json"
    curl -s "http://127.0.0.1:$((h + 1))/api/v1/metrics" | cmp -s - "$out/cu-ref.json" ||
        { echo "bench-cluster: replicas 1 and 2 differ before the catch-up" >&2; exit 1; }
    echo "{\"fill_s\": $s, \"groups\": $cu_groups, \"ref_bytes\": $(stat -c %s "$out/cu-ref.json"), \"rss_kb\": [$(awk '$1 == "VmRSS:" { print $2 }' /proc/$r1/status), $(awk '$1 == "VmRSS:" { print $2 }' /proc/$r2/status)], \"hwm_kb\": [$(hwm_list $r1 $r2)]}" \
        >"$out/cu-fill.json"
    # one binary's runs after the other's: a new replica with the state-transfer bug of 00cdf4d (push_failure_time_seconds
    # set to the push time) ships those failure times to its peers, so the peers then differ from the reference
    for bin in ${CATCHUP_FERRY:-$ferry} ${CATCHUP_ALSO:-}; do
        for run in $(seq "$cu_runs"); do
            # shellcheck disable=SC2046
            python3 "$root/bench/cluster/catchup.py" --ref "$out/cu-ref.json" --port $((h + 2)) --run "$run" \
                --limit "${CATCHUP_LIMIT:-30}" --label "$([ "$bin" = "$ferry" ] && echo this build || echo "$bin")" \
                --peers "$r1,$r2" --log "$out/cu-replica3-$run-$(basename "$(dirname "$(dirname "$bin")")").log" -- \
                "$bin" --log.level=info "${extra[@]}" --web.listen-address=127.0.0.1:$((h + 2)) \
                --cluster.listen-address=127.0.0.1:$((pp + 2)) $(peer_flags $pp) >>"$cu" || true
            tail -1 "$cu" >&2
        done
    done
    stop_all
fi
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)," \
    "$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'); load average before $load_before," \
    "after $load_after; $runs runs of ${duration}s per set-up and connection count;" \
    "ferry on CPUs ${FERRY_CPUS:-any}, wrk on ${WRK_CPUS:-any}; raw results: $out"
# the unit the CPU figures are made of: a sleep/wake-up between threads on other cores vs on one (bench/cluster)
if [ -x "$build/bench/compare/wake_cost" ]; then
    "$build/bench/compare/wake_cost"
else
    echo "wake_cost: not built (configure with the benchmarks on)"
fi
echo
python3 "$root/bench/cluster/report.py" "$out"
