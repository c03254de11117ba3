//! Traffic split, pinning, sticky routing, shadowing, batching, back-pressure, auth and
//! reload without a failed request.

use crate::common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use modelplane_serve::config::{EndpointConfig, ModelConfig, ShadowConfig, VariantConfig};
use serde_json::{json, Value};

/// A repository with iris versions 1, 2 and 3 (the same model under three versions).
fn versioned_repo() -> tempfile::TempDir {
    let td = tempfile::tempdir().unwrap();
    let src = fixtures().join("repo/iris/1");
    for v in ["1", "2", "3"] {
        let d = td.path().join("iris").join(v);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(src.join("model.onnx"), d.join("model.onnx")).unwrap();
        let mut meta: Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("model.json")).unwrap())
                .unwrap();
        meta["version"] = json!(v);
        std::fs::write(d.join("model.json"), meta.to_string()).unwrap();
    }
    td
}

fn endpoint(weights: &[(&str, &str, u32)], shadow: Option<&str>) -> EndpointConfig {
    EndpointConfig {
        name: "flowers".into(),
        variants: weights
            .iter()
            .map(|(n, v, w)| VariantConfig {
                name: n.to_string(),
                model: "iris".into(),
                version: Some(v.to_string()),
                weight: *w,
                remote: None,
            })
            .collect(),
        shadow: shadow.map(|v| ShadowConfig {
            model: "iris".into(),
            version: Some(v.into()),
            remote: None,
        }),
        sticky_header: Some("x-user".into()),
    }
}

fn split_config(
    repo: &tempfile::TempDir,
    weights: &[(&str, &str, u32)],
    shadow: Option<&str>,
) -> modelplane_serve::config::ServeConfig {
    let mut cfg = config(repo.path().to_str().unwrap());
    cfg.models = vec![];
    cfg.endpoints = vec![endpoint(weights, shadow)];
    cfg
}

fn body() -> Value {
    json!({ "inputs": reference("iris")["inputs"] })
}

async fn variant_of(
    c: &reqwest::Client,
    s: &Running,
    headers: &[(&str, &str)],
) -> (String, String) {
    let mut rb = c.post(s.url("/v2/models/flowers/infer")).json(&body());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let resp = rb.send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let variant = resp.headers()["x-modelplane-variant"]
        .to_str()
        .unwrap()
        .to_string();
    let v: Value = resp.json().await.unwrap();
    (variant, v["model_version"].as_str().unwrap().to_string())
}

#[tokio::test]
async fn weights_pinning_sticky_and_shadow() {
    let repo = versioned_repo();
    let s = start(split_config(
        &repo,
        &[("stable", "1", 90), ("canary", "2", 10)],
        Some("3"),
    ))
    .await;
    let c = reqwest::Client::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for _ in 0..400 {
        let (variant, version) = variant_of(&c, &s, &[]).await;
        assert_eq!(version, if variant == "stable" { "1" } else { "2" });
        *counts.entry(variant).or_default() += 1;
    }
    let canary = counts.get("canary").copied().unwrap_or(0);
    // 10% of 400 = 40; binomial sd ≈ 6: allow a wide band.
    assert!(
        (15..=70).contains(&canary),
        "canary got {canary} of 400: {counts:?}"
    );
    // pinning by header and by request parameter
    for _ in 0..20 {
        assert_eq!(
            variant_of(&c, &s, &[("x-modelplane-variant", "canary")])
                .await
                .0,
            "canary"
        );
    }
    let mut b = body();
    b["parameters"] = json!({ "variant": "canary" });
    let v: Value = c
        .post(s.url("/v2/models/flowers/infer"))
        .json(&b)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["model_version"], "2");
    let unknown = c
        .post(s.url("/v2/models/flowers/infer"))
        .header("x-modelplane-variant", "nope")
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    // sticky: one key always lands on one variant
    for user in ["alice", "bob", "carol", "dave"] {
        let first = variant_of(&c, &s, &[("x-user", user)]).await.0;
        for _ in 0..10 {
            assert_eq!(
                variant_of(&c, &s, &[("x-user", user)]).await.0,
                first,
                "user {user}"
            );
        }
    }
    // the shadow saw a copy of every request, its answers discarded but counted
    tokio::time::sleep(Duration::from_millis(200)).await;
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let shadow_line = m
        .lines()
        .find(|l| {
            l.starts_with("modelplane_requests_total")
                && l.contains("variant=\"shadow\"")
                && l.contains("status=\"ok\"")
        })
        .expect(&m);
    let n: f64 = shadow_line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(n >= 400.0, "shadow requests: {n}");
}

