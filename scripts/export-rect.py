#!/usr/bin/env python3
"""Rect mode: exports YOLO11n to ONNX with a dynamic input height and width, so a photograph
can be letterboxed to its minimal rectangle (long side 640, short side padded up to the next
multiple of 32: 1280x720 -> 640x384) instead of the full 640x640 square.

Same weights and recipe as `predictor/models/yolo11n.onnx` (see its README): the Ultralytics
`yolo11n.pt` carried in the PyPI source distribution `yowo==2.4.1` (its sha256 is checked),
exported with ultralytics at opset 12 with onnxslim, but `dynamic=True`; the batch axis that
Ultralytics also makes dynamic is then fixed back to 1 and the graph slimmed again, giving

    images  float32 [1, 3, height, width]   height and width multiples of 32 (at most 640 here)
    output0 float32 [1, 84, anchors]        anchors = (h/8)(w/8) + (h/16)(w/16) + (h/32)(w/32)

(8400 at 640x640, 5040 at 384x640). The anchor grid and the attention block's reshapes are
computed from the input's shape inside the graph (Shape/Range/Expand ops that the static export
folds into constants), which costs nothing measurable. Run at 640x640 the model reproduces the
static model's output to float rounding; the script checks this, and the rect shape.

The `date` metadata is set from SOURCE_DATE_EPOCH (default 0) and onnxslim's value_info is
re-inferred, so the output is byte-reproducible: with the pins below it is 10,566,644 bytes,
sha256 19933b7ec06a0c8981320138e9026e20383c2c2c826bd8c9880e861fe8ca93ee. The model's other
Ultralytics metadata (names, stride, license: AGPL-3.0 weights) is kept. (The same pins with
`dynamic=False` give a graph identical to `predictor/models/yolo11n.onnx`'s, which was made with
torch 2.15.0; only producer_version and date differ.) yowo 2.4.1 is a yanked release: pip
warns, but still downloads it when pinned exactly.

Needs a venv outside the repo (never committed; torch's PyPI wheel pulls ~3.3 GB of nvidia-*
CUDA wheels that are never used here, but `pip install torch --no-deps` cannot import:
"ValueError: libcublas.so.*[0-9] not found in the system path"):

    python3 -m venv /tmp/venv-export
    /tmp/venv-export/bin/pip install torch==2.8.0 torchvision==0.23.0 ultralytics==8.4.190 \\
        onnx==1.23.2 onnxslim==0.1.98 onnxruntime==1.32.0 numpy==2.4.6 pillow==13.0.0
    /tmp/venv-export/bin/python scripts/export-rect.py   # writes predictor/models/yolo11n-rect.onnx

Ultralytics is run offline (YOLO_OFFLINE=1, YOLO_AUTOINSTALL=False, settings in a temporary
directory) from the local .pt, so it downloads nothing. `scripts/rect-agreement.py` compares the
result with the square model on the test photographs and times both.
"""
import argparse
import datetime
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent
PT_SHA256 = "0ebbc80d4a7680d14987a577cd21342b65ecfd94632bd9a8da63ae6417644ee1"
PINS = {"torch": "2.8.0", "ultralytics": "8.4.190", "onnx": "1.23.2", "onnxslim": "0.1.98",
        "onnxruntime": "1.32.0"}


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def fetch_pt(work):
    """yolo11n.pt out of the PyPI sdist yowo==2.4.1 (pip download, no install, no build)."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "--no-binary", ":all:", "-d", str(work), "yowo==2.4.1"], check=True)
    with tarfile.open(work / "yowo-2.4.1.tar.gz") as tar:
        member = tar.getmember("yowo-2.4.1/yolo11n.pt")
        with tar.extractfile(member) as src, open(work / "yolo11n.pt", "wb") as dst:
            shutil.copyfileobj(src, dst)
    return work / "yolo11n.pt"


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--pt", type=pathlib.Path, help="a local yolo11n.pt (else fetched from PyPI)")
    p.add_argument("--out", type=pathlib.Path, default=ROOT / "predictor/models/yolo11n-rect.onnx")
    p.add_argument("--square", type=pathlib.Path, default=ROOT / "predictor/models/yolo11n.onnx",
                   help="static model to check the 640x640 output against")
    a = p.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = pathlib.Path(tmp)
        os.environ.update(YOLO_OFFLINE="1", YOLO_AUTOINSTALL="False", YOLO_CONFIG_DIR=str(work / "cfg"))
        pt = a.pt.resolve() if a.pt else fetch_pt(work)
        if sha256(pt) != PT_SHA256:
            sys.exit(f"{pt}: sha256 {sha256(pt)} is not the expected {PT_SHA256}")
        shutil.copyfile(pt, work / "yolo11n.pt") if pt != work / "yolo11n.pt" else None

        from importlib.metadata import version
        for pkg, want in PINS.items():
            have = version(pkg)
            if have.split("+")[0] != want:
                print(f"warning: {pkg} {have} is not the pinned {want}; the output may differ", file=sys.stderr)

        import numpy as np
        import onnx
        import onnxruntime as ort
        import onnxslim
        from ultralytics import YOLO

        cwd = os.getcwd()
        os.chdir(work)
        try:
            exported = YOLO("yolo11n.pt").export(format="onnx", imgsz=640, opset=12, simplify=True,
                                                 dynamic=True)
        finally:
            os.chdir(cwd)
        model = onnx.load(str(work / exported))

        # Batch back to 1: the predictor sends one image at a time; folds the batch Shape ops.
        model.graph.input[0].type.tensor_type.shape.dim[0].dim_value = 1
        model.graph.output[0].type.tensor_type.shape.dim[0].dim_value = 1
        del model.graph.value_info[:]
        meta = {m.key: m.value for m in model.metadata_props}
        model = onnxslim.slim(model)
        # onnxslim's value_info can hold a varying number of duplicate entries from run to run:
        # drop it and re-infer (deterministic) so that the file is byte-reproducible.
        del model.graph.value_info[:]
        model = onnx.shape_inference.infer_shapes(model)
        epoch = int(os.environ.get("SOURCE_DATE_EPOCH", "0"))
        meta["date"] = datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).isoformat()
        meta["rect"] = ("images [1,3,H,W], H and W multiples of 32; output0 [1,84,N], "
                        "N = (H/8)(W/8) + (H/16)(W/16) + (H/32)(W/32)")
        del model.metadata_props[:]
        for k, v in meta.items():
            model.metadata_props.add(key=k, value=v)
        model.ir_version = min(model.ir_version, 10)
        onnx.checker.check_model(model)
        a.out.parent.mkdir(parents=True, exist_ok=True)
        onnx.save(model, str(a.out))

    dims = lambda v: [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim]
    print(f"{a.out}: {a.out.stat().st_size} bytes, sha256 {sha256(a.out)}, opset "
          f"{model.opset_import[0].version}, {model.graph.input[0].name} {dims(model.graph.input[0])} -> "
          f"{model.graph.output[0].name} {dims(model.graph.output[0])}")

    so = ort.SessionOptions()
    so.intra_op_num_threads = 2
    rect = ort.InferenceSession(str(a.out), so, providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    for h, w in [(384, 640), (640, 480), (320, 320)]:
        y = rect.run(None, {"images": rng.random((1, 3, h, w), dtype=np.float32)})[0]
        n = sum((h // s) * (w // s) for s in (8, 16, 32))
        assert y.shape == (1, 84, n), (h, w, y.shape)
        print(f"  {h}x{w}: output {list(y.shape)} ok")
    if a.square.exists():
        square = ort.InferenceSession(str(a.square), so, providers=["CPUExecutionProvider"])
        x = rng.random((1, 3, 640, 640), dtype=np.float32)
        d = np.abs(rect.run(None, {"images": x})[0] - square.run(None, {"images": x})[0])
        print(f"  640x640 vs {a.square.name}: max |diff| boxes {d[0, :4].max():.2e} px, "
              f"scores {d[0, 4:].max():.2e}")
        assert d[0, :4].max() < 1e-2 and d[0, 4:].max() < 1e-4


if __name__ == "__main__":
    main()
