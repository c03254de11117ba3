//! Acceptance tests of the `container` platform and `modelplane_serving_image` through real
//! Terraform: the bundled image is built here, pushed by the provider into a real registry
//! (Debian's docker-registry), pulled and run by podman.

use crate::common;

use common::containers::{self, image_layout, Registry, SANDBOX_ARGS};
use common::{acc, check, predicts, Local};
use tfplugin::acctest::{attr_equals, plan_action, ImportStep, Step, TestCase};

const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}"#;

/// The bundled image pushed to the registry at `host` (resource `serve`) and a container
/// cluster `edge` on this host's podman.
fn image_and_cluster(host: &str) -> String {
    format!(
        r#"
resource "modelplane_serving_image" "serve" {{
  source     = {:?}
  repository = "{host}/modelplane/serve"
  insecure   = true
}}

resource "modelplane_gpu_cluster" "edge" {{
  name     = "edge"
  platform = "container"
}}
"#,
        image_layout().display().to_string()
    )
}

/// A local store `s` with iris version 1 in it (resource `m`).
fn local_store_and_iris() -> String {
    format!(
        r#"
resource "modelplane_model_store" "s" {{
  name          = "models"
  backend       = "local"
  force_destroy = true
}}
{}"#,
        iris()
    )
}

/// Iris version 1 in store `s` (resource `m`).
fn iris() -> String {
    format!(
        r#"
resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {:?}
}}
"#,
        common::qs("model/iris-v1.onnx")
    )
}

/// Endpoint `e` named `name` on cluster `edge`, serving model `m` from `image`, with the
/// `container` block's body and `extra` attributes or blocks.
fn endpoint(name: &str, image: &str, container: &str, extra: &str) -> String {
    format!(
        r#"
resource "modelplane_endpoint" "e" {{
  name    = {name:?}
  cluster = modelplane_gpu_cluster.edge.id
  image   = {image}
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
  container {{
    {container}
  }}
  {extra}
}}
"#
    )
}

const PUSHED: &str = "modelplane_serving_image.serve.reference";

/// The image pushed to `reg`, a container cluster, iris in a local store and an endpoint
/// `name` running the pushed image; `container_extra` goes into its container block.
fn config(l: &Local, reg: &Registry, name: &str, container_extra: &str, extra: &str) -> String {
    format!(
        "{}{}{}{}",
        l.provider(),
        image_and_cluster(&reg.host()),
        local_store_and_iris(),
        endpoint(
            name,
            PUSHED,
            &format!("memory = \"1g\"\n    extra_args = {SANDBOX_ARGS}\n    {container_extra}"),
            extra
        )
    )
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
                    .check(predicts(&l, "modelplane_endpoint.e", NAME)),
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
                    .check(predicts(&l, "modelplane_endpoint.e", NAME)),
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
                    .check(predicts(&l, "modelplane_endpoint.e", NAME)),
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
                    .check(predicts(&l, "modelplane_endpoint.e", NAME))
                    .import(ImportStep {
                        address: "modelplane_endpoint.e".into(),
                        id: Some(format!("container/edge/{NAME}")),
                        id_from: None,
                        ignore: vec![],
                    }),
            ],
            check_destroy: Some(containers::none_left(NAME)),
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
    let on_open = |image_ref: &str, extra: &str, container: &str| {
        format!(
            "{p}{}{}{}",
            image_and_cluster(&open.host()),
            local_store_and_iris(),
            endpoint(NAME, image_ref, container, extra)
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
                Step::new(on_open(&format!("{missing:?}"), "", &sandbox))
                    .expect_error("is not in its registry"),
                // A port in use.
                Step::new(on_open(PUSHED, &format!("port = {held_port}"), &sandbox))
                    .expect_error("(port|ports)(.|\\n)*in use"),
                // Plan-time errors name the attribute.
                Step::new(format!("{p}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name = \"c\"\n  platform = \"container\"\n  engine = \"containerd\"\n}}\n"))
                    .expect_error("Unknown container engine"),
                Step::new(on_open("null", "", &sandbox))
                    .expect_error("Missing image(.|\\n)*modelplane_serving_image"),
                Step::new(on_open("\"r.example.com/x:1\"", "", "memory = \"lots\""))
                    .expect_error("Invalid memory limit(.|\\n)*memory size"),
                Step::new(on_open("\"r.example.com/x:1\"", "", "restart = \"sometimes\""))
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
{rest}"#,
        state = l.path().display().to_string(),
        profile = common::emulators::AWS_PROFILE,
        moto = moto.url(),
        rest = image_and_cluster(&reg.host())
            + &iris()
            + &endpoint(
                NAME,
                PUSHED,
                r#"extra_args = ["--network", "host", "--tls-verify=false", "-e", "AWS_ACCESS_KEY_ID=testing", "-e", "AWS_SECRET_ACCESS_KEY=testing"]"#,
                ""
            ),
    );
    acc(
        "container_endpoint_from_s3",
        TestCase {
            // A prediction, from the artifact the server fetched into the mounted cache.
            steps: vec![Step::new(config).check(common::stores::predicts(&l, NAME))],
            check_destroy: Some(containers::none_left(NAME)),
            ..Default::default()
        },
    );
    drop(reg);
}

