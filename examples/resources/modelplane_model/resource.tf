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

# A fairness gate: the version must be good for every region it serves, not only on average.
# `region` is a column of the hold-out set (numeric codes; not a feature): each region's rows
# are judged on their own, regions under 30 rows are reported but not judged, and the best
# and the worst region may differ by 5 points at most. The report lists every slice.
resource "modelplane_model" "churn_v4" {
  store   = modelplane_model_store.models.id
  name    = "churn"
  version = "4"
  source  = "${path.module}/model/churn-v4.onnx"

  validation {
    dataset          = "${path.module}/data/churn-holdout.csv"
    target           = "churned"
    metric           = "recall"
    min              = 0.8
    slice_by         = ["region"]
    slice_min        = 0.75
    slice_thresholds = { "region=3" = 0.7 } # the newest market: a lower bar, said out loud
    max_disparity    = 0.05
    min_slice_rows   = 30
  }
}

output "churn_v4_slices" {
  value = { for s in modelplane_model.churn_v4.validation_report.slices : s.name => s.value }
}
