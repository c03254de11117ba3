//! Acceptance tests of `modelplane_model_signature` through real Terraform.

use crate::common;

use common::{acc, repo, repo_path};
use tfplugin::acctest::{attr_equals, Step, TestCase};

const ADDR: &str = "data.modelplane_model_signature.m";

fn config(path: &str) -> String {
    format!("data \"modelplane_model_signature\" \"m\" {{\n  path = {path:?}\n}}\n\noutput \"sha256\" {{ value = data.modelplane_model_signature.m.sha256 }}\n")
}

fn sha256_of(rel: &str) -> String {
    modelplane_serve::signature::file_digest(&repo().join(rel))
        .unwrap()
        .0
}

#[test]
fn model_signature_basic() {
    let model = "examples/quickstart/model/iris-v1.onnx";
    let size = std::fs::metadata(repo().join(model)).unwrap().len();
    acc(
        "model_signature_basic",
        TestCase {
            steps: vec![Step::new(config(&repo_path(model)))
                .check(attr_equals(ADDR, "sha256", sha256_of(model)))
                .check(attr_equals(ADDR, "size_bytes", size))
                .check(attr_equals(ADDR, "opset", 17))
                .check(attr_equals(ADDR, "inputs.#", 1))
                .check(attr_equals(ADDR, "inputs.0.name", "input"))
                .check(attr_equals(ADDR, "inputs.0.datatype", "FP32"))
                .check(attr_equals(
                    ADDR,
                    "inputs.0.shape",
                    serde_json::json!([-1, 4]),
                ))
                .check(attr_equals(ADDR, "outputs.#", 2))
                .check(attr_equals(ADDR, "outputs.0.name", "label"))
                .check(attr_equals(ADDR, "outputs.0.datatype", "INT64"))
                .check(attr_equals(ADDR, "outputs.1.name", "probabilities"))
                .check(attr_equals(
                    ADDR,
                    "outputs.1.shape",
                    serde_json::json!([-1, 3]),
                ))],
            ..Default::default()
        },
    );
}

#[test]
fn model_signature_missing_file() {
    acc(
        "model_signature_missing_file",
        TestCase {
            steps: vec![
                Step::new(config("/nonexistent/dir/model.onnx")).expect_error(
                    "Model file not found(.|\\n)*nonexistent/dir/model.onnx: no such file",
                ),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn model_signature_not_onnx() {
    acc(
        "model_signature_not_onnx",
        TestCase {
            steps: vec![
                Step::new(config(&repo_path("tests/fixtures/not-a-model.onnx")))
                    .expect_error("Not an ONNX model(.|\\n)*is not an ONNX model"),
                Step::new(config(&repo_path("tests/fixtures")))
                    .expect_error("Model path is a directory"),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn model_signature_empty_path_is_caught_at_validate() {
    acc(
        "model_signature_empty_path",
        TestCase {
            steps: vec![Step::new(config("  "))
                .expect_error("Empty model path(.|\\n)*Set `path` to an .onnx file")],
            ..Default::default()
        },
    );
}

/// The path is unknown at plan time (it comes from a resource): the read waits for apply,
/// and once applied the plan is empty.
#[test]
fn model_signature_unknown_path_is_read_at_apply() {
    let model = repo_path("examples/quickstart/model/iris-v1.onnx");
    let cfg = format!(
        "resource \"terraform_data\" \"p\" {{\n  input = {model:?}\n}}\n\n\
         data \"modelplane_model_signature\" \"m\" {{\n  path = terraform_data.p.output\n}}\n"
    );
    acc(
        "model_signature_unknown_path",
        TestCase {
            steps: vec![Step::new(cfg)
                .plan_check(tfplugin::acctest::plan_action("terraform_data.p", "create"))
                .plan_check(tfplugin::acctest::plan_action(ADDR, "read"))
                .check(attr_equals(
                    ADDR,
                    "sha256",
                    sha256_of("examples/quickstart/model/iris-v1.onnx"),
                ))],
            ..Default::default()
        },
    );
}
