//! The Azure Resource Manager client against a fake ARM served over TLS (azure_core's
//! bearer-token policy refuses plain HTTP): tokens sent, throttling (429 with `Retry-After`)
//! retried, long-running operations followed through `Azure-AsyncOperation` and `Location`
//! to success or to the operation's error, deletes waited out.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use modelplane_provider::platforms::azure::arm::{Arm, ArmError};

#[derive(Debug)]
struct FixedToken;

#[tfplugin::async_trait]
impl azure_core::credentials::TokenCredential for FixedToken {
    async fn get_token(
        &self,
        scopes: &[&str],
        _options: Option<azure_core::credentials::TokenRequestOptions<'_>>,
    ) -> azure_core::Result<azure_core::credentials::AccessToken> {
        assert_eq!(scopes, ["https://management.azure.com/.default"]);
        Ok(azure_core::credentials::AccessToken::new(
            "fake-arm-token",
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// What the fake ARM keeps: resources by path, operations by id, and what it was sent.
#[derive(Default)]
struct FakeArm {
    resources: HashMap<String, Value>,
    /// Operation id → (resource path, polls left before the end, the end: Ok or an error body).
    operations: HashMap<String, (String, u32, Result<(), Value>)>,
    throttle_next: u32,
    requests: Vec<String>,
    base: String,
}

type Shared = Arc<Mutex<FakeArm>>;

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let auth = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap_or_default();
    let mut st = s.lock().unwrap();
    st.requests.push(format!("{method} {path}"));
    if auth != "Bearer fake-arm-token" {
        return (StatusCode::UNAUTHORIZED, "no token").into_response();
    }
    if st.throttle_next > 0 {
        st.throttle_next -= 1;
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "0")],
            Json(json!({"error": {"code": "TooManyRequests", "message": "slow down"}})),
        )
            .into_response();
    }
    let base = st.base.clone();
    if let Some(op) = path.strip_prefix("/operations/") {
        let Some((resource, left, end)) = st.operations.get(op).cloned() else {
            return StatusCode::NOT_FOUND.into_response();
        };
        let location = op.starts_with("loc-");
        if left > 0 {
            st.operations
                .insert(op.to_string(), (resource, left - 1, end));
            return if location {
                (StatusCode::ACCEPTED, [("retry-after", "0")]).into_response()
            } else {
                Json(json!({"status": "InProgress"})).into_response()
            };
        }
        return match end {
            Ok(()) => {
                if let Some(r) = st.resources.get_mut(&resource) {
                    r["properties"]["provisioningState"] = json!("Succeeded");
                }
                if op.starts_with("del-") || op.starts_with("loc-") {
                    st.resources.remove(&resource);
                }
                if location {
                    StatusCode::OK.into_response()
                } else {
                    Json(json!({"status": "Succeeded"})).into_response()
                }
            }
            Err(e) => {
                if let Some(r) = st.resources.get_mut(&resource) {
                    r["properties"]["provisioningState"] = json!("Failed");
                }
                Json(json!({"status": "Failed", "error": e})).into_response()
            }
        };
    }
    match method.as_str() {
        "GET" => match st.resources.get(&path) {
            Some(r) => Json(r.clone()).into_response(),
            None => (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "ResourceNotFound", "message": format!("{path} not found")}}))).into_response(),
        },
        "PUT" => {
            let mut r: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            r["id"] = json!(path);
            r["properties"]["provisioningState"] = json!("Creating");
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            st.resources.insert(path.clone(), r.clone());
            let id = format!("put-{name}");
            let end = if name.starts_with("broken") {
                Err(json!({"code": "QuotaExceeded", "message": "Operation could not be completed as it results in exceeding approved standardNCSv3Family Cores quota.", "details": [{"code": "Quota", "message": "Current limit: 0"}]}))
            } else {
                Ok(())
            };
            // `slow…` never finishes.
            let polls = if name.starts_with("slow") { u32::MAX } else { 2 };
            st.operations.insert(id.clone(), (path, polls, end));
            (
                StatusCode::CREATED,
                [("azure-asyncoperation", format!("{base}/operations/{id}")), ("retry-after", "0".into())],
                Json(r),
            )
                .into_response()
        }
        "DELETE" => {
            if !st.resources.contains_key(&path) {
                return StatusCode::NO_CONTENT.into_response();
            }
            let id = format!("loc-{}", path.rsplit('/').next().unwrap_or(""));
            st.operations.insert(id.clone(), (path, 1, Ok(())));
            (StatusCode::ACCEPTED, [("location", format!("{base}/operations/{id}")), ("retry-after", "0".into())]).into_response()
        }
        "POST" if path.ends_with("/listClusterUserCredential") => Json(json!({"kubeconfigs": [{"name": "clusterUser", "value": "YXBpVmVyc2lvbjogdjE="}]})).into_response(),
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// A fake ARM on a loopback port, with a certificate for 127.0.0.1 from its own CA; returns
/// its state, its base URL and a client transport that trusts the CA.
fn fake_arm(rt: &tokio::runtime::Runtime) -> (Shared, String, azure_core::http::Transport) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let state: Shared = Arc::default();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    let base = rt.block_on(async {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("https://{}", listener.local_addr().unwrap());
        tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    if let Ok(tls) = acceptor.accept(tcp).await {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(
                                hyper_util::rt::TokioIo::new(tls),
                                hyper_util::service::TowerToHyperService::new(app),
                            )
                            .await;
                    }
                });
            }
        });
        base
    });
    state.lock().unwrap().base = base.clone();
    let client = reqwest13::Client::builder()
        .tls_certs_only([reqwest13::Certificate::from_pem(ca_cert.pem().as_bytes()).unwrap()])
        .build()
        .unwrap();
    (
        state,
        base,
        azure_core::http::Transport::new(Arc::new(client)),
    )
}

