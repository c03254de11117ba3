//! The Open Inference Protocol over REST (JSON and binary) and gRPC, against onnxruntime's
//! reference outputs for the fixture models, and every malformed request we could think of.

use crate::common;

use common::*;
use modelplane_serve::grpc::pb;
use serde_json::{json, Value};

fn le_bytes(datatype: &str, data: &[Value]) -> Vec<u8> {
    match datatype {
        "FP32" => data
            .iter()
            .flat_map(|x| (x.as_f64().unwrap() as f32).to_le_bytes())
            .collect(),
        "FP64" => data
            .iter()
            .flat_map(|x| x.as_f64().unwrap().to_le_bytes())
            .collect(),
        "INT64" => data
            .iter()
            .flat_map(|x| x.as_i64().unwrap().to_le_bytes())
            .collect(),
        d => panic!("fixture datatype {d}"),
    }
}

fn from_le(datatype: &str, raw: &[u8]) -> Vec<f64> {
    match datatype {
        "FP32" => raw
            .chunks(4)
            .map(|c| f64::from(f32::from_le_bytes(c.try_into().unwrap())))
            .collect(),
        "FP64" => raw
            .chunks(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap()))
            .collect(),
        "INT64" => raw
            .chunks(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()) as f64)
            .collect(),
        d => panic!("output datatype {d}"),
    }
}

#[tokio::test]
async fn rest_json_matches_onnxruntime() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let client = reqwest::Client::new();
    for m in MODELS {
        let r = reference(m);
        let body = json!({ "id": format!("req-{m}"), "inputs": r["inputs"] });
        let resp = client
            .post(s.url(&format!("/v2/models/{m}/infer")))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{m}");
        let v: Value = resp.json().await.unwrap();
        assert_eq!(v["id"], format!("req-{m}"), "request id echoed");
        assert_eq!(v["model_name"], *m);
        assert_eq!(v["model_version"], "1");
        for want in r["outputs"].as_array().unwrap() {
            let got = v["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|o| o["name"] == want["name"])
                .unwrap();
            assert_eq!(got["datatype"], want["datatype"], "{m}");
            assert_eq!(got["shape"], want["shape"], "{m}");
            close(
                &as_f64s(&got["data"]),
                &as_f64s(&want["data"]),
                &format!("{m}.{}", want["name"]),
            );
        }
    }
}

#[tokio::test]
async fn rest_binary_extension_both_ways() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let client = reqwest::Client::new();
    for m in MODELS {
        let r = reference(m);
        let mut binary = Vec::new();
        let inputs: Vec<Value> = r["inputs"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                let raw = le_bytes(i["datatype"].as_str().unwrap(), i["data"].as_array().unwrap());
                let entry = json!({ "name": i["name"], "shape": i["shape"], "datatype": i["datatype"], "parameters": { "binary_data_size": raw.len() } });
                binary.extend(raw);
                entry
            })
            .collect();
        let head =
            json!({ "inputs": inputs, "parameters": { "binary_data_output": true } }).to_string();
        let mut body = head.clone().into_bytes();
        body.extend(&binary);
        let resp = client
            .post(s.url(&format!("/v2/models/{m}/infer")))
            .header("Inference-Header-Content-Length", head.len().to_string())
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{m}");
        let hlen: usize = resp.headers()["inference-header-content-length"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        let bytes = resp.bytes().await.unwrap();
        let v: Value = serde_json::from_slice(&bytes[..hlen]).unwrap();
        let mut rest = &bytes[hlen..];
        for o in v["outputs"].as_array().unwrap() {
            let n = o["parameters"]["binary_data_size"].as_u64().unwrap() as usize;
            assert!(o.get("data").is_none());
            let (mine, tail) = rest.split_at(n);
            rest = tail;
            let want = r["outputs"]
                .as_array()
                .unwrap()
                .iter()
                .find(|w| w["name"] == o["name"])
                .unwrap();
            close(
                &from_le(o["datatype"].as_str().unwrap(), mine),
                &as_f64s(&want["data"]),
                &format!("{m} binary {}", o["name"]),
            );
        }
        assert!(rest.is_empty());
    }
}

