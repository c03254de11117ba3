//! Real models as PyPI packages ship them, served as they are: magika's file-type model and
//! rapidocr-onnxruntime's PP-OCR detection (a non-square page), recognition (two batch
//! widths) and direction models. tract cannot optimise any of the four with free
//! dimensions, so each is planned per input shape. Every answer, over REST JSON, REST
//! binary and gRPC (tritonclient, unmodified), must match onnxruntime (rtol 1e-3,
//! atol 1e-4) on realistic inputs built with the packages' own preprocessing.
//!
//! Needs a Python with those packages, named by `MODELPLANE_REAL_MODELS_PYTHON`
//! (`cargo xtask test` installs one into `.tools/real-models-venv`); skipped otherwise.

use crate::common;

use common::*;
use modelplane_serve::config::ModelConfig;

const MODELS: &[&str] = &["magika", "ppocr_det", "ppocr_rec", "ppocr_cls"];

#[tokio::test]
async fn real_models_from_pypi_packages_match_onnxruntime() {
    let Ok(python) = std::env::var("MODELPLANE_REAL_MODELS_PYTHON") else {
        eprintln!("skipped: set MODELPLANE_REAL_MODELS_PYTHON to a Python with magika, rapidocr-onnxruntime, onnxruntime and tritonclient (cargo xtask test does)");
        return;
    };
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/realmodels/real_models.py");
    let repo = tempfile::tempdir().unwrap();
    let (ok, text) = common::python(
        &python,
        &[script.as_os_str(), "repo".as_ref(), repo.path().as_os_str()],
    )
    .await;
    assert!(ok, "{text}");
    let mut cfg = config(repo.path().to_str().unwrap());
    cfg.models = MODELS
        .iter()
        .map(|m| ModelConfig::named(*m, None))
        .collect();
    // A debug build computes the detection model in seconds, beside other tests.
    cfg.limits.request_timeout_ms = 300_000;
    let s = start(cfg).await;
    for m in MODELS {
        let b = s.app.snapshot().latest(m).cloned().unwrap();
        assert!(
            b.model().plans_per_shape(),
            "{m} is expected to need per-shape plans"
        );
    }
    let (http, grpc) = (s.http.to_string(), s.grpc.to_string());
    let (ok, text) = common::python(
        &python,
        &[
            script.as_os_str(),
            "check".as_ref(),
            http.as_ref(),
            grpc.as_ref(),
        ],
    )
    .await;
    eprintln!("{text}");
    assert!(
        ok && text.contains("all 15 requests match onnxruntime"),
        "{text}"
    );
    // One plan per distinct shape, reused by the other transports: the recognition model
    // saw two widths, three transports each.
    let counts = |m: &str| {
        s.app
            .snapshot()
            .latest(m)
            .unwrap()
            .model()
            .plan_cache_counts()
            .unwrap()
    };
    assert_eq!(counts("ppocr_rec"), (4, 2));
    assert_eq!(counts("ppocr_det"), (2, 1));
}
