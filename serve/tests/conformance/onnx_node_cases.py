#!/usr/bin/env python3
"""ONNX backend *node* test cases through modelplane-serve (Open Inference Protocol v2, REST).

The onnx wheel defines every node test case in Python (onnx.backend.test.case.node) but ships
no data files for them. This script turns them into a model repository plus expected inputs
and outputs, runs them through onnxruntime as a reference and through a running server, and
keeps the server's failures honest against a list of expected failures (the way tract keeps
its ONNX conformance).

Subcommands (OUT is a work directory, e.g. /tmp/conf):

  generate OUT                       OUT/repo/<case>/1/{model.onnx,model.json},
                                     OUT/cases/<case>.json, OUT/not_applicable.txt
  ort OUT                            onnxruntime on every applicable case -> OUT/ort_results.json
  config OUT PORT                    OUT/config.json serving every applicable case
  check OUT HTTP_ADDR                every applicable case through the server (binary REST, then
                                     JSON REST) -> OUT/server_results.json
  compare OUT EXPECTED_FAILURES      regressions (fail, not listed: exit 1) and cases now passing
  expected-failures OUT FILE         (re)write the expected-failures list from server_results.json

Typical run:

  python onnx_node_cases.py generate /tmp/conf
  python onnx_node_cases.py ort /tmp/conf
  python onnx_node_cases.py config /tmp/conf 18080
  modelplane-serve serve --config /tmp/conf/config.json > /tmp/conf/server.log 2>&1 &
  python onnx_node_cases.py check /tmp/conf 127.0.0.1:18080 --server-log /tmp/conf/server.log
  python onnx_node_cases.py compare /tmp/conf serve/tests/conformance/expected_failures.txt

check waits for /v2/health/ready, then per case: GET /v2/models/<case>/ready (503: the load
error is the result), the inputs by the binary tensor extension asking binary outputs, then the
same as plain JSON (skipped when an input holds NaN/Inf, which JSON cannot carry; a JSON null
answer is accepted where NaN/Inf is expected). At most 2 requests in flight.

Needs the standard library, numpy, onnx (generate) and onnxruntime (ort only).
Comparison follows onnx's backend runner: same shape and datatype, floats with
numpy.isclose(actual, expected, rtol=1e-3, atol=1e-7, equal_nan=True), integers, bools and
strings exact.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import http.client
import json
import os
import re
import shutil
import sys
import threading
import time
import warnings

import numpy as np

RTOL = 1e-3
ATOL = 1e-7

# ONNX TensorProto element type -> (OIP datatype, numpy dtype). Everything else has no OIP
# datatype (bfloat16, float8*, int4/uint4, int2/uint2, float4, complex, ...).
ONNX_TO_OIP = {
    1: ("FP32", np.float32),
    2: ("UINT8", np.uint8),
    3: ("INT8", np.int8),
    4: ("UINT16", np.uint16),
    5: ("INT16", np.int16),
    6: ("INT32", np.int32),
    7: ("INT64", np.int64),
    8: ("BYTES", object),
    9: ("BOOL", np.bool_),
    10: ("FP16", np.float16),
    11: ("FP64", np.float64),
    12: ("UINT32", np.uint32),
    13: ("UINT64", np.uint64),
}
OIP_DTYPES = {oip: dt for oip, dt in ONNX_TO_OIP.values()}
FLOATS = {"FP16", "FP32", "FP64"}

# Opset domains whose cases are not inference models.
NOT_APPLICABLE_DOMAINS = {
    "ai.onnx.preview.training": "training domain (ai.onnx.preview.training)",
}


class NotApplicable(Exception):
    pass


# --------------------------------------------------------------------------------------------
# Encoding of tensors in case files: {"name", "datatype", "shape", "data"} where data is the
# base64 of the raw little-endian bytes, or for BYTES a list of (UTF-8) strings.


def to_str(x) -> str:
    if isinstance(x, (bytes, np.bytes_)):
        return bytes(x).decode("utf-8")  # UnicodeDecodeError -> not applicable
    if isinstance(x, (str, np.str_)):
        return str(x)
    raise NotApplicable(f"string tensor element of type {type(x).__name__}")


def encode_tensor(name: str, datatype: str, arr: np.ndarray) -> dict:
    if datatype == "BYTES":
        try:
            data = [to_str(x) for x in np.asarray(arr, dtype=object).reshape(-1)]
        except UnicodeDecodeError:
            raise NotApplicable("string tensor that is not UTF-8") from None
    else:
        want = np.dtype(OIP_DTYPES[datatype])
        a = np.asarray(arr)
        if a.dtype != want:
            if a.dtype.kind != want.kind and not (a.size == 0):
                raise NotApplicable(f"{name}: data is {a.dtype}, the graph declares {datatype}")
            a = a.astype(want)
        data = base64.b64encode(np.ascontiguousarray(a).astype(want.newbyteorder("<")).tobytes()).decode()
    return {"name": name, "datatype": datatype, "shape": [int(d) for d in np.shape(arr)], "data": data}


def decode_tensor(t: dict) -> np.ndarray:
    if t["datatype"] == "BYTES":
        a = np.empty(len(t["data"]), dtype=object)
        a[:] = t["data"]
        return a.reshape(t["shape"])
    dt = np.dtype(OIP_DTYPES[t["datatype"]]).newbyteorder("<")
    return np.frombuffer(base64.b64decode(t["data"]), dtype=dt).reshape(t["shape"])


def raw_bytes(t: dict) -> bytes:
    """The OIP binary form of a case tensor."""
    if t["datatype"] == "BYTES":
        out = bytearray()
        for s in t["data"]:
            b = s.encode("utf-8")
            out += len(b).to_bytes(4, "little") + b
        return bytes(out)
    return base64.b64decode(t["data"])


def from_raw(datatype: str, shape: list, raw: bytes) -> np.ndarray:
    if datatype == "BYTES":
        items, i = [], 0
        while i + 4 <= len(raw):
            n = int.from_bytes(raw[i : i + 4], "little")
            items.append(raw[i + 4 : i + 4 + n].decode("utf-8", "replace"))
            i += 4 + n
        a = np.empty(len(items), dtype=object)
        a[:] = items
        return a.reshape(shape)
    if datatype not in OIP_DTYPES:
        raise ValueError(f"unknown datatype {datatype}")
    dt = np.dtype(OIP_DTYPES[datatype]).newbyteorder("<")
    return np.frombuffer(raw, dtype=dt).reshape(shape)


# --------------------------------------------------------------------------------------------
# Comparison


def compare_arrays(expected: np.ndarray, datatype: str, got: np.ndarray) -> str | None:
    """None when equal within tolerance, else a short reason. `got` may be float64 (JSON)."""
    if list(np.shape(got)) != list(np.shape(expected)):
        return f"shape {list(np.shape(got))} != expected {list(np.shape(expected))}"
    if expected.size == 0:
        return None
    if datatype == "BYTES":
        e = [str(x) for x in expected.reshape(-1)]
        g = [str(x) for x in np.asarray(got, dtype=object).reshape(-1)]
        bad = [i for i, (a, b) in enumerate(zip(e, g)) if a != b]
        if bad:
            i = bad[0]
            return f"{len(bad)}/{len(e)} strings differ, first at {i}: {g[i][:40]!r} != {e[i][:40]!r}"
        return None
    if datatype in FLOATS:
        e = expected.astype(np.float64)
        g = np.asarray(got, dtype=np.float64)
        ok = np.isclose(g, e, rtol=RTOL, atol=ATOL, equal_nan=True)
        if ok.all():
            return None
        bad = ~ok
        with np.errstate(invalid="ignore"):
            d = np.abs(g - e)[bad]
        finite = d[np.isfinite(d)]
        mad = f"{finite.max():.4g}" if finite.size else "inf/nan"
        i = int(np.flatnonzero(bad.reshape(-1))[0])
        return (
            f"{int(bad.sum())}/{e.size} differ, max_abs_diff={mad}, "
            f"first at {i}: {g.reshape(-1)[i]:.6g} != {e.reshape(-1)[i]:.6g}"
        )
    # integers and bools: exact
    if datatype == "BOOL":
        e = expected.astype(bool)
        g = np.asarray(got).astype(bool)
    else:
        e = expected
        g = np.asarray(got).astype(expected.dtype) if np.asarray(got).dtype != object else np.asarray(got)
    bad = e.reshape(-1) != g.reshape(-1)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        diff = ""
        if datatype != "BOOL":
            d = np.abs(g.astype(np.float64) - e.astype(np.float64))
            diff = f", max_abs_diff={d.max():.6g}"
        return (
            f"{int(bad.sum())}/{e.size} differ{diff}, first at {i}: "
            f"{g.reshape(-1)[i]} != {e.reshape(-1)[i]}"
        )
    return None


# --------------------------------------------------------------------------------------------
# Case files


def case_names(out: str) -> list[str]:
    d = os.path.join(out, "cases")
    return sorted(f[:-5] for f in os.listdir(d) if f.endswith(".json"))


def load_case(out: str, name: str) -> dict:
    with open(os.path.join(out, "cases", name + ".json")) as f:
        return json.load(f)


def write_json(path: str, obj) -> None:
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1, sort_keys=True)
        f.write("\n")
    os.replace(tmp, path)


def short(s: str, n: int = 300) -> str:
    s = " ".join(str(s).split())
    return s if len(s) <= n else s[: n - 3] + "..."


# --------------------------------------------------------------------------------------------
# generate


def value_kind(vi) -> tuple[str | None, str | None]:
    """(OIP datatype, None) for a plain tensor of an OIP type, else (None, reason)."""
    t = vi.type
    which = t.WhichOneof("value")
    if which != "tensor_type":
        return None, {
            "sequence_type": "sequence",
            "optional_type": "optional",
            "map_type": "map",
            "sparse_tensor_type": "sparse tensor",
            None: "untyped",
        }.get(which, which)
    et = t.tensor_type.elem_type
    if et in ONNX_TO_OIP:
        return ONNX_TO_OIP[et][0], None
    import onnx

    try:
        tname = onnx.TensorProto.DataType.Name(et)
    except ValueError:
        tname = str(et)
    return None, f"{tname} tensor (no OIP datatype)"


def classify_and_encode(case) -> dict:
    from onnx import numpy_helper

    model = case.model
    if model is None or not case.data_sets:
        raise NotApplicable("no model or data")
    for o in model.opset_import:
        if o.domain in NOT_APPLICABLE_DOMAINS:
            raise NotApplicable(NOT_APPLICABLE_DOMAINS[o.domain])
    if len(model.functions):
        raise NotApplicable("model-local functions")
    if len(case.data_sets) != 1:
        raise NotApplicable(f"{len(case.data_sets)} data sets")
    g = model.graph
    initializers = {i.name for i in g.initializer}
    inputs_vi = [vi for vi in g.input if vi.name not in initializers]
    for where, vis in (("input", inputs_vi), ("output", list(g.output))):
        for vi in vis:
            dt, why = value_kind(vi)
            if dt is None:
                raise NotApplicable(f"{why} {where}")
    ins, outs = case.data_sets[0]
    if len(ins) != len(inputs_vi) or len(outs) != len(g.output):
        raise NotApplicable(
            f"data has {len(ins)} inputs/{len(outs)} outputs, graph {len(inputs_vi)}/{len(g.output)}"
        )

    def enc(vi, v):
        dt, _ = value_kind(vi)
        if v is None:
            raise NotApplicable(f"missing value for {vi.name}")
        if hasattr(v, "SerializeToString"):  # TensorProto
            v = numpy_helper.to_array(v)
        if isinstance(v, (list, dict)):
            raise NotApplicable(f"non-tensor value for {vi.name}")
        return encode_tensor(vi.name, dt, np.asarray(v) if dt != "BYTES" else np.asarray(v, dtype=object))

    return {
        "name": case.name,
        "rtol": case.rtol,
        "atol": case.atol,
        "opset_import": [f"{o.domain or 'ai.onnx'} v{o.version}" for o in model.opset_import],
        "ops": sorted({n.op_type for n in g.node}),
        "inputs": [enc(vi, v) for vi, v in zip(inputs_vi, ins)],
        "outputs": [enc(vi, v) for vi, v in zip(g.output, outs)],
    }


def cmd_generate(args) -> int:
    t0 = time.time()
    out = args.out
    warnings.simplefilter("ignore")
    np.seterr(all="ignore")
    import onnx
    from onnx.backend.test.case import node as node_cases

    cases = node_cases.collect_testcases()
    t_collect = time.time() - t0
    for sub in ("repo", "cases"):
        shutil.rmtree(os.path.join(out, sub), ignore_errors=True)
        os.makedirs(os.path.join(out, sub))
    seen, na, ok = set(), [], []
    for case in sorted(cases, key=lambda c: c.name):
        name = case.name
        if name in seen:
            na.append((name, "duplicate case name"))
            continue
        seen.add(name)
        try:
            if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
                raise NotApplicable("case name not usable as a model name")
            doc = classify_and_encode(case)
            blob = case.model.SerializeToString(deterministic=True)
            vdir = os.path.join(out, "repo", name, "1")
            os.makedirs(vdir)
            with open(os.path.join(vdir, "model.onnx"), "wb") as f:
                f.write(blob)
            write_json(
                os.path.join(vdir, "model.json"),
                {"name": name, "version": "1", "sha256": hashlib.sha256(blob).hexdigest(), "size_bytes": len(blob)},
            )
            write_json(os.path.join(out, "cases", name + ".json"), doc)
            ok.append(name)
        except NotApplicable as e:
            na.append((name, str(e)))
        except Exception as e:  # noqa: BLE001 - one case never aborts the run
            shutil.rmtree(os.path.join(out, "repo", name), ignore_errors=True)
            na.append((name, f"generation error: {short(f'{type(e).__name__}: {e}', 200)}"))
    with open(os.path.join(out, "not_applicable.txt"), "w") as f:
        f.write("# ONNX node test cases not run through the server: case<TAB>reason\n")
        for name, why in na:
            f.write(f"{name}\t{why}\n")
    write_json(
        os.path.join(out, "index.json"),
        {"onnx": onnx.__version__, "total": len(seen), "applicable": ok, "not_applicable": dict(na)},
    )
    by_reason: dict[str, int] = {}
    for _, why in na:
        by_reason[why] = by_reason.get(why, 0) + 1
    print(f"{len(seen)} node cases (onnx {onnx.__version__}): {len(ok)} applicable, {len(na)} not applicable")
    for why, n in sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0])):
        print(f"  {n:4d}  {why}")
    print(f"generated in {time.time() - t0:.1f}s (collecting the cases {t_collect:.1f}s) into {out}")
    return 0


# --------------------------------------------------------------------------------------------
# ort


def cmd_ort(args) -> int:
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    out = args.out
    t0 = time.time()
    results = {}
    names = case_names(out)
    for name in names:
        try:
            case = load_case(out, name)
            so = ort.SessionOptions()
            so.intra_op_num_threads = 1
            so.inter_op_num_threads = 1
            so.log_severity_level = 3
            try:
                sess = ort.InferenceSession(
                    os.path.join(out, "repo", name, "1", "model.onnx"), so, providers=["CPUExecutionProvider"]
                )
            except Exception as e:  # noqa: BLE001
                results[name] = f"fail: load: {short(e, 200)}"
                continue
            feeds = {t["name"]: decode_tensor(t) for t in case["inputs"]}
            try:
                got = sess.run([t["name"] for t in case["outputs"]], feeds)
            except Exception as e:  # noqa: BLE001
                results[name] = f"fail: run: {short(e, 200)}"
                continue
            problems = []
            for t, g in zip(case["outputs"], got):
                e = decode_tensor(t)
                g = np.asarray(g)
                if t["datatype"] == "BYTES":
                    if g.dtype.kind not in "OUS":
                        problems.append(f"output {t['name']}: dtype {g.dtype} != BYTES")
                        continue
                elif g.dtype != e.dtype.newbyteorder("="):
                    problems.append(f"output {t['name']}: dtype {g.dtype} != {e.dtype}")
                    continue
                why = compare_arrays(e, t["datatype"], g)
                if why:
                    problems.append(f"mismatch output {t['name']} {why}")
            results[name] = "pass" if not problems else "fail: " + short("; ".join(problems), 300)
        except Exception as e:  # noqa: BLE001
            results[name] = f"fail: harness: {short(f'{type(e).__name__}: {e}', 200)}"
    write_json(os.path.join(out, "ort_results.json"), results)
    n_pass = sum(1 for v in results.values() if v == "pass")
    print(f"onnxruntime {ort.__version__}: {n_pass}/{len(results)} passed in {time.time() - t0:.1f}s")
    return 0


# --------------------------------------------------------------------------------------------
# config


def cmd_config(args) -> int:
    out = os.path.abspath(args.out)
    cfg = {
        "repository": os.path.join(out, "repo"),
        "http": f"127.0.0.1:{int(args.port)}",
        "models": [{"name": n} for n in case_names(out)],
        "limits": {"request_timeout_ms": 60000},
    }
    path = os.path.join(out, "config.json")
    write_json(path, cfg)
    print(path)
    return 0


# --------------------------------------------------------------------------------------------
# check


class Client:
    """One keep-alive HTTP connection per thread."""

    def __init__(self, addr: str, timeout: float):
        self.addr = addr.replace("http://", "").rstrip("/")
        self.timeout = timeout
        self.local = threading.local()

    def request(self, method: str, path: str, body: bytes | None = None, headers: dict | None = None):
        for attempt in range(2):
            conn = getattr(self.local, "conn", None)
            if conn is None:
                host, _, port = self.addr.rpartition(":")
                conn = http.client.HTTPConnection(host, int(port), timeout=self.timeout)
                self.local.conn = conn
            try:
                conn.request(method, path, body=body, headers=headers or {})
                r = conn.getresponse()
                return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
            except (http.client.HTTPException, ConnectionError, OSError):
                conn.close()
                self.local.conn = None
                if attempt == 1:
                    raise
        raise AssertionError("unreachable")


def error_text(status: int, body: bytes, n: int = 200) -> str:
    try:
        return short(json.loads(body)["error"], n)
    except Exception:  # noqa: BLE001
        return short(body[:n].decode("utf-8", "replace"), n)


def json_values(t: dict):
    """Flat JSON data for a case tensor, or None when JSON cannot carry it (NaN/Inf)."""
    a = decode_tensor(t)
    if t["datatype"] == "BYTES":
        return list(t["data"])
    if t["datatype"] in FLOATS:
        f = a.astype(np.float64).reshape(-1)
        if not np.isfinite(f).all():
            return None
        return f.tolist()
    if t["datatype"] == "BOOL":
        return [bool(x) for x in a.reshape(-1)]
    return [int(x) for x in a.reshape(-1)]


def check_outputs(case: dict, outputs: list, values: dict, via_json: bool, notes: list) -> str | None:
    by_name = {o.get("name"): o for o in outputs}
    problems = []
    for t in case["outputs"]:
        o = by_name.get(t["name"])
        if o is None:
            problems.append(f"output {t['name']} missing (got {sorted(map(str, by_name))})")
            continue
        if o.get("datatype") != t["datatype"]:
            problems.append(f"output {t['name']} datatype {o.get('datatype')} != {t['datatype']}")
            continue
        if list(o.get("shape", [])) != list(t["shape"]):
            problems.append(f"output {t['name']} shape {o.get('shape')} != {t['shape']}")
            continue
        exp = decode_tensor(t)
        got = values[t["name"]]
        if via_json and t["datatype"] in FLOATS:
            flat = got if isinstance(got, list) else []
            if len(flat) != exp.size:
                problems.append(f"output {t['name']}: {len(flat)} JSON values for {exp.size} elements")
                continue
            nulls = [i for i, x in enumerate(flat) if x is None]
            if nulls:
                ef = exp.astype(np.float64).reshape(-1)
                finite = [i for i in nulls if np.isfinite(ef[i])]
                if finite:
                    problems.append(
                        f"mismatch output {t['name']} {len(finite)}/{ef.size} null where a finite number is expected, "
                        f"first at {finite[0]}: null != {ef[finite[0]]:.6g}"
                    )
                    continue
                if np.isinf(ef[nulls]).any():
                    notes.append(f"json: output {t['name']}: +-inf answered as null")
                # JSON has no NaN/Inf: the server writes null; accepted where non-finite is expected
                flat = [ef[i] if x is None else x for i, x in enumerate(flat)]
            got = np.array(flat, dtype=np.float64).reshape(t["shape"])
        elif via_json:
            if len(got) != exp.size:
                problems.append(f"output {t['name']}: {len(got)} JSON values for {exp.size} elements")
                continue
            if t["datatype"] == "BYTES":
                a = np.empty(len(got), dtype=object)
                a[:] = got
                got = a.reshape(t["shape"])
            else:
                got = np.array(got, dtype=object).reshape(t["shape"])
                if t["datatype"] == "BOOL":
                    if not all(isinstance(x, bool) for x in got.reshape(-1)):
                        problems.append(f"output {t['name']}: JSON BOOL data is not booleans")
                        continue
                got = got.astype(exp.dtype)
        why = compare_arrays(exp, t["datatype"], got)
        if why:
            problems.append(f"mismatch output {t['name']} {why}")
    return "; ".join(problems) if problems else None


def infer_binary(client: Client, name: str, case: dict, notes: list) -> str | None:
    raws = [raw_bytes(t) for t in case["inputs"]]
    head = {
        "inputs": [
            {"name": t["name"], "shape": t["shape"], "datatype": t["datatype"], "parameters": {"binary_data_size": len(r)}}
            for t, r in zip(case["inputs"], raws)
        ],
        "outputs": [{"name": t["name"], "parameters": {"binary_data": True}} for t in case["outputs"]],
    }
    hb = json.dumps(head).encode()
    status, headers, body = client.request(
        "POST",
        f"/v2/models/{name}/infer",
        hb + b"".join(raws),
        {"Content-Type": "application/octet-stream", "Inference-Header-Content-Length": str(len(hb))},
    )
    if status != 200:
        return f"binary: {status} {error_text(status, body)}"
    n = int(headers.get("inference-header-content-length", len(body)))
    resp = json.loads(body[:n])
    rest = body[n:]
    values = {}
    exp_types = {t["name"]: t["datatype"] for t in case["outputs"]}
    for o in resp.get("outputs", []):
        p = o.get("parameters") or {}
        if "binary_data_size" in p:
            k = int(p["binary_data_size"])
            chunk, rest = rest[:k], rest[k:]
            try:
                values[o["name"]] = from_raw(o.get("datatype", exp_types.get(o["name"], "")), o.get("shape", []), chunk)
            except Exception as e:  # noqa: BLE001
                values[o["name"]] = None
                return f"binary: output {o['name']}: undecodable ({short(e, 100)})"
        else:
            d = o.get("data")
            values[o["name"]] = np.array(d if d is not None else [], dtype=object)
            notes.append(f"binary: output {o['name']} answered as JSON, not binary")
    why = check_outputs(case, resp.get("outputs", []), values, via_json=False, notes=notes)
    return f"binary: {why}" if why else None


def infer_json(client: Client, name: str, case: dict, notes: list) -> str | None:
    inputs = []
    for t in case["inputs"]:
        v = json_values(t)
        if v is None:
            notes.append("json: skipped (an input holds NaN/Inf, which JSON cannot carry)")
            return None
        inputs.append({"name": t["name"], "shape": t["shape"], "datatype": t["datatype"], "data": v})
    body = json.dumps({"inputs": inputs}, allow_nan=False).encode()
    status, _, rbody = client.request(
        "POST", f"/v2/models/{name}/infer", body, {"Content-Type": "application/json"}
    )
    if status != 200:
        return f"json: {status} {error_text(status, rbody)}"
    resp = json.loads(rbody)
    values = {o.get("name"): (o.get("data") if o.get("data") is not None else []) for o in resp.get("outputs", [])}
    for o in resp.get("outputs", []):
        if not isinstance(o.get("data"), list):
            return f"json: output {o.get('name')} has no data array ({short(o.get('data'), 60)})"
    why = check_outputs(case, resp.get("outputs", []), values, via_json=True, notes=notes)
    return f"json: {why}" if why else None


def check_one(client: Client, name: str, out: str) -> tuple[str, list]:
    notes: list = []
    try:
        case = load_case(out, name)
        status, _, body = client.request("GET", f"/v2/models/{name}/ready")
        if status != 200:
            if status == 503:
                return f"load: {error_text(status, body, 1000)}", notes
            return f"fail: ready: {status} {error_text(status, body)}", notes
        problems = []
        for how in (infer_binary, infer_json):
            try:
                why = how(client, name, case, notes)
            except Exception as e:  # noqa: BLE001
                why = f"{'binary' if how is infer_binary else 'json'}: exception {type(e).__name__}: {short(e, 150)}"
            if why:
                problems.append(why)
        return ("pass" if not problems else "fail: " + short("; ".join(problems), 400)), notes
    except Exception as e:  # noqa: BLE001
        return f"fail: harness: {type(e).__name__}: {short(e, 200)}", notes


# Categories of a server result (also the categories of the expected-failures list).
def split_parts(body: str) -> list[tuple[str, str]]:
    """'binary: A; json: B' -> [('binary', 'A'), ('json', 'B')]."""
    out = []
    for p in re.split(r"; (?=(?:binary|json): )", body):
        m = re.match(r"(binary|json): (.*)", p, re.S)
        out.append((m.group(1), m.group(2)) if m else ("", p))
    return out


def is_error_part(text: str) -> bool:
    return bool(re.match(r"(\d{3} |exception |output \S+ undecodable|output \S+ has no data)", text))


def category(result: str) -> str | None:
    """unsupported op | load error | wrong answer | server error (None: pass)."""
    if result == "pass":
        return None
    if result.startswith("load: "):
        if "has no implementation of the operator" in result:
            return "unsupported op"
        return "load error"
    body = result[len("fail: ") :] if result.startswith("fail: ") else result
    parts = split_parts(body)
    if any(how == "" for how, _ in parts):  # harness or ready problems
        return "server error"
    # a wrong answer by either way outweighs an HTTP error by the other
    if any(not is_error_part(text) for _, text in parts):
        return "wrong answer"
    return "server error"


INTERNAL = "500 internal server error; see the server log"


def add_log_errors(results: dict, log_path: str) -> dict:
    """Replaces the server's opaque 500 text with the error it logged for that model."""
    errors: dict[str, str] = {}
    try:
        with open(log_path, errors="replace") as f:
            for line in f:
                if '"internal error"' not in line:
                    continue
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue
                err = str(rec.get("error") or (rec.get("fields") or {}).get("error") or "")
                m = re.match(r"model (\S+) v\S+: (?:running the model: )?(.*)", err, re.S)
                if m:
                    errors[m.group(1)] = m.group(2)
    except OSError as e:
        print(f"cannot read the server log {log_path}: {e}", file=sys.stderr)
        return results
    out = {}
    for name, v in results.items():
        if INTERNAL in v and name in errors:
            v = v.replace(INTERNAL, f"500 internal server error (log: {short(errors[name], 160)})")
        out[name] = v
    return out


