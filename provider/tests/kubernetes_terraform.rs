//! The `kubernetes` platform through real Terraform: plan-time errors and an unreachable API
//! server (always), and the lifecycle against a real cluster when `KUBECONFIG` names one.
//!
//! The real-cluster suite runs with, for example, kind (`kind create cluster`), k3d
//! (`k3d cluster create`) or OpenShift Local (`crc start`, then `oc login`):
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo xtask test kubernetes_terraform::
//! ```

use crate::common;

use common::{acc, Local};
use tfplugin::acctest::{attr_equals, attr_set, Step, TestCase};

fn cluster(l: &Local, kubernetes: &str, partitions: &str) -> String {
    format!(
        "provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n  kubernetes {{\n{kubernetes}\n  }}\n}}\n\nresource \"modelplane_gpu_cluster\" \"k\" {{\n  name     = \"mp-acc\"\n  platform = \"kubernetes\"\n{partitions}\n}}\n",
        l.dir.path().display().to_string()
    )
}

#[test]
fn kubernetes_bad_input_is_refused_at_plan() {
    let l = Local::new("k8s-bad");
    let bad =
        |partitions: &str, why: &str| Step::new(cluster(&l, "", partitions)).expect_error(why);
    acc(
        "kubernetes_bad_input_is_refused_at_plan",
        TestCase {
            steps: vec![
                bad("  partition {\n    purpose = \"serving\"\n    gpus = 1\n  }", "purpose \"serving\" must be one of"),
                bad("  partition {\n    purpose = \"dev\"\n    gpus = 1\n  }\n  partition {\n    purpose = \"dev\"\n    gpus = 2\n  }", "declared twice"),
                bad("  partition {\n    purpose = \"dev\"\n    gpus = 1\n    memory = \"4GB\"\n  }", "unknown suffix \"GB\""),
                bad("  partition {\n    purpose = \"dev\"\n    gpus = 1\n    namespace = \"ML_Dev\"\n  }", "must be a DNS label"),
                bad("  partition {\n    purpose = \"dev\"\n    gpus = 1\n    toleration {\n      key = \"x\"\n      operator = \"Exists\"\n      value = \"y\"\n    }\n  }", "takes no value"),
                bad("  node_pool {\n    name = \"a\"\n    purpose = \"dev\"\n  }", "select their nodes with partition.node_selector"),
                Step::new(format!(
                    "{}\nresource \"modelplane_gpu_cluster\" \"l\" {{\n  name = \"here\"\n  platform = \"local\"\n  partition {{\n    purpose = \"dev\"\n    gpus = 1\n  }}\n}}\n",
                    l.provider()
                ))
                .expect_error("partition blocks divide a Kubernetes cluster"),
                Step::new(format!(
                    "{}\nresource \"modelplane_endpoint\" \"e\" {{\n  name = \"e\"\n  cluster = \"kubernetes/gpu\"\n  image = \"registry.example/serve@sha256:00\"\n  variant {{\n    name = \"a\"\n    model = \"s3/b/m/1\"\n    weight = 100\n  }}\n  kubernetes {{\n    min_replicas = 3\n    max_replicas = 2\n    expose {{\n      kind = \"http_route\"\n      host = \"e.example.com\"\n    }}\n  }}\n}}\n",
                    l.provider()
                ))
                .expect_error("max_replicas \\(2\\) is below min_replicas \\(3\\)(.|\\n)*set gateway|set gateway(.|\\n)*max_replicas \\(2\\) is below"),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn kubernetes_unreachable_api_server_is_a_clear_error() {
    let l = Local::new("k8s-down");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conn = format!("    host = \"https://127.0.0.1:{port}\"\n    token = \"not-a-real-token\"\n    insecure = true");
    acc(
        "kubernetes_unreachable_api_server_is_a_clear_error",
        TestCase {
            steps: vec![Step::new(cluster(
                &l,
                &conn,
                "  partition {\n    purpose = \"inference\"\n    gpus = 1\n  }",
            ))
            .expect_error("Cannot write the partitions(.|\\n)*does not answer")],
            ..Default::default()
        },
    );
}

/// Against the cluster `KUBECONFIG` names: partitions are written, read back and deleted.
#[test]
fn kubernetes_cluster_partitions_on_a_real_cluster() {
    if std::env::var_os("KUBECONFIG").is_none() {
        crate::common::skipped(
            "kubernetes_cluster_partitions_on_a_real_cluster",
            crate::common::Skip::OptIn,
            "set KUBECONFIG to a cluster (kind, k3d, OpenShift Local) to run it",
        );
        return;
    }
    let l = Local::new("k8s-real");
    let parts = "  partition {\n    purpose = \"inference\"\n    gpus = 1\n    cpu = \"2\"\n    memory = \"4Gi\"\n  }\n  partition {\n    purpose = \"dev\"\n    gpus = 0\n  }";
    acc(
        "kubernetes_cluster_partitions_on_a_real_cluster",
        TestCase {
            steps: vec![Step::new(cluster(&l, "", parts))
                .check(attr_equals(
                    "modelplane_gpu_cluster.k",
                    "id",
                    "kubernetes/mp-acc",
                ))
                .check(attr_equals(
                    "modelplane_gpu_cluster.k",
                    "partition.0.namespace",
                    "mp-acc-inference",
                ))
                .check(attr_equals("modelplane_gpu_cluster.k", "objects.#", 8))
                .check(attr_set("modelplane_gpu_cluster.k", "nodes.#"))],
            ..Default::default()
        },
    );
}

/// The endpoint's rendered pod, run by `podman kube play`: the bundled image serves under the
/// security context the provider writes (read-only root, every capability dropped, no
/// privilege escalation, seccomp), as an arbitrary non-root UID as OpenShift assigns one, with
/// its configuration from the ConfigMap and its token from the Secret. The one change to the
/// rendered objects: the model store is a folder of this machine mounted at `/models`
/// (in a cluster the server fetches from an object store).
#[test]
fn kubernetes_rendered_pod_runs_under_podman_kube_play() {
    use modelplane_provider::platforms::kubernetes::partitions::Scheduling;
    use modelplane_provider::platforms::kubernetes::workload::{Settings, Workload};
    if !common::containers::podman("kubernetes_rendered_pod_runs_under_podman_kube_play") {
        return;
    }
    let l = Local::new("k8s-play");
    let store = l.path().join("store");
    let config = format!(
        "{}\nresource \"modelplane_model_store\" \"s\" {{\n  name = \"s\"\n  backend = \"local\"\n  path = {:?}\n  force_destroy = true\n}}\n\nresource \"modelplane_model\" \"m\" {{\n  store = modelplane_model_store.s.id\n  name = \"iris\"\n  version = \"1\"\n  source = {:?}\n}}\n",
        l.provider(),
        store.display().to_string(),
        common::qs("model/iris-v1.onnx"),
    );
    let play = common::check(move |_| {
        // podman names an image pulled from an `oci:` folder after the folder's path, and a
        // name must be lower case: the layout is reached through a lower-case link, whatever
        // the checkout's path.
        let layout =
            std::env::temp_dir().join(format!("modelplane-kube-play-{}", std::process::id()));
        let _ = std::fs::remove_file(&layout);
        std::os::unix::fs::symlink(common::containers::image_layout(), &layout)
            .map_err(|e| format!("link to the image layout: {e}"))?;
        let out = std::process::Command::new("podman")
            .args(["pull", "-q"])
            .arg(format!("oci:{}:test", layout.display()))
            .output()
            .map_err(|e| e.to_string());
        let _ = std::fs::remove_file(&layout);
        let out = out?;
        if !out.status.success() {
            return Err(format!(
                "podman pull: {}",
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        let id = String::from_utf8_lossy(&out.stdout)
            .trim()
            .lines()
            .last()
            .unwrap_or("")
            .to_string();
        let image = "localhost/modelplane-serve:kube-play";
        run(&["tag", &id, image])?;
        let (http, grpc) = (
            common::emulators::free_port(),
            common::emulators::free_port(),
        );
        let cfg = serde_json::json!({
            "http": format!("127.0.0.1:{http}"), "grpc": format!("127.0.0.1:{grpc}"),
            "repository": "/models",
            "models": [{ "name": "iris", "version": "1" }],
            "endpoints": [{ "name": "kp", "variants": [{ "name": "stable", "model": "iris", "version": "1", "weight": 100 }] }],
            "auth": { "token_file": "/var/run/secrets/modelplane/token" },
        });
        let w = Workload {
            name: "kp".into(),
            namespace: "default".into(),
            scheduling: Scheduling {
                priority_class: String::new(),
                ..Default::default()
            },
            image: image.into(),
            config: cfg.to_string(),
            token: "kube-play-token".into(),
            remote_tokens: Default::default(),
            http_port: 8080,
            grpc_port: 8081,
            settings: Settings::default(),
            custom_metrics: false,
        };
        let mut docs = Vec::new();
        let secret_file = l.path().join("secret.yaml");
        for mut o in w.render() {
            match o["kind"].as_str() {
                Some("ConfigMap") => docs.push(o),
                // Podman reads Secret volumes from its own secret store, which holds the
                // Kubernetes Secret; podman 4 writes `data` values without decoding them from
                // base64 (and ignores `stringData`), so the store gets the decoded value.
                Some("Secret") => {
                    use base64::Engine as _;
                    let mut o = o;
                    let data = o["data"]["token"].as_str().unwrap_or_default().to_string();
                    let token = base64::engine::general_purpose::STANDARD
                        .decode(data)
                        .unwrap();
                    o["data"] = serde_json::json!({ "token": String::from_utf8(token).unwrap() });
                    std::fs::write(&secret_file, serde_yaml_ng::to_string(&o).unwrap())
                        .map_err(|e| e.to_string())?;
                    let _ = run(&["secret", "rm", "kp-token"]);
                    run(&[
                        "secret",
                        "create",
                        "kp-token",
                        &secret_file.display().to_string(),
                    ])?;
                }
                Some("Deployment") => {
                    let pod = &mut o["spec"]["template"]["spec"];
                    pod.as_object_mut().unwrap().remove("priorityClassName");
                    // OpenShift's restricted-v2 picks the UID from the namespace's range.
                    pod["securityContext"]["runAsUser"] = serde_json::json!(1000680000);
                    pod["volumes"].as_array_mut().unwrap().push(serde_json::json!({
                        "name": "models", "hostPath": { "path": store.display().to_string(), "type": "Directory" },
                    }));
                    // This sandbox has no container networking: the pod shares the host's, where
                    // container ports cannot be mapped, and the server listens on free ports.
                    let c = &mut pod["containers"][0];
                    c.as_object_mut().unwrap().remove("ports");
                    for probe in ["startupProbe", "readinessProbe", "livenessProbe"] {
                        c[probe]["httpGet"]["port"] = serde_json::json!(http);
                    }
                    pod["containers"][0]["volumeMounts"].as_array_mut().unwrap().push(
                        serde_json::json!({ "name": "models", "mountPath": "/models", "readOnly": true }),
                    );
                    docs.push(o);
                }
                _ => {}
            }
        }
        let yaml: String = docs
            .iter()
            .map(|d| format!("---\n{}", serde_yaml_ng::to_string(d).unwrap()))
            .collect();
        let file = l.path().join("kube.yaml");
        std::fs::write(&file, yaml).map_err(|e| e.to_string())?;
        let file_s = file.display().to_string();
        let played = run(&[
            "--runtime",
            "runc",
            "kube",
            "play",
            "--network",
            "host",
            &file_s,
        ]);
        let result = played.and_then(|_| {
            let url = format!("http://127.0.0.1:{http}");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
            loop {
                if let Ok((200, _)) = common::http("GET", &format!("{url}/v2/health/ready"), None, None) {
                    break;
                }
                if std::time::Instant::now() > deadline {
                    let logs = std::process::Command::new("podman").args(["logs", "kp-pod-server"]).output().ok();
                    return Err(format!("the pod never got ready; podman ps -a:\n{}\nlogs: {:?}", run(&["ps", "-a"]).unwrap_or_default(), logs.map(|o| String::from_utf8_lossy(&o.stderr).into_owned())));
                }
                std::thread::sleep(std::time::Duration::from_millis(300));
            }
            let body = std::fs::read_to_string(common::repo().join("examples/quickstart/data/request.json")).unwrap();
            let (status, answer) = common::http("POST", &format!("{url}/v2/models/kp/infer"), Some("kube-play-token"), Some(&body))?;
            if status != 200 || answer["outputs"][0]["data"] != serde_json::json!([0, 2]) {
                return Err(format!("infer: HTTP {status} {answer}"));
            }
            let (status, _) = common::http("POST", &format!("{url}/v2/models/kp/infer"), Some("wrong"), Some(&body))?;
            if status != 401 {
                return Err(format!("a wrong token got HTTP {status}"));
            }
            // What the engine applied: the UID, a read-only root and no capabilities.
            let ids = run(&["ps", "-q", "--filter", "label=app.kubernetes.io/instance=kp"])?;
            let id = ids.lines().next().ok_or("no container")?.to_string();
            let user = run(&["inspect", "--format", "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}} {{.HostConfig.CapDrop}} {{.HostConfig.CapAdd}}", &id])?;
            if !user.starts_with("1000680000") || !user.contains("true") {
                return Err(format!("container settings: {user}"));
            }
            Ok(())
        });
        let _ = run(&["kube", "down", &file_s]);
        let _ = run(&["secret", "rm", "kp-token"]);
        result
    });
    acc(
        "kubernetes_rendered_pod_runs_under_podman_kube_play",
        TestCase {
            steps: vec![Step::new(config).check(play)],
            ..Default::default()
        },
    );
}

fn run(args: &[&str]) -> Result<String, String> {
    let out = std::process::Command::new("podman")
        .args(args)
        .output()
        .map_err(|e| format!("podman: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "podman {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Against the cluster `KUBECONFIG` names, an endpoint end to end: partitions, a model in an
/// S3-compatible store the pods can reach, the Deployment rolled out, a change rolled out,
/// destroy. It needs, besides `KUBECONFIG`:
///
/// - `MODELPLANE_K8S_IMAGE`: the bundled image where the nodes can pull it (for kind:
///   `cargo xtask image`, push it to a registry the cluster reaches, or `kind load`);
/// - `MODELPLANE_K8S_STORE_ENDPOINT`: an S3-compatible server reachable from here and from the
///   pods (e.g. MinIO in the cluster, port-forwarded), with `AWS_ACCESS_KEY_ID` and
///   `AWS_SECRET_ACCESS_KEY` set here;
/// - the namespace `mp-acc-inference` with a Secret `store-credentials` holding the same keys
///   (the partition adopts the namespace).
#[test]
fn kubernetes_cluster_endpoint_on_a_real_cluster() {
    let vars = [
        "KUBECONFIG",
        "MODELPLANE_K8S_IMAGE",
        "MODELPLANE_K8S_STORE_ENDPOINT",
    ];
    if let Some(v) = vars.iter().find(|v| std::env::var_os(v).is_none()) {
        crate::common::skipped(
            "kubernetes_cluster_endpoint_on_a_real_cluster",
            crate::common::Skip::OptIn,
            &format!("{v} is not set (see the test's documentation)"),
        );
        return;
    }
    let image = std::env::var("MODELPLANE_K8S_IMAGE").unwrap();
    let store = std::env::var("MODELPLANE_K8S_STORE_ENDPOINT").unwrap();
    let l = Local::new("k8s-real-endpoint");
    let config = |replicas: i64| {
        let mut c = cluster(
            &l,
            "",
            "  partition {\n    purpose = \"inference\"\n    gpus = 0\n  }",
        );
        c.push_str(&format!(
            r#"
resource "modelplane_model_store" "s" {{
  name          = "modelplane-acc"
  backend       = "s3_compatible"
  endpoint      = {store:?}
  force_destroy = true
}}

resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {:?}
}}

resource "modelplane_endpoint" "e" {{
  name    = "iris"
  cluster = modelplane_gpu_cluster.k.id
  image   = {image:?}
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
  kubernetes {{
    min_replicas    = {replicas}
    env_from_secret = "store-credentials"
    rollout_timeout = "5m"
  }}
}}
"#,
            common::qs("model/iris-v1.onnx"),
        ));
        c
    };
    const EP: &str = "modelplane_endpoint.e";
    acc(
        "kubernetes_cluster_endpoint_on_a_real_cluster",
        TestCase {
            steps: vec![
                Step::new(config(1))
                    .check(attr_equals(EP, "status", "running"))
                    .check(attr_equals(
                        EP,
                        "url",
                        "http://iris.mp-acc-inference.svc.cluster.local:8080",
                    ))
                    .check(attr_equals(EP, "running_image", image.clone())),
                Step::new(config(2)).check(attr_equals(EP, "kubernetes.min_replicas", 2)),
            ],
            ..Default::default()
        },
    );
}