const API: &str = "2025-01-01";

fn arm(base: &str, transport: azure_core::http::Transport) -> Arm {
    let mut a = Arm::new(
        Arc::new(FixedToken),
        base,
        "00000000-0000-0000-0000-000000000001",
        Some(transport),
    )
    .unwrap();
    a.poll = Duration::from_millis(10);
    a
}

#[test]
fn arm_follows_operations_retries_throttling_and_names_failures() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (state, base, transport) = fake_arm(&rt);
    let a = arm(&base, transport);
    let thing = format!("{}/providers/Microsoft.Test/things/one", a.group_path("rg"));
    let deadline = || Instant::now() + Duration::from_secs(20);
    rt.block_on(async {
        // Nothing yet.
        assert_eq!(a.get::<Value>(&thing, API).await.unwrap(), None);

        // Throttled once, then created through two InProgress polls: the resource comes back
        // Succeeded.
        state.lock().unwrap().throttle_next = 1;
        let r: Value = a
            .put(
                &thing,
                API,
                &json!({"location": "westeurope", "properties": {"count": 2}}),
                deadline(),
            )
            .await
            .unwrap();
        assert_eq!(r["properties"]["provisioningState"], "Succeeded");
        assert_eq!(r["properties"]["count"], 2);
        let seen = state.lock().unwrap().requests.clone();
        assert_eq!(
            seen.iter().filter(|r| r.starts_with("PUT ")).count(),
            2,
            "the throttled PUT is sent again: {seen:?}"
        );
        assert!(
            seen.iter()
                .filter(|r| r.contains("/operations/put-one"))
                .count()
                >= 3,
            "{seen:?}"
        );

        // An operation that fails: its code and message, details included.
        let broken = format!(
            "{}/providers/Microsoft.Test/things/broken",
            a.group_path("rg")
        );
        match a
            .put::<_, Value>(&broken, API, &json!({"properties": {}}), deadline())
            .await
        {
            Err(ArmError::Failed { code, message }) => {
                assert_eq!(code, "QuotaExceeded");
                assert!(
                    message.contains("standardNCSv3Family") && message.contains("Current limit: 0"),
                    "{message}"
                );
            }
            other => panic!("expected the operation's error, got {other:?}"),
        }

        // A POST action.
        let creds: Value = a
            .post(&format!("{thing}/listClusterUserCredential"), API)
            .await
            .unwrap();
        assert_eq!(creds["kubeconfigs"][0]["name"], "clusterUser");

        // Delete through a Location operation, waited until the resource is gone; again is
        // not an error.
        a.delete(&thing, API, deadline()).await.unwrap();
        assert_eq!(a.get::<Value>(&thing, API).await.unwrap(), None);
        a.delete(&thing, API, deadline()).await.unwrap();

        // A deadline that passes while the operation runs: the error says it is still
        // running.
        let slow = format!(
            "{}/providers/Microsoft.Test/things/slow",
            a.group_path("rg")
        );
        match a
            .put::<_, Value>(
                &slow,
                API,
                &json!({"properties": {}}),
                Instant::now() + Duration::from_millis(300),
            )
            .await
        {
            Err(ArmError::TimedOut(why)) => assert!(why.contains("still running"), "{why}"),
            other => panic!("expected a timeout, got {other:?}"),
        }
    });
}

