# blueprints/hybrid-migration with the real provider, both sites on this machine (as
# examples/one-machine): the on-prem site serves iris; the version is copied to the cloud
# store and served there; the on-prem entry point's split moves 0 → 50 → 100 with a real
# benchmark through it at each step; then the on-prem endpoint is retired. `terraform test`
# destroys everything at the end (the cloud endpoint, the copy, then the sites).
#
# The local platform keeps its state under $XDG_STATE_HOME/modelplane (else
# ~/.local/state/modelplane); provider/tests/terraform_test.rs points it at a temporary
# folder.

run "sites" {
  module {
    source = "./tests/setup"
  }
}

variables {
  name       = "iris"
  cloud_name = "iris-cloud"
  slo        = { max_error_rate = 0 }
}

run "stage_0" {
  command = apply

  variables {
    onprem_cluster_id = run.sites.onprem_cluster_id
    cloud_cluster_id  = run.sites.cloud_cluster_id
    cloud_store_id    = run.sites.cloud_store_id
    onprem_version    = run.sites.onprem_version
    benchmark         = { payload = run.sites.request, concurrency = 2, duration = "1s" }
  }

  assert {
    condition     = output.cloud_version_sha256 == run.sites.onprem_version.sha256 && startswith(output.cloud_version_id, run.sites.cloud_store_id)
    error_message = "the version was copied into the cloud store, same sha256"
  }

  assert {
    condition     = modelplane_endpoint.cloud.status == "running" && modelplane_endpoint.onprem[0].status == "running"
    error_message = "both sites serve"
  }

  assert {
    condition     = startswith(output.onprem_url, "http://127.0.0.1:") && startswith(output.cloud_url, "http://127.0.0.1:") && output.onprem_url != output.cloud_url
    error_message = "two endpoints on this machine, on their own ports"
  }

  assert {
    condition     = output.split == { onprem = 100, cloud = 0 } && output.onprem_endpoint_id == "${run.sites.onprem_cluster_id}/iris" && output.cloud_endpoint_id == "${run.sites.cloud_cluster_id}/iris-cloud"
    error_message = "stage 0: all requests on-prem"
  }

  # Served predictions: the benchmarks through each endpoint answered every request.
  assert {
    condition     = output.onprem_benchmark.requests > 0 && output.onprem_benchmark.errors == 0 && modelplane_endpoint.cloud.benchmark_result.requests > 0 && modelplane_endpoint.cloud.benchmark_result.errors == 0
    error_message = "both endpoints answered every benchmark request"
  }
}

run "stage_1_half" {
  command = apply

  variables {
    onprem_cluster_id = run.sites.onprem_cluster_id
    cloud_cluster_id  = run.sites.cloud_cluster_id
    cloud_store_id    = run.sites.cloud_store_id
    onprem_version    = run.sites.onprem_version
    benchmark         = { payload = run.sites.request, concurrency = 2, duration = "1s" }
    cloud_share       = 50
  }

  assert {
    condition     = output.split == { onprem = 50, cloud = 50 } && output.onprem_url == run.stage_0.onprem_url
    error_message = "half the requests through the cloud site, same entry point"
  }

  assert {
    condition     = output.onprem_benchmark.requests > 0 && output.onprem_benchmark.errors == 0
    error_message = "the benchmark through the entry point (half of it served by the cloud site) answered every request"
  }
}

run "stage_2_all_cloud" {
  command = apply

  variables {
    onprem_cluster_id = run.sites.onprem_cluster_id
    cloud_cluster_id  = run.sites.cloud_cluster_id
    cloud_store_id    = run.sites.cloud_store_id
    onprem_version    = run.sites.onprem_version
    benchmark         = { payload = run.sites.request, concurrency = 2, duration = "1s" }
    cloud_share       = 100
  }

  assert {
    condition     = output.split == { onprem = 0, cloud = 100 } && output.onprem_benchmark.requests > 0 && output.onprem_benchmark.errors == 0
    error_message = "all requests through the cloud site, every one answered"
  }
}

run "stage_3_retire_onprem" {
  command = apply

  variables {
    onprem_cluster_id = run.sites.onprem_cluster_id
    cloud_cluster_id  = run.sites.cloud_cluster_id
    cloud_store_id    = run.sites.cloud_store_id
    onprem_version    = run.sites.onprem_version
    benchmark         = { payload = run.sites.request, concurrency = 2, duration = "1s" }
    cloud_share       = 100
    retire_onprem     = true
  }

  assert {
    condition     = length(modelplane_endpoint.onprem) == 0 && output.onprem_url == null && output.split == null
    error_message = "the on-prem endpoint is gone"
  }

  assert {
    condition     = modelplane_endpoint.cloud.status == "running" && output.cloud_url == run.stage_0.cloud_url
    error_message = "the cloud endpoint still serves, at the same URL"
  }
}
