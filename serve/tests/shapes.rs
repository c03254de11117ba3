//! Free dimensions done right, declared shapes, per-shape plans, and a model that fails to
//! load being that model's failure only.

use crate::common;

use common::*;
use modelplane_serve::config::{Dim, InputShape, ModelConfig, ServeConfig};
use serde_json::{json, Value};

fn repo() -> String {
    fixtures().join("repo").to_str().unwrap().to_string()
}

fn only(models: Vec<ModelConfig>) -> ServeConfig {
    let mut cfg = config(&repo());
    cfg.models = models;
    cfg
}

async fn infer(s: &Running, model: &str, body: Value) -> (u16, Value) {
    let r = reqwest::Client::new()
        .post(s.url(&format!("/v2/models/{model}/infer")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn image(n: usize, h: usize, w: usize) -> Value {
    let data: Vec<f32> = (0..n * 3 * h * w)
        .map(|i| (i % 7) as f32 * 0.25 - 0.5)
        .collect();
    json!({ "inputs": [{ "name": "image", "shape": [n, 3, h, w], "datatype": "FP32", "data": data }] })
}

#[tokio::test]
async fn a_cnn_with_free_height_and_width_serves_non_square_images() {
    // Height and width are both named "?" in the file: each is its own dimension.
    let s = start(only(vec![ModelConfig::named("free_hw_cnn", None)])).await;
    let r = reference("free_hw_cnn");
    let (status, v) = infer(&s, "free_hw_cnn", json!({ "inputs": r["inputs"] })).await;
    assert_eq!(status, 200, "{v}");
    for (got, want) in v["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["outputs"].as_array().unwrap())
    {
        assert_eq!(got["shape"], want["shape"], "{}", want["name"]);
        close(
            &as_f64s(&got["data"]),
            &as_f64s(&want["data"]),
            want["name"].as_str().unwrap(),
        );
    }
    // Other sizes, taller than wide and the smallest valid one, in one server.
    for (h, w) in [(7, 4), (3, 3), (16, 5)] {
        let (status, v) = infer(&s, "free_hw_cnn", image(1, h, w)).await;
        assert_eq!(status, 200, "{h}x{w}: {v}");
        assert_eq!(v["outputs"][0]["shape"], json!([1, 4, h - 2, w - 2]));
    }
    // Metadata keeps the free dimensions free.
    let md: Value = reqwest::get(s.url("/v2/models/free_hw_cnn"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(md["inputs"][0]["shape"], json!([-1, 3, -1, -1]));
}

#[tokio::test]
async fn declared_shapes_pin_what_the_file_leaves_free() {
    let mut mc = ModelConfig::named("free_hw_cnn", None);
    mc.inputs = vec![InputShape {
        name: "image".into(),
        shape: vec![
            Dim::Size(-1),
            Dim::Size(3),
            Dim::Size(6),
            Dim::Named("width".into()),
        ],
    }];
    let s = start(only(vec![mc])).await;
    let md: Value = reqwest::get(s.url("/v2/models/free_hw_cnn"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(md["inputs"][0]["shape"], json!([-1, 3, 6, -1]));
    let (status, v) = infer(&s, "free_hw_cnn", image(2, 6, 11)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["outputs"][0]["shape"], json!([2, 4, 4, 9]));
    let (status, v) = infer(&s, "free_hw_cnn", image(1, 7, 7)).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap().contains("[-1, 3, 6, -1]"),
        "{v}"
    );

    // A declaration that contradicts the file is refused, naming the dimension.
    for (shape, needle) in [
        (
            vec![Dim::Size(-1), Dim::Size(4), Dim::Size(6), Dim::Size(6)],
            "dimension 1 is declared 4, but the model fixes it at 3",
        ),
        (
            vec![Dim::Size(1), Dim::Size(3)],
            "declared with 2 dimensions, but the model's input has 4",
        ),
    ] {
        let mut mc = ModelConfig::named("free_hw_cnn", None);
        mc.inputs = vec![InputShape {
            name: "image".into(),
            shape,
        }];
        let mut cfg = only(vec![mc]);
        cfg.strict = true;
        let e = modelplane_serve::app::App::start(cfg, None)
            .await
            .err()
            .expect("refused");
        assert!(e.contains(needle), "{e}");
    }
    let mut mc = ModelConfig::named("free_hw_cnn", None);
    mc.inputs = vec![InputShape {
        name: "pixels".into(),
        shape: vec![],
    }];
    let mut cfg = only(vec![mc]);
    cfg.strict = true;
    let e = modelplane_serve::app::App::start(cfg, None)
        .await
        .err()
        .expect("refused");
    assert!(
        e.contains("no input \"pixels\"") && e.contains("[\"image\"]"),
        "{e}"
    );
}

#[tokio::test]
async fn a_model_planned_per_shape_caches_its_plans_least_recently_used() {
    let mut mc = ModelConfig::named("free_hw_cnn", None);
    mc.plan_per_shape = true;
    let mut cfg = only(vec![mc]);
    cfg.limits.plan_cache_size = 2;
    let s = start(cfg).await;
    let m = s
        .app
        .snapshot()
        .latest("free_hw_cnn")
        .unwrap()
        .model()
        .clone();
    assert!(m.plans_per_shape());
    assert!(
        !m.batchable,
        "a model planned per shape runs each request alone"
    );
    let r = reference("free_hw_cnn");
    let (status, v) = infer(&s, "free_hw_cnn", json!({ "inputs": r["inputs"] })).await;
    assert_eq!(status, 200, "{v}");
    close(
        &as_f64s(&v["outputs"][1]["data"]),
        &as_f64s(&r["outputs"][1]["data"]),
        "pooled",
    );
    // (2,5,9) miss above; (1,4,4) miss, hit; (1,5,5) miss evicts (2,5,9); (2,5,9) misses again.
    for (n, h, w) in [(1, 4, 4), (1, 4, 4), (1, 5, 5), (2, 5, 9)] {
        let (status, v) = infer(&s, "free_hw_cnn", image(n, h, w)).await;
        assert_eq!(status, 200, "{v}");
    }
    assert_eq!(m.plan_cache_counts(), Some((1, 4)));
    // A shape that cannot be planned is a client mistake, and is remembered as one: no
    // element in the request (a batch of 0), but the convolution's output would have more
    // than 2^32 elements.
    for _ in 0..2 {
        let (status, v) = infer(&s, "free_hw_cnn", image(0, 32771, 32770)).await;
        assert_eq!(status, 400, "{v}");
        let e = v["error"].as_str().unwrap();
        assert!(
            e.contains("too large") && e.contains("[0, 3, 32771, 32770]"),
            "{v}"
        );
    }
    assert_eq!(m.plan_cache_counts(), Some((2, 5)));
    let metrics = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("modelplane_plan_cache_lookups_total{model=\"free_hw_cnn\",result=\"hit\",version=\"1\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_model_whose_only_opset_is_another_domain_loads() {
    let sig =
        modelplane_serve::signature::read(&fixtures().join("repo/ml_only/1/model.onnx")).unwrap();
    assert_eq!(sig.opset, 0);
    assert_eq!(sig.opset_imports, vec!["ai.onnx.ml v3"]);
    let s = start(only(vec![ModelConfig::named("ml_only", None)])).await;
    let r = reference("ml_only");
    let (status, v) = infer(&s, "ml_only", json!({ "inputs": r["inputs"] })).await;
    assert_eq!(status, 200, "{v}");
    close(
        &as_f64s(&v["outputs"][0]["data"]),
        &as_f64s(&r["outputs"][0]["data"]),
        "y",
    );
}

#[tokio::test]
async fn one_model_that_fails_to_load_does_not_stop_the_others() {
    let s = start(only(vec![
        ModelConfig::named("iris", None),
        ModelConfig::named("unsupported", None),
    ]))
    .await;
    // The server is up and the good model serves.
    assert_eq!(
        reqwest::get(s.url("/v2/health/ready"))
            .await
            .unwrap()
            .status(),
        200
    );
    let r = reference("iris");
    let (status, _) = infer(&s, "iris", json!({ "inputs": r["inputs"] })).await;
    assert_eq!(status, 200);
    // The failed one is not ready and says why: the operator and the opsets imported.
    let resp = reqwest::get(s.url("/v2/models/unsupported/ready"))
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
    let v: Value = resp.json().await.unwrap();
    let why = v["error"].as_str().unwrap();
    assert!(
        why.contains("NoSuchOperator")
            && why.contains("com.example v1")
            && why.contains("ai.onnx v17"),
        "{why}"
    );
    let (status, v) = infer(&s, "unsupported", json!({ "inputs": r["inputs"] })).await;
    assert_eq!(status, 503, "{v}");
    let mut c = pb_client(&s).await;
    let ready = c
        .model_ready(modelplane_serve::grpc::pb::ModelReadyRequest {
            name: "unsupported".into(),
            version: String::new(),
        })
        .await
        .unwrap();
    assert!(!ready.get_ref().ready);
    let metrics = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics
            .contains("modelplane_model_load_failures_total{model=\"unsupported\",version=\"\"} 1"),
        "{metrics}"
    );

    // strict (Triton's --exit-on-error) refuses to start instead.
    let mut cfg = only(vec![
        ModelConfig::named("iris", None),
        ModelConfig::named("unsupported", None),
    ]);
    cfg.strict = true;
    let e = modelplane_serve::app::App::start(cfg, None)
        .await
        .err()
        .expect("strict refuses");
    assert!(e.contains("NoSuchOperator"), "{e}");
}

async fn pb_client(
    s: &Running,
) -> modelplane_serve::grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient<
    tonic::transport::Channel,
> {
    modelplane_serve::grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(
        format!("http://{}", s.grpc),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn serving_beyond_loopback_needs_a_token_or_an_explicit_insecure() {
    let mut cfg = only(vec![ModelConfig::named("iris", None)]);
    cfg.http = "0.0.0.0:0".parse().unwrap();
    let e = modelplane_serve::app::App::start(cfg.clone(), None)
        .await
        .err()
        .expect("refused");
    assert!(
        e.contains("0.0.0.0:0") && e.contains("--insecure") && e.contains("auth.token_file"),
        "{e}"
    );
    cfg.auth.none = true;
    assert!(modelplane_serve::app::App::start(cfg.clone(), None)
        .await
        .is_ok());
    cfg.auth.none = false;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "s3cret\n").unwrap();
    cfg.auth.token_file = Some(dir.path().join("token").display().to_string());
    assert!(modelplane_serve::app::App::start(cfg, None).await.is_ok());
}
