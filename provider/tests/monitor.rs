//! Acceptance tests of `modelplane_monitor` on the local platform, through real Terraform,
//! with real Prometheus and Alertmanager (Debian packages `prometheus` and
//! `prometheus-alertmanager`): served traffic → metrics → rules → Alertmanager → webhook.

use crate::common;

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{acc, check, cluster_and_store, have_prometheus, http, qs, Local};
use serde_json::{json, Value};
use tfplugin::acctest::{attr_equals, plan_action, ImportStep, Shown, Step, TestCase};

const ADDR: &str = "modelplane_monitor.m";
const ENDPOINT: &str = "modelplane_endpoint.e";

/// Provider, cluster, store, iris v1 with a baseline, and an endpoint `iris` with short
/// statistics windows.
fn served(l: &Local) -> String {
    format!(
        r#"{}
resource "modelplane_model" "v1" {{
  store   = modelplane_model_store.s.id
  name    = "iris"
  version = "1"
  source  = {:?}

  baseline {{
    dataset = {:?}
    target  = "species"
  }}
}}

resource "modelplane_endpoint" "e" {{
  name    = "iris"
  cluster = modelplane_gpu_cluster.c.id

  variant {{
    name   = "stable"
    model  = modelplane_model.v1.id
    weight = 100
  }}

  monitoring {{
    drift_window    = "10s"
    feedback_window = "12s"
  }}
}}
"#,
        cluster_and_store(l),
        qs("model/iris-v1.onnx"),
        qs("data/train.csv")
    )
}

fn monitor(l: &Local, body: &str) -> String {
    format!(
        "{}\nresource \"modelplane_monitor\" \"m\" {{\n  endpoint            = modelplane_endpoint.e.id\n  scrape_interval     = \"1s\"\n  evaluation_interval = \"1s\"\n{body}}}\n",
        served(l)
    )
}

fn drift_alert(threshold: &str) -> String {
    format!("\n  alert {{\n    name         = \"drift\"\n    psi_above    = {threshold}\n    features     = [\"petal_length\"]\n    min_samples  = 20\n    for          = \"0s\"\n    severity     = \"critical\"\n  }}\n")
}

/// A webhook receiver on loopback that keeps every JSON payload it is sent.
struct Hook {
    url: String,
    got: Arc<Mutex<Vec<Value>>>,
}

impl Hook {
    fn start() -> Hook {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hooks/retrain", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let g = got.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let g = g.clone();
                std::thread::spawn(move || {
                    let mut r = BufReader::new(conn.try_clone().unwrap());
                    let mut len = 0usize;
                    loop {
                        let mut line = String::new();
                        if r.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let l = line.trim_end().to_ascii_lowercase();
                        if let Some(v) = l.strip_prefix("content-length:") {
                            len = v.trim().parse().unwrap_or(0);
                        }
                        if l.is_empty() {
                            break;
                        }
                    }
                    let mut body = vec![0; len];
                    if r.read_exact(&mut body).is_ok() {
                        if let Ok(v) = serde_json::from_slice(&body) {
                            g.lock().unwrap().push(v);
                        }
                    }
                    let mut w = conn;
                    let _ = w.write_all(
                        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                    );
                });
            }
        });
        Hook { url, got }
    }

    /// Every alert received so far: `(status, labels, annotations)`.
    fn alerts(&self) -> Vec<(String, Value, Value)> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .flat_map(|p| p["alerts"].as_array().cloned().unwrap_or_default())
            .map(|a| {
                (
                    a["status"].as_str().unwrap_or("").to_string(),
                    a["labels"].clone(),
                    a["annotations"].clone(),
                )
            })
            .collect()
    }

    /// Waits for an alert `name` with `status`; returns its labels and annotations.
    fn wait(
        &self,
        name: &str,
        status: &str,
        timeout: Duration,
        mut meanwhile: impl FnMut(),
    ) -> Result<(Value, Value), String> {
        let until = Instant::now() + timeout;
        loop {
            if let Some((_, l, a)) = self
                .alerts()
                .into_iter()
                .find(|(s, l, _)| s == status && l["alertname"] == name)
            {
                return Ok((l, a));
            }
            if Instant::now() > until {
                return Err(format!(
                    "no {status} {name} alert within {timeout:?}; the webhook got {:?}",
                    self.alerts()
                ));
            }
            meanwhile();
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The training data's rows (normal traffic: their PSI against the baseline is about 0), or
/// the same rows with petal_length far outside it.
fn rows(shift: bool) -> Vec<[f64; 4]> {
    let text =
        std::fs::read_to_string(common::repo().join("examples/quickstart/data/train.csv")).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f64> = l.split(',').map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], if shift { v[2] + 30.0 } else { v[2] }, v[3]]
        })
        .collect()
}

