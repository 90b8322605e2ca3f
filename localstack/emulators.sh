#!/usr/bin/env bash
# The no-Docker local stack: starts the emulators on 127.0.0.1 and stops them
# by PID. Kinesis (kinesis-local, the engine inside LocalStack) on 4568,
# DynamoDB (dynalite) on 8000, Kafka (kfake) on 9092.
#
#   localstack/emulators.sh start     # then: source localstack/local.env; consumer stream
#   localstack/emulators.sh status
#   localstack/emulators.sh stop
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
piddir="$here/.run"
mkdir -p "$piddir"

start_one() { # name, then the command
  local name=$1; shift
  if [ -f "$piddir/$name.pid" ] && kill -0 "$(cat "$piddir/$name.pid")" 2>/dev/null; then
    echo "$name already running (pid $(cat "$piddir/$name.pid"))"; return
  fi
  setsid "$@" >"$piddir/$name.log" 2>&1 &
  echo $! >"$piddir/$name.pid"
  echo "$name started (pid $!, log $piddir/$name.log)"
}

wait_port() { # port, name
  for _ in $(seq 1 150); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.2
  done
  echo "$2 did not open port $1; see $piddir/$2.log" >&2; return 1
}

case "${1:-}" in
start)
  [ -d "$here/emulators/node_modules" ] || npm ci --prefix "$here/emulators" --no-audit --no-fund --loglevel=error
  (cd "$here/emulators/node_modules/kinesis-local" &&
    KINESIS_MOCK_PLAIN_PORT=4568 KINESIS_MOCK_TLS_PORT=4567 CREATE_STREAM_DURATION=0ms LOG_LEVEL=WARN \
    start_one kinesis-local node main.js)
  start_one dynalite node "$here/emulators/node_modules/dynalite/cli.js" --host 127.0.0.1 --port 8000 --createTableMs 50
  (cd "$root" && go build -o "$piddir/kfake" ./localstack/kfake)
  start_one kfake "$piddir/kfake" -port 9092
  wait_port 4568 kinesis-local && wait_port 8000 dynalite && wait_port 9092 kfake
  echo "ready: source $here/local.env to point eventrelay at it"
  ;;
stop)
  for f in "$piddir"/*.pid; do
    [ -e "$f" ] || continue
    pid=$(cat "$f"); name=$(basename "$f" .pid)
    kill -- "-$pid" 2>/dev/null || kill "$pid" 2>/dev/null || true
    rm -f "$f"; echo "$name stopped"
  done
  ;;
status)
  for f in "$piddir"/*.pid; do
    [ -e "$f" ] || { echo "nothing running"; break; }
    pid=$(cat "$f"); name=$(basename "$f" .pid)
    if kill -0 "$pid" 2>/dev/null; then echo "$name running (pid $pid)"; else echo "$name dead (pid $pid)"; fi
  done
  ;;
*) echo "usage: $0 start|stop|status" >&2; exit 2 ;;
esac
