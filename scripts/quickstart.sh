#!/usr/bin/env bash
# The main job on a local default, no AWS account needed: starts the AWS emulator and a
# registry on loopback, brings the stack of manifests/local.yaml up (building the
# predictor image and pushing it to the local registry) and shows its status, then runs
# the detector on two photographs. Leaves both running (scripts/local-stack.sh stop).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$HOME/.cache/deployer/target}

"$root/scripts/setup-ort.sh"
"$root/scripts/local-stack.sh" start
cargo build --quiet -p deployer -p predictor
bin=$CARGO_TARGET_DIR/debug

echo "== deployer plan" >&2
"$bin/deployer" -f manifests/local.yaml plan
echo "== deployer up" >&2
# The debug predictor goes into the image: the emulator never runs it, and a release
# build would take minutes (drop --predictor-bin for the real thing).
"$bin/deployer" -f manifests/local.yaml up --yes --predictor-bin "$bin/predictor"
echo "== deployer status" >&2
"$bin/deployer" -f manifests/local.yaml status
echo "== predictor detect" >&2
"$bin/predictor" detect --out "$root/.local/annotated" predictor/tests/images/bus.jpg predictor/tests/images/zidane.jpg
echo "annotated images: .local/annotated/" >&2
