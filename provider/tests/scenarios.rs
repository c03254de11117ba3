//! The endpoint scenarios every platform runs, written once: create, update in place, an SLO
//! miss rolled back, import, the endpoint disappearing out of band and coming back, destroy.
//! They drive a platform as the resources do: through the `Platform` trait and the rollout
//! policy (`platforms::rollout`). A platform joins by adding a fixture below.
//!
//! | fixture | platform | what runs |
//! |---|---|---|
//! | [`local`] | `local` | real server processes of this checkout's provider binary |
//! | [`container`] | `container` | real containers of the bundled image, pushed to a real registry, run by podman (skipped, saying so, without podman or the registry) |
//! | [`kubernetes`] | `kubernetes` | the in-memory API server, with a stand-in Deployment controller |
//! | [`aws`], [`azure`] | `aws`, `azure` | the same, through the cloud platform (a given IRSA role, a given workload identity) |

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;

use modelplane_provider::ids::{ClusterId, PlatformKind};
use modelplane_provider::platforms::rollout::{self, Benchmark, Slo, Stage};
use modelplane_provider::platforms::{
    container,
    kubernetes::{KubeTarget, Kubernetes},
    local, Deployment, EndpointSpec, Observed, Platform, Previous,
};
use modelplane_serve::config::{EndpointConfig, ModelConfig, ServeConfig, VariantConfig};
use tfplugin::Ctx;

type Check = Box<dyn Fn(&Observed) -> bool + Send + Sync>;
type Act = Box<dyn Fn(String) -> Pin<Box<dyn Future<Output = ()> + Send>> + Send + Sync>;
type Leftovers =
    Box<dyn Fn(Deployment) -> Pin<Box<dyn Future<Output = Vec<String>> + Send>> + Send + Sync>;

/// What a platform brings to the scenarios.
struct Fixture {
    platform: Box<dyn Platform>,
    /// The store the endpoint serves from, as its server names it.
    repository: String,
    image: Option<String>,
    container: Option<container::Settings>,
    kubernetes: Option<modelplane_provider::platforms::kubernetes::workload::Settings>,
    /// Takes the endpoint's serving part away behind the provider's back.
    vanish: Act,
    /// What refresh reports after `vanish`.
    vanished: Check,
    /// What refresh reports after destroy.
    destroyed: Check,
    /// Whether anything of the endpoint is left after destroy (names what is).
    leftovers: Leftovers,
    /// Kept alive for the scenarios (temporary folders, the stand-in controller).
    _keep: Box<dyn std::any::Any + Send>,
}

const NAME: &str = "scenario";
const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2]}]}"#;

fn spec(f: &Fixture, weights: (u32, u32)) -> EndpointSpec {
    let variant = |name: &str, weight| VariantConfig {
        name: name.into(),
        model: "iris".into(),
        version: Some("1".into()),
        weight,
        remote: None,
    };
    EndpointSpec {
        name: NAME.into(),
        serve: ServeConfig {
            repository: f.repository.clone(),
            models: vec![ModelConfig::named("iris", Some("1".to_string()))],
            endpoints: vec![EndpointConfig {
                name: NAME.into(),
                variants: vec![variant("a", weights.0), variant("b", weights.1)],
                shadow: None,
                sticky_header: None,
            }],
            strict: true,
            ..serde_json::from_value(serde_json::json!({"repository": ""})).expect("defaults")
        },
        token: "scenario-token-0123456789".into(),
        port: None,
        grpc_port: None,
        image: f.image.clone(),
        container: f.container.clone(),
        kubernetes: f.kubernetes.clone(),
        aws: None,
        azure: None,
        record: serde_json::json!({}),
        remote_tokens: Default::default(),
    }
}

/// The weights the endpoint serves, as refresh finds them.
async fn served(p: &dyn Platform, d: &Deployment) -> Vec<u32> {
    match p.observe_endpoint(NAME, d).await {
        Ok(Observed::Running(r)) => {
            let cfg = r.serves.expect("the served configuration is readable");
            cfg.endpoints[0].variants.iter().map(|v| v.weight).collect()
        }
        other => panic!("expected a running endpoint, got {other:?}"),
    }
}

