# The risk team's workspace approves a version the ML team registered (its id comes from the
# catalogue), under a change request, for 90 days.
provider "modelplane" {
  governance {
    separation_of_duties = true # the identity that registered a version cannot approve it
  }
}

data "modelplane_models" "fraud" {
  store = "s3://acme-models-prod?region=eu-west-1"
  name  = "fraud-scorer"
}

resource "modelplane_model_approval" "fraud_v7" {
  model      = [for v in data.modelplane_models.fraud.versions : v.id if v.version == "7"][0]
  reference  = "CHG-2291"
  approver   = "model-risk-board"
  expires_at = "2027-03-31T00:00:00Z"
}

# In the serving workspace, the endpoint refuses at plan any version without a valid approval.
resource "modelplane_endpoint" "fraud" {
  name             = "fraud"
  cluster          = modelplane_gpu_cluster.prod.id
  require_approval = true

  variant {
    name   = "stable"
    model  = "s3://acme-models-prod?region=eu-west-1/fraud-scorer/6"
    weight = 90
  }

  variant {
    name   = "canary"
    model  = "s3://acme-models-prod?region=eu-west-1/fraud-scorer/7"
    weight = 10
  }
}

# When the approval and the endpoint share a configuration, serve the approval's
# `approved_model`: the endpoint then waits for the approval in the same apply.
resource "modelplane_model_approval" "iris_v2" {
  model     = modelplane_model.iris["2"].id
  reference = "CHG-2300"
}

resource "modelplane_endpoint" "iris" {
  name             = "iris"
  cluster          = modelplane_gpu_cluster.prod.id
  require_approval = true

  variant {
    name   = "stable"
    model  = modelplane_model_approval.iris_v2.approved_model
    weight = 100
  }
}