def wait_ready(client: Client, timeout: float) -> None:
    t0 = time.time()
    while True:
        try:
            status, _, _ = client.request("GET", "/v2/health/ready")
            if status == 200:
                return
        except OSError:
            pass
        if time.time() - t0 > timeout:
            raise SystemExit(f"the server at {client.addr} is not ready after {timeout:.0f}s")
        time.sleep(2)


def cmd_check(args) -> int:
    out = args.out
    client = Client(args.addr, timeout=args.timeout)
    wait_ready(client, args.wait)
    names = case_names(out)
    if args.only:
        names = [n for n in names if re.search(args.only, n)]
    t0 = time.time()
    results, notes = {}, {}
    workers = max(1, min(2, args.concurrency))
    with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
        futs = {pool.submit(check_one, client, n, out): n for n in names}
        for i, fut in enumerate(concurrent.futures.as_completed(futs), 1):
            n = futs[fut]
            try:
                results[n], nn = fut.result()
            except Exception as e:  # noqa: BLE001
                results[n], nn = f"fail: harness: {short(e, 200)}", []
            if nn:
                notes[n] = sorted(set(nn))
            if args.verbose or (i % 200 == 0):
                print(f"  [{i}/{len(names)}] {n}: {results[n][:120]}", file=sys.stderr)
    results = dict(sorted(results.items()))
    if args.server_log:
        results = add_log_errors(results, args.server_log)
    if args.only and os.path.exists(os.path.join(out, "server_results.json")):
        with open(os.path.join(out, "server_results.json")) as f:
            merged = json.load(f)
        merged.update(results)
        results = dict(sorted(merged.items()))
    write_json(os.path.join(out, "server_results.json"), results)
    write_json(os.path.join(out, "server_notes.json"), dict(sorted(notes.items())))
    n_pass = sum(1 for v in results.values() if v == "pass")
    cats: dict[str, int] = {}
    for v in results.values():
        c = category(v)
        if c:
            cats[c] = cats.get(c, 0) + 1
    print(f"{n_pass} passed, {len(results) - n_pass} failed ({len(results)} cases, checked in {time.time() - t0:.1f}s)")
    for c in ("unsupported op", "load error", "wrong answer", "server error"):
        print(f"  {c}: {cats.get(c, 0)}")
    if notes:
        print(f"  notes for {len(notes)} cases in {os.path.join(out, 'server_notes.json')}")
    return 0


