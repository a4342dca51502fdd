#!/usr/bin/env bash
# The main job on a local default, no AWS account needed: starts the AWS emulator and a
# registry on loopback, brings the stack of manifests/local.yaml up (building the
# predictor image, pushing it to the local registry, provisioning both targets in the
# emulator and running them as real processes from that image), shows its status, then
# sends a photograph through both local URLs: the first serverless call is a cold start,
# the second a warm one. Leaves everything running (`deployer down`, then
# scripts/local-stack.sh stop).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/deployer/target}

"$root/scripts/setup-ort.sh"
"$root/scripts/local-stack.sh" start
cargo build --quiet -p deployer -p predictor
bin=$CARGO_TARGET_DIR/debug
deployer() { "$bin/deployer" -f manifests/local.yaml "$@"; }

echo "== deployer plan" >&2
deployer plan
echo "== deployer up" >&2
# The debug predictor goes into the image (built with the rest above; drop
# --predictor-bin for a release build, which takes minutes more).
deployer up --yes --predictor-bin "$bin/predictor" -o json > .local/up.json
cat .local/up.json >&2
echo "== deployer status" >&2
deployer status

url() { python3 -c "import json,sys; print(next(e['url'] for e in json.load(open('.local/up.json'))['endpoints'] if e['target']==sys.argv[1]))" "$1"; }
show() { # target, response file, seconds the call took
  python3 - "$1" "$2" "$3" <<'PY'
import json, sys
target, path, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
r = json.load(open(path))
if "detections" not in r:
    print(f"{target:<10}  error: {r}")
    sys.exit(1)
found = ", ".join(f"{d['label']} {d['score']:.2f}" for d in r["detections"])
inst = r["instance"]
state = "cold" if inst["cold"] else "warm"
print(f"{target:<10}  {state} (instance {inst['id']}, request {inst['seq']})  {seconds * 1000:.0f} ms  {found}")
print(f"{'':<10}  annotated: {r['url'].split('?')[0]}")
PY
}
photo=predictor/tests/images/bus.jpg
echo "== POST $photo to both targets" >&2
for target in serverless serverless serverful; do
  took=$(curl -fsS -o .local/answer.json -w '%{time_total}' -H 'Content-Type: image/jpeg' --data-binary "@$photo" "$(url $target)")
  show "$target" .local/answer.json "$took"
done
echo "logs: $bin/deployer -f manifests/local.yaml logs; stop: $bin/deployer -f manifests/local.yaml down --yes" >&2
