#!/usr/bin/env bash
# Installs what the integration tests start or call on loopback, if missing:
#  - the moto server (AWS control-plane emulator), pinned, from PyPI;
#  - a real OCI registry and image tools, from Debian: docker-registry (the CNCF
#    distribution registry), skopeo, umoci, and htpasswd (apache2-utils) for its
#    Basic-auth users;
#  - cmake and nasm, which build the predictor's bundled libjpeg-turbo (with its SIMD
#    code) the first time the workspace compiles;
#  - cargo-nextest.
set -euo pipefail
MOTO_VERSION=5.2.1

python=${PYTHON:-python3}
if ! "$python" -c "import moto, moto.server, flask_cors; assert moto.__version__ == '$MOTO_VERSION'" 2>/dev/null; then
  echo "installing moto[server]==$MOTO_VERSION" >&2
  "$python" -m pip install --quiet "moto[server]==$MOTO_VERSION"
fi

missing=()
command -v cmake >/dev/null 2>&1 || missing+=(cmake)
command -v nasm >/dev/null 2>&1 || missing+=(nasm)
command -v docker-registry >/dev/null 2>&1 || missing+=(docker-registry)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
command -v umoci >/dev/null 2>&1 || missing+=(umoci)
command -v htpasswd >/dev/null 2>&1 || missing+=(apache2-utils)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]} (apt)" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null \
    || { $sudo apt-get update -q >/dev/null && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >/dev/null; }
  # The package starts a registry on every interface with its own config: the tests
  # start their own on loopback, so stop that one.
  if [[ " ${missing[*]} " == *" docker-registry "* ]]; then
    ($sudo systemctl disable --now docker-registry || $sudo service docker-registry stop || true) >/dev/null 2>&1
  fi
fi

if ! command -v cargo-nextest >/dev/null 2>&1; then
  echo "installing cargo-nextest" >&2
  cargo install --locked cargo-nextest
fi
