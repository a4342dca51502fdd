#!/usr/bin/env python3
"""Rect mode check: the square model (`yolo11n.onnx`, 640x640 letterbox) against the
dynamic-shape export of `scripts/export-rect.py` (`yolo11n-rect.onnx`) fed the minimal
rectangle, on the test photographs, plus inference timings of both.

Rect letterbox = Ultralytics' `LetterBox(auto=True, stride=32)`: scale so the long side is 640,
pad the short side up to the next multiple of 32, padding centred (top/left = round(pad/2 - 0.1)),
value 114/255; the resize is Pillow's antialiased bilinear, as in `scripts/reference_detections.py`
and `scripts/quantize-int8.py`. Square mode is the same with the canvas fixed at 640x640.
Postprocessing: confidence 0.25, class-wise NMS at IoU 0.45, boxes mapped back to the photograph.

For each photograph: the detections of each mode (label:score), the pairs matched (same label,
IoU >= 0.5 in photograph coordinates, greedy by square-mode score) with their mean IoU and the
largest |score difference|, and whether the label multisets agree. Then the median inference
time (onnxruntime only, preprocessing excluded; runs interleaved) of the square model, the rect
model fed the same 640x640 input, and the rect model fed the rectangle, at intra_op_num_threads
1 and 2 (inter_op 1). Timings are only meaningful on an otherwise idle machine.

Needs only onnxruntime, numpy and Pillow (e.g. the venv of scripts/quantize-int8.py or of
scripts/export-rect.py):
    /tmp/venv-export/bin/python scripts/rect-agreement.py [--runs 20] [--json out.json]
"""
import argparse
import json
import os
import pathlib
import statistics
import time

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = pathlib.Path(__file__).resolve().parent.parent
IMAGES = sorted((ROOT / "predictor/tests/images").glob("*.[jp][pn]g"))
TIMED = ["zidane.jpg", "bus.jpg"]  # 1280x720 and 810x1080


def letterbox(img, size=640, rect=False, stride=32):
    w, h = img.size
    r = min(size / w, size / h)
    nw, nh = round(w * r), round(h * r)
    if rect:
        cw, ch = nw + (size - nw) % stride, nh + (size - nh) % stride
    else:
        cw, ch = size, size
    left, top = round((cw - nw) / 2 - 0.1), round((ch - nh) / 2 - 0.1)
    canvas = Image.new("RGB", (cw, ch), (114, 114, 114))
    canvas.paste(img.resize((nw, nh), Image.BILINEAR) if (nw, nh) != (w, h) else img, (left, top))
    x = (np.asarray(canvas, dtype=np.float32) / 255.0).transpose(2, 0, 1)[None]
    return np.ascontiguousarray(x), r, left, top


def iou(a, b):
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def detect(session, names, img, rect, conf=0.25, iou_thr=0.45):
    x, r, left, top = letterbox(img, rect=rect)
    y = session.run(None, {session.get_inputs()[0].name: x})[0][0]
    scores = y[4:].T
    cls, best = scores.argmax(1), scores.max(1)
    keep = best >= conf
    c, cls, best = y[:4].T[keep], cls[keep], best[keep]
    boxes = np.stack([c[:, 0] - c[:, 2] / 2, c[:, 1] - c[:, 3] / 2,
                      c[:, 0] + c[:, 2] / 2, c[:, 1] + c[:, 3] / 2], 1)
    boxes = (boxes - [left, top, left, top]) / r
    boxes = boxes.clip(0, [img.width, img.height, img.width, img.height])
    out = []
    for i in best.argsort()[::-1]:
        if all(out_c != cls[i] or iou(boxes[i], b) <= iou_thr for out_c, _, b in out):
            out.append((int(cls[i]), float(best[i]), boxes[i].tolist()))
    return [(names[k], s, b) for k, s, b in out], x.shape


def compare(a, b):
    used, ious, diffs = set(), [], []
    for label, score, box in a:
        cands = [(iou(box, bb), j) for j, (bl, _, bb) in enumerate(b) if bl == label and j not in used]
        if cands and max(cands)[0] >= 0.5:
            o, j = max(cands)
            used.add(j)
            ious.append(o)
            diffs.append(abs(score - b[j][1]))
    return {"matched": len(ious), "square": len(a), "rect": len(b),
            "mean_iou": round(statistics.mean(ious), 4) if ious else None,
            "max_score_diff": round(max(diffs), 4) if diffs else None,
            "labels_agree": sorted(l for l, *_ in a) == sorted(l for l, *_ in b)}


