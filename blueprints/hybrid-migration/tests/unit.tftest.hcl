# Unit tests of blueprints/hybrid-migration with a mocked provider (nothing created): every
# variable's validation, and the wiring of each stage on a mocked apply: the version copied
# into the cloud store, the cloud endpoint serving the copy, the on-prem entry point's split
# moved by cloud_share to the cloud endpoint, and the on-prem endpoint retired at the end.
# tests/local.tftest.hcl runs the same stages for real, both sites on this machine.
#
#   terraform init && terraform test -filter=tests/unit.tftest.hcl

# The provider checks references at validation, mocked or not: the mocked ids look like real
# ones.
mock_provider "modelplane" {
  mock_resource "modelplane_model" {
    defaults = {
      id     = "file:///srv/cloud-models/iris/1"
      sha256 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    }
  }

  mock_resource "modelplane_endpoint" {
    defaults = {
      id  = "local/cloud/iris-cloud"
      url = "http://127.0.0.1:18080"
    }
  }
}

override_resource {
  target = modelplane_endpoint.onprem
  values = {
    id  = "local/onprem/iris"
    url = "http://127.0.0.1:18090"
  }
}

variables {
  name              = "iris"
  cloud_name        = "iris-cloud"
  onprem_cluster_id = "local/onprem"
  cloud_cluster_id  = "local/cloud"
  cloud_store_id    = "file:///srv/cloud-models"
  onprem_version = {
    id      = "file:///srv/onprem-models/iris/1"
    name    = "iris"
    version = "1"
  }
  benchmark = {
    payload = file("../../examples/quickstart/data/request.json")
  }
}

run "stage_0_copy_and_stand_by" {
  command = apply

  assert {
    condition     = modelplane_model.cloud.store == "file:///srv/cloud-models" && modelplane_model.cloud.source == "file:///srv/onprem-models/iris/1"
    error_message = "the on-prem version is copied into the cloud store"
  }

  assert {
    condition     = modelplane_model.cloud.name == "iris" && modelplane_model.cloud.version == "1"
    error_message = "the copy is the same name and version"
  }

  assert {
    condition     = modelplane_endpoint.cloud.name == "iris-cloud" && modelplane_endpoint.cloud.cluster == "local/cloud"
    error_message = "the cloud endpoint is on the cloud cluster, named cloud_name"
  }

  assert {
    condition     = length(modelplane_endpoint.cloud.variant) == 1 && modelplane_endpoint.cloud.variant[0].model == modelplane_model.cloud.id && modelplane_endpoint.cloud.variant[0].weight == 100
    error_message = "the cloud endpoint serves the copy, all of its traffic"
  }

  assert {
    condition     = length(modelplane_endpoint.onprem) == 1 && modelplane_endpoint.onprem[0].name == "iris" && modelplane_endpoint.onprem[0].cluster == "local/onprem"
    error_message = "the on-prem entry point stays, named name, on the on-prem cluster"
  }

  assert {
    condition     = [for v in modelplane_endpoint.onprem[0].variant : v.name] == ["onprem", "cloud"] && [for v in modelplane_endpoint.onprem[0].variant : v.weight] == [100, 0]
    error_message = "stage 0: everything on-prem, the cloud variant at 0"
  }

  assert {
    condition     = modelplane_endpoint.onprem[0].variant[0].model == "file:///srv/onprem-models/iris/1" && modelplane_endpoint.onprem[0].variant[1].endpoint == "local/cloud/iris-cloud"
    error_message = "the on-prem variant serves the on-prem version, the cloud variant forwards to the cloud endpoint"
  }

  assert {
    condition     = modelplane_endpoint.onprem[0].variant[1].fallback == true && modelplane_endpoint.onprem[0].variant[1].url == null && modelplane_endpoint.onprem[0].variant[1].ca_file == null
    error_message = "by default: fallback on, the cloud endpoint's own URL"
  }

  assert {
    condition     = modelplane_endpoint.onprem[0].benchmark.duration == "2s" && modelplane_endpoint.onprem[0].benchmark.concurrency == 4 && modelplane_endpoint.onprem[0].benchmark.slo.p99_ms == 250 && modelplane_endpoint.onprem[0].benchmark.slo.max_error_rate == 0
    error_message = "each step is benchmarked with the default SLO (p99 250 ms, no errors)"
  }

  assert {
    condition     = modelplane_endpoint.cloud.benchmark.slo.p99_ms == 250 && modelplane_endpoint.cloud.kubernetes == null && modelplane_endpoint.onprem[0].kubernetes == null
    error_message = "the cloud endpoint has the same SLO; no kubernetes settings unless given"
  }

  assert {
    condition     = output.split == { onprem = 100, cloud = 0 }
    error_message = "split is { onprem = 100, cloud = 0 }"
  }

  assert {
    condition     = output.onprem_url == "http://127.0.0.1:18090" && output.onprem_endpoint_id == "local/onprem/iris"
    error_message = "the on-prem entry point's URL and id are output"
  }

  assert {
    condition     = output.cloud_url == "http://127.0.0.1:18080" && output.cloud_endpoint_id == "local/cloud/iris-cloud"
    error_message = "the cloud endpoint's URL and id are output"
  }

  assert {
    condition     = output.cloud_version_id == modelplane_model.cloud.id && output.cloud_version_sha256 == "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    error_message = "the copy's id and sha256 are output"
  }
}

