//! What the store tests share: a model in store `s` served by an endpoint, and the check
//! that the endpoint answers with a model its server fetched from the store.

use super::{check, Local};

const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}"#;

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

/// A real prediction from the endpoint: the model was fetched from the store.
pub fn predicts(l: &Local, endpoint: &'static str) -> tfplugin::acctest::Check {
    let dir = l.path();
    check(move |s| {
        let url = s
            .attr("modelplane_endpoint.e", "url")
            .and_then(|u| u.as_str().map(String::from))
            .ok_or("endpoint has no url")?;
        let token = std::fs::read_to_string(dir.join("endpoints").join(endpoint).join("token"))
            .map_err(|e| e.to_string())?;
        let u = format!("{url}/v2/models/{endpoint}/infer");
        let (status, body) = super::http("POST", &u, Some(&token), Some(REQUEST))?;
        if status != 200 || body["outputs"][0]["data"] != serde_json::json!([0, 2]) {
            return Err(format!("{u}: HTTP {status} {body}"));
        }
        // The artifact came through the cache, named by its sha256.
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
