//! Acceptance tests of `modelplane_endpoint` on the local platform, through real Terraform:
//! real server processes, real inference, real benchmarks.

use crate::common;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{acc, check, cluster_and_store, harness, http, qs, Local};
use tfplugin::acctest::{
    attr_equals, attr_matches, plan_action, ImportStep, Shown, Step, TestCase,
};

const ADDR: &str = "modelplane_endpoint.e";
const REQUEST: &str = r#"{"inputs": [{"name": "input", "shape": [2, 4], "datatype": "FP32", "data": [5.1, 3.5, 1.4, 0.2, 6.7, 3.0, 5.2, 2.3]}]}"#;

/// Provider, cluster, store and two versions of the iris model.
fn base(l: &Local) -> String {
    format!(
        r#"{}
resource "modelplane_model" "v" {{
  for_each = {{ "1" = {:?}, "2" = {:?} }}
  store    = modelplane_model_store.s.id
  name     = "iris"
  version  = each.key
  source   = each.value
}}
"#,
        cluster_and_store(l),
        qs("model/iris-v1.onnx"),
        qs("model/iris-v2.onnx")
    )
}

/// An endpoint splitting `stable`/`canary` between versions 1 and 2.
fn endpoint(l: &Local, name: &str, stable: i64, canary: i64, extra: &str) -> String {
    format!(
        r#"{}
resource "modelplane_endpoint" "e" {{
  name    = {name:?}
  cluster = modelplane_gpu_cluster.c.id

  variant {{
    name   = "stable"
    model  = modelplane_model.v["1"].id
    weight = {stable}
  }}

  variant {{
    name   = "canary"
    model  = modelplane_model.v["2"].id
    weight = {canary}
  }}
{extra}}}
"#,
        base(l)
    )
}

fn benchmark(slo: &str) -> String {
    format!("\n  benchmark {{\n    payload     = {REQUEST:?}\n    concurrency = 2\n    duration    = \"500ms\"\n    warmup      = \"100ms\"\n{slo}  }}\n")
}

fn grpc_benchmark(slo: &str) -> String {
    benchmark(slo).replace(
        "    concurrency = 2\n",
        "    concurrency = 2\n    protocol    = \"grpc\"\n",
    )
}

fn url(s: &Shown) -> String {
    s.attr(ADDR, "url")
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// A real prediction through the endpoint.
fn infers(l: &Local, endpoint: &'static str) -> tfplugin::acctest::Check {
    let token_dir = l.path();
    check(move |s| {
        let token =
            std::fs::read_to_string(token_dir.join("endpoints").join(endpoint).join("token"))
                .map_err(|e| e.to_string())?;
        let u = format!("{}/v2/models/{endpoint}/infer", url(s));
        let (status, body) = http("POST", &u, Some(&token), Some(REQUEST))?;
        if status != 200 || body["outputs"][0]["data"] != serde_json::json!([0, 2]) {
            return Err(format!("{u}: HTTP {status} {body}"));
        }
        let (status, _) = http("POST", &u, None, Some(REQUEST))?;
        if status != 401 {
            return Err(format!("{u} without the token: HTTP {status}, want 401"));
        }
        Ok(())
    })
}

/// The split the server itself reports.
fn serves(
    l: &Local,
    endpoint: &'static str,
    want: &'static [(&'static str, u64)],
) -> tfplugin::acctest::Check {
    let token_dir = l.path();
    check(move |s| {
        let token =
            std::fs::read_to_string(token_dir.join("endpoints").join(endpoint).join("token"))
                .map_err(|e| e.to_string())?;
        let (_, cfg) = http(
            "GET",
            &format!("{}/v2/admin/config", url(s)),
            Some(&token),
            None,
        )?;
        let got: Vec<(String, u64)> = cfg["endpoints"][0]["variants"]
            .as_array()
            .map(|vs| {
                vs.iter()
                    .map(|v| {
                        (
                            v["name"].as_str().unwrap_or("").to_string(),
                            v["weight"].as_u64().unwrap_or(0),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let want: Vec<(String, u64)> = want.iter().map(|(n, w)| (n.to_string(), *w)).collect();
        if got == want {
            Ok(())
        } else {
            Err(format!("the server serves {got:?}, want {want:?}"))
        }
    })
}

/// Remembers the server's pid, and checks whether it is the one remembered before.
fn pid_is(
    l: &Local,
    endpoint: &'static str,
    seen: Arc<Mutex<Option<i32>>>,
    same: Option<bool>,
) -> tfplugin::acctest::Check {
    let dir = l.path();
    check(move |_| {
        let p = modelplane_provider::platforms::local::process::Dir::new(&dir, endpoint)
            .process()
            .ok_or("no process.json")?;
        if !p.alive() {
            return Err(format!("server {} is not running", p.pid));
        }
        let mut prev = seen.lock().unwrap();
        let r = match (same, *prev) {
            (Some(true), Some(old)) if old != p.pid => Err(format!(
                "server restarted ({old} → {}), want a reload",
                p.pid
            )),
            (Some(false), Some(old)) if old == p.pid => {
                Err(format!("server {old} kept running, want a restart"))
            }
            (Some(false), Some(old)) if start_alive(old) => {
                Err(format!("old server {old} still runs after the restart"))
            }
            _ => Ok(()),
        };
        *prev = Some(p.pid);
        r
    })
}

fn start_alive(pid: i32) -> bool {
    modelplane_provider::platforms::local::process::start_time(pid).is_some()
}

/// Sends inference requests in a loop until stopped; counts successes and failures.
struct Load {
    stop: Arc<AtomicBool>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    first_error: Arc<Mutex<Option<String>>>,
}

impl Load {
    fn start(url: String, token: String) -> Arc<Load> {
        let load = Arc::new(Load {
            stop: Arc::default(),
            ok: Arc::default(),
            failed: Arc::default(),
            first_error: Arc::default(),
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

#[test]
fn endpoint_lifecycle() {
    let l = Local::new("endpoint");
    let pid = Arc::new(Mutex::new(None));
    let load: Arc<Mutex<Option<Arc<Load>>>> = Arc::default();
    let (load_start, load_check) = (load.clone(), load.clone());
    let (dir, dir2) = (l.path(), l.path());
    let url_seen: Arc<Mutex<String>> = Arc::default();
    let (u1, u2) = (url_seen.clone(), url_seen.clone());
    acc(
        "endpoint_lifecycle",
        TestCase {
            steps: vec![
                Step::new(endpoint(&l, "iris", 90, 10, ""))
                    .check(attr_equals(ADDR, "status", "running"))
                    .check(attr_equals(ADDR, "id", "local/c/iris"))
                    .check(attr_matches(ADDR, "url", "^http://127\\.0\\.0\\.1:\\d+$"))
                    .check(attr_matches(ADDR, "grpc_address", "^127\\.0\\.0\\.1:\\d+$"))
                    .check(attr_equals(ADDR, "token_fingerprint", "generated"))
                    .check(infers(&l, "iris"))
                    .check(serves(&l, "iris", &[("stable", 90), ("canary", 10)]))
                    .check(pid_is(&l, "iris", pid.clone(), None))
                    .check(check(move |s| {
                        // The token is in a private file, never in state.
                        use std::os::unix::fs::PermissionsExt;
                        let f = dir.join("endpoints/iris/token");
                        let token = std::fs::read_to_string(&f).map_err(|e| e.to_string())?;
                        if std::fs::metadata(&f).unwrap().permissions().mode() & 0o777 != 0o600 {
                            return Err("token file is not 0600".into());
                        }
                        if s.0.to_string().contains(token.trim()) {
                            return Err("the token is in the state".into());
                        }
                        *u1.lock().unwrap() = url(s);
                        Ok(())
                    }))
                    .import(ImportStep { address: ADDR.into(), id: Some("local/c/iris".into()), id_from: None, ignore: vec![] }),
                // New weights: a hot reload, with requests flowing all along and none dropped.
                Step::new(endpoint(&l, "iris", 50, 50, ""))
                    .pre(move |_| {
                        let url = format!("{}/v2/models/iris/infer", u2.lock().unwrap());
                        let token = std::fs::read_to_string(dir2.join("endpoints/iris/token")).unwrap();
                        *load_start.lock().unwrap() = Some(Load::start(url, token));
                    })
                    .plan_check(plan_action(ADDR, "update"))
                    .check(serves(&l, "iris", &[("stable", 50), ("canary", 50)]))
                    .check(pid_is(&l, "iris", pid.clone(), Some(true)))
                    .check(check(move |_| {
                        let load = load_check.lock().unwrap().take().ok_or("no load")?;
                        std::thread::sleep(Duration::from_millis(200));
                        load.stop.store(true, Ordering::SeqCst);
                        let (ok, failed) = (load.ok.load(Ordering::SeqCst), load.failed.load(Ordering::SeqCst));
                        if failed > 0 || ok == 0 {
                            return Err(format!("during the reload {ok} requests succeeded and {failed} failed: {:?}", load.first_error.lock().unwrap()));
                        }
                        Ok(())
                    })),
                // Batching needs a restart: a new process on the same URL, the old one gone.
                Step::new(endpoint(&l, "iris", 50, 50, "\n  batching {\n    max_batch_size = 8\n    max_delay_ms   = 2\n  }\n"))
                    .plan_check(plan_action(ADDR, "update"))
                    .check(pid_is(&l, "iris", pid.clone(), Some(false)))
                    .check(check(move |s| {
                        let before = url_seen.lock().unwrap().clone();
                        if url(s) == before { Ok(()) } else { Err(format!("the URL changed from {before} to {}", url(s))) }
                    }))
                    .check(infers(&l, "iris")),
                // A new name is a new endpoint: the old server stops.
                Step::new(endpoint(&l, "flowers", 50, 50, ""))
                    .plan_check(plan_action(ADDR, "replace"))
                    .check(pid_is(&l, "flowers", pid.clone(), Some(false)))
                    .check(infers(&l, "flowers"))
                    .check({
                        let d = l.path();
                        check(move |_| if d.join("endpoints/iris").exists() { Err("the old state folder is left".into()) } else { Ok(()) })
                    }),
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
fn endpoint_drift_is_repaired() {
    let l = Local::new("endpoint-drift");
    let pid = Arc::new(Mutex::new(None));
    let config = endpoint(&l, "iris", 90, 10, "");
    let (d1, d2) = (l.path(), l.path());
    acc(
        "endpoint_drift",
        TestCase {
            steps: vec![
                Step::new(config.clone()).check(pid_is(&l, "iris", pid.clone(), None)),
                // The server dies: refresh sees it stopped, the plan starts it again.
                Step::new(config.clone())
                    .pre(move |_| {
                        let p =
                            modelplane_provider::platforms::local::process::Dir::new(&d1, "iris")
                                .process()
                                .unwrap();
                        unsafe { libc::kill(p.pid, libc::SIGKILL) };
                        while p.alive() {
                            std::thread::sleep(Duration::from_millis(20));
                        }
                    })
                    .plan_check(plan_action(ADDR, "update"))
                    .plan_check(check(|s| match s.planned(ADDR, "status") {
                        Some(v) if v == "running" => Ok(()),
                        other => Err(format!("planned status {other:?}")),
                    }))
                    .check(pid_is(&l, "iris", pid.clone(), Some(false)))
                    .check(infers(&l, "iris")),
                // Someone changes the split on the server: the plan puts it back.
                Step::new(config)
                    .pre(move |_| {
                        let dir =
                            modelplane_provider::platforms::local::process::Dir::new(&d2, "iris");
                        let mut cfg: serde_json::Value = dir.read_json("config.json").unwrap();
                        cfg["endpoints"][0]["variants"][0]["weight"] = 0.into();
                        cfg["endpoints"][0]["variants"][1]["weight"] = 100.into();
                        dir.write_json("config.json", &cfg).unwrap();
                        let url = format!("http://{}", cfg["http"].as_str().unwrap());
                        let token = std::fs::read_to_string(dir.path("token")).unwrap();
                        let (status, _) = http(
                            "POST",
                            &format!("{url}/v2/admin/reload"),
                            Some(&token),
                            None,
                        )
                        .unwrap();
                        assert_eq!(status, 200);
                    })
                    .plan_check(plan_action(ADDR, "update"))
                    .check(serves(&l, "iris", &[("stable", 90), ("canary", 10)])),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn endpoint_bad_input_is_caught_at_plan() {
    let l = Local::new("endpoint-bad");
    let unknown_model = format!("file://{}/stores/models/iris/7", l.path().display());
    acc(
        "endpoint_bad_input",
        TestCase {
            steps: vec![
                Step::new(base(&l)),
                Step::new(endpoint(&l, "iris", 90, 5, "")).expect_error("Variant weights must total 100(.|\\n)*add up to 95 \\(stable 90 \\+ canary 5\\)"),
                Step::new(endpoint(&l, "iris", 90, 10, "").replace("modelplane_model.v[\"2\"].id", &format!("{unknown_model:?}")))
                    .expect_error("Unknown model(.|\\n)*model iris version 7 is not in the store"),
                Step::new(endpoint(&l, "iris", 90, 10, "").replace("modelplane_model.v[\"2\"].id", "\"iris:2\"")).expect_error("Invalid model reference(.|\\n)*STORE_ID/NAME/VERSION"),
                Step::new(endpoint(&l, "iris", 90, 10, "").replace("modelplane_gpu_cluster.c.id", "\"gcp/prod\"")).expect_error("unknown platform \"gcp\""),
                Step::new(endpoint(&l, "iris", 90, 10, "\n  benchmark {\n    payload = \"{not json\"\n  }\n")).expect_error("Invalid payload(.|\\n)*not JSON"),
                Step::new(endpoint(&l, "iris", 90, 10, "\n  benchmark {\n    payload = \"{}\"\n    duration = \"soon\"\n  }\n")).expect_error("Invalid duration"),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn endpoint_slo_miss_rolls_back() {
    let l = Local::new("endpoint-slo");
    // Measured over gRPC: the benchmark reaches grpc_address too.
    let good = endpoint(
        &l,
        "iris",
        90,
        10,
        &grpc_benchmark("    slo {\n      p99_ms  = 5000\n      min_rps = 1\n    }\n"),
    );
    let bad = endpoint(
        &l,
        "iris",
        50,
        50,
        &benchmark("    slo {\n      min_rps = 1000000000\n    }\n"),
    );
    acc(
        "endpoint_slo_rollback",
        TestCase {
            steps: vec![
                Step::new(good.clone())
                    .check(attr_equals(ADDR, "benchmark_result.errors", 0))
                    .check(check(|s| match s.attr(ADDR, "benchmark_result.rps").and_then(|v| v.as_f64()) {
                        Some(r) if r > 1.0 => Ok(()),
                        other => Err(format!("benchmark_result.rps {other:?}")),
                    })),
                Step::new(bad).expect_error("SLO missed: throughput [0-9.]+ req/s < required 1000000000 req/s(.|\\n)*serves its previous configuration again"),
                // After the rollback the server serves the old split and the state still matches it.
                Step::new(good).plan_check(plan_action(ADDR, "no-op")).check(serves(&l, "iris", &[("stable", 90), ("canary", 10)])),
            ],
            ..Default::default()
        },
    );
}

#[test]
fn endpoint_slo_miss_on_create_leaves_nothing() {
    let l = Local::new("endpoint-slo-create");
    let bad = endpoint(
        &l,
        "iris",
        90,
        10,
        &benchmark("    slo {\n      p99_ms = 0.000001\n    }\n"),
    );
    let dir = l.path();
    acc(
        "endpoint_slo_create",
        TestCase {
            steps: vec![
                Step::new(base(&l)),
                Step::new(bad).expect_error("Benchmark failed: the endpoint was not created(.|\\n)*SLO missed: p99 [0-9.]+ ms > required"),
                Step::new(base(&l)).pre(move |_| {
                    assert!(modelplane_provider::platforms::local::process::processes_under(&dir).is_empty(), "a server is left running");
                    assert!(!dir.join("endpoints/iris").exists(), "the state folder is left");
                }),
            ],
            ..Default::default()
        },
    );
}

/// A server that cannot start (its port is taken) fails the apply with its own log lines,
/// and leaves nothing behind.
#[test]
fn endpoint_start_failure_shows_the_log() {
    let l = Local::new("endpoint-port");
    let taken = std::net::TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = l.path();
    acc(
        "endpoint_start_failure",
        TestCase {
            steps: vec![
                Step::new(base(&l)),
                Step::new(endpoint(&l, "iris", 90, 10, &format!("  port = {port}\n")))
                    .expect_error(&format!("The endpoint did not start(.|\\n)*exited before it was ready(.|\\n)*server.log(.|\\n)*binding 127.0.0.1:{port}")),
                Step::new(base(&l)).pre(move |_| {
                    assert!(modelplane_provider::platforms::local::process::processes_under(&dir).is_empty(), "a server is left running");
                    assert!(!dir.join("endpoints/iris").exists(), "the state folder is left");
                }),
            ],
            ..Default::default()
        },
    );
    drop(taken);
}

#[test]
fn endpoints_side_by_side() {
    let l = Local::new("endpoint-two");
    let config = endpoint(&l, "iris", 100, 0, "")
        + r#"
resource "modelplane_endpoint" "f" {
  name    = "flowers"
  cluster = modelplane_gpu_cluster.c.id
  variant {
    name   = "only"
    model  = modelplane_model.v["2"].id
    weight = 100
  }
}
"#;
    acc(
        "endpoints_side_by_side",
        TestCase {
            steps: vec![Step::new(config)
                .check(infers(&l, "iris"))
                .check(check(|s| {
                    let (a, b) = (
                        url(s),
                        s.attr("modelplane_endpoint.f", "url")
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                    );
                    if a == b || b.is_empty() {
                        return Err(format!("endpoints share or lack a URL: {a} {b}"));
                    }
                    Ok(())
                }))],
            ..Default::default()
        },
    );
}

/// Ctrl-C during an apply that is starting an endpoint, then apply again: it converges and
/// no server is orphaned.
#[test]
fn endpoint_interrupted_apply_converges() {
    if !tfplugin::acctest::enabled() {
        eprintln!("skipped; acceptance tests run with TF_ACC=1");
        return;
    }
    let l = Local::new("endpoint-int");
    let (wd, _guard) = harness().workdir("endpoint_interrupted").unwrap();
    let slow = endpoint(&l, "iris", 90, 10, "\n  benchmark {\n    payload  = \"{\\\"inputs\\\": []}\"\n    duration = \"60s\"\n    slo {\n      max_error_rate = 1\n    }\n  }\n");
    std::fs::write(wd.dir.join("main.tf"), &slow).unwrap();
    wd.ok(&["init", "-input=false", "-no-color"]).unwrap();
    let apply = wd
        .command(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the server to be up (the benchmark then runs for a minute) and interrupt.
    let t0 = std::time::Instant::now();
    while l.processes().is_empty() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "the endpoint never started"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    unsafe { libc::kill(apply.id() as i32, libc::SIGINT) };
    let out = apply.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !out.status.success(),
        "the interrupted apply succeeded:\n{text}"
    );
    assert!(
        t0.elapsed() < Duration::from_secs(50),
        "the interrupt was not honoured promptly:\n{text}"
    );
    assert!(
        l.processes().is_empty(),
        "a server outlived the interrupted create: {:?}\n{text}",
        l.processes()
    );
    // Apply again (with a short benchmark): one server, an empty plan, then destroy leaves none.
    std::fs::write(wd.dir.join("main.tf"), slow.replace("\"60s\"", "\"200ms\"")).unwrap();
    wd.ok(&["apply", "-auto-approve", "-input=false", "-no-color"])
        .unwrap();
    assert_eq!(l.processes().len(), 1, "one endpoint, one server");
    let plan = wd
        .run(&["plan", "-detailed-exitcode", "-no-color"])
        .unwrap();
    assert_eq!(
        plan.status.code(),
        Some(0),
        "plan after re-apply is not empty:\n{}",
        String::from_utf8_lossy(&plan.stdout)
    );
    wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"])
        .unwrap();
    assert!(
        l.processes().is_empty(),
        "servers left after destroy: {:?}",
        l.processes()
    );
}

/// New bytes under a served version: the model is replaced, the endpoint reloads, and the
/// server answers with the new model (not the old one it had in memory).
#[test]
fn endpoint_follows_a_replaced_model() {
    let l = Local::new("endpoint-replace");
    let config = format!(
        r#"{}
resource "modelplane_model" "m" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = "model.onnx"
}}

resource "modelplane_endpoint" "e" {{
  name    = "iris"
  cluster = modelplane_gpu_cluster.c.id
  variant {{
    name   = "only"
    model  = modelplane_model.m.id
    weight = 100
  }}
}}
"#,
        cluster_and_store(&l)
    );
    let seen: Arc<Mutex<Option<serde_json::Value>>> = Arc::default();
    let answer = |l: &Local, seen: Arc<Mutex<Option<serde_json::Value>>>, changed: bool| {
        let dir = l.path();
        check(move |s| {
            let token = std::fs::read_to_string(dir.join("endpoints/iris/token"))
                .map_err(|e| e.to_string())?;
            let (_, body) = http(
                "POST",
                &format!("{}/v2/models/iris/infer", url(s)),
                Some(&token),
                Some(REQUEST),
            )?;
            let probs = body["outputs"][1]["data"].clone();
            let mut prev = seen.lock().unwrap();
            let r = match (&*prev, changed) {
                (Some(p), true) if *p == probs => Err(format!(
                    "the server still answers with the old model: {probs}"
                )),
                _ => Ok(()),
            };
            *prev = Some(probs);
            r
        })
    };
    acc(
        "endpoint_follows_a_replaced_model",
        TestCase {
            files: std::collections::BTreeMap::from([(
                "model.onnx".to_string(),
                std::fs::read(common::repo().join("examples/quickstart/model/iris-v1.onnx"))
                    .unwrap(),
            )]),
            steps: vec![
                Step::new(config.clone()).check(answer(&l, seen.clone(), false)),
                Step::new(config)
                    .pre(|wd| {
                        std::fs::copy(
                            common::repo().join("examples/quickstart/model/iris-v2.onnx"),
                            wd.join("model.onnx"),
                        )
                        .map(|_| ())
                        .unwrap()
                    })
                    .plan_check(plan_action("modelplane_model.m", "replace"))
                    .plan_check(plan_action(ADDR, "update"))
                    .check(answer(&l, seen.clone(), true)),
            ],
            ..Default::default()
        },
    );
}

/// An endpoint `r` whose variant `far` is served by endpoint `e` (by id, or by URL with a
/// token file), next to its own `near` model variant.
fn remote_pair(l: &Local, far: &str, near_weight: i64, far_weight: i64) -> String {
    format!(
        r#"{}
resource "modelplane_endpoint" "r" {{
  name    = "gateway"
  cluster = modelplane_gpu_cluster.c.id

  variant {{
    name   = "near"
    model  = modelplane_model.v["1"].id
    weight = {near_weight}
  }}

  variant {{
    name   = "far"
{far}
    weight = {far_weight}
  }}
}}
"#,
        endpoint(l, "iris", 100, 0, "")
    )
}

#[test]
fn endpoint_remote_variants() {
    let l = Local::new("endpoint-remote");
    let by_id = "    endpoint = modelplane_endpoint.e.id\n    fallback = true";
    let dir = l.path();
    let (d1, d2) = (dir.clone(), dir.clone());
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!(
        "    endpoint = \"http://127.0.0.1:{}/v2/models/iris\"",
        closed.local_addr().unwrap().port()
    );
    drop(closed);
    let pinned = |variant: &'static str| {
        let dir = l.path();
        check(move |s| {
            let url = s
                .attr("modelplane_endpoint.r", "url")
                .and_then(|v| v.as_str().map(String::from))
                .ok_or("no url")?;
            let token = std::fs::read_to_string(dir.join("endpoints/gateway/token")).unwrap();
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let r = reqwest::Client::new()
                    .post(format!("{url}/v2/models/gateway/infer"))
                    .bearer_auth(token.trim())
                    .header("x-modelplane-variant", variant)
                    .body(REQUEST)
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let served = r
                    .headers()
                    .get("x-modelplane-variant")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_string();
                let body: serde_json::Value = r.json().await.unwrap_or_default();
                if served != variant || body["outputs"][0]["data"] != serde_json::json!([0, 2]) {
                    return Err(format!("{variant}: served by {served:?}: {body}"));
                }
                Ok(())
            })
        })
    };
    acc(
        "endpoint_remote_variants",
        TestCase {
            steps: vec![
                Step::new(remote_pair(&l, "", 50, 50)).expect_error("Variant without a model"),
                Step::new(remote_pair(&l, "    model = modelplane_model.v[\"1\"].id\n    endpoint = modelplane_endpoint.e.id", 50, 50))
                    .expect_error("Variant with a model and an endpoint"),
                Step::new(remote_pair(&l, "    endpoint = \"https://cloud.example.com\"", 50, 50))
                    .expect_error("Invalid endpoint(.|\\n)*names no model(.|\\n)*/v2/models/NAME"),
                Step::new(remote_pair(&l, "    endpoint = modelplane_endpoint.e.id\n    token_file = \"/tmp/t\"", 50, 50))
                    .expect_error("Setting of a URL remote"),
                Step::new(endpoint(&l, "iris", 100, 0, "").replace("    weight = 0\n", "    weight = 0\n    fallback = true\n"))
                    .expect_error("Setting of a remote variant(.|\\n)*fallback"),
                // A remote that does not answer: refused at apply, nothing created.
                Step::new(remote_pair(&l, &dead, 50, 50))
                    .expect_error("Remote endpoint not answering(.|\\n)*variant far(.|\\n)*Nothing was changed"),
                // Served by the other endpoint, its token kept beside this one's (0600), never
                // in the configuration or in state.
                Step::new(remote_pair(&l, by_id, 50, 50))
                    .check(pinned("far"))
                    .check(pinned("near"))
                    .check(attr_equals("modelplane_endpoint.r", "variant.1.endpoint", "local/c/iris"))
                    .check(check(move |s| {
                        use std::os::unix::fs::PermissionsExt;
                        let f = d1.join("endpoints/gateway/remote-far.token");
                        let mode = std::fs::metadata(&f).map_err(|e| format!("{}: {e}", f.display()))?.permissions().mode();
                        let token = std::fs::read_to_string(d1.join("endpoints/iris/token")).unwrap();
                        if std::fs::read_to_string(&f).unwrap().trim() != token.trim() || mode & 0o077 != 0 {
                            return Err(format!("{}: mode {mode:o}", f.display()));
                        }
                        let cfg = std::fs::read_to_string(d1.join("endpoints/gateway/config.json")).unwrap();
                        if cfg.contains(token.trim()) || format!("{s:?}").contains(token.trim()) {
                            return Err("the remote's token is in the configuration or state".into());
                        }
                        Ok(())
                    })),
                // The same remote by URL and a token file.
                Step::new(remote_pair(&l, "    endpoint = \"${modelplane_endpoint.e.url}/v2/models/iris\"\n    token_file = modelplane_endpoint.e.token_file", 0, 100))
                    .plan_check(plan_action("modelplane_endpoint.r", "update"))
                    .check(pinned("far")),
                // The remote goes away behind Terraform's back: refresh reports it, and the
                // plan applies the endpoint again.
                Step::new(remote_pair(&l, by_id, 50, 50))
                    .pre(move |_| {
                        for p in modelplane_provider::platforms::local::process::processes_mentioning(&d2.join("endpoints/iris")) {
                            let _ = std::process::Command::new("kill").args(["-9", &p.to_string()]).status();
                        }
                        std::thread::sleep(Duration::from_millis(300));
                    })
                    .plan_check(plan_action("modelplane_endpoint.r", "update"))
                    .check(pinned("far")),
            ],
            ..Default::default()
        },
    );
}
