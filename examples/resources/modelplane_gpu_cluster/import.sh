# A cluster is imported by its ID, PLATFORM/NAME.
terraform import modelplane_gpu_cluster.inference local/inference
