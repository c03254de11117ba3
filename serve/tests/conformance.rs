//! The ONNX backend node test cases (generated from the `onnx` wheel's case definitions, which
//! ship no data) through the server over REST binary and JSON, as tract keeps its
//! conformance: `serve/tests/conformance/expected_failures.txt` lists the cases expected to
//! fail and why. A case that passed and starts failing fails this test; a listed case that
//! passes is reported, so the list shrinks. onnxruntime's pass count on the same cases is
//! printed beside the server's.
//!
//! Needs a Python with onnx, onnxruntime and numpy, named by `MODELPLANE_REAL_MODELS_PYTHON`
//! (`cargo xtask test` installs one); skipped otherwise.

use crate::common;

use common::*;
use modelplane_serve::config::ModelConfig;

#[tokio::test]
async fn onnx_backend_node_cases_pass_or_are_listed() {
    let Ok(python) = std::env::var("MODELPLANE_REAL_MODELS_PYTHON") else {
        eprintln!("skipped: set MODELPLANE_REAL_MODELS_PYTHON to a Python with onnx, onnxruntime and numpy (cargo xtask test does)");
        return;
    };
    let here = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/conformance");
    let script = here.join("onnx_node_cases.py");
    // MODELPLANE_CONFORMANCE_DIR keeps the cases and results there, to rewrite the list with
    // `onnx_node_cases.py expected-failures DIR serve/tests/conformance/expected_failures.txt`.
    let tmp = tempfile::tempdir().unwrap();
    let out = match std::env::var("MODELPLANE_CONFORMANCE_DIR") {
        Ok(d) => {
            let _ = std::fs::remove_dir_all(&d);
            std::fs::create_dir_all(&d).unwrap();
            std::path::PathBuf::from(d)
        }
        Err(_) => tmp.path().to_path_buf(),
    };
    let script = script.to_str().unwrap();
    let dir = out.as_path().to_str().unwrap();
    let (ok, text) = common::python(&python, &[script, "generate", dir]).await;
    assert!(ok, "{text}");
    eprintln!("{text}");
    let (ok, text) = common::python(&python, &[script, "ort", dir]).await;
    assert!(ok, "{text}");
    let mut names: Vec<String> = std::fs::read_dir(out.as_path().join("repo"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert!(names.len() > 1500, "{} cases generated", names.len());
    let mut cfg = config(out.as_path().join("repo").to_str().unwrap());
    cfg.models = names
        .iter()
        .map(|n| ModelConfig::named(n.as_str(), None))
        .collect();
    cfg.limits.request_timeout_ms = 120_000;
    let s = start(cfg).await;
    let http = s.http.to_string();
    // The check is a client of this process's server, awaited without blocking it.
    let (ok, text) = common::python(&python, &[script, "check", dir, &http]).await;
    assert!(ok, "{text}");
    eprintln!("{text}");
    let expected = here.join("expected_failures.txt");
    let (ok, text) = common::python(
        &python,
        &[script, "compare", dir, expected.to_str().unwrap()],
    )
    .await;
    eprintln!("{text}");
    assert!(
        ok,
        "cases that passed now fail (a regression), or are not listed:\n{text}"
    );
}