#[test]
fn arm_refuses_plain_http() {
    let a = Arm::new(Arc::new(FixedToken), "http://127.0.0.1:9", "s", None).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    match rt.block_on(a.get::<Value>("/subscriptions/s", API)) {
        Err(ArmError::Transport(e)) => assert!(e.contains("non-TLS"), "{e}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Checks bodies with Microsoft's models (`azure_contract.py` on PyPI
/// azure-mgmt-containerservice, in the venv `cargo xtask test` makes); one verdict per body.
fn contract(bodies: &[(&str, Value)]) -> Option<Vec<String>> {
    let Some(python) = std::env::var_os("MODELPLANE_AZURE_MODELS_PYTHON") else {
        let msg = "azure contract: MODELPLANE_AZURE_MODELS_PYTHON is not set (`cargo xtask test` installs azure-mgmt-containerservice and sets it)";
        if std::env::var_os("CI").is_some() {
            panic!("{msg}");
        }
        eprintln!("{msg}; skipped");
        return None;
    };
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/azure_contract.py");
    let mut child = std::process::Command::new(python)
        .arg(script)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("run azure_contract.py");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().unwrap();
        for (model, body) in bodies {
            writeln!(stdin, "{}", json!({"model": model, "body": body})).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "azure_contract.py: {out:?}");
    Some(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(String::from)
            .collect(),
    )
}

/// Every body the AKS code sends passes Microsoft's models of the api-version it targets:
/// a new cluster, and agent pools (GPU on demand, GPU spot with labels and taints, CPU). A
/// misnamed field is caught (the check is shown failing on one).
#[test]
fn aks_bodies_pass_microsofts_models() {
    use modelplane_provider::platforms::azure::aks;
    use modelplane_provider::platforms::{NodePoolSpec, Taint};
    let pool = |name: &str, vm: &str, gpus: i64, spot: bool| NodePoolSpec {
        name: name.into(),
        purpose: "inference".into(),
        instance_types: vec![vm.into()],
        gpu_count: Some(gpus),
        gpu_type: None,
        min_size: Some(0),
        max_size: Some(4),
        desired_size: Some(1),
        spot,
        labels: [("team".to_string(), "fraud".to_string())].into(),
        taints: vec![],
        gpu_sharing: None,
    };
    let mut tainted = pool("spot", "Standard_NC4as_T4_v3", 1, true);
    tainted.taints = vec![Taint {
        key: "dedicated".into(),
        value: Some("ml".into()),
        effect: "NoSchedule".into(),
    }];
    let cluster = serde_json::to_value(aks::managed_cluster(
        "ml-prod",
        "westeurope",
        Some("1.33"),
        "Standard_D4s_v5",
    ))
    .unwrap();
    let bodies = vec![
        ("ManagedCluster", cluster.clone()),
        (
            "AgentPool",
            serde_json::to_value(aks::agent_pool(&pool(
                "gpu",
                "Standard_NC24ads_A100_v4",
                1,
                false,
            )))
            .unwrap(),
        ),
        (
            "AgentPool",
            serde_json::to_value(aks::agent_pool(&tainted)).unwrap(),
        ),
        (
            "AgentPool",
            serde_json::to_value(aks::agent_pool(&pool("cpu", "Standard_D8s_v5", 0, false)))
                .unwrap(),
        ),
    ];
    let mut wrong = cluster;
    wrong["properties"]["oidcIssuer"] = json!({"enabled": true});
    let mut all = bodies.clone();
    all.push(("ManagedCluster", wrong));
    let Some(verdicts) = contract(&all) else {
        return;
    };
    assert_eq!(verdicts.len(), all.len(), "{verdicts:?}");
    for ((model, body), verdict) in bodies.iter().zip(&verdicts) {
        assert_eq!(verdict, "ok", "{model} {body}");
    }
    assert!(
        verdicts[bodies.len()].contains("oidcIssuer: not a field"),
        "a misnamed field must fail the check: {}",
        verdicts[bodies.len()]
    );
    // What the spot pool asks for, beyond the schema: the spot settings AKS would force.
    let spot = &bodies[2].1["properties"];
    assert_eq!(spot["scaleSetEvictionPolicy"], "Delete");
    assert_eq!(spot["nodeTaints"], json!(["dedicated=ml:NoSchedule"]));
}