async fn run(f: Fixture) {
    let p = f.platform.as_ref();
    let mut ctx = Ctx::detached();

    // Create.
    let first = spec(&f, (100, 0));
    let (d1, _) = rollout::apply(p, &first, None, None, &mut ctx)
        .await
        .unwrap_or_else(|e| panic!("create: {e:?}"));
    assert_eq!(served(p, &d1).await, [100, 0]);

    // Update in place: same address, the new split.
    let second = spec(&f, (50, 50));
    let before = Previous {
        spec: Some(first.clone()),
        deployment: d1.clone(),
        serving: true,
    };
    let (d2, _) = rollout::apply(p, &second, Some(&before), None, &mut ctx)
        .await
        .unwrap_or_else(|e| panic!("update: {e:?}"));
    assert_eq!((d2.url.as_str(), d2.port), (d1.url.as_str(), d1.port));
    assert_eq!(served(p, &d2).await, [50, 50]);

    // An SLO miss rolls the change back: the previous split serves again.
    let impossible = Benchmark {
        concurrency: Some(1),
        duration: Some("300ms".into()),
        warmup: Some("0s".into()),
        protocol: None,
        payload: REQUEST.into(),
        slo: Some(Slo {
            p50_ms: None,
            p99_ms: None,
            min_rps: Some(1e9),
            max_error_rate: None,
        }),
    };
    let now = Previous {
        spec: Some(second.clone()),
        deployment: d2.clone(),
        serving: true,
    };
    // The refused change carries a new token too: the previous one must come back with it.
    let mut refused = spec(&f, (10, 90));
    refused.token = "another-token-9876543210".into();
    let failure = rollout::apply(p, &refused, Some(&now), Some(&impossible), &mut ctx)
        .await
        .expect_err("an impossible SLO fails the change");
    assert_eq!(failure.stage, Stage::Benchmark, "{failure:?}");
    assert!(failure.restored.is_ok(), "{failure:?}");
    assert_eq!(served(p, &d2).await, [50, 50], "rolled back");
    assert_eq!(
        p.endpoint_token(NAME, &d2).await.as_deref(),
        Some(second.token.as_str()),
        "the previous token is back"
    );

    // Import finds the endpoint and what it serves.
    let found = p.import_endpoint(NAME).await.expect("import");
    assert_eq!(found.deployment.url, d2.url);
    let weights: Vec<u32> = found.serves.endpoints[0]
        .variants
        .iter()
        .map(|v| v.weight)
        .collect();
    assert_eq!(weights, [50, 50]);

    // Gone out of band: refresh says so, and the next apply brings it back.
    (f.vanish)(NAME.into()).await;
    let seen = p.observe_endpoint(NAME, &d2).await.expect("observe");
    assert!((f.vanished)(&seen), "after vanishing: {seen:?}");
    let back = Previous {
        spec: Some(second.clone()),
        deployment: d2.clone(),
        serving: false,
    };
    let (d3, _) = rollout::apply(p, &second, Some(&back), None, &mut ctx)
        .await
        .unwrap_or_else(|e| panic!("restart: {e:?}"));
    assert_eq!(served(p, &d3).await, [50, 50]);

    // Destroy leaves nothing.
    p.remove_endpoint(NAME, &d3).await.expect("destroy");
    let seen = p.observe_endpoint(NAME, &d3).await.expect("observe");
    assert!((f.destroyed)(&seen), "after destroy: {seen:?}");
    let left = (f.leftovers)(d3).await;
    assert!(left.is_empty(), "left after destroy: {left:?}");
}

fn repo() -> String {
    crate::common::repo()
        .join("tests/fixtures/models/repo")
        .display()
        .to_string()
}

