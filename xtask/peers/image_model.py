"""An image classifier with a [N,3,224,224] FP32 input for `cargo xtask bench serve`: moving
one image (150 528 floats: about 3 MB as JSON, 588 KiB as binary tensor data) costs far more
than the model's compute (one 8x8 stride-8 convolution, pooling, a 16x10 dense layer), so
the case measures how each server decodes and encodes tensors.

    python image_model.py REPO_DIR PAYLOAD.json

Writes REPO_DIR/image/1/model.onnx + model.json and PAYLOAD.json, one image as an Open
Inference Protocol JSON request (values serialized the way tritonclient does: float32 values
as Python floats). Deterministic.
"""

import hashlib
import json
import pathlib
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

repo, payload = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
rng = np.random.default_rng(224)
weights = {
    "w": rng.normal(0, 0.1, (16, 3, 8, 8)).astype(np.float32),
    "b": np.zeros(16, np.float32),
    "fc": rng.normal(0, 0.5, (16, 10)).astype(np.float32),
    "fb": np.zeros(10, np.float32),
}
nodes = [
    helper.make_node("Conv", ["image", "w", "b"], ["c"], kernel_shape=[8, 8], strides=[8, 8]),
    helper.make_node("Relu", ["c"], ["r"]),
    helper.make_node("GlobalAveragePool", ["r"], ["g"]),
    helper.make_node("Flatten", ["g"], ["f"], axis=1),
    helper.make_node("Gemm", ["f", "fc", "fb"], ["logits"]),
    helper.make_node("Softmax", ["logits"], ["probabilities"], axis=1),
]
graph = helper.make_graph(
    nodes,
    "image",
    [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["N", 3, 224, 224])],
    [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 10])],
    [numpy_helper.from_array(v, k) for k, v in weights.items()],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
model.ir_version = 8
onnx.checker.check_model(model)
vdir = repo / "image" / "1"
vdir.mkdir(parents=True, exist_ok=True)
data = model.SerializeToString()
(vdir / "model.onnx").write_bytes(data)
(vdir / "model.json").write_text(json.dumps(
    {"name": "image", "version": "1", "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}))
x = rng.random((1, 3, 224, 224), dtype=np.float32)
payload.write_text(json.dumps(
    {"inputs": [{"name": "image", "shape": list(x.shape), "datatype": "FP32", "data": x.flatten().tolist()}]}))
