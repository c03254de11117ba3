//! The REST infer body decoder (JSON, and the binary tensor extension's JSON header plus raw
//! bytes) must never panic, abort or allocate more than the body holds, whatever the body.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte picks the framing: plain JSON, or a JSON header of the given length.
    let (head, body) = data.split_first().map_or((0, data), |(h, b)| (*h, b));
    let header_len = if head % 2 == 0 { None } else { Some(usize::from(head / 2) % (body.len() + 1)) };
    if let Ok(tensors) = modelplane_serve::rest::decode_infer_body(header_len, body) {
        let elements: usize = tensors.iter().map(|t| t.tensor.len()).sum();
        assert!(elements <= body.len(), "{elements} elements decoded from {} bytes", body.len());
    }
});
