#!/usr/bin/env bash
# A local AWS emulator (moto) on 127.0.0.1:4566, the endpoint of manifests/local.yaml.
#   scripts/local-stack.sh start   # idempotent; state and log under .local/
#   scripts/local-stack.sh stop
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${MOTO_PORT:-4566}
state=$root/.local
pidfile=$state/moto.pid

running() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }

case "${1:-start}" in
  start)
    if running; then echo "moto is running on 127.0.0.1:$port (pid $(cat "$pidfile"))" >&2; exit 0; fi
    "$root/scripts/setup-test-tools.sh"
    mkdir -p "$state"
    MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup python3 -m moto.server -H 127.0.0.1 -p "$port" \
      > "$state/moto.log" 2>&1 &
    echo $! > "$pidfile"
    for _ in $(seq 100); do
      if curl -fsS "http://127.0.0.1:$port/moto-api/" >/dev/null 2>&1; then
        echo "moto is running on 127.0.0.1:$port (pid $(cat "$pidfile")); stop it with: $0 stop" >&2
        exit 0
      fi
      sleep 0.2
    done
    echo "moto did not start; see $state/moto.log" >&2
    exit 1
    ;;
  stop)
    if running; then kill "$(cat "$pidfile")"; fi
    rm -f "$pidfile"
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
