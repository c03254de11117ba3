//! Random and mangled bodies never panic the request decoder (the fuzz target's invariant,
//! checked on every test run).

use proptest::prelude::*;

fn valid() -> Vec<u8> {
    br#"{"inputs":[{"name":"input","shape":[1,4],"datatype":"FP32","parameters":{"binary_data_size":16}}]}"#.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..256), hl in prop::option::of(0usize..300)) {
        let _ = modelplane_serve::rest::decode_infer_body(hl, &body);
    }

    #[test]
    fn mangled_valid_requests(cut in 0usize..120, flip in 0usize..120, byte in any::<u8>(), extra in prop::collection::vec(any::<u8>(), 0..40)) {
        let mut b = valid();
        let hl = b.len();
        b.extend(extra);
        if flip < b.len() { b[flip] = byte; }
        b.truncate(cut.max(1).min(b.len()));
        let _ = modelplane_serve::rest::decode_infer_body(Some(hl.min(b.len())), &b);
        let _ = modelplane_serve::rest::decode_infer_body(None, &b);
    }
}

#[test]
fn a_good_binary_request_decodes() {
    let mut b = valid();
    let hl = b.len();
    b.extend(std::iter::repeat_n(0u8, 16));
    let t = modelplane_serve::rest::decode_infer_body(Some(hl), &b).unwrap();
    assert_eq!(t[0].tensor.shape(), &[1, 4]);
    let e = modelplane_serve::rest::decode_infer_body(Some(hl), &b[..b.len() - 1]).unwrap_err();
    assert!(
        e.to_string()
            .contains("binary_data_size 16 is more than the 15 binary bytes left"),
        "{e}"
    );
}

/// Dimensions a hostile client declares: ordinary, zero, negative, and sizes no body holds.
fn dim() -> impl Strategy<Value = i64> {
    prop_oneof![
        0i64..6,
        Just(-1i64),
        Just(1i64 << 20),
        Just(1i64 << 32),
        Just(1i64 << 40),
        Just(1099511627776i64),
        Just(i64::MAX),
    ]
}

const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16",
    "FP32", "FP64", "BYTES",
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// The invariant of the fuzz targets: whatever shapes are declared, a decoded request
    /// holds no more elements than the body has bytes, and nothing panics or aborts.
    #[test]
    fn declared_shapes_never_allocate_beyond_the_body(
        shape in prop::collection::vec(dim(), 0..4),
        dt in 0usize..13,
        numbers in prop::collection::vec(-3i64..300, 0..12),
        raw in prop::option::of(prop::collection::vec(any::<u8>(), 0..48)),
    ) {
        let datatype = DATATYPES[dt];
        let mut input = serde_json::json!({ "name": "x", "shape": shape, "datatype": datatype });
        let mut body;
        let header_len = match &raw {
            Some(bytes) => {
                input["parameters"] = serde_json::json!({ "binary_data_size": bytes.len() });
                let head = serde_json::json!({ "inputs": [input] }).to_string();
                body = head.clone().into_bytes();
                body.extend_from_slice(bytes);
                Some(head.len())
            }
            None => {
                input["data"] = if datatype == "BYTES" {
                    serde_json::json!(numbers.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                } else if datatype == "BOOL" {
                    serde_json::json!(numbers.iter().map(|n| n % 2 == 0).collect::<Vec<_>>())
                } else {
                    serde_json::json!(numbers)
                };
                body = serde_json::json!({ "inputs": [input] }).to_string().into_bytes();
                None
            }
        };
        if let Ok(t) = modelplane_serve::rest::decode_infer_body(header_len, &body) {
            let elements: usize = t.iter().map(|t| t.tensor.len()).sum();
            prop_assert!(elements <= body.len());
            prop_assert!(shape.iter().all(|d| *d >= 0));
        }

        // The same claim over gRPC, as raw contents and as typed contents.
        use modelplane_serve::grpc::pb;
        let tensor = pb::model_infer_request::InferInputTensor {
            name: "x".into(),
            datatype: datatype.into(),
            shape: shape.clone(),
            contents: Some(pb::InferTensorContents {
                int_contents: numbers.iter().map(|n| *n as i32).collect(),
                int64_contents: numbers.clone(),
                uint_contents: numbers.iter().map(|n| n.unsigned_abs() as u32).collect(),
                uint64_contents: numbers.iter().map(|n| n.unsigned_abs()).collect(),
                fp32_contents: numbers.iter().map(|n| *n as f32).collect(),
                fp64_contents: numbers.iter().map(|n| *n as f64).collect(),
                bool_contents: numbers.iter().map(|n| n % 2 == 0).collect(),
                bytes_contents: numbers.iter().map(|n| n.to_string().into_bytes()).collect(),
            }),
            ..Default::default()
        };
        let req = pb::ModelInferRequest {
            model_name: "m".into(),
            inputs: vec![tensor],
            raw_input_contents: raw.clone().into_iter().collect(),
            ..Default::default()
        };
        let size = prost::Message::encoded_len(&req);
        if let Ok(t) = modelplane_serve::grpc::decode_inputs(&req) {
            let elements: usize = t.iter().map(|t| t.tensor.len()).sum();
            prop_assert!(elements <= size);
        }
    }
}
