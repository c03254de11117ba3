"""Acceptance test with real models as shipped in PyPI packages: magika's file-type model and
rapidocr-onnxruntime's three PP-OCR models, served by modelplane-serve and compared with
onnxruntime (CPUExecutionProvider) on realistic, deterministic inputs built with the packages'
own preprocessing code.

    python real_models.py repo OUT_DIR
        Copy the models into a model repository, OUT_DIR/NAME/1/model.onnx + model.json
        ({"name", "version": "1", "sha256", "size_bytes"}), NAME in magika, ppocr_det,
        ppocr_rec, ppocr_cls; print {NAME: {"inputs": [{"name", "datatype", "shape"}]}}
        (OIP datatypes, -1 for free dims) as JSON on stdout.

    python real_models.py check HTTP_ADDR GRPC_ADDR [--wait SECONDS]
        e.g. check 127.0.0.1:8080 127.0.0.1:8081. For every case, run onnxruntime for the
        reference, then send the same request with tritonclient, unmodified, three ways:
        HTTP with JSON tensors, HTTP with binary tensors, gRPC. Every output must have the
        reference's shape and be numpy.allclose(rtol=1e-3, atol=1e-4). One line per
        (case, transport) with the max abs diff; exits 1 on the first mismatch or error,
        printing the server's error text. --wait polls server readiness first (default 0).

    python real_models.py payload CASE OUT.json [ROWS]
        Write the first ROWS (default 1) rows of CASE's inputs as an Open Inference Protocol
        JSON request (`cargo xtask bench serve` uses ppocr_rec's for tract vs onnxruntime).

    python real_models.py selftest
        Reference side only (no server): build the inputs, run onnxruntime, print shapes and
        a sanity check of each (magika's labels agree with magika's own API).

Cases (batch 1 for det, 2 for rec/cls, 2 for magika):
    magika        bytes [2,2048] INT32: magika's features of a Python file and a PNG file
    ppocr_det     x [1,3,480,640] FP32: non-square 480x640 synthetic page, rapidocr DetPreProcess
                  (limit_type "max", 960: the size is kept, already a multiple of 32)
    ppocr_rec     x [2,3,48,320] FP32: two text-line crops, rapidocr TextRecognizer.resize_norm_img
    ppocr_rec_w   x [2,3,48,533] FP32: same model, a wider (odd) batch width
    ppocr_cls     x [2,3,48,192] FP32: rapidocr TextClassifier.resize_norm_img

Requirements (pinned; tritonclient.grpc registers protobufs: run in its own process):
    magika, rapidocr-onnxruntime (brings opencv-python), onnxruntime, numpy, onnx,
    tritonclient[http,grpc]==2.73.0, pillow
"""

import hashlib
import io
import json
import pathlib
import shutil
import sys
import time
import types

import numpy as np

RTOL, ATOL = 1e-3, 1e-4
SEED = 20240611
ONNX_TO_OIP = {1: "FP32", 2: "UINT8", 3: "INT8", 4: "UINT16", 5: "INT16", 6: "INT32", 7: "INT64",
               8: "BYTES", 9: "BOOL", 10: "FP16", 11: "FP64", 12: "UINT32", 13: "UINT64", 16: "BF16"}


# ----------------------------------------------------------------------------- models


def model_paths():
    """NAME -> path of the ONNX file each package actually uses by default."""
    import magika
    import magika.magika as mm
    import rapidocr_onnxruntime

    mname = getattr(mm, "_DEFAULT_MODEL_NAME", None) or mm.Magika._get_default_model_name()
    mdir = pathlib.Path(magika.__file__).parent / "models" / mname
    rdir = pathlib.Path(rapidocr_onnxruntime.__file__).parent
    cfg = _read_rapidocr_config(rdir)
    return {
        "magika": mdir / "model.onnx",
        "ppocr_det": rdir / cfg["Det"]["model_path"],
        "ppocr_rec": rdir / cfg["Rec"]["model_path"],
        "ppocr_cls": rdir / cfg["Cls"]["model_path"],
    }


