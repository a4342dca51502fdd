#!/usr/bin/env bash
# Puts ONNX Runtime's shared library where the predictor looks for it: `.ort/lib/`.
#
# The library comes from the official `onnxruntime` wheel on PyPI (the `ort` crate's own
# download step fetches from a website, which is not reachable everywhere). The version is
# pinned to the one the `ort` crate's `api-31` feature is built against, and the wheel is
# checked against its sha256 before anything is extracted. Idempotent: a second run is a no-op.
set -euo pipefail

ORT_VERSION=1.32.0
WHEEL=onnxruntime-${ORT_VERSION}-cp311-cp311-manylinux_2_28_x86_64.whl
WHEEL_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
LIB=libonnxruntime.so.${ORT_VERSION}

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${ORT_LIB_DIR:-$root/.ort/lib}

if [ -f "$dest/$LIB" ]; then
  echo "onnxruntime ${ORT_VERSION}: $dest/$LIB" >&2
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
echo "downloading the onnxruntime ${ORT_VERSION} wheel from PyPI" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: \
  --python-version 3.11 --platform manylinux_2_28_x86_64 \
  -d "$work" "onnxruntime==${ORT_VERSION}"
echo "${WHEEL_SHA256}  $work/$WHEEL" | sha256sum --check --quiet
mkdir -p "$dest"
python3 - "$work/$WHEEL" "$dest" "$LIB" <<'PY'
import sys, zipfile, pathlib
wheel, dest, lib = sys.argv[1], pathlib.Path(sys.argv[2]), sys.argv[3]
with zipfile.ZipFile(wheel) as z:
    data = z.read(f"onnxruntime/capi/{lib}")
tmp = dest / (lib + ".part")
tmp.write_bytes(data)
tmp.chmod(0o755)
tmp.rename(dest / lib)
PY
ln -sf "$LIB" "$dest/libonnxruntime.so"
echo "onnxruntime ${ORT_VERSION}: $dest/$LIB" >&2
