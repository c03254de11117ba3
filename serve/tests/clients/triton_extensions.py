"""Triton's extensions as tritonclient's own example clients use them, unmodified clients,
against Triton's `simple` model (INT32 add and subtract of two [-1, 16] tensors):
simple_http_infer_client.py, simple_grpc_infer_client.py and their aio variants, plus model
configuration, repository index, explicit load/unload and compressed requests.

    python triton_extensions.py http|grpc|http_aio|grpc_aio HTTP_ADDR GRPC_ADDR TOKEN

Every call carries `Authorization: Bearer TOKEN` (the server has a token: the repository
calls need one). Exits non-zero with the failed check.
"""

import asyncio
import sys

import numpy as np

WHICH, HTTP, GRPC, TOKEN = sys.argv[1:5]
H = {"authorization": f"Bearer {TOKEN}"}


def h():
    """A fresh copy each call: tritonclient adds its own headers to the dict it is given."""
    return dict(H)
MODEL = "simple"


def data():
    a = np.arange(16, dtype=np.int32).reshape(1, 16)
    b = np.ones((1, 16), dtype=np.int32)
    return a, b


def check_outputs(r, a, b):
    assert np.array_equal(r.as_numpy("OUTPUT0"), a + b), r.as_numpy("OUTPUT0")
    assert np.array_equal(r.as_numpy("OUTPUT1"), a - b), r.as_numpy("OUTPUT1")


def stats_of(s, as_dict):
    ms = s["model_stats"] if as_dict else s.model_stats
    assert len(ms) == 1, f"FAILED: Inference Statistics: {s}"
    m = ms[0]
    if as_dict:
        return int(m["inference_count"]), int(m["execution_count"]), int(m["inference_stats"]["success"]["count"])
    return m.inference_count, m.execution_count, m.inference_stats.success.count


def check_config(c, as_dict):
    if as_dict:
        c = c.get("config", c)
        assert c["max_batch_size"] > 0, c
        assert [i["name"] for i in c["input"]] == ["INPUT0", "INPUT1"], c
        assert [list(map(int, i["dims"])) for i in c["input"]] == [[16], [16]], c
        assert c["input"][0]["data_type"] == "TYPE_INT32", c
    else:
        c = c.config
        assert c.max_batch_size > 0 and [i.name for i in c.input] == ["INPUT0", "INPUT1"], c
        assert [list(i.dims) for i in c.input] == [[16], [16]], c


def http():
    import tritonclient.http as t

    c = t.InferenceServerClient(url=HTTP)
    assert c.is_server_live(headers=h()) and c.is_server_ready(headers=h())
    assert c.is_model_ready(MODEL, headers=h())
    md = c.get_model_metadata(MODEL, headers=h())
    assert md["name"] == MODEL and md["inputs"][0]["datatype"] == "INT32", md
    for ext in ("statistics", "model_configuration", "model_repository", "binary_tensor_data"):
        assert ext in c.get_server_metadata(headers=h())["extensions"], ext
    check_config(c.get_model_config(MODEL, headers=h()), True)
    before = stats_of(c.get_inference_statistics(model_name=MODEL, headers=h()), True)
    a, b = data()
    calls = 0
    for comp in (None, "gzip", "deflate"):
        for binary in (True, False):
            ins = [t.InferInput("INPUT0", [1, 16], "INT32"), t.InferInput("INPUT1", [1, 16], "INT32")]
            ins[0].set_data_from_numpy(a, binary_data=binary)
            ins[1].set_data_from_numpy(b, binary_data=binary)
            outs = [t.InferRequestedOutput("OUTPUT0", binary_data=True), t.InferRequestedOutput("OUTPUT1", binary_data=False)]
            r = c.infer(MODEL, ins, outputs=outs, headers=h(), request_compression_algorithm=comp)
            check_outputs(r, a, b)
            calls += 1
    after = stats_of(c.get_inference_statistics(model_name=MODEL, headers=h()), True)
    assert after[0] - before[0] == calls and after[2] - before[2] == calls, (before, after)
    assert len(c.get_inference_statistics(headers=h())["model_stats"]) >= 2
    repository(c, True)