def _read_rapidocr_config(rdir):
    import yaml  # a dependency of rapidocr-onnxruntime

    return yaml.safe_load((rdir / "config.yaml").read_text())


def signature(path):
    """Inputs and outputs of an ONNX file as OIP metadata (-1 for free dims)."""
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    inits = {i.name for i in m.graph.initializer}

    def one(v):
        t = v.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else -1 for d in t.shape.dim]
        return {"name": v.name, "datatype": ONNX_TO_OIP.get(t.elem_type, str(t.elem_type)), "shape": shape}

    return {"inputs": [one(v) for v in m.graph.input if v.name not in inits],
            "outputs": [one(v) for v in m.graph.output]}


def cmd_repo(out_dir):
    out = pathlib.Path(out_dir)
    sigs = {}
    for name, src in model_paths().items():
        dst = out / name / "1"
        dst.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst / "model.onnx")
        data = (dst / "model.onnx").read_bytes()
        meta = {"name": name, "version": "1", "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
        (dst / "model.json").write_text(json.dumps(meta, indent=2) + "\n")
        sigs[name] = {"inputs": signature(src)["inputs"]}
    print(json.dumps(sigs, indent=2))


# ----------------------------------------------------------------------------- inputs


def _font(size):
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=size)  # Pillow >= 10.1 with FreeType: scalable
    except Exception:
        return None


def _draw_text(draw, xy, text, size, fill, rng):
    font = _font(size)
    if font is not None:
        draw.text(xy, text, fill=fill, font=font)
        return
    # no scalable font: dark rectangles shaped like words
    x, y = xy
    for word in text.split():
        w = int(len(word) * size * 0.55)
        draw.rectangle([x, y + int(rng.integers(0, 3)), x + w, y + size], fill=fill)
        x += w + size // 2


def _background(h, w, rng):
    base = rng.integers(225, 250)
    noise = rng.normal(0, 6, size=(h, w, 1)) + rng.normal(0, 2, size=(h, w, 3))
    return np.clip(base + noise, 0, 255).astype(np.uint8)


def page_image(h, w, seed):
    """A light page with lines of dark text and some strokes; BGR uint8 like cv2.imread."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.fromarray(_background(h, w, rng), "RGB")
    d = ImageDraw.Draw(img)
    words = ["invoice", "total", "ONNX", "model", "2024-06-11", "serve", "v2", "tensor", "42.00", "batch",
             "OCR", "text", "line", "KServe", "GPU", "quick", "brown", "fox"]
    y = int(rng.integers(10, 30))
    while y < h - 40:
        size = int(rng.integers(18, 34))
        x = int(rng.integers(10, 60))
        line = " ".join(rng.choice(words, size=int(rng.integers(2, 6))))
        dark = int(rng.integers(0, 70))
        _draw_text(d, (x, y), line, size, (dark, dark, dark + int(rng.integers(0, 40))), rng)
        y += size + int(rng.integers(12, 40))
    for _ in range(4):  # a few hand-drawn-ish strokes
        pts = [(int(rng.integers(0, w)), int(rng.integers(0, h))) for _ in range(3)]
        d.line(pts, fill=(30, 30, 60), width=int(rng.integers(2, 5)))
    return np.asarray(img)[:, :, ::-1].copy()


def line_image(text, h, w, seed):
    """A cropped text line as the detector would hand it to cls/rec; BGR uint8."""
    from PIL import Image, ImageDraw

    rng = np.random.default_rng(seed)
    img = Image.fromarray(_background(h, w, rng), "RGB")
    d = ImageDraw.Draw(img)
    _draw_text(d, (4, max(0, (h - int(h * 0.75)) // 2 - 2)), text, int(h * 0.75), (20, 20, 20), rng)
    return np.asarray(img)[:, :, ::-1].copy()


def det_input(img):
    from rapidocr_onnxruntime.ch_ppocr_det.utils import DetPreProcess

    # rapidocr with limit_type "max" uses 960 for images under 960 px: size kept, rounded to 32
    return DetPreProcess(960, "max", [0.5, 0.5, 0.5], [0.5, 0.5, 0.5])(img)


def rec_input(imgs, rec_image_shape=(3, 48, 320)):
    """rapidocr TextRecognizer's batching: width from the widest crop, at least 320."""
    from rapidocr_onnxruntime.ch_ppocr_rec.text_recognize import TextRecognizer

    me = types.SimpleNamespace(rec_image_shape=list(rec_image_shape))
    c, h, w = rec_image_shape
    max_wh_ratio = max([w / h] + [im.shape[1] / im.shape[0] for im in imgs])
    batch = [TextRecognizer.resize_norm_img(me, im, max_wh_ratio)[np.newaxis] for im in imgs]
    return np.concatenate(batch).astype(np.float32)


