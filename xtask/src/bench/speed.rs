//! `cargo xtask bench speed`: the server's own time per request, measured with `wrk` (an
//! independent load generator) against two floors in the same run — nginx answering a fixed
//! body, and the same HTTP stack as modelplane-serve (axum on tokio) answering it with no work
//! — and modelplane-serve with and without drift statistics. The systems are measured in
//! alternating rounds (the order rotates every round), so all of them see the same machine
//! state; medians are reported. modelplane-serve's own load generator runs beside wrk.

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::serve::{
    drift_repo, free_port, load, one_row_payload, start_serve_models, wait_ready, Proc,
};
use crate::root;

/// What one wrk run measured.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Wrk {
    pub p50_us: f64,
    pub p99_us: f64,
    pub rps: f64,
}

/// Reads wrk's `--latency` report: the 50% and 99% lines and `Requests/sec`.
pub fn parse_wrk(out: &str) -> Option<Wrk> {
    let dur = |s: &str| -> Option<f64> {
        let s = s.trim();
        let (num, unit) = s.split_at(s.find(|c: char| c.is_ascii_alphabetic())?);
        let v: f64 = num.parse().ok()?;
        Some(match unit {
            "us" => v,
            "ms" => v * 1e3,
            "s" => v * 1e6,
            "m" => v * 60e6,
            _ => return None,
        })
    };
    let mut w = Wrk::default();
    let (mut p50, mut p99, mut rps) = (false, false, false);
    for line in out.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("50%") {
            w.p50_us = dur(rest)?;
            p50 = true;
        } else if let Some(rest) = t.strip_prefix("99%") {
            w.p99_us = dur(rest)?;
            p99 = true;
        } else if let Some(rest) = t.strip_prefix("Requests/sec:") {
            w.rps = rest.trim().parse().ok()?;
            rps = true;
        }
    }
    (p50 && p99 && rps).then_some(w)
}

fn wrk(url: &str, script: &Path, conc: usize, seconds: u64) -> Result<Wrk> {
    let threads = conc.min(2);
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{conc}"),
            &format!("-d{seconds}s"),
            "--latency",
            "-s",
        ])
        .arg(script)
        .arg(url)
        .output()
        .context("running wrk (apt-get install wrk)")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk {url}: {}", String::from_utf8_lossy(&out.stderr));
    }
    if text.contains("Non-2xx or 3xx responses") {
        bail!("wrk {url}: some answers were errors:\n{text}");
    }
    parse_wrk(&text).with_context(|| format!("cannot read wrk's report:\n{text}"))
}

/// nginx answering `body` to every request on `port`, one worker (as many as the floor's
/// runtime would use is the best configuration on this machine: `auto`).
fn nginx(dir: &Path, port: u16, body: &Path) -> Result<Proc> {
    let conf = dir.join("nginx.conf");
    let text = std::fs::read_to_string(body)?.replace('\'', "\\'");
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\ndaemon off;\npid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp};\n  server {{\n    listen 127.0.0.1:{port};\n    keepalive_requests 1000000;\n    location / {{\n      default_type application/json;\n      return 200 '{text}';\n    }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            err = dir.join("nginx.err").display(),
            tmp = dir.join("body").display(),
        ),
    )?;
    let p = Proc(
        Command::new("nginx")
            .args(["-p"])
            .arg(dir)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting nginx (apt-get install nginx-light)")?,
    );
    wait_ready(&format!("http://127.0.0.1:{port}/"), "nginx")?;
    Ok(p)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return f64::NAN;
    }
    v[v.len() / 2]
}

