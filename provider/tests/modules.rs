//! The HCL modules and blueprints, applied through real Terraform: each one's example is
//! used as a module from a test directory, serves real predictions, and is destroyed.

use crate::common;

use common::{acc, check, have_prometheus, http, predicts, relative_source, Local};
use tfplugin::acctest::{attr_equals, Step, TestCase};

#[test]
fn module_endpoint_example() {
    let l = Local::new("module-endpoint");
    let config = format!(
        "module \"ex\" {{\n  source    = {:?}\n  state_dir = {:?}\n}}\n",
        relative_source("modules/endpoint/examples/canary"),
        l.path().display().to_string()
    );
    const EP: &str = "module.ex.module.iris.modelplane_endpoint.this";
    acc(
        "module_endpoint_example",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(EP, "status", "running"))
                .check(attr_equals(EP, "variant.0.name", "v1"))
                .check(attr_equals(EP, "variant.0.weight", 90))
                .check(attr_equals(
                    "module.ex.module.iris.modelplane_model.this[\"2\"]",
                    "validation_report.passed",
                    true,
                ))
                .check(predicts(&l, EP, "iris"))],
            ..Default::default()
        },
    );
}

#[test]
fn blueprint_local_example() {
    let l = Local::new("blueprint-local");
    let config = format!(
        "module \"ex\" {{\n  source    = {:?}\n  state_dir = {:?}\n}}\n",
        relative_source("blueprints/local/examples/two-models"),
        l.path().display().to_string()
    );
    acc(
        "blueprint_local_example",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals("module.ex.module.platform.modelplane_gpu_cluster.this", "id", "local/blueprint-example"))
                .check(predicts(&l, "module.ex.module.platform.module.endpoint[\"iris\"].modelplane_endpoint.this", "iris"))
                .check(predicts(&l, "module.ex.module.platform.module.endpoint[\"flowers\"].modelplane_endpoint.this", "flowers"))],
            ..Default::default()
        },
    );
}

#[test]
fn module_endpoint_monitored_example() {
    if !have_prometheus("module_endpoint_monitored_example") {
        return;
    }
    let l = Local::new("module-monitored");
    let config = format!(
        "module \"ex\" {{\n  source    = {:?}\n  state_dir = {:?}\n}}\n",
        relative_source("modules/endpoint/examples/monitored"),
        l.path().display().to_string()
    );
    const MON: &str = "module.ex.module.iris.modelplane_monitor.this[0]";
    acc(
        "module_endpoint_monitored_example",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(MON, "status", "running"))
                .check(predicts(
                    &l,
                    "module.ex.module.iris.modelplane_endpoint.this",
                    "iris",
                ))
                // One alert per threshold the example gives, loaded by the real Prometheus.
                .check(check(|s| {
                    let url = s
                        .attr(MON, "prometheus_url")
                        .and_then(|v| v.as_str().map(String::from))
                        .ok_or("no prometheus_url")?;
                    let (status, body) = http("GET", &format!("{url}/api/v1/rules"), None, None)?;
                    let mut names: Vec<String> = body["data"]["groups"][0]["rules"]
                        .as_array()
                        .map(|r| {
                            r.iter()
                                .filter_map(|r| r["name"].as_str().map(String::from))
                                .collect()
                        })
                        .unwrap_or_default();
                    names.sort();
                    if status == 200 && names == ["accuracy", "drift", "latency"] {
                        Ok(())
                    } else {
                        Err(format!("HTTP {status}: rules {names:?}"))
                    }
                }))],
            ..Default::default()
        },
    );
}

/// The edge blueprint's example: the bundled image pushed into a real registry, pulled and run
/// by podman, serving a validated model.
#[test]
fn blueprint_edge_example() {
    use common::containers;
    if !containers::podman("blueprint_edge_example") {
        return;
    }
    let Some(reg) = containers::registry("blueprint_edge_example", None) else {
        return;
    };
    containers::remove_all("iris");
    let l = Local::new("blueprint-edge");
    let config = format!(
        "module \"ex\" {{\n  source       = {:?}\n  state_dir    = {:?}\n  registry     = \"{}/modelplane/serve\"\n  image_source = {:?}\n  extra_args   = {}\n}}\n",
        relative_source("blueprints/edge/examples/line-side"),
        l.path().display().to_string(),
        reg.host(),
        containers::image_layout().display().to_string(),
        containers::SANDBOX_ARGS,
    );
    const EP: &str = "module.ex.module.site.module.endpoint[\"iris\"].modelplane_endpoint.this";
    acc(
        "blueprint_edge_example",
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(
                    "module.ex.module.site.modelplane_gpu_cluster.this",
                    "id",
                    "container/line-1",
                ))
                .check(attr_equals(EP, "status", "running"))
                .check(check(|s| {
                    let pushed = s.attr(
                        "module.ex.module.site.modelplane_serving_image.this",
                        "reference",
                    );
                    let running = s.attr(EP, "running_image");
                    match (pushed, running) {
                        (Some(p), Some(r))
                            if p == r && p.as_str().is_some_and(|p| p.contains("@sha256:")) =>
                        {
                            Ok(())
                        }
                        other => Err(format!(
                            "the endpoint does not run the pushed image by digest: {other:?}"
                        )),
                    }
                }))
                .check(check(|_| match containers::containers_of("iris").len() {
                    1 => Ok(()),
                    n => Err(format!("{n} containers for the endpoint")),
                }))
                .check(predicts(&l, EP, "iris"))],
            check_destroy: Some(containers::none_left("iris")),
            ..Default::default()
        },
    );
}