def cls_input(imgs, cls_image_shape=(3, 48, 192)):
    from rapidocr_onnxruntime.ch_ppocr_cls.text_cls import TextClassifier

    me = types.SimpleNamespace(cls_image_shape=list(cls_image_shape))
    batch = [TextClassifier.resize_norm_img(me, im)[np.newaxis] for im in imgs]
    return np.concatenate(batch).astype(np.float32)


def magika_features(data):
    """magika's own feature extraction (beg+end bytes, stripped, padded), as its model sees it."""
    import magika.magika as mm
    from magika.types.seekable import Seekable

    cfg = json.loads((model_paths()["magika"].parent / "config.min.json").read_text())
    f = mm.Magika._extract_features_from_seekable(
        Seekable(io.BytesIO(data)), cfg["beg_size"], cfg["mid_size"], cfg["end_size"],
        cfg["padding_token"], cfg["block_size"], cfg["use_inputs_at_offsets"])
    return list(f.beg[: cfg["beg_size"]]) + list(f.end[-cfg["end_size"]:] if cfg["end_size"] else [])


def magika_files():
    """(label, bytes): a real Python source file (from the pinned magika) and a PNG."""
    import magika.magika as mm
    from PIL import Image

    py = pathlib.Path(mm.__file__).read_bytes()
    buf = io.BytesIO()
    Image.fromarray(page_image(96, 128, SEED + 7)[:, :, ::-1]).save(buf, format="PNG")
    return [("python", py), ("png", buf.getvalue())]


def cases():
    """[(case, model, {input: array})] — deterministic for pinned package versions."""
    files = magika_files()
    mag = np.array([magika_features(b) for _, b in files], dtype=np.int32)
    page = page_image(480, 640, SEED)
    l1 = line_image("Total 42.00 EUR", 40, 232, SEED + 1)       # ratio 5.8
    l2 = line_image("serve v2 model", 44, 240, SEED + 2)        # ratio 5.5 -> width 320
    l3 = line_image("the quick brown fox jumps", 36, 400, SEED + 3)  # ratio 11.1 -> width 533
    return [
        ("magika", "magika", {"bytes": mag}),
        ("ppocr_det", "ppocr_det", {"x": det_input(page)}),
        ("ppocr_rec", "ppocr_rec", {"x": rec_input([l1, l2])}),
        ("ppocr_rec_w", "ppocr_rec", {"x": rec_input([l3, l1])}),
        ("ppocr_cls", "ppocr_cls", {"x": cls_input([l1, l3])}),
    ]


# ----------------------------------------------------------------------------- reference


def reference(all_cases):
    import onnxruntime as ort

    paths = model_paths()
    sessions, refs = {}, {}
    for case, model, feeds in all_cases:
        if model not in sessions:
            sessions[model] = ort.InferenceSession(str(paths[model]), providers=["CPUExecutionProvider"])
        s = sessions[model]
        names = [o.name for o in s.get_outputs()]
        refs[case] = dict(zip(names, s.run(names, feeds)))
    return refs


