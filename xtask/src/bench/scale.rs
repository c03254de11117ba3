//! `cargo xtask bench scale`: the thousand-model paradigm.
//!
//! 1. One server with N registered small models (attachments of a shared endpoint) and a
//!    memory budget that holds M of them: memory per registered-but-unloaded model, time to
//!    ready, latency of a resident model, of a cold one (load + infer), and of a Zipf mix at
//!    concurrency 16, with the loads and evictions it caused.
//! 2. Through Terraform: K attachments applied from nothing and planned with no change, vs
//!    K `terraform_data` (ratio), vs D dedicated endpoints on `local` (time and total RSS).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::serve::{free_port, wait_ready, Proc};
use crate::{build_provider, install_provider, root, terraform};

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))?
                .split_whitespace()
                .nth(1)?
                .parse()
                .ok()
        })
        .unwrap_or(0)
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// A small, fast random source (xorshift), seeded per thread.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The cumulative distribution of a Zipf law with exponent `s` over `n` ranks.
fn zipf_cdf(n: usize, s: f64) -> Vec<f64> {
    let w: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(s)).collect();
    let total: f64 = w.iter().sum();
    let mut acc = 0.0;
    w.iter()
        .map(|x| {
            acc += x / total;
            acc
        })
        .collect()
}

fn metric(url: &str, name: &str) -> f64 {
    reqwest::blocking::get(format!("{url}/metrics"))
        .and_then(|r| r.text())
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.split([' ', '{']).next() == Some(name))
                .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        })
        .unwrap_or(f64::NAN)
}

/// Chooses the model of the i-th request.
type Pick = Arc<dyn Fn(&mut Rng, usize) -> usize + Send + Sync>;

/// Requests at `conc` in flight for `seconds` (or `count` requests in all), each to the model
/// `pick` chooses; latencies in ms, and failures.
fn drive(
    url: &str,
    body: &str,
    conc: usize,
    seconds: Option<u64>,
    count: Option<usize>,
    pick: Pick,
) -> (Vec<f64>, usize) {
    let lat = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(0usize));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let until = seconds.map(|s| Instant::now() + Duration::from_secs(s));
    let threads: Vec<_> = (0..conc)
        .map(|t| {
            let (lat, failed, next, pick) =
                (lat.clone(), failed.clone(), next.clone(), pick.clone());
            let (url, body) = (url.to_string(), body.to_string());
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let mut rng =
                    Rng(0x9E37_79B9_7F4A_7C15 ^ (t as u64 + 1).wrapping_mul(0x2545_F491_4F6C_DD1D));
                let mut mine = Vec::new();
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if until.is_some_and(|u| Instant::now() >= u) || count.is_some_and(|n| i >= n) {
                        break;
                    }
                    let m = pick(&mut rng, i);
                    let t0 = Instant::now();
                    let ok = c
                        .post(format!("{url}/v2/models/m{m}/infer"))
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .map(|r| r.status().is_success())
                        .unwrap_or(false);
                    if ok {
                        mine.push(t0.elapsed().as_secs_f64() * 1e3);
                    } else {
                        *failed.lock().unwrap() += 1;
                    }
                }
                lat.lock().unwrap().extend(mine);
            })
        })
        .collect();
    for t in threads {
        t.join().expect("a load thread panicked");
    }
    let v = std::mem::take(&mut *lat.lock().unwrap());
    let f = *failed.lock().unwrap();
    (v, f)
}

/// A repository with `n` versions of iris (hard links of one file) and `n` attachments, one
/// route `mI` per version.
fn registry(work: &Path, n: usize) -> Result<PathBuf> {
    let repo = work.join("repo");
    let src = root().join("tests/fixtures/models/repo/iris/1");
    let meta: Value = serde_json::from_str(&std::fs::read_to_string(src.join("model.json"))?)?;
    let reg = repo.join(".endpoints/bench");
    std::fs::create_dir_all(&reg)?;
    for i in 0..n {
        let d = repo.join("iris").join(i.to_string());
        std::fs::create_dir_all(&d)?;
        std::fs::hard_link(src.join("model.onnx"), d.join("model.onnx"))
            .or_else(|_| std::fs::copy(src.join("model.onnx"), d.join("model.onnx")).map(|_| ()))?;
        let mut m = meta.clone();
        m["version"] = json!(i.to_string());
        std::fs::write(d.join("model.json"), m.to_string())?;
        std::fs::write(
            reg.join(format!("m{i}.json")),
            json!({ "endpoint": { "name": format!("m{i}"), "variants": [
                { "name": "only", "model": "iris", "version": i.to_string(), "weight": 100 }
            ]}})
            .to_string(),
        )?;
    }
    Ok(repo)
}

