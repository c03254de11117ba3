//! `blueprints/hybrid-migration` through real Terraform, its example applied stage by stage
//! (0 → 10 → 50 (an SLO missed on purpose, rolled back) → 50 → 100 → retire) while a load of
//! 8 concurrent clients runs through the on-prem entry point the whole time (and through the
//! cloud address after the DNS change the runbook asks for before retiring): not one request
//! may fail.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::common::{self, acc, check, relative_source, Local};
use tfplugin::acctest::{attr_equals, plan_action, Shown, Step, TestCase};

const ONPREM: &str = "module.ex.module.migration.modelplane_endpoint.onprem[0]";
const CLOUD: &str = "module.ex.module.migration.modelplane_endpoint.cloud";
const COPY: &str = "module.ex.module.migration.modelplane_model.cloud";
const CLIENTS: usize = 8;

/// Clients that keep calling an endpoint (its URL, model and token can change under them),
/// counting answers by variant and every failure.
struct Load {
    target: Arc<RwLock<(String, String, String)>>,
    ok: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    by_variant: Arc<Mutex<std::collections::BTreeMap<String, u64>>>,
    failures: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(url: String, model: String, token: String) -> Load {
        let target = Arc::new(RwLock::new((url, model, token)));
        let (ok, failed) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let by_variant = Arc::new(Mutex::new(std::collections::BTreeMap::new()));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let body =
            std::fs::read_to_string(common::repo().join("examples/quickstart/data/request.json"))
                .unwrap();
        let (t, o, f, bv, fl, s) = (
            target.clone(),
            ok.clone(),
            failed.clone(),
            by_variant.clone(),
            failures.clone(),
            stop.clone(),
        );
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let client = reqwest::Client::new();
                let mut tasks = Vec::new();
                for _ in 0..CLIENTS {
                    let (t, o, f, bv, fl, s, client, body) = (
                        t.clone(),
                        o.clone(),
                        f.clone(),
                        bv.clone(),
                        fl.clone(),
                        s.clone(),
                        client.clone(),
                        body.clone(),
                    );
                    tasks.push(tokio::spawn(async move {
                        while !s.load(Ordering::Relaxed) {
                            let (url, model, token) = t.read().unwrap().clone();
                            let r = client
                                .post(format!("{url}/v2/models/{model}/infer"))
                                .bearer_auth(&token)
                                .header("content-type", "application/json")
                                .body(body.clone())
                                .timeout(Duration::from_secs(30))
                                .send()
                                .await;
                            match r {
                                Ok(resp) if resp.status().is_success() => {
                                    let v = resp
                                        .headers()
                                        .get("x-modelplane-variant")
                                        .and_then(|v| v.to_str().ok())
                                        .unwrap_or("?")
                                        .to_string();
                                    let answer: serde_json::Value =
                                        resp.json().await.unwrap_or_default();
                                    if answer["outputs"][0]["data"] == serde_json::json!([0, 2]) {
                                        o.fetch_add(1, Ordering::Relaxed);
                                        *bv.lock().unwrap().entry(v).or_insert(0) += 1;
                                    } else {
                                        f.fetch_add(1, Ordering::Relaxed);
                                        fl.lock().unwrap().push(format!("{url}: {answer}"));
                                    }
                                }
                                Ok(resp) => {
                                    f.fetch_add(1, Ordering::Relaxed);
                                    let code = resp.status();
                                    let text = resp.text().await.unwrap_or_default();
                                    fl.lock().unwrap().push(format!("{url}: {code} {text}"));
                                }
                                Err(e) => {
                                    f.fetch_add(1, Ordering::Relaxed);
                                    fl.lock().unwrap().push(format!("{url}: {e}"));
                                }
                            }
                        }
                    }));
                }
                for t in tasks {
                    let _ = t.await;
                }
            });
        });
        Load {
            target,
            ok,
            failed,
            by_variant,
            failures,
            stop,
            thread: Some(thread),
        }
    }

    fn report(&self) -> String {
        format!(
            "{} answered, {} failed, by variant {:?}, first failures {:?}",
            self.ok.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.by_variant.lock().unwrap(),
            self.failures
                .lock()
                .unwrap()
                .iter()
                .take(5)
                .collect::<Vec<_>>()
        )
    }

    /// Waits until `n` more requests have been answered (the load is really running).
    fn answered_more(&self, n: u64) -> Result<(), String> {
        let from = self.ok.load(Ordering::Relaxed);
        for _ in 0..600 {
            if self.ok.load(Ordering::Relaxed) >= from + n {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("the load stalled: {}", self.report()))
    }

    fn finish(&mut self) -> String {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.report()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.finish();
    }
}

fn attr(s: &Shown, address: &str, path: &str) -> Result<String, String> {
    s.attr(address, path)
        .and_then(|v| v.as_str().map(String::from))
        .ok_or_else(|| format!("{address}.{path} is not in state"))
}

/// The URL, model name and token of an endpoint in state.
fn target(s: &Shown, address: &str) -> Result<(String, String, String), String> {
    let token =
        std::fs::read_to_string(attr(s, address, "token_file")?).map_err(|e| e.to_string())?;
    Ok((
        attr(s, address, "url")?,
        attr(s, address, "name")?,
        token.trim().to_string(),
    ))
}

fn weights(s: &Shown) -> Result<Vec<i64>, String> {
    let v = s
        .attr(ONPREM, "variant")
        .ok_or("the on-prem endpoint has no variants in state")?;
    Ok(v.as_array()
        .unwrap_or(&vec![])
        .iter()
        .map(|x| x["weight"].as_i64().unwrap_or(-1))
        .collect())
}