def cmd_selftest():
    t0 = time.time()
    all_cases = cases()
    t1 = time.time()
    refs = reference(all_cases)
    t2 = time.time()
    for case, model, feeds in all_cases:
        ins = ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in feeds.items())
        outs = ", ".join(f"{k} {v.dtype} {list(v.shape)}" for k, v in refs[case].items())
        print(f"{case:12s} {model:10s} in: {ins}  out: {outs}")
    # sanity: the reference agrees with magika's own API on the labels
    import magika

    cfg = json.loads((model_paths()["magika"].parent / "config.min.json").read_text())
    got = [cfg["target_labels_space"][i] for i in refs["magika"]["target_label"].argmax(axis=1)]
    m = magika.Magika()
    api = [m.identify_bytes(b).dl.label for _, b in magika_files()]
    want = [lab for lab, _ in magika_files()]
    print(f"magika labels: reference {got}, magika API {[str(a) for a in api]}, files {want}")
    if got != [str(a) for a in api] or got != want:
        sys.exit("selftest: magika labels disagree")
    det = refs["ppocr_det"]["sigmoid_0.tmp_0"]
    print(f"det: {(det > 0.3).mean():.3%} of pixels above rapidocr's 0.3 text threshold")
    cls = refs["ppocr_cls"][next(iter(refs["ppocr_cls"]))]
    print(f"cls: {cls.round(3).tolist()} (labels 0, 180)")
    print(f"inputs built in {t1 - t0:.2f} s, onnxruntime reference in {t2 - t1:.2f} s")


# ----------------------------------------------------------------------------- server


def fail(msg):
    print(f"FAIL: {msg}", flush=True)
    sys.exit(1)


def compare(case, transport, ref, got_fn):
    worst = 0.0
    for name, want in ref.items():
        got = got_fn(name)
        if got is None:
            fail(f"{case} via {transport}: output {name!r} missing from the response")
        if list(got.shape) != list(want.shape):
            fail(f"{case} via {transport}: output {name!r} shape {list(got.shape)} != reference {list(want.shape)}")
        if got.dtype != want.dtype:
            fail(f"{case} via {transport}: output {name!r} dtype {got.dtype} != reference {want.dtype}")
        diff = float(np.max(np.abs(got.astype(np.float64) - want.astype(np.float64)))) if want.size else 0.0
        worst = max(worst, diff)
        if not np.allclose(got, want, rtol=RTOL, atol=ATOL):
            bad = int(np.sum(~np.isclose(got, want, rtol=RTOL, atol=ATOL)))
            fail(f"{case} via {transport}: output {name!r} differs from onnxruntime: max abs diff {diff:.3g}, "
                 f"{bad}/{want.size} elements outside rtol={RTOL} atol={ATOL}")
    return worst


def wait_ready(http_addr, seconds):
    import tritonclient.http as th

    deadline = time.time() + seconds
    while True:
        try:
            if th.InferenceServerClient(url=http_addr).is_server_ready():
                return
        except Exception as e:  # noqa: BLE001 - connection refused while starting
            err = e
        else:
            err = "not ready"
        if time.time() >= deadline:
            fail(f"server at {http_addr} not ready after {seconds} s: {err}")
        time.sleep(0.5)


