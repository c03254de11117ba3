# An endpoint is imported by CLUSTER_ID/NAME.
terraform import modelplane_endpoint.iris local/inference/iris