struct Client {
    url: String,
    token: String,
}

impl Client {
    /// One request of these rows; returns the predicted classes.
    fn infer(&self, id: &str, rows: &[[f64; 4]]) -> Result<Vec<f64>, String> {
        let data: Vec<f64> = rows.iter().flatten().copied().collect();
        let body = json!({"id": id, "inputs": [{"name": "input", "shape": [rows.len(), 4], "datatype": "FP32", "data": data}]});
        let (status, out) = http(
            "POST",
            &format!("{}/v2/models/iris/infer", self.url),
            Some(&self.token),
            Some(&body.to_string()),
        )?;
        if status != 200 {
            return Err(format!("infer: HTTP {status} {out}"));
        }
        Ok(out["outputs"][0]["data"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_f64).collect())
            .unwrap_or_default())
    }
    fn feedback(&self, items: Value) -> Result<(), String> {
        let (status, out) = http(
            "POST",
            &format!("{}/v2/models/iris/feedback", self.url),
            Some(&self.token),
            Some(&json!({ "feedback": items }).to_string()),
        )?;
        if status != 200 {
            return Err(format!("feedback: HTTP {status} {out}"));
        }
        Ok(())
    }
}

fn prometheus_url(s: &Shown) -> String {
    s.attr(ADDR, "prometheus_url")
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_default()
}

/// `GET /api/v1/...` of a Prometheus, with query parameters.
fn prom_api(base: &str, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
    let url = reqwest::Url::parse_with_params(&format!("{base}{path}"), params)
        .map_err(|e| e.to_string())?;
    let (status, body) = http("GET", url.as_str(), None, None)?;
    if status != 200 || body["status"] != "success" {
        return Err(format!("{url}: HTTP {status} {body}"));
    }
    Ok(body["data"].clone())
}

