# An attachment is imported by ENDPOINT_ID/NAME: the shared endpoint's ID and the route.
terraform import 'modelplane_endpoint_model.fraud["acme"]' local/inference/pool/fraud-acme
