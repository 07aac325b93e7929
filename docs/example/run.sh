#!/usr/bin/env bash
# run.sh: the batch-job example end to end on loopback: Prometheus scrapes Ferry, the simulator pushes to Ferry.
# Ctrl-C (or SIGTERM) stops all three, by PID. tests/integration/test_example.py runs this very script.
#
# Environment (all optional):
#   FERRY_PORT=9091  PROMETHEUS_PORT=9090   loopback ports
#   PUSH_INTERVAL=5                         seconds between the simulator's pushes
#   SCRAPE_INTERVAL=5s                      Prometheus's scrape interval (a Prometheus duration)
#   JOB_NAME=processor                      the simulator's job label
#   FERRY=build/ferry  PROMETHEUS=prometheus  PYTHON=python3   the programs to run
#   WORK_DIR=<new temporary directory>      config, TSDB and logs (a directory created here is removed at exit)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
FERRY_PORT=${FERRY_PORT:-9091}
PROMETHEUS_PORT=${PROMETHEUS_PORT:-9090}
PUSH_INTERVAL=${PUSH_INTERVAL:-5}
SCRAPE_INTERVAL=${SCRAPE_INTERVAL:-5s}
JOB_NAME=${JOB_NAME:-processor}
FERRY=${FERRY:-$root/build/ferry}
PROMETHEUS=${PROMETHEUS:-$(command -v prometheus || echo /usr/bin/prometheus)}
PYTHON=${PYTHON:-$(command -v python3 || echo /usr/bin/python3)}

for prog in "$FERRY" "$PROMETHEUS" "$PYTHON"; do
    if [ ! -x "$prog" ]; then
        echo "run.sh: $prog is missing; build Ferry with 'make build', install Prometheus with 'apt-get install prometheus'" >&2
        exit 1
    fi
done

made_work_dir=
if [ -z "${WORK_DIR:-}" ]; then
    WORK_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-example.XXXXXX")
    made_work_dir=1
fi
mkdir -p "$WORK_DIR"

pids=()
sleeper=
stop_all() {
    local pid i
    trap - EXIT INT TERM
    [ -n "$sleeper" ] && kill "$sleeper" 2>/dev/null
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    # up to 10 s for a clean exit (Prometheus closes its TSDB), then SIGKILL
    for pid in "${pids[@]}"; do
        for ((i = 0; i < 100; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    [ -n "$made_work_dir" ] && rm -rf "$WORK_DIR"
    echo "run.sh: stopped"
}
trap stop_all EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# waits until url answers 200, or fails naming the log to read
wait_ready() {
    local name=$1 url=$2 log=$3 pid=$4 i
    for ((i = 0; i < 300; i++)); do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: $name exited during start-up; its log ($log):" >&2
            tail -n 20 "$log" >&2
            exit 1
        fi
        if "$PYTHON" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=1)' "$url" 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    echo "run.sh: $name not ready at $url after 30 s; see $log" >&2
    exit 1
}

# A port already in use must stop us: Ferry binds with SO_REUSEPORT, so a second Ferry on a busy port would start
# and silently share the connections with whatever Ferry listens there already.
for port in "$FERRY_PORT" "$PROMETHEUS_PORT"; do
    if "$PYTHON" -c 'import socket, sys; socket.create_connection(("127.0.0.1", int(sys.argv[1])), 1)' "$port" 2>/dev/null
    then
        echo "run.sh: something already listens on 127.0.0.1:$port; choose other ports (FERRY_PORT, PROMETHEUS_PORT)" >&2
        exit 1
    fi
done

# Prometheus's configuration is docs/example/prometheus.yml with this run's address and interval.
sed -e "s/localhost:9091/127.0.0.1:$FERRY_PORT/" -e "s/^\(  scrape_interval:\).*/\1 $SCRAPE_INTERVAL/" \
    "$here/prometheus.yml" >"$WORK_DIR/prometheus.yml"

"$FERRY" --web.listen-address="127.0.0.1:$FERRY_PORT" >"$WORK_DIR/ferry.log" 2>&1 &
pids+=($!)
ferry_pid=$!
wait_ready Ferry "http://127.0.0.1:$FERRY_PORT/-/ready" "$WORK_DIR/ferry.log" "$ferry_pid"

"$PROMETHEUS" --config.file="$WORK_DIR/prometheus.yml" --storage.tsdb.path="$WORK_DIR/tsdb" \
    --web.listen-address="127.0.0.1:$PROMETHEUS_PORT" >"$WORK_DIR/prometheus.log" 2>&1 &
pids+=($!)
prometheus_pid=$!
wait_ready Prometheus "http://127.0.0.1:$PROMETHEUS_PORT/-/ready" "$WORK_DIR/prometheus.log" "$prometheus_pid"

PUSHGATEWAY_URL="http://127.0.0.1:$FERRY_PORT" JOB_NAME="$JOB_NAME" PUSH_INTERVAL="$PUSH_INTERVAL" \
    "$PYTHON" -u "$here/simulator.py" >"$WORK_DIR/simulator.log" 2>&1 &
pids+=($!)
simulator_pid=$!

query='processed_items{job="'"$JOB_NAME"'"}'
query_url=$("$PYTHON" -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$query")
cat <<EOT
Ferry       http://127.0.0.1:$FERRY_PORT/             (pid $ferry_pid; the pushed group, web UI)
            http://127.0.0.1:$FERRY_PORT/metrics      (what Prometheus scrapes)
Prometheus  http://127.0.0.1:$PROMETHEUS_PORT/targets      (pid $prometheus_pid; the ferry target should be UP)
            http://127.0.0.1:$PROMETHEUS_PORT/graph?g0.expr=$query_url&g0.tab=0
Simulator   pushes $query every ${PUSH_INTERVAL}s (pid $simulator_pid)
Logs        $WORK_DIR/{ferry,prometheus,simulator}.log
run.sh: running; Ctrl-C stops everything
EOT

# Runs until a signal, or until one of the three exits on its own (then stops the others and fails).
while :; do
    for pid in "${pids[@]}"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            echo "run.sh: process $pid exited unexpectedly; logs in $WORK_DIR" >&2
            tail -n 20 "$WORK_DIR"/*.log >&2 || true
            exit 1
        fi
    done
    sleep 1 &
    sleeper=$!
    wait "$sleeper" || true
    sleeper=
done
