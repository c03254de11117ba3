# The Modelplane quickstart: reads the signature of a real ONNX model (an iris classifier
# trained by model/train.py from a dataset scikit-learn ships) through the provider.
#
#   cargo xtask quickstart

locals {
  model = coalesce(var.model_path, "${path.module}/model/iris.onnx")
}

data "modelplane_model_signature" "model" {
  path = local.model
}
