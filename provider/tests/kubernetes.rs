//! The `kubernetes` platform against an in-memory API server (`kube-fake-client`): partitions
//! and endpoints through create, read, update, drift and delete, and the rollout diagnostics.
//! The same code runs against a real cluster in `kubernetes_cluster.rs`.

use std::collections::BTreeMap;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Node, Pod, ResourceQuota};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use kube_fake_client::ClientBuilder;
use serde_json::json;

use modelplane_provider::platforms::kubernetes::objects::{self, ObjectRef};
use modelplane_provider::platforms::kubernetes::partitions::{self, Partition};
use modelplane_provider::platforms::kubernetes::workload::{self, Settings, Wait, Workload};

fn node(name: &str, gpus: i64, product: &str) -> Node {
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": {
            "nvidia.com/gpu.product": product, "nvidia.com/gpu.memory": "24576",
        }},
        "status": {
            "allocatable": { "cpu": "8", "memory": "32Gi", "nvidia.com/gpu": gpus.to_string() },
            "conditions": [{ "type": "Ready", "status": "True" }],
        },
    }))
    .unwrap()
}

pub(crate) fn partition(purpose: &str, gpus: i64) -> Partition {
    Partition {
        purpose: purpose.into(),
        namespace: format!("gpu-{purpose}"),
        gpus,
        cpu: Some("16".into()),
        memory: Some("64Gi".into()),
        max_gpus_per_pod: None,
        priority: partitions::default_priority(purpose),
        node_selector: [(
            "nvidia.com/gpu.product".to_string(),
            "NVIDIA-L4".to_string(),
        )]
        .into(),
        tolerations: vec![],
        spot: purpose == "training",
    }
}

/// Namespaces under another plural (see [`client`]).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
struct NamespaceAlias {
    metadata: kube::api::ObjectMeta,
}

impl kube::Resource for NamespaceAlias {
    type DynamicType = ();
    type Scope = kube::core::ClusterResourceScope;
    fn kind(_: &()) -> std::borrow::Cow<'_, str> {
        "Namespace".into()
    }
    fn group(_: &()) -> std::borrow::Cow<'_, str> {
        "".into()
    }
    fn version(_: &()) -> std::borrow::Cow<'_, str> {
        "v1".into()
    }
    fn plural(_: &()) -> std::borrow::Cow<'_, str> {
        "nsalias".into()
    }
    fn meta(&self) -> &kube::api::ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
        &mut self.metadata
    }
}

/// A custom resource kind the in-memory API server serves (as if its CRD were installed).
macro_rules! custom_kind {
    ($t:ident, $group:literal, $version:literal, $kind:literal, $plural:literal) => {
        #[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
        struct $t {
            metadata: kube::api::ObjectMeta,
        }
        impl kube::Resource for $t {
            type DynamicType = ();
            type Scope = kube::core::NamespaceResourceScope;
            fn kind(_: &()) -> std::borrow::Cow<'_, str> {
                $kind.into()
            }
            fn group(_: &()) -> std::borrow::Cow<'_, str> {
                $group.into()
            }
            fn version(_: &()) -> std::borrow::Cow<'_, str> {
                $version.into()
            }
            fn plural(_: &()) -> std::borrow::Cow<'_, str> {
                $plural.into()
            }
            fn meta(&self) -> &kube::api::ObjectMeta {
                &self.metadata
            }
            fn meta_mut(&mut self) -> &mut kube::api::ObjectMeta {
                &mut self.metadata
            }
        }
    };
}
custom_kind!(
    ServiceMonitor,
    "monitoring.coreos.com",
    "v1",
    "ServiceMonitor",
    "servicemonitors"
);
custom_kind!(
    PrometheusRule,
    "monitoring.coreos.com",
    "v1",
    "PrometheusRule",
    "prometheusrules"
);

fn crd(
    plural: &str,
    group: &str,
    kind: &str,
) -> k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition {
    serde_json::from_value(json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": { "name": format!("{plural}.{group}") },
        "spec": {
            "group": group, "scope": "Namespaced",
            "names": { "plural": plural, "kind": kind },
            "versions": [{ "name": "v1", "served": true, "storage": true }],
        },
    }))
    .unwrap()
}

/// The in-memory API server, with three nodes.
///
/// kube-fake-client 0.3 parses `/api/v1/namespaces/NAME` as a namespaced path and refuses
/// it, so Namespace objects cannot be written through it. Until that is fixed upstream, their
/// requests go to another plural of the same kind; every other request goes to it unchanged.
pub(crate) async fn client() -> kube::Client {
    client_with(ClientBuilder::new()).await
}

