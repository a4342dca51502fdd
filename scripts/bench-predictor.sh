#!/usr/bin/env bash
# Predictor benchmark: per-stage table from `cargo bench -p predictor`, then Python's
# onnxruntime on the same model and the same letterboxed input, and the ratio of the
# two inference medians. Python runs before and after the Rust bench, and the faster
# of its two medians is used, so a noisy neighbour cannot flatter the ratio.
# Needs the venv: python3 -m venv .venv && .venv/bin/pip install onnxruntime==1.32.0 numpy opencv-python-headless pillow
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
"$root/scripts/setup-ort.sh"
threads=${ORT_THREADS:-$(nproc)}
runs=${BENCH_RUNS:-30}
py=${PYTHON:-$root/.venv/bin/python}
image=predictor/tests/images/zidane.jpg
model=predictor/models/yolo11n.onnx

pybench() { "$py" scripts/reference_detections.py --bench "$runs" --threads "$threads" "$model" "$image"; }
before=$(pybench)
table=$(ORT_THREADS=$threads BENCH_RUNS=$runs cargo bench -q -p predictor --bench pipeline 2>/dev/null)
after=$(pybench)
echo "$table"
rust_p50=$(echo "$table" | awk -F'|' '$2 ~ /1280x720/ && $3 ~ /infer/ {gsub(/ /,"",$4); print $4}')
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
