data "modelplane_model_signature" "iris" {
  path = "${path.module}/model/iris-v1.onnx"
}

# Fail the plan early when a model does not take what clients send.
check "iris_takes_four_features" {
  assert {
    condition     = data.modelplane_model_signature.iris.inputs[0].shape[1] == 4
    error_message = "The iris model must take 4 features per row."
  }
}

output "iris_inputs" {
  value = data.modelplane_model_signature.iris.inputs
}