#[tokio::test]
async fn reload_under_load_drops_no_request() {
    let repo = versioned_repo();
    let s = start(split_config(&repo, &[("stable", "1", 100)], None)).await;
    let url = s.url("/v2/models/flowers/infer");
    let ok = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (url, ok, failed, stop) = (url.clone(), ok.clone(), failed.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let mut n = 0;
            while !stop.load(Ordering::SeqCst) && n < 5000 {
                n += 1;
                match c.post(&url).json(&body()).send().await {
                    Ok(r) if r.status() == 200 => ok.fetch_add(1, Ordering::SeqCst),
                    _ => failed.fetch_add(1, Ordering::SeqCst),
                };
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Swap in a canary on a version that is not loaded yet (it loads and warms up first),
    // then move all traffic to it, then back.
    for weights in [
        vec![("stable", "1", 50), ("canary", "2", 50)],
        vec![("canary", "3", 100)],
        vec![("stable", "1", 100)],
    ] {
        s.app
            .reload(Some(split_config(&repo, &weights, None)))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::SeqCst);
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(
        failed.load(Ordering::SeqCst),
        0,
        "requests failed during reloads"
    );
    assert!(
        ok.load(Ordering::SeqCst) > 100,
        "too little load to prove anything: {}",
        ok.load(Ordering::SeqCst)
    );
    // a broken configuration is refused and the old one keeps serving
    let bad = split_config(&repo, &[("x", "9", 100)], None);
    let e = s.app.reload(Some(bad)).await.unwrap_err();
    assert!(e.contains("iris") && e.contains('9'), "{e}");
    let r = reqwest::Client::new()
        .post(&url)
        .json(&body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn concurrent_requests_are_batched_and_split_back_correctly() {
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models = vec![ModelConfig {
        batching: modelplane_serve::batch::BatchConfig {
            max_batch_size: 64,
            max_delay_ms: 20,
            queue_capacity: 1024,
        },
        ..ModelConfig::named("digits_mlp", None)
    }];
    let s = start(cfg).await;
    let r = reference("digits_mlp");
    let rows: Vec<Vec<f64>> = as_f64s(&r["inputs"][0]["data"])
        .chunks(64)
        .map(|c| c.to_vec())
        .collect();
    let want_labels = as_f64s(&r["outputs"][0]["data"]);
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = s.url("/v2/models/digits_mlp/infer");
        let row = rows[i % rows.len()].clone();
        let want = want_labels[i % rows.len()];
        tasks.push(tokio::spawn(async move {
            let b = json!({ "inputs": [{ "name": "input", "shape": [1, 64], "datatype": "FP32", "data": row }] });
            let v: Value = reqwest::Client::new().post(url).json(&b).send().await.unwrap().json().await.unwrap();
            assert_eq!(v["outputs"][0]["data"][0].as_f64().unwrap(), want, "request {i} got another request's answer");
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let m = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let count: f64 = m
        .lines()
        .find(|l| l.starts_with("modelplane_batch_size_count"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let sum: f64 = m
        .lines()
        .find(|l| l.starts_with("modelplane_batch_size_sum"))
        .unwrap()
        .rsplit(' ')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(sum, 40.0, "every row computed exactly once: {m}");
    assert!(
        count < 40.0,
        "40 concurrent requests ran in {count} batches: some must have been batched"
    );
}

#[tokio::test]
async fn small_models_run_inline_when_idle_and_queue_when_asked_to_wait() {
    use modelplane_serve::batch::{BatchConfig, Batcher};
    use modelplane_serve::metrics::Metrics;
    // A batcher for iris with `max_delay_ms`, a worker pool and an inline limit.
    let start = |max_delay_ms: u64, pool: Arc<tokio::sync::Semaphore>, limit: Duration| {
        let model = Arc::new(
            modelplane_serve::model::Model::load(
                "iris",
                "1",
                &fixtures().join("repo/iris/1/model.onnx"),
                None,
            )
            .unwrap(),
        );
        let metrics = Metrics::new();
        let cfg = BatchConfig {
            max_delay_ms,
            ..BatchConfig::default()
        };
        let b = Batcher::start(model, cfg, pool, metrics.clone()).with_inline_max(limit);
        (Arc::new(b), metrics)
    };
    let pool = |n| Arc::new(tokio::sync::Semaphore::new(n));
    let x = || vec![tract_onnx::prelude::Tensor::zero::<f32>(&[1, 4]).unwrap()];
    let inline = |m: &Metrics| m.inline_requests.with_label_values(&["iris", "1"]).get();
    // The inline limit is raised to 1 s so that the rule, not this build's speed, decides
    // (an unoptimised tract runs iris slower than the 200-µs default).
    let fast = Duration::from_secs(1);
    // max_delay_ms 0, a free worker: after the first run (which measures the model), every
    // sequential request is computed inline.
    let (b, metrics) = start(0, pool(2), fast);
    for _ in 0..10 {
        b.infer(x(), Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(
        inline(&metrics),
        9,
        "the first request queues, the next 9 run inline"
    );
    // max_delay_ms > 0 asks requests to wait for company: none runs inline.
    let (b, metrics) = start(1, pool(2), fast);
    for _ in 0..5 {
        b.infer(x(), Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(inline(&metrics), 0);
    // No free worker: the request queues (and waits for one) rather than running inline.
    let workers = pool(1);
    let (b, metrics) = start(0, workers.clone(), fast);
    b.infer(x(), Duration::from_secs(5)).await.unwrap();
    let held = workers.clone().acquire_owned().await.unwrap();
    let b2 = b.clone();
    let waiting = tokio::spawn(async move { b2.infer(x(), Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(!waiting.is_finished(), "it waits for the busy worker");
    drop(held);
    waiting.await.unwrap().unwrap();
    assert_eq!(inline(&metrics), 0);
    // A model slower than the limit always queues.
    let (b, metrics) = start(0, pool(2), Duration::ZERO);
    for _ in 0..5 {
        b.infer(x(), Duration::from_secs(5)).await.unwrap();
    }
    assert_eq!(inline(&metrics), 0);
}

#[tokio::test]
async fn a_full_queue_answers_429() {
    // No compute permits: the collector holds one job, the queue holds one, the next is refused.
    let model = Arc::new(
        modelplane_serve::model::Model::load(
            "iris",
            "1",
            &fixtures().join("repo/iris/1/model.onnx"),
            None,
        )
        .unwrap(),
    );
    let pool = Arc::new(tokio::sync::Semaphore::new(0));
    let b = Arc::new(modelplane_serve::batch::Batcher::start(
        model,
        modelplane_serve::batch::BatchConfig {
            max_batch_size: 1,
            max_delay_ms: 0,
            queue_capacity: 1,
        },
        pool,
        modelplane_serve::metrics::Metrics::new(),
    ));
    let x = || vec![tract_onnx::prelude::Tensor::zero::<f32>(&[1, 4]).unwrap()];
    let (b1, b2) = (b.clone(), b.clone());
    let _first = tokio::spawn(async move { b1.infer(x(), Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let _second = tokio::spawn(async move { b2.infer(x(), Duration::from_secs(5)).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    let e = b.infer(x(), Duration::from_secs(5)).await.unwrap_err();
    assert_eq!(e.status().as_u16(), 429, "{e}");
    assert!(e.to_string().contains("full queue"));
    // and a request that waits past its timeout gets 504
    let pool = Arc::new(tokio::sync::Semaphore::new(0));
    let model = Arc::new(
        modelplane_serve::model::Model::load(
            "iris",
            "1",
            &fixtures().join("repo/iris/1/model.onnx"),
            None,
        )
        .unwrap(),
    );
    let b = modelplane_serve::batch::Batcher::start(
        model,
        Default::default(),
        pool,
        modelplane_serve::metrics::Metrics::new(),
    );
    let e = b.infer(x(), Duration::from_millis(50)).await.unwrap_err();
    assert_eq!(e.status().as_u16(), 504);
}

#[tokio::test]
async fn bearer_token_protects_inference_and_admin() {
    std::env::set_var("TRAFFIC_TEST_TOKEN", "s3cret");
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.auth.token_env = Some("TRAFFIC_TEST_TOKEN".into());
    let s = start(cfg).await;
    let c = reqwest::Client::new();
    let b = json!({ "inputs": reference("iris")["inputs"] });
    assert_eq!(
        c.post(s.url("/v2/models/iris/infer"))
            .json(&b)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.post(s.url("/v2/models/iris/infer"))
            .bearer_auth("wrong")
            .json(&b)
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.post(s.url("/v2/models/iris/infer"))
            .bearer_auth("s3cret")
            .json(&b)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        c.get(s.url("/v2/health/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "health needs no token"
    );
    assert_eq!(
        c.post(s.url("/v2/admin/reload"))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        c.post(s.url("/v2/admin/reload"))
            .bearer_auth("s3cret")
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let mut g = modelplane_serve::grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(format!("http://{}", s.grpc)).await.unwrap();
    let e = g
        .model_metadata(modelplane_serve::grpc::pb::ModelMetadataRequest {
            name: "iris".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::Unauthenticated);
}

/// An endpoint may carry its model's name (and the models may be listed for their batching
/// settings, as the provider writes them): the name routes through the split, and
/// `/versions/V` reaches the variant serving V.
#[tokio::test]
async fn an_endpoint_named_like_its_model() {
    let repo = versioned_repo();
    let mut cfg = split_config(&repo, &[("stable", "1", 50), ("canary", "2", 50)], None);
    cfg.endpoints[0].name = "iris".into();
    cfg.models = ["1", "2"]
        .iter()
        .map(|v| ModelConfig::named("iris", Some(v.to_string())))
        .collect();
    let s = start(cfg).await;
    let c = reqwest::Client::new();
    let mut variants = std::collections::BTreeSet::new();
    for _ in 0..60 {
        let resp = c
            .post(s.url("/v2/models/iris/infer"))
            .json(&body())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        variants.insert(
            resp.headers()["x-modelplane-variant"]
                .to_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(
        variants.into_iter().collect::<Vec<_>>(),
        vec!["canary", "stable"],
        "both variants serve under the model's name"
    );
    let v: Value = c
        .post(s.url("/v2/models/iris/versions/2/infer"))
        .json(&body())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["model_version"], "2");
}

/// A version whose bytes were replaced in the repository (same name and version, new
/// sha256 in model.json) is loaded again on reload, not served stale from memory.
#[tokio::test]
async fn reload_loads_a_replaced_version_again() {
    let repo = versioned_repo();
    let s = start(split_config(&repo, &[("stable", "1", 100)], None)).await;
    let c = reqwest::Client::new();
    let probabilities = |v: Value| {
        v["outputs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|o| o["name"] == "probabilities")
            .unwrap()["data"]
            .clone()
    };
    let before = probabilities(
        c.post(s.url("/v2/models/flowers/infer"))
            .json(&body())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    // Another iris classifier (a neural network) under the same version.
    let other = fixtures().join("../../../examples/quickstart/model/iris-v2.onnx");
    let dir = repo.path().join("iris/1");
    std::fs::copy(&other, dir.join("model.onnx")).unwrap();
    let mut meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("model.json")).unwrap()).unwrap();
    meta["sha256"] = json!(modelplane_serve::signature::file_digest(&other).unwrap().0);
    std::fs::write(dir.join("model.json"), meta.to_string()).unwrap();
    s.app
        .reload(Some(split_config(&repo, &[("stable", "1", 100)], None)))
        .await
        .unwrap();
    let after = probabilities(
        c.post(s.url("/v2/models/flowers/infer"))
            .json(&body())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap(),
    );
    assert_ne!(before, after, "the replaced bytes serve after the reload");
}
