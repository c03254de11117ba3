"""KServe's ModelServer wrapping onnxruntime: a peer for `cargo xtask bench serve`.

    python kserve_onnx.py NAME MODEL.onnx HTTP_PORT GRPC_PORT [WORKERS]
"""

import sys

import numpy as np
import onnxruntime as ort
from kserve import InferOutput, InferRequest, InferResponse, Model, ModelServer

DT = {np.dtype("float32"): "FP32", np.dtype("float64"): "FP64", np.dtype("int64"): "INT64"}


class OnnxModel(Model):
    def __init__(self, name: str, path: str):
        super().__init__(name)
        self.path = path
        # Made in each worker on first use: with workers > 1, KServe pickles the model into
        # its worker processes, and an InferenceSession cannot be pickled.
        self.sess = None
        self.ready = True

    def predict(self, payload: InferRequest, headers=None, response_headers=None) -> InferResponse:
        if self.sess is None:
            self.sess = ort.InferenceSession(self.path, providers=["CPUExecutionProvider"])
        feeds = {i.name: i.as_numpy() for i in payload.inputs}
        outs = self.sess.run(None, feeds)
        results = []
        for meta, value in zip(self.sess.get_outputs(), outs):
            o = InferOutput(name=meta.name, shape=list(value.shape), datatype=DT[value.dtype])
            o.set_data_from_numpy(value, binary_data=False)
            results.append(o)
        return InferResponse(model_name=self.name, infer_outputs=results, response_id=payload.id or "x")


if __name__ == "__main__":
    name, path, http_port, grpc_port = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    workers = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    ModelServer(http_port=http_port, grpc_port=grpc_port, workers=workers, enable_docs_url=False).start(
        [OnnxModel(name, path)])
