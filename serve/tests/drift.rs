//! Drift against a baseline and quality from feedback, end to end through the server's
//! metrics.

use crate::common;

use std::process::Command;

use common::*;
use serde_json::{json, Value};

/// A repository holding iris v1 with a baseline computed by `modelplane-serve baseline`.
fn repo_with_baseline() -> tempfile::TempDir {
    let td = tempfile::tempdir().unwrap();
    let d = td.path().join("iris/1");
    std::fs::create_dir_all(&d).unwrap();
    for f in ["model.onnx", "model.json"] {
        std::fs::copy(fixtures().join("repo/iris/1").join(f), d.join(f)).unwrap();
    }
    let st = Command::new(env!("CARGO_BIN_EXE_modelplane-serve"))
        .args(["baseline", "--dataset"])
        .arg(fixtures().join("data/iris_holdout.csv"))
        .args(["--target", "species", "--model"])
        .arg(d.join("model.onnx"))
        .arg("--out")
        .arg(d.join("baseline.json"))
        .status()
        .unwrap();
    assert!(st.success());
    td
}

fn rows() -> Vec<Vec<f64>> {
    let text = std::fs::read_to_string(fixtures().join("data/iris_holdout.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| l.split(',').take(4).map(|v| v.parse().unwrap()).collect())
        .collect()
}

fn gauge(metrics: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    metrics
        .lines()
        .find(|l| {
            l.starts_with(name)
                && l[name.len()..].starts_with('{')
                && labels
                    .iter()
                    .all(|(k, v)| l.contains(&format!("{k}=\"{v}\"")))
        })
        .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
}

#[tokio::test]
async fn shifted_traffic_shows_as_drift_and_wrong_labels_as_low_accuracy() {
    let repo = repo_with_baseline();
    let mut cfg = config(repo.path().to_str().unwrap());
    cfg.models.retain(|m| m.name == "iris");
    let s = start(cfg).await;
    let c = reqwest::Client::new();
    let send = |data: Vec<Vec<f64>>, id: String| {
        let c = c.clone();
        let url = s.url("/v2/models/iris/infer");
        async move {
            let n = data.len();
            let b = json!({ "id": id, "inputs": [{ "name": "input", "shape": [n, 4], "datatype": "FP32", "data": data }] });
            let v: Value = c
                .post(url)
                .json(&b)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    // traffic like the reference data: no drift
    for i in 0..5 {
        send(rows(), format!("ok-{i}")).await;
    }
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let psi = gauge(&m, "modelplane_drift_psi", &[("feature", "petal_length")]).expect(&m);
    assert!(psi < 0.1, "psi on reference-like traffic: {psi}");
    assert_eq!(
        gauge(&m, "modelplane_drift_window_rows", &[("model", "iris")]),
        Some(150.0)
    );

    // petal length shifted up by 2 cm
    for i in 0..20 {
        let shifted: Vec<Vec<f64>> = rows()
            .into_iter()
            .map(|mut r| {
                r[2] += 2.0;
                r
            })
            .collect();
        send(shifted, format!("shift-{i}")).await;
    }
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let psi = gauge(&m, "modelplane_drift_psi", &[("feature", "petal_length")]).unwrap();
    let ks = gauge(&m, "modelplane_drift_ks", &[("feature", "petal_length")]).unwrap();
    assert!(psi > 0.2, "psi on shifted traffic: {psi}");
    assert!(ks > 0.2, "ks on shifted traffic: {ks}");
    let untouched = gauge(&m, "modelplane_drift_psi", &[("feature", "sepal_width")]).unwrap();
    assert!(
        untouched < 0.1,
        "an unshifted feature stays quiet: {untouched}"
    );
    assert!(
        gauge(&m, "modelplane_prediction_drift_psi", &[("model", "iris")]).unwrap() > 0.1,
        "predictions moved too"
    );

    // feedback: single-row requests, half of them labelled wrongly
    let mut items = Vec::new();
    for (i, r) in rows().into_iter().enumerate().take(20) {
        let v = send(vec![r], format!("fb-{i}")).await;
        let label = v["outputs"][0]["data"][0].as_f64().unwrap();
        items.push(json!({ "id": format!("fb-{i}"), "label": if i % 2 == 0 { label } else { label + 1.0 } }));
    }
    items.push(json!({ "id": "never-seen", "label": 1 }));
    let o: Value = c
        .post(s.url("/v2/models/iris/feedback"))
        .json(&json!({ "feedback": items }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(o["matched"], 20);
    assert_eq!(o["unknown_ids"], json!(["never-seen"]));
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        gauge(
            &m,
            "modelplane_feedback_accuracy",
            &[("model", "iris"), ("variant", "default")]
        ),
        Some(0.5)
    );
    assert_eq!(
        gauge(
            &m,
            "modelplane_feedback_total",
            &[("outcome", "unknown_id")]
        ),
        Some(1.0)
    );
    let bad = c
        .post(s.url("/v2/models/iris/feedback"))
        .body("{\"labels\": 1}")
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);
    let unknown = c
        .post(s.url("/v2/models/nope/feedback"))
        .json(&json!({ "feedback": [] }))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
}