fn start(
    serve: &Path,
    work: &Path,
    repo: &Path,
    registry: &str,
    budget: Option<u64>,
) -> Result<(Proc, String, Duration)> {
    let port = free_port();
    let cfg = work.join(format!("serve-{port}.json"));
    let mut limits = json!({});
    if let Some(b) = budget {
        limits["memory_budget_bytes"] = json!(b);
    }
    std::fs::write(
        &cfg,
        json!({
            "http": format!("127.0.0.1:{port}"),
            "repository": repo,
            "shared": { "registry": registry, "poll_ms": 600000 },
            "limits": limits,
        })
        .to_string(),
    )?;
    let t = Instant::now();
    let p = Proc(
        Command::new(serve)
            .args(["serve", "--config"])
            .arg(&cfg)
            .args(["--log-format", "text"])
            .env("MODELPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/v2/health/ready"), "the shared server")?;
    Ok((p, url, t.elapsed()))
}

fn server(registered: usize, resident: usize, seconds: u64) -> Result<()> {
    let serve = crate::build_serve_release()?;
    let work = crate::target_dir().join("bench-scale");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    eprintln!("==> writing {registered} model versions and attachments");
    let repo = registry(&work, registered)?;
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(
        root().join("tests/fixtures/models/reference/iris.json"),
    )?)?;
    let first = &reference["inputs"][0];
    let body = json!({ "inputs": [{
        "name": first["name"], "datatype": first["datatype"], "shape": [1, 4],
        "data": first["data"].as_array().map(|d| d[..4].to_vec()).unwrap_or_default(),
    }]})
    .to_string();

    // Memory of registration alone: the same server with an empty registry, then the full one.
    let (empty, _, _) = start(&serve, &work, &repo, ".endpoints/none", None)?;
    std::thread::sleep(Duration::from_millis(500));
    let base_kib = rss_kib(empty.0.id());
    drop(empty);
    let (full, url, ready_full) = start(&serve, &work, &repo, ".endpoints/bench", None)?;
    std::thread::sleep(Duration::from_millis(500));
    let full_kib = rss_kib(full.0.id());
    let per_unloaded = (full_kib.saturating_sub(base_kib) * 1024) as f64 / registered as f64;
    let (_, f) = drive(&url, &body, 1, None, Some(1), Arc::new(|_, _| 0));
    if f > 0 {
        bail!("the first request failed");
    }
    let one = metric(&url, "modelplane_memory_resident_bytes");
    drop(full);

    let budget = (one * resident as f64) as u64;
    eprintln!("==> one loaded model counts {one} bytes; budget {budget} bytes for {resident}");
    let (srv, url, ready) = start(&serve, &work, &repo, ".endpoints/bench", Some(budget))?;
    let pid = srv.0.id();
    // Cold: models never asked for, one at a time.
    let tail = registered - 1;
    let (mut cold, f1) = drive(
        &url,
        &body,
        1,
        None,
        Some(200),
        Arc::new(move |_, i| tail - i),
    );
    // Resident: 100 models loaded first, then asked for at random at concurrency 16.
    let _ = drive(&url, &body, 1, None, Some(100), Arc::new(|_, i| i));
    let loads0 = metric(&url, "modelplane_model_loads_total");
    let (mut hot, f2) = drive(
        &url,
        &body,
        16,
        Some(seconds),
        None,
        Arc::new(|r, _| (r.next() * 100.0) as usize % 100),
    );
    let hot_loads = metric(&url, "modelplane_model_loads_total") - loads0;
    // Zipf over every registered model.
    let cdf = Arc::new(zipf_cdf(registered, 1.1));
    let (loads1, ev1) = (
        metric(&url, "modelplane_model_loads_total"),
        metric(&url, "modelplane_model_evictions_total"),
    );
    let (mut mix, f3) = drive(
        &url,
        &body,
        16,
        Some(seconds),
        None,
        Arc::new(move |r, _| {
            let x = r.next();
            cdf.partition_point(|c| *c < x).min(cdf.len() - 1)
        }),
    );
    let loads = metric(&url, "modelplane_model_loads_total") - loads1;
    let evictions = metric(&url, "modelplane_model_evictions_total") - ev1;
    let resident_now = metric(&url, "modelplane_models_resident");
    let used = metric(&url, "modelplane_memory_resident_bytes");
    let rss = rss_kib(pid);
    if f1 + f2 + f3 > 0 {
        bail!("{} requests failed", f1 + f2 + f3);
    }
    println!("\nbench scale: one shared server, {registered} registered iris versions, memory budget for {resident} ({:.1} MiB)\n", budget as f64 / 1048576.0);
    println!("| measure | value |");
    println!("|---|---:|");
    println!(
        "| RSS, empty registry | {:.1} MiB |",
        base_kib as f64 / 1024.0
    );
    println!(
        "| RSS, {registered} registered, none loaded | {:.1} MiB |",
        full_kib as f64 / 1024.0
    );
    println!(
        "| memory per registered, unloaded model | {:.0} B (goal <= 1024 B) |",
        per_unloaded
    );
    println!("| start to ready with {registered} registered | {:.0} ms (no budget) / {:.0} ms (budget) |", ready_full.as_secs_f64() * 1e3, ready.as_secs_f64() * 1e3);
    println!("| one loaded iris, as counted | {one:.0} B |");
    println!(
        "| cold model (load + infer), concurrency 1, 200 models | p50 {:.3} ms, p99 {:.3} ms |",
        pct(&mut cold, 0.5),
        pct(&mut cold, 0.99)
    );
    println!("| resident model, concurrency 16, {seconds}s | p50 {:.3} ms, p99 {:.3} ms, {:.0} req/s, {hot_loads} loads |", pct(&mut hot, 0.5), pct(&mut hot, 0.99), hot.len() as f64 / seconds as f64);
    println!("| Zipf(1.1) over all {registered}, concurrency 16, {seconds}s | p50 {:.3} ms, p99 {:.3} ms, {:.0} req/s |", pct(&mut mix, 0.5), pct(&mut mix, 0.99), mix.len() as f64 / seconds as f64);
    println!("|   loads / evictions during the mix | {loads} / {evictions} ({:.1}% of requests loaded their model) |", 100.0 * loads / mix.len().max(1) as f64);
    println!(
        "| resident at the end | {resident_now} models, {:.1} MiB counted, RSS {:.1} MiB |",
        used / 1048576.0,
        rss as f64 / 1024.0
    );
    Ok(())
}

