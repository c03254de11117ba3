//! Remote variants, against real servers on loopback: REST and gRPC remotes with a token,
//! TLS with a CA, pinning, sticky routing and shadow, metrics with `site`, 502/504 naming the
//! variant, the circuit breaker and the fallback to local variants.

use std::time::Duration;

use modelplane_serve::config::{
    EndpointConfig, RemoteConfig, ServeConfig, ShadowConfig, TlsConfig, VariantConfig,
};
use serde_json::{json, Value};

use crate::common::{config, fixtures, reference, start, Running};

const TOKEN: &str = "cloud-site-token-0123456789";

/// The cloud site: iris served with a token (from a 0600-style file, as endpoints keep it).
async fn cloud(dir: &std::path::Path, tls: Option<TlsConfig>) -> Running {
    let token_file = dir.join("cloud.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models.retain(|m| m.name == "iris");
    cfg.auth.token_file = Some(token_file.display().to_string());
    cfg.tls = tls;
    start(cfg).await
}

fn local(name: &str, weight: u32) -> VariantConfig {
    VariantConfig {
        name: name.into(),
        model: "iris".into(),
        version: None,
        weight,
        remote: None,
    }
}

fn remote(name: &str, weight: u32, r: RemoteConfig) -> VariantConfig {
    VariantConfig {
        name: name.into(),
        model: "iris".into(),
        version: None,
        weight,
        remote: Some(Box::new(r)),
    }
}

fn onprem(variants: Vec<VariantConfig>, shadow: Option<ShadowConfig>) -> ServeConfig {
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models.retain(|m| m.name == "iris");
    cfg.site = Some("onprem".into());
    cfg.endpoints = vec![EndpointConfig {
        name: "flowers".into(),
        variants,
        shadow,
        sticky_header: Some("x-user".into()),
    }];
    cfg
}

fn with_token(url: String, dir: &std::path::Path) -> RemoteConfig {
    RemoteConfig {
        token_file: Some(dir.join("cloud.token").display().to_string()),
        site: Some("cloud".into()),
        ..RemoteConfig::at(url)
    }
}

fn body() -> Value {
    json!({ "inputs": reference("iris")["inputs"] })
}

async fn infer(s: &Running, headers: &[(&str, &str)]) -> (u16, Value) {
    let mut rb = reqwest::Client::new()
        .post(s.url("/v2/models/flowers/infer"))
        .json(&body());
    for (k, v) in headers {
        rb = rb.header(*k, *v);
    }
    let r = rb.send().await.unwrap();
    let code = r.status().as_u16();
    let served = r
        .headers()
        .get("x-modelplane-variant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let mut v: Value = r.json().await.unwrap_or(Value::Null);
    if code == 200 {
        v["served_by"] = json!(served);
    }
    (code, v)
}

/// The variant that answered (the `x-modelplane-variant` response header).
fn variant(v: &Value) -> &str {
    v["served_by"].as_str().unwrap_or_default()
}

async fn metrics(s: &Running) -> String {
    reqwest::get(s.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// The sum of the metric lines that start with `name{` and hold every label; `None` when
/// there is none.
fn metric(text: &str, name: &str, labels: &[&str]) -> Option<f64> {
    let values: Vec<f64> = text
        .lines()
        .filter(|l| l.starts_with(&format!("{name}{{")))
        .filter(|l| labels.iter().all(|x| l.contains(x)))
        .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum())
}

#[tokio::test]
async fn rest_and_grpc_remotes_answer_as_the_local_model_does() {
    let td = tempfile::tempdir().unwrap();
    let c = cloud(td.path(), None).await;
    let s = start(onprem(
        vec![
            local("onprem", 50),
            remote(
                "cloud",
                50,
                with_token(format!("http://{}", c.http), td.path()),
            ),
            remote(
                "cloud-grpc",
                0,
                with_token(format!("grpc://{}", c.grpc), td.path()),
            ),
        ],
        None,
    ))
    .await;
    let (code, here) = infer(&s, &[("x-modelplane-variant", "onprem")]).await;
    assert_eq!(code, 200, "{here}");
    for pinned in ["cloud", "cloud-grpc"] {
        let (code, there) = infer(&s, &[("x-modelplane-variant", pinned)]).await;
        assert_eq!(code, 200, "{pinned}: {there}");
        assert_eq!(variant(&there), pinned);
        assert_eq!(
            there["outputs"][0]["data"], here["outputs"][0]["data"],
            "{pinned}: the remote's labels are the local model's"
        );
        assert_eq!(there["model_version"], here["model_version"]);
        assert_eq!(there["model_name"], "flowers");
    }
    // Weights split between the sites; a sticky key keeps a client on one of them.
    let mut seen = std::collections::BTreeSet::new();
    for _ in 0..40 {
        let (code, r) = infer(&s, &[]).await;
        assert_eq!(code, 200, "{r}");
        seen.insert(variant(&r).to_string());
    }
    assert_eq!(
        seen.iter().map(String::as_str).collect::<Vec<_>>(),
        ["cloud", "onprem"],
        "weight 0 never serves, the others do"
    );
    let (_, first) = infer(&s, &[("x-user", "alice")]).await;
    for _ in 0..10 {
        let (_, again) = infer(&s, &[("x-user", "alice")]).await;
        assert_eq!(variant(&again), variant(&first));
    }
    // The remote's requests are in the same metrics, with their site; the cloud server saw
    // them with the token.
    let m = metrics(&s).await;
    let cloud_ok = metric(
        &m,
        "modelplane_requests_total",
        &["variant=\"cloud\"", "site=\"cloud\"", "status=\"ok\""],
    )
    .unwrap_or(0.0);
    assert!(cloud_ok >= 2.0, "{m}");
    assert!(
        metric(
            &m,
            "modelplane_requests_total",
            &["variant=\"onprem\"", "site=\"onprem\""]
        )
        .is_some(),
        "{m}"
    );
    assert!(
        metric(
            &m,
            "modelplane_request_duration_seconds_count",
            &[
                "variant=\"cloud-grpc\"",
                "protocol=\"rest\"",
                "site=\"cloud\""
            ]
        )
        .is_some(),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "modelplane_remote_circuit_state",
            &["variant=\"cloud\""]
        ),
        Some(0.0),
        "{m}"
    );
    let cm = metrics(&c).await;
    assert!(
        metric(
            &cm,
            "modelplane_requests_total",
            &["variant=\"default\"", "status=\"ok\""]
        )
        .unwrap_or(0.0)
            >= cloud_ok,
        "{cm}"
    );
    // An endpoint's metadata and versions include the remote variants.
    let meta: Value = reqwest::get(s.url("/v2/models/flowers"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["inputs"][0]["name"], "input", "{meta}");
}

#[tokio::test]
async fn a_wrong_token_is_the_remotes_refusal_named_by_variant() {
    let td = tempfile::tempdir().unwrap();
    let c = cloud(td.path(), None).await;
    let wrong = td.path().join("wrong.token");
    std::fs::write(&wrong, "not-the-token").unwrap();
    let s = start(onprem(
        vec![
            local("onprem", 100),
            remote(
                "cloud",
                0,
                RemoteConfig {
                    token_file: Some(wrong.display().to_string()),
                    ..RemoteConfig::at(format!("http://{}", c.http))
                },
            ),
        ],
        None,
    ))
    .await;
    let (code, r) = infer(&s, &[("x-modelplane-variant", "cloud")]).await;
    assert_eq!(code, 502, "{r}");
    let e = r["error"].as_str().unwrap();
    assert!(e.contains("variant cloud") && e.contains("401"), "{e}");
}

#[tokio::test]
async fn remote_over_tls_with_a_ca() {
    let td = tempfile::tempdir().unwrap();
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cp, kp) = (td.path().join("cert.pem"), td.path().join("key.pem"));
    std::fs::write(&cp, cert.pem()).unwrap();
    std::fs::write(&kp, key.serialize_pem()).unwrap();
    let c = cloud(
        td.path(),
        Some(TlsConfig {
            cert_file: cp.clone(),
            key_file: kp,
        }),
    )
    .await;
    let tls = |url: String| RemoteConfig {
        ca_file: Some(cp.clone()),
        ..with_token(url, td.path())
    };
    let s = start(onprem(
        vec![
            local("onprem", 100),
            remote(
                "https",
                0,
                tls(format!("https://localhost:{}", c.http.port())),
            ),
            remote(
                "grpcs",
                0,
                tls(format!("grpcs://localhost:{}", c.grpc.port())),
            ),
            // Without the CA the system's roots do not trust the certificate.
            remote(
                "untrusted",
                0,
                with_token(format!("https://localhost:{}", c.http.port()), td.path()),
            ),
        ],
        None,
    ))
    .await;
    for v in ["https", "grpcs"] {
        let (code, r) = infer(&s, &[("x-modelplane-variant", v)]).await;
        assert_eq!(code, 200, "{v}: {r}");
    }
    let (code, r) = infer(&s, &[("x-modelplane-variant", "untrusted")]).await;
    assert_eq!(code, 502, "{r}");
    assert!(r["error"].as_str().unwrap().contains("certificate"), "{r}");
}

/// A listener that accepts connections and never answers.
async fn silent() -> (std::net::SocketAddr, tokio::task::JoinHandle<()>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((sock, _)) = l.accept().await {
            held.push(sock);
        }
    });
    (addr, h)
}

