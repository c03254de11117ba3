variable "model_path" {
  description = "Path to the ONNX model to inspect. Defaults to the iris classifier shipped with this example."
  type        = string
  default     = null
}
