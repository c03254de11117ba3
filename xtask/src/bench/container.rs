//! `cargo xtask bench container`: the bundled image against the same binary run as a
//! process, in one run: image size, cold start to ready, and throughput on the same model
//! through the same load generator.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::root;

const SIZE_GOAL_MB: f64 = 30.0;
const MODEL: &str = "iris";
const CONCURRENCY: usize = 16;
/// The servers run on CPU 1 and the load generator on CPU 0, so that neither competes with
/// the other and the engine's cgroup (which the scheduler weighs as one task against the
/// load generator's threads) does not decide the result.
const SERVER_CPU: &str = "1";
const CLIENT_CPU: &str = "0";

/// `cmd`, pinned to `cpu` with taskset where the machine has two CPUs or more.
fn pinned(cpu: &str, program: &Path) -> Command {
    if std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2 {
        let mut c = Command::new("taskset");
        c.args(["-c", cpu]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

fn two_cpus() -> bool {
    std::thread::available_parallelism().map_or(1, |n| n.get()) >= 2
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or(0)
}

/// Polls readiness every 5 ms; the time from `t0`.
fn ready_after(url: &str, t0: Instant) -> Result<Duration> {
    let c = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()?;
    let probe = format!("{url}/v2/health/ready");
    while t0.elapsed() < Duration::from_secs(60) {
        if c.get(&probe).send().is_ok_and(|r| r.status().is_success()) {
            return Ok(t0.elapsed());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    bail!("{url} was not ready after 60 s")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

struct Container<'a> {
    engine: &'a str,
    id: String,
}

impl Drop for Container<'_> {
    fn drop(&mut self) {
        let _ = Command::new(self.engine)
            .args(["rm", "-f", "-t", "0", &self.id])
            .output();
    }
}

fn start_container<'a>(
    engine: &'a str,
    run_args: &[String],
    image: &str,
    repo: &Path,
    port: u16,
) -> Result<Container<'a>> {
    let mut c = Command::new(engine);
    c.args(["run", "-d"]).args(run_args);
    if two_cpus() {
        c.args(["--cpuset-cpus", SERVER_CPU]);
    }
    let o = c
        .arg("-v")
        .arg(format!("{}:/models:ro", repo.display()))
        .args(["-e", "MODELPLANE_LOG=warn", image])
        .args([
            "serve",
            "--repository",
            "/models",
            "--model",
            MODEL,
            "--http",
            &format!("0.0.0.0:{port}"),
            // The benchmark's container is reached through the engine's port mapping on
            // loopback only; it serves without a token on purpose.
            "--insecure",
        ])
        .output()
        .context("starting the container")?;
    if !o.status.success() {
        bail!("{engine} run: {}", String::from_utf8_lossy(&o.stderr));
    }
    Ok(Container {
        engine,
        id: String::from_utf8_lossy(&o.stdout).trim().to_string(),
    })
}

fn load(serve: &Path, url: &str, payload: &Path, seconds: u64) -> Result<Value> {
    super::serve::load_from(
        pinned(CLIENT_CPU, serve),
        url,
        MODEL,
        payload,
        CONCURRENCY,
        seconds,
    )
}

/// The server as a process on `port`, pinned to the servers' CPU.
fn start_process(serve: &Path, repo: &Path, port: u16) -> Result<std::process::Child> {
    Ok(pinned(SERVER_CPU, serve)
        .args(["serve", "--repository"])
        .arg(repo)
        .args(["--model", MODEL, "--http", &format!("127.0.0.1:{port}")])
        .env("MODELPLANE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?)
}

pub fn run(engine: &str, run_args: &[String], starts: usize, seconds: u64) -> Result<()> {
    let (layout, built) = crate::image(None)?;
    let serve = crate::target_dir().join("release/modelplane-serve");
    let compressed = built["compressed_bytes"].as_f64().unwrap_or(0.0) / 1e6;
    let uncompressed = built["uncompressed_bytes"].as_f64().unwrap_or(0.0) / 1e6;

    eprintln!("==> loading the image into {engine}");
    let o = Command::new(engine)
        .args(["pull", "-q"])
        .arg(format!("oci:{}", layout.display()))
        .output()
        .context("loading the image")?;
    if !o.status.success() {
        bail!(
            "{engine} pull oci:…: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    let image = String::from_utf8_lossy(&o.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string();

    let repo = root().join("tests/fixtures/models/repo");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("tests/fixtures/models/reference/iris.json"),
    )?)?;
    let mut inputs = reference["inputs"].clone();
    for i in inputs.as_array_mut().into_iter().flatten() {
        let width = i["shape"][1].as_u64().unwrap_or(1) as usize;
        let data: Vec<Value> = i["data"]
            .as_array()
            .into_iter()
            .flatten()
            .take(width)
            .cloned()
            .collect();
        i["shape"] = serde_json::json!([1, width]);
        i["data"] = Value::Array(data);
    }
    let work = crate::target_dir().join("bench-container");
    std::fs::create_dir_all(&work)?;
    let payload = work.join("iris.json");
    std::fs::write(
        &payload,
        serde_json::json!({ "inputs": inputs }).to_string(),
    )?;

    // Cold starts, alternating so that both see the same machine.
    let (mut proc_starts, mut ctr_starts) = (Vec::new(), Vec::new());
    for i in 0..starts.max(1) {
        eprintln!("==> cold start {}/{}", i + 1, starts.max(1));
        let port = free_port();
        let t0 = Instant::now();
        let mut p = start_process(&serve, &repo, port)?;
        let d = ready_after(&format!("http://127.0.0.1:{port}"), t0);
        let _ = p.kill();
        let _ = p.wait();
        proc_starts.push(d?);

        let port = free_port();
        let t0 = Instant::now();
        let c = start_container(engine, run_args, &image, &repo, port)?;
        ctr_starts.push(ready_after(&format!("http://127.0.0.1:{port}"), t0)?);
        drop(c);
    }

    // Throughput on the same model, one server at a time.
    eprintln!("==> load: the process");
    let port = free_port();
    let mut p = start_process(&serve, &repo, port)?;
    let url = format!("http://127.0.0.1:{port}");
    ready_after(&url, Instant::now())?;
    let local = load(&serve, &url, &payload, seconds);
    let _ = p.kill();
    let _ = p.wait();
    let local = local?;
    eprintln!("==> load: the container");
    let port = free_port();
    let c = start_container(engine, run_args, &image, &repo, port)?;
    let url = format!("http://127.0.0.1:{port}");
    ready_after(&url, Instant::now())?;
    let ctr = load(&serve, &url, &payload, seconds)?;
    drop(c);

    let (ps, cs) = (median(proc_starts), median(ctr_starts));
    let (lr, cr) = (
        local["rps"].as_f64().unwrap_or(0.0),
        ctr["rps"].as_f64().unwrap_or(0.0),
    );
    let p99 = |v: &Value| v["p99_ms"].as_f64().unwrap_or(0.0);
    println!(
        "\nThe bundled image ({}), {engine}, run arguments {run_args:?}; servers on CPU {SERVER_CPU}, load generator on CPU {CLIENT_CPU}\n",
        built["digest"].as_str().unwrap_or("")
    );
    println!("| measure | process | container | container / process | goal |");
    println!("|---|---|---|---|---|");
    println!(
        "| image size | — | {compressed:.1} MB compressed, {uncompressed:.1} MB unpacked | — | ≤ {SIZE_GOAL_MB} MB: {} |",
        if compressed.max(uncompressed) <= SIZE_GOAL_MB { "met" } else if compressed <= SIZE_GOAL_MB { "met compressed" } else { "missed" }
    );
    println!(
        "| cold start to ready (median of {}) | {:.0} ms | {:.0} ms | {:.2}x | — |",
        starts.max(1),
        ps.as_secs_f64() * 1e3,
        cs.as_secs_f64() * 1e3,
        cs.as_secs_f64() / ps.as_secs_f64().max(1e-9)
    );
    println!(
        "| throughput, {MODEL}, concurrency {CONCURRENCY} | {lr:.0} req/s (p99 {:.2} ms) | {cr:.0} req/s (p99 {:.2} ms) | {:.3} | within 10%: {} |",
        p99(&local),
        p99(&ctr),
        cr / lr.max(1e-9),
        if cr >= 0.9 * lr { "met" } else { "missed" }
    );
    Ok(())
}