#[tokio::test]
async fn failing_remotes_answer_502_or_504_open_the_circuit_and_fall_back() {
    // A port nothing listens on, and one that never answers.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed_addr = closed.local_addr().unwrap();
    drop(closed);
    let (hung, _h) = silent().await;
    let down = RemoteConfig {
        breaker_failures: 3,
        breaker_probe_ms: 60_000,
        site: Some("cloud".into()),
        ..RemoteConfig::at(format!("http://{closed_addr}"))
    };
    let s = start(onprem(
        vec![
            local("onprem", 0),
            remote("down", 100, down.clone()),
            remote(
                "slow",
                0,
                RemoteConfig {
                    timeout_ms: Some(300),
                    ..RemoteConfig::at(format!("http://{hung}"))
                },
            ),
            remote(
                "guarded",
                0,
                RemoteConfig {
                    fallback: true,
                    ..down.clone()
                },
            ),
        ],
        None,
    ))
    .await;
    let (code, r) = infer(&s, &[("x-modelplane-variant", "slow")]).await;
    assert_eq!(code, 504, "{r}");
    assert!(r["error"].as_str().unwrap().contains("variant slow"), "{r}");
    for _ in 0..3 {
        let (code, r) = infer(&s, &[("x-modelplane-variant", "down")]).await;
        assert_eq!(code, 502, "{r}");
        assert!(r["error"].as_str().unwrap().contains("variant down"), "{r}");
    }
    let (code, r) = infer(&s, &[("x-modelplane-variant", "down")]).await;
    assert_eq!(code, 502);
    assert!(
        r["error"].as_str().unwrap().contains("circuit"),
        "three failures open the circuit: {r}"
    );
    // With fallback, the request is answered by the local variant (weight 0 or not).
    for _ in 0..5 {
        let (code, r) = infer(&s, &[("x-modelplane-variant", "guarded")]).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(variant(&r), "onprem");
    }
    let m = metrics(&s).await;
    assert_eq!(
        metric(
            &m,
            "modelplane_remote_circuit_state",
            &["variant=\"down\"", "site=\"cloud\""]
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "modelplane_remote_circuit_state",
            &["variant=\"guarded\""]
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "modelplane_remote_fallbacks_total",
            &["variant=\"guarded\""]
        ),
        Some(5.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "modelplane_requests_total",
            &["variant=\"down\"", "status=\"bad_gateway\""]
        ),
        Some(4.0),
        "{m}"
    );
}

