//! The gRPC infer request decoder: arbitrary protobuf bytes, then raw or typed contents of any
//! datatype and any declared shape. It must never panic, abort or allocate more than the
//! message holds.
#![no_main]

use libfuzzer_sys::fuzz_target;
use modelplane_serve::grpc::pb;
use prost::Message;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = pb::ModelInferRequest::decode(data) else {
        return;
    };
    if let Ok(tensors) = modelplane_serve::grpc::decode_inputs(&req) {
        let elements: usize = tensors.iter().map(|t| t.tensor.len()).sum();
        assert!(elements <= data.len(), "{elements} elements decoded from {} bytes", data.len());
    }
});
