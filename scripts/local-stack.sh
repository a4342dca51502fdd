#!/usr/bin/env bash
# The local stand-in for AWS that manifests/local.yaml points at, on loopback only:
#  - the moto server (AWS control-plane emulator) on 127.0.0.1:4566;
#  - an OCI registry (Debian's docker-registry) on 127.0.0.1:5000, where `deployer up`
#    pushes the image it builds.
#   scripts/local-stack.sh start   # idempotent; state and logs under .local/
#   scripts/local-stack.sh stop
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
port=${MOTO_PORT:-4566}
registry_port=${REGISTRY_PORT:-5000}
state=$root/.local

running() { [ -f "$state/$1.pid" ] && kill -0 "$(cat "$state/$1.pid")" 2>/dev/null; }

wait_for() { # name url
  for _ in $(seq 100); do
    if curl -fsS -o /dev/null "$2" 2>/dev/null; then
      echo "$1 is running at $2 (pid $(cat "$state/$1.pid")); stop with: $0 stop" >&2
      return 0
    fi
    sleep 0.2
  done
  echo "$1 did not start; see $state/$1.log" >&2
  return 1
}

case "${1:-start}" in
  start)
    "$root/scripts/setup-test-tools.sh"
    mkdir -p "$state/registry"
    if ! running moto; then
      MOTO_IAM_LOAD_MANAGED_POLICIES=true nohup python3 -m moto.server -H 127.0.0.1 -p "$port" \
        > "$state/moto.log" 2>&1 &
      echo $! > "$state/moto.pid"
    fi
    wait_for moto "http://127.0.0.1:$port/moto-api/"
    if ! running registry; then
      cat > "$state/registry.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $state/registry
http:
  addr: 127.0.0.1:$registry_port
YAML
      nohup docker-registry serve "$state/registry.yml" > "$state/registry.log" 2>&1 &
      echo $! > "$state/registry.pid"
    fi
    wait_for registry "http://127.0.0.1:$registry_port/v2/"
    ;;
  stop)
    for p in moto registry; do
      if running $p; then kill "$(cat "$state/$p.pid")"; fi
      rm -f "$state/$p.pid"
    done
    ;;
  *)
    echo "usage: $0 start|stop" >&2
    exit 2
    ;;
esac