#[test]
fn hybrid_migration_moves_traffic_with_zero_failed_requests() {
    let l = Local::new("hybrid");
    let config = |share: u32, retire: bool, p99: f64| {
        format!(
            "module \"ex\" {{\n  source        = {:?}\n  state_dir     = {:?}\n  cloud_share   = {share}\n  retire_onprem = {retire}\n  slo_p99_ms    = {p99}\n}}\n",
            relative_source("blueprints/hybrid-migration/examples/one-machine"),
            l.path().display().to_string()
        )
    };
    let load: Arc<Mutex<Option<Load>>> = Arc::new(Mutex::new(None));
    let (l0, l1, l2, l3, l4, l5) = (
        load.clone(),
        load.clone(),
        load.clone(),
        load.clone(),
        load.clone(),
        load.clone(),
    );
    let onprem_dir = l.path().join("endpoints/iris");
    let step_with = |share: u32| {
        move |s: &Shown| -> Result<(), String> {
            let w = weights(s)?;
            if w != vec![100 - i64::from(share), i64::from(share)] {
                return Err(format!("split {w:?}, want {}/{share}", 100 - share));
            }
            Ok(())
        }
    };
    acc(
        "hybrid_migration_moves_traffic_with_zero_failed_requests",
        TestCase {
            steps: vec![
                // Stage 0: the copy and the cloud endpoint stand by; on-prem serves it all.
                Step::new(config(0, false, 500.0))
                    .check(check(step_with(0)))
                    .check(check(|s| {
                        let (a, b) = (
                            attr(s, COPY, "sha256")?,
                            attr(s, "module.ex.modelplane_model.iris", "sha256")?,
                        );
                        if a != b {
                            return Err(format!(
                                "the cloud copy has sha256 {a}, the on-prem version {b}"
                            ));
                        }
                        Ok(())
                    }))
                    .check(check(move |s| {
                        let (url, model, token) = target(s, ONPREM)?;
                        let load = Load::start(url, model, token);
                        load.answered_more(20)?;
                        *l0.lock().unwrap() = Some(load);
                        Ok(())
                    })),
                Step::new(config(10, false, 500.0))
                    .plan_check(plan_action(ONPREM, "update"))
                    .check(check(step_with(10)))
                    .check(check(move |_| {
                        l1.lock()
                            .unwrap()
                            .as_ref()
                            .ok_or("no load")?
                            .answered_more(50)
                    })),
                // A step that misses its SLO is rolled back: the split stays at 10.
                Step::new(config(50, false, 0.001))
                    .expect_error("Benchmark failed: the change was rolled back"),
                Step::new(config(50, false, 500.0))
                    .check(check(step_with(50)))
                    .check(check(move |_| {
                        l2.lock()
                            .unwrap()
                            .as_ref()
                            .ok_or("no load")?
                            .answered_more(50)
                    })),
                Step::new(config(100, false, 500.0))
                    .check(check(step_with(100)))
                    .check(check(move |s| {
                        let guard = l3.lock().unwrap();
                        let load = guard.as_ref().ok_or("no load")?;
                        load.answered_more(50)?;
                        // Every answer at 100% comes from the cloud site.
                        let before = load.by_variant.lock().unwrap().get("onprem").copied();
                        load.answered_more(50)?;
                        let after = load.by_variant.lock().unwrap().get("onprem").copied();
                        if before != after {
                            return Err(format!(
                                "the on-prem variant still answers at 100%: {}",
                                load.report()
                            ));
                        }
                        // The runbook's DNS change: clients now call the cloud address.
                        *load.target.write().unwrap() = target(s, CLOUD)?;
                        load.answered_more(20)
                    })),
                // Retire: the on-prem endpoint goes; nothing of it is left.
                Step::new(config(100, true, 500.0))
                    .plan_check(plan_action(ONPREM, "delete"))
                    .check(check(move |s| {
                        if s.attr(ONPREM, "id").is_some() {
                            return Err("the on-prem endpoint is still in state".into());
                        }
                        if onprem_dir.exists() {
                            return Err(format!("{} is still there", onprem_dir.display()));
                        }
                        l4.lock()
                            .unwrap()
                            .as_ref()
                            .ok_or("no load")?
                            .answered_more(50)
                    }))
                    .check(check(move |s| {
                        let w = s.attr(CLOUD, "variant").ok_or("no cloud variants")?;
                        if w[0]["weight"] != 100 {
                            return Err(format!("cloud split {w}"));
                        }
                        let mut guard = l5.lock().unwrap();
                        let report = guard.as_mut().ok_or("no load")?.finish();
                        let load = guard.as_ref().unwrap();
                        let failed = load.failed.load(Ordering::Relaxed);
                        let by = load.by_variant.lock().unwrap().clone();
                        eprintln!("hybrid migration load: {report}");
                        if failed != 0 {
                            return Err(format!("requests failed during the migration: {report}"));
                        }
                        if by.get("cloud").copied().unwrap_or(0) == 0
                            || by.get("onprem").copied().unwrap_or(0) == 0
                            || by.get("stable").copied().unwrap_or(0) == 0
                        {
                            return Err(format!("not every stage served: {report}"));
                        }
                        Ok(())
                    }))
                    .check(attr_equals(
                        "module.ex.module.migration.modelplane_model.cloud",
                        "copied_from",
                        format!("file://{}/stores/onprem/iris/1", l.path().display()),
                    )),
            ],
            ..Default::default()
        },
    );
}
