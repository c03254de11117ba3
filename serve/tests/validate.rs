//! `modelplane-serve validate`: exit codes, summary and JSON report on real hold-out data.

use std::path::PathBuf;
use std::process::Command;

fn fx(rel: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/models")
        .join(rel)
        .display()
        .to_string()
}

fn validate(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_modelplane-serve"))
        .arg("validate")
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

#[test]
fn a_good_model_passes_with_a_report() {
    let report = tempfile::NamedTempFile::new().unwrap();
    let (code, out, err) = validate(&[
        "--model",
        &fx("repo/iris/1/model.onnx"),
        "--dataset",
        &fx("data/iris_holdout.csv"),
        "--target",
        "species",
        "--metric",
        "accuracy",
        "--min",
        "0.9",
        "--report",
        report.path().to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.starts_with("PASS: accuracy = "), "{out}");
    assert!(out.contains("confusion matrix"));
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.path()).unwrap()).unwrap();
    assert_eq!(r["passed"], true);
    assert_eq!(r["n"], 30);
    assert!(r["value"].as_f64().unwrap() >= 0.9);
    assert_eq!(r["output"], "label");
    assert_eq!(r["model_sha256"].as_str().unwrap().len(), 64);
    assert_eq!(r["dataset_sha256"].as_str().unwrap().len(), 64);
    let total: u64 = r["confusion_matrix"]["matrix"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|row| row.as_array().unwrap().iter().map(|v| v.as_u64().unwrap()))
        .sum();
    assert_eq!(total, 30);
}

#[test]
fn wrong_labels_fail_with_exit_1() {
    let (code, out, _) = validate(&[
        "--model",
        &fx("repo/iris/1/model.onnx"),
        "--dataset",
        &fx("data/iris_wrong_labels.csv"),
        "--target",
        "species",
        "--metric",
        "f1",
        "--min",
        "0.9",
    ]);
    assert_eq!(code, 1);
    assert!(out.starts_with("FAIL: f1 = "), "{out}");
}

#[test]
fn npz_and_regression_metrics() {
    let (code, out, err) = validate(&[
        "--model",
        &fx("repo/iris/1/model.onnx"),
        "--dataset",
        &fx("data/iris_holdout.npz"),
        "--target",
        "y",
        "--metric",
        "recall",
        "--min",
        "0.8",
        "--json",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let r: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(r["metric"], "recall");
    let (code, out, err) = validate(&[
        "--model",
        &fx("repo/diabetes_linear/1/model.onnx"),
        "--dataset",
        &fx("data/diabetes_holdout.csv"),
        "--target",
        "progression",
        "--metric",
        "mae",
        "--max",
        "60",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, _) = validate(&[
        "--model",
        &fx("repo/diabetes_linear/1/model.onnx"),
        "--dataset",
        &fx("data/diabetes_holdout.csv"),
        "--target",
        "progression",
        "--metric",
        "rmse",
        "--max",
        "1",
    ]);
    assert_eq!(code, 1, "{out}");
}

#[test]
fn bad_inputs_are_errors_with_exit_2() {
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "--model",
                &fx("repo/iris/1/model.onnx"),
                "--dataset",
                &fx("data/iris_holdout.csv"),
                "--target",
                "nope",
                "--metric",
                "accuracy",
                "--min",
                "0.9",
            ],
            "no target column \"nope\"",
        ),
        (
            &[
                "--model",
                &fx("repo/iris/1/model.onnx"),
                "--dataset",
                &fx("data/diabetes_holdout.csv"),
                "--target",
                "progression",
                "--metric",
                "accuracy",
                "--min",
                "0.9",
            ],
            "has 10 feature columns",
        ),
        (
            &[
                "--model",
                &fx("repo/iris/1/model.onnx"),
                "--sha256",
                "abc",
                "--dataset",
                &fx("data/iris_holdout.csv"),
                "--target",
                "species",
                "--metric",
                "accuracy",
                "--min",
                "0.9",
            ],
            "refusing to load",
        ),
        (
            &[
                "--model",
                &fx("repo/iris/1/model.onnx"),
                "--dataset",
                &fx("repo/iris/1/model.json"),
                "--target",
                "species",
                "--metric",
                "accuracy",
                "--min",
                "0.9",
            ],
            "unsupported dataset format",
        ),
        (
            &[
                "--model",
                &fx("repo/iris/1/model.onnx"),
                "--dataset",
                &fx("data/iris_holdout.csv"),
                "--target",
                "species",
                "--metric",
                "accuracy",
            ],
            "give a threshold",
        ),
    ];
    for (args, needle) in cases {
        let (code, _, err) = validate(args);
        assert_eq!(code, 2, "{args:?}");
        assert!(err.contains(needle), "{err:?} should contain {needle:?}");
    }
}