# --------------------------------------------------------------------------------------------
# expected failures


def read_expected(path: str) -> dict[str, str]:
    listed = {}
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, _, reason = line.partition("\t")
            listed[name.strip()] = reason.strip()
    return listed


def load_reason(reason: str) -> str:
    """The part of a server load error that says why, on one short line."""
    r = " ".join(reason.split())
    r = re.sub(r"^\S+ is not ready: ", "", r)
    r = re.sub(r"^model \S+ v\S+: ", "", r)
    r = re.sub(r"^\S*/model\.onnx: ", "", r)
    r = re.sub(r"^tract cannot load this model: ", "", r)
    m = re.search(r"tract has no implementation of the operators? (.*?)(?:; the model imports .*)?$", r)
    if m:
        ops = re.sub(r' \(node "(?:[^"\\]|\\.)*"\)', "", m.group(1))
        return f"tract has no implementation of the operator {ops}"
    r = re.sub(r" \(the model imports [^)]*\)", "", r)
    # The server plans per input shape what tract cannot plan with free dimensions; planning
    # for the warm-up's shapes is where a model that needs constant inputs fails.
    r = re.sub(r"^the warm-up run on zeros failed: model \S+ cannot run on input shapes \[.*?\]\]: ", "planning for the input shapes: ", r)
    r = re.sub(r"^the warm-up run on zeros failed: model \S+ v\S+: (?:running the model: )?", "warm-up run on zeros: ", r)
    r = re.sub(r"^the warm-up run on zeros failed: ", "warm-up run on zeros: ", r)
    r = re.sub(r'Translating node #\d+ "(?:[^"\\]|\\.)*" (\S+) ToTypedTranslator: ', r"\1: ", r)
    r = re.sub(r'(Failed analyse for|codegen) node #\d+ "(?:[^"\\]|\\.)*" ', r"\1 ", r)
    return r


