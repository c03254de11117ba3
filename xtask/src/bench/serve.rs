//! `cargo xtask bench serve`: modelplane-serve against two floors (nginx, and its own REST and
//! gRPC stacks answering a fixed response: `modelplane-serve floor`) and two peers (KServe's
//! ModelServer and MLServer, both wrapping onnxruntime, each in the best of the worker
//! settings tried), over REST JSON, REST binary and gRPC, through two load generators (wrk and
//! `modelplane-serve bench`), in alternating rounds with medians; one process serves the
//! model with and without drift statistics. Models: the iris fixture (one row: the server's
//! own time dominates) and a generated `[N,3,224,224]` image model (moving tensors
//! dominates); then PP-OCR recognition in process, tract against onnxruntime (compute
//! dominates). Prints every figure and the goals.

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
    cmd: Command,
    url: &str,
    model: &str,
    payload: &Path,
    conc: usize,
    seconds: u64,
) -> Result<Value> {
    load_with(cmd, url, model, payload, conc, seconds, &[])
}

/// [`load_from`] with more `bench` arguments (`--protocol grpc`).
fn load_with(
    mut cmd: Command,
    url: &str,
    model: &str,
    payload: &Path,
    conc: usize,
    seconds: u64,
    extra: &[&str],
) -> Result<Value> {
    let out = cmd
        .args(["bench", "--url", url, "--model", model, "--payload"])
        .arg(payload)
        .args(extra)
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

/// What `cargo xtask bench serve` runs.
pub struct Options {
    pub seconds: u64,
    pub rounds: usize,
    pub concurrency: Vec<usize>,
    pub models: Vec<String>,
    pub protocols: Vec<Protocol>,
    pub peers: bool,
    pub compute: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Protocol {
    /// REST with JSON tensors (wrk and modelplane-serve's load generator).
    Json,
    /// REST with the binary tensor data extension (wrk).
    Binary,
    /// gRPC with raw tensor contents (modelplane-serve's load generator).
    Grpc,
}

impl Protocol {
    fn name(self) -> &'static str {
        match self {
            Protocol::Json => "REST JSON",
            Protocol::Binary => "REST binary",
            Protocol::Grpc => "gRPC",
        }
    }
}

/// One system under load and where it answers.
struct System {
    name: String,
    /// The model's name at this system.
    model: String,
    rest: Option<String>,
    grpc: Option<String>,
    binary: bool,
}

const SERVE: &str = "modelplane-serve";
const SERVE_DRIFT: &str = "modelplane-serve + drift";
const AXUM_FLOOR: &str = "axum floor";
const NGINX_FLOOR: &str = "nginx floor";
const GRPC_FLOOR: &str = "tonic floor";

/// A process group (the peers fork workers): killed whole.
pub(super) struct Group(Child);
impl Drop for Group {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the group this child leads; no memory is touched.
        unsafe {
            libc::kill(-(self.0.id() as i32), libc::SIGKILL);
        }
        let _ = self.0.wait();
    }
}

pub(super) fn group(c: Command) -> Result<Group> {
    group_logged(c, None)
}

/// [`group`] with stdout and stderr to `log`.
fn group_logged(mut c: Command, log: Option<&Path>) -> Result<Group> {
    use std::os::unix::process::CommandExt;
    let (out, err) = match log {
        Some(l) => {
            let f = std::fs::File::create(l)?;
            (Stdio::from(f.try_clone()?), Stdio::from(f))
        }
        None => (Stdio::null(), Stdio::null()),
    };
    Ok(Group(c.process_group(0).stdout(out).stderr(err).spawn()?))
}

/// One measurement: latency percentiles in µs and throughput.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Fig {
    p50: f64,
    p99: f64,
    rps: f64,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

