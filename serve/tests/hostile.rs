//! Hostile and mistaken requests: every client mistake is answered 4xx / a client-fault gRPC
//! status naming the input, nothing aborts or exhausts the server, and 500 is never the
//! answer to a client's mistake. Each case was a way to take the server down or to get a
//! misleading 500 before.

use crate::common;

use common::*;
use modelplane_serve::grpc::pb;
use serde_json::{json, Value};

fn server_config() -> modelplane_serve::config::ServeConfig {
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models
        .push(modelplane_serve::config::ModelConfig::named(
            "free_hw_cnn",
            None,
        ));
    cfg.models
        .push(modelplane_serve::config::ModelConfig::named("simple", None));
    cfg.limits.max_body_bytes = 1 << 20;
    cfg
}

/// A REST body with a JSON header of `head` and `binary` bytes after it.
fn binary(head: Value, bin: &[u8]) -> (String, Vec<u8>) {
    let h = head.to_string();
    let mut body = h.clone().into_bytes();
    body.extend_from_slice(bin);
    (h.len().to_string(), body)
}

struct Case {
    what: &'static str,
    model: &'static str,
    /// Header length for the binary extension, when the body is binary.
    header_len: Option<String>,
    body: Vec<u8>,
    status: u16,
    /// Words the answer must contain: the input's name, and what was expected or given.
    needles: &'static [&'static str],
}

fn json_case(
    what: &'static str,
    model: &'static str,
    body: Value,
    status: u16,
    needles: &'static [&'static str],
) -> Case {
    Case {
        what,
        model,
        header_len: None,
        body: body.to_string().into_bytes(),
        status,
        needles,
    }
}

fn one(name: &str, shape: Value, dt: &str, data: Value) -> Value {
    json!({ "inputs": [{ "name": name, "shape": shape, "datatype": dt, "data": data }] })
}

