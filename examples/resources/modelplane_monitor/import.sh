# A monitor is imported by the id of the endpoint it watches.
terraform import modelplane_monitor.iris local/inference/iris
