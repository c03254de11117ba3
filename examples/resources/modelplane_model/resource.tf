resource "modelplane_model" "iris_v2" {
  store   = modelplane_model_store.models.id
  name    = "iris"
  version = "2"
  source  = "${path.module}/model/iris-v2.onnx"

  lineage {
    code_commit    = var.commit
    dataset_digest = filesha256("${path.module}/data/train.csv")
    metrics        = { accuracy = 0.978 }
    tags           = { team = "fraud", framework = "scikit-learn" }
    description    = "MLP, one hidden layer of 16"
  }

  # Drift baseline: endpoints serving this version compare live traffic with it.
  baseline {
    dataset = "${path.module}/data/train.csv"
    target  = "species"
  }

  # The validation hook: below 95% hold-out accuracy, nothing is registered.
  validation {
    dataset = "${path.module}/data/holdout.csv"
    target  = "species"
    metric  = "accuracy"
    min     = 0.95
  }
}

output "iris_v2_validation" {
  value = modelplane_model.iris_v2.validation_report.summary
}

# The same version in the cloud's store: copied store to store (streamed, sha256 checked end
# to end), with its signature, lineage (plus copied_from), baseline and validation report.
resource "modelplane_model" "iris_v2_cloud" {
  store   = modelplane_model_store.cloud.id
  name    = "iris"
  version = "2"
  source  = modelplane_model.iris_v2.uri
}