fn rest_cases() -> Vec<Case> {
    let iris_row = json!([5.1, 3.5, 1.4, 0.2]);
    let mut cases = vec![
        json_case(
            "a huge declared shape with four numbers",
            "iris",
            one(
                "input",
                json!([1099511627776u64, 4]),
                "FP32",
                iris_row.clone(),
            ),
            400,
            &["\"input\"", "[1099511627776, 4]", "too large"],
        ),
        json_case(
            "a shape whose element count overflows",
            "iris",
            one(
                "input",
                json!([i64::MAX, i64::MAX]),
                "FP32",
                iris_row.clone(),
            ),
            400,
            &["\"input\"", "too large"],
        ),
        json_case(
            "a zero dimension beside an absurd one",
            "iris",
            one("input", json!([0, 4294967296u64, 4]), "FP32", json!([])),
            400,
            &["\"input\"", "too large"],
        ),
        json_case(
            "a negative dimension",
            "iris",
            one("input", json!([-1, 4]), "FP32", iris_row.clone()),
            400,
            &["\"input\"", "negative"],
        ),
        json_case(
            "a huge BYTES shape in JSON",
            "iris",
            one("input", json!([1u64 << 40]), "BYTES", json!(["a"])),
            400,
            &["\"input\"", "too large"],
        ),
        json_case(
            "the wrong datatype",
            "iris",
            one("input", json!([1, 4]), "INT64", json!([1, 2, 3, 4])),
            400,
            &["\"input\"", "INT64", "FP32"],
        ),
        json_case(
            "the wrong rank",
            "iris",
            one("input", json!([4]), "FP32", iris_row.clone()),
            400,
            &["\"input\"", "[4]", "[-1, 4]"],
        ),
        json_case(
            "the wrong fixed dimension",
            "iris",
            one("input", json!([2, 2]), "FP32", iris_row.clone()),
            400,
            &["\"input\"", "[2, 2]", "[-1, 4]"],
        ),
        json_case(
            "an input the model does not have",
            "iris",
            one("features", json!([1, 4]), "FP32", iris_row.clone()),
            400,
            &["\"features\"", "\"input\""],
        ),
        json_case(
            "an input given twice",
            "iris",
            json!({ "inputs": [
                { "name": "input", "shape": [1, 4], "datatype": "FP32", "data": iris_row },
                { "name": "input", "shape": [1, 4], "datatype": "FP32", "data": iris_row },
            ] }),
            400,
            &["\"input\"", "twice"],
        ),
        json_case(
            "a missing input",
            "two_io",
            one("a", json!([1, 3]), "FP32", json!([1, 2, 3])),
            400,
            &["\"b\"", "missing"],
        ),
        json_case(
            "inputs whose batch sizes differ",
            "two_io",
            json!({ "inputs": [
                { "name": "a", "shape": [2, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6] },
                { "name": "b", "shape": [3, 3], "datatype": "FP32", "data": [1, 2, 3, 4, 5, 6, 7, 8, 9] },
            ] }),
            400,
            &["\"a\"", "\"b\"", "disagree", "2 vs 3"],
        ),
        json_case(
            "fewer numbers than the shape needs",
            "iris",
            one("input", json!([2, 4]), "FP32", iris_row.clone()),
            400,
            &["\"input\"", "needs 8 elements, data has 4"],
        ),
        json_case(
            "a string where a number belongs",
            "iris",
            one("input", json!([1, 4]), "FP32", json!(["x", 1, 2, 3])),
            400,
            &["\"input\"", "element 0"],
        ),
        json_case(
            "an INT32 out of range",
            "simple",
            json!({ "inputs": [
                { "name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": [4294967296u64, 0,0,0,0,0,0,0,0,0,0,0,0,0,0,0] },
                { "name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": [0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0] },
            ] }),
            400,
            &["\"INPUT0\"", "INT32"],
        ),
        json_case(
            "an image too small for a 3x3 convolution",
            "free_hw_cnn",
            one("image", json!([1, 3, 1, 5]), "FP32", json!(vec![0.0; 15])),
            400,
            &["too small", "[1, 3, 1, 5]"],
        ),
        json_case(
            "an image of absurd size",
            "free_hw_cnn",
            one("image", json!([1, 3, 1u64 << 31, 0]), "FP32", json!([])),
            400,
            &["\"image\"", "too large"],
        ),
        json_case(
            "an unknown datatype",
            "iris",
            one("input", json!([1, 4]), "FLOAT32", iris_row.clone()),
            400,
            &["\"input\"", "FLOAT32", "FP32"],
        ),
        json_case(
            "a shape that is not a list of integers",
            "iris",
            json!({ "inputs": [{ "name": "input", "shape": "1x4", "datatype": "FP32", "data": iris_row }] }),
            400,
            &["invalid inference request JSON", "inputs[0].shape"],
        ),
    ];
    let (hl, body) = binary(
        json!({ "inputs": [{ "name": "input", "shape": [1099511627776u64], "datatype": "BYTES", "parameters": { "binary_data_size": 0 } }] }),
        &[],
    );
    cases.push(Case {
        what: "a huge binary BYTES shape with no bytes",
        model: "iris",
        header_len: Some(hl),
        body,
        status: 400,
        needles: &["\"input\"", "too large"],
    });
    let (hl, body) = binary(
        json!({ "inputs": [{ "name": "input", "shape": [4], "datatype": "BYTES", "parameters": { "binary_data_size": 8 } }] }),
        &[255, 255, 255, 255, 0, 0, 0, 0],
    );
    cases.push(Case {
        what: "a BYTES element longer than the bytes sent",
        model: "iris",
        header_len: Some(hl),
        body,
        status: 400,
        needles: &["\"input\""],
    });
    let (hl, body) = binary(
        json!({ "inputs": [{ "name": "input", "shape": [1u64 << 61, 4], "datatype": "FP64", "parameters": { "binary_data_size": 32 } }] }),
        &[0; 32],
    );
    cases.push(Case {
        what: "a binary shape whose byte count overflows",
        model: "iris",
        header_len: Some(hl),
        body,
        status: 400,
        needles: &["\"input\"", "too large"],
    });
    let (hl, body) = binary(
        json!({ "inputs": [{ "name": "input", "shape": [1, 4], "datatype": "FP32", "parameters": { "binary_data_size": 15 } }] }),
        &[0; 15],
    );
    cases.push(Case {
        what: "binary data one byte short",
        model: "iris",
        header_len: Some(hl),
        body,
        status: 400,
        needles: &["\"input\"", "needs 16 bytes, got 15"],
    });
    cases.push(Case {
        what: "a header length past the body",
        model: "iris",
        header_len: Some("999".into()),
        body: b"{}".to_vec(),
        status: 400,
        needles: &["Inference-Header-Content-Length is 999"],
    });
    cases.push(Case {
        what: "a header length that is not a number",
        model: "iris",
        header_len: Some("ten".into()),
        body: b"{}".to_vec(),
        status: 400,
        needles: &["Inference-Header-Content-Length"],
    });
    cases.push(Case {
        what: "a body over the limit",
        model: "iris",
        header_len: None,
        body: vec![b' '; (1 << 20) + 1],
        status: 413,
        needles: &["limits.max_body_bytes"],
    });
    cases
}

