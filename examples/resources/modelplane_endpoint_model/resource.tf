# A shared endpoint: one pool of servers for many models, loaded on demand.
resource "modelplane_endpoint" "pool" {
  name    = "pool"
  cluster = modelplane_gpu_cluster.inference.id

  shared {
    store         = modelplane_model_store.models.id
    memory_budget = "4Gi" # the least recently used models are unloaded beyond it
  }
}

# One model per customer, each on its own route: /v2/models/fraud-CUSTOMER/infer.
# A change to one customer's model plans and reloads that one only.
resource "modelplane_endpoint_model" "fraud" {
  for_each = var.customers # customer => version

  endpoint = modelplane_endpoint.pool.id
  name     = "fraud-${each.key}"

  variant {
    name   = "stable"
    model  = modelplane_model.fraud[each.value].id
    weight = 100
  }
}

# A model with a canary, a shadow, its own batching and an SLO gate; loaded when attached
# and never unloaded.
resource "modelplane_endpoint_model" "iris" {
  endpoint = modelplane_endpoint.pool.id
  name     = "iris"
  pinned   = true

  variant {
    name   = "stable"
    model  = modelplane_model.iris_v1.id
    weight = 90
  }

  variant {
    name   = "canary"
    model  = modelplane_model.iris_v2.id
    weight = 10
  }

  shadow {
    model = modelplane_model.iris_v3.id
  }

  batching {
    max_batch_size = 16
  }

  benchmark {
    payload  = file("${path.module}/data/request.json")
    duration = "3s"

    slo {
      p99_ms = 25
    }
  }
}

output "iris_predict" {
  value = "curl -H \"Authorization: Bearer $(cat ${modelplane_endpoint.pool.token_file})\" -d @request.json ${modelplane_endpoint_model.iris.url}/infer"
}
