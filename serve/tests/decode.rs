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
