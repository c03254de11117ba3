//! Acceptance tests of `modelplane_endpoint_model` (models attached to a shared
//! `modelplane_endpoint`) on the local platform, through real Terraform: attach, change and
//! detach under load without a failed request, a detach out of band, import, a model that
//! cannot fit its budget, and 200 attachments in one apply with models evicted and loaded
//! again as the metrics show.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{acc, check, cluster_and_store, http, qs, Local};
use tfplugin::acctest::{attr_equals, attr_matches, plan_action, ImportStep, Step, TestCase};

const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}"#;

/// Provider, cluster, store, iris versions 1 and 2, and the shared endpoint `pool`.
fn base(l: &Local, budget: &str) -> String {
    format!(
        r#"{}
resource "modelplane_model" "v" {{
  for_each = {{ "1" = {:?}, "2" = {:?} }}
  store    = modelplane_model_store.s.id
  name     = "iris"
  version  = each.key
  source   = each.value
}}

resource "modelplane_endpoint" "pool" {{
  name    = "pool"
  cluster = modelplane_gpu_cluster.c.id
  shared {{
    store         = modelplane_model_store.s.id
    memory_budget = {budget:?}
    poll_interval = "500ms"
  }}
}}
"#,
        cluster_and_store(l),
        qs("model/iris-v1.onnx"),
        qs("model/iris-v2.onnx")
    )
}

/// A route, the version its `stable` variant serves, and an optional canary (version, weight).
type Route<'a> = (&'a str, &'a str, Option<(&'a str, i64)>);

/// One attachment per route.
fn attached(models: &[Route]) -> String {
    let mut out = String::new();
    for (name, stable, canary) in models {
        let (cw, canary_block) = match canary {
            Some((v, w)) => (
                *w,
                format!("\n  variant {{\n    name   = \"canary\"\n    model  = modelplane_model.v[{v:?}].id\n    weight = {w}\n  }}\n"),
            ),
            None => (0, String::new()),
        };
        out.push_str(&format!(
            r#"
resource "modelplane_endpoint_model" "{name}" {{
  endpoint = modelplane_endpoint.pool.id
  name     = "{name}"
  variant {{
    name   = "stable"
    model  = modelplane_model.v[{stable:?}].id
    weight = {}
  }}{canary_block}
}}
"#,
            100 - cw
        ));
    }
    out
}

fn url_of(s: &tfplugin::acctest::Shown, name: &str) -> String {
    s.attr(&format!("modelplane_endpoint_model.{name}"), "url")
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A real prediction through an attached model's route.
fn infers(l: &Local, name: &'static str) -> tfplugin::acctest::Check {
    let dir = l.path();
    check(move |s| {
        let token =
            std::fs::read_to_string(dir.join("endpoints/pool/token")).map_err(|e| e.to_string())?;
        let u = format!("{}/infer", url_of(s, name));
        let (status, body) = http("POST", &u, Some(&token), Some(REQUEST))?;
        if status != 200 || body["outputs"][0]["data"] != serde_json::json!([0, 2]) {
            return Err(format!("{u}: HTTP {status} {body}"));
        }
        Ok(())
    })
}

/// Sends requests to one route until stopped; counts successes and failures.
struct Load {
    stop: AtomicBool,
    ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Load {
    fn start(url: String, token: String) -> Arc<Load> {
        let load = Arc::new(Load {
            stop: AtomicBool::new(false),
            ok: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        });
        let l = load.clone();
        std::thread::spawn(move || {
            while !l.stop.load(Ordering::SeqCst) {
                match http("POST", &url, Some(&token), Some(REQUEST)) {
                    Ok((200, _)) => l.ok.fetch_add(1, Ordering::SeqCst),
                    other => {
                        l.first_error
                            .lock()
                            .unwrap()
                            .get_or_insert(format!("{other:?}"));
                        l.failed.fetch_add(1, Ordering::SeqCst)
                    }
                };
            }
        });
        load
    }
}

/// The body of a GET, as text.
fn text(url: &str) -> Result<String, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async { reqwest::get(url).await?.text().await })
        .map_err(|e| e.to_string())
}

