//! The `kubernetes` platform through real Terraform: plan-time errors and an unreachable API
//! server (always), and the lifecycle against a real cluster when `KUBECONFIG` names one.
//!
//! The real-cluster suite runs with, for example, kind (`kind create cluster`), k3d
//! (`k3d cluster create`) or OpenShift Local (`crc start`, then `oc login`):
//!
//! ```sh
//! KUBECONFIG=~/.kube/config cargo xtask test --test kubernetes_terraform
//! ```

mod common;

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
        eprintln!("kubernetes_cluster_partitions_on_a_real_cluster: skipped; set KUBECONFIG to a cluster (kind, k3d, OpenShift Local) to run it");
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