# What a failure's message does not say, found by hand and written in front of the measured
# reason: an ignored attribute is one where the server answered exactly like onnxruntime on the
# same model with that attribute changed; "without the warm-up the case passes" was seen with
# the model given a free dimension, which makes the server skip its warm-up run on zeros.
KNOWN_CAUSES = {
    "test_gru_reverse": "direction=reverse ignored (answers as forward)",
    "test_lstm_reverse": "direction=reverse ignored (answers as forward)",
    "test_simple_rnn_reverse": "direction=reverse ignored (answers as forward)",
    "test_spacetodepth_crd_mode_example": "mode=CRD ignored (answers DCR)",
    "test_attention_local_window": "left/right_window_size ignored",
    "test_attention_3d_local_window": "left/right_window_size ignored",
    "test_attention_bidirectional_window": "left/right_window_size ignored",
    "test_attention_local_window_with_past": "window ignored and is_causal mask not offset by the past length",
    "test_attention_4d_causal_with_past_and_present": "is_causal with past_key: mask aligned top-left, not offset by the past length",
    "test_swiglu_alpha_expanded": "Swish alpha ignored",
    "test_celu_float16": "FP16 Celu drops the outer alpha: exp(x/alpha)-1, not alpha*(exp(x/alpha)-1)",
    "test_slice_default_axes": "tract's dynamic Slice fails on the test inputs too, not only on the warm-up's zeros",
    "test_constant": "the server refuses a request without inputs, so a model without inputs cannot be called",
}
CAUSE_PATTERNS = [
    (r"^test_bitshift_.*(negative_shift|shift_ge_width)$", None,
     "shift amount out of range: a debug build panics, a release build wraps the shift"),
    (r"^test_dft_.*opset19$|^test_gru_(bidirectional|seq_length)$", r"max_abs_diff=\S+e-0[67]",
     "numerical: ~1e-6 off on values near 0, atol=1e-7"),
    (r"fp16", r"max_abs_diff=0\.00[0-9]+,", "numerical: an FP16 ulp or two"),
    (r"", r"nan != 0", "NaN where a fully masked row must give 0"),
    (r"", r"warm-up run on zeros: tract panicked: attempt to (divide|calculate the remainder)",
     "only the server's warm-up on zeros divides by zero: without the warm-up the case passes"),
    (r"", r"String doesn't implement num_traits::Zero",
     "only the server's warm-up cannot make a zero string tensor: without the warm-up the case passes"),
    (r"^test_training_dropout", r"Dropout in training mode",
     "tract refuses training-mode Dropout at run time; the warm-up on zeros (training_mode=false) passed"),
]


