# An endpoint is imported by CLUSTER_ID/NAME.
terraform import modelplane_endpoint.iris local/inference/iris
# On Kubernetes, CLUSTER_ID/NAME too: the endpoint is found in the cluster's partitions.
terraform import modelplane_endpoint.iris_k8s kubernetes/gpu/iris