/// The JSON request as a binary-extension body: the JSON header (each input's `data`
/// replaced by `parameters.binary_data_size`) then the raw little-endian tensors. Returns
/// the body and the header's length (`Inference-Header-Content-Length`).
pub(super) fn binary_body(payload: &Value) -> Result<(Vec<u8>, usize)> {
    let mut header = payload.clone();
    let mut raw = Vec::new();
    for i in header["inputs"]
        .as_array_mut()
        .context("the payload has no inputs")?
    {
        let before = raw.len();
        let dt = i["datatype"].as_str().unwrap_or_default().to_string();
        let data = i["data"].take();
        for v in data
            .as_array()
            .context("an input's data is not a flat array")?
        {
            match dt.as_str() {
                "FP32" => raw.extend((v.as_f64().context("FP32 value")? as f32).to_le_bytes()),
                "FP64" => raw.extend(v.as_f64().context("FP64 value")?.to_le_bytes()),
                "INT64" => raw.extend(v.as_i64().context("INT64 value")?.to_le_bytes()),
                "INT32" => raw.extend((v.as_i64().context("INT32 value")? as i32).to_le_bytes()),
                other => bail!("no binary encoding here for {other}"),
            }
        }
        let o = i.as_object_mut().context("an input is not an object")?;
        o.remove("data");
        o.insert(
            "parameters".into(),
            serde_json::json!({ "binary_data_size": raw.len() - before }),
        );
    }
    let mut body = serde_json::to_vec(&header)?;
    let len = body.len();
    body.extend(raw);
    Ok((body, len))
}

/// modelplane-serve's own load generator over REST JSON or gRPC.
fn own(
    serve: &Path,
    url: &str,
    model: &str,
    payload: &Path,
    conc: usize,
    seconds: u64,
    grpc: bool,
) -> Result<Fig> {
    let protocol = ["--protocol", if grpc { "grpc" } else { "rest" }];
    let r = load_with(
        Command::new(serve),
        url,
        model,
        payload,
        conc,
        seconds,
        &protocol,
    )?;
    let errors = r["errors"].as_u64().unwrap_or(0);
    if errors > 0 {
        bail!(
            "{errors} errors, the first: {}",
            r["first_error"].as_str().unwrap_or("?")
        );
    }
    Ok(Fig::from_report(&r))
}