async fn grpc_client(
    s: &Running,
) -> pb::grpc_inference_service_client::GrpcInferenceServiceClient<tonic::transport::Channel> {
    pb::grpc_inference_service_client::GrpcInferenceServiceClient::connect(format!(
        "http://{}",
        s.grpc
    ))
    .await
    .unwrap()
}

#[tokio::test]
async fn grpc_raw_and_typed_contents() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let mut c = grpc_client(&s).await;
    assert!(
        c.server_live(pb::ServerLiveRequest {})
            .await
            .unwrap()
            .into_inner()
            .live
    );
    assert!(
        c.server_ready(pb::ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
    let md = c
        .server_metadata(pb::ServerMetadataRequest {})
        .await
        .unwrap()
        .into_inner();
    assert!(md.extensions.contains(&"binary_tensor_data".to_string()));
    for m in MODELS {
        let r = reference(m);
        let meta = c
            .model_metadata(pb::ModelMetadataRequest {
                name: m.to_string(),
                version: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(meta.inputs.len(), r["inputs"].as_array().unwrap().len());
        for typed in [false, true] {
            let mut req = pb::ModelInferRequest {
                model_name: m.to_string(),
                id: "g1".into(),
                ..Default::default()
            };
            for i in r["inputs"].as_array().unwrap() {
                let data = i["data"].as_array().unwrap();
                let mut t = pb::model_infer_request::InferInputTensor {
                    name: i["name"].as_str().unwrap().into(),
                    datatype: i["datatype"].as_str().unwrap().into(),
                    shape: i["shape"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|d| d.as_i64().unwrap())
                        .collect(),
                    ..Default::default()
                };
                if typed {
                    t.contents = Some(pb::InferTensorContents {
                        fp32_contents: data.iter().map(|x| x.as_f64().unwrap() as f32).collect(),
                        ..Default::default()
                    });
                } else {
                    req.raw_input_contents
                        .push(le_bytes(i["datatype"].as_str().unwrap(), data));
                }
                req.inputs.push(t);
            }
            let resp = c.model_infer(req).await.unwrap().into_inner();
            assert_eq!(resp.id, "g1");
            assert_eq!(
                resp.raw_output_contents.len(),
                resp.outputs.len(),
                "outputs come back as raw contents"
            );
            for (o, raw) in resp.outputs.iter().zip(&resp.raw_output_contents) {
                let want = r["outputs"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .find(|w| w["name"] == o.name.as_str())
                    .unwrap();
                close(
                    &from_le(&o.datatype, raw),
                    &as_f64s(&want["data"]),
                    &format!("{m} grpc {}", o.name),
                );
            }
        }
    }
    // errors map to gRPC codes
    let e = c
        .model_infer(pb::ModelInferRequest {
            model_name: "nope".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!(e.code(), tonic::Code::NotFound);
    let bad = pb::ModelInferRequest {
        model_name: "iris".into(),
        inputs: vec![pb::model_infer_request::InferInputTensor {
            name: "input".into(),
            datatype: "FP32".into(),
            shape: vec![1, 4],
            ..Default::default()
        }],
        raw_input_contents: vec![vec![0u8; 12]],
        ..Default::default()
    };
    let e = c.model_infer(bad).await.unwrap_err();
    assert_eq!(e.code(), tonic::Code::InvalidArgument);
    assert!(
        e.message().contains("needs 16 bytes, got 12"),
        "{}",
        e.message()
    );
}

#[tokio::test]
async fn requested_outputs_are_filtered_and_ids_generated() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let r = reference("iris");
    let body = json!({ "inputs": r["inputs"], "outputs": [{ "name": "label" }] });
    let v: Value = reqwest::Client::new()
        .post(s.url("/v2/models/iris/infer"))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["outputs"].as_array().unwrap().len(), 1);
    assert_eq!(v["outputs"][0]["name"], "label");
    assert_eq!(
        v["id"].as_str().unwrap().len(),
        36,
        "a generated id when none was sent"
    );
}

async fn expect_error(s: &Running, path: &str, body: reqwest::Body, status: u16, needle: &str) {
    let resp = reqwest::Client::new()
        .post(s.url(path))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), status, "{path} {needle}");
    assert_eq!(resp.headers()["content-type"], "application/json");
    let v: Value = resp.json().await.unwrap();
    let msg = v["error"].as_str().unwrap();
    assert!(msg.contains(needle), "{msg:?} should contain {needle:?}");
}

#[tokio::test]
async fn malformed_requests_get_clear_errors() {
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.limits.max_body_bytes = 4096;
    let s = start(cfg).await;
    let j = |v: Value| reqwest::Body::from(v.to_string());
    let inp = |name: &str, shape: Value, dt: &str, data: Value| json!({ "inputs": [{ "name": name, "shape": shape, "datatype": dt, "data": data }] });
    expect_error(
        &s,
        "/v2/models/iris/infer",
        reqwest::Body::from("{not json"),
        400,
        "invalid inference request JSON",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(inp("x", json!([1, 4]), "FP32", json!([1, 2, 3, 4]))),
        400,
        "has no input \"x\"",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(inp("input", json!([1, 3]), "FP32", json!([1, 2, 3]))),
        400,
        "has shape [1, 3], the model expects [-1, 4]",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(inp("input", json!([1, 4]), "FP64", json!([1, 2, 3, 4]))),
        400,
        "datatype FP64, the model expects FP32",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(inp("input", json!([1, 4]), "FP32", json!([1, 2, 3]))),
        400,
        "needs 4 elements, data has 3",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(inp("input", json!([1, 4]), "FLOAT", json!([1, 2, 3, 4]))),
        400,
        "unknown datatype \"FLOAT\"",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(inp("input", json!([1, 4]), "FP32", json!(["a", 2, 3, 4]))),
        400,
        "element 0",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(json!({ "inputs": [] })),
        400,
        "no inputs",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(json!({ "inputs": [{ "name": "input", "shape": [1, 4], "datatype": "FP32" }] })),
        400,
        "neither data nor binary_data_size",
    )
    .await;
    let r = reference("iris");
    expect_error(
        &s,
        "/v2/models/iris/infer",
        j(json!({ "inputs": r["inputs"], "outputs": [{ "name": "nope" }] })),
        400,
        "has no output \"nope\"",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/nope/infer",
        j(json!({ "inputs": r["inputs"] })),
        404,
        "unknown model \"nope\"",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/versions/9/infer",
        j(json!({ "inputs": r["inputs"] })),
        404,
        "has no version \"9\"",
    )
    .await;
    expect_error(
        &s,
        "/v2/models/iris/infer",
        reqwest::Body::from(vec![b' '; 5000]),
        413,
        "over the limit of 4096 bytes",
    )
    .await;
    // the server still answers after all of that
    let ok = reqwest::Client::new()
        .post(s.url("/v2/models/iris/infer"))
        .json(&json!({ "inputs": r["inputs"] }))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}

#[tokio::test]
async fn health_metadata_and_metrics() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let c = reqwest::Client::new();
    assert_eq!(
        c.get(s.url("/v2/health/live"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!({ "live": true })
    );
    assert_eq!(
        c.get(s.url("/v2/health/ready"))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
        json!({ "ready": true })
    );
    let v: Value = c
        .get(s.url("/v2"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["name"], "modelplane-serve");
    let md: Value = c
        .get(s.url("/v2/models/two_io/versions/1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(md["inputs"][0]["shape"], json!([-1, 3]));
    assert_eq!(md["outputs"][1]["datatype"], "FP64");
    let ready = c.get(s.url("/v2/models/iris/ready")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let r = reference("iris");
    c.post(s.url("/v2/models/iris/infer"))
        .json(&json!({ "inputs": r["inputs"] }))
        .send()
        .await
        .unwrap();
    let m = c
        .get(s.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(m.contains("modelplane_requests_total{model=\"iris\",protocol=\"rest\",site=\"local\",status=\"ok\",variant=\"default\",version=\"1\"} 1"), "{m}");
    assert!(m.contains("modelplane_model_load_seconds{model=\"digits_cnn\",version=\"1\"}"));
    assert!(m.contains("modelplane_queue_duration_seconds_bucket"));
    assert!(m.contains("modelplane_compute_duration_seconds_bucket"));
    assert!(m.contains("modelplane_batch_size_bucket"));
    assert!(m.contains("modelplane_inflight_requests 0"));
    // promtool, when installed, must accept the exposition
    if let Ok(mut child) = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(m.as_bytes()).unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "promtool check metrics: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
