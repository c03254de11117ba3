"""An MLServer runtime wrapping onnxruntime (MLServer has no ONNX runtime of its own): a
peer for `cargo xtask bench serve`. xtask writes settings.json and model-settings.json
naming `mlserver_onnx.OnnxRuntime` and starts `mlserver start DIR`.
"""

import onnxruntime as ort
from mlserver import MLModel
from mlserver.codecs import NumpyCodec
from mlserver.types import InferenceRequest, InferenceResponse


class OnnxRuntime(MLModel):
    async def load(self) -> bool:
        self.sess = ort.InferenceSession(self.settings.parameters.uri, providers=["CPUExecutionProvider"])
        return True

    async def predict(self, payload: InferenceRequest) -> InferenceResponse:
        feeds = {i.name: NumpyCodec.decode_input(i) for i in payload.inputs}
        outs = self.sess.run(None, feeds)
        return InferenceResponse(
            model_name=self.name,
            id=payload.id,
            outputs=[NumpyCodec.encode_output(meta.name, value) for meta, value in zip(self.sess.get_outputs(), outs)],
        )
