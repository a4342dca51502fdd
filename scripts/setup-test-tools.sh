#!/usr/bin/env bash
# Installs the emulators the integration tests start on loopback, if missing:
# the moto server (AWS control-plane emulator), pinned, from PyPI.
set -euo pipefail
MOTO_VERSION=5.2.1

python=${PYTHON:-python3}
if ! "$python" -c "import moto, moto.server, flask_cors; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
  echo "installing moto[server]==$MOTO_VERSION" >&2
  "$python" -m pip install --quiet "moto[server]==$MOTO_VERSION"
fi
if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi
