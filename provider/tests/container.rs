//! Acceptance tests of the `container` platform and `modelplane_serving_image` through real
//! Terraform: the bundled image is built here, pushed by the provider into a real registry
//! (Debian's docker-registry), pulled and run by podman.

mod common;

use common::containers::{self, image_layout, Registry, SANDBOX_ARGS};
use common::{acc, check, Local};
use tfplugin::acctest::{attr_equals, plan_action, Step, TestCase};

const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}"#;

/// The image pushed to `reg`, a container cluster, the iris model in a local store and an
/// endpoint `name` running the pushed image; `container_extra` goes into its container block.
fn config(l: &Local, reg: &Registry, name: &str, container_extra: &str, extra: &str) -> String {
    format!(
        r#"{provider}
resource "modelplane_serving_image" "serve" {{
  source     = {source:?}
  repository = "{host}/modelplane/serve"
  insecure   = true
}}

resource "modelplane_gpu_cluster" "edge" {{
  name     = "edge"
  platform = "container"
}}

resource "modelplane_model_store" "s" {{
  name          = "models"
  backend       = "local"
  force_destroy = true
}}

resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {model:?}
}}

resource "modelplane_endpoint" "e" {{
  name    = {name:?}
  cluster = modelplane_gpu_cluster.edge.id
  image   = modelplane_serving_image.serve.reference
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
  container {{
    memory     = "1g"
    extra_args = {SANDBOX_ARGS}
    {container_extra}
  }}
  {extra}
}}
"#,
        provider = l.provider(),
        source = image_layout().display().to_string(),
        host = reg.host(),
        model = common::qs("model/iris-v1.onnx"),
    )
}

/// A real prediction from the container.
fn predicts(l: &Local, endpoint: &'static str) -> tfplugin::acctest::Check {
    let dir = l.path();
    check(move |s| {
        let url = s
            .attr("modelplane_endpoint.e", "url")
            .and_then(|u| u.as_str().map(String::from))
            .ok_or("endpoint has no url")?;
        let token = std::fs::read_to_string(dir.join("endpoints").join(endpoint).join("token"))
            .map_err(|e| e.to_string())?;
        let u = format!("{url}/v2/models/{endpoint}/infer");
        let (status, body) = common::http("POST", &u, Some(&token), Some(REQUEST))?;
        if status != 200 || body["outputs"][0]["data"] != serde_json::json!([0, 2]) {
            return Err(format!("{u}: HTTP {status} {body}"));
        }
        Ok(())
    })
}

/// The endpoint runs in exactly one container, of the pushed image by digest, as the image's
/// non-root user; returns its id through `seen`.
fn one_container(
    endpoint: &'static str,
    seen: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
) -> tfplugin::acctest::Check {
    check(move |s| {
        let ids = containers::containers_of(endpoint);
        let [id] = ids.as_slice() else {
            return Err(format!("expected one container, found {ids:?}"));
        };
        let reference = s
            .attr("modelplane_serving_image.serve", "reference")
            .and_then(|u| u.as_str().map(String::from))
            .ok_or("no reference")?;
        let running = s
            .attr("modelplane_endpoint.e", "running_image")
            .and_then(|u| u.as_str().map(String::from))
            .ok_or("no running_image")?;
        if running != reference {
            return Err(format!("running_image {running} != {reference}"));
        }
        let (image, user, state) = (
            containers::inspect(id, "{{.ImageName}}"),
            containers::inspect(id, "{{.Config.User}}"),
            containers::inspect(id, "{{.State.Status}}"),
        );
        if image != reference || state != "running" {
            return Err(format!("container {id}: image {image}, state {state}"));
        }
        if !user.is_empty() && user.starts_with("0") {
            return Err(format!("container {id} runs as {user:?}"));
        }
        seen.lock().unwrap().push(id.clone());
        Ok(())
    })
}

#[test]
fn container_endpoint_lifecycle() {
    const NAME: &str = "iris-ctr";
    if !containers::podman("container_endpoint_lifecycle") {
        return;
    }
    let Some(reg) = containers::registry("container_endpoint_lifecycle", None) else {
        return;
    };
    containers::remove_all(NAME);
    let l = Local::new("container");
    let layout = modelplane_serve::image::Layout::open(&image_layout()).unwrap();
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    let (killed, k2) = (seen.clone(), seen.clone());
    acc(
        "container_endpoint_lifecycle",
        TestCase {
            steps: vec![
                // Push, run, serve.
                Step::new(config(&l, &reg, NAME, "", ""))
                    .check(attr_equals(
                        "modelplane_serving_image.serve",
                        "digest",
                        layout.digest.clone(),
                    ))
                    .check(attr_equals("modelplane_gpu_cluster.edge", "engine", "podman"))
                    .check(attr_equals("modelplane_endpoint.e", "status", "running"))
                    .check(one_container(NAME, seen.clone()))
                    .check(predicts(&l, NAME)),
                // A change the SLO refuses is rolled back: the first container keeps serving.
                Step::new(config(
                    &l,
                    &reg,
                    NAME,
                    "cpus = 1",
                    &format!(
                        "benchmark {{\n    payload  = {REQUEST:?}\n    duration = \"1s\"\n    slo {{\n      min_rps = 1000000000\n    }}\n  }}"
                    ),
                ))
                .expect_error("SLO missed(.|\\n)*rolled back|SLO missed"),
                // Nothing to change after the rollback: the previous settings run.
                Step::new(config(&l, &reg, NAME, "", ""))
                    .plan_check(plan_action("modelplane_endpoint.e", "no-op"))
                    .check(one_container(NAME, s1.clone()))
                    .check(check(move |_| {
                        let id = s2.lock().unwrap().last().cloned().unwrap();
                        match containers::inspect(&id, "{{.HostConfig.NanoCpus}}").as_str() {
                            "0" => Ok(()),
                            other => Err(format!("the rolled-back container has a CPU limit: {other}")),
                        }
                    }))
                    .check(predicts(&l, NAME)),
                // A container setting replaces the container; the old one is gone.
                Step::new(config(&l, &reg, NAME, "cpus = 1", ""))
                    .plan_check(plan_action("modelplane_endpoint.e", "update"))
                    .check(one_container(NAME, s3.clone()))
                    .check(check(move |_| {
                        let v = s3.lock().unwrap();
                        let cpus = containers::inspect(&v[v.len() - 1], "{{.HostConfig.NanoCpus}}");
                        if v[v.len() - 1] != v[v.len() - 2] && cpus == "1000000000" {
                            Ok(())
                        } else {
                            Err(format!("the container was not replaced with cpus = 1: {v:?}, NanoCpus {cpus}"))
                        }
                    }))
                    .check(predicts(&l, NAME)),
                // Drift: the container removed out of band is noticed and started again.
                Step::new(config(&l, &reg, NAME, "cpus = 1", ""))
                    .pre(move |_| {
                        let id = killed.lock().unwrap().last().cloned().unwrap();
                        let out = std::process::Command::new("podman")
                            .args(["rm", "-f", "-t", "0", &id])
                            .output()
                            .unwrap();
                        assert!(out.status.success(), "podman rm: {out:?}");
                    })
                    .plan_check(plan_action("modelplane_endpoint.e", "update"))
                    .check(one_container(NAME, k2))
                    .check(predicts(&l, NAME)),
            ],
            check_destroy: Some(check(move |_| {
                let left = containers::containers_of(NAME);
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("containers left after destroy: {left:?}"))
                }
            })),
            ..Default::default()
        },
    );
    drop(reg);
}

#[test]
fn container_bad_input() {
    const NAME: &str = "iris-bad";
    if !containers::podman("container_bad_input") {
        return;
    }
    let Some(reg) = containers::registry("container_bad_input", Some(("ci", "s3cret"))) else {
        return;
    };
    let Some(open) = containers::registry("container_bad_input", None) else {
        return;
    };
    containers::remove_all(NAME);
    let l = Local::new("container-bad");
    let p = l.provider();
    let image = |user: &str, pass: &str| {
        format!(
            "{p}\nresource \"modelplane_serving_image\" \"serve\" {{\n  source = {:?}\n  repository = \"{}/modelplane/serve\"\n  insecure = true\n  username = {user:?}\n  password_wo = {pass:?}\n}}\n",
            image_layout().display().to_string(),
            reg.host()
        )
    };
    // A port held by another program.
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let held_port = held.local_addr().unwrap().port();
    let sandbox = format!("extra_args = {SANDBOX_ARGS}");
    let endpoint = |image_ref: &str, extra: &str, container: &str| {
        format!(
            r#"{p}
resource "modelplane_gpu_cluster" "edge" {{
  name     = "edge"
  platform = "container"
}}
resource "modelplane_model_store" "s" {{
  name          = "models"
  backend       = "local"
  force_destroy = true
}}
resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {:?}
}}
resource "modelplane_serving_image" "serve" {{
  source     = {:?}
  repository = "{}/modelplane/serve"
  insecure   = true
}}
resource "modelplane_endpoint" "e" {{
  name    = "{NAME}"
  cluster = modelplane_gpu_cluster.edge.id
  image   = {image_ref:?}
  {extra}
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
  container {{
    {container}
  }}
}}
"#,
            common::qs("model/iris-v1.onnx"),
            image_layout().display().to_string(),
            open.host(),
        )
    };
    let missing = format!(
        "{}/modelplane/absent@sha256:{}",
        open.host(),
        "0".repeat(64)
    );
    acc(
        "container_bad_input",
        TestCase {
            steps: vec![
                // Registry auth: a wrong password is refused with the registry named; the
                // right one pushes (basic auth).
                Step::new(image("ci", "wrong"))
                    .expect_error("Cannot push the image(.|\\n)*refused"),
                Step::new(image("ci", "s3cret")).check(attr_equals(
                    "modelplane_serving_image.serve",
                    "tag",
                    "test",
                )),
                // An image the registry does not have.
                Step::new(endpoint(&missing, "", &sandbox)).expect_error("is not in its registry"),
                // A port in use.
                Step::new(endpoint(
                    "${modelplane_serving_image.serve.reference}",
                    &format!("port = {held_port}"),
                    &sandbox,
                ))
                .expect_error("(port|ports)(.|\\n)*in use"),
                // Plan-time errors name the attribute.
                Step::new(format!("{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"container\"\n  engine = \"containerd\"\n}}\n"))
                    .expect_error("Unknown container engine"),
                Step::new(endpoint("", "", &sandbox).replace("image   = \"\"\n", ""))
                    .expect_error("Missing image(.|\\n)*modelplane_serving_image"),
                Step::new(endpoint("r.example.com/x:1", "", "memory = \"lots\""))
                    .expect_error("Invalid memory limit(.|\\n)*memory size"),
                Step::new(endpoint("r.example.com/x:1", "", "restart = \"sometimes\""))
                    .expect_error("Invalid restart policy"),
            ],
            ..Default::default()
        },
    );
    drop(held);
    containers::remove_all(NAME);
}

/// `serve/Containerfile` builds a working image from the same file list. The build stage
/// (a Rust toolchain image from Docker Hub, out of reach here) is replaced by the files
/// `modelplane-serve image --rootfs` writes, given as that stage's build context.
#[test]
fn containerfile_builds_the_image() {
    if !containers::podman("containerfile_builds_the_image") {
        return;
    }
    image_layout(); // builds modelplane-serve when needed
    let target = std::path::PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-modelplane"));
    let serve = target.parent().unwrap().join("modelplane-serve");
    let ctx = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(&serve)
        .args(["image", "--compression", "1", "--rootfs"])
        .arg(ctx.path().join("out/rootfs"))
        .output()
        .unwrap();
    assert!(out.status.success(), "image --rootfs: {out:?}");
    let tag = format!("localhost/modelplane-containerfile:{}", std::process::id());
    let out = std::process::Command::new("podman")
        .args(["build", "-q", "--build-context"])
        .arg(format!("build={}", ctx.path().display()))
        .arg("-f")
        .arg(common::repo().join("serve/Containerfile"))
        .args(["-t", &tag])
        .arg(common::repo().join("serve"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman build: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = std::process::Command::new("podman")
        .args(["run", "--rm", "--network", "host", &tag, "--version"])
        .output()
        .unwrap();
    let user = containers::inspect(&tag, "{{.Config.User}}");
    let _ = std::process::Command::new("podman")
        .args(["rmi", "-f", &tag])
        .output();
    assert!(
        String::from_utf8_lossy(&run.stdout).starts_with("modelplane-serve "),
        "{run:?}"
    );
    assert_eq!(user, "65532:65532");
}

/// A container endpoint whose server fetches the model from an object store (moto, S3 API)
/// into the mounted cache. The container's credentials come through `extra_args`, as an
/// `--env-file` would give them on a real host (the provider copies no keys).
#[test]
fn container_endpoint_from_s3() {
    const NAME: &str = "iris-s3";
    if !containers::podman("container_endpoint_from_s3") {
        return;
    }
    let Some(moto) = common::emulators::moto("container_endpoint_from_s3") else {
        return;
    };
    let Some(reg) = containers::registry("container_endpoint_from_s3", None) else {
        return;
    };
    common::emulators::aws_profile_env();
    containers::remove_all(NAME);
    let l = Local::new("container-s3");
    let config = format!(
        r#"provider "modelplane" {{
  local {{
    state_dir = {state:?}
  }}
  aws {{
    region  = "us-east-1"
    profile = {profile:?}
  }}
}}

resource "modelplane_model_store" "s" {{
  name          = "ctr-models"
  backend       = "s3_compatible"
  endpoint      = {moto:?}
  force_destroy = true
}}

resource "modelplane_serving_image" "serve" {{
  source     = {source:?}
  repository = "{host}/modelplane/serve"
  insecure   = true
}}

resource "modelplane_gpu_cluster" "edge" {{
  name     = "edge"
  platform = "container"
}}

resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {model:?}
}}

resource "modelplane_endpoint" "e" {{
  name    = {NAME:?}
  cluster = modelplane_gpu_cluster.edge.id
  image   = modelplane_serving_image.serve.reference
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
  container {{
    extra_args = ["--network", "host", "--tls-verify=false", "-e", "AWS_ACCESS_KEY_ID=testing", "-e", "AWS_SECRET_ACCESS_KEY=testing"]
  }}
}}
"#,
        state = l.path().display().to_string(),
        profile = common::emulators::AWS_PROFILE,
        moto = moto.url(),
        source = image_layout().display().to_string(),
        host = reg.host(),
        model = common::qs("model/iris-v1.onnx"),
    );
    let cache = l.path().join("cache");
    acc(
        "container_endpoint_from_s3",
        TestCase {
            steps: vec![Step::new(config)
                .check(predicts(&l, NAME))
                .check(check(move |_| {
                    let sha = modelplane_serve::signature::file_digest(
                        &common::repo().join("examples/quickstart/model/iris-v1.onnx"),
                    )
                    .unwrap()
                    .0;
                    if cache.join(format!("{sha}.onnx")).is_file() {
                        Ok(())
                    } else {
                        Err(format!(
                            "no {sha}.onnx in the mounted cache {}",
                            cache.display()
                        ))
                    }
                }))],
            check_destroy: Some(check(move |_| {
                let left = containers::containers_of(NAME);
                if left.is_empty() {
                    Ok(())
                } else {
                    Err(format!("containers left after destroy: {left:?}"))
                }
            })),
            ..Default::default()
        },
    );
    drop(reg);
}