/// `local`: servers run as processes of this checkout's provider binary.
fn local_fixture() -> Fixture {
    let dir = tempfile::tempdir().expect("state folder");
    let state: PathBuf = dir.path().to_path_buf();
    let mut host = local::host(
        ClusterId::new(PlatformKind::Local, "scenarios"),
        &Default::default(),
    );
    host.host.state_dir = state.clone();
    host.host.server_program = Some(PathBuf::from(env!(
        "CARGO_BIN_EXE_terraform-provider-modelplane"
    )));
    let kill_dir = state.clone();
    let left_dir = state.clone();
    Fixture {
        platform: Box::new(host),
        repository: repo(),
        image: None,
        container: None,
        kubernetes: None,
        vanish: Box::new(move |name| {
            let d = local::process::Dir::new(&kill_dir, &name);
            Box::pin(async move {
                let p = d.process().expect("a recorded server");
                // SIGKILL: no drain, as when the machine's OOM killer or a person does it.
                let _ = std::process::Command::new("kill")
                    .args(["-9", &p.pid.to_string()])
                    .status();
                for _ in 0..100 {
                    if !p.alive() {
                        break;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
            })
        }),
        vanished: Box::new(|o| *o == Observed::Stopped),
        destroyed: Box::new(|o| *o == Observed::Gone),
        leftovers: Box::new(move |_| {
            let pids = local::process::processes_under(&left_dir);
            Box::pin(async move { pids.iter().map(|p| format!("process {p}")).collect() })
        }),
        _keep: Box::new(dir),
    }
}

/// `container`: the bundled image of this checkout, pushed to a registry on this host and run
/// by podman; `None` (said on stderr) where podman or the registry is missing.
async fn container_fixture() -> Option<Fixture> {
    use crate::common::containers;
    const TEST: &str = "scenarios::container";
    if !containers::podman(TEST) {
        return None;
    }
    let reg = containers::registry(TEST, None)?;
    containers::remove_all(NAME);
    let layout = modelplane_serve::image::Layout::open(&containers::image_layout()).expect("image");
    let repository = format!("{}/modelplane/scenario", reg.host());
    let access = modelplane_provider::registry::Access {
        insecure: true,
        username: None,
        password: None,
    };
    let digest = modelplane_provider::registry::push(&layout, &repository, "scenario", &access)
        .await
        .expect("push the image");
    // A store of its own: the container reads it as the image's user.
    let dir = tempfile::tempdir().expect("state folder");
    let models = dir.path().join("models/iris/1");
    std::fs::create_dir_all(&models).unwrap();
    for f in ["model.onnx", "model.json"] {
        std::fs::copy(format!("{}/iris/1/{f}", repo()), models.join(f)).unwrap();
    }
    let mut platform = container::host(
        ClusterId::new(PlatformKind::Container, "scenarios"),
        &Default::default(),
    );
    platform.host.state_dir = dir.path().join("state");
    Some(Fixture {
        platform: Box::new(platform),
        repository: dir.path().join("models").display().to_string(),
        image: Some(format!("{repository}@{digest}")),
        container: Some(container::Settings {
            memory: Some("1g".into()),
            extra_args: Some(
                ["--network", "host", "--tls-verify=false"]
                    .map(String::from)
                    .to_vec(),
            ),
            ..Default::default()
        }),
        kubernetes: None,
        vanish: Box::new(|name| {
            Box::pin(async move {
                // Removed behind the provider's back, as `podman rm -f` by a person would.
                containers::remove_all(&name);
            })
        }),
        vanished: Box::new(|o| *o == Observed::Stopped),
        destroyed: Box::new(|o| *o == Observed::Gone),
        leftovers: Box::new(|_| {
            let left = containers::containers_of(NAME);
            Box::pin(async move { left.iter().map(|c| format!("container {c}")).collect() })
        }),
        _keep: Box::new((dir, reg)),
    })
}

/// `kubernetes`: the in-memory API server, with the partition the endpoint runs in and a
/// stand-in for the Deployment controller that marks rollouts done.
async fn kubernetes_fixture() -> Fixture {
    kubernetes_fixture_as(PlatformKind::Kubernetes).await
}

/// The `kubernetes` fixture behind the platform `kind` (`kubernetes`, or `aws` and `azure`,
/// whose endpoints are the Kubernetes code; their cloud clients are not needed for endpoints
/// whose identity is given).
async fn kubernetes_fixture_as(kind: PlatformKind) -> Fixture {
    use k8s_openapi::api::apps::v1::Deployment as K8sDeployment;
    use kube::api::{Api, DeleteParams};
    let c = crate::kubernetes::client().await;
    crate::kubernetes::apply_partitions(&c, &[crate::kubernetes::partition("inference", 2)], &[])
        .await;
    let ctl = crate::kubernetes::controller(c.clone());
    let cluster = ClusterId::new(kind, "gpu");
    let kube = Kubernetes {
        cluster: cluster.clone(),
        target: KubeTarget::Client(c.clone(), "https://in-memory".into()),
    };
    let platform: Box<dyn Platform> = match kind {
        PlatformKind::Aws => Box::new(modelplane_provider::platforms::aws::Aws {
            cluster,
            settings: Default::default(),
            clients: None,
            kube,
        }),
        PlatformKind::Azure => Box::new(modelplane_provider::platforms::azure::Azure {
            cluster,
            settings: Default::default(),
            context: Default::default(),
            kube,
            poll: std::time::Duration::from_millis(50),
        }),
        _ => Box::new(kube),
    };
    let gone = c.clone();
    let left = c.clone();
    Fixture {
        platform,
        repository: "s3://models?region=eu-west-1".into(),
        image: Some("registry.example/modelplane-serve@sha256:0123".into()),
        container: None,
        kubernetes: Some(
            modelplane_provider::platforms::kubernetes::workload::Settings {
                rollout_timeout: Some("10s".into()),
                // On aws a given IRSA role, on azure a given workload identity (created ones
                // are tested in aws.rs and azure.rs).
                service_account_annotations: match kind {
                    PlatformKind::Aws => Some(
                        [(
                            "eks.amazonaws.com/role-arn".to_string(),
                            "arn:aws:iam::123456789012:role/scenario".to_string(),
                        )]
                        .into(),
                    ),
                    PlatformKind::Azure => Some(
                        [(
                            "azure.workload.identity/client-id".to_string(),
                            "00000000-0000-0000-0000-00000000c11d".to_string(),
                        )]
                        .into(),
                    ),
                    _ => None,
                },
                ..Default::default()
            },
        ),
        vanish: Box::new(move |name| {
            let api: Api<K8sDeployment> = Api::namespaced(gone.clone(), "gpu-inference");
            Box::pin(async move {
                api.delete(&name, &DeleteParams::default())
                    .await
                    .expect("delete the Deployment");
            })
        }),
        vanished: Box::new(|o| *o == Observed::Missing),
        // The objects are deleted; with their record gone from state, refresh is not asked.
        destroyed: Box::new(|o| *o == Observed::Missing),
        leftovers: Box::new(move |d| {
            let c = left.clone();
            Box::pin(async move {
                let mut out = Vec::new();
                for r in modelplane_provider::platforms::kubernetes::objects::parse_all(
                    d.objects.as_deref().unwrap_or(&[]),
                ) {
                    if let Ok(Some(_)) = r.get(&c).await {
                        out.push(r.to_string());
                    }
                }
                out
            })
        }),
        _keep: Box::new(AbortOnDrop(ctl)),
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local() {
    run(local_fixture()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn container() {
    if let Some(f) = container_fixture().await {
        run(f).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubernetes() {
    run(kubernetes_fixture().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn aws() {
    run(kubernetes_fixture_as(PlatformKind::Aws).await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure() {
    run(kubernetes_fixture_as(PlatformKind::Azure).await).await;
}
