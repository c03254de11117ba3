//! The load generator against a running server, over both protocols.

use crate::common;

use std::time::Duration;

use common::*;
use modelplane_serve::bench::{run, Protocol, Spec};

fn spec(url: String, protocol: Protocol) -> Spec {
    Spec {
        url,
        model: "iris".into(),
        version: None,
        protocol,
        payload: serde_json::json!({ "inputs": reference("iris")["inputs"] }),
        concurrency: 4,
        duration: None,
        requests: Some(200),
        warmup: Duration::from_millis(100),
        token: None,
        headers: vec![],
        progress: false,
    }
}

#[tokio::test]
async fn counts_requests_and_latencies_over_rest_and_grpc() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    for (url, p) in [
        (format!("http://{}", s.http), Protocol::Rest),
        (format!("http://{}", s.grpc), Protocol::Grpc),
    ] {
        let r = run(&spec(url, p)).await.unwrap();
        assert_eq!(r.requests, 200, "{p:?}");
        assert_eq!(r.errors, 0, "{p:?}: {:?}", r.first_error);
        assert!(
            r.p50_ms > 0.0 && r.p50_ms <= r.p90_ms && r.p90_ms <= r.p99_ms && r.p99_ms <= r.max_ms,
            "{r:?}"
        );
        assert!(r.rps > 0.0);
    }
    // a duration bound stops by time
    let mut sp = spec(format!("http://{}", s.http), Protocol::Rest);
    sp.requests = None;
    sp.duration = Some(Duration::from_millis(300));
    let r = run(&sp).await.unwrap();
    assert!(r.duration_s >= 0.3 && r.duration_s < 2.0, "{r:?}");
}

#[tokio::test]
async fn errors_are_counted_and_explained() {
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let mut sp = spec(format!("http://{}", s.http), Protocol::Rest);
    sp.model = "nope".into();
    sp.requests = Some(20);
    let r = run(&sp).await.unwrap();
    assert_eq!(r.errors, 20);
    assert!(r.first_error.unwrap().contains("404"));
    let e = run(&spec("http://127.0.0.1:1".into(), Protocol::Grpc))
        .await
        .unwrap_err();
    assert!(e.to_string().contains("cannot reach"), "{e}");
}