/// The on-prem Kubernetes blueprint's example, planned through real Terraform (no API server
/// runs here; `kubernetes_terraform.rs` applies against one when `KUBECONFIG` names it): the
/// partitions, the store, the pushed image and the endpoint's Kubernetes settings are what the
/// example declares, and bad variables are refused at plan.
#[test]
fn blueprint_on_prem_kubernetes_example() {
    if !tfplugin::acctest::enabled() {
        eprintln!(
            "blueprint_on_prem_kubernetes_example: skipped; acceptance tests run with TF_ACC=1"
        );
        return;
    }
    let layout = common::containers::image_layout();
    let (wd, _guard) = common::harness()
        .workdir("blueprint-k8s")
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        wd.dir.join("main.tf"),
        format!(
            "module \"ex\" {{\n  source       = {:?}\n  image_source = {:?}\n}}\n",
            relative_source("blueprints/on-prem-kubernetes/examples/gpu-lab"),
            layout.display().to_string(),
        ),
    )
    .unwrap();
    wd.ok(&["init", "-no-color"])
        .unwrap_or_else(|e| panic!("{e}"));
    wd.ok(&["validate", "-no-color"])
        .unwrap_or_else(|e| panic!("{e}"));
    wd.ok(&["plan", "-no-color", "-out", "plan.bin"])
        .unwrap_or_else(|e| panic!("{e}"));
    let shown = wd.show(Some("plan.bin")).unwrap_or_else(|e| panic!("{e}"));
    let planned = |address: &str, path: &str| shown.planned(address, path);
    const CLUSTER: &str = "module.ex.module.lab.modelplane_gpu_cluster.this";
    assert_eq!(
        planned(CLUSTER, "id"),
        Some(serde_json::json!("kubernetes/gpu"))
    );
    assert_eq!(
        planned(CLUSTER, "partition").and_then(|p| p.as_array().map(Vec::len)),
        Some(3)
    );
    let namespaces: Vec<_> = (0..3)
        .filter_map(|i| planned(CLUSTER, &format!("partition.{i}.namespace")))
        .collect();
    assert!(
        namespaces.contains(&serde_json::json!("gpu-inference")),
        "{namespaces:?}"
    );
    const EP: &str = "module.ex.module.lab.module.endpoint[\"iris\"].modelplane_endpoint.this";
    assert_eq!(
        planned(EP, "kubernetes.env_from_secret"),
        Some(serde_json::json!("minio-credentials"))
    );
    assert_eq!(
        planned(EP, "kubernetes.max_replicas"),
        Some(serde_json::json!(4))
    );
    assert_eq!(
        planned(EP, "kubernetes.expose.kind"),
        Some(serde_json::json!("ingress"))
    );
    assert_eq!(planned(EP, "port"), Some(serde_json::json!(8080)));
    assert_eq!(
        planned(
            "module.ex.module.lab.modelplane_model_store.this",
            "backend"
        ),
        Some(serde_json::json!("s3_compatible"))
    );

    // What it costs at the example's rates, in the plan: the partitions' quotas (A100 GPUs
    // of the training partition at their own rate, the others at `*`), and the endpoint's
    // four replicas of 500m and 512Mi.
    let money = |address: &str, path: &str| {
        planned(address, path)
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{address}.{path}: {:?}", planned(address, path)))
    };
    let hourly = (16.0 * 0.02 + 64.0 * 0.004 + 2.0 * 0.45) + 4.0 * 1.10 + 0.45;
    let got = money(CLUSTER, "estimated_cost.monthly_max");
    assert!(
        (got - (hourly * 73000.0f64).round() / 100.0).abs() < 0.011,
        "{got}"
    );
    let got = money(EP, "estimated_cost.monthly_max");
    assert!(
        (got - ((0.5 * 0.02 + 0.5 * 0.004) * 4.0 * 73000.0f64).round() / 100.0).abs() < 0.011,
        "{got}"
    );
    assert_eq!(
        planned(EP, "estimated_cost.basis"),
        Some(serde_json::json!("user"))
    );
    // A budget below the estimate fails the plan, naming the biggest contributor.
    crate::common::plan_refuses(
        &wd,
        &format!(
            "module \"ex\" {{\n  source         = {:?}\n  image_source   = {:?}\n  monthly_budget = 1000\n}}\n",
            relative_source("blueprints/on-prem-kubernetes/examples/gpu-lab"),
            layout.display().to_string(),
        ),
        "over its budget of USD 1000.00 a month. Biggest contributors: partition training",
    );

    // The blueprint's own variables refuse what cannot work.
    let bad = |vars: &str, want: &str| {
        crate::common::plan_refuses(
            &wd,
            &format!(
                "module \"bp\" {{\n  source       = {:?}\n  image_source = {:?}\n  registry     = \"registry.ml.internal/serve\"\n  store        = {{ bucket = \"models\", endpoint = \"http://minio:9000\" }}\n{vars}\n}}\n",
                relative_source("blueprints/on-prem-kubernetes"),
                layout.display().to_string(),
            ),
            want,
        );
    };
    bad(
        "  partitions = { training = { gpus = 2 } }",
        "must include \"inference\"",
    );
    bad(
        "  partitions = { serving = { gpus = 2 } }",
        "partitions keys must be dev, training or inference",
    );
    bad(
        "  name = \"GPU_Lab\"\n  partitions = { inference = { gpus = 1 } }",
        "lower-case letters, digits and '-'",
    );
}
