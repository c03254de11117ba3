//! Shared endpoints: models attached through the registry, loaded on their first request,
//! evicted least recently used under the memory budget, pinned models kept, attachments
//! added and removed under load, and concurrent reloads coalesced.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::*;
use modelplane_serve::config::{
    Attachment, EndpointConfig, ServeConfig, SharedConfig, VariantConfig,
};
use serde_json::{json, Value};

const REGISTRY: &str = ".endpoints/pool";

/// A repository with iris under versions 1..=n (the same model, distinct versions).
fn repo_with(n: usize) -> tempfile::TempDir {
    let td = tempfile::tempdir().unwrap();
    let src = fixtures().join("repo/iris/1");
    for v in 1..=n {
        let d = td.path().join("iris").join(v.to_string());
        std::fs::create_dir_all(&d).unwrap();
        std::fs::copy(src.join("model.onnx"), d.join("model.onnx")).unwrap();
        let mut meta: Value =
            serde_json::from_str(&std::fs::read_to_string(src.join("model.json")).unwrap())
                .unwrap();
        meta["version"] = json!(v.to_string());
        std::fs::write(d.join("model.json"), meta.to_string()).unwrap();
    }
    td
}

/// Attaches `name` serving iris version `version`, as the provider does: a file written
/// whole (renamed into place).
fn attach(repo: &tempfile::TempDir, name: &str, version: usize, pinned: bool) {
    let a = Attachment {
        endpoint: EndpointConfig {
            name: name.into(),
            variants: vec![VariantConfig {
                name: "main".into(),
                model: "iris".into(),
                version: Some(version.to_string()),
                weight: 100,
                remote: None,
            }],
            shadow: None,
            sticky_header: None,
        },
        models: vec![],
        pinned,
    };
    let dir = repo.path().join(REGISTRY);
    std::fs::create_dir_all(&dir).unwrap();
    let tmp = dir.join(format!(".{name}.json.incoming"));
    std::fs::write(&tmp, serde_json::to_vec(&a).unwrap()).unwrap();
    std::fs::rename(&tmp, dir.join(format!("{name}.json"))).unwrap();
}

fn detach(repo: &tempfile::TempDir, name: &str) {
    std::fs::remove_file(repo.path().join(REGISTRY).join(format!("{name}.json"))).unwrap();
}

fn shared_config(repo: &tempfile::TempDir, budget: Option<u64>) -> ServeConfig {
    let mut cfg = config(repo.path().to_str().unwrap());
    cfg.models = vec![];
    cfg.shared = Some(SharedConfig {
        registry: REGISTRY.into(),
        poll_ms: 60_000,
    });
    cfg.limits.memory_budget_bytes = budget;
    cfg
}

/// What one loaded iris takes, as the server counts it.
fn iris_bytes() -> u64 {
    let p = fixtures().join("repo/iris/1/model.onnx");
    modelplane_serve::model::Model::load("iris", "1", &p, None)
        .unwrap()
        .resident_bytes()
}

async fn infer(c: &reqwest::Client, s: &Running, name: &str) -> reqwest::Response {
    c.post(s.url(&format!("/v2/models/{name}/infer")))
        .json(&json!({ "inputs": reference("iris")["inputs"] }))
        .send()
        .await
        .unwrap()
}