/// Seconds of one Terraform command in `dir`.
fn tf_time(tf: &Path, cfg: &Path, dir: &Path, args: &[&str]) -> Result<f64> {
    let t = Instant::now();
    crate::run(
        Command::new(tf)
            .current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", cfg)
            .env("CHECKPOINT_DISABLE", "1")
            .args(args)
            .stdout(Stdio::null()),
    )?;
    Ok(t.elapsed().as_secs_f64())
}

/// RSS of every process whose command line names `dir`.
fn rss_under(dir: &Path) -> (usize, u64) {
    let d = dir.display().to_string();
    let mut n = 0;
    let mut kib = 0;
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let cmd = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
        if String::from_utf8_lossy(&cmd).contains(&d) {
            n += 1;
            kib += rss_kib(pid);
        }
    }
    (n, kib)
}

fn terraform_side(count: usize, dedicated: usize) -> Result<()> {
    let tf = terraform::ensure()?;
    let bin = build_provider(true)?;
    let cfg = install_provider(&bin)?;
    let work = root().join("target/bench-scale-tf");
    let _ = std::fs::remove_dir_all(&work);
    let header = "terraform {\n  required_providers {\n    modelplane = { source = \"modelplane/modelplane\" }\n  }\n}\n";
    let model = root().join("examples/quickstart/model/iris-v1.onnx");
    let local = |state: &Path| {
        format!(
            "{header}provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n}}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name     = \"c\"\n  platform = \"local\"\n}}\nresource \"modelplane_model_store\" \"s\" {{\n  name          = \"models\"\n  backend       = \"local\"\n  force_destroy = true\n}}\nresource \"modelplane_model\" \"m\" {{\n  store   = modelplane_model_store.s.id\n  name    = \"iris\"\n  version = \"1\"\n  source  = {:?}\n}}\n",
            state.display().to_string(),
            model.display().to_string()
        )
    };
    let (sa, sb, sc) = (
        work.join("shared"),
        work.join("terraform_data"),
        work.join("dedicated"),
    );
    for d in [&sa, &sb, &sc] {
        std::fs::create_dir_all(d)?;
    }
    std::fs::write(
        sa.join("main.tf"),
        format!(
            "{}resource \"modelplane_endpoint\" \"pool\" {{\n  name    = \"pool\"\n  cluster = modelplane_gpu_cluster.c.id\n  shared {{\n    store = modelplane_model_store.s.id\n  }}\n}}\nresource \"modelplane_endpoint_model\" \"m\" {{\n  for_each = toset([for i in range({count}) : tostring(i)])\n  endpoint = modelplane_endpoint.pool.id\n  name     = \"m${{each.key}}\"\n  variant {{\n    name   = \"only\"\n    model  = modelplane_model.m.id\n    weight = 100\n  }}\n}}\n",
            local(&sa.join("state"))
        ),
    )?;
    std::fs::write(
        sb.join("main.tf"),
        format!("resource \"terraform_data\" \"r\" {{\n  for_each = toset([for i in range({count}) : tostring(i)])\n  input    = each.key\n}}\n"),
    )?;
    std::fs::write(
        sc.join("main.tf"),
        format!(
            "{}resource \"modelplane_endpoint\" \"e\" {{\n  for_each = toset([for i in range({dedicated}) : tostring(i)])\n  name     = \"e${{each.key}}\"\n  cluster  = modelplane_gpu_cluster.c.id\n  variant {{\n    name   = \"only\"\n    model  = modelplane_model.m.id\n    weight = 100\n  }}\n}}\n",
            local(&sc.join("state"))
        ),
    )?;
    let apply = ["apply", "-auto-approve", "-input=false"];
    let plan = ["plan", "-input=false", "-lock=false", "-detailed-exitcode"];
    let mut rows = Vec::new();
    for (what, dir) in [
        ("terraform_data", &sb),
        ("attachments", &sa),
        ("dedicated endpoints", &sc),
    ] {
        tf_time(&tf, &cfg, dir, &["init", "-input=false"]).context("init")?;
        eprintln!("==> apply: {what}");
        let a = tf_time(&tf, &cfg, dir, &apply)?;
        eprintln!("==> plan with no change: {what}");
        let p = tf_time(&tf, &cfg, dir, &plan)
            .context("the plan after apply is not empty (exit code 2) or failed")?;
        let (n, kib) = rss_under(&dir.join("state"));
        rows.push((what, a, p, n, kib));
        eprintln!("==> destroy: {what}");
        tf_time(
            &tf,
            &cfg,
            dir,
            &["destroy", "-auto-approve", "-input=false"],
        )?;
    }
    let (_, ta, tp, _, _) = rows[0];
    println!(
        "\nbench scale, through Terraform ({}; parallelism 10):\n",
        tf.display()
    );
    println!("| case | resources | apply from empty | plan, no change | apply ratio | plan ratio | server processes | total RSS |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|");
    for (what, a, p, n, kib) in rows {
        let k = if what == "dedicated endpoints" {
            dedicated
        } else {
            count
        };
        println!(
            "| {what} | {k} | {a:.1} s | {p:.1} s | {:.2}x | {:.2}x | {n} | {:.0} MiB |",
            a / ta,
            p / tp,
            kib as f64 / 1024.0
        );
    }
    if dedicated < count {
        println!("\n(dedicated endpoints: {dedicated} measured; {count} would be about {:.0}x that, one server process each)", count as f64 / dedicated as f64);
    }
    Ok(())
}

pub fn run(
    count: usize,
    dedicated: usize,
    registered: usize,
    resident: usize,
    seconds: u64,
    server_only: bool,
) -> Result<()> {
    server(registered, resident, seconds)?;
    if server_only {
        return Ok(());
    }
    terraform_side(count, dedicated)
}
