#!/usr/bin/env bash
# Predictor benchmarks, printed as tables (no timed assertions anywhere).
#
#   scripts/bench-predictor.sh              per-stage table from `cargo bench -p predictor`,
#                                           then Python's onnxruntime on the same model and
#                                           input and the ratio of the inference medians
#   scripts/bench-predictor.sh vs-bentoml   the service side by side with the BentoML
#                                           anchor (BENTO_DIR): one moto S3,
#                                           the same two photos, `wrk`, both started fresh
#                                           each round; p50/p99 at c=1, req/s and p99 at
#                                           c=9, ready time, peak RSS, and the ratios
#
# Stages: needs the venv: python3 -m venv .venv && .venv/bin/pip install onnxruntime==1.32.0 numpy opencv-python-headless pillow
# vs-bentoml: needs `wrk` (apt-get install wrk), moto (scripts/setup-test-tools.sh) and the
# anchor's venv outside the repo:
#   python3 -m venv /tmp/venv-bento && /tmp/venv-bento/bin/pip install bentoml onnxruntime==1.32.0 numpy pillow boto3
# The anchor is a measuring stick kept outside the repository (never copied in):
# BENTO_DIR must name its directory, the one holding its service.py.
# Environment: BENTO_VENV (default /tmp/venv-bento), BENTO_DIR, ROUNDS (3), DURATION
# (seconds per load level, 20), VARIANT (the predictor's bundled model: square, rect or
# rect-int8; default rect, the deployments' default; BentoML always runs the square
# model, as the study did), PREDICTOR_ENV (extra `VAR=value ...` for the predictor),
# PREDICTOR_BIN (a predictor binary to run instead of building this tree's release one).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/deployer/target}"
"$root/scripts/setup-ort.sh"
threads=${ORT_THREADS:-$(nproc)}