/// Bearer-token auth, as Docker Hub, Harbor, ECR and ACR use it: the registry sends the
/// client to a token service, which takes the user's credentials and issues a token for the
/// push. A wrong password is refused with the registry named; the right one pushes.
#[test]
fn serving_image_bearer_auth() {
    let Some(reg) = containers::token_registry("serving_image_bearer_auth", "ci", "t0ken-pass")
    else {
        return;
    };
    let l = Local::new("image-bearer");
    let layout = modelplane_serve::image::Layout::open(&image_layout()).unwrap();
    let image = |pass: &str| {
        format!(
            "{}\nresource \"modelplane_serving_image\" \"serve\" {{\n  source = {:?}\n  repository = \"{}/modelplane/serve\"\n  insecure = true\n  username = \"ci\"\n  password_wo = {pass:?}\n}}\n",
            l.provider(),
            image_layout().display().to_string(),
            reg.host()
        )
    };
    acc(
        "serving_image_bearer_auth",
        TestCase {
            steps: vec![
                // Plan-time errors name the attribute.
                Step::new(image("x").replace("/modelplane/serve\"", "/modelplane/serve:1.0\""))
                    .expect_error("Invalid repository(.|\\n)*holds a tag or digest"),
                Step::new(image("x").replace(&format!("{}/modelplane/serve", reg.host()), "modelplane/serve"))
                    .expect_error("Invalid repository(.|\\n)*registry host"),
                Step::new(image("x").replace("username = \"ci\"\n", ""))
                    .expect_error("Missing username"),
                Step::new(image("x").replace(&image_layout().display().to_string(), "/nonexistent"))
                    .expect_error("Invalid image source(.|\\n)*not an OCI image layout"),
                Step::new(image("wrong")).expect_error(
                    "Cannot push the image(.|\\n)*registry 127.0.0.1:[0-9]+ refused the(.|\\n)*credentials",
                ),
                Step::new(image("t0ken-pass"))
                    .check(attr_equals(
                        "modelplane_serving_image.serve",
                        "digest",
                        layout.digest.clone(),
                    ))
                    // The registry has it: refresh found it (an empty plan), and so does a
                    // client with a token.
                    .check(check(|s| {
                        let r = s
                            .attr("modelplane_serving_image.serve", "reference")
                            .and_then(|v| v.as_str().map(String::from))
                            .ok_or("no reference")?;
                        if r.contains("@sha256:") {
                            Ok(())
                        } else {
                            Err(format!("reference {r} is not pinned"))
                        }
                    })),
            ],
            ..Default::default()
        },
    );
    drop(reg);
}

/// A shared endpoint in a container: models attached, detached and imported while it runs,
/// each served from the container under its own route.
#[test]
fn container_shared_endpoint() {
    const NAME: &str = "pool-ctr";
    if !containers::podman("container_shared_endpoint") {
        return;
    }
    let Some(reg) = containers::registry("container_shared_endpoint", None) else {
        return;
    };
    containers::remove_all(NAME);
    let l = Local::new("container-shared");
    let config = |routes: &[&str]| {
        let mut tf = format!(
            "{}{}{}\nresource \"modelplane_endpoint\" \"e\" {{\n  name    = {NAME:?}\n  cluster = modelplane_gpu_cluster.edge.id\n  image   = {PUSHED}\n  shared {{\n    store         = modelplane_model_store.s.id\n    memory_budget = \"64Mi\"\n  }}\n  container {{\n    memory     = \"1g\"\n    extra_args = {SANDBOX_ARGS}\n  }}\n}}\n",
            l.provider(),
            image_and_cluster(&reg.host()),
            local_store_and_iris(),
        );
        for r in routes {
            tf.push_str(&format!(
                "\nresource \"modelplane_endpoint_model\" \"{r}\" {{\n  endpoint = modelplane_endpoint.e.id\n  name     = \"{r}\"\n  variant {{\n    name   = \"stable\"\n    model  = modelplane_model.m.id\n    weight = 100\n  }}\n}}\n"
            ));
        }
        tf
    };
    let route_infers = |route: &'static str, want: u16| {
        let dir = l.path();
        check(move |s| {
            let url = s
                .attr("modelplane_endpoint.e", "url")
                .and_then(|v| v.as_str().map(String::from))
                .ok_or("no url")?;
            let token = std::fs::read_to_string(dir.join("endpoints").join(NAME).join("token"))
                .map_err(|e| e.to_string())?;
            let u = format!("{url}/v2/models/{route}/infer");
            let (status, body) = common::http("POST", &u, Some(&token), Some(REQUEST))?;
            let ok = status == want
                && (want != 200 || body["outputs"][0]["data"] == serde_json::json!([0, 2]));
            if ok {
                Ok(())
            } else {
                Err(format!("{u}: HTTP {status} {body}, want {want}"))
            }
        })
    };
    acc(
        "container_shared_endpoint",
        TestCase {
            steps: vec![
                Step::new(config(&["a", "b"]))
                    .check(attr_equals("modelplane_endpoint.e", "status", "running"))
                    .check(route_infers("a", 200))
                    .check(route_infers("b", 200)),
                Step::new(config(&["a"]))
                    .plan_check(plan_action("modelplane_endpoint_model.b", "delete"))
                    .plan_check(plan_action("modelplane_endpoint.e", "no-op"))
                    .check(route_infers("a", 200))
                    .check(route_infers("b", 404))
                    .import(ImportStep {
                        address: "modelplane_endpoint_model.a".into(),
                        id: Some(format!("container/edge/{NAME}/a")),
                        id_from: None,
                        ignore: vec![],
                    }),
            ],
            check_destroy: Some(containers::none_left(NAME)),
            ..Default::default()
        },
    );
    drop(reg);
}