pub fn run(seconds: u64, rounds: usize, concurrency: &[usize], model: &str) -> Result<()> {
    for tool in ["wrk", "nginx"] {
        if Command::new("sh")
            .args(["-c", &format!("command -v {tool}")])
            .stdout(Stdio::null())
            .status()
            .map(|s| !s.success())
            .unwrap_or(true)
        {
            bail!("{tool} is not installed: sudo apt-get install -y wrk nginx-light");
        }
    }
    let serve = crate::build_serve_release()?;
    let fixtures = root().join("tests/fixtures/models");
    let work = crate::target_dir().join("bench-speed");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let payload = one_row_payload(&fixtures, model, &work)?;
    // One process serves the model twice: as itself, and as MODEL_drift with a drift
    // baseline beside it. Both see the same process and machine state, so the difference is
    // the drift statistics' cost and not the spread between two processes.
    let repo = work.join("repo");
    let dst = repo.join(model).join("1");
    std::fs::create_dir_all(&dst)?;
    for f in ["model.onnx", "model.json"] {
        std::fs::copy(
            fixtures.join("repo").join(model).join("1").join(f),
            dst.join(f),
        )?;
    }
    let drifted = format!("{model}_drift");
    let with_drift = match drift_repo(&serve, &fixtures, &work, model)? {
        Some(d) => {
            let to = repo.join(&drifted).join("1");
            std::fs::create_dir_all(&to)?;
            for f in ["model.onnx", "baseline.json"] {
                std::fs::copy(d.join(model).join("1").join(f), to.join(f))?;
            }
            let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(
                d.join(model).join("1/model.json"),
            )?)?;
            meta["name"] = serde_json::Value::from(drifted.clone());
            std::fs::write(to.join("model.json"), meta.to_string())?;
            true
        }
        None => false,
    };
    let mut names = vec![model];
    if with_drift {
        names.push(&drifted);
    }
    let (_server, plain) = start_serve_models(&serve, &repo, &names)?;
    let infer = |m: &str| format!("{plain}/v2/models/{m}/infer");
    // The floors answer what modelplane-serve answers.
    let answer = work.join("answer.json");
    let out = Command::new("curl")
        .args([
            "-sf",
            "-H",
            "Content-Type: application/json",
            "--data-binary",
        ])
        .arg(format!("@{}", payload.display()))
        .arg(infer(model))
        .output()?;
    if !out.status.success() {
        bail!("modelplane-serve did not answer the payload");
    }
    std::fs::write(&answer, &out.stdout)?;
    let mut systems: Vec<(String, String)> = vec![("modelplane-serve".into(), infer(model))];
    if with_drift {
        systems.push(("modelplane-serve + drift".into(), infer(&drifted)));
    }
    let fport = free_port();
    let _floor = Proc(
        Command::new(&serve)
            .args(["floor", "--http", &format!("127.0.0.1:{fport}"), "--body"])
            .arg(&answer)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let floor = format!("http://127.0.0.1:{fport}/v2/models/{model}/infer");
    wait_ready(&floor, "the axum floor")?;
    systems.push(("axum floor (fixed body)".into(), floor));
    let nport = free_port();
    let ndir = work.join("nginx");
    std::fs::create_dir_all(ndir.join("body"))?;
    let _nginx = nginx(&ndir, nport, &answer)?;
    systems.push((
        "nginx floor (fixed body)".into(),
        format!("http://127.0.0.1:{nport}/v2/models/{model}/infer"),
    ));
    let script = work.join("post.lua");
    let body = std::fs::read_to_string(&payload)?;
    std::fs::write(
        &script,
        format!(
            "wrk.method = \"POST\"\nwrk.body = {}\nwrk.headers[\"Content-Type\"] = \"application/json\"\n",
            serde_json::to_string(&body)?
        ),
    )?;

    // (system, concurrency) -> one figure per round
    let mut got: std::collections::BTreeMap<(String, usize), Vec<Wrk>> = Default::default();
    let mut own: std::collections::BTreeMap<usize, Vec<(f64, f64)>> = Default::default();
    for round in 0..rounds {
        for &c in concurrency {
            let n = systems.len();
            for k in 0..n {
                let (name, url) = &systems[(k + round) % n];
                eprintln!("==> round {}/{rounds}, concurrency {c}: {name}", round + 1);
                got.entry((name.clone(), c))
                    .or_default()
                    .push(wrk(url, &script, c, seconds)?);
            }
            // The second load generator, on modelplane-serve.
            let r = load(&serve, &plain, model, &payload, c, seconds)?;
            own.entry(c).or_default().push((
                r["p50_ms"].as_f64().unwrap_or(f64::NAN) * 1e3,
                r["rps"].as_f64().unwrap_or(f64::NAN),
            ));
        }
    }

    let med = |name: &str, c: usize| -> Option<Wrk> {
        let v = got.get(&(name.to_string(), c))?;
        Some(Wrk {
            p50_us: median(v.iter().map(|w| w.p50_us).collect()),
            p99_us: median(v.iter().map(|w| w.p99_us).collect()),
            rps: median(v.iter().map(|w| w.rps).collect()),
        })
    };
    println!(
        "\n{model}, one row per request over REST JSON; wrk, {seconds} s per case, median of {rounds} alternating rounds:\n"
    );
    println!("| system | concurrency | p50 (µs) | p99 (µs) | req/s |\n|---|---:|---:|---:|---:|");
    for &c in concurrency {
        for (name, _) in &systems {
            if let Some(w) = med(name, c) {
                println!(
                    "| {name} | {c} | {:.0} | {:.0} | {:.0} |",
                    w.p50_us, w.p99_us, w.rps
                );
            }
        }
        if let Some(v) = own.get(&c) {
            println!(
                "| modelplane-serve (its own load generator) | {c} | {:.0} | | {:.0} |",
                median(v.iter().map(|x| x.0).collect()),
                median(v.iter().map(|x| x.1).collect())
            );
        }
    }
    println!("\nGoals:");
    if let (Some(s), Some(f), Some(n)) = (
        med("modelplane-serve", 1),
        med("axum floor (fixed body)", 1),
        med("nginx floor (fixed body)", 1),
    ) {
        let own = s.p50_us - f.p50_us;
        println!(
            "- server's own time at concurrency 1 (p50 minus the axum floor's p50): {own:.0} µs (goal ≤ 20 µs: {}); the axum floor costs {:.0} µs over nginx's",
            if own <= 20.0 { "met" } else { "missed" },
            f.p50_us - n.p50_us
        );
    }
    for &c in concurrency {
        if let (Some(p), Some(d)) = (
            med("modelplane-serve", c),
            med("modelplane-serve + drift", c),
        ) {
            let cost = (1.0 - d.rps / p.rps) * 100.0;
            println!(
                "- drift statistics at concurrency {c}: {cost:.1}% of throughput (goal < 5%: {})",
                if cost < 5.0 { "met" } else { "missed" }
            );
        }
    }
    println!("- throughput and p99 against MLServer and KServe: `cargo xtask bench serve`.");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_reports_are_read() {
        let out = "Running 5s test @ http://127.0.0.1:1/\n  1 threads and 1 connections\n  Thread Stats   Avg      Stdev     Max   +/- Stdev\n    Latency    68.12us   20.01us   1.20ms   95.00%\n  Latency Distribution\n     50%   65.00us\n     75%   70.00us\n     90%   80.00us\n     99%    1.10ms\n  70000 requests in 5.00s, 10.00MB read\nRequests/sec:  14000.50\nTransfer/sec:      2.00MB\n";
        assert_eq!(
            parse_wrk(out),
            Some(Wrk {
                p50_us: 65.0,
                p99_us: 1100.0,
                rps: 14000.5
            })
        );
        assert_eq!(parse_wrk("Requests/sec: 1\n"), None);
    }
}
