//! Request decoding must never panic, whatever the body: JSON or binary-extension framing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // First byte picks the framing: plain JSON, or a JSON header of the given length.
    let (head, body) = data.split_first().map_or((0, data), |(h, b)| (*h, b));
    let header_len = if head % 2 == 0 { None } else { Some(usize::from(head / 2) % (body.len() + 1)) };
    let _ = modelplane_serve::rest::decode_infer_body(header_len, body);
});