stages() {
  local runs=${BENCH_RUNS:-30}
  local py=${PYTHON:-$root/.venv/bin/python}
  local image=predictor/tests/images/zidane.jpg model=predictor/models/yolo11n.onnx
  pybench() { "$py" scripts/reference_detections.py --bench "$runs" --threads "$threads" "$model" "$image"; }
  local before table after rust_p50
  before=$(pybench)
  table=$(ORT_THREADS=$threads BENCH_RUNS=$runs cargo bench -q -p predictor --bench pipeline 2>/dev/null)
  after=$(pybench)
  echo "$table"
  rust_p50=$(echo "$table" | awk -F'|' '$2 ~ /1280x720/ && $3 ~ /infer/ {gsub(/ /,"",$4); print $4; exit}')
  "$py" - "$rust_p50" "$before" "$after" <<'PY'
import json, sys
rust = float(sys.argv[1])
runs = [json.loads(a) for a in sys.argv[2:]]
py = min(r["p50_ms"] for r in runs)
print()
print("| inference, 1280x720 input        | p50 ms |")
print("|----------------------------------|--------|")
print(f"| Rust, ort (ONNX Runtime {runs[0]['onnxruntime']})   | {rust:6.2f} |")
print(f"| Python, onnxruntime {runs[0]['onnxruntime']}       | {py:6.2f} |")
print(f"| ratio Rust / Python              | {rust / py:6.3f} |")
PY
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# Sum of the peak RSS (VmHWM) of a process and all its descendants, in MB.
tree_peak_rss_mb() {
  local pids=($1) i=0
  while [ $i -lt ${#pids[@]} ]; do
    for c in $(cat /proc/"${pids[$i]}"/task/*/children 2>/dev/null); do pids+=("$c"); done
    i=$((i + 1))
  done
  local kb=0 v
  for p in "${pids[@]}"; do
    v=$(awk '/^VmHWM:/ {print $2}' /proc/"$p"/status 2>/dev/null || true)
    kb=$((kb + ${v:-0}))
  done
  awk -v kb="$kb" 'BEGIN { printf "%.1f", kb / 1024 }'
}

# Starts a service (`start_<name> PORT` in the background), times spawn to /readyz 200,
# loads it with wrk at c=1 then c=9, and prints one JSON line of figures.
measure() { # name
  local name=$1 port pid spawned ready_ms
  port=$(free_port)
  spawned=$(date +%s%N)
  "start_$name" "$port" &
  pid=$!
  until curl -fsS -o /dev/null "http://127.0.0.1:$port/readyz" 2>/dev/null; do
    kill -0 "$pid" 2>/dev/null || { echo "$name exited before ready; see $work/$name.log" >&2; exit 1; }
    sleep 0.005
  done
  ready_ms=$(( ($(date +%s%N) - spawned) / 1000000 ))
  local url="http://127.0.0.1:$port"
  # Warm-up: both photos once each through the whole path.
  for key in zidane.jpg bus.jpg; do
    curl -fsS -o /dev/null -X POST "$url/predict" -H 'content-type: application/json' -d "{\"image\": \"$key\"}"
  done
  wrk -t1 -c1 -d"${DURATION}s" --latency -s "$work/post.lua" "$url" > "$work/$name.c1.txt"
  wrk -t1 -c9 -d"${DURATION}s" --latency --timeout 30s -s "$work/post.lua" "$url" > "$work/$name.c9.txt"
  local rss
  rss=$(tree_peak_rss_mb "$pid")
  kill -TERM "$pid" 2>/dev/null || true
  # bentoml serve leaves its worker to its own shutdown; wait for the whole group.
  wait "$pid" 2>/dev/null || true
  "$bento_py" - "$name" "$ready_ms" "$rss" "$work/$name.c1.txt" "$work/$name.c9.txt" <<'PY'
import json, re, sys
name, ready, rss, c1, c9 = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), *sys.argv[4:]
def parse(path):
    text = open(path).read()
    def ms(v, unit):
        return float(v) * {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}[unit]
    lat = {p: ms(v, u) for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s|m)\s*$", text, re.M)}
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", text).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    errs = re.search(r"Socket errors:.*?timeout (\d+)", text)
    return {"p50": lat["50"], "p99": lat["99"], "rps": rps,
            "errors": (int(bad.group(1)) if bad else 0) + (int(errs.group(1)) if errs else 0)}
print(json.dumps({"name": name, "ready_ms": ready, "rss_mb": rss, "c1": parse(c1), "c9": parse(c9)}))
PY
}

start_predictor() {
  cd "$root"
  # shellcheck disable=SC2086
  exec env PORT="$1" BIND_ADDRESS=127.0.0.1 AWS_ENDPOINT_URL="$moto_url" \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_REGION=us-east-1 \
    INPUT_BUCKET=bench-in OUTPUT_BUCKET=bench-out MODEL_PATH="$root/predictor/models/$model_file" \
    ${PREDICTOR_ENV:-} \
    "$predictor_bin" serve > "$work/predictor.log" 2>&1
}

start_bentoml() {
  cd "$bento_dir"
  exec env MODEL="$root/predictor/models/yolo11n.onnx" S3_ENDPOINT="$moto_url" \
    IN_BUCKET=bench-in OUT_BUCKET=bench-out BENTOML_DO_NOT_TRACK=true \
    AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 \
    "$bento_venv/bin/bentoml" serve service:Detector --host 127.0.0.1 --port "$1" \
    > "$work/bentoml.log" 2>&1
}

vs_bentoml() {
  bento_venv=${BENTO_VENV:-/tmp/venv-bento}
  bento_py=$bento_venv/bin/python
  bento_dir=${BENTO_DIR:-}
  local variant=${VARIANT:-rect}
  case $variant in
    square) model_file=yolo11n.onnx ;;
    rect) model_file=yolo11n-rect.onnx ;;
    rect-int8) model_file=yolo11n-rect-int8.onnx ;;
    *) echo "error: VARIANT=$variant is not square, rect or rect-int8" >&2; exit 2 ;;
  esac
  DURATION=${DURATION:-20}
  local rounds=${ROUNDS:-3}
  command -v wrk >/dev/null || { echo "error: wrk not found; hint: apt-get install wrk" >&2; exit 1; }
  [ -x "$bento_venv/bin/bentoml" ] || { echo "error: no bentoml in $bento_venv (see the header of $0)" >&2; exit 1; }
  [ -n "$bento_dir" ] || { echo "error: BENTO_DIR is not set; hint: point it at the BentoML anchor's directory (the one with service.py)" >&2; exit 2; }
  [ -f "$bento_dir/service.py" ] || { echo "error: the BentoML anchor is not at $bento_dir (no service.py); set BENTO_DIR" >&2; exit 1; }
  "$root/scripts/setup-test-tools.sh"
  predictor_bin=${PREDICTOR_BIN:-$CARGO_TARGET_DIR/release/predictor}
  [ -n "${PREDICTOR_BIN:-}" ] || cargo build -q --release -p predictor
  work=$(mktemp -d)
  moto_pid=""
  trap 'kill $moto_pid 2>/dev/null || true; rm -rf "$work"' EXIT
  local moto_port
  moto_port=$(free_port)
  moto_url=http://127.0.0.1:$moto_port
  python3 -m moto.server -H 127.0.0.1 -p "$moto_port" > "$work/moto.log" 2>&1 &
  moto_pid=$!
  until curl -fsS -o /dev/null "$moto_url/moto-api/" 2>/dev/null; do sleep 0.1; done
  "$bento_py" - "$moto_url" "$root/predictor/tests/images" <<'PY'
import sys, boto3
s3 = boto3.client("s3", endpoint_url=sys.argv[1], region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
for b in ("bench-in", "bench-out"):
    s3.create_bucket(Bucket=b)
for key in ("zidane.jpg", "bus.jpg"):
    s3.put_object(Bucket="bench-in", Key=key, Body=open(f"{sys.argv[2]}/{key}", "rb").read(),
                  ContentType="image/jpeg")
PY
  # Each request alternates the 1280x720 and the 810x1080 photograph, by key.
  cat > "$work/post.lua" <<'LUA'
local bodies = { '{"image": "zidane.jpg"}', '{"image": "bus.jpg"}' }
local n = 0
request = function()
  n = n + 1
  return wrk.format("POST", "/predict", { ["Content-Type"] = "application/json" }, bodies[n % 2 + 1])
end
LUA
  echo "side by side: $rounds rounds, ${DURATION}s per level, predictor on $model_file, BentoML on yolo11n.onnx, $(nproc) cores, load before: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  : > "$work/results.jsonl"
  for r in $(seq "$rounds"); do
    # Alternate who goes first, so neither always runs on the quieter half of a round.
    local order="predictor bentoml"
    [ $((r % 2)) -eq 0 ] && order="bentoml predictor"
    for name in $order; do
      echo "round $r: $name" >&2
      measure "$name" | tee -a "$work/results.jsonl" >&2
    done
  done
  echo "load after: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  "$bento_py" - "$work/results.jsonl" <<'PY'
import json, statistics, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
def med(name, f):
    return statistics.median(f(r) for r in rows if r["name"] == name)
figures = [
    ("p50 at c=1, ms", lambda r: r["c1"]["p50"], "lower"),
    ("p99 at c=1, ms", lambda r: r["c1"]["p99"], "lower"),
    ("req/s at c=9", lambda r: r["c9"]["rps"], "higher"),
    ("p99 at c=9, ms", lambda r: r["c9"]["p99"], "lower"),
    ("spawn to ready, ms", lambda r: r["ready_ms"], "lower"),
    ("peak RSS (process tree), MB", lambda r: r["rss_mb"], "lower"),
    ("errors (c=1 + c=9)", lambda r: r["c1"]["errors"] + r["c9"]["errors"], "lower"),
]
n = len(rows) // 2
print(f"\nmedian of {n} round(s); each round starts both services fresh")
print()
print("| figure                       | predictor | BentoML | predictor / BentoML |")
print("|------------------------------|-----------|---------|---------------------|")
for label, f, _ in figures:
    p, b = med("predictor", f), med("bentoml", f)
    ratio = f"{p / b:.2f}x" if b else "-"
    print(f"| {label:<28} | {p:>9.1f} | {b:>7.1f} | {ratio:>19} |")
print()
print("| round | p50 c=1 ms (pred / bento) | req/s c=9 (pred / bento) | ratio p50 | ratio req/s |")
print("|-------|---------------------------|--------------------------|-----------|-------------|")
preds = [r for r in rows if r["name"] == "predictor"]
bentos = [r for r in rows if r["name"] == "bentoml"]
for i, (p, b) in enumerate(zip(preds, bentos), 1):
    print(f"| {i:>5} | {p['c1']['p50']:>11.1f} / {b['c1']['p50']:<11.1f} | {p['c9']['rps']:>10.2f} / {b['c9']['rps']:<11.2f} "
          f"| {p['c1']['p50'] / b['c1']['p50']:>8.2f}x | {p['c9']['rps'] / b['c9']['rps']:>10.2f}x |")
p50 = med("predictor", figures[0][1]) / med("bentoml", figures[0][1])
rps = med("predictor", figures[2][1]) / med("bentoml", figures[2][1])
print()
print(f"goal p50(c=1) <= 0.75x BentoML: {p50:.2f}x {'met' if p50 <= 0.75 else 'NOT met'}; "
      f"req/s(c=9) >= 2x: {rps:.2f}x {'met' if rps >= 2 else 'NOT met'}")
PY
}

case "${1:-stages}" in
  stages) stages ;;
  vs-bentoml) vs_bentoml ;;
  *) echo "usage: $0 [stages | vs-bentoml]" >&2; exit 2 ;;
esac