#[tokio::test]
async fn the_circuit_closes_when_the_remote_comes_back() {
    let td = tempfile::tempdir().unwrap();
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = closed.local_addr().unwrap();
    drop(closed);
    let token_file = td.path().join("cloud.token");
    std::fs::write(&token_file, TOKEN).unwrap();
    let s = start(onprem(
        vec![
            local("onprem", 100),
            remote(
                "cloud",
                0,
                RemoteConfig {
                    breaker_failures: 2,
                    breaker_probe_ms: 300,
                    ..with_token(format!("http://{addr}"), td.path())
                },
            ),
        ],
        None,
    ))
    .await;
    for _ in 0..2 {
        let (code, _) = infer(&s, &[("x-modelplane-variant", "cloud")]).await;
        assert_eq!(code, 502);
    }
    let (_, r) = infer(&s, &[("x-modelplane-variant", "cloud")]).await;
    assert!(r["error"].as_str().unwrap().contains("circuit"), "{r}");
    // The remote comes back on its address; after the probe interval one request probes it
    // and closes the circuit.
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models.retain(|m| m.name == "iris");
    cfg.http = addr;
    cfg.auth.token_file = Some(token_file.display().to_string());
    let _c = start(cfg).await;
    tokio::time::sleep(Duration::from_millis(350)).await;
    let (code, r) = infer(&s, &[("x-modelplane-variant", "cloud")]).await;
    assert_eq!(code, 200, "{r}");
    assert_eq!(
        metric(
            &metrics(&s).await,
            "modelplane_remote_circuit_state",
            &["variant=\"cloud\""]
        ),
        Some(0.0)
    );
}

