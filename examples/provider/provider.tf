terraform {
  required_providers {
    modelplane = {
      source = "modelplane/modelplane"
    }
  }
}

# Every block is optional. Credentials come from each platform's standard chain.
provider "modelplane" {
  local {
    state_dir = "/var/lib/modelplane"
  }
}
