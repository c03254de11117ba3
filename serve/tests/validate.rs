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

/// Good on average, bad for one site: the overall gate passes, the slice gate refuses it and
/// names the site; the report has every slice.
#[test]
fn a_model_bad_for_one_slice_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // Sites 0, 1, 2; 9 of site 2's rows mislabelled (tests/fixtures/models/make_fixtures.py).
    let data = PathBuf::from(fx("data/iris_sites_one_bad.csv"));
    let model = fx("repo/iris/1/model.onnx");
    let base = [
        "--model",
        &model,
        "--dataset",
        data.to_str().unwrap(),
        "--target",
        "species",
        "--metric",
        "accuracy",
        "--min",
        "0.8",
    ];
    // Overall only: site is a feature then, and the model has 4 inputs: name the features.
    let features = [
        "--features",
        "sepal_length,sepal_width,petal_length,petal_width",
    ];
    let (code, out, err) = validate(&[&base[..], &features[..]].concat());
    assert_eq!(code, 0, "the overall metric alone passes: {out}{err}");
    let report = dir.path().join("report.json");
    let (code, out, err) = validate(
        &[
            &base[..],
            &[
                "--slice-by",
                "site",
                "--slice-min",
                "0.8",
                "--min-slice-rows",
                "20",
                "--report",
                report.to_str().unwrap(),
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.starts_with("FAIL: accuracy = "), "{out}");
    assert!(out.contains("slice site=2: accuracy = 0."), "{out}");
    assert!(out.contains("below its minimum 0.8"), "{out}");
    let r: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["passed"], false);
    let slices = r["slices"].as_array().unwrap();
    assert_eq!(slices.len(), 3);
    assert_eq!(slices[2]["name"], "site=2");
    assert_eq!(slices[2]["rows"], 30);
    assert_eq!(slices[2]["passed"], false);
    assert_eq!(slices[0]["passed"], true);
    // Site 2 lost exactly 9 of 30 rows against site 0.
    let gap = slices[0]["value"].as_f64().unwrap() - slices[2]["value"].as_f64().unwrap();
    assert!((gap - 0.3).abs() < 1e-9, "{gap}");
    assert!((r["disparity"].as_f64().unwrap() - 0.3).abs() < 1e-9);
    // Too few rows to judge: reported, not judged, and the model passes.
    let (code, out, _) = validate(
        &[
            &base[..],
            &[
                "--slice-by",
                "site",
                "--slice-min",
                "0.8",
                "--min-slice-rows",
                "31",
            ],
        ]
        .concat(),
    );
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("slice site=2: accuracy = 0.") && out.contains("(not judged: too few rows)"),
        "{out}"
    );
}

/// Every slice over its minimum, but the gap between the best and the worst too wide.
#[test]
fn disparity_over_the_limit_is_refused() {
    // Sites 0, 1, 2; 3 of site 2's rows mislabelled.
    let data = PathBuf::from(fx("data/iris_sites_gap.csv"));
    let model = fx("repo/iris/1/model.onnx");
    let base = [
        "--model",
        &model,
        "--dataset",
        data.to_str().unwrap(),
        "--target",
        "species",
        "--metric",
        "accuracy",
        "--min",
        "0.8",
        "--slice-by",
        "site",
        "--slice-min",
        "0.8",
        "--min-slice-rows",
        "20",
    ];
    let (code, out, err) = validate(&[&base[..], &["--max-disparity", "0.05"]].concat());
    assert_eq!(code, 1, "{out}{err}");
    assert!(out.contains("disparity 0.100000 between site=0 ("), "{out}");
    assert!(
        out.contains("and site=2 (") && out.contains("over its maximum 0.05"),
        "{out}"
    );
    let (code, out, err) = validate(&[&base[..], &["--max-disparity", "0.2"]].concat());
    assert_eq!(code, 0, "{out}{err}");
    // A threshold for a slice that is not there is an error (exit 2), not a pass.
    let (code, _, err) = validate(&[&base[..], &["--slice", "site=7=0.9"]].concat());
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("\"site=7\", which the dataset does not have"),
        "{err}"
    );
    // Slice thresholds without slices are refused.
    let (code, _, err) = validate(&[
        "--model",
        &model,
        "--dataset",
        data.to_str().unwrap(),
        "--target",
        "species",
        "--metric",
        "accuracy",
        "--min",
        "0.8",
        "--max-disparity",
        "0.1",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("need --slice-by"), "{err}");
}