#[tokio::test]
async fn a_remote_shadow_sees_the_traffic_and_never_answers_it() {
    let td = tempfile::tempdir().unwrap();
    let c = cloud(td.path(), None).await;
    let s = start(onprem(
        vec![local("onprem", 100)],
        Some(ShadowConfig {
            model: "iris".into(),
            version: None,
            remote: Some(Box::new(with_token(
                format!("http://{}", c.http),
                td.path(),
            ))),
        }),
    ))
    .await;
    for _ in 0..6 {
        let (code, r) = infer(&s, &[]).await;
        assert_eq!(code, 200, "{r}");
        assert_eq!(variant(&r), "onprem");
    }
    let mut seen = 0.0;
    for _ in 0..50 {
        let m = metrics(&s).await;
        seen = metric(
            &m,
            "modelplane_requests_total",
            &["variant=\"shadow\"", "site=\"cloud\"", "status=\"ok\""],
        )
        .unwrap_or(0.0);
        if seen >= 6.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen, 6.0);
}

#[tokio::test]
async fn bad_remote_settings_are_refused_naming_the_variant() {
    let mut cfg = onprem(
        vec![
            local("onprem", 100),
            remote("cloud", 0, RemoteConfig::at("ftp://example.com")),
        ],
        None,
    );
    let e = cfg.check().unwrap_err();
    assert!(e.contains("variant cloud") && e.contains("ftp"), "{e}");
    cfg.endpoints[0].variants[1].remote = Some(Box::new(RemoteConfig {
        token_env: Some("MODELPLANE_TEST_UNSET_TOKEN_VARIABLE".into()),
        ..RemoteConfig::at("http://127.0.0.1:9")
    }));
    assert!(cfg.check().is_ok());
    cfg.strict = true;
    let e = modelplane_serve::app::App::start(cfg, None)
        .await
        .err()
        .expect("an unset token variable is refused at start");
    assert!(
        e.to_string()
            .contains("MODELPLANE_TEST_UNSET_TOKEN_VARIABLE")
            && e.to_string().contains("variant cloud"),
        "{e}"
    );
    // Unknown fields in a remote are refused by the configuration file's parser.
    let bad: Result<ServeConfig, _> = serde_json::from_value(json!({
        "repository": "/x",
        "endpoints": [{"name": "e", "variants": [{"name": "v", "model": "m", "weight": 1,
            "remote": {"url": "http://x:1", "tokn_file": "/t"}}]}]
    }));
    assert!(bad.unwrap_err().to_string().contains("tokn_file"));
}

/// tritonclient and kserve's clients, unmodified, against a server whose every model is an
/// endpoint served by another server (REST remotes for some, gRPC for the others): every
/// datatype, shape and output of the fixtures travels both hops and comes back as the model
/// answers it.
#[tokio::test]
async fn stock_clients_through_remote_variants() {
    let Ok(python) = std::env::var("MODELPLANE_CLIENTS_PYTHON") else {
        eprintln!("skipped: set MODELPLANE_CLIENTS_PYTHON to a Python with tritonclient and kserve (cargo xtask test does)");
        return;
    };
    let backend = start(config(fixtures().join("repo").to_str().unwrap())).await;
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.endpoints = cfg
        .models
        .iter()
        .enumerate()
        .map(|(i, m)| EndpointConfig {
            name: m.name.clone(),
            variants: vec![remote(
                "far",
                100,
                RemoteConfig::at(if i % 2 == 0 {
                    format!("http://{}", backend.http)
                } else {
                    format!("grpc://{}", backend.grpc)
                }),
            )],
            shadow: None,
            sticky_header: None,
        })
        .map(|mut e| {
            e.variants[0].model = e.name.clone();
            e
        })
        .collect();
    cfg.models.clear();
    let proxy = start(cfg).await;
    crate::common::oip_clients_pass(&python, proxy.http, proxy.grpc).await;
    let m = metrics(&proxy).await;
    for model in ["iris", "digits_cnn", "two_io"] {
        assert!(
            metric(
                &m,
                "modelplane_requests_total",
                &[
                    &format!("model=\"{model}\""),
                    "variant=\"far\"",
                    "status=\"ok\""
                ]
            )
            .unwrap_or(0.0)
                > 0.0,
            "{model}: {m}"
        );
    }
}