async fn internal_errors(s: &Running) -> f64 {
    let text = reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("modelplane_requests_total") && l.contains("status=\"internal\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn every_client_mistake_over_rest_is_a_4xx_naming_the_input() {
    let s = start(server_config()).await;
    let c = reqwest::Client::new();
    for case in rest_cases() {
        let mut r = c
            .post(s.url(&format!("/v2/models/{}/infer", case.model)))
            .body(case.body.clone());
        if let Some(hl) = &case.header_len {
            r = r.header("inference-header-content-length", hl);
        }
        let resp = r.send().await.unwrap_or_else(|e| {
            panic!(
                "{}: the server did not answer ({e}); did it die?",
                case.what
            )
        });
        let status = resp.status().as_u16();
        let v: Value = resp.json().await.unwrap();
        let msg = v["error"].as_str().unwrap_or_default().to_string();
        assert_eq!(status, case.status, "{}: {msg}", case.what);
        for n in case.needles {
            assert!(msg.contains(n), "{}: {msg:?} should name {n:?}", case.what);
        }
    }
    // Nothing was a server fault, and the server still serves.
    assert_eq!(internal_errors(&s).await, 0.0);
    let r = reference("iris");
    let ok = c
        .post(s.url("/v2/models/iris/infer"))
        .json(&json!({ "inputs": r["inputs"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

fn grpc_input(name: &str, dt: &str, shape: Vec<i64>) -> pb::model_infer_request::InferInputTensor {
    pb::model_infer_request::InferInputTensor {
        name: name.into(),
        datatype: dt.into(),
        shape,
        ..Default::default()
    }
}

#[tokio::test]
async fn every_client_mistake_over_grpc_is_invalid_argument_naming_the_input() {
    let s = start(server_config()).await;
    let mut c = pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(format!(
        "http://{}",
        s.grpc
    ))
    .await
    .unwrap();
    let req = |model: &str, inputs, raw: Vec<Vec<u8>>| pb::ModelInferRequest {
        model_name: model.into(),
        inputs,
        raw_input_contents: raw,
        ..Default::default()
    };
    let typed = |mut i: pb::model_infer_request::InferInputTensor,
                 contents: pb::InferTensorContents| {
        i.contents = Some(contents);
        i
    };
    let cases: Vec<(&str, pb::ModelInferRequest, &[&str])> = vec![
        (
            "a huge shape with raw contents",
            req(
                "iris",
                vec![grpc_input("input", "FP32", vec![1 << 40, 4])],
                vec![vec![0; 16]],
            ),
            &["\"input\"", "too large"],
        ),
        (
            "a huge BYTES shape with raw contents",
            req(
                "iris",
                vec![grpc_input("input", "BYTES", vec![1 << 40])],
                vec![vec![]],
            ),
            &["\"input\"", "too large"],
        ),
        (
            "a huge BYTES shape with typed contents",
            req(
                "iris",
                vec![typed(
                    grpc_input("input", "BYTES", vec![1 << 30]),
                    pb::InferTensorContents {
                        bytes_contents: vec![b"a".to_vec()],
                        ..Default::default()
                    },
                )],
                vec![],
            ),
            &["\"input\"", "BYTES"],
        ),
        (
            "typed contents of another datatype",
            req(
                "iris",
                vec![typed(
                    grpc_input("input", "FP32", vec![1, 4]),
                    pb::InferTensorContents {
                        int64_contents: vec![1, 2, 3, 4],
                        ..Default::default()
                    },
                )],
                vec![],
            ),
            &["\"input\"", "needs 16 bytes, got 0"],
        ),
        (
            "raw contents one byte short",
            req(
                "iris",
                vec![grpc_input("input", "FP32", vec![1, 4])],
                vec![vec![0; 15]],
            ),
            &["\"input\"", "needs 16 bytes, got 15"],
        ),
        (
            "inputs whose batch sizes differ",
            req(
                "two_io",
                vec![
                    grpc_input("a", "FP32", vec![2, 3]),
                    grpc_input("b", "FP32", vec![3, 3]),
                ],
                vec![vec![0; 24], vec![0; 36]],
            ),
            &["\"a\"", "\"b\"", "disagree"],
        ),
        (
            "the wrong datatype",
            req(
                "iris",
                vec![grpc_input("input", "FP64", vec![1, 4])],
                vec![vec![0; 32]],
            ),
            &["\"input\"", "FP64", "FP32"],
        ),
        (
            "an image too small for a 3x3 convolution",
            req(
                "free_hw_cnn",
                vec![grpc_input("image", "FP32", vec![1, 3, 1, 1])],
                vec![vec![0; 12]],
            ),
            &["too small"],
        ),
        (
            "more raw contents than inputs",
            req(
                "iris",
                vec![grpc_input("input", "FP32", vec![1, 4])],
                vec![vec![0; 16], vec![]],
            ),
            &["raw_input_contents has 2 entries for 1 inputs"],
        ),
        (
            "an INT8 out of range in typed contents",
            req(
                "iris",
                vec![typed(
                    grpc_input("input", "INT8", vec![1]),
                    pb::InferTensorContents {
                        int_contents: vec![1000],
                        ..Default::default()
                    },
                )],
                vec![],
            ),
            &["\"input\"", "INT8"],
        ),
    ];
    for (what, r, needles) in cases {
        let e = c.model_infer(r).await.expect_err(what);
        assert_eq!(
            e.code(),
            tonic::Code::InvalidArgument,
            "{what}: {}",
            e.message()
        );
        for n in needles {
            assert!(
                e.message().contains(n),
                "{what}: {:?} should name {n:?}",
                e.message()
            );
        }
    }
    assert_eq!(internal_errors(&s).await, 0.0);
    let ok = c
        .model_infer(req(
            "iris",
            vec![grpc_input("input", "FP32", vec![1, 4])],
            vec![[5.1f32, 3.5, 1.4, 0.2]
                .iter()
                .flat_map(|x| x.to_le_bytes())
                .collect()],
        ))
        .await
        .unwrap();
    assert_eq!(ok.get_ref().outputs[0].shape, vec![1]);
}