def known_cause(name: str, text: str) -> str | None:
    if name in KNOWN_CAUSES:
        return KNOWN_CAUSES[name]
    for name_re, result_re, cause in CAUSE_PATTERNS:
        if re.search(name_re, name) and (result_re is None or re.search(result_re, text)):
            return cause
    return None


def expected_reason(result: str, name: str = "") -> str:
    reason = measured_reason(result)
    cause = known_cause(name, reason)
    if cause:
        cat, _, rest = reason.partition(": ")
        reason = f"{cat}: {cause}; {rest}"
    return short(reason, 260)


def measured_reason(result: str) -> str:
    cat = category(result)
    if result.startswith("load: "):
        return f"{cat}: {short(load_reason(result[len('load: '):]), 200)}"
    body = result[len("fail: ") :] if result.startswith("fail: ") else result
    parts = dict(split_parts(body))
    b, j = parts.get("binary"), parts.get("json")
    if b and j:
        # said once when both answers fail alike; JSON differs from binary only by its nulls
        outs = lambda t: set(re.findall(r"output (\S+)", t))  # noqa: E731
        if b == j:
            said = b
        elif not is_error_part(b) and not is_error_part(j) and outs(b) == outs(j):
            said = f"{b} (json likewise)"
        else:
            said = f"{b} (and json: {j})"
    elif b:
        said = f"binary only: {b}"
    elif j:
        said = f"json only: {j}"
    else:
        said = body
    return f"{cat}: {short(said, 200)}"