/// [`client`], with the prometheus-operator's CRDs installed.
async fn client_with_operator() -> kube::Client {
    client_with(
        ClientBuilder::new()
            .with_resource::<ServiceMonitor>()
            .with_resource::<PrometheusRule>()
            .with_object(crd(
                "servicemonitors",
                "monitoring.coreos.com",
                "ServiceMonitor",
            ))
            .with_object(crd(
                "prometheusrules",
                "monitoring.coreos.com",
                "PrometheusRule",
            )),
    )
    .await
}

pub(crate) async fn client_with(builder: ClientBuilder) -> kube::Client {
    client_recording(builder, None).await
}

/// What a test client sent: method, path and JSON body of every write.
pub(crate) type Writes = std::sync::Arc<std::sync::Mutex<Vec<(String, String, serde_json::Value)>>>;

/// [`client_with`], keeping every write in `writes`. The in-memory server merges an apply
/// into what is there, where a real one drops the fields the applier no longer sets; a test
/// of what an apply leaves out reads the writes.
pub(crate) async fn client_recording(
    builder: ClientBuilder,
    writes: Option<Writes>,
) -> kube::Client {
    let fake = builder
        .with_object(node("gpu-1", 2, "NVIDIA-L4"))
        .with_object(node("gpu-2", 2, "NVIDIA-L4"))
        .with_object(node("cpu-1", 0, ""))
        .with_resource::<NamespaceAlias>()
        .with_status_subresource::<Deployment>()
        .build()
        .await
        .expect("fake client");
    let svc = tower::service_fn(move |mut req: http::Request<kube::client::Body>| {
        let fake = fake.clone();
        let writes = writes.clone();
        async move {
            let path = req.uri().path().to_string();
            if let (Some(w), true) = (&writes, req.method() != http::Method::GET) {
                use http_body_util::BodyExt as _;
                let (parts, body) = req.into_parts();
                let bytes = body
                    .collect()
                    .await
                    .map(|b| b.to_bytes())
                    .unwrap_or_default();
                let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
                w.lock()
                    .unwrap()
                    .push((parts.method.to_string(), path.clone(), json));
                req = http::Request::from_parts(parts, kube::client::Body::from(bytes.to_vec()));
            }
            let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
            if parts.len() <= 4 && parts.len() >= 3 && parts[..3] == ["api", "v1", "namespaces"] {
                let name = parts.get(3).map(|n| format!("/{n}")).unwrap_or_default();
                let query = req
                    .uri()
                    .query()
                    .map(|q| format!("?{q}"))
                    .unwrap_or_default();
                *req.uri_mut() = format!("/api/v1/nsalias{name}{query}").parse().unwrap();
            }
            fake.send(req).await
        }
    });
    kube::Client::new(svc, "default")
}

pub(crate) async fn apply_partitions(
    c: &kube::Client,
    parts: &[Partition],
    before: &[ObjectRef],
) -> Vec<ObjectRef> {
    let rendered: Vec<_> = parts.iter().flat_map(|p| p.render("gpu")).collect();
    let (_, r) = objects::apply(c, &rendered).await;
    r.expect("apply");
    let now = objects::refs(&rendered);
    objects::prune(c, before, &now).await.expect("prune");
    now
}

