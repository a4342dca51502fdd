#!/usr/bin/env python3
"""Reference detections and inference timings from Python's onnxruntime.

Preprocessing follows Ultralytics' LetterBox geometry (pad 114, centred) with Pillow's
antialiased bilinear resize, the pipeline behind the model README's reference table;
postprocessing is the same confidence threshold and class-wise NMS. Used to produce
`predictor/tests/fixtures/reference.json` and by `scripts/bench-predictor.sh` for the
Python side of the speed comparison.

    .venv/bin/python scripts/reference_detections.py MODEL IMAGE... > reference.json
    .venv/bin/python scripts/reference_detections.py --bench 50 --threads 2 MODEL IMAGE
"""
import argparse
import json
import sys
import time

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image


def letterbox(img, size=640, resize="pil"):
    """Ultralytics' letterbox geometry; the resize is Pillow's antialiased bilinear
    (what the model README's reference table used) or OpenCV's INTER_LINEAR."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    nw, nh = int(round(w * r)), int(round(h * r))
    dw, dh = (size - nw) / 2, (size - nh) / 2
    if (w, h) != (nw, nh) and resize == "pil":
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    elif (w, h) != (nw, nh):
        img = cv2.resize(img, (nw, nh), interpolation=cv2.INTER_LINEAR)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    img = cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))
    x = img.transpose(2, 0, 1)[None].astype(np.float32) / 255.0
    return np.ascontiguousarray(x), r, left, top


def nms(boxes, scores, classes, iou_thr):
    order = scores.argsort()[::-1]
    keep = []
    for i in order:
        ok = True
        for k in keep:
            if classes[k] != classes[i]:
                continue
            xx1, yy1 = max(boxes[i, 0], boxes[k, 0]), max(boxes[i, 1], boxes[k, 1])
            xx2, yy2 = min(boxes[i, 2], boxes[k, 2]), min(boxes[i, 3], boxes[k, 3])
            inter = max(0.0, xx2 - xx1) * max(0.0, yy2 - yy1)
            area = lambda b: (b[2] - b[0]) * (b[3] - b[1])
            if inter / (area(boxes[i]) + area(boxes[k]) - inter) > iou_thr:
                ok = False
                break
        if ok:
            keep.append(i)
    return keep


def read_rgb(path):
    return cv2.cvtColor(cv2.imread(path, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def detect(sess, names, path, conf, iou, resize):
    img = read_rgb(path)
    h, w = img.shape[:2]
    x, r, left, top = letterbox(img, resize=resize)
    out = sess.run(None, {sess.get_inputs()[0].name: x})[0][0]  # [84, 8400]
    scores_all = out[4:]
    cls = scores_all.argmax(0)
    score = scores_all.max(0)
    m = score >= conf
    cx, cy, bw, bh = out[0][m], out[1][m], out[2][m], out[3][m]
    boxes = np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2], 1)
    keep = nms(boxes, score[m], cls[m], iou)
    dets = []
    for i in keep:
        b = boxes[i].copy()
        b[[0, 2]] = ((b[[0, 2]] - left) / r).clip(0, w)
        b[[1, 3]] = ((b[[1, 3]] - top) / r).clip(0, h)
        c = int(cls[m][i])
        dets.append({"label": names[c], "class_id": c, "score": round(float(score[m][i]), 4),
                     "box": [round(float(v), 1) for v in b]})
    return {"image": path.split("/")[-1], "width": w, "height": h, "detections": dets}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("model")
    p.add_argument("images", nargs="+")
    p.add_argument("--conf", type=float, default=0.25)
    p.add_argument("--iou", type=float, default=0.45)
    p.add_argument("--resize", choices=["pil", "cv2"], default="pil")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--bench", type=int, default=0, help="time N inferences on the first image")
    a = p.parse_args()
    so = ort.SessionOptions()
    so.intra_op_num_threads = a.threads
    so.inter_op_num_threads = 1
    sess = ort.InferenceSession(a.model, so, providers=["CPUExecutionProvider"])
    names = eval(sess.get_modelmeta().custom_metadata_map["names"])  # trusted: our own model file
    if a.bench:
        x, *_ = letterbox(read_rgb(a.images[0]), resize=a.resize)
        feed = {sess.get_inputs()[0].name: x}
        sess.run(None, feed)
        times = []
        for _ in range(a.bench):
            t = time.perf_counter()
            sess.run(None, feed)
            times.append((time.perf_counter() - t) * 1e3)
        times.sort()
        print(json.dumps({"onnxruntime": ort.__version__, "runs": a.bench,
                          "p50_ms": times[len(times) // 2], "min_ms": times[0]}))
        return
    print(json.dumps([detect(sess, names, i, a.conf, a.iou, a.resize) for i in a.images], indent=1))


if __name__ == "__main__":
    sys.exit(main())
