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

/// The ARM token the fake Entra ID issues and the fake ARM takes: a JWT whose claims say a
/// service principal (`oid`, `idtyp = app`), as Entra ID's do.
const ARM_TOKEN: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJvaWQiOiIxMjM0NTY3OC1hYmNkLTRlZjAtOTg3Ni0wMDAwMDAwMGNhZmUiLCJpZHR5cCI6ImFwcCIsInRpZCI6IjAwMDAwMDAwLTAwMDAtMDAwMC0wMDAwLTAwMDAwMDAwMDBhYSJ9.fake-arm-signature";

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
            ARM_TOKEN,
            azure_core::time::OffsetDateTime::now_utc() + azure_core::time::Duration::hours(1),
        ))
    }
}

/// What the fake ARM keeps: resources by path, operations by id, and what it was sent.
///
/// Beyond ARM's generic behaviour it plays AKS where the provider depends on it: a managed
/// cluster gets an FQDN, an OIDC issuer and its system pool as an agent pool; a spot pool
/// gets the taint and eviction policy AKS forces; lists of agent pools and of a resource
/// group's resources; `listClusterUserCredential` answers a kubeconfig for `kube_url`; and
/// Entra ID's token endpoint (`/TENANT/oauth2/v2.0/token`) answers a client secret.
#[derive(Default)]
struct FakeArm {
    resources: HashMap<String, Value>,
    /// Operation id → (resource path, polls left before the end, the end: Ok or an error body).
    operations: HashMap<String, (String, u32, Result<(), Value>)>,
    throttle_next: u32,
    requests: Vec<String>,
    /// Every write: method, path, api-version, body.
    writes: Vec<(String, String, String, Value)>,
    base: String,
    kube_url: String,
}

/// The taint AKS puts on spot pools.
const SPOT_TAINT: &str = "kubernetes.azure.com/scalesetpriority=spot:NoSchedule";

/// What AKS adds to a resource it is sent.
fn aks_defaults(path: &str, r: &mut Value, resources: &mut HashMap<String, Value>) {
    let name = path.rsplit('/').next().unwrap_or("").to_string();
    if path.contains("/agentPools/") {
        r["name"] = json!(name);
        let p = &mut r["properties"];
        p["osSKU"] = json!("Ubuntu");
        if p["scaleSetPriority"] == "Spot" {
            p["scaleSetEvictionPolicy"] = json!("Delete");
            let mut taints = p["nodeTaints"].as_array().cloned().unwrap_or_default();
            if !taints.contains(&json!(SPOT_TAINT)) {
                taints.push(json!(SPOT_TAINT));
            }
            p["nodeTaints"] = json!(taints);
        }
    } else if path.contains("/userAssignedIdentities/")
        && !path.contains("/federatedIdentityCredentials/")
    {
        r["properties"]["clientId"] = json!(format!("c1e47000-0000-0000-0000-{:012}", name.len()));
        r["properties"]["principalId"] =
            json!(format!("9a1c1000-0000-0000-0000-{:012}", name.len()));
    } else if path.contains("/registries/") && !path.contains("/roleAssignments/") {
        // The login server is the fake itself, which answers the token exchange.
        r["properties"]["loginServer"] = json!(resources_base(resources));
    } else if path.contains("/managedClusters/") {
        r["properties"]["identityProfile"]["kubeletidentity"]["objectId"] =
            json!("9e0f3a6e-kube-let0-0000-000000000001");
        r["properties"]["fqdn"] = json!(format!("{name}-dns-1a2b3c.hcp.westeurope.azmk8s.io"));
        r["properties"]["oidcIssuerProfile"]["issuerUrl"] =
            json!("https://westeurope.oic.prod-aks.azure.com/tenant/1111/");
        for profile in r["properties"]["agentPoolProfiles"]
            .as_array()
            .cloned()
            .unwrap_or_default()
        {
            let pool = profile["name"].as_str().unwrap_or("").to_string();
            let mut props = profile.clone();
            props.as_object_mut().unwrap().remove("name");
            props["provisioningState"] = json!("Succeeded");
            resources.insert(
                format!("{path}/agentPools/{pool}"),
                json!({"id": format!("{path}/agentPools/{pool}"), "name": pool, "properties": props}),
            );
        }
    }
}

/// The fake's own host and port, kept under a key no path has.
fn resources_base(resources: &HashMap<String, Value>) -> String {
    resources
        .get("#base")
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .trim_start_matches("https://")
        .to_string()
}

/// The resources directly below `parent` of one type (`agentPools`), or a resource group's
/// top-level resources.
fn children(resources: &HashMap<String, Value>, parent: &str) -> Vec<Value> {
    let mut keys: Vec<&String> = resources.keys().collect();
    keys.sort();
    keys.into_iter()
        .filter(|k| {
            if let Some(group) = parent.strip_suffix("/resources") {
                k.strip_prefix(&format!("{group}/providers/"))
                    .is_some_and(|rest| rest.split('/').count() == 3)
            } else {
                k.strip_prefix(&format!("{parent}/"))
                    .is_some_and(|rest| !rest.contains('/'))
            }
        })
        .map(|k| resources[k].clone())
        .collect()
}

type Shared = Arc<Mutex<FakeArm>>;

async fn handle(State(s): State<Shared>, req: Request) -> Response {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let api_version = req
        .uri()
        .query()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("api-version=")))
        .unwrap_or("")
        .to_string();
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
    if method == "POST" && path.ends_with("/oauth2/v2.0/token") {
        let form = String::from_utf8_lossy(&body).to_string();
        if !form.contains("client_secret=fake-client-s3cret") {
            return (StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client", "error_description": "AADSTS7000215: Invalid client secret provided.", "error_codes": [7000215]}))).into_response();
        }
        return Json(json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": ARM_TOKEN})).into_response();
    }
    if method == "POST" && path == "/oauth2/exchange" {
        let form = String::from_utf8_lossy(&body).to_string();
        if !form.contains(&format!("access_token={ARM_TOKEN}"))
            || !form.contains("grant_type=access_token")
        {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid ARM token"}]})),
            )
                .into_response();
        }
        st.writes
            .push((method.to_string(), path.clone(), String::new(), json!(form)));
        return Json(json!({"refresh_token": "acr-refresh-token"})).into_response();
    }
    if auth != format!("Bearer {ARM_TOKEN}") {
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
                (
                    [("retry-after", "0")],
                    Json(json!({"status": "InProgress"})),
                )
                    .into_response()
            };
        }
        return match end {
            Ok(()) => {
                if let Some(r) = st.resources.get_mut(&resource) {
                    r["properties"]["provisioningState"] = json!("Succeeded");
                }
                if op.starts_with("del-") || op.starts_with("loc-") {
                    st.resources.remove(&resource);
                    let below = format!("{resource}/");
                    st.resources.retain(|k, _| !k.starts_with(&below));
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
        "GET" if path.ends_with("/providers/Microsoft.Storage/storageAccounts") => {
            let mut all: Vec<Value> = st
                .resources
                .iter()
                .filter(|(k, _)| {
                    k.split_once("/providers/Microsoft.Storage/storageAccounts/")
                        .is_some_and(|(_, name)| !name.contains('/'))
                })
                .map(|(_, v)| v.clone())
                .collect();
            all.sort_by_key(|v| v["id"].to_string());
            Json(json!({"value": all})).into_response()
        }
        "GET" if path.ends_with("/agentPools") || path.ends_with("/resources") => {
            Json(json!({"value": children(&st.resources, &path)})).into_response()
        }
        "GET" => match st.resources.get(&path) {
            Some(r) => Json(r.clone()).into_response(),
            None => (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "ResourceNotFound", "message": format!("{path} not found")}}))).into_response(),
        },
        "PUT" => {
            let sent: Value = serde_json::from_slice(&body).unwrap_or(json!({}));
            st.writes.push((method.to_string(), path.clone(), api_version.clone(), sent.clone()));
            let mut r = sent;
            r["id"] = json!(path);
            let state = if st.resources.contains_key(&path) { "Updating" } else { "Creating" };
            r["properties"]["provisioningState"] = json!(state);
            let name = path.rsplit('/').next().unwrap_or("").to_string();
            let mut resources = std::mem::take(&mut st.resources);
            aks_defaults(&path, &mut r, &mut resources);
            st.resources = resources;
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
        "POST" if path.ends_with("/listClusterUserCredential") => {
            let cluster = path.trim_end_matches("/listClusterUserCredential");
            if !st.resources.contains_key(cluster) {
                return (StatusCode::NOT_FOUND, Json(json!({"error": {"code": "ResourceNotFound", "message": format!("{cluster} not found")}}))).into_response();
            }
            let kubeconfig = format!("apiVersion: v1\nkind: Config\nclusters:\n- name: ml\n  cluster:\n    server: {}\ncontexts:\n- name: ml\n  context:\n    cluster: ml\n    user: clusterUser_ml\ncurrent-context: ml\nusers:\n- name: clusterUser_ml\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: kubelogin\n      args: [get-token, --server-id, 6dae42f8-4368-4678-94ff-3960e28e3630]\n", st.kube_url);
            use base64::Engine as _;
            Json(json!({"kubeconfigs": [{"name": "clusterUser", "value": base64::engine::general_purpose::STANDARD.encode(kubeconfig)}]})).into_response()
        }
        _ => StatusCode::METHOD_NOT_ALLOWED.into_response(),
    }
}