/// The shared endpoint's `/metrics`, one value.
fn metric(url: &str, name: &str) -> Result<f64, String> {
    let text = text(&format!("{url}/metrics"))?;
    text.lines()
        .find(|l| l.split([' ', '{']).next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| format!("no {name} in /metrics"))
}

#[test]
fn shared_endpoint_attach_change_detach_and_import() {
    let l = Local::new("endpoint-model");
    let load: Arc<Mutex<Option<Arc<Load>>>> = Arc::default();
    let (load_start, load_check) = (load.clone(), load.clone());
    let dir = l.path();
    let registry = l.path();
    let three = format!(
        "{}{}",
        base(&l, "64Mi"),
        attached(&[("a", "1", None), ("b", "1", None), ("c", "2", None)])
    );
    let changed = format!(
        "{}{}",
        base(&l, "64Mi"),
        attached(&[("a", "1", None), ("b", "1", Some(("2", 50)))])
    );
    acc(
        "shared_endpoint_attach_change_detach_and_import",
        TestCase {
            steps: vec![
                Step::new(three.clone())
                    .check(attr_equals("modelplane_endpoint_model.a", "id", "local/c/pool/a"))
                    .check(attr_matches("modelplane_endpoint_model.a", "url", "^http://127\\.0\\.0\\.1:\\d+/v2/models/a$"))
                    .check(attr_equals("modelplane_endpoint_model.c", "model_digests.%", 1))
                    .check(infers(&l, "a"))
                    .check(infers(&l, "b"))
                    .check(infers(&l, "c"))
                    .check(check(move |s| {
                        // The registry file is where every server of the endpoint reads it.
                        let stores: Vec<_> = std::fs::read_dir(registry.join("stores")).map_err(|e| e.to_string())?.flatten().collect();
                        let found = stores.iter().any(|d| d.path().join(".endpoints/local/c/pool/a.json").is_file());
                        if !found {
                            return Err(format!("no registry file for a under {}", registry.display()));
                        }
                        let url = s.attr("modelplane_endpoint.pool", "url").and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
                        let n = metric(&url, "modelplane_models_registered")?;
                        if n != 2.0 {
                            return Err(format!("{n} model versions registered, want 2"));
                        }
                        Ok(())
                    }))
                    .import(ImportStep {
                        address: "modelplane_endpoint_model.b".into(),
                        id: Some("local/c/pool/b".into()),
                        id_from: None,
                        ignore: vec![],
                    }),
                // A canary on b and c detached, with requests to a flowing all along: a's plan
                // is untouched and none of its requests fails.
                Step::new(changed.clone())
                    .pre(move |_| {
                        let token = std::fs::read_to_string(dir.join("endpoints/pool/token")).unwrap();
                        let url = std::fs::read_to_string(dir.join("endpoints/pool/config.json"))
                            .ok()
                            .and_then(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
                            .and_then(|c| c["http"].as_str().map(|h| format!("http://{h}/v2/models/a/infer")))
                            .unwrap();
                        *load_start.lock().unwrap() = Some(Load::start(url, token));
                    })
                    .plan_check(plan_action("modelplane_endpoint_model.b", "update"))
                    .plan_check(plan_action("modelplane_endpoint_model.c", "delete"))
                    .plan_check(check(|s| {
                        let actions = s.planned_actions();
                        match actions.get("modelplane_endpoint_model.a") {
                            None => Ok(()),
                            Some(a) if a.iter().all(|x| x == "no-op") => Ok(()),
                            Some(a) => Err(format!("a is planned to {a:?}; a change to b and c must not touch it")),
                        }
                    }))
                    .check(infers(&l, "b"))
                    .check({
                        let d = l.path();
                        check(move |s| {
                            let token = std::fs::read_to_string(d.join("endpoints/pool/token")).map_err(|e| e.to_string())?;
                            let u = format!("{}/infer", url_of(s, "b")).replace("/b/", "/c/");
                            let (status, _) = http("POST", &u, Some(&token), Some(REQUEST))?;
                            if status != 404 {
                                return Err(format!("{u} after detaching c: HTTP {status}, want 404"));
                            }
                            Ok(())
                        })
                    })
                    .check(check(move |_| {
                        let load = load_check.lock().unwrap().take().ok_or("no load")?;
                        std::thread::sleep(Duration::from_millis(300));
                        load.stop.store(true, Ordering::SeqCst);
                        let (ok, failed) = (load.ok.load(Ordering::SeqCst), load.failed.load(Ordering::SeqCst));
                        if failed > 0 || ok == 0 {
                            return Err(format!("while b changed and c was detached, {ok} requests to a succeeded and {failed} failed: {:?}", load.first_error.lock().unwrap()));
                        }
                        Ok(())
                    })),
                // Detached out of band (its file deleted): refresh notices, the plan attaches
                // it again.
                Step::new(changed.clone())
                    .pre({
                        let d = l.path();
                        move |_| {
                            for s in std::fs::read_dir(d.join("stores")).unwrap().flatten() {
                                let _ = std::fs::remove_file(s.path().join(".endpoints/local/c/pool/a.json"));
                            }
                        }
                    })
                    .plan_check(plan_action("modelplane_endpoint_model.a", "create"))
                    .check(infers(&l, "a")),
                // The audit trail of one attachment: attached, then given a canary.
                Step::new(format!(
                    "{changed}\ndata \"modelplane_audit\" \"b\" {{\n  store    = modelplane_model_store.s.id\n  endpoint = \"local/c/pool/b\"\n}}\ndata \"modelplane_audit\" \"c\" {{\n  store    = modelplane_model_store.s.id\n  endpoint = \"c\"\n}}\n"
                ))
                .check(attr_equals("data.modelplane_audit.b", "records.#", 2))
                .check(attr_equals("data.modelplane_audit.b", "records.0.action", "create"))
                .check(attr_equals("data.modelplane_audit.b", "records.0.resource", "modelplane_endpoint_model"))
                .check(attr_equals("data.modelplane_audit.b", "records.1.action", "update"))
                .check(attr_equals("data.modelplane_audit.b", "records.1.split_after.canary", 50))
                .check(attr_equals("data.modelplane_audit.b", "records.1.changed.0", "variant"))
                .check(attr_equals("data.modelplane_audit.c", "records.#", 2))
                .check(attr_equals("data.modelplane_audit.c", "records.1.action", "delete")),
            ],
            check_destroy: Some({
                let d = l.path();
                check(move |_| {
                    let left = modelplane_provider::platforms::local::process::processes_under(&d);
                    if left.is_empty() { Ok(()) } else { Err(format!("servers left after destroy: {left:?}")) }
                })
            }),
            ..Default::default()
        },
    );
}

#[test]
fn shared_endpoint_refusals() {
    let l = Local::new("endpoint-model-refusals");
    let tiny = format!("{}{}", base(&l, "4k"), attached(&[("a", "1", None)]));
    let not_shared = format!(
        "{}\nresource \"modelplane_endpoint\" \"own\" {{\n  name    = \"own\"\n  cluster = modelplane_gpu_cluster.c.id\n  variant {{\n    name   = \"only\"\n    model  = modelplane_model.v[\"1\"].id\n    weight = 100\n  }}\n}}\n\nresource \"modelplane_endpoint_model\" \"x\" {{\n  endpoint = modelplane_endpoint.own.id\n  name     = \"x\"\n  variant {{\n    name   = \"stable\"\n    model  = modelplane_model.v[\"1\"].id\n    weight = 100\n  }}\n}}\n",
        base(&l, "64Mi")
    );
    let with_variant = base(&l, "64Mi").replace(
        "  shared {",
        "  variant {\n    name   = \"x\"\n    model  = modelplane_model.v[\"1\"].id\n    weight = 100\n  }\n  shared {",
    );
    let bad_budget = base(&l, "lots");
    acc(
        "shared_endpoint_refusals",
        TestCase {
            steps: vec![
                Step::new(with_variant).expect_error("Not on a shared endpoint"),
                Step::new(bad_budget).expect_error("Invalid memory budget"),
                // A model that cannot fit even alone: the apply fails naming the budget, and
                // nothing is attached.
                Step::new(tiny).expect_error("(?s)does not serve.*memory.*budget"),
                Step::new(not_shared).expect_error("(?s)is not shared.*shared.*block"),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn two_hundred_models_attached_in_one_apply() {
    let l = Local::new("endpoint-model-200");
    // Twenty versions, two hundred routes over them, and room for about eight loaded.
    let mut tf = cluster_and_store(&l);
    tf.push_str(&format!(
        r#"
resource "modelplane_model" "v" {{
  for_each = toset([for i in range(1, 21) : tostring(i)])
  store    = modelplane_model_store.s.id
  name     = "iris"
  version  = each.key
  source   = {:?}
}}

resource "modelplane_endpoint" "pool" {{
  name    = "pool"
  cluster = modelplane_gpu_cluster.c.id
  shared {{
    store         = modelplane_model_store.s.id
    memory_budget = "150k"
  }}
}}

resource "modelplane_endpoint_model" "m" {{
  for_each = toset([for i in range(200) : tostring(i)])
  endpoint = modelplane_endpoint.pool.id
  name     = "m${{each.key}}"
  variant {{
    name   = "only"
    model  = modelplane_model.v[tostring(tonumber(each.key) % 20 + 1)].id
    weight = 100
  }}
}}
"#,
        qs("model/iris-v1.onnx")
    ));
    let dir = l.path();
    acc(
        "two_hundred_models_attached_in_one_apply",
        TestCase {
            steps: vec![Step::new(tf).check(check(move |s| {
                let url = s
                    .attr("modelplane_endpoint.pool", "url")
                    .and_then(|v| v.as_str().map(String::from))
                    .ok_or("no url")?;
                let token = std::fs::read_to_string(dir.join("endpoints/pool/token")).map_err(|e| e.to_string())?;
                for m in ["m0", "m57", "m199"] {
                    let (status, body) = http("POST", &format!("{url}/v2/models/{m}/infer"), Some(&token), Some(REQUEST))?;
                    if status != 200 || body["outputs"][0]["data"] != serde_json::json!([0, 2]) {
                        return Err(format!("{m}: HTTP {status} {body}"));
                    }
                }
                let registered = metric(&url, "modelplane_models_registered")?;
                let loads = metric(&url, "modelplane_model_loads_total")?;
                let evictions = metric(&url, "modelplane_model_evictions_total")?;
                let resident = metric(&url, "modelplane_models_resident")?;
                let used = metric(&url, "modelplane_memory_resident_bytes")?;
                let reloads = metric(&url, "modelplane_reloads_total")?;
                if registered != 20.0 {
                    return Err(format!("{registered} versions registered, want 20"));
                }
                // Apply loaded each route's model once to check it: all twenty were loaded,
                // and most evicted again to stay within the budget.
                if loads < 20.0 || evictions < 10.0 || resident > 10.0 || used > 150.0 * 1024.0 {
                    return Err(format!("loads {loads}, evictions {evictions}, resident {resident}, bytes {used}"));
                }
                // Two hundred applies, far fewer reloads: concurrent applies share them.
                if reloads >= 200.0 {
                    return Err(format!("{reloads} reloads for 200 attachments"));
                }
                eprintln!("200 attachments: {reloads} reloads, {loads} loads, {evictions} evictions, {resident} resident");
                Ok(())
            }))],
            ..Default::default()
        },
    );
}

/// A shared endpoint on the `kubernetes` platform (the in-memory API server, with S3 on
/// moto): the Deployment's configuration names the registry and the budget, an attachment
/// lands in the store where every pod reads it, the apply says the pods are out of its
/// reach instead of failing, refresh and import read the attachment back, and destroy
/// removes it.
#[test]
fn kubernetes_shared_endpoint_on_the_fake_api_server() {
    const TEST: &str = "kubernetes_shared_endpoint_on_the_fake_api_server";
    let Some(moto) = common::emulators::moto(TEST) else {
        return;
    };
    let kube = crate::kubernetes::fake_api_server_with(vec![], true);
    let l = Local::new("k8s-shared");
    let config = format!(
        r#"provider "modelplane" {{
  local {{
    state_dir = {:?}
  }}
  aws {{
    region       = "us-east-1"
    profile      = {:?}
    endpoint_url = {:?}
  }}
  kubernetes {{
    host = {:?}
  }}
}}

resource "modelplane_gpu_cluster" "k" {{
  name     = "gpu"
  platform = "kubernetes"
  partition {{
    purpose = "inference"
    gpus    = 1
  }}
}}

resource "modelplane_model_store" "s" {{
  name          = "shared-models"
  backend       = "s3"
  force_destroy = true
}}

resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {:?}
}}

resource "modelplane_endpoint" "pool" {{
  name    = "pool"
  cluster = modelplane_gpu_cluster.k.id
  image   = "registry.example/modelplane-serve@sha256:{}"
  shared {{
    store         = modelplane_model_store.s.id
    memory_budget = "256Mi"
  }}
}}

resource "modelplane_endpoint_model" "a" {{
  endpoint = modelplane_endpoint.pool.id
  name     = "a"
  pinned   = true
  variant {{
    name   = "stable"
    model  = modelplane_model.m.id
    weight = 100
  }}
}}
"#,
        l.path().display().to_string(),
        common::emulators::AWS_PROFILE,
        moto.url(),
        kube.url,
        qs("model/iris-v1.onnx"),
        "0".repeat(64),
    );
    let kube_url = kube.url.clone();
    let store = format!(
        "s3://shared-models?region=us-east-1&endpoint={}&path_style=true",
        url::form_urlencoded::byte_serialize(moto.url().as_bytes()).collect::<String>()
    );
    let registry_has = move |present: bool| {
        let loc = modelplane_serve::objects::Location::parse(&store).unwrap();
        check(move |_| {
            let auth = crate::model_store::aws_auth();
            let found = crate::model_store::object_exists(
                &loc,
                &auth,
                ".endpoints/kubernetes/gpu/pool/a.json",
            );
            if found == present {
                Ok(())
            } else {
                Err(format!(
                    "the registry object is there: {found}, want {present}"
                ))
            }
        })
    };
    acc(
        TEST,
        TestCase {
            steps: vec![Step::new(config)
                .check(attr_equals(
                    "modelplane_endpoint_model.a",
                    "id",
                    "kubernetes/gpu/pool/a",
                ))
                .check(registry_has(true))
                .check(check(move |_| {
                    let (status, cm) = http(
                        "GET",
                        &format!(
                            "{kube_url}/api/v1/namespaces/gpu-inference/configmaps/pool-config"
                        ),
                        None,
                        None,
                    )?;
                    let cfg: serde_json::Value = cm["data"]
                        .as_object()
                        .and_then(|d| d.values().find_map(|v| v.as_str()))
                        .and_then(|s| serde_json::from_str(s).ok())
                        .ok_or(format!(
                            "no configuration in the ConfigMap ({status}): {cm}"
                        ))?;
                    if cfg["shared"]["registry"] != ".endpoints/kubernetes/gpu/pool"
                        || cfg["limits"]["memory_budget_bytes"] != 256u64 << 20
                    {
                        return Err(format!("the pods' configuration: {cfg}"));
                    }
                    Ok(())
                }))
                .import(ImportStep {
                    address: "modelplane_endpoint_model.a".into(),
                    id: Some("kubernetes/gpu/pool/a".into()),
                    id_from: None,
                    ignore: vec![],
                })],
            check_destroy: Some(registry_has(false)),
            ..Default::default()
        },
    );
}