/// The alerting rules Prometheus has loaded: `(name, expr)`.
fn loaded_rules(base: &str) -> Result<Vec<(String, String)>, String> {
    let d = prom_api(base, "/api/v1/rules", &[])?;
    Ok(d["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
        .map(|r| {
            (
                r["name"].as_str().unwrap_or("").to_string(),
                r["query"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect())
}

/// Waits until Prometheus scrapes the endpoint with the `endpoint` label.
fn scrapes_endpoint(base: &str) -> Result<(), String> {
    scrapes_endpoint_at(base, None)
}

/// Waits until Prometheus scrapes the endpoint (on `port`, when given).
fn scrapes_endpoint_at(base: &str, port: Option<u16>) -> Result<(), String> {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let d = prom_api(base, "/api/v1/targets", &[])?;
        let up = d["activeTargets"]
            .as_array()
            .into_iter()
            .flatten()
            .any(|t| {
                t["labels"]["endpoint"] == "iris"
                    && t["health"] == "up"
                    && port.is_none_or(|p| {
                        t["scrapeUrl"]
                            .as_str()
                            .is_some_and(|u| u.contains(&format!("127.0.0.1:{p}/")))
                    })
            });
        if up {
            return Ok(());
        }
        if Instant::now() > until {
            return Err(format!("Prometheus does not scrape the endpoint: {d}"));
        }
        std::thread::sleep(Duration::from_millis(300));
    }
}

/// `promtool` and `amtool` accept the files the monitor wrote.
fn tools_accept(dir: PathBuf) -> tfplugin::acctest::Check {
    check(move |_| {
        for (tool, args) in [
            ("promtool", vec!["check", "rules", "rules.yml"]),
            ("promtool", vec!["check", "config", "prometheus.yml"]),
            ("amtool", vec!["check-config", "alertmanager.yml"]),
        ] {
            let out = std::process::Command::new(tool)
                .args(&args)
                .current_dir(&dir)
                .output()
                .map_err(|e| format!("{tool}: {e}"))?;
            if !out.status.success() {
                return Err(format!(
                    "{tool} {args:?}: {}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
        Ok(())
    })
}

#[test]
fn monitor_drift_accuracy_and_latency_alerts_reach_the_webhook() {
    if !have_prometheus("monitor_alerts") {
        return;
    }
    let l = Local::new("monitor-alerts");
    let hook = Arc::new(Hook::start());
    let quality_hook = Arc::new(Hook::start());
    let body = format!(
        r#"{}
  alert {{
    name           = "quality"
    accuracy_below = 0.5
    min_samples    = 10
    for            = "0s"
  }}

  alert {{
    name         = "slow"
    p99_ms_above = 0.001
    window       = "5s"
    for          = "0s"
    severity     = "info"
  }}

  on_alert {{
    webhook         = {:?}
    group_wait      = "0s"
    group_interval  = "1s"
    repeat_interval = "1h"
  }}

  on_alert {{
    webhook        = {:?}
    alerts         = ["quality"]
    group_wait     = "0s"
    group_interval = "1s"
  }}
"#,
        drift_alert("0.5"),
        hook.url,
        quality_hook.url
    );
    let state = l.path();
    let (h, qh) = (hook.clone(), quality_hook.clone());
    let state2 = state.clone();
    acc(
        "monitor_alerts",
        TestCase {
            steps: vec![Step::new(monitor(&l, &body))
                .check(attr_equals(ADDR, "status", "running"))
                .check(tools_accept(state.join("monitors/iris")))
                // Every dashboard query runs on the real Prometheus.
                .check(check(|s| {
                    let base = prometheus_url(s);
                    for (title, _, queries) in
                        modelplane_provider::monitoring::dashboard::panels("iris")
                    {
                        for (q, _) in queries {
                            prom_api(
                                &base,
                                "/api/v1/query",
                                &[("query", &q.replace("$__rate_interval", "1m"))],
                            )
                            .map_err(|e| format!("dashboard panel {title}: {e}"))?;
                        }
                    }
                    Ok(())
                }))
                .check(check(move |s| {
                    let c = Client {
                        url: s
                            .attr(ENDPOINT, "url")
                            .and_then(|v| v.as_str().map(String::from))
                            .unwrap_or_default(),
                        token: std::fs::read_to_string(state2.join("endpoints/iris/token"))
                            .unwrap_or_default(),
                    };
                    scrapes_endpoint(&prometheus_url(s))?;
                    // Drifted traffic: petal_length far outside the training data.
                    let shifted = rows(true);
                    let (labels, ann) =
                        h.wait("drift", "firing", Duration::from_secs(60), || {
                            let _ = c.infer("drifted", &shifted[..10]);
                        })?;
                    for (k, v) in [
                        ("endpoint", "iris"),
                        ("model", "iris"),
                        ("version", "1"),
                        ("feature", "petal_length"),
                        ("severity", "critical"),
                        ("endpoint_id", "local/c/iris"),
                    ] {
                        if labels[k] != v {
                            return Err(format!(
                                "drift alert label {k} = {}, want {v:?}: {labels}",
                                labels[k]
                            ));
                        }
                    }
                    if ann["threshold"] != "0.5"
                        || ann["value"]
                            .as_str()
                            .and_then(|v| v.parse::<f64>().ok())
                            .is_none_or(|v| v <= 0.5)
                    {
                        return Err(format!("drift alert annotations: {ann}"));
                    }
                    // Any traffic misses an impossible latency threshold.
                    h.wait("slow", "firing", Duration::from_secs(30), || {
                        let _ = c.infer("any", &shifted[..1]);
                    })?;
                    // Ground truth that contradicts every prediction.
                    let normal = rows(false);
                    let mut items = Vec::new();
                    for (i, r) in normal.iter().take(15).enumerate() {
                        let id = format!("q{i}");
                        let p = c.infer(&id, std::slice::from_ref(r))?;
                        items.push(json!({"id": id, "label": (p[0] + 1.0) % 3.0}));
                    }
                    c.feedback(Value::Array(items))?;
                    let (ql, _) = qh.wait("quality", "firing", Duration::from_secs(40), || {})?;
                    if ql["variant"] != "stable" {
                        return Err(format!("quality alert labels: {ql}"));
                    }
                    // The second receiver only takes quality alerts.
                    if let Some(other) = qh
                        .alerts()
                        .iter()
                        .find(|(_, l, _)| l["alertname"] != "quality")
                    {
                        return Err(format!("the quality-only receiver got {other:?}"));
                    }
                    // Normal traffic again: once the drift window holds only normal rows, the
                    // drift alert resolves and the webhook hears it.
                    let base = prometheus_url(s);
                    h.wait("drift", "resolved", Duration::from_secs(60), || {
                        for chunk in normal.chunks(15) {
                            c.infer("normal", chunk).expect("normal traffic is served");
                        }
                    })
                    .map_err(|e| {
                        let q = |q: &str| {
                            prom_api(&base, "/api/v1/query", &[("query", q)])
                                .map(|d| d["result"].to_string())
                                .unwrap_or_else(|e| e)
                        };
                        format!(
                            "{e}\nPrometheus: drift {} rows {} alerts {}",
                            q("modelplane_drift_psi"),
                            q("modelplane_drift_window_rows"),
                            q("ALERTS")
                        )
                    })?;
                    Ok(())
                }))],
            check_destroy: Some(check({
                let p = state.clone();
                move |_| {
                    let left = modelplane_provider::platforms::local::process::processes_mentioning(
                        &p.join("monitors"),
                    );
                    if !left.is_empty() {
                        return Err(format!(
                            "Prometheus or Alertmanager still running after destroy: {left:?}"
                        ));
                    }
                    if p.join("monitors/iris").exists() {
                        return Err("the monitor's folder is left after destroy".into());
                    }
                    Ok(())
                }
            })),
            ..Default::default()
        },
    );
}

/// The pid of the managed Prometheus.
fn prometheus_pid(state: &Path) -> Option<modelplane_provider::platforms::local::process::Proc> {
    modelplane_provider::platforms::local::process::Dir(state.join("monitors/iris"))
        .read_json("prometheus.json")
}

#[test]
fn monitor_lifecycle() {
    if !have_prometheus("monitor_lifecycle") {
        return;
    }
    let l = Local::new("monitor-life");
    let hook = Hook::start();
    let receiver = format!("\n  on_alert {{\n    webhook = {:?}\n  }}\n", hook.url);
    let v1 = monitor(&l, &format!("{}{receiver}", drift_alert("0.2")));
    let v2 = monitor(&l, &format!("{}\n  alert {{\n    name           = \"silent\"\n    no_traffic_for = \"10m\"\n  }}\n{receiver}", drift_alert("0.3")));
    // The endpoint moves to another port: the monitor follows without a change of its own.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let moved = v2.replace(
        "  cluster = modelplane_gpu_cluster.c.id\n",
        &format!("  cluster = modelplane_gpu_cluster.c.id\n  port    = {port}\n"),
    );
    assert_ne!(moved, v2);
    let seen = Arc::new(Mutex::new(None));
    let (st1, st2, st3, st4) = (l.path(), l.path(), l.path(), l.path());
    let (s1, s2, s3) = (seen.clone(), seen.clone(), seen.clone());
    acc(
        "monitor_lifecycle",
        TestCase {
            steps: vec![
                Step::new(v1.clone())
                    .check(attr_equals(ADDR, "status", "running"))
                    .check(attr_equals(ADDR, "id", "local/c/iris"))
                    .check(check(move |s| {
                        let rules = loaded_rules(&prometheus_url(s))?;
                        if !rules
                            .iter()
                            .any(|(n, q)| n == "drift" && q.contains("> 0.2"))
                        {
                            return Err(format!("Prometheus rules: {rules:?}"));
                        }
                        scrapes_endpoint(&prometheus_url(s))?;
                        *s1.lock().unwrap() = Some((
                            prometheus_url(s),
                            prometheus_pid(&st1).ok_or("no prometheus.json")?,
                        ));
                        Ok(())
                    })),
                // A new threshold and a new alert: reloaded in place, same process, same URL.
                Step::new(v2.clone())
                    .plan_check(plan_action(ADDR, "update"))
                    .check(check(move |s| {
                        let rules = loaded_rules(&prometheus_url(s))?;
                        if !rules
                            .iter()
                            .any(|(n, q)| n == "drift" && q.contains("> 0.3"))
                            || !rules.iter().any(|(n, _)| n == "silent")
                        {
                            return Err(format!("Prometheus rules after the update: {rules:?}"));
                        }
                        let (url, pid) = s2.lock().unwrap().clone().ok_or("no first step")?;
                        if url != prometheus_url(s) || prometheus_pid(&st2) != Some(pid) {
                            return Err(format!(
                                "Prometheus was restarted or moved: {url} {pid:?} → {} {:?}",
                                prometheus_url(s),
                                prometheus_pid(&st2)
                            ));
                        }
                        Ok(())
                    })),
                Step::new(moved.clone())
                    .plan_check(plan_action(ENDPOINT, "update"))
                    .plan_check(check(|s| match s.planned_actions().get(ADDR) {
                        None => Ok(()),
                        Some(a) if a.iter().all(|a| a == "no-op") => Ok(()),
                        Some(a) => Err(format!(
                            "the monitor should not change when its endpoint moves: {a:?}"
                        )),
                    }))
                    .check(check(move |s| {
                        scrapes_endpoint_at(&prometheus_url(s), Some(port))
                    })),
                Step::new(moved.clone()).import(ImportStep {
                    address: ADDR.into(),
                    id: Some("local/c/iris".into()),
                    id_from: None,
                    ignore: vec![],
                }),
                // Prometheus dies: refresh reports it, the plan starts it again on the same port.
                Step::new(moved)
                    .pre(move |_| {
                        let p = prometheus_pid(&st3).unwrap();
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
                    .check(check(move |s| {
                        let (url, old) = s3.lock().unwrap().clone().ok_or("no first step")?;
                        let now = prometheus_pid(&st4).ok_or("no prometheus.json")?;
                        if url != prometheus_url(s) || now == old || !now.alive() {
                            return Err(format!(
                                "Prometheus not restarted in place: {url} {old:?} → {} {now:?}",
                                prometheus_url(s)
                            ));
                        }
                        loaded_rules(&url).map(|_| ())
                    })),
            ],
            check_destroy: Some(check({
                let p = l.path();
                move |_| {
                    let left = modelplane_provider::platforms::local::process::processes_mentioning(
                        &p.join("monitors"),
                    );
                    if left.is_empty() {
                        Ok(())
                    } else {
                        Err(format!("processes left after destroy: {left:?}"))
                    }
                }
            })),
            ..Default::default()
        },
    );
}

/// A Prometheus started by the test, reading rules and targets from folders.
struct ExistingPrometheus {
    child: std::process::Child,
    url: String,
    rules: PathBuf,
    targets: PathBuf,
    _dir: tempfile::TempDir,
}

impl ExistingPrometheus {
    /// A Prometheus; `lifecycle` enables `/-/reload`.
    fn start(lifecycle: bool) -> ExistingPrometheus {
        let dir = tempfile::tempdir().unwrap();
        let (rules, targets) = (dir.path().join("rules.d"), dir.path().join("targets.d"));
        std::fs::create_dir_all(&rules).unwrap();
        std::fs::create_dir_all(&targets).unwrap();
        let cfg = format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [\"{}/*.yml\"]\nscrape_configs:\n  - job_name: modelplane\n    file_sd_configs:\n      - files: [\"{}/*.json\"]\n        refresh_interval: 1s\n",
            rules.display(),
            targets.display()
        );
        std::fs::write(dir.path().join("prometheus.yml"), cfg).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (bin, _) = modelplane_provider::monitoring::managed::binaries().unwrap();
        let child = std::process::Command::new(bin)
            .arg(format!(
                "--config.file={}",
                dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .args(lifecycle.then_some("--web.enable-lifecycle"))
            .stdout(std::process::Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("log")).unwrap())
            .spawn()
            .unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let until = Instant::now() + Duration::from_secs(30);
        while http("GET", &format!("{url}/-/ready"), None, None).map(|r| r.0) != Ok(200) {
            assert!(
                Instant::now() < until,
                "the test's Prometheus did not start"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        ExistingPrometheus {
            child,
            url,
            rules,
            targets,
            _dir: dir,
        }
    }
}

impl Drop for ExistingPrometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn monitor_on_an_existing_prometheus() {
    if !have_prometheus("monitor_existing") {
        return;
    }
    let l = Local::new("monitor-existing");
    let p = ExistingPrometheus::start(true);
    let locked = ExistingPrometheus::start(false);
    let block = |p: &ExistingPrometheus| {
        format!(
            "{}\n  existing_prometheus {{\n    url         = {:?}\n    rules_dir   = {:?}\n    targets_dir = {:?}\n  }}\n",
            drift_alert("0.2"),
            p.url,
            p.rules.display().to_string(),
            p.targets.display().to_string()
        )
    };
    let locked_rules = locked.rules.clone();
    let (url, url2, rules_dir) = (p.url.clone(), p.url.clone(), p.rules.clone());
    let st = l.path();
    acc(
        "monitor_existing",
        TestCase {
            steps: vec![
                // A Prometheus that cannot reload: a clear error, and no file left in its folders.
                Step::new(monitor(&l, &block(&locked))).expect_error("--web.enable-lifecycle"),
                Step::new(monitor(&l, &block(&p)))
                    .pre(move |_| {
                        let left: Vec<_> = std::fs::read_dir(&locked_rules)
                            .unwrap()
                            .flatten()
                            .map(|e| e.path())
                            .collect();
                        assert!(
                            left.is_empty(),
                            "files left in the failed Prometheus's rules_dir: {left:?}"
                        );
                    })
                    .check(attr_equals(ADDR, "prometheus_url", p.url.as_str()))
                    .check(check(move |s| {
                        if !s.attr(ADDR, "alertmanager_url").is_none_or(|v| v.is_null()) {
                            return Err(
                                "alertmanager_url should be null with an existing Prometheus"
                                    .into(),
                            );
                        }
                        let rules = loaded_rules(&url)?;
                        if !rules.iter().any(|(n, _)| n == "drift") {
                            return Err(format!(
                                "the existing Prometheus did not load the rules: {rules:?}"
                            ));
                        }
                        scrapes_endpoint(&url)?;
                        if !modelplane_provider::platforms::local::process::processes_mentioning(
                            &st.join("monitors"),
                        )
                        .is_empty()
                        {
                            return Err("a Prometheus was started although one exists".into());
                        }
                        Ok(())
                    })),
            ],
            check_destroy: Some(check(move |_| {
                if rules_dir.join("modelplane-iris.yml").exists() {
                    return Err("the rule file is left after destroy".into());
                }
                let rules = loaded_rules(&url2)?;
                if rules.iter().any(|(n, _)| n == "drift") {
                    Err(format!("Prometheus still has the rules: {rules:?}"))
                } else {
                    Ok(())
                }
            })),
            ..Default::default()
        },
    );
}

#[test]
fn monitor_bad_input_is_caught_at_plan() {
    if !have_prometheus("monitor_bad_input") {
        return;
    }
    let l = Local::new("monitor-bad");
    let alert = |body: &str| {
        monitor(
            &l,
            &format!("\n  alert {{\n    name = \"a\"\n{body}\n  }}\n"),
        )
    };
    acc(
        "monitor_bad_input",
        TestCase {
            steps: vec![
                Step::new(served(&l)),
                Step::new(alert("    psi_above = 0.2\n    features = [\"petal_lenght\"]"))
                    .expect_error("Unknown feature(.|\\n)*\"petal_lenght\" is not in the baselines(.|\\n)*petal_length"),
                Step::new(alert("    accuracy_below = 1.5")).expect_error("Threshold out of range(.|\\n)*accuracy_below = 1.5"),
                Step::new(alert("    expr = \"rate(modelplane_requests_total[5m]\"")).expect_error("Invalid PromQL"),
                Step::new(alert("    psi_above = 0.2\n    p99_ms_above = 10")).expect_error("Conflicting conditions(.|\\n)*one condition"),
                Step::new(alert("    severity = \"warning\"")).expect_error("Alert without a condition"),
                Step::new(alert("    psi_above = 0.2\n    for = \"5 minutes\"")).expect_error("Invalid duration(.|\\n)*Prometheus duration"),
                Step::new(alert("    error_rate_above = 0.1\n    features = [\"petal_length\"]")).expect_error("features applies to psi_above and ks_above"),
                Step::new(monitor(&l, "\n  alert {\n    name = \"drift alert\"\n    psi_above = 0.2\n  }\n")).expect_error("Invalid alert name"),
                Step::new(alert("    psi_above = 0.2\n  }\n  on_alert {\n    webhook = \"https://ci.example.com/retrain\"\n    alerts  = [\"nope\"]")).expect_error("Unknown alert(.|\\n)*\"nope\""),
                Step::new(alert("    psi_above = 0.2\n  }\n  on_alert {\n    webhook = \"ci.example.com/retrain\"")).expect_error("Invalid webhook"),
                Step::new(alert("    psi_above = 0.2").replace("modelplane_endpoint.e.id", "\"iris\"")).expect_error("Invalid endpoint"),
            ],
            ..Default::default()
        },
    );
}

/// `examples/monitoring` with its retraining receiver: drifted traffic starts a job with the
/// alert's facts in its environment.
#[test]
fn monitoring_example_triggers_retraining() {
    if !have_prometheus("monitoring_example") {
        return;
    }
    let l = Local::new("monitoring-example");
    let work = tempfile::tempdir().unwrap();
    let (log, out) = (
        work.path().join("jobs.jsonl"),
        work.path().join("retrained"),
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut receiver = std::process::Command::new("python3")
        .arg(common::repo().join("examples/monitoring/retrain_receiver.py"))
        .args(["--port", &port.to_string(), "--log"])
        .arg(&log)
        .arg("--command")
        .arg(format!("echo \"$MODELPLANE_MODEL $MODELPLANE_VERSION $MODELPLANE_ALERT $MODELPLANE_FEATURE\" >> {}", out.display()))
        .spawn()
        .expect("python3 runs the receiver");
    let config = format!(
        "module \"ex\" {{\n  source          = {:?}\n  state_dir       = {:?}\n  retrain_webhook = \"http://127.0.0.1:{port}/retrain\"\n  alert_after     = \"0s\"\n  drift_window    = \"10s\"\n  interval        = \"1s\"\n}}\n",
        common::relative_source("examples/monitoring"),
        l.path().display().to_string()
    );
    let state = l.path();
    let result = std::panic::catch_unwind(|| {
        acc(
            "monitoring_example",
            TestCase {
                steps: vec![Step::new(config)
                    .check(attr_equals(
                        "module.ex.modelplane_monitor.iris",
                        "status",
                        "running",
                    ))
                    .check(check(move |s| {
                        let c = Client {
                            url: s
                                .attr("module.ex.modelplane_endpoint.iris", "url")
                                .and_then(|v| v.as_str().map(String::from))
                                .unwrap_or_default(),
                            token: std::fs::read_to_string(state.join("endpoints/iris/token"))
                                .unwrap_or_default(),
                        };
                        let shifted = rows(true);
                        let until = Instant::now() + Duration::from_secs(60);
                        loop {
                            let ran = std::fs::read_to_string(&out).unwrap_or_default();
                            if ran.lines().any(|l| l.starts_with("iris 1 drift ")) {
                                let jobs = std::fs::read_to_string(&log).unwrap_or_default();
                                let job: Value =
                                    serde_json::from_str(jobs.lines().next().unwrap_or(""))
                                        .map_err(|e| format!("{e}: {jobs}"))?;
                                if job["endpoint_id"] != "local/monitoring/iris"
                                    || job["threshold"] != "0.25"
                                {
                                    return Err(format!("job: {job}"));
                                }
                                return Ok(());
                            }
                            if Instant::now() > until {
                                return Err(format!(
                                    "no retraining job within 60s; jobs: {:?}",
                                    std::fs::read_to_string(&log)
                                ));
                            }
                            c.infer("drifted", &shifted[..10])?;
                            std::thread::sleep(Duration::from_millis(300));
                        }
                    }))],
                ..Default::default()
            },
        )
    });
    let _ = receiver.kill();
    let _ = receiver.wait();
    if let Err(p) = result {
        std::panic::resume_unwind(p);
    }
}
