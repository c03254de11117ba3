//! The HCL modules and blueprints, applied through real Terraform: each one's example is
//! used as a module from a test directory, serves real predictions, and is destroyed.

mod common;

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