#[tokio::test]
async fn partitions_are_created_read_updated_and_pruned() {
    let c = client().await;
    let refs = apply_partitions(
        &c,
        &[partition("inference", 2), partition("training", 2)],
        &[],
    )
    .await;
    assert_eq!(refs.len(), 8);
    let ns: Api<Namespace> = Api::all(c.clone());
    let inf = ns.get("gpu-inference").await.unwrap();
    let labels = inf.metadata.labels.unwrap();
    assert_eq!(labels["app.kubernetes.io/managed-by"], "modelplane");
    assert_eq!(labels["pod-security.kubernetes.io/enforce"], "restricted");

    // Endpoints find a partition and its scheduling from the cluster.
    let (name, sched) = partitions::find(&c, "gpu", "training").await.unwrap();
    assert_eq!(name, "gpu-training");
    assert_eq!(sched.priority_class, "modelplane-gpu-training");
    assert!(sched
        .tolerations
        .iter()
        .any(|t| t.key == "eks.amazonaws.com/capacityType"));
    let missing = partitions::find(&c, "gpu", "dev").await.unwrap_err();
    assert!(missing.contains("has no dev partition"), "{missing}");

    // Read back: the quota as the cluster has it.
    let seen = partitions::observe(&c, &partition("inference", 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.gpus, 2);
    assert_eq!(seen.memory.as_deref(), Some("64Gi"));

    // Drift: someone raises the quota by hand; the read shows it, so the plan puts it back.
    let rq: Api<ResourceQuota> = Api::namespaced(c.clone(), "gpu-inference");
    rq.patch(
        "gpu-quota",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"hard": {"requests.nvidia.com/gpu": "16"}}})),
    )
    .await
    .unwrap();
    let seen = partitions::observe(&c, &partition("inference", 2))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(seen.gpus, 16);

    // Update: a new quota, and the training partition dropped.
    let refs = apply_partitions(&c, &[partition("inference", 3)], &refs).await;
    assert_eq!(refs.len(), 4);
    let q = rq.get("gpu-quota").await.unwrap();
    assert_eq!(
        q.spec.unwrap().hard.unwrap()["requests.nvidia.com/gpu"].0,
        "3"
    );
    assert!(ns.get_opt("gpu-training").await.unwrap().is_none());
    assert!(partitions::observe(&c, &partition("training", 2))
        .await
        .unwrap()
        .is_none());

    // Inventory: per-node GPUs, and warnings when the quota exceeds them.
    let inv = partitions::inventory(&c).await.unwrap();
    assert_eq!(inv.gpus(), 4);
    assert_eq!(inv.cpus, 24);
    let gpu1 = inv.nodes.iter().find(|n| n.name == "gpu-1").unwrap();
    assert_eq!(
        (gpu1.gpus, gpu1.product.as_deref(), gpu1.memory_mib),
        (2, Some("NVIDIA-L4"), Some(24576))
    );
    assert!(partitions::capacity_warnings(&inv, &[partition("inference", 3)]).is_empty());
    let w = partitions::capacity_warnings(&inv, &[partition("inference", 8)]);
    assert_eq!(w.len(), 2, "{w:?}");

    // Delete: everything recorded goes.
    objects::delete(&c, &refs).await.unwrap();
    assert!(ns.get_opt("gpu-inference").await.unwrap().is_none());
    // Deleting again is not an error (objects already gone).
    objects::delete(&c, &refs).await.unwrap();
}

fn endpoint(settings: Settings, config: &str) -> Workload {
    Workload {
        name: "fraud".into(),
        namespace: "gpu-inference".into(),
        scheduling: partition("inference", 2).scheduling("gpu"),
        image: "registry.example/modelplane-serve@sha256:0123".into(),
        config: config.into(),
        token: "t0ken".into(),
        remote_tokens: Default::default(),
        http_port: 8080,
        grpc_port: 8081,
        settings,
        custom_metrics: false,
    }
}

/// Plays the Deployment controller: marks every Deployment of the namespace rolled out.
pub(crate) fn controller(c: kube::Client) -> tokio::task::JoinHandle<()> {
    controller_unless(c, |_| false)
}