def onnx_version(out: str) -> str:
    try:
        with open(os.path.join(out, "index.json")) as f:
            return json.load(f)["onnx"]
    except (OSError, ValueError, KeyError):
        return "?"


def cmd_expected_failures(args) -> int:
    with open(os.path.join(args.out, "server_results.json")) as f:
        results = json.load(f)
    lines = [
        "# Expected failures of the ONNX backend node test cases through modelplane-serve",
        "# (serve/tests/conformance/onnx_node_cases.py check, then compare against this file).",
        "#",
        "# Format: one line per case, 'case<TAB>category: short reason', sorted by case name;",
        "# '#' starts a comment. Categories: unsupported op (tract lacks the operator), load error",
        "# (the model does not load for another reason), wrong answer (the server answers, but",
        "# not within rtol=1e-3/atol=1e-7 of the expected outputs, or with another shape/type),",
        "# server error (an HTTP error instead of an answer).",
        "#",
        "# This list must only shrink: a case that fails and is not listed is a regression",
        "# (compare exits 1); a listed case that passes must be removed from the list.",
        "# Written by 'onnx_node_cases.py expected-failures OUT FILE' from a check run; the cases are",
        f"# those of onnx {onnx_version(args.out)} (another onnx version has other cases: regenerate).",
        f"# {len(results)} applicable cases, {sum(1 for v in results.values() if v != 'pass')} expected failures.",
    ]
    for name in sorted(results):
        if results[name] != "pass":
            reason = expected_reason(results[name], name).replace("\t", " ").replace("\n", " ")
            lines.append(f"{name}\t{reason}")
    with open(args.file, "w") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{args.file}: {len(lines)} lines")
    return 0


