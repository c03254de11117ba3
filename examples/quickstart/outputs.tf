output "model_sha256" {
  description = "Content digest of the model file."
  value       = data.modelplane_model_signature.model.sha256
}

output "model_signature" {
  description = "What the model takes and returns (Open Inference Protocol datatypes; -1 marks the batch dimension)."
  value = {
    opset   = data.modelplane_model_signature.model.opset
    inputs  = [for t in data.modelplane_model_signature.model.inputs : "${t.name}: ${t.datatype}${jsonencode(t.shape)}"]
    outputs = [for t in data.modelplane_model_signature.model.outputs : "${t.name}: ${t.datatype}${jsonencode(t.shape)}"]
  }
}