/// [`controller`], leaving the Deployments `stuck` picks never rolled out.
pub(crate) fn controller_unless(
    c: kube::Client,
    stuck: fn(&Deployment) -> bool,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let api: Api<Deployment> = Api::namespaced(c, "gpu-inference");
        loop {
            for d in api
                .list(&Default::default())
                .await
                .map(|l| l.items)
                .unwrap_or_default()
            {
                if stuck(&d) {
                    continue;
                }
                let n = d.metadata.name.clone().unwrap();
                let replicas = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
                let status = json!({"status": {
                    "observedGeneration": d.metadata.generation.unwrap_or(0),
                    "replicas": replicas, "updatedReplicas": replicas,
                    "availableReplicas": replicas, "readyReplicas": replicas,
                }});
                let _ = api
                    .patch_status(&n, &PatchParams::default(), &Patch::Merge(status))
                    .await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
}

const FAST: Wait = Wait {
    timeout: Duration::from_secs(5),
    poll: Duration::from_millis(50),
};

#[tokio::test]
async fn an_endpoint_is_deployed_updated_observed_and_deleted() {
    let c = client().await;
    apply_partitions(&c, &[partition("inference", 2)], &[]).await;
    let ctl = controller(c.clone());
    let scaled = Settings {
        min_replicas: Some(2),
        max_replicas: Some(4),
        gpus: Some(1),
        service_account_annotations: Some(BTreeMap::from([(
            "eks.amazonaws.com/role-arn".to_string(),
            "arn:aws:iam::1:role/serve".to_string(),
        )])),
        expose: Some(workload::Expose {
            kind: "ingress".into(),
            host: "fraud.example.com".into(),
            ..Default::default()
        }),
        ..Default::default()
    };
    let w = endpoint(scaled, r#"{"v": 1}"#);
    let (refs, r) = workload::deploy(&c, &w, &[], FAST).await;
    r.expect("deploy");
    let kinds: Vec<&str> = refs.iter().map(|r| r.kind.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "ServiceAccount",
            "ConfigMap",
            "Secret",
            "Deployment",
            "Service",
            "PodDisruptionBudget",
            "HorizontalPodAutoscaler",
            "Ingress"
        ]
    );
    let deployments: Api<Deployment> = Api::namespaced(c.clone(), "gpu-inference");
    let d = deployments.get("fraud").await.unwrap();
    let spec = d.spec.unwrap();
    assert_eq!(spec.replicas, None, "the autoscaler owns the replica count");
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(
        container
            .resources
            .as_ref()
            .unwrap()
            .limits
            .as_ref()
            .unwrap()["nvidia.com/gpu"]
            .0,
        "1"
    );
    assert_eq!(
        pod.priority_class_name.as_deref(),
        Some("modelplane-gpu-inference")
    );
    assert_eq!(
        pod.node_selector.unwrap()["nvidia.com/gpu.product"],
        "NVIDIA-L4"
    );
    let sc = container.security_context.as_ref().unwrap();
    assert_eq!(sc.read_only_root_filesystem, Some(true));
    assert_eq!(sc.run_as_user, None, "OpenShift assigns the UID");

    let observed = workload::observe(&c, "gpu-inference", "fraud", &refs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(observed.image.as_deref(), Some(w.image.as_str()));
    assert_eq!(observed.config.as_deref(), Some(r#"{"v": 1}"#));
    assert_eq!(observed.token.as_deref(), Some("t0ken"));
    assert!(observed.missing.is_empty());

    // Import reads the settings back from the objects.
    let (seen, ports, found) = workload::settings_of(&c, "gpu-inference", "fraud")
        .await
        .unwrap();
    assert_eq!(
        (seen.min_replicas, seen.max_replicas, seen.gpus),
        (Some(2), Some(4), Some(1))
    );
    assert_eq!(seen.partition.as_deref(), Some("inference"));
    assert_eq!(seen.memory.as_deref(), Some("1Gi"));
    assert_eq!(ports, (8080, 8081));
    assert_eq!(found.len(), refs.len(), "{found:?}");

    // Drift: the Service is deleted by hand; the read names it.
    let svc = ObjectRef::parse("v1/Service/gpu-inference/fraud").unwrap();
    svc.api(&c)
        .unwrap()
        .delete("fraud", &DeleteParams::default())
        .await
        .unwrap();
    let observed = workload::observe(&c, "gpu-inference", "fraud", &refs)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(observed.missing, vec![svc.clone()]);

    // Update: a fixed replica count drops the autoscaler and the Ingress, and the Service
    // comes back; a new configuration is a new pod revision.
    let fixed = endpoint(
        Settings {
            min_replicas: Some(2),
            ..Default::default()
        },
        r#"{"v": 2}"#,
    );
    assert_ne!(fixed.revision(), w.revision());
    let (refs2, r) = workload::deploy(&c, &fixed, &refs, FAST).await;
    r.expect("update");
    assert!(!refs2
        .iter()
        .any(|r| r.kind == "HorizontalPodAutoscaler" || r.kind == "Ingress"));
    let hpa =
        ObjectRef::parse("autoscaling/v2/HorizontalPodAutoscaler/gpu-inference/fraud").unwrap();
    assert!(hpa.get(&c).await.unwrap().is_none(), "pruned");
    assert!(svc.get(&c).await.unwrap().is_some(), "re-applied");
    let d = deployments.get("fraud").await.unwrap();
    assert_eq!(d.spec.as_ref().unwrap().replicas, Some(2));
    let labels = d.spec.unwrap().template.metadata.unwrap().labels.unwrap();
    assert_eq!(labels["modelplane.io/revision"], fixed.revision());

    objects::delete(&c, &refs2).await.unwrap();
    assert!(workload::observe(&c, "gpu-inference", "fraud", &refs2)
        .await
        .unwrap()
        .is_none());
    ctl.abort();
}

/// Deploys with a pod of the new revision in the given state and no controller: the rollout
/// fails, and the error says why.
async fn failed_rollout(pod_status: serde_json::Value, timeout: Duration) -> String {
    let c = client().await;
    apply_partitions(&c, &[partition("inference", 2)], &[]).await;
    let w = endpoint(
        Settings {
            memory: Some("2Gi".into()),
            ..Default::default()
        },
        "{}",
    );
    let pods: Api<Pod> = Api::namespaced(c.clone(), "gpu-inference");
    let pod: Pod = serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": { "name": "fraud-7d9-abcde", "namespace": "gpu-inference", "labels": {
            "app.kubernetes.io/instance": "fraud", "modelplane.io/revision": w.revision(),
        }},
        "spec": { "containers": [{ "name": "server", "image": w.image }] },
        "status": pod_status,
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let started = std::time::Instant::now();
    let (written, r) = workload::deploy(
        &c,
        &w,
        &[],
        Wait {
            timeout,
            poll: Duration::from_millis(50),
        },
    )
    .await;
    assert!(
        written.iter().any(|r| r.kind == "Deployment"),
        "what was written is returned for the state"
    );
    let e = r.expect_err("the rollout must fail");
    assert!(
        e.contains("Deployment gpu-inference/fraud did not roll out"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    e
}

fn waiting(reason: &str, message: &str) -> serde_json::Value {
    json!({ "containerStatuses": [{
        "name": "server", "image": "registry.example/modelplane-serve@sha256:0123", "imageID": "",
        "ready": false, "restartCount": 3,
        "state": { "waiting": { "reason": reason, "message": message } },
    }]})
}

#[tokio::test]
async fn an_image_that_cannot_be_pulled_fails_at_once() {
    let e = failed_rollout(
        waiting("ImagePullBackOff", "Back-off pulling image"),
        Duration::from_secs(60),
    )
    .await;
    assert!(e.contains("ImagePullBackOff: pod fraud-7d9-abcde cannot pull registry.example/modelplane-serve@sha256:0123"), "{e}");
    assert!(e.contains("image_pull_secret"), "{e}");
}

#[tokio::test]
async fn a_crash_loop_reports_the_server_log() {
    let e = failed_rollout(
        waiting("CrashLoopBackOff", "back-off 40s"),
        Duration::from_secs(60),
    )
    .await;
    assert!(e.contains("CrashLoopBackOff: the server in pod fraud-7d9-abcde keeps exiting. Its last log lines:"), "{e}");
}

#[tokio::test]
async fn an_oom_kill_names_the_memory_limit() {
    let mut status = waiting("CrashLoopBackOff", "back-off");
    status["containerStatuses"][0]["lastState"] =
        json!({ "terminated": { "reason": "OOMKilled", "exitCode": 137 } });
    let e = failed_rollout(status, Duration::from_secs(60)).await;
    assert!(e.contains("OOMKilled"), "{e}");
    assert!(
        e.contains("its limit (2Gi); raise kubernetes.memory"),
        "{e}"
    );
}

#[tokio::test]
async fn a_pod_without_gpus_to_schedule_on_waits_then_says_so() {
    let e = failed_rollout(
        json!({ "phase": "Pending", "conditions": [{
            "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
            "message": "0/3 nodes are available: 3 Insufficient nvidia.com/gpu.",
        }]}),
        Duration::from_millis(600),
    )
    .await;
    assert!(
        e.contains("within 0s") || e.contains("within 1s") || e.contains("did not roll out within"),
        "{e}"
    );
    assert!(
        e.contains("Unschedulable: insufficient nvidia.com/gpu for pod fraud-7d9-abcde"),
        "{e}"
    );
}

/// Pods the partition's quota refuses are never created: only the ReplicaSet's warning events
/// say why. Normal events, and warnings about other workloads, are not causes.
#[tokio::test]
async fn a_quota_that_refuses_pods_is_named_from_the_events() {
    use k8s_openapi::api::core::v1::Event;
    let c = client().await;
    apply_partitions(&c, &[partition("inference", 2)], &[]).await;
    let w = endpoint(Settings::default(), "{}");
    let events: Api<Event> = Api::namespaced(c.clone(), "gpu-inference");
    for (name, involved, kind, reason, message) in [
        ("e1", "fraud-7d9", "Warning", "FailedCreate", "pods \"fraud-7d9-x\" is forbidden: exceeded quota: gpu-inference, requested: requests.nvidia.com/gpu=1, used: requests.nvidia.com/gpu=2, limited: requests.nvidia.com/gpu=2"),
        ("e2", "fraud-7d9", "Normal", "FailedCreate", "exceeded quota: a Normal event is no cause"),
        ("e3", "other-5c4", "Warning", "FailedCreate", "exceeded quota: another workload's"),
    ] {
        let e: Event = serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Event",
            "metadata": { "name": name, "namespace": "gpu-inference" },
            "involvedObject": { "kind": "ReplicaSet", "name": involved, "namespace": "gpu-inference" },
            "type": kind, "reason": reason, "message": message,
        }))
        .unwrap();
        events.create(&PostParams::default(), &e).await.unwrap();
    }
    let (_, r) = workload::deploy(
        &c,
        &w,
        &[],
        Wait {
            timeout: Duration::from_millis(300),
            poll: Duration::from_millis(50),
        },
    )
    .await;
    let e = r.expect_err("no pod can start");
    assert!(
        e.contains("the partition's quota refuses new pods: pods \"fraud-7d9-x\" is forbidden: exceeded quota"),
        "{e}"
    );
    assert!(!e.contains("a Normal event"), "{e}");
    assert!(!e.contains("another workload"), "{e}");
}

#[tokio::test]
async fn the_api_servers_refusal_is_explained() {
    // An object of a kind whose CRD is not installed: the fake, like a real server, has no
    // such resource.
    let c = client().await;
    let route = json!({
        "apiVersion": "route.openshift.io/v1", "kind": "Route",
        "metadata": { "name": "x", "namespace": "default" }, "spec": {},
    });
    let (written, r) = objects::apply(&c, &[route]).await;
    assert!(written.is_empty());
    let e = r.unwrap_err();
    assert!(
        e.contains("cannot write route.openshift.io/v1/Route/default/x"),
        "{e}"
    );
}

/// Every built-in object the provider renders, with every option set.
fn everything() -> Vec<serde_json::Value> {
    let mut p = partition("training", 4);
    p.tolerations.push(partitions::Toleration {
        key: "dedicated".into(),
        operator: Some("Equal".into()),
        value: Some("ml".into()),
        effect: Some("NoExecute".into()),
    });
    let mut out = p.render("gpu");
    out.extend(partition("dev", 0).render("gpu"));
    let mut w = endpoint(
        Settings {
            min_replicas: Some(2),
            max_replicas: Some(6),
            target_cpu_percent: Some(60),
            target_inflight: Some(8),
            cpu: Some("2".into()),
            memory: Some("8Gi".into()),
            gpus: Some(1),
            service_account_annotations: Some(BTreeMap::from([(
                "azure.workload.identity/client-id".to_string(),
                "00000000-0000-0000-0000-000000000000".to_string(),
            )])),
            env_from_secret: Some("store-credentials".into()),
            image_pull_secret: Some("registry-pull".into()),
            service_type: Some("LoadBalancer".into()),
            rollout_timeout: Some("5m".into()),
            expose: Some(workload::Expose {
                kind: "ingress".into(),
                host: "fraud.example.com".into(),
                class_name: Some("nginx".into()),
                gateway: None,
                tls_secret: Some("fraud-tls".into()),
            }),
            partition: None,
        },
        r#"{"models": []}"#,
    );
    w.custom_metrics = true;
    out.extend(w.render());
    let rules = json!({"groups": [{"name": "fraud", "rules": [{"alert": "Slow", "expr": "up == 0", "for": "5m"}]}]});
    out.extend(
        modelplane_provider::platforms::kubernetes::monitoring::MonitorObjects {
            name: "fraud",
            namespace: "gpu-inference",
            endpoint: "fraud",
            rules: &rules,
            alertmanager: Some("route: {receiver: hook}\nreceivers: [{name: hook}]\n"),
            operator: false,
            scrape_interval: "15s",
        }
        .render(),
    );
    out
}

fn kubernetes_validate() -> Option<std::path::PathBuf> {
    if let Some(p) =
        std::env::var_os("MODELPLANE_KUBERNETES_VALIDATE").map(std::path::PathBuf::from)
    {
        return Some(p);
    }
    let local = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../.tools/kubernetes-validate-venv/bin/kubernetes-validate");
    if local.is_file() {
        return Some(local);
    }
    crate::common::skipped(
        "kubernetes-validate checks",
        crate::common::Skip::Missing,
        "kubernetes-validate not found; `cargo xtask test` installs it",
    );
    None
}

/// Every rendered object is valid against the official schemas of Kubernetes 1.29 to 1.33,
/// strictly (no unknown field), and the endpoint's pod meets Pod Security "restricted".
#[test]
fn rendered_objects_are_valid_on_kubernetes_1_29_to_1_33() {
    let objs = everything();
    let kinds: std::collections::BTreeSet<&str> =
        objs.iter().map(|o| o["kind"].as_str().unwrap()).collect();
    for k in [
        "Namespace",
        "ResourceQuota",
        "LimitRange",
        "PriorityClass",
        "ServiceAccount",
        "ConfigMap",
        "Secret",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "Ingress",
    ] {
        assert!(kinds.contains(k), "{k} is not rendered");
    }
    restricted(&objs);
    let Some(tool) = kubernetes_validate() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let files: Vec<_> = objs
        .iter()
        .enumerate()
        .map(|(i, o)| {
            let f = dir
                .path()
                .join(format!("{i:02}-{}.yaml", o["kind"].as_str().unwrap()));
            std::fs::write(&f, serde_yaml_ng::to_string(o).unwrap()).unwrap();
            f
        })
        .collect();
    for version in ["1.29.0", "1.30.0", "1.31.0", "1.32.0", "1.33.0"] {
        let out = std::process::Command::new(&tool)
            .args(["--strict", "--quiet", "-k", version])
            .args(&files)
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            out.status.success(),
            "Kubernetes {version}:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    // The tool does fail on a bad object (a misspelt field).
    let mut bad = objs
        .iter()
        .find(|o| o["kind"] == "Deployment")
        .unwrap()
        .clone();
    bad["spec"]["replica"] = json!(2);
    let f = dir.path().join("bad.yaml");
    std::fs::write(&f, serde_yaml_ng::to_string(&bad).unwrap()).unwrap();
    let out = std::process::Command::new(&tool)
        .args(["--strict", "-k", "1.33.0"])
        .arg(&f)
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The checks of Pod Security "restricted" (and so of OpenShift's restricted-v2 SCC, which
/// also forbids a fixed `runAsUser`) on every pod template.
fn restricted(objs: &[serde_json::Value]) {
    for d in objs.iter().filter(|o| o["kind"] == "Deployment") {
        let pod = &d["spec"]["template"]["spec"];
        assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
        assert_eq!(
            pod["securityContext"]["seccompProfile"]["type"],
            "RuntimeDefault"
        );
        assert!(pod["securityContext"]["runAsUser"].is_null());
        assert!(
            pod["hostNetwork"].is_null() && pod["hostPID"].is_null() && pod["hostIPC"].is_null()
        );
        for v in pod["volumes"].as_array().unwrap() {
            let kind = v
                .as_object()
                .unwrap()
                .keys()
                .find(|k| *k != "name")
                .unwrap();
            assert!(
                [
                    "configMap",
                    "secret",
                    "emptyDir",
                    "projected",
                    "persistentVolumeClaim"
                ]
                .contains(&kind.as_str()),
                "volume type {kind}"
            );
        }
        for c in pod["containers"].as_array().unwrap() {
            let sc = &c["securityContext"];
            assert_eq!(sc["allowPrivilegeEscalation"], false);
            assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
            assert!(sc["capabilities"]["add"].is_null());
            assert_eq!(sc["readOnlyRootFilesystem"], true);
            assert!(sc["runAsUser"].is_null() && sc["privileged"].is_null());
            assert!(c["ports"]
                .as_array()
                .unwrap()
                .iter()
                .all(|p| p["hostPort"].is_null()));
        }
    }
}

/// Monitors: the operator's objects where its CRDs are installed (asked at apply), a rules
/// ConfigMap elsewhere; both next to the endpoint, found by its name.
#[tokio::test]
async fn monitors_follow_what_the_cluster_serves() {
    use modelplane_provider::platforms::kubernetes::monitoring::{self, MonitorObjects};
    let rules =
        json!({"groups": [{"name": "fraud", "rules": [{"alert": "Down", "expr": "up == 0"}]}]});
    for (c, operator) in [
        (client().await, false),
        (client_with_operator().await, true),
    ] {
        assert_eq!(monitoring::has_operator(&c).await, operator);
        apply_partitions(&c, &[partition("inference", 2)], &[]).await;
        let ctl = controller(c.clone());
        let w = endpoint(Settings::default(), "{}");
        workload::deploy(&c, &w, &[], FAST).await.1.expect("deploy");
        ctl.abort();
        let ns = workload::locate(&c, "gpu", "fraud").await.unwrap();
        assert_eq!(ns, "gpu-inference");
        assert!(workload::locate(&c, "gpu", "other")
            .await
            .unwrap_err()
            .contains("no endpoint \"other\""));
        let objs = MonitorObjects {
            name: "fraud",
            namespace: &ns,
            endpoint: "fraud",
            rules: &rules,
            alertmanager: Some("route: {receiver: x}\nreceivers: [{name: x}]\n"),
            operator,
            scrape_interval: "15s",
        }
        .render();
        let (written, r) = objects::apply(&c, &objs).await;
        r.expect("monitor objects");
        let kinds: Vec<&str> = written.iter().map(|r| r.kind.as_str()).collect();
        if operator {
            assert_eq!(kinds, ["ServiceMonitor", "PrometheusRule", "Secret"]);
            let rule = written[1].get(&c).await.unwrap().unwrap();
            assert_eq!(rule["spec"]["groups"][0]["rules"][0]["alert"], "Down");
        } else {
            assert_eq!(kinds, ["ConfigMap", "Secret"]);
        }
        objects::delete(&c, &written).await.unwrap();
        for r in &written {
            assert!(r.get(&c).await.unwrap().is_none());
        }
    }
}

/// A node of a cloud's node pool: labelled with the pool (as the provider labels pools, and
/// with the cloud's own `label`), and with `gpus` allocatable NVIDIA GPUs.
pub(crate) fn pool_node(name: &str, pool: &str, gpus: i64, label: (&str, &str)) -> Node {
    let mut allocatable = json!({ "cpu": "4", "memory": "16Gi" });
    if gpus > 0 {
        allocatable["nvidia.com/gpu"] = json!(gpus.to_string());
    }
    serde_json::from_value(json!({
        "apiVersion": "v1", "kind": "Node",
        "metadata": { "name": name, "labels": {
            label.0: label.1, "modelplane.io/node-pool": pool,
            "nvidia.com/gpu.present": "true",
        }},
        "status": { "allocatable": allocatable, "conditions": [{ "type": "Ready", "status": "True" }] },
    }))
    .unwrap()
}

/// The in-memory API server of `kubernetes.rs` over HTTP on loopback, with the nodes given.
pub(crate) struct FakeApiServer {
    pub(crate) url: String,
    _rt: tokio::runtime::Runtime,
}

pub(crate) fn fake_api_server(nodes: Vec<Node>) -> FakeApiServer {
    fake_api_server_with(nodes, false)
}

/// With `controller`, Deployments in `gpu-inference` are marked rolled out (endpoints come up).
pub(crate) fn fake_api_server_with(nodes: Vec<Node>, controller: bool) -> FakeApiServer {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let url = rt.block_on(async {
        let mut b = ClientBuilder::new();
        for n in nodes {
            b = b.with_object(n);
        }
        let client = client_with(b).await;
        if controller {
            self::controller(client.clone());
        }
        let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
            let client = client.clone();
            async move {
                let (parts, body) = req.into_parts();
                let bytes = axum::body::to_bytes(body, usize::MAX)
                    .await
                    .unwrap_or_default();
                let mut fwd = http::Request::builder().method(parts.method).uri(
                    parts
                        .uri
                        .path_and_query()
                        .map(|p| p.as_str())
                        .unwrap_or("/"),
                );
                for (k, v) in &parts.headers {
                    fwd = fwd.header(k, v);
                }
                let fwd = fwd.body(kube::client::Body::from(bytes.to_vec())).unwrap();
                match client.send(fwd).await {
                    Ok(resp) => {
                        let (parts, body) = resp.into_parts();
                        let bytes = body.collect_bytes().await.unwrap_or_default();
                        axum::response::Response::from_parts(parts, axum::body::Body::from(bytes))
                    }
                    Err(e) => axum::response::Response::builder()
                        .status(500)
                        .body(axum::body::Body::from(e.to_string()))
                        .unwrap(),
                }
            }
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        url
    });
    FakeApiServer { url, _rt: rt }
}

/// A remote variant's token is a key of the endpoint's token Secret, mounted beside the
/// token, pointed at by the server's configuration, and part of the revision (a changed
/// remote token restarts the pods); never in the ConfigMap.
#[test]
fn remote_variant_tokens_are_secret_keys() {
    use base64::Engine;
    use modelplane_serve::config::{RemoteConfig, ServeConfig};
    let mut cfg: ServeConfig = serde_json::from_value(serde_json::json!({
        "repository": "s3://models",
        "endpoints": [{ "name": "fraud", "variants": [
            { "name": "onprem", "model": "fraud", "version": "7", "weight": 90 },
            { "name": "cloud/eu", "model": "fraud", "weight": 10, "remote": { "url": "https://fraud.eu.example.com" } }
        ]}]
    }))
    .unwrap();
    let tokens = BTreeMap::from([("cloud/eu".to_string(), "cl0ud-t0ken".to_string())]);
    modelplane_provider::platforms::point_remote_tokens(&mut cfg, &tokens, workload::TOKEN_DIR);
    let remote: &RemoteConfig = cfg.endpoints[0].variants[1].remote.as_ref().unwrap();
    assert_eq!(
        remote.token_file.as_deref(),
        Some("/var/run/secrets/modelplane/remote-cloud_eu.token")
    );
    let config = serde_json::to_string(&cfg).unwrap();
    let mut w = endpoint(Settings::default(), &config);
    let before = w.revision();
    w.remote_tokens = tokens;
    assert_ne!(
        w.revision(),
        before,
        "a remote token is part of the revision"
    );
    let objects = w.render();
    let secret = objects.iter().find(|o| o["kind"] == "Secret").unwrap();
    assert_eq!(
        secret["data"]["remote-cloud_eu.token"],
        base64::engine::general_purpose::STANDARD.encode("cl0ud-t0ken")
    );
    let cm = objects.iter().find(|o| o["kind"] == "ConfigMap").unwrap();
    assert!(!cm.to_string().contains("cl0ud-t0ken"));
}