/// modelplane-serve serving `models` from `repo` over REST and gRPC on free ports.
fn start_serve_both(serve: &Path, repo: &Path, models: &[&str]) -> Result<(Proc, String, String)> {
    let (hp, gp) = (free_port(), free_port());
    let p = Proc(
        Command::new(serve)
            .args(["serve", "--repository"])
            .arg(repo)
            .args(models.iter().flat_map(|m| ["--model", m]))
            .args([
                "--http",
                &format!("127.0.0.1:{hp}"),
                "--grpc",
                &format!("127.0.0.1:{gp}"),
                "--log-format",
                "text",
            ])
            .env("MODELPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let url = format!("http://127.0.0.1:{hp}");
    wait_ready(&format!("{url}/v2/health/ready"), "modelplane-serve")?;
    Ok((p, url, format!("http://127.0.0.1:{gp}")))
}

/// The peers in each configuration tried, at concurrency 16 over REST JSON; the best one by
/// throughput is kept running and returned with a line per configuration.
#[allow(clippy::too_many_arguments)]
fn best_peer(
    serve: &Path,
    name: &str,
    configs: &[(String, Starter<'_>)],
    model: &str,
    payload: &Path,
    seconds: u64,
    tried: &mut Vec<String>,
) -> Result<Option<(Group, System)>> {
    let mut best: Option<(f64, Group, System)> = None;
    for (label, start) in configs {
        let (hp, gp) = (free_port(), free_port());
        eprintln!("==> {model}: {name} with {label}");
        let g = start(hp, gp)?;
        let url = format!("http://127.0.0.1:{hp}");
        if let Err(e) = wait_ready(&format!("{url}/v2/models/{model}/ready"), name) {
            tried.push(format!(
                "{model}: {name} with {label}: {e} (its log is under {})",
                crate::target_dir()
                    .join("bench-serve")
                    .join(model)
                    .display()
            ));
            continue;
        }
        match own(serve, &url, model, payload, 16, seconds, false) {
            Ok(f) => {
                tried.push(format!(
                    "{model}: {name} with {label}: {:.0} req/s at concurrency 16",
                    f.rps
                ));
                if best.as_ref().is_none_or(|b| f.rps > b.0) {
                    best = Some((
                        f.rps,
                        g,
                        System {
                            name: format!("{name} ({label})"),
                            model: model.into(),
                            rest: Some(url),
                            grpc: Some(format!("http://127.0.0.1:{gp}")),
                            binary: name == "KServe",
                        },
                    ));
                }
            }
            Err(e) => tried.push(format!("{model}: {name} with {label}: {e}")),
        }
    }
    Ok(best.map(|(_, g, s)| (g, s)))
}

type Key = (String, Protocol, &'static str, usize, usize, String);
/// Starts a peer on (HTTP port, gRPC port).
type Starter<'a> = Box<dyn Fn(u16, u16) -> Result<Group> + 'a>;
/// One load-generator run against one system.
type Measure<'a> = Box<dyn Fn() -> Result<Fig> + 'a>;

pub fn run(o: &Options) -> Result<()> {
    super::wrk::require_tools()?;
    let serve = crate::build_serve_release()?;
    let fixtures = root().join("tests/fixtures/models");
    let peers = root().join("xtask/peers");
    let work = crate::target_dir().join("bench-serve");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let (kpy, mpy) = if o.peers {
        (
            Some(terraform::python_env("bench-kserve", KSERVE)?),
            Some(terraform::python_env("bench-mlserver", MLSERVER)?),
        )
    } else {
        (None, None)
    };
    let rpy = if o.compute || o.models.iter().any(|m| m == "image") {
        Some(terraform::python_env(
            "real-models-venv",
            crate::REAL_MODELS,
        )?)
    } else {
        None
    };
    let secs = o.seconds;
    let mut got: std::collections::BTreeMap<Key, Vec<Fig>> = Default::default();
    let mut failed: Vec<String> = Vec::new();
    let mut tried: Vec<String> = Vec::new();
    let mut rss = Vec::new();
    for model in &o.models {
        let mdir = work.join(model);
        std::fs::create_dir_all(&mdir)?;
        // The model's repository entry and one request, as online inference sends it.
        let (src, payload) = if model == "image" {
            let py = rpy.as_ref().context("the real-models environment")?;
            let payload = mdir.join("image.json");
            crate::run(
                Command::new(py)
                    .arg(peers.join("image_model.py"))
                    .arg(mdir.join("src"))
                    .arg(&payload),
            )?;
            (mdir.join("src"), payload)
        } else {
            (
                fixtures.join("repo"),
                one_row_payload(&fixtures, model, &mdir)?,
            )
        };
        let onnx = src.join(model).join("1/model.onnx");
        // One process serves the model twice: as itself, and as MODEL_drift with a drift
        // baseline beside it, so the difference is drift's cost, not two processes' spread.
        let repo = mdir.join("repo");
        let dst = repo.join(model).join("1");
        std::fs::create_dir_all(&dst)?;
        for f in ["model.onnx", "model.json"] {
            std::fs::copy(src.join(model).join("1").join(f), dst.join(f))?;
        }
        let drifted = format!("{model}_drift");
        let with_drift = match drift_repo(&serve, &fixtures, &mdir, model)? {
            Some(d) => {
                let to = repo.join(&drifted).join("1");
                std::fs::create_dir_all(&to)?;
                for f in ["model.onnx", "baseline.json"] {
                    std::fs::copy(d.join(model).join("1").join(f), to.join(f))?;
                }
                let mut meta: Value = serde_json::from_str(&std::fs::read_to_string(
                    d.join(model).join("1/model.json"),
                )?)?;
                meta["name"] = Value::from(drifted.clone());
                std::fs::write(to.join("model.json"), meta.to_string())?;
                true
            }
            None => false,
        };
        let mut names = vec![model.as_str()];
        if with_drift {
            names.push(&drifted);
        }
        let (server, http, grpc) = start_serve_both(&serve, &repo, &names)?;
        // The floors answer what modelplane-serve answers.
        let answer = mdir.join("answer.json");
        let out = Command::new("curl")
            .args([
                "-sf",
                "-H",
                "Content-Type: application/json",
                "--data-binary",
            ])
            .arg(format!("@{}", payload.display()))
            .arg(format!("{http}/v2/models/{model}/infer"))
            .output()?;
        if !out.status.success() {
            bail!("modelplane-serve did not answer the {model} payload");
        }
        std::fs::write(&answer, &out.stdout)?;
        let (fh, fg) = (free_port(), free_port());
        let _floor = Proc(
            Command::new(&serve)
                .args(["floor", "--http", &format!("127.0.0.1:{fh}"), "--body"])
                .arg(&answer)
                .args([
                    "--grpc",
                    &format!("127.0.0.1:{fg}"),
                    "--answer-from",
                    &grpc,
                    "--model",
                    model,
                    "--payload",
                ])
                .arg(&payload)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()?,
        );
        wait_ready(&format!("http://127.0.0.1:{fh}/"), "the floors")?;
        let np = free_port();
        let ndir = mdir.join("nginx");
        std::fs::create_dir_all(ndir.join("body"))?;
        let _nginx = super::wrk::nginx(&ndir, np, &answer)?;
        let mut systems = vec![System {
            name: SERVE.into(),
            model: model.clone(),
            rest: Some(http.clone()),
            grpc: Some(grpc.clone()),
            binary: true,
        }];
        if with_drift {
            systems.push(System {
                name: SERVE_DRIFT.into(),
                model: drifted.clone(),
                rest: Some(http.clone()),
                grpc: Some(grpc.clone()),
                binary: true,
            });
        }
        systems.push(System {
            name: AXUM_FLOOR.into(),
            model: model.clone(),
            rest: Some(format!("http://127.0.0.1:{fh}")),
            grpc: None,
            binary: true,
        });
        systems.push(System {
            name: NGINX_FLOOR.into(),
            model: model.clone(),
            rest: Some(format!("http://127.0.0.1:{np}")),
            grpc: None,
            binary: true,
        });
        systems.push(System {
            name: GRPC_FLOOR.into(),
            model: model.clone(),
            rest: None,
            grpc: Some(format!("http://127.0.0.1:{fg}")),
            binary: false,
        });
        // Peers in their best configuration: each worker setting tried, the best kept.
        let mut _peers = Vec::new();
        if let (Some(kpy), Some(mpy)) = (&kpy, &mpy) {
            let kserve = |workers: usize| -> Starter<'_> {
                let (kpy, onnx, peers, mdir) =
                    (kpy.clone(), onnx.clone(), peers.clone(), mdir.clone());
                Box::new(move |hp, gp| {
                    let mut c = Command::new(&kpy);
                    c.arg(peers.join("kserve_onnx.py"))
                        .arg(model)
                        .arg(&onnx)
                        .args([hp.to_string(), gp.to_string(), workers.to_string()]);
                    group_logged(c, Some(&mdir.join(format!("kserve-{workers}.log"))))
                })
            };
            let configs: Vec<(String, Starter<'_>)> = vec![
                ("1 worker".into(), kserve(1)),
                ("2 workers".into(), kserve(2)),
            ];
            if let Some(p) = best_peer(
                &serve, "KServe", &configs, model, &payload, secs, &mut tried,
            )? {
                systems.push(p.1);
                _peers.push(p.0);
            }
            let mlserver = |workers: usize| -> Starter<'_> {
                let (mpy, onnx, peers, mdir) =
                    (mpy.clone(), onnx.clone(), peers.clone(), mdir.clone());
                Box::new(move |hp, gp| {
                    let dir = mdir.join(format!("mlserver-{workers}"));
                    let sdir = dir.join(model);
                    std::fs::create_dir_all(&sdir)?;
                    std::fs::copy(peers.join("mlserver_onnx.py"), dir.join("mlserver_onnx.py"))?;
                    std::fs::write(
                        dir.join("settings.json"),
                        serde_json::json!({ "host": "127.0.0.1", "http_port": hp, "grpc_port": gp, "metrics_port": free_port(), "parallel_workers": workers, "debug": false }).to_string(),
                    )?;
                    std::fs::write(
                        sdir.join("model-settings.json"),
                        serde_json::json!({ "name": model, "implementation": "mlserver_onnx.OnnxRuntime", "parameters": { "uri": onnx } }).to_string(),
                    )?;
                    let mut c = Command::new(mpy.parent().expect("venv bin").join("mlserver"));
                    c.arg("start").arg(&dir).current_dir(&dir);
                    group_logged(c, Some(&dir.join("mlserver.log")))
                })
            };
            let configs: Vec<(String, Starter<'_>)> = vec![
                ("parallel_workers 0".into(), mlserver(0)),
                ("parallel_workers 2".into(), mlserver(2)),
            ];
            if let Some(p) = best_peer(
                &serve, "MLServer", &configs, model, &payload, secs, &mut tried,
            )? {
                systems.push(p.1);
                _peers.push(p.0);
            }
        }
        // The load generators' inputs: wrk scripts for JSON and binary bodies.
        let json_lua = mdir.join("json.lua");
        super::wrk::script(
            &json_lua,
            &payload,
            &[("Content-Type", "application/json".into())],
        )?;
        let (bin, hlen) = binary_body(&serde_json::from_str(&std::fs::read_to_string(&payload)?)?)?;
        let bin_path = mdir.join("binary.body");
        std::fs::write(&bin_path, bin)?;
        let bin_lua = mdir.join("binary.lua");
        super::wrk::script(
            &bin_lua,
            &bin_path,
            &[
                ("Content-Type", "application/octet-stream".into()),
                ("Inference-Header-Content-Length", hlen.to_string()),
            ],
        )?;

        let mut dead: std::collections::BTreeSet<(String, Protocol, &'static str)> =
            Default::default();
        for round in 0..o.rounds {
            for &proto in &o.protocols {
                for &c in &o.concurrency {
                    let list: Vec<(usize, &System)> = systems
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| match proto {
                            Protocol::Json => s.rest.is_some(),
                            Protocol::Binary => s.rest.is_some() && s.binary,
                            Protocol::Grpc => s.grpc.is_some(),
                        })
                        .collect();
                    let n = list.len();
                    for k in 0..n {
                        let (rank, s) = list[(k + round) % n];
                        eprintln!(
                            "==> {model}, round {}/{}, {}, concurrency {c}: {}",
                            round + 1,
                            o.rounds,
                            proto.name(),
                            s.name
                        );
                        let infer = |base: &str| format!("{base}/v2/models/{}/infer", s.model);
                        let runs: Vec<(&'static str, Measure<'_>)> = match proto {
                            Protocol::Json => {
                                let url = infer(s.rest.as_deref().unwrap_or_default());
                                let base = s.rest.clone().unwrap_or_default();
                                let (json_lua, serve, payload) = (&json_lua, &serve, &payload);
                                vec![
                                    (
                                        "wrk",
                                        Box::new(move || {
                                            super::wrk::run(&url, json_lua, c, secs).map(Fig::from)
                                        }),
                                    ),
                                    (
                                        "own",
                                        Box::new(move || {
                                            own(serve, &base, &s.model, payload, c, secs, false)
                                        }),
                                    ),
                                ]
                            }
                            Protocol::Binary => {
                                let url = infer(s.rest.as_deref().unwrap_or_default());
                                let bin_lua = &bin_lua;
                                vec![(
                                    "wrk",
                                    Box::new(move || {
                                        super::wrk::run(&url, bin_lua, c, secs).map(Fig::from)
                                    }),
                                )]
                            }
                            Protocol::Grpc => {
                                let base = s.grpc.clone().unwrap_or_default();
                                let (serve, payload) = (&serve, &payload);
                                vec![(
                                    "own",
                                    Box::new(move || {
                                        own(serve, &base, &s.model, payload, c, secs, true)
                                    }),
                                )]
                            }
                        };
                        for (generator, f) in runs {
                            if dead.contains(&(s.name.clone(), proto, generator)) {
                                continue;
                            }
                            match f() {
                                Ok(fig) => got
                                    .entry((
                                        model.clone(),
                                        proto,
                                        generator,
                                        c,
                                        rank,
                                        s.name.clone(),
                                    ))
                                    .or_default()
                                    .push(fig),
                                Err(e) => {
                                    failed.push(format!(
                                        "{model}, {}, {} at concurrency {c} ({generator}): {e:#}",
                                        proto.name(),
                                        s.name
                                    ));
                                    dead.insert((s.name.clone(), proto, generator));
                                }
                            }
                        }
                    }
                }
            }
        }
        if let Some(k) = rss_kib(server.0.id()) {
            rss.push((model.clone(), k));
        }
    }

    // Compute-bound: PP-OCR recognition as rapidocr-onnxruntime ships it, tract vs
    // onnxruntime in process, one text line per run.
    let mut compute: std::collections::BTreeMap<&'static str, Vec<Fig>> = Default::default();
    if o.compute {
        let py = rpy.as_ref().context("the real-models environment")?;
        let real = work.join("real-models");
        crate::run(
            Command::new(py)
                .arg(root().join("serve/tests/realmodels/real_models.py"))
                .arg("repo")
                .arg(&real)
                .stdout(Stdio::null()),
        )?;
        let payload = work.join("ppocr_rec.json");
        crate::run(
            Command::new(py)
                .arg(root().join("serve/tests/realmodels/real_models.py"))
                .args(["payload", "ppocr_rec"])
                .arg(&payload),
        )?;
        let onnx = real.join("ppocr_rec/1/model.onnx");
        let tract = |per_shape: bool| -> Result<Fig> {
            let mut c = Command::new(&serve);
            c.args(["bench", "--in-process"]).arg(&onnx);
            if per_shape {
                c.arg("--plan-per-shape");
            }
            let out = c
                .arg("--payload")
                .arg(&payload)
                .args([
                    "--concurrency",
                    "1",
                    "--duration",
                    &format!("{secs}s"),
                    "--warmup",
                    "1s",
                    "--json",
                ])
                .output()?;
            if !out.status.success() {
                bail!("{}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(Fig::from_report(&serde_json::from_slice(&out.stdout)?))
        };
        let ort = |threads: Option<usize>| -> Result<Fig> {
            let mut c = Command::new(py);
            c.arg(peers.join("ort_raw.py"))
                .arg(&onnx)
                .arg(&payload)
                .arg(secs.to_string());
            if let Some(t) = threads {
                c.arg(t.to_string());
            }
            let out = c.output()?;
            if !out.status.success() {
                bail!("{}", String::from_utf8_lossy(&out.stderr));
            }
            Ok(Fig::from_report(&serde_json::from_slice(&out.stdout)?))
        };
        for round in 0..o.rounds {
            let cases: [(&'static str, &dyn Fn() -> Result<Fig>); 4] = [
                ("tract (modelplane-serve's plan)", &|| tract(false)),
                ("tract (plan per shape)", &|| tract(true)),
                ("onnxruntime (default threads)", &|| ort(None)),
                ("onnxruntime (1 thread)", &|| ort(Some(1))),
            ];
            for k in 0..cases.len() {
                let (name, f) = cases[(k + round) % cases.len()];
                eprintln!("==> ppocr_rec, round {}/{}: {name}", round + 1, o.rounds);
                compute.entry(name).or_default().push(f()?);
            }
        }
    }
    report(o, &got, &compute, &failed, &tried, &rss);
    Ok(())
}

impl From<super::wrk::Wrk> for Fig {
    fn from(w: super::wrk::Wrk) -> Fig {
        Fig {
            p50: w.p50_us,
            p99: w.p99_us,
            rps: w.rps,
        }
    }
}

impl Fig {
    /// From a `modelplane-serve bench --json` (or ort_raw.py) report.
    fn from_report(r: &Value) -> Fig {
        let f = |k: &str| r[k].as_f64().unwrap_or(f64::NAN);
        Fig {
            p50: f("p50_ms") * 1e3,
            p99: f("p99_ms") * 1e3,
            rps: f("rps"),
        }
    }
}

fn med(v: &[Fig]) -> Fig {
    Fig {
        p50: median(v.iter().map(|f| f.p50).collect()),
        p99: median(v.iter().map(|f| f.p99).collect()),
        rps: median(v.iter().map(|f| f.rps).collect()),
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "missed"
    }
}

fn report(
    o: &Options,
    got: &std::collections::BTreeMap<Key, Vec<Fig>>,
    compute: &std::collections::BTreeMap<&'static str, Vec<Fig>>,
    failed: &[String],
    tried: &[String],
    rss: &[(String, u64)],
) {
    println!(
        "\n## bench serve: one request at a time per connection, {} s per case, medians of {} rounds (the systems' order rotates every round)\n",
        o.seconds, o.rounds
    );
    println!("wrk: the Debian package, `-t min(c,2) -c c --latency`; own: `modelplane-serve bench` (after a 1 s warm-up).\n");
    println!(
        "| model | protocol | load generator | system | concurrency | p50 µs | p99 µs | req/s |"
    );
    println!("|---|---|---|---|---:|---:|---:|---:|");
    for ((model, proto, generator, c, _, system), v) in got {
        let f = med(v);
        println!(
            "| {model} | {} | {generator} | {system} | {c} | {:.0} | {:.0} | {:.0} |",
            proto.name(),
            f.p50,
            f.p99,
            f.rps
        );
    }
    let find = |model: &str,
                proto: Protocol,
                generator: &str,
                c: usize,
                pred: &dyn Fn(&str) -> bool|
     -> Vec<(String, Fig)> {
        got.iter()
            .filter(|((m, p, g, cc, _, s), _)| {
                m == model && *p == proto && *g == generator && *cc == c && pred(s)
            })
            .map(|((.., s), v)| (s.clone(), med(v)))
            .collect()
    };
    let one = |model: &str, proto: Protocol, generator: &str, c: usize, name: &str| {
        find(model, proto, generator, c, &|s| s == name)
            .into_iter()
            .next()
            .map(|x| x.1)
    };
    println!("\n### Goals\n");
    for model in &o.models {
        for (proto, generator, floor) in [
            (Protocol::Json, "wrk", AXUM_FLOOR),
            (Protocol::Json, "own", AXUM_FLOOR),
            (Protocol::Binary, "wrk", AXUM_FLOOR),
            (Protocol::Grpc, "own", GRPC_FLOOR),
        ] {
            if let (Some(s), Some(f)) = (
                one(model, proto, generator, 1, SERVE),
                one(model, proto, generator, 1, floor),
            ) {
                let own = s.p50 - f.p50;
                println!(
                    "- {model}, {} ({generator}): server's own time at concurrency 1 = {:.0} − {:.0} ({floor}) = **{own:.0} µs** (goal ≤ 20 µs: {})",
                    proto.name(),
                    s.p50,
                    f.p50,
                    met(own <= 20.0)
                );
            }
        }
        if let (Some(a), Some(n)) = (
            one(model, Protocol::Json, "wrk", 1, AXUM_FLOOR),
            one(model, Protocol::Json, "wrk", 1, NGINX_FLOOR),
        ) {
            println!(
                "- {model}: the axum floor's p50 is {:+.0} µs from nginx's at concurrency 1",
                a.p50 - n.p50
            );
        }
        for (proto, generator) in [
            (Protocol::Json, "wrk"),
            (Protocol::Json, "own"),
            (Protocol::Binary, "wrk"),
            (Protocol::Grpc, "own"),
        ] {
            for &c in &o.concurrency {
                let Some(s) = one(model, proto, generator, c, SERVE) else {
                    continue;
                };
                let best = find(model, proto, generator, c, &|n| {
                    n.starts_with("KServe") || n.starts_with("MLServer")
                })
                .into_iter()
                .max_by(|a, b| a.1.rps.total_cmp(&b.1.rps));
                if let Some((peer, p)) = best {
                    let tr = s.rps / p.rps;
                    let pr = s.p99 / p.p99;
                    let p99 = if c >= 16 {
                        format!("; p99 {pr:.3}x theirs (goal ≤ 0.2x: {})", met(pr <= 0.2))
                    } else {
                        String::new()
                    };
                    println!(
                        "- {model}, {} ({generator}), concurrency {c}: {tr:.1}x the throughput of the best peer, {peer} (goal ≥ 5x: {}){p99}",
                        proto.name(),
                        met(tr >= 5.0)
                    );
                }
                if let Some(d) = one(model, proto, generator, c, SERVE_DRIFT) {
                    let cost = (1.0 - d.rps / s.rps) * 100.0;
                    println!(
                        "- {model}, {} ({generator}), concurrency {c}: drift statistics cost {cost:.1}% of throughput (goal < 5%: {})",
                        proto.name(),
                        met(cost < 5.0)
                    );
                }
            }
        }
    }
    if !compute.is_empty() {
        println!("\n### Compute-bound: PP-OCR recognition (rapidocr-onnxruntime), one [1,3,48,320] text line, in process\n");
        println!("| runtime | p50 ms | p99 ms | runs/s |\n|---|---:|---:|---:|");
        for (name, v) in compute {
            let f = med(v);
            println!(
                "| {name} | {:.2} | {:.2} | {:.1} |",
                f.p50 / 1e3,
                f.p99 / 1e3,
                f.rps
            );
        }
        let get = |n: &str| compute.get(n).map(|v| med(v));
        if let (Some(t), Some(o1), Some(od)) = (
            get("tract (modelplane-serve's plan)"),
            get("onnxruntime (1 thread)"),
            get("onnxruntime (default threads)"),
        ) {
            println!(
                "\n- tract's p50 is {:.2}x onnxruntime's default (one thread per core) and {:.2}x onnxruntime on one thread, as tract runs (goal ≤ 1.3x: {})",
                t.p50 / od.p50,
                t.p50 / o1.p50,
                met(t.p50 / od.p50 <= 1.3)
            );
        }
    }
    for (m, kib) in rss {
        println!(
            "\nmodelplane-serve RSS after the {m} runs: {:.1} MiB (goal < 50 MiB)",
            *kib as f64 / 1024.0
        );
    }
    if !tried.is_empty() {
        println!("\nPeer configurations tried (the best kept):");
        for t in tried {
            println!("- {t}");
        }
    }
    if !failed.is_empty() {
        println!("\nNot measured (the case failed; later rounds skip it):");
        for f in failed {
            println!("- {f}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_bodies_carry_the_header_then_little_endian_tensors() {
        let p = serde_json::json!({"inputs": [
            {"name": "a", "shape": [1, 2], "datatype": "FP32", "data": [1.5, -2]},
            {"name": "b", "shape": [1], "datatype": "INT64", "data": [7]}
        ]});
        let (body, hlen) = binary_body(&p).unwrap();
        let header: Value = serde_json::from_slice(&body[..hlen]).unwrap();
        assert_eq!(header["inputs"][0]["parameters"]["binary_data_size"], 8);
        assert_eq!(header["inputs"][1]["parameters"]["binary_data_size"], 8);
        assert!(header["inputs"][0].get("data").is_none());
        let mut want = Vec::new();
        want.extend(1.5f32.to_le_bytes());
        want.extend((-2f32).to_le_bytes());
        want.extend(7i64.to_le_bytes());
        assert_eq!(&body[hlen..], &want[..]);
        let bytes = serde_json::json!({"inputs": [
            {"name": "s", "shape": [1], "datatype": "BYTES", "data": ["x"]}
        ]});
        assert!(binary_body(&bytes).is_err());
    }
}