/// A fake ARM on a loopback port, with a certificate for 127.0.0.1 from its own CA; returns
/// its state, its base URL and a client transport that trusts the CA.
fn fake_arm(rt: &tokio::runtime::Runtime) -> (Shared, String, azure_core::http::Transport) {
    let (state, base, transport, _) = fake_arm_with_ca(rt);
    (state, base, transport)
}

/// [`fake_arm`], with the PEM of its CA (for a process that trusts it through
/// `SSL_CERT_FILE`).
fn fake_arm_with_ca(
    rt: &tokio::runtime::Runtime,
) -> (Shared, String, azure_core::http::Transport, String) {
    let state: Shared = Arc::default();
    let app = axum::Router::new()
        .fallback(handle)
        .with_state(state.clone());
    let (base, ca_pem) = crate::common::https::serve(rt, app);
    {
        let mut st = state.lock().unwrap();
        st.base = base.clone();
        st.resources.insert("#base".into(), json!(base));
    }
    let client = reqwest13::Client::builder()
        .tls_certs_only([reqwest13::Certificate::from_pem(ca_pem.as_bytes()).unwrap()])
        .build()
        .unwrap();
    (
        state,
        base,
        azure_core::http::Transport::new(Arc::new(client)),
        ca_pem,
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
        crate::common::skipped(
            "azure contract",
            crate::common::Skip::Missing,
            "MODELPLANE_AZURE_MODELS_PYTHON is not set (`cargo xtask test` installs azure-mgmt-containerservice and sets it)",
        );
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

/// Every body passes Microsoft's models (where the check can run; see [`contract`]).
fn assert_contract(bodies: &[(&str, Value)]) {
    if let Some(verdicts) = contract(bodies) {
        assert_eq!(verdicts.len(), bodies.len(), "{verdicts:?}");
        for ((model, body), verdict) in bodies.iter().zip(&verdicts) {
            assert_eq!(verdict, "ok", "{model} {body}");
        }
    }
}

/// The model of Microsoft's a PUT to `path` is checked against.
fn model_of(path: &str) -> &'static str {
    if path.contains("/roleAssignments/") {
        "authorization:RoleAssignmentCreateParameters"
    } else if path.contains("/federatedIdentityCredentials/") {
        "msi:FederatedIdentityCredential"
    } else if path.contains("/userAssignedIdentities/") {
        "msi:Identity"
    } else if path.contains("/registries/") {
        "containerregistry:Registry"
    } else if path.contains("/agentPools/") {
        "AgentPool"
    } else {
        "ManagedCluster"
    }
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
        gpu_instance: None,
        gpu_driver: None,
        spot_max_price: None,
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
            serde_json::to_value(aks::agent_pool(
                &pool("gpu", "Standard_NC24ads_A100_v4", 1, false),
                None,
            ))
            .unwrap(),
        ),
        (
            "AgentPool",
            serde_json::to_value(aks::agent_pool(&tainted, None)).unwrap(),
        ),
        (
            "AgentPool",
            serde_json::to_value(aks::agent_pool(
                &pool("cpu", "Standard_D8s_v5", 0, false),
                None,
            ))
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

// ---------------------------------------------------------------------------------------------
// Through Terraform, against the fake ARM

const SUBSCRIPTION: &str = "00000000-0000-0000-0000-000000000001";
const TENANT: &str = "00000000-0000-0000-0000-0000000000aa";
const GROUP_PATH: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml-rg";
const CLUSTER_PATH: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml-rg/providers/Microsoft.ContainerService/managedClusters/ml";

/// A fake ARM on loopback for a Terraform run: its state, the provider block that reaches it,
/// and the environment of the run (the service principal's secret for the fake Entra ID, and
/// the fake's CA as the trusted roots).
struct ArmSite {
    state: Shared,
    provider: String,
    env: std::collections::BTreeMap<String, String>,
    _dir: tempfile::TempDir,
    _rt: tokio::runtime::Runtime,
}

fn arm_site(kube_url: &str) -> ArmSite {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (state, base, _, ca) = fake_arm_with_ca(&rt);
    state.lock().unwrap().kube_url = kube_url.to_string();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca).unwrap();
    let provider = format!(
        "provider \"modelplane\" {{\n  azure {{\n    subscription_id = {SUBSCRIPTION:?}\n    tenant_id       = {TENANT:?}\n    resource_group  = \"ml-rg\"\n    location        = \"westeurope\"\n    arm_endpoint    = {base:?}\n  }}\n}}\n"
    );
    let env = [
        ("SSL_CERT_FILE", ca_file.display().to_string()),
        ("AZURE_AUTHORITY_HOST", base.clone()),
        (
            "AZURE_CLIENT_ID",
            "11111111-2222-3333-4444-555555555555".into(),
        ),
        ("AZURE_CLIENT_SECRET", "fake-client-s3cret".into()),
        ("AZURE_TENANT_ID", TENANT.into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    ArmSite {
        state,
        provider,
        env,
        _dir: dir,
        _rt: rt,
    }
}

const GPU_POOL: &str = r#"
  node_pool {
    name          = "gpu"
    purpose       = "inference"
    instance_type = "Standard_NC4as_T4_v3"
    gpu_count     = 1
    min_size      = 1
    max_size      = MAX
    desired_size  = DESIRED
  }
"#;

const SPOT_POOL: &str = r#"
  node_pool {
    name          = "spot"
    purpose       = "inference"
    instance_type = "Standard_NC4as_T4_v3"
    gpu_count     = 1
    spot          = true
    min_size      = 0
    max_size      = 2
    desired_size  = 0
    labels        = { team = "fraud" }
  }
"#;

fn aks_cluster(max: i64, desired: i64, spot: bool) -> String {
    format!(
        r#"
resource "modelplane_gpu_cluster" "aks" {{
  name     = "ml"
  platform = "azure"
  azure {{
    kubernetes_version    = "1.33"
    create_resource_group = true
  }}
{}{}
  partition {{
    purpose = "inference"
    gpus    = 2
  }}
  timeouts {{
    create = "2m"
    update = "2m"
  }}
}}
"#,
        GPU_POOL
            .replace("MAX", &max.to_string())
            .replace("DESIRED", &desired.to_string()),
        if spot { SPOT_POOL } else { "" }
    )
}

/// The pools' PUTs the fake saw.
fn pool_puts(state: &Shared, pool: &str) -> usize {
    state
        .lock()
        .unwrap()
        .writes
        .iter()
        .filter(|(m, p, _, _)| m == "PUT" && p.ends_with(&format!("/agentPools/{pool}")))
        .count()
}

/// The whole life of an AKS cluster through real Terraform against the fake ARM: create (the
/// resource group, the cluster, a GPU pool and a spot GPU pool, the device plugin, the
/// partition), the empty plan after it (AKS's spot taint is no drift), a scale with one
/// throttled request, a pool deleted and another scaled outside Terraform, a pool removed, an
/// import, and destroy in order. Every body sent passes Microsoft's models.
#[test]
fn azure_cluster_lifecycle_on_fake_arm() {
    const ADDR: &str = "modelplane_gpu_cluster.aks";
    use tfplugin::acctest::{attr_equals, plan_action, Check, ImportStep, Shown, Step, TestCase};
    let kube = crate::kubernetes::fake_api_server(vec![
        crate::kubernetes::pool_node(
            "aks-gpu-0",
            "gpu",
            1,
            ("kubernetes.azure.com/agentpool", "gpu"),
        ),
        crate::kubernetes::pool_node(
            "aks-gpu-1",
            "gpu",
            1,
            ("kubernetes.azure.com/agentpool", "gpu"),
        ),
    ]);
    let site = arm_site(&kube.url);
    let p = site.provider.clone();
    let (one, two, scaled) = (
        format!("{p}{}", aks_cluster(3, 1, true)),
        format!("{p}{}", aks_cluster(5, 2, true)),
        format!("{p}{}", aks_cluster(5, 2, false)),
    );
    let (s1, s2, s3, s4, s5, s6) = (
        site.state.clone(),
        site.state.clone(),
        site.state.clone(),
        site.state.clone(),
        site.state.clone(),
        site.state.clone(),
    );
    crate::common::acc(
        "azure_cluster_lifecycle_on_fake_arm",
        TestCase {
            env: site.env.clone(),
            steps: vec![
                Step::new(one)
                    .check(attr_equals(ADDR, "id", "azure/ml"))
                    .check(attr_equals(ADDR, "resource_id", CLUSTER_PATH))
                    .check(attr_equals(
                        ADDR,
                        "hostname",
                        "ml-dns-1a2b3c.hcp.westeurope.azmk8s.io",
                    ))
                    .check(attr_equals(
                        ADDR,
                        "oidc_issuer",
                        "https://westeurope.oic.prod-aks.azure.com/tenant/1111/",
                    ))
                    .check(attr_equals(ADDR, "node_groups.0.name", "gpu"))
                    .check(attr_equals(ADDR, "node_groups.0.capacity_type", "Regular"))
                    .check(attr_equals(
                        ADDR,
                        "node_groups.0.instance_types.0",
                        "Standard_NC4as_T4_v3",
                    ))
                    .check(attr_equals(
                        ADDR,
                        "node_groups.0.taints.0.key",
                        "nvidia.com/gpu",
                    ))
                    .check(attr_equals(ADDR, "node_groups.1.name", "spot"))
                    .check(attr_equals(ADDR, "node_groups.1.capacity_type", "Spot"))
                    .check(attr_equals(ADDR, "node_groups.1.labels.team", "fraud"))
                    .check(attr_equals(ADDR, "device_plugin_version", "v0.17.4"))
                    .check(attr_equals(ADDR, "partition.0.namespace", "ml-inference"))
                    .check(std::sync::Arc::new(move |s: &Shown| {
                        let objects: Vec<String> =
                            serde_json::from_value(s.attr(ADDR, "objects").ok_or("no objects")?)
                                .map_err(|e| e.to_string())?;
                        if !objects.iter().any(|o| o.starts_with("azure:cluster-admin/")) {
                            return Err(format!("no cluster admin role assignment in {objects:?}"));
                        }
                        for want in [
                            "azure:resource-group/ml-rg",
                            "azure:managed-cluster/ml",
                            "azure:agent-pool/gpu",
                            "azure:agent-pool/spot",
                            "apps/v1/DaemonSet/kube-system/nvidia-device-plugin",
                            "v1/Namespace/ml-inference",
                        ] {
                            if !objects.iter().any(|o| o == want) {
                                return Err(format!("{want} not recorded in {objects:?}"));
                            }
                        }
                        // AKS's taint on the spot pool is not shown (so never drift).
                        let taints = s.attr(ADDR, "node_groups.1.taints").ok_or("no taints")?;
                        if taints.to_string().contains("scalesetpriority") {
                            return Err(format!("the spot taint AKS adds is shown: {taints}"));
                        }
                        let kc = s.attr(ADDR, "kubeconfig").ok_or("no kubeconfig")?;
                        let kc = kc.as_str().unwrap_or("");
                        if !kc.contains("kubelogin") || !kc.contains(&kube_url_of(&s1)) {
                            return Err(format!("kubeconfig: {kc}"));
                        }
                        let all = serde_json::to_string(&s.0).unwrap_or_default();
                        if all.contains("s3cret") || all.contains(ARM_TOKEN) {
                            return Err("a secret or a token is in state".into());
                        }
                        let st = s1.lock().unwrap();
                        let pool =
                            &st.resources[&format!("{CLUSTER_PATH}/agentPools/spot")]["properties"];
                        if !pool["nodeTaints"].to_string().contains("scalesetpriority") {
                            return Err(format!("the fake did not taint the spot pool: {pool}"));
                        }
                        Ok(())
                    }) as Check),
                // Scale the GPU pool (one request throttled on the way): only it is sent again.
                Step::new(two.clone())
                    .pre(move |_| {
                        let mut st = s2.lock().unwrap();
                        st.throttle_next = 1;
                    })
                    .plan_check(plan_action(ADDR, "update"))
                    .check(attr_equals(ADDR, "node_groups.0.max_size", 5))
                    .check(attr_equals(ADDR, "node_groups.0.desired_size", 2))
                    .check(std::sync::Arc::new(move |_s: &Shown| {
                        let (gpu, spot) = (pool_puts(&s3, "gpu"), pool_puts(&s3, "spot"));
                        if (gpu, spot) != (2, 1) {
                            return Err(format!("PUTs of gpu and spot: {gpu}, {spot}; want 2, 1"));
                        }
                        Ok(())
                    }) as Check),
                // A pool Azure refuses (quota): the error names the cause and what to do, and
                // the pool is recorded, so the next apply deletes it.
                Step::new(two.replace(
                    "  partition {",
                    "  node_pool {\n    name = \"brokengpu\"\n    purpose = \"inference\"\n    instance_type = \"Standard_NC24ads_A100_v4\"\n    gpu_count = 1\n  }\n  partition {",
                ))
                .expect_error("QuotaExceeded(.|\n)*standardNCSv3Family(.|\n)*request more"),
                // Outside Terraform: the spot pool deleted, the GPU pool scaled to 3. Refresh
                // sees both; the plan puts them back (and the failed pool goes).
                Step::new(two.clone())
                    .pre(move |_| {
                        let mut st = s4.lock().unwrap();
                        st.resources
                            .remove(&format!("{CLUSTER_PATH}/agentPools/spot"));
                        st.resources
                            .get_mut(&format!("{CLUSTER_PATH}/agentPools/gpu"))
                            .unwrap()["properties"]["count"] = json!(3);
                    })
                    .plan_check(plan_action(ADDR, "update"))
                    .check(attr_equals(ADDR, "node_groups.0.desired_size", 2))
                    .check(attr_equals(ADDR, "node_groups.1.name", "spot"))
                    .check(std::sync::Arc::new(move |_s: &Shown| {
                        let st = s6.lock().unwrap();
                        if st.resources.contains_key(&format!("{CLUSTER_PATH}/agentPools/brokengpu")) {
                            return Err("the failed pool is still there".into());
                        }
                        Ok(())
                    }) as Check),
                // A VM size cannot change in place: the error says to rename the pool.
                Step::new(two.replace("Standard_NC4as_T4_v3\"\n    gpu_count     = 1\n    min_size      = 1", "Standard_NC8as_T4_v3\"\n    gpu_count     = 1\n    min_size      = 1"))
                    .expect_error("cannot change in place(.|\n)*VM size(.|\n)*new name"),
                // The spot pool removed from the configuration: deleted.
                Step::new(scaled.clone()).check(std::sync::Arc::new(move |_s: &Shown| {
                    let st = s5.lock().unwrap();
                    if st
                        .resources
                        .contains_key(&format!("{CLUSTER_PATH}/agentPools/spot"))
                    {
                        return Err("the spot pool is still there".into());
                    }
                    Ok(())
                }) as Check),
                // Import by azure/NAME: the cluster, its user pools as node pools.
                Step::new(scaled).import(ImportStep {
                    address: ADDR.into(),
                    id: Some("azure/ml".into()),
                    id_from: None,
                    ignore: vec![
                        "azure".into(),
                        "timeouts".into(),
                        "objects".into(),
                        "node_pool".into(),
                        "partition".into(),
                        "nodes".into(),
                        "cpus".into(),
                        "memory_bytes".into(),
                    ],
                }),
            ],
            check_destroy: Some({
                let st = site.state.clone();
                std::sync::Arc::new(move |_s: &Shown| {
                    let st = st.lock().unwrap();
                    if st.resources.contains_key(CLUSTER_PATH)
                        || st.resources.contains_key(GROUP_PATH)
                    {
                        return Err(format!(
                            "left after destroy: {:?}",
                            st.resources.keys().collect::<Vec<_>>()
                        ));
                    }
                    Ok(())
                }) as Check
            }),
            ..Default::default()
        },
    );
    if !tfplugin::acctest::enabled() {
        return;
    }
    // Every body the provider sent, against Microsoft's models of the api-version it named.
    let writes = site.state.lock().unwrap().writes.clone();
    let mut bodies = Vec::new();
    for (method, path, api, body) in &writes {
        if path == GROUP_PATH {
            continue;
        }
        let model = model_of(path);
        let want = if model.starts_with("authorization:") {
            modelplane_provider::platforms::azure::acr::ROLES_API_VERSION
        } else {
            modelplane_provider::platforms::azure::aks::API_VERSION
        };
        assert_eq!(api, want, "{method} {path}");
        bodies.push((model, body.clone()));
    }
    // The creator is made the cluster's Kubernetes admin (Azure RBAC gives it nothing).
    let admin = writes
        .iter()
        .find(|(_, p, _, _)| {
            p.starts_with(&format!(
                "{CLUSTER_PATH}/providers/Microsoft.Authorization/roleAssignments/"
            ))
        })
        .expect("a cluster admin role assignment");
    assert_eq!(
        admin.3["properties"]["principalId"],
        "12345678-abcd-4ef0-9876-00000000cafe"
    );
    assert_eq!(admin.3["properties"]["principalType"], "ServicePrincipal");
    assert!(admin.3["properties"]["roleDefinitionId"]
        .as_str()
        .unwrap()
        .ends_with("/b1ff04bb-8a4e-4dc4-8eb5-8693973ce19b"));
    assert!(bodies.len() >= 5, "{writes:?}");
    assert_contract(&bodies);
}

fn kube_url_of(state: &Shared) -> String {
    state.lock().unwrap().kube_url.clone()
}

/// Spot GPU nodes that join but never advertise `nvidia.com/gpu` (Azure/AKS #4418): the apply
/// fails after the timeout naming the pool, what joined, and the known cause.
#[test]
fn spot_gpu_nodes_without_gpus_fail_the_apply_naming_the_cause() {
    use modelplane_provider::ids::{ClusterId, PlatformKind};
    use modelplane_provider::platforms::azure::{Azure, Context, Shared};
    use modelplane_provider::platforms::kubernetes::{KubeTarget, Kubernetes};
    use modelplane_provider::platforms::{ClusterSpec, NodePoolSpec, Platform, Timeouts};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (state, base, transport) = fake_arm(&rt);
    state.lock().unwrap().kube_url = "http://fake".into();
    let ctx = Context {
        arm: arm(&base, transport),
        credential: Arc::new(FixedToken),
        resource_group: "ml-rg".into(),
        location: Some("westeurope".into()),
        tenant: None,
    };
    rt.block_on(async {
        // The spot node joined with no GPU allocatable.
        let kube = crate::kubernetes::client_with(
            kube_fake_client::ClientBuilder::new().with_object(crate::kubernetes::pool_node(
                "aks-spot-0",
                "spot",
                0,
                ("kubernetes.azure.com/agentpool", "spot"),
            )),
        )
        .await;
        let cluster = ClusterId::new(PlatformKind::Azure, "ml");
        let az = Azure {
            cluster: cluster.clone(),
            settings: Default::default(),
            context: Shared::of(ctx),
            kube: Kubernetes {
                cluster,
                target: KubeTarget::Client(kube, "http://fake".into()),
            },
            poll: Duration::from_millis(50),
        };
        let spec = ClusterSpec {
            engine: None,
            partitions: vec![],
            pools: vec![NodePoolSpec {
                name: "spot".into(),
                purpose: "inference".into(),
                instance_types: vec!["Standard_NC4as_T4_v3".into()],
                gpu_count: Some(1),
                gpu_type: None,
                min_size: Some(1),
                max_size: Some(2),
                desired_size: Some(1),
                spot: true,
                labels: Default::default(),
                taints: vec![],
                gpu_sharing: None,
                gpu_instance: None,
                gpu_driver: None,
                spot_max_price: None,
            }],
            aws: None,
            azure: Some(modelplane_provider::platforms::azure::ClusterSettings {
                create_resource_group: true,
                ..Default::default()
            }),
            timeouts: Timeouts {
                create: Duration::from_secs(2),
                update: Duration::from_secs(2),
                delete: Duration::from_secs(2),
            },
        };
        let mut diags = tfplugin::Diagnostics::default();
        let (e, partial) = az
            .converge_cluster(&spec, &[], &mut diags)
            .await
            .expect_err("no GPUs");
        let e = e.to_string();
        assert!(
            e.contains(
                "node pool \"spot\": 1 node(s) joined, 0 advertise nvidia.com/gpu (wanted 1)"
            ),
            "{e}"
        );
        assert!(e.contains("Azure/AKS #4418"), "{e}");
        let objects = partial.unwrap().objects.unwrap();
        for want in [
            "azure:resource-group/ml-rg",
            "azure:managed-cluster/ml",
            "azure:agent-pool/spot",
        ] {
            assert!(objects.iter().any(|o| o == want), "{want} in {objects:?}");
        }
        assert!(
            objects.iter().any(|o| o.contains("DaemonSet")),
            "{objects:?}"
        );
    });
}

/// What cannot work on AKS is refused at plan, at the attribute, with what to write instead.
/// One plan of many clusters, each wrong in one way, reports every refusal.
#[test]
fn azure_bad_input_is_refused_at_plan() {
    if !tfplugin::acctest::enabled() {
        eprintln!(
            "azure_bad_input_is_refused_at_plan: skipped; acceptance tests run with TF_ACC=1"
        );
        return;
    }
    let (wd, _guard) = crate::common::harness().workdir("azure-bad").unwrap();
    let p = "provider \"modelplane\" {\n  azure {\n    subscription_id = \"s\"\n    resource_group = \"rg\"\n  }\n}\n";
    let cluster = |i: usize, platform: &str, pool: &str, extra: &str| {
        format!("\nresource \"modelplane_gpu_cluster\" \"c{i}\" {{\n  name = \"c{i}\"\n  platform = {platform:?}\n{extra}\n  node_pool {{\n    name = \"gpu\"\n    purpose = \"inference\"\n{pool}\n  }}\n}}\n")
    };
    let cases = [
        (
            "azure",
            "instance_type = \"Standard_NV4as_v4\"\n    gpu_count = 1",
            "",
            "has AMD GPUs",
        ),
        (
            "azure",
            "instance_type = \"Standard_D4s_v5\"\n    gpu_count = 1",
            "",
            "has no GPUs, but gpu_count is 1",
        ),
        (
            "azure",
            "instance_type = \"Standard_NC4as_T4_v3\"\n    gpu_instance = \"MIG1g\"",
            "",
            "cannot be split into MIG1g",
        ),
        (
            "azure",
            "instance_type = \"Standard_NC4as_T4_v3\"\n    spot_max_price = 0.5",
            "",
            "spot_max_price applies to spot pools",
        ),
        (
            "azure",
            "instance_type = \"Standard_NC4as_T4_v3\"\n    spot = true\n    spot_max_price = 0",
            "",
            "is not a price",
        ),
        (
            "azure",
            "instance_types = [\"Standard_NC4as_T4_v3\"]",
            "",
            "an AKS agent pool has one VM size",
        ),
        (
            "azure",
            "gpu_count = 1",
            "",
            "needs instance_type, the VM size",
        ),
        (
            "azure",
            "instance_type = \"NC4as_T4_v3\"",
            "",
            "write it as Azure does",
        ),
        (
            "azure",
            "instance_type = \"Standard_D4s_v5\"",
            "  aws {\n    adopt = true\n  }",
            "the aws block describes an EKS cluster",
        ),
        (
            "kubernetes",
            "",
            "  azure {\n    adopt = true\n  }",
            "the azure block describes an AKS cluster",
        ),
    ];
    let mut main = p.to_string();
    for (i, (platform, pool, extra, _)) in cases.iter().enumerate() {
        main.push_str(&cluster(i, platform, pool, extra));
    }
    main.push_str(
        &cluster(99, "azure", "instance_type = \"Standard_D4s_v5\"", "")
            .replace("name = \"gpu\"", "name = \"GPU_pool\""),
    );
    // An endpoint's azure block: only on azure, with a client ID.
    let endpoint = |i: usize, cluster: &str, client_id: &str| {
        format!("\nresource \"modelplane_endpoint\" \"e{i}\" {{\n  name = \"e{i}\"\n  cluster = {cluster:?}\n  image = \"registry.example/serve@sha256:00\"\n  variant {{\n    name = \"a\"\n    model = \"az/b/m/1\"\n    weight = 100\n  }}\n  azure {{\n    client_id = {client_id:?}\n  }}\n}}\n")
    };
    main.push_str(&endpoint(
        1,
        "kubernetes/onprem",
        "00000000-0000-0000-0000-000000000000",
    ));
    main.push_str(&endpoint(2, "azure/c0", "my-identity"));
    std::fs::write(wd.dir.join("main.tf"), &main).unwrap();
    wd.ok(&["init", "-no-color"]).unwrap();
    let out = wd.run(&["plan", "-no-color"]).unwrap();
    let text = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    assert!(!out.status.success());
    for (_, _, _, want) in
        cases
            .iter()
            .chain([
                &("", "", "", "use 1 to 12 lowercase letters and digits"),
                &("", "", "", "the azure block (the workload identity of the server) applies to endpoints on azure clusters"),
                &("", "", "", "\"my-identity\" is not a client ID"),
            ])
    {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
    // A good one plans: nothing is contacted at plan.
    std::fs::write(
        wd.dir.join("main.tf"),
        format!(
            "{p}{}",
            cluster(
                0,
                "azure",
                "instance_type = \"Standard_NC4as_T4_v3\"\n    gpu_count = 1",
                ""
            )
        ),
    )
    .unwrap();
    let out = wd.run(&["plan", "-no-color"]).unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `modelplane_serving_image` to ACR through real Terraform: the registry created (admin user
/// off), `AcrPull` for the attached cluster's kubelet identity, the login by ACR's token
/// exchange of the ARM token, the push (to a real registry on loopback that takes the
/// exchanged token, as ACR would), the registry deleted outside Terraform and made again, and
/// destroy with `force_delete`. Every body passes Microsoft's models.
#[test]
fn acr_registry_attach_and_push_with_the_token_exchange() {
    const TEST: &str = "acr_registry_attach_and_push_with_the_token_exchange";
    const IMAGE: &str = "modelplane_serving_image.serve";
    use tfplugin::acctest::{attr_equals, plan_action, Check, Shown, Step, TestCase};
    let Some(reg) = crate::common::containers::registry(
        TEST,
        Some((
            modelplane_provider::platforms::azure::acr::TOKEN_USER,
            "acr-refresh-token",
        )),
    ) else {
        return;
    };
    let site = arm_site("https://unused.example");
    let registry_path =
        format!("{GROUP_PATH}/providers/Microsoft.ContainerRegistry/registries/mlregistry01");
    let config = format!(
        r#"{}
resource "modelplane_gpu_cluster" "aks" {{
  name     = "ml"
  platform = "azure"
  azure {{
    create_resource_group = true
  }}
  node_pool {{
    name          = "cpu"
    purpose       = "inference"
    instance_type = "Standard_D4s_v5"
  }}
}}

resource "modelplane_serving_image" "serve" {{
  source     = {:?}
  repository = "{}/ml/modelplane-serve"
  tag        = "acr-test"
  insecure   = true
  acr {{
    registry        = "mlregistry01"
    attach_clusters = [modelplane_gpu_cluster.aks.id]
    force_delete    = true
  }}
}}
"#,
        site.provider,
        crate::common::containers::image_layout()
            .display()
            .to_string(),
        reg.host()
    );
    let host = reg.host();
    let (s1, s2, s3) = (site.state.clone(), site.state.clone(), site.state.clone());
    let (r1, r2, r3) = (
        registry_path.clone(),
        registry_path.clone(),
        registry_path.clone(),
    );
    crate::common::acc(
        TEST,
        TestCase {
            env: site.env.clone(),
            steps: vec![
                Step::new(config.clone())
                    .check(attr_equals(IMAGE, "registry_id", registry_path.clone()))
                    .check(std::sync::Arc::new(move |s: &Shown| {
                        let r = s
                            .attr(IMAGE, "reference")
                            .and_then(|v| v.as_str().map(String::from))
                            .ok_or("no reference")?;
                        if !r.starts_with(&format!("{host}/ml/modelplane-serve@sha256:")) {
                            return Err(format!("reference {r}"));
                        }
                        let st = s1.lock().unwrap();
                        let registry = st.resources.get(&r1).ok_or("no registry")?;
                        if registry["properties"]["adminUserEnabled"] != json!(false) {
                            return Err(format!("admin user: {registry}"));
                        }
                        let role = st
                            .writes
                            .iter()
                            .find(|(m, p, _, _)| {
                                m == "PUT"
                                    && p.starts_with(&format!(
                                        "{r1}/providers/Microsoft.Authorization/roleAssignments/"
                                    ))
                            })
                            .ok_or("no role assignment")?;
                        let props = &role.3["properties"];
                        if props["principalId"] != "9e0f3a6e-kube-let0-0000-000000000001"
                            || !props["roleDefinitionId"]
                                .as_str()
                                .unwrap_or("")
                                .ends_with("/roleDefinitions/7f951dda-4ed3-4680-a7ca-43fe172d538d")
                        {
                            return Err(format!("role assignment: {}", role.3));
                        }
                        if !st.writes.iter().any(|(_, p, _, _)| p == "/oauth2/exchange") {
                            return Err("no token exchange".into());
                        }
                        let all = serde_json::to_string(&s.0).unwrap_or_default();
                        if all.contains("acr-refresh-token") || all.contains(ARM_TOKEN) {
                            return Err("a token is in state".into());
                        }
                        Ok(())
                    }) as Check),
                // The registry deleted outside Terraform: refresh finds the image gone, and the
                // apply makes the registry again and pushes.
                Step::new(config)
                    .pre(move |_| {
                        s2.lock().unwrap().resources.remove(&r2);
                    })
                    .plan_check(plan_action(IMAGE, "create"))
                    .check(std::sync::Arc::new(move |_s: &Shown| {
                        if !s3.lock().unwrap().resources.contains_key(&r3) {
                            return Err("the registry was not made again".into());
                        }
                        Ok(())
                    }) as Check),
            ],
            check_destroy: Some({
                let st = site.state.clone();
                std::sync::Arc::new(move |_s: &Shown| {
                    let st = st.lock().unwrap();
                    if st.resources.contains_key(&registry_path) {
                        return Err("force_delete left the registry".into());
                    }
                    Ok(())
                }) as Check
            }),
            ..Default::default()
        },
    );
    if !tfplugin::acctest::enabled() {
        return;
    }
    let writes = site.state.lock().unwrap().writes.clone();
    let bodies: Vec<(&str, Value)> = writes
        .iter()
        .filter(|(m, _, _, _)| m == "PUT")
        .filter_map(|(_, p, api, b)| {
            if p.contains("/roleAssignments/") {
                assert_eq!(
                    api,
                    modelplane_provider::platforms::azure::acr::ROLES_API_VERSION
                );
                Some(("authorization:RoleAssignmentCreateParameters", b.clone()))
            } else if p.contains("/registries/") {
                assert_eq!(api, modelplane_provider::platforms::azure::acr::API_VERSION);
                Some(("containerregistry:Registry", b.clone()))
            } else {
                None
            }
        })
        .collect();
    assert!(bodies.len() >= 3, "{writes:?}");
    assert_contract(&bodies);
}

/// `blueprints/azure/examples/gpu-inference`, applied through real Terraform against the fake
/// ARM, Azurite for Blob Storage, a real registry on loopback that takes ACR's exchanged
/// token, and a Kubernetes API that plays the cluster (a GPU node in the `gpu` pool,
/// Deployments rolled out): the resource group, the cluster, its agent pools, the device
/// plugin and the partitions, the registry and the image in it, the Blob store, iris's
/// endpoint, and destroy in order. Every body sent passes Microsoft's models.
#[test]
fn blueprint_azure_example_on_fake_arm() {
    const TEST: &str = "blueprint_azure_example_on_fake_arm";
    use crate::common::{containers, emulators};
    use tfplugin::acctest::{attr_equals, Check, Shown, Step, TestCase};
    let Some(azurite) = emulators::azurite(TEST) else {
        return;
    };
    let Some(reg) = containers::registry(
        TEST,
        Some((
            modelplane_provider::platforms::azure::acr::TOKEN_USER,
            "acr-refresh-token",
        )),
    ) else {
        return;
    };
    let kube = crate::kubernetes::fake_api_server_with(
        vec![crate::kubernetes::pool_node(
            "aks-gpu-0",
            "gpu",
            1,
            ("kubernetes.azure.com/agentpool", "gpu"),
        )],
        true,
    );
    let mut site = arm_site(&kube.url);
    site.env
        .insert("AZURE_STORAGE_KEY".into(), emulators::AZURITE_KEY.into());
    let base = site.state.lock().unwrap().base.clone();
    let config = format!(
        "module \"ex\" {{\n  source                  = {:?}\n  subscription_id         = {SUBSCRIPTION:?}\n  resource_group          = \"ml-rg\"\n  storage_account         = {:?}\n  blob_endpoint           = \"{}/{}\"\n  acr_name                = \"mlregistry01\"\n  image_source            = {:?}\n  image_repository        = \"{}/modelplane-serve\"\n  registry_insecure       = true\n  arm_endpoint            = {base:?}\n}}\n",
        crate::common::relative_source("blueprints/azure/examples/gpu-inference"),
        emulators::AZURITE_ACCOUNT,
        azurite.url(),
        emulators::AZURITE_ACCOUNT,
        containers::image_layout().display().to_string(),
        reg.host(),
    );
    const CLUSTER: &str = "module.ex.module.aks.modelplane_gpu_cluster.this";
    const IMAGE: &str = "module.ex.module.aks.modelplane_serving_image.this";
    const EP: &str = "module.ex.module.aks.module.endpoint[\"iris\"].modelplane_endpoint.this";
    let gpu_cluster = CLUSTER_PATH.replace("/managedClusters/ml", "/managedClusters/gpu");
    let registry =
        format!("{GROUP_PATH}/providers/Microsoft.ContainerRegistry/registries/mlregistry01");
    crate::common::acc(
        TEST,
        TestCase {
            env: site.env.clone(),
            steps: vec![Step::new(config)
                .check(attr_equals(CLUSTER, "id", "azure/gpu"))
                .check(attr_equals(CLUSTER, "node_groups.0.name", "gpu"))
                .check(attr_equals(
                    CLUSTER,
                    "node_groups.0.instance_types.0",
                    "Standard_NC4as_T4_v3",
                ))
                .check(attr_equals(CLUSTER, "node_groups.1.name", "dev"))
                .check(attr_equals(
                    CLUSTER,
                    "partition.1.namespace",
                    "gpu-inference",
                ))
                .check(attr_equals(CLUSTER, "device_plugin_version", "v0.17.4"))
                .check(attr_equals(IMAGE, "registry_id", registry.clone()))
                .check(attr_equals(EP, "status", "running"))
                .check(std::sync::Arc::new(move |s: &Shown| {
                    let image = s.attr(EP, "image").ok_or("no image")?;
                    let pushed = s.attr(IMAGE, "reference").ok_or("no reference")?;
                    if image != pushed {
                        return Err(format!("the endpoint runs {image}, not {pushed}"));
                    }
                    Ok(())
                }) as Check)],
            check_destroy: Some({
                let st = site.state.clone();
                std::sync::Arc::new(move |_s: &Shown| {
                    let st = st.lock().unwrap();
                    for gone in [&gpu_cluster, &registry, &GROUP_PATH.to_string()] {
                        if st.resources.contains_key(gone) {
                            return Err(format!("{gone} is still there"));
                        }
                    }
                    Ok(())
                }) as Check
            }),
            ..Default::default()
        },
    );
    if !tfplugin::acctest::enabled() {
        return;
    }
    let writes = site.state.lock().unwrap().writes.clone();
    let bodies: Vec<(&str, Value)> = writes
        .iter()
        .filter(|(m, p, _, _)| m == "PUT" && p != GROUP_PATH)
        .map(|(_, p, _, b)| (model_of(p), b.clone()))
        .collect();
    assert!(bodies.len() >= 5, "{writes:?}");
    assert_contract(&bodies);
    drop(reg);
}

/// The azure blueprint's variables refuse what cannot work, at plan, before anything is asked
/// of Azure: one plan of several module calls, each wrong in one way.
#[test]
fn blueprint_azure_refuses_bad_variables() {
    if !tfplugin::acctest::enabled() {
        eprintln!(
            "blueprint_azure_refuses_bad_variables: skipped; acceptance tests run with TF_ACC=1"
        );
        return;
    }
    let (wd, _guard) = crate::common::harness()
        .workdir("blueprint-azure-bad")
        .unwrap_or_else(|e| panic!("{e}"));
    let cases = [
        (
            "acr_name = \"my-registry\"",
            "acr_name must be 5 to 50 letters and digits",
        ),
        (
            "inference_pool = { vm_size = \"Standard_D4s_v5\" }",
            "must be a GPU VM size",
        ),
        (
            "inference_pool = { min_size = 3, max_size = 2 }",
            "0 <= min_size <= max_size",
        ),
        (
            "store = { account = \"Bad_Account\", container = \"models\" }",
            "must be a storage account name",
        ),
        (
            "partitions = { dev = { gpus = 0 } }",
            "must include \"inference\"",
        ),
    ];
    let mut main = String::from("provider \"modelplane\" {\n  azure {\n    subscription_id = \"s\"\n    resource_group = \"rg\"\n  }\n}\n");
    for (i, (vars, _)) in cases.iter().enumerate() {
        let mut defaults = vec![
            ("acr_name", "acr_name = \"mlregistry01\""),
            (
                "store",
                "store = { account = \"mlmodels\", container = \"models\" }",
            ),
            ("partitions", "partitions = { inference = { gpus = 1 } }"),
        ];
        defaults.retain(|(k, _)| !vars.starts_with(k));
        let rest: Vec<&str> = defaults.iter().map(|(_, v)| *v).collect();
        main.push_str(&format!(
            "module \"bp{i}\" {{\n  source       = {:?}\n  image_source = \"/nonexistent\"\n  {}\n  {vars}\n}}\n",
            crate::common::relative_source("blueprints/azure"),
            rest.join("\n  ")
        ));
    }
    std::fs::write(wd.dir.join("main.tf"), &main).unwrap();
    wd.ok(&["init", "-no-color"]).unwrap();
    let out = wd.run(&["plan", "-no-color"]).unwrap();
    assert!(!out.status.success());
    let text = String::from_utf8_lossy(&out.stderr)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    for (_, want) in cases {
        assert!(text.contains(want), "want {want:?} in:\n{text}");
    }
}

/// The lifecycle against real Azure, when `MODELPLANE_ACC_AZURE_SUBSCRIPTION` names a
/// subscription (credentials from the Azure identity chain: `az login` or a service
/// principal in the environment; `MODELPLANE_ACC_AZURE_LOCATION`, default `eastus`). It creates
/// a resource group, an AKS cluster (free tier; its system pool, one Standard_D4s_v5, about
/// USD 0.19 an hour) with a one-node Standard_NC4as_T4_v3 pool (about USD 0.53 an hour), an ACR
/// Basic registry with the image in it and AcrPull for the cluster; waits for the GPU to be
/// allocatable; and destroys them: about 30 minutes, under USD 1 in all. The subscription
/// needs quota for one NCASv3_T4 VM (4 vCPUs) in the location.
#[test]
fn azure_cluster_on_real_aks() {
    let Some(subscription) = std::env::var_os("MODELPLANE_ACC_AZURE_SUBSCRIPTION") else {
        crate::common::skipped("azure_cluster_on_real_aks", crate::common::Skip::OptIn, "set MODELPLANE_ACC_AZURE_SUBSCRIPTION (and log in with `az login`) to run it against real AKS and ACR (it costs under USD 1)");
        return;
    };
    use tfplugin::acctest::{attr_equals, Step, TestCase};
    let subscription = subscription.to_string_lossy().to_string();
    let location =
        std::env::var("MODELPLANE_ACC_AZURE_LOCATION").unwrap_or_else(|_| "eastus".into());
    let suffix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        % 100_000;
    let config = format!(
        r#"provider "modelplane" {{
  azure {{
    subscription_id = {subscription:?}
    resource_group  = "modelplane-acc-{suffix}"
    location        = {location:?}
  }}
}}

resource "modelplane_gpu_cluster" "aks" {{
  name     = "modelplane-acc"
  platform = "azure"
  azure {{
    create_resource_group = true
  }}
  node_pool {{
    name          = "gpu"
    purpose       = "inference"
    instance_type = "Standard_NC4as_T4_v3"
    gpu_count     = 1
    min_size      = 1
    max_size      = 1
  }}
  partition {{
    purpose = "inference"
    gpus    = 1
  }}
}}

resource "modelplane_serving_image" "serve" {{
  source     = {:?}
  repository = "modelplane-serve"
  acr {{
    registry        = "modelplaneacc{suffix}"
    sku             = "Basic"
    attach_clusters = [modelplane_gpu_cluster.aks.id]
    force_delete    = true
  }}
}}
"#,
        crate::common::containers::image_layout()
            .display()
            .to_string(),
    );
    crate::common::acc(
        "azure_cluster_on_real_aks",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(
                    "modelplane_gpu_cluster.aks",
                    "node_groups.0.status",
                    "Succeeded",
                ))
                .check(std::sync::Arc::new(|s: &tfplugin::acctest::Shown| {
                    // The system pool's node is listed too.
                    let nodes = s
                        .attr("modelplane_gpu_cluster.aks", "nodes")
                        .ok_or("no nodes")?;
                    if !nodes
                        .as_array()
                        .is_some_and(|n| n.iter().any(|n| n["gpus"] == 1))
                    {
                        return Err(format!("no node with a GPU: {nodes}"));
                    }
                    Ok(())
                }) as tfplugin::acctest::Check)],
            ..Default::default()
        },
    );
}

/// An endpoint on an `azure` cluster whose models are in Azure Blob Storage gets its own
/// workload identity: a managed identity federated with the cluster's OIDC issuer for the
/// endpoint's ServiceAccount only, `Storage Blob Data Reader` on the store's container only,
/// the client ID on the ServiceAccount and the webhook's label on the pods. A rolled-back
/// update keeps it; removing the endpoint deletes the identity and the role assignment.
#[test]
fn an_endpoint_reading_blob_gets_its_own_workload_identity() {
    use k8s_openapi::api::apps::v1::Deployment as K8sDeployment;
    use kube::api::Api;
    use modelplane_provider::ids::{ClusterId, PlatformKind};
    use modelplane_provider::platforms::azure::{Azure, Context, Shared};
    use modelplane_provider::platforms::kubernetes::{KubeTarget, Kubernetes};
    use modelplane_provider::platforms::{rollout, EndpointSpec, Platform, Previous};
    use modelplane_serve::config::{EndpointConfig, ModelConfig, ServeConfig, VariantConfig};
    const GPU_CLUSTER: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml-rg/providers/Microsoft.ContainerService/managedClusters/gpu";
    const ACCOUNT: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/data-rg/providers/Microsoft.Storage/storageAccounts/mlmodels";
    const IDENTITY: &str = "/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/ml-rg/providers/Microsoft.ManagedIdentity/userAssignedIdentities/gpu-iris-blob-serve";
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (state, base, transport) = fake_arm(&rt);
    {
        let mut st = state.lock().unwrap();
        st.resources.insert(GPU_CLUSTER.into(), json!({"id": GPU_CLUSTER, "location": "westeurope", "properties": {"provisioningState": "Succeeded", "oidcIssuerProfile": {"enabled": true, "issuerUrl": "https://westeurope.oic.prod-aks.azure.com/tenant/2222/"}}}));
        st.resources.insert(
            ACCOUNT.into(),
            json!({"id": ACCOUNT, "name": "mlmodels", "location": "westeurope"}),
        );
    }
    let ctx = Context {
        arm: arm(&base, transport),
        credential: Arc::new(FixedToken),
        resource_group: "ml-rg".into(),
        location: Some("westeurope".into()),
        tenant: None,
    };
    rt.block_on(async {
        let writes = crate::kubernetes::Writes::default();
        let c = crate::kubernetes::client_recording(kube_fake_client::ClientBuilder::new(), Some(writes.clone())).await;
        crate::kubernetes::apply_partitions(&c, &[crate::kubernetes::partition("inference", 2)], &[]).await;
        // A Deployment whose image is `…/broken@…` never rolls out: an update to it is rolled back.
        let _ctl = crate::kubernetes::controller_unless(c.clone(), |d| {
            d.spec
                .as_ref()
                .and_then(|s| s.template.spec.as_ref())
                .is_some_and(|p| p.containers.iter().any(|c| c.image.as_deref().is_some_and(|i| i.contains("/broken@"))))
        });
        let cluster = ClusterId::new(PlatformKind::Azure, "gpu");
        let az = Azure {
            cluster: cluster.clone(),
            settings: Default::default(),
            context: Shared::of(ctx),
            kube: Kubernetes { cluster, target: KubeTarget::Client(c.clone(), "http://fake".into()) },
            poll: Duration::from_millis(50),
        };
        let spec = EndpointSpec {
            name: "iris-blob".into(),
            serve: ServeConfig {
                repository: "az://mlmodels/models/team-a".into(),
                models: vec![ModelConfig::named("iris", Some("1".to_string()))],
                endpoints: vec![EndpointConfig {
                    name: "iris-blob".into(),
                    variants: vec![VariantConfig { name: "a".into(), model: "iris".into(), version: Some("1".into()), weight: 100, remote: None }],
                    shadow: None,
                    sticky_header: None,
                }],
                ..serde_json::from_value(json!({"repository": ""})).unwrap()
            },
            token: "wi-token-0123456789".into(),
            port: None,
            grpc_port: None,
            image: Some("registry.example/modelplane-serve@sha256:0123".into()),
            container: None,
            kubernetes: Some(modelplane_provider::platforms::kubernetes::workload::Settings {
                rollout_timeout: Some("10s".into()),
                ..Default::default()
            }),
            aws: None,
            azure: None,
            record: json!({}),
            remote_tokens: Default::default(),
        };
        let mut tctx = tfplugin::Ctx::detached();
        let (d, _) = rollout::apply(&az, &spec, None, None, &mut tctx)
            .await
            .unwrap_or_else(|e| panic!("deploy: {e:?}"));
        let objects = d.objects.clone().unwrap_or_default();
        assert!(objects.contains(&"azure:identity/gpu-iris-blob-serve".to_string()), "{objects:?}");
        let role = objects.iter().find_map(|o| o.strip_prefix("azure:role-assignment/")).expect("a role assignment recorded").to_string();
        assert!(role.starts_with(&format!("{ACCOUNT}/blobServices/default/containers/models/providers/Microsoft.Authorization/roleAssignments/")), "{role}");
        let client_id = state.lock().unwrap().resources[IDENTITY]["properties"]["clientId"].as_str().unwrap().to_string();
        {
            let st = state.lock().unwrap();
            let fed = &st.resources[&format!("{IDENTITY}/federatedIdentityCredentials/kubernetes")]["properties"];
            assert_eq!(fed["subject"], "system:serviceaccount:gpu-inference:iris-blob");
            assert_eq!(fed["issuer"], "https://westeurope.oic.prod-aks.azure.com/tenant/2222/");
            assert_eq!(fed["audiences"], json!(["api://AzureADTokenExchange"]));
            let ra = &st.resources[&role]["properties"];
            assert!(ra["roleDefinitionId"].as_str().unwrap().ends_with("/2a2b9908-6ea1-4ae2-8e65-a410df84e7d1"), "{ra}");
        }
        let sa = Api::<k8s_openapi::api::core::v1::ServiceAccount>::namespaced(c.clone(), "gpu-inference").get("iris-blob").await.unwrap();
        assert_eq!(sa.metadata.annotations.unwrap_or_default()["azure.workload.identity/client-id"], client_id);
        let dep = Api::<K8sDeployment>::namespaced(c.clone(), "gpu-inference").get("iris-blob").await.unwrap();
        let labels = dep.spec.unwrap().template.metadata.unwrap().labels.unwrap_or_default();
        assert_eq!(labels.get("azure.workload.identity/use").map(String::as_str), Some("true"));

        // An update that does not roll out is rolled back, and the server keeps its identity.
        let mut broken = spec.clone();
        broken.image = Some("registry.example/broken@sha256:0123".into());
        broken.kubernetes.as_mut().unwrap().rollout_timeout = Some("2s".into());
        let previous = Previous { spec: Some(spec.clone()), deployment: d.clone(), serving: true };
        writes.lock().unwrap().clear();
        let failed = rollout::apply(&az, &broken, Some(&previous), None, &mut tctx)
            .await
            .expect_err("the broken image must not roll out");
        assert!(failed.restored.is_ok(), "rolled back: {failed:?}");
        let applied: Vec<Value> = writes.lock().unwrap().iter().filter(|(_, p, _)| p.ends_with("/serviceaccounts/iris-blob")).map(|(_, _, b)| b.clone()).collect();
        assert_eq!(applied.len(), 2, "the update's apply and the rollback's");
        assert_eq!(applied[1]["metadata"]["annotations"]["azure.workload.identity/client-id"], json!(client_id), "{}", applied[1]);

        az.remove_endpoint("iris-blob", &d).await.unwrap();
        let st = state.lock().unwrap();
        assert!(!st.resources.contains_key(IDENTITY), "the identity is deleted with the endpoint");
        assert!(!st.resources.contains_key(&role), "the role assignment is deleted with the endpoint");
        let bodies: Vec<(&str, Value)> = st
            .writes
            .iter()
            .filter(|(m, p, _, _)| m == "PUT" && !p.contains("/managedClusters/"))
            .map(|(_, p, api, b)| {
                if !p.contains("/roleAssignments/") {
                    assert_eq!(api, modelplane_provider::platforms::azure::identity::IDENTITY_API_VERSION);
                }
                (model_of(p), b.clone())
            })
            .collect();
        drop(st);
        // The create's three, and the update's three again (ARM's PUT is idempotent; an
        // existing role assignment answers RoleAssignmentExists).
        assert_eq!(bodies.len(), 6, "{bodies:?}");
        assert_contract(&bodies);
    });
}
