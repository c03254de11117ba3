//! REST infer bodies that are JSON with a valid shape: the fuzzer mutates the declared shapes,
//! datatypes and data of a structured request, so that huge and inconsistent shapes are
//! reached much more often than from raw bytes.
#![no_main]

use libfuzzer_sys::{arbitrary, fuzz_target};

#[derive(Debug, arbitrary::Arbitrary)]
struct Input {
    name: String,
    datatype: u8,
    shape: Vec<i64>,
    numbers: Vec<f64>,
    strings: Vec<String>,
    binary: Option<Vec<u8>>,
}

const DATATYPES: &[&str] = &[
    "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64", "FP16", "FP32", "FP64", "BYTES",
];

fuzz_target!(|inputs: Vec<Input>| {
    let mut binary = Vec::new();
    let items: Vec<serde_json::Value> = inputs
        .iter()
        .map(|i| {
            let dt = DATATYPES[usize::from(i.datatype) % DATATYPES.len()];
            let mut v = serde_json::json!({ "name": i.name, "datatype": dt, "shape": i.shape });
            match &i.binary {
                Some(b) => {
                    v["parameters"] = serde_json::json!({ "binary_data_size": b.len() });
                    binary.extend_from_slice(b);
                }
                None if dt == "BYTES" => v["data"] = serde_json::json!(i.strings),
                None => v["data"] = serde_json::json!(i.numbers.iter().map(|x| if x.is_finite() { *x } else { 0.0 }).collect::<Vec<_>>()),
            }
            v
        })
        .collect();
    let head = serde_json::json!({ "inputs": items }).to_string();
    let mut body = head.clone().into_bytes();
    body.extend_from_slice(&binary);
    let header_len = (!binary.is_empty()).then_some(head.len());
    if let Ok(tensors) = modelplane_serve::rest::decode_infer_body(header_len, &body) {
        let elements: usize = tensors.iter().map(|t| t.tensor.len()).sum();
        assert!(elements <= body.len(), "{elements} elements decoded from {} bytes", body.len());
    }
});
