#!/usr/bin/env python3
"""INT8 mode: statically quantizes the bundled YOLO11n with onnxruntime's tools, calibrated
on the photographs shipped in `predictor/tests/images/`, then reports speed and agreement
with the FP32 model (labels, scores, box IoU) on the same photographs.

Needs a venv outside the repo (never committed):
    python3 -m venv /tmp/venv-quant && /tmp/venv-quant/bin/pip install onnxruntime==1.32.0 onnx numpy pillow
    /tmp/venv-quant/bin/python scripts/quantize-int8.py            # writes predictor/models/yolo11n-int8.onnx
    MODEL_PATH=predictor/models/yolo11n-int8.onnx predictor serve  # serve it

QDQ format, unsigned 8-bit activations and signed 8-bit per-channel weights (ONNX
Runtime's u8 x s8 kernels; AVX2 without VNNI on the t3a's Zen 1), percentile calibration.
Kept in float, because quantizing them cost the most agreement on the photographs: the
detection head (its class-logit convolutions, and its decoding, where boxes in pixels and
scores in 0..1 share one tensor that a single 8-bit scale cannot hold), the stem (raw
pixels) and the attention block. With MinMax calibration and everything quantized, the
astronaut's person fell from 0.90 to 0.54 and its sports ball was lost.
Preprocessing matches `scripts/reference_detections.py`: Ultralytics' letterbox geometry
with Pillow's antialiased bilinear resize.
"""
import argparse
import contextlib
import json
import pathlib
import statistics
import sys
import tempfile
import time

import numpy as np
import onnx
from onnx import version_converter
import onnxruntime as ort
from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat,
                                      QuantType, quantize_static)
from onnxruntime.quantization.shape_inference import quant_pre_process
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = sorted((ROOT / "predictor/tests/images").glob("*.[jp][pn]g"))