run "stage_1_ten_percent" {
  command = apply

  variables {
    cloud_share = 10
    slo         = { p99_ms = 500, min_rps = 20 }
  }

  assert {
    condition     = [for v in modelplane_endpoint.onprem[0].variant : v.weight] == [90, 10] && output.split == { onprem = 90, cloud = 10 }
    error_message = "10% of the requests go to the cloud site"
  }

  assert {
    condition     = modelplane_endpoint.onprem[0].benchmark.slo.p99_ms == 500 && modelplane_endpoint.onprem[0].benchmark.slo.min_rps == 20 && modelplane_endpoint.onprem[0].benchmark.slo.max_error_rate == 0
    error_message = "the SLO given gates the step"
  }
}

run "stage_2_through_an_ingress" {
  command = apply

  variables {
    cloud_share   = 50
    fallback      = false
    cloud_url     = "https://iris.cloud.example.com"
    cloud_ca_file = "/etc/ssl/cloud-ca.pem"
  }

  assert {
    condition     = modelplane_endpoint.onprem[0].variant[1].url == "https://iris.cloud.example.com" && modelplane_endpoint.onprem[0].variant[1].ca_file == "/etc/ssl/cloud-ca.pem"
    error_message = "the cloud variant goes through cloud_url, trusting cloud_ca_file"
  }

  assert {
    condition     = modelplane_endpoint.onprem[0].variant[1].fallback == false && output.split == { onprem = 50, cloud = 50 }
    error_message = "fallback off, 50/50"
  }
}

run "stage_3_all_cloud" {
  command = apply

  variables {
    cloud_share = 100
  }

  assert {
    condition     = [for v in modelplane_endpoint.onprem[0].variant : v.weight] == [0, 100] && output.split == { onprem = 0, cloud = 100 }
    error_message = "all requests go to the cloud site"
  }
}

run "stage_4_retire_onprem" {
  command = apply

  variables {
    cloud_share   = 100
    retire_onprem = true
  }

  assert {
    condition     = length(modelplane_endpoint.onprem) == 0
    error_message = "the on-prem endpoint is removed"
  }

  assert {
    condition     = output.split == null && output.onprem_url == null && output.onprem_endpoint_id == null && output.onprem_benchmark == null
    error_message = "the on-prem outputs are null once retired"
  }

  assert {
    condition     = output.cloud_url == "http://127.0.0.1:18080" && output.cloud_endpoint_id == "local/cloud/iris-cloud"
    error_message = "the cloud endpoint stays"
  }
}

run "kubernetes_sites" {
  command = plan

  variables {
    cloud_name        = null
    onprem_cluster_id = "kubernetes/lab"
    cloud_cluster_id  = "aws/gpu"
    onprem_image      = "registry.lab/modelplane/serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    cloud_image       = "123456789012.dkr.ecr.us-east-1.amazonaws.com/modelplane-serve@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    onprem_kubernetes = { partition = "inference", min_replicas = 2, max_replicas = 2 }
    cloud_kubernetes = {
      partition    = "inference"
      min_replicas = 1
      max_replicas = 4
      expose       = { kind = "ingress", host = "iris.cloud.example.com" }
    }
  }

  assert {
    condition     = modelplane_endpoint.cloud.name == "iris" && modelplane_endpoint.onprem[0].name == "iris"
    error_message = "cloud_name defaults to name"
  }

  assert {
    condition     = modelplane_endpoint.cloud.image == var.cloud_image && modelplane_endpoint.onprem[0].image == var.onprem_image
    error_message = "each site runs its image"
  }

  assert {
    condition     = modelplane_endpoint.cloud.kubernetes.max_replicas == 4 && modelplane_endpoint.cloud.kubernetes.expose.host == "iris.cloud.example.com" && modelplane_endpoint.onprem[0].kubernetes.min_replicas == 2
    error_message = "each site's kubernetes settings reach its endpoint"
  }
}

run "name_refused" {
  command = plan
  variables {
    name = "Iris_1"
  }
  expect_failures = [var.name]
}

run "cloud_share_over_100_refused" {
  command = plan
  variables {
    cloud_share = 110
  }
  expect_failures = [var.cloud_share]
}

run "cloud_share_negative_refused" {
  command = plan
  variables {
    cloud_share = -10
  }
  expect_failures = [var.cloud_share]
}

run "cloud_share_fraction_refused" {
  command = plan
  variables {
    cloud_share = 12.5
  }
  expect_failures = [var.cloud_share]
}

run "retire_before_100_refused" {
  command = plan
  variables {
    cloud_share   = 50
    retire_onprem = true
  }
  expect_failures = [var.retire_onprem]
}
