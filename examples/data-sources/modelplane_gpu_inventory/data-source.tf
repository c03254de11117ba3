data "modelplane_gpu_inventory" "here" {}

# Serve on the GPU when this machine has one.
locals {
  has_gpu = length(data.modelplane_gpu_inventory.here.gpus) > 0
}

output "gpus" {
  value = data.modelplane_gpu_inventory.here.gpus[*].name
}