def session(path, threads):
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def timed(configs, runs):
    """Median and min ms of each (session, input) pair, the runs interleaved round-robin so
    that a load change on the machine hits every configuration alike."""
    feeds = [(s, {s.get_inputs()[0].name: x}) for s, x in configs]
    for s, feed in feeds:
        for _ in range(3):
            s.run(None, feed)
    times = [[] for _ in feeds]
    for _ in range(runs):
        for k, (s, feed) in enumerate(feeds):
            t = time.perf_counter()
            s.run(None, feed)
            times[k].append((time.perf_counter() - t) * 1e3)
    return [(round(statistics.median(t), 2), round(min(t), 2)) for t in times]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--square", default=ROOT / "predictor/models/yolo11n.onnx", type=pathlib.Path)
    ap.add_argument("--rect", default=ROOT / "predictor/models/yolo11n-rect.onnx", type=pathlib.Path)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--json", type=pathlib.Path, help="also write the results here")
    args = ap.parse_args()

    sq, rc = session(args.square, 2), session(args.rect, 2)
    names = eval(sq.get_modelmeta().custom_metadata_map["names"])  # trusted: our own model file
    print(f"onnxruntime {ort.__version__}, load average {os.getloadavg()[0]:.2f}")
    rows = []
    for path in IMAGES:
        img = Image.open(path).convert("RGB")
        a, sa = detect(sq, names, img, rect=False)
        b, sb = detect(rc, names, img, rect=True)
        row = {"image": path.name, "size": f"{img.width}x{img.height}",
               "square_input": f"{sa[3]}x{sa[2]}", "rect_input": f"{sb[3]}x{sb[2]}",
               "square_dets": [f"{l} {s:.2f}" for l, s, _ in a],
               "rect_dets": [f"{l} {s:.2f}" for l, s, _ in b], **compare(a, b)}
        rows.append(row)
        print(f"\n{path.name} {row['size']}: square {row['square_input']} vs rect {row['rect_input']}")
        print(f"  square: {', '.join(row['square_dets'])}")
        print(f"  rect:   {', '.join(row['rect_dets'])}")
        print(f"  matched {row['matched']}/{row['square']} (rect has {row['rect']}), mean IoU "
              f"{row['mean_iou']}, max |score diff| {row['max_score_diff']}, labels agree {row['labels_agree']}")

    timing = []
    for threads in (1, 2):
        sq, rc = session(args.square, threads), session(args.rect, threads)
        for name in TIMED:
            img = Image.open(ROOT / "predictor/tests/images" / name).convert("RGB")
            xs, xr = letterbox(img)[0], letterbox(img, rect=True)[0]
            (sq_med, sq_min), (r6_med, r6_min), (rr_med, rr_min) = timed([(sq, xs), (rc, xs), (rc, xr)], args.runs)
            t = {"image": name, "threads": threads, "rect_input": f"{xr.shape[3]}x{xr.shape[2]}",
                 "square_ms": sq_med, "rect_model_640x640_ms": r6_med, "rect_ms": rr_med,
                 "square_min_ms": sq_min, "rect_model_640x640_min_ms": r6_min, "rect_min_ms": rr_min}
            t["rect_vs_square"] = round(t["rect_ms"] / t["square_ms"], 3)
            timing.append(t)
    print(f"\nms, median / min of {args.runs} interleaved runs (load average now {os.getloadavg()[0]:.2f}):")
    print("image        threads  square 640x640   rect model @640x640  rect (input)                ratio of medians")
    for t in timing:
        print(f"{t['image']:12} {t['threads']:>7}  {t['square_ms']:>7} / {t['square_min_ms']:<7} "
              f"{t['rect_model_640x640_ms']:>9} / {t['rect_model_640x640_min_ms']:<9} "
              f"{t['rect_ms']:>7} / {t['rect_min_ms']:<7} ({t['rect_input']})  {t['rect_vs_square']}")
    if args.json:
        args.json.write_text(json.dumps({"onnxruntime": ort.__version__, "runs": args.runs,
                                         "per_image": rows, "timing": timing}, indent=1))


if __name__ == "__main__":
    main()