def letterbox(path, size=640):
    img = Image.open(path).convert("RGB")
    w, h = img.size
    r = min(size / w, size / h)
    nw, nh = round(w * r), round(h * r)
    left, top = round((size - nw) / 2 - 0.1), round((size - nh) / 2 - 0.1)
    canvas = Image.new("RGB", (size, size), (114, 114, 114))
    canvas.paste(img.resize((nw, nh), Image.BILINEAR) if (nw, nh) != (w, h) else img, (left, top))
    x = (np.asarray(canvas, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x)


class Photos(CalibrationDataReader):
    """Each photograph and its mirror image: twelve calibration inputs."""

    def __init__(self, name):
        inputs = [letterbox(p) for p in IMAGES]
        inputs += [np.ascontiguousarray(x[..., ::-1]) for x in inputs]
        self.items = iter([{name: x} for x in inputs])

    def get_next(self):
        return next(self.items, None)


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(session, x, conf=0.25, iou_thr=0.45):
    y = session.run(None, {session.get_inputs()[0].name: x})[0][0]
    scores = y[4:].T
    cls, best = scores.argmax(1), scores.max(1)
    keep = best >= conf
    c, cls, best = y[:4].T[keep], cls[keep], best[keep]
    boxes = np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2,
                      c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2], 1)
    out = []
    for i in best.argsort()[::-1]:
        if all(cls[k] != cls[i] or iou(boxes[i], boxes[k]) <= iou_thr for k, *_ in out):
            out.append((i, int(cls[i]), float(best[i]), boxes[i].tolist()))
    return [(label, score, box) for _, label, score, box in out]


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def head_decode_nodes(model, whole_head=True):
    """The detection head kept in float: its decoding always, and by default its
    convolutions too (quantizing the class logits costs the most agreement)."""
    head = max((n.name.split("/")[1] for n in model.graph.node if n.name.startswith("/model.")),
               key=lambda s: int(s.split(".")[1]))
    return [n.name for n in model.graph.node
            if n.name.startswith(f"/{head}/")
            and (whole_head or not n.name.startswith((f"/{head}/cv2", f"/{head}/cv3")))]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=ROOT / "predictor/models/yolo11n.onnx", type=pathlib.Path)
    ap.add_argument("--out", default=ROOT / "predictor/models/yolo11n-int8.onnx", type=pathlib.Path)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--report-only", action="store_true", help="compare an existing --out")
    ap.add_argument("--calibration", choices=["minmax", "percentile", "entropy"], default="percentile")
    ap.add_argument("--quantize-head-convs", action="store_true")
    ap.add_argument("--float-prefix", action="append", default=None,
                    help="keep nodes whose name starts with this in float (repeatable); default: "
                         "/model.0/ (the stem, fed raw pixels) and /model.10/ (the attention block)")
    ap.add_argument("--ops", default="Conv,Mul,Sigmoid,Add,Concat,MaxPool,Resize,Split,MatMul,Softmax",
                    help="operator types to quantize, comma-separated")
    args = ap.parse_args()

    if not args.report_only:
        with tempfile.TemporaryDirectory() as tmp:
            # Per-channel DequantizeLinear (its `axis`) needs opset 13; the export is opset 12.
            opset13 = pathlib.Path(tmp) / "opset13.onnx"
            onnx.save(version_converter.convert_version(onnx.load(str(args.model)), 13), str(opset13))
            prepared = pathlib.Path(tmp) / "prepared.onnx"
            quant_pre_process(str(opset13), str(prepared), skip_symbolic_shape=True)
            model = onnx.load(str(prepared))
            exclude = head_decode_nodes(model, whole_head=not args.quantize_head_convs)
            prefixes = tuple(args.float_prefix or ["/model.0/", "/model.10/"])
            exclude += [n.name for n in model.graph.node if n.name.startswith(prefixes)]
            with contextlib.redirect_stdout(sys.stderr):  # the calibrator prints progress
                quantize_static(
                    str(prepared), str(args.out), Photos(model.graph.input[0].name),
                    quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8, per_channel=True,
                    calibrate_method={"minmax": CalibrationMethod.MinMax,
                                      "percentile": CalibrationMethod.Percentile,
                                      "entropy": CalibrationMethod.Entropy}[args.calibration],
                    nodes_to_exclude=exclude, op_types_to_quantize=args.ops.split(","),
                    extra_options={"ActivationSymmetric": False, "WeightSymmetric": True},
                )
        print(f"wrote {args.out} ({args.out.stat().st_size:,} bytes), {len(exclude)} nodes kept in float",
              file=sys.stderr)

    fp32, int8 = session(args.model, args.threads), session(args.out, args.threads)
    rows, matched, total, worst_score, worst_iou = [], 0, 0, 0.0, 1.0
    x = None
    for path in IMAGES:
        x = letterbox(path)
        a, b = detect(fp32, x), detect(int8, x)
        total += len(a)
        used = set()
        for label, score, box in a:
            cands = [(iou(box, bb), j) for j, (bl, _, bb) in enumerate(b) if bl == label and j not in used]
            if cands and max(cands)[0] >= 0.5:
                o, j = max(cands)
                used.add(j)
                matched += 1
                worst_score = max(worst_score, abs(score - b[j][1]))
                worst_iou = min(worst_iou, o)
        rows.append({"image": path.name, "fp32": [f"{l}:{s:.2f}" for l, s, _ in a],
                     "int8": [f"{l}:{s:.2f}" for l, s, _ in b], "extra_int8": len(b) - len(used)})
    timing = {}
    for name, s in (("fp32", fp32), ("int8", int8)):
        feed = {s.get_inputs()[0].name: x}
        s.run(None, feed)
        times = []
        for _ in range(args.runs):
            t = time.perf_counter()
            s.run(None, feed)
            times.append((time.perf_counter() - t) * 1e3)
        timing[name] = statistics.median(times)
    print(json.dumps({
        "onnxruntime": ort.__version__, "threads": args.threads,
        "fp32_detections": total, "matched_in_int8": matched,
        "extra_in_int8": sum(r["extra_int8"] for r in rows),
        "max_abs_score_diff": round(worst_score, 4), "min_iou": round(worst_iou, 4),
        "p50_ms": {k: round(v, 2) for k, v in timing.items()},
        "per_image": rows,
    }, indent=1))


if __name__ == "__main__":
    main()