def repository(c, as_dict):
    idx = c.get_model_repository_index(headers=h()) if as_dict else c.get_model_repository_index(headers=h(), as_json=True)
    models = idx if isinstance(idx, list) else idx.get("models", [])
    names = {m["name"]: m.get("state") for m in models}
    assert names.get(MODEL) == "READY", idx
    assert names.get("unsupported") == "UNAVAILABLE", idx
    c.unload_model("iris", headers=h())
    assert not c.is_model_ready("iris", headers=h())
    c.load_model("iris", headers=h())
    assert c.is_model_ready("iris", headers=h())
    try:
        c.load_model("no_such_model", headers=h())
        raise AssertionError("loading a model that is not in the repository succeeded")
    except Exception as e:  # InferenceServerException
        assert "no_such_model" in str(e), e
    assert c.is_model_ready(MODEL, headers=h()), "a failed load must leave the others serving"


def grpc():
    import tritonclient.grpc as t

    c = t.InferenceServerClient(url=GRPC)
    assert c.is_server_live(headers=h()) and c.is_server_ready(headers=h())
    assert c.is_model_ready(MODEL, headers=h())
    md = c.get_model_metadata(MODEL, headers=h())
    assert md.name == MODEL and md.inputs[0].datatype == "INT32", md
    check_config(c.get_model_config(MODEL, headers=h()), False)
    check_config(c.get_model_config(MODEL, headers=h(), as_json=True), True)
    before = stats_of(c.get_inference_statistics(model_name=MODEL, headers=h()), False)
    a, b = data()
    calls = 0
    for comp in (None, "gzip"):
        ins = [t.InferInput("INPUT0", [1, 16], "INT32"), t.InferInput("INPUT1", [1, 16], "INT32")]
        ins[0].set_data_from_numpy(a)
        ins[1].set_data_from_numpy(b)
        outs = [t.InferRequestedOutput("OUTPUT0"), t.InferRequestedOutput("OUTPUT1")]
        r = c.infer(MODEL, ins, outputs=outs, headers=h(), compression_algorithm=comp)
        check_outputs(r, a, b)
        calls += 1
    after = stats_of(c.get_inference_statistics(model_name=MODEL, headers=h()), False)
    assert after[0] - before[0] == calls and after[2] - before[2] == calls, (before, after)
    repository(c, False)


async def http_aio():
    import tritonclient.http as th
    import tritonclient.http.aio as t

    c = t.InferenceServerClient(url=HTTP)
    try:
        assert await c.is_server_live(headers=h()) and await c.is_model_ready(MODEL, headers=h())
        before = stats_of(await c.get_inference_statistics(model_name=MODEL, headers=h()), True)
        a, b = data()
        ins = [th.InferInput("INPUT0", [1, 16], "INT32"), th.InferInput("INPUT1", [1, 16], "INT32")]
        ins[0].set_data_from_numpy(a)
        ins[1].set_data_from_numpy(b)
        r = await c.infer(MODEL, ins, outputs=[th.InferRequestedOutput("OUTPUT0"), th.InferRequestedOutput("OUTPUT1")], headers=h(), request_compression_algorithm="gzip")
        check_outputs(r, a, b)
        after = stats_of(await c.get_inference_statistics(model_name=MODEL, headers=h()), True)
        assert after[0] - before[0] == 1, (before, after)
        check_config(await c.get_model_config(MODEL, headers=h()), True)
    finally:
        await c.close()


async def grpc_aio():
    import tritonclient.grpc as tg
    import tritonclient.grpc.aio as t

    c = t.InferenceServerClient(url=GRPC)
    try:
        assert await c.is_server_live(headers=h()) and await c.is_model_ready(MODEL, headers=h())
        before = stats_of(await c.get_inference_statistics(model_name=MODEL, headers=h()), False)
        a, b = data()
        ins = [tg.InferInput("INPUT0", [1, 16], "INT32"), tg.InferInput("INPUT1", [1, 16], "INT32")]
        ins[0].set_data_from_numpy(a)
        ins[1].set_data_from_numpy(b)
        r = await c.infer(MODEL, ins, outputs=[tg.InferRequestedOutput("OUTPUT0"), tg.InferRequestedOutput("OUTPUT1")], headers=h(), compression_algorithm="gzip")
        check_outputs(r, a, b)
        after = stats_of(await c.get_inference_statistics(model_name=MODEL, headers=h()), False)
        assert after[0] - before[0] == 1, (before, after)
        check_config(await c.get_model_config(MODEL, headers=h()), False)
    finally:
        await c.close()


if __name__ == "__main__":
    {"http": http, "grpc": grpc, "http_aio": lambda: asyncio.run(http_aio()), "grpc_aio": lambda: asyncio.run(grpc_aio())}[WHICH]()
    print(f"{WHICH}: ok")
