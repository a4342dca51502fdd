#!/usr/bin/env bash
# The whole test suite: installs what the tests need if it is missing (ONNX Runtime's
# shared library, the moto server), then runs every test of the workspace with nextest.
# Extra arguments go to `cargo nextest run` (e.g. `scripts/test.sh -p predictor`).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# The same build as the quickstart's and CI's: one target directory outside the clone.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deployer/target}"

"$root/scripts/setup-ort.sh"
"$root/scripts/setup-test-tools.sh"

profile=default
[ -n "${CI:-}" ] && profile=ci
exec cargo nextest run --workspace --profile "$profile" "$@"