def cmd_check(http_addr, grpc_addr, wait_s):
    import tritonclient.grpc as tg
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException, np_to_triton_dtype

    if wait_s:
        wait_ready(http_addr, wait_s)
    t0 = time.time()
    all_cases = cases()
    refs = reference(all_cases)
    print(f"reference: {len(all_cases)} cases in {time.time() - t0:.2f} s", flush=True)

    hc = th.InferenceServerClient(url=http_addr, connection_timeout=120.0, network_timeout=120.0)
    gc = tg.InferenceServerClient(url=grpc_addr)

    expected = {name: signature(p) for name, p in model_paths().items()}
    for model, sig in expected.items():
        for transport, c in (("http", hc), ("grpc", gc)):
            try:
                if not c.is_model_ready(model):
                    fail(f"model {model} not ready via {transport}")
                md = c.get_model_metadata(model)
            except InferenceServerException as e:
                fail(f"metadata of {model} via {transport}: server error: {e.message()}")
            ins = md["inputs"] if isinstance(md, dict) else [{"name": i.name, "datatype": i.datatype} for i in md.inputs]
            got = [(i["name"], i["datatype"]) for i in ins]
            want = [(i["name"], i["datatype"]) for i in sig["inputs"]]
            if got != want:
                fail(f"metadata of {model} via {transport}: inputs {got} != {want}")

    for case, model, feeds in all_cases:
        ref = refs[case]
        for transport in ("http-json", "http-binary", "grpc"):
            t = time.time()
            try:
                if transport == "grpc":
                    ins = []
                    for k, v in feeds.items():
                        i = tg.InferInput(k, list(v.shape), np_to_triton_dtype(v.dtype))
                        i.set_data_from_numpy(v)
                        ins.append(i)
                    outs = [tg.InferRequestedOutput(n) for n in ref]
                    r = gc.infer(model, ins, outputs=outs, request_id=f"{case}-{transport}")
                else:
                    binary = transport == "http-binary"
                    ins = []
                    for k, v in feeds.items():
                        i = th.InferInput(k, list(v.shape), np_to_triton_dtype(v.dtype))
                        i.set_data_from_numpy(v, binary_data=binary)
                        ins.append(i)
                    outs = [th.InferRequestedOutput(n, binary_data=binary) for n in ref]
                    r = hc.infer(model, ins, outputs=outs, request_id=f"{case}-{transport}")
            except InferenceServerException as e:
                shapes = {k: list(v.shape) for k, v in feeds.items()}
                fail(f"{case} via {transport} (model {model}, inputs {shapes}): server error: {e.message()}"
                     + (f" [status {e.status()}]" if e.status() else ""))
            except Exception as e:  # noqa: BLE001 - transport-level failure
                fail(f"{case} via {transport} (model {model}): {type(e).__name__}: {e}")
            worst = compare(case, transport, ref, r.as_numpy)
            shapes = " ".join(f"{k}{list(v.shape)}" for k, v in feeds.items())
            print(f"ok  {case:12s} {transport:12s} {shapes:22s} max_abs_diff={worst:.3g}  {time.time() - t:.2f} s",
                  flush=True)
    print(f"all {len(all_cases) * 3} requests match onnxruntime (rtol={RTOL}, atol={ATOL}) in {time.time() - t0:.1f} s")


def cmd_payload(case_name, out, rows):
    for case, _model, feeds in cases():
        if case == case_name:
            inputs = [{"name": k, "shape": list(v[:rows].shape), "datatype": ONNX_TO_OIP[
                       {np.dtype("float32"): 1, np.dtype("int32"): 6, np.dtype("int64"): 7}[v.dtype]],
                       "data": v[:rows].flatten().tolist()} for k, v in feeds.items()]
            pathlib.Path(out).write_text(json.dumps({"inputs": inputs}))
            return
    sys.exit(f"no case {case_name!r}; cases: {[c for c, _, _ in cases()]}")


def main(argv):
    if len(argv) >= 2 and argv[0] == "repo":
        return cmd_repo(argv[1])
    if len(argv) >= 3 and argv[0] == "payload":
        return cmd_payload(argv[1], argv[2], int(argv[3]) if len(argv) > 3 else 1)
    if len(argv) >= 1 and argv[0] == "selftest":
        return cmd_selftest()
    if len(argv) >= 3 and argv[0] == "check":
        wait_s = float(argv[argv.index("--wait") + 1]) if "--wait" in argv else 0.0
        return cmd_check(argv[1], argv[2], wait_s)
    sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
