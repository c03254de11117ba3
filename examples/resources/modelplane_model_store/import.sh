# A store is imported by its URI (its id).
terraform import modelplane_model_store.models file:///var/lib/modelplane/models
terraform import modelplane_model_store.cloud 's3://acme-models-prod?region=eu-west-1'
terraform import modelplane_model_store.onprem 's3://models?region=us-east-1&endpoint=https%3A%2F%2Fminio.example.internal%3A9000&path_style=true'
terraform import modelplane_model_store.azure az://acmemodels/models
