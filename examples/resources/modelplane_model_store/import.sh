# A local store is imported by its URI.
terraform import modelplane_model_store.models file:///var/lib/modelplane/models