def cmd_compare(args) -> int:
    with open(os.path.join(args.out, "server_results.json")) as f:
        results = json.load(f)
    listed = read_expected(args.expected)
    regressions = sorted(n for n, v in results.items() if v != "pass" and n not in listed)
    now_passing = sorted(n for n, v in results.items() if v == "pass" and n in listed)
    unknown = sorted(n for n in listed if n not in results)
    for n in regressions:
        print(f"REGRESSION {n}\t{results[n][:300]}")
    for n in now_passing:
        print(f"now passing: remove from the list: {n}")
    if unknown:
        print(f"{len(unknown)} listed cases were not checked: {', '.join(unknown[:20])}{' ...' if len(unknown) > 20 else ''}")
    n_pass = sum(1 for v in results.values() if v == "pass")
    print(f"server: {n_pass}/{len(results)} passed; {len(regressions)} regressions, {len(now_passing)} now passing")
    ort_path = os.path.join(args.out, "ort_results.json")
    if os.path.exists(ort_path):
        with open(ort_path) as f:
            ort_results = json.load(f)
        print(f"onnxruntime: {sum(1 for v in ort_results.values() if v == 'pass')}/{len(ort_results)} passed")
    return 1 if regressions else 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("generate", help="write the repository and the case files")
    s.add_argument("out")
    s.set_defaults(fn=cmd_generate)
    s = sub.add_parser("ort", help="run onnxruntime on every applicable case")
    s.add_argument("out")
    s.set_defaults(fn=cmd_ort)
    s = sub.add_parser("config", help="write a server configuration serving every applicable case")
    s.add_argument("out")
    s.add_argument("port", type=int)
    s.set_defaults(fn=cmd_config)
    s = sub.add_parser("check", help="run every applicable case through the server")
    s.add_argument("out")
    s.add_argument("addr", help="HOST:PORT of the server's REST listener")
    s.add_argument("--concurrency", type=int, default=2, help="requests in flight (2 at most)")
    s.add_argument("--timeout", type=float, default=120.0, help="seconds per HTTP request")
    s.add_argument("--wait", type=float, default=1800.0, help="seconds to wait for /v2/health/ready")
    s.add_argument("--only", help="regex: check only matching cases (merged into existing results)")
    s.add_argument("--server-log", help="the server's JSON log: 500 answers get the error it logged")
    s.add_argument("-v", "--verbose", action="store_true")
    s.set_defaults(fn=cmd_check)
    s = sub.add_parser("compare", help="compare server results with the expected failures")
    s.add_argument("out")
    s.add_argument("expected")
    s.set_defaults(fn=cmd_compare)
    s = sub.add_parser("expected-failures", help="write the expected-failures list from the server results")
    s.add_argument("out")
    s.add_argument("file")
    s.set_defaults(fn=cmd_expected_failures)
    args = p.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    sys.exit(main())