async fn metric(c: &reqwest::Client, s: &Running, name: &str) -> f64 {
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    m.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .map(|v| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no {name} in\n{m}"))
}

async fn metrics_text(c: &reqwest::Client, s: &Running) -> String {
    c.get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test]
async fn models_load_on_first_request_and_the_least_recently_used_are_evicted() {
    let repo = repo_with(5);
    for v in 1..=5 {
        attach(&repo, &format!("m{v}"), v, false);
    }
    // Room for two loaded models, not three.
    let one = iris_bytes();
    let s = start(shared_config(&repo, Some(one * 5 / 2))).await;
    let c = reqwest::Client::new();
    // Ready at once: nothing is loaded before it is asked for.
    let ready = c.get(s.url("/v2/health/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    assert_eq!(metric(&c, &s, "modelplane_models_registered").await, 5.0);
    assert_eq!(metric(&c, &s, "modelplane_models_resident").await, 0.0);
    assert_eq!(
        c.get(s.url("/v2/models/m3/ready"))
            .send()
            .await
            .unwrap()
            .status(),
        200,
        "an attached model is ready before it is loaded"
    );

    let want = as_f64s(&reference("iris")["outputs"][0]["data"]);
    for name in ["m1", "m2"] {
        let r = infer(&c, &s, name).await;
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["model_name"], name);
        close(&as_f64s(&v["outputs"][0]["data"]), &want, name);
    }
    assert_eq!(metric(&c, &s, "modelplane_model_loads_total").await, 2.0);
    assert_eq!(
        metric(&c, &s, "modelplane_model_evictions_total").await,
        0.0
    );
    // m1 is used again, so m2 is the least recently used when m3 needs room.
    assert_eq!(infer(&c, &s, "m1").await.status(), 200);
    assert_eq!(infer(&c, &s, "m3").await.status(), 200);
    assert_eq!(metric(&c, &s, "modelplane_model_loads_total").await, 3.0);
    assert_eq!(
        metric(&c, &s, "modelplane_model_evictions_total").await,
        1.0
    );
    assert_eq!(metric(&c, &s, "modelplane_models_resident").await, 2.0);
    let used = metric(&c, &s, "modelplane_memory_resident_bytes").await;
    assert!(used <= (one * 5 / 2) as f64, "{used} over the budget");
    // Per-model series exist for the loaded models only.
    let m = metrics_text(&c, &s).await;
    let resident: Vec<&str> = m
        .lines()
        .filter(|l| l.starts_with("modelplane_model_resident_bytes{"))
        .collect();
    assert_eq!(resident.len(), 2, "{resident:?}");
    assert!(
        resident.iter().all(|l| !l.contains("version=\"2\"")),
        "{resident:?}"
    );
    assert!(
        !m.lines()
            .any(|l| l.starts_with("modelplane_requests_total{") && l.contains("version=\"2\"")),
        "the evicted model's request series stay: {m}"
    );
    // The evicted one loads again when asked for.
    assert_eq!(infer(&c, &s, "m2").await.status(), 200);
    assert_eq!(metric(&c, &s, "modelplane_model_loads_total").await, 4.0);
    let cold = metric(&c, &s, "modelplane_model_cold_start_seconds_count").await;
    assert_eq!(cold, 4.0);
    // The repository index tells loaded from attached.
    let idx = s.app.repository_index(false);
    let states: Vec<&str> = idx.iter().map(|e| e.state).collect();
    assert_eq!(
        states.iter().filter(|s| **s == "READY").count(),
        2,
        "{states:?}"
    );
    assert_eq!(
        states.iter().filter(|s| **s == "UNLOADED").count(),
        3,
        "{states:?}"
    );
}

#[tokio::test]
async fn pinned_models_load_when_attached_and_are_never_evicted() {
    let repo = repo_with(4);
    attach(&repo, "kept", 1, true);
    for v in 2..=4 {
        attach(&repo, &format!("m{v}"), v, false);
    }
    let one = iris_bytes();
    let s = start(shared_config(&repo, Some(one * 5 / 2))).await;
    let c = reqwest::Client::new();
    assert_eq!(metric(&c, &s, "modelplane_models_resident").await, 1.0);
    for name in ["m2", "m3", "m4", "m2", "m3", "m4"] {
        assert_eq!(infer(&c, &s, name).await.status(), 200, "{name}");
    }
    assert!(metric(&c, &s, "modelplane_model_evictions_total").await >= 4.0);
    // Never evicted: still loaded once.
    let m = metrics_text(&c, &s).await;
    assert!(
        m.lines()
            .any(|l| l.starts_with("modelplane_model_resident_bytes{")
                && l.contains("version=\"1\"")),
        "{m}"
    );
    assert_eq!(infer(&c, &s, "kept").await.status(), 200);
    assert_eq!(metric(&c, &s, "modelplane_model_loads_total").await, 7.0);
}

#[tokio::test]
async fn a_model_that_cannot_fit_answers_503_with_retry_after() {
    let repo = repo_with(2);
    attach(&repo, "big", 1, false);
    let s = start(shared_config(&repo, Some(iris_bytes() / 2))).await;
    let c = reqwest::Client::new();
    let r = infer(&c, &s, "big").await;
    assert_eq!(r.status(), 503);
    assert_eq!(r.headers()["retry-after"], "5");
    let e: Value = r.json().await.unwrap();
    let msg = e["error"].as_str().unwrap();
    assert!(
        msg.contains("memory budget") && msg.contains("iris v1"),
        "{msg}"
    );
    // gRPC says RESOURCE_EXHAUSTED.
    let mut g = modelplane_serve::grpc::pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(format!("http://{}", s.grpc)).await.unwrap();
    let st = g
        .model_metadata(modelplane_serve::grpc::pb::ModelMetadataRequest {
            name: "big".into(),
            version: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(st.code(), tonic::Code::ResourceExhausted, "{st:?}");
}

#[tokio::test]
async fn bad_attachments_fail_alone() {
    let repo = repo_with(1);
    attach(&repo, "good", 1, false);
    attach(&repo, "missing", 9, true);
    let dir = repo.path().join(REGISTRY);
    std::fs::write(dir.join("garbled.json"), b"{ not json").unwrap();
    // A file in the store must not make the server send a token somewhere.
    std::fs::write(
        dir.join("exfil.json"),
        json!({ "endpoint": { "name": "exfil", "variants": [{ "name": "x", "model": "iris", "weight": 100,
            "remote": { "url": "http://127.0.0.1:9", "token_file": "/etc/hostname" } }] } })
        .to_string(),
    )
    .unwrap();
    let s = start(shared_config(&repo, None)).await;
    let c = reqwest::Client::new();
    assert_eq!(infer(&c, &s, "good").await.status(), 200);
    for (name, says) in [
        ("missing", "9"),
        ("garbled", "garbled.json"),
        ("exfil", "remote variant"),
    ] {
        let r = c
            .get(s.url(&format!("/v2/models/{name}/ready")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 503, "{name}");
        let v: Value = r.json().await.unwrap();
        assert!(v["error"].as_str().unwrap().contains(says), "{name}: {v}");
    }
}

#[tokio::test]
async fn attach_and_detach_under_load_drop_no_request() {
    let repo = repo_with(6);
    for v in 1..=3 {
        attach(&repo, &format!("m{v}"), v, false);
    }
    let mut cfg = shared_config(&repo, Some(iris_bytes() * 4));
    cfg.shared.as_mut().unwrap().poll_ms = 50;
    let s = Arc::new(start(cfg).await);
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, failed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let mut load = Vec::new();
    for w in 0..4 {
        let (s, stop, ok, failed) = (s.clone(), stop.clone(), ok.clone(), failed.clone());
        load.push(tokio::spawn(async move {
            let c = reqwest::Client::new();
            let name = if w % 2 == 0 { "m1" } else { "m3" };
            while !stop.load(Ordering::Relaxed) {
                match infer(&c, &s, name).await.status().as_u16() {
                    200 => ok.fetch_add(1, Ordering::Relaxed),
                    _ => failed.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }
    let c = reqwest::Client::new();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Attach two, change one, detach one: the poll picks up some, the admin reload others.
    attach(&repo, "m4", 4, false);
    attach(&repo, "m5", 5, false);
    s.app.reload(None).await.unwrap();
    assert_eq!(infer(&c, &s, "m4").await.status(), 200);
    attach(&repo, "m3", 6, false);
    detach(&repo, "m2");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v: Value = infer(&c, &s, "m3").await.json().await.unwrap();
    assert_eq!(v["model_version"], "6", "{v}");
    assert_eq!(infer(&c, &s, "m2").await.status(), 404);
    assert_eq!(infer(&c, &s, "m5").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for l in load {
        l.await.unwrap();
    }
    let (ok, failed) = (ok.load(Ordering::Relaxed), failed.load(Ordering::Relaxed));
    assert!(ok > 50, "only {ok} requests");
    assert_eq!(failed, 0, "{failed} of {} requests failed", ok + failed);
    assert_eq!(metric(&c, &s, "modelplane_models_registered").await, 4.0);
}

#[tokio::test]
async fn concurrent_reloads_share_one() {
    let repo = repo_with(1);
    let s = start(shared_config(&repo, None)).await;
    let c = reqwest::Client::new();
    let before = metric(&c, &s, "modelplane_reloads_total").await;
    for i in 0..50 {
        attach(&repo, &format!("m{i}"), 1, false);
    }
    // Fifty callers at once (each polled once before any reload finishes).
    let calls = (0..50).map(|_| s.app.reload(None));
    for r in futures::future::join_all(calls).await {
        r.unwrap();
    }
    let done = metric(&c, &s, "modelplane_reloads_total").await - before;
    assert!(
        (1.0..=3.0).contains(&done),
        "50 callers cost {done} reloads"
    );
    // Every caller's change is live when its call returns.
    assert_eq!(metric(&c, &s, "modelplane_models_registered").await, 1.0);
    for i in [0, 25, 49] {
        assert_eq!(infer(&c, &s, &format!("m{i}")).await.status(), 200, "m{i}");
    }
}
