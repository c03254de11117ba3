//! What the store tests share: a model in store `s` served by an endpoint, and the check
//! that the endpoint answers with a model its server fetched from the store.

use super::{check, Local};

/// A cluster, the iris model (with a baseline) in store `s`, and an endpoint serving it.
pub fn served(endpoint: &str) -> String {
    format!(
        r#"
resource "modelplane_gpu_cluster" "c" {{
  name     = "c"
  platform = "local"
}}

resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {:?}
  baseline {{
    dataset = {:?}
    target  = "species"
  }}
}}

resource "modelplane_endpoint" "e" {{
  name    = {endpoint:?}
  cluster = modelplane_gpu_cluster.c.id
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
}}
"#,
        super::qs("model/iris-v1.onnx"),
        super::qs("data/train.csv"),
    )
}

/// A real prediction from the endpoint, and the model came through the server's cache, named by
/// its sha256: it was fetched from the store.
pub fn predicts(l: &Local, endpoint: &'static str) -> tfplugin::acctest::Check {
    let answers = super::predicts(l, "modelplane_endpoint.e", endpoint);
    let dir = l.path();
    check(move |s| {
        answers(s)?;
        let sha = modelplane_serve::signature::file_digest(
            &super::repo().join("examples/quickstart/model/iris-v1.onnx"),
        )
        .unwrap()
        .0;
        if !dir.join("cache").join(format!("{sha}.onnx")).is_file() {
            return Err(format!(
                "no cached artifact {sha}.onnx under {}",
                dir.join("cache").display()
            ));
        }
        Ok(())
    })
}
