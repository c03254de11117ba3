"""Drives modelplane-serve with the standard Open Inference Protocol clients, unmodified:
tritonclient (HTTP and gRPC, binary tensors by default) and kserve's v2 REST and gRPC
clients. Called by serve/tests/clients.rs with the server's addresses and the fixtures.

    python oip_clients.py triton|kserve HTTP_ADDR GRPC_ADDR FIXTURES_DIR

tritonclient.grpc and kserve register the same protobuf package, so each runs in its own
process.
"""

import asyncio
import json
import pathlib
import sys

import numpy as np

WHICH, HTTP, GRPC, FIXTURES = sys.argv[1], sys.argv[2], sys.argv[3], pathlib.Path(sys.argv[4])
MODELS = ["iris", "digits_mlp", "diabetes_linear", "digits_cnn", "two_io"]
NP = {"FP32": np.float32, "FP64": np.float64, "INT64": np.int64}


def reference(model):
    return json.loads((FIXTURES / "reference" / f"{model}.json").read_text())


def inputs(ref):
    return [(i["name"], i["datatype"], np.array(i["data"], dtype=NP[i["datatype"]]).reshape(i["shape"])) for i in ref["inputs"]]


def check(model, name, got, ref):
    want = next(o for o in ref["outputs"] if o["name"] == name)
    exp = np.array(want["data"], dtype=np.float64).reshape(want["shape"])
    assert list(got.shape) == want["shape"], f"{model}.{name}: shape {got.shape} != {want['shape']}"
    assert np.allclose(got.astype(np.float64), exp, rtol=1e-4, atol=1e-4), f"{model}.{name}: {got} != {exp}"


def triton_http():
    import tritonclient.http as th

    c = th.InferenceServerClient(url=HTTP)
    assert c.is_server_live() and c.is_server_ready()
    assert "binary_tensor_data" in c.get_server_metadata()["extensions"]
    for m in MODELS:
        ref = reference(m)
        assert c.is_model_ready(m)
        md = c.get_model_metadata(m)
        assert [i["name"] for i in md["inputs"]] == [i["name"] for i in ref["inputs"]]
        for binary in (True, False):
            ins = []
            for name, dt, arr in inputs(ref):
                ii = th.InferInput(name, list(arr.shape), dt)
                ii.set_data_from_numpy(arr, binary_data=binary)
                ins.append(ii)
            outs = [th.InferRequestedOutput(o["name"], binary_data=binary) for o in ref["outputs"]]
            r = c.infer(m, ins, outputs=outs, request_id="triton-http")
            assert r.get_response()["id"] == "triton-http"
            for o in ref["outputs"]:
                check(m, o["name"], r.as_numpy(o["name"]), ref)
        # default call: no requested outputs, binary inputs
        ins = []
        for name, dt, arr in inputs(ref):
            ii = th.InferInput(name, list(arr.shape), dt)
            ii.set_data_from_numpy(arr)
            ins.append(ii)
        r = c.infer(m, ins)
        for o in ref["outputs"]:
            check(m, o["name"], r.as_numpy(o["name"]), ref)
    try:
        c.get_model_metadata("no_such_model")
        raise AssertionError("unknown model must fail")
    except th.InferenceServerException as e:
        assert "no_such_model" in str(e), e
    print("tritonclient.http: ok")


def triton_grpc():
    import tritonclient.grpc as tg

    c = tg.InferenceServerClient(url=GRPC)
    assert c.is_server_live() and c.is_server_ready()
    for m in MODELS:
        ref = reference(m)
        assert c.is_model_ready(m)
        ins = []
        for name, dt, arr in inputs(ref):
            ii = tg.InferInput(name, list(arr.shape), dt)
            ii.set_data_from_numpy(arr)
            ins.append(ii)
        r = c.infer(m, ins, request_id="triton-grpc")
        assert r.get_response().id == "triton-grpc"
        for o in ref["outputs"]:
            check(m, o["name"], r.as_numpy(o["name"]), ref)
    print("tritonclient.grpc: ok")


async def kserve_clients():
    from kserve import InferenceGRPCClient, InferenceRESTClient, InferInput, InferRequest, RESTConfig

    rest = InferenceRESTClient(RESTConfig(protocol="v2"))
    assert await rest.is_server_ready(f"http://{HTTP}")
    grpc_client = InferenceGRPCClient(GRPC)
    for m in MODELS:
        ref = reference(m)
        for binary in (False, True):
            ins = []
            for name, dt, arr in inputs(ref):
                ii = InferInput(name, list(arr.shape), dt)
                ii.set_data_from_numpy(arr, binary_data=binary)
                ins.append(ii)
            r = await rest.infer(f"http://{HTTP}", InferRequest(model_name=m, infer_inputs=ins, request_id="kserve-rest"), model_name=m)
            for out in r.outputs:
                check(m, out.name, out.as_numpy(), ref)
        ins = []
        for name, dt, arr in inputs(ref):
            ii = InferInput(name, list(arr.shape), dt)
            ii.set_data_from_numpy(arr)
            ins.append(ii)
        r = await grpc_client.infer(InferRequest(model_name=m, infer_inputs=ins, request_id="kserve-grpc"))
        for out in r.outputs:
            check(m, out.name, out.as_numpy(), ref)
    await rest.close()
    await grpc_client.close()
    print("kserve v2 REST and gRPC clients: ok")


if WHICH == "triton":
    triton_http()
    triton_grpc()
else:
    asyncio.run(kserve_clients())
