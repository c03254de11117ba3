//! `cargo xtask bench serve`: the same models and payloads, through the same load generator
//! (`modelplane-serve bench`), against modelplane-serve, KServe's ModelServer wrapping
//! onnxruntime, MLServer with an onnxruntime runtime, and, for the limits, raw tract and raw
//! onnxruntime in process.

use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::{root, terraform};

// Separate environments: KServe and MLServer pin different web stacks.
const KSERVE: &[&str] = &["kserve==0.21.0", "onnxruntime", "numpy"];
const MLSERVER: &[&str] = &["mlserver==1.7.1", "onnxruntime", "numpy"];
const CONCURRENCY: &[usize] = &[1, 16, 64];

pub(super) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

pub(super) struct Proc(pub(super) Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(super) fn wait_ready(url: &str, what: &str) -> Result<()> {
    let until = Instant::now() + Duration::from_secs(90);
    while Instant::now() < until {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", url])
            .output();
        if let Ok(o) = out {
            if o.stdout == b"200" {
                return Ok(());
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("{what} did not become ready at {url}")
}

fn rss_kib(pid: u32) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

pub(super) fn load(
    serve: &Path,
    url: &str,
    model: &str,
    payload: &Path,
    conc: usize,
    seconds: u64,
) -> Result<Value> {
    load_from(Command::new(serve), url, model, payload, conc, seconds)
}

/// [`load`] with the load generator started by `cmd` (e.g. under taskset).
pub(super) fn load_from(
    mut cmd: Command,
    url: &str,
    model: &str,
    payload: &Path,
    conc: usize,
    seconds: u64,
) -> Result<Value> {
    let out = cmd
        .args(["bench", "--url", url, "--model", model, "--payload"])
        .arg(payload)
        .args([
            "--concurrency",
            &conc.to_string(),
            "--duration",
            &format!("{seconds}s"),
            "--warmup",
            "1s",
            "--json",
        ])
        .output()
        .context("running modelplane-serve bench")?;
    if !out.status.success() {
        bail!(
            "bench against {url}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// Starts modelplane-serve on a free port and waits until it is ready.
pub(super) fn start_serve(serve: &Path, repo: &Path, model: &str) -> Result<(Proc, String)> {
    start_serve_models(serve, repo, &[model])
}

/// [`start_serve`] with several models in one process.
pub(super) fn start_serve_models(
    serve: &Path,
    repo: &Path,
    models: &[&str],
) -> Result<(Proc, String)> {
    let port = free_port();
    let p = Proc(
        Command::new(serve)
            .args(["serve", "--repository"])
            .arg(repo)
            .args(models.iter().flat_map(|m| ["--model", m]))
            .args([
                "--http",
                &format!("127.0.0.1:{port}"),
                "--log-format",
                "text",
            ])
            .env("MODELPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/v2/health/ready"), "modelplane-serve")?;
    Ok((p, url))
}

struct Row {
    system: &'static str,
    model: String,
    conc: usize,
    report: Value,
}

/// One request of one row of the fixture's reference inputs, written to `work/MODEL.json`, as
/// online inference sends them.
pub(super) fn one_row_payload(
    fixtures: &Path,
    model: &str,
    work: &Path,
) -> Result<std::path::PathBuf> {
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures.join("reference").join(format!("{model}.json")),
    )?)?;
    // one row per request, as online inference sends them
    let mut inputs = reference["inputs"].clone();
    for i in inputs.as_array_mut().expect("inputs") {
        let shape = i["shape"].as_array().expect("shape").clone();
        let row: usize = shape
            .iter()
            .skip(1)
            .map(|d| d.as_u64().unwrap_or(1) as usize)
            .product();
        let data: Vec<Value> = i["data"]
            .as_array()
            .expect("data")
            .iter()
            .take(row)
            .cloned()
            .collect();
        let mut s = shape.clone();
        s[0] = Value::from(1);
        i["shape"] = Value::Array(s);
        i["data"] = Value::Array(data);
    }
    let payload = work.join(format!("{model}.json"));
    std::fs::write(
        &payload,
        serde_json::json!({ "inputs": inputs }).to_string(),
    )?;

    Ok(payload)
}

/// A copy of the fixture's repository entry with a drift baseline beside the model (from its
/// hold-out set), or `None` when the fixture has no hold-out set.
pub(super) fn drift_repo(
    serve: &Path,
    fixtures: &Path,
    work: &Path,
    model: &str,
) -> Result<Option<std::path::PathBuf>> {
    let holdout = fixtures.join("data").join(format!("{model}_holdout.csv"));
    if !holdout.is_file() {
        return Ok(None);
    }
    let onnx = fixtures.join("repo").join(model).join("1/model.onnx");
    let repo = work.join(format!("drift-repo-{model}"));
    let vdir = repo.join(model).join("1");
    std::fs::create_dir_all(&vdir)?;
    for f in ["model.onnx", "model.json"] {
        std::fs::copy(
            fixtures.join("repo").join(model).join("1").join(f),
            vdir.join(f),
        )?;
    }
    let header = std::fs::read_to_string(&holdout)?
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    let target = header.rsplit(',').next().unwrap_or_default().to_string();
    crate::run(
        Command::new(serve)
            .args(["baseline", "--dataset"])
            .arg(&holdout)
            .args(["--target", &target, "--model"])
            .arg(&onnx)
            .arg("--out")
            .arg(vdir.join("baseline.json"))
            .stdout(Stdio::null()),
    )?;
    Ok(Some(repo))
}

pub fn run(seconds: u64, models: &[String]) -> Result<()> {
    let serve = crate::build_serve_release()?;
    let target = crate::target_dir();
    let py = terraform::python_env("bench-kserve", KSERVE)?;
    let mpy = terraform::python_env("bench-mlserver", MLSERVER)?;
    let peers = root().join("xtask/peers");
    let fixtures = root().join("tests/fixtures/models");
    let work = target.join("bench-serve");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let mut rows = Vec::new();
    let mut rss = None;
    for model in models {
        let onnx = fixtures.join("repo").join(model).join("1/model.onnx");
        let payload = one_row_payload(&fixtures, model, &work)?;

        // modelplane-serve
        let (mut p, url) = start_serve(&serve, &fixtures.join("repo"), model)?;
        let measure = |system: &'static str, url: &str, rows: &mut Vec<Row>| -> Result<()> {
            for &c in CONCURRENCY {
                eprintln!("==> {model}: {system}, concurrency {c}");
                rows.push(Row {
                    system,
                    model: model.clone(),
                    conc: c,
                    report: load(&serve, url, model, &payload, c, seconds)?,
                });
            }
            Ok(())
        };
        measure("modelplane-serve", &url, &mut rows)?;
        if rss.is_none() {
            rss = rss_kib(p.0.id()).map(|k| (model.clone(), k));
        }
        let _ = p.0.kill();
        drop(p);

        // The same server with a drift baseline beside the model: the cost of drift statistics.
        if let Some(repo) = drift_repo(&serve, &fixtures, &work, model)? {
            let (_d, durl) = start_serve(&serve, &repo, model)?;
            measure("modelplane-serve + drift", &durl, &mut rows)?;
        }

        // KServe ModelServer + onnxruntime
        let (hp, gp) = (free_port(), free_port());
        let _k = Proc(
            Command::new(&py)
                .arg(peers.join("kserve_onnx.py"))
                .args([
                    model.as_str(),
                    onnx.to_str().unwrap_or_default(),
                    &hp.to_string(),
                    &gp.to_string(),
                ])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let kurl = format!("http://127.0.0.1:{hp}");
        wait_ready(&format!("{kurl}/v2/models/{model}/ready"), "KServe")?;
        measure("KServe (onnxruntime)", &kurl, &mut rows)?;
        drop(_k);

        // MLServer + onnxruntime runtime
        let dir = work.join(format!("mlserver-{model}"));
        let mdir = dir.join(model);
        std::fs::create_dir_all(&mdir)?;
        std::fs::copy(peers.join("mlserver_onnx.py"), dir.join("mlserver_onnx.py"))?;
        let (mh, mg, mm) = (free_port(), free_port(), free_port());
        std::fs::write(
            dir.join("settings.json"),
            serde_json::json!({ "host": "127.0.0.1", "http_port": mh, "grpc_port": mg, "metrics_port": mm, "parallel_workers": 0, "debug": false }).to_string(),
        )?;
        std::fs::write(
            mdir.join("model-settings.json"),
            serde_json::json!({ "name": model, "implementation": "mlserver_onnx.OnnxRuntime", "parameters": { "uri": onnx } }).to_string(),
        )?;
        let _m = Proc(
            Command::new(mpy.parent().expect("venv bin").join("mlserver"))
                .arg("start")
                .arg(&dir)
                .current_dir(&dir)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        let murl = format!("http://127.0.0.1:{mh}");
        wait_ready(&format!("{murl}/v2/models/{model}/ready"), "MLServer")?;
        measure("MLServer (onnxruntime)", &murl, &mut rows)?;
        drop(_m);

        // Limits: tract and onnxruntime in process, concurrency 1.
        eprintln!("==> {model}: raw tract and raw onnxruntime");
        let out = Command::new(&serve)
            .args(["bench", "--in-process"])
            .arg(&onnx)
            .arg("--payload")
            .arg(&payload)
            .args([
                "--concurrency",
                "1",
                "--duration",
                &format!("{seconds}s"),
                "--warmup",
                "1s",
                "--json",
            ])
            .output()?;
        rows.push(Row {
            system: "raw tract (in process)",
            model: model.clone(),
            conc: 1,
            report: serde_json::from_slice(&out.stdout)?,
        });
        let out = Command::new(&py)
            .arg(peers.join("ort_raw.py"))
            .arg(&onnx)
            .arg(&payload)
            .arg(seconds.to_string())
            .output()?;
        rows.push(Row {
            system: "raw onnxruntime (in process)",
            model: model.clone(),
            conc: 1,
            report: serde_json::from_slice(&out.stdout)?,
        });
    }

    println!("\nbench serve: one-row requests over REST JSON, {seconds}s per case after a 1 s warm-up, same load generator\n");
    println!("| model | system | concurrency | req/s | p50 ms | p99 ms | errors |");
    println!("|---|---|---:|---:|---:|---:|---:|");
    for r in &rows {
        let f = |k: &str| r.report[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "| {} | {} | {} | {:.0} | {:.3} | {:.3} | {} |",
            r.model,
            r.system,
            r.conc,
            f("rps"),
            f("p50_ms"),
            f("p99_ms"),
            f("errors")
        );
    }
    println!("\nRatios (modelplane-serve against the better Python server at the same concurrency; raw tract at concurrency 1):\n");
    println!("| model | concurrency | throughput ratio (goal >= 5x) | p99 ratio (goal <= 0.2x) | p50 vs raw tract (goal <= 1.15x) |");
    println!("|---|---:|---:|---:|---:|");
    for model in models {
        for &c in CONCURRENCY {
            let get = |sys: &str, conc: usize| {
                rows.iter()
                    .find(|r| r.model == *model && r.system == sys && r.conc == conc)
                    .map(|r| &r.report)
            };
            let Some(mp) = get("modelplane-serve", c) else {
                continue;
            };
            let best = ["KServe (onnxruntime)", "MLServer (onnxruntime)"]
                .iter()
                .filter_map(|s| get(s, c))
                .max_by(|a, b| {
                    a["rps"]
                        .as_f64()
                        .unwrap_or(0.0)
                        .total_cmp(&b["rps"].as_f64().unwrap_or(0.0))
                });
            let (tr, pr) = match best {
                Some(b) => (
                    mp["rps"].as_f64().unwrap_or(0.0) / b["rps"].as_f64().unwrap_or(1.0),
                    mp["p99_ms"].as_f64().unwrap_or(0.0) / b["p99_ms"].as_f64().unwrap_or(1.0),
                ),
                None => (f64::NAN, f64::NAN),
            };
            let raw = if c == 1 {
                get("raw tract (in process)", 1).map_or("-".to_string(), |t| {
                    format!(
                        "{:.2}x",
                        mp["p50_ms"].as_f64().unwrap_or(0.0) / t["p50_ms"].as_f64().unwrap_or(1.0)
                    )
                })
            } else {
                "-".into()
            };
            println!("| {model} | {c} | {tr:.2}x | {pr:.2}x | {raw} |");
        }
    }
    let drift: Vec<String> = models
        .iter()
        .flat_map(|m| CONCURRENCY.iter().map(move |c| (m, *c)))
        .filter_map(|(m, c)| {
            let get = |sys: &str| {
                rows.iter()
                    .find(|r| r.model == *m && r.system == sys && r.conc == c)
                    .and_then(|r| r.report["rps"].as_f64())
            };
            let (plain, with) = (get("modelplane-serve")?, get("modelplane-serve + drift")?);
            Some(format!(
                "{m} c={c}: {:+.1}% throughput",
                (with / plain - 1.0) * 100.0
            ))
        })
        .collect();
    if !drift.is_empty() {
        println!("\nDrift statistics cost (goal < 5%): {}", drift.join("; "));
    }
    if let Some((m, kib)) = rss {
        println!(
            "\nmodelplane-serve RSS after the {m} runs: {:.1} MiB (goal < 50 MiB)",
            kib as f64 / 1024.0
        );
    }
    Ok(())
}
