"""onnxruntime in process, no server: the Python-side limit for `cargo xtask bench serve`.
Prints a JSON report like `modelplane-serve bench --json` (concurrency 1).

    python ort_raw.py MODEL.onnx PAYLOAD.json SECONDS [THREADS]

THREADS: onnxruntime's intra-op threads (default: its own default, one per core).
"""

import json
import sys
import time

import numpy as np
import onnxruntime as ort

NP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}
model, payload, seconds = sys.argv[1], json.load(open(sys.argv[2])), float(sys.argv[3])
opts = ort.SessionOptions()
if len(sys.argv) > 4:
    opts.intra_op_num_threads = int(sys.argv[4])
sess = ort.InferenceSession(model, opts, providers=["CPUExecutionProvider"])
feeds = {i["name"]: np.array(i["data"], dtype=NP[i["datatype"]]).reshape(i["shape"]) for i in payload["inputs"]}
for _ in range(200):
    sess.run(None, feeds)
lat = []
start = time.perf_counter()
while time.perf_counter() - start < seconds:
    t = time.perf_counter()
    sess.run(None, feeds)
    lat.append(time.perf_counter() - t)
elapsed = time.perf_counter() - start
lat.sort()
q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))] * 1000
print(json.dumps({"requests": len(lat), "errors": 0, "duration_s": elapsed, "rps": len(lat) / elapsed, "p50_ms": q(0.5), "p90_ms": q(0.9), "p99_ms": q(0.99), "max_ms": lat[-1] * 1000}))
