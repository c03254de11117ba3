terraform {
  required_version = ">= 1.9" # validation that reads another variable

  required_providers {
    modelplane = {
      source  = "modelplane/modelplane"
      version = ">= 0.1.0"
    }
  }
}
