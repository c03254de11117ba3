# A version is imported by STORE_ID/NAME/VERSION.
terraform import modelplane_model.iris_v2 file:///var/lib/modelplane/models/iris/2
