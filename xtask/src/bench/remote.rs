//! `cargo xtask bench remote`: what a remote variant adds. The same one-row iris requests go
//! to a server directly and through a second server whose endpoint's only variant is that
//! server (REST or gRPC between them), measured in alternating rounds so both see the same
//! machine state; medians are compared.

use std::process::{Command, Stdio};

use anyhow::Result;
use serde_json::{json, Value};

use super::serve::{free_port, load, wait_ready, Proc};
use crate::root;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

pub fn run(seconds: u64, rounds: usize, protocol: &str) -> Result<()> {
    let serve = crate::build_serve_release()?;
    let work = crate::target_dir().join("bench-remote");
    let _ = std::fs::remove_dir_all(&work);
    std::fs::create_dir_all(&work)?;
    let fixtures = root().join("tests/fixtures/models");
    let repo = fixtures.join("repo");
    let reference: Value = serde_json::from_str(&std::fs::read_to_string(
        fixtures.join("reference/iris.json"),
    )?)?;
    let first = &reference["inputs"][0];
    let payload = work.join("iris.json");
    std::fs::write(
        &payload,
        json!({ "inputs": [{
            "name": first["name"], "datatype": first["datatype"], "shape": [1, 4],
            "data": first["data"].as_array().map(|d| d[..4].to_vec()).unwrap_or_default(),
        }]})
        .to_string(),
    )?;

    // The remote: iris on its own.
    let (hp, gp) = (free_port(), free_port());
    let _remote = Proc(
        Command::new(&serve)
            .args(["serve", "--repository"])
            .arg(&repo)
            .args(["--model", "iris", "--http", &format!("127.0.0.1:{hp}")])
            .args(["--grpc", &format!("127.0.0.1:{gp}"), "--log-format", "text"])
            .env("MODELPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let direct = format!("http://127.0.0.1:{hp}");
    wait_ready(&format!("{direct}/v2/health/ready"), "the remote")?;

    // The proxy: an endpoint whose one variant is the remote.
    let pp = free_port();
    let remote_url = match protocol {
        "grpc" => format!("grpc://127.0.0.1:{gp}"),
        _ => direct.clone(),
    };
    let config = work.join("proxy.json");
    std::fs::write(
        &config,
        json!({
            "http": format!("127.0.0.1:{pp}"),
            "repository": repo,
            "endpoints": [{ "name": "iris", "variants": [
                { "name": "cloud", "model": "iris", "weight": 100, "remote": { "url": remote_url } }
            ]}],
        })
        .to_string(),
    )?;
    let _proxy = Proc(
        Command::new(&serve)
            .args(["serve", "--config"])
            .arg(&config)
            .args(["--log-format", "text"])
            .env("MODELPLANE_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()?,
    );
    let proxied = format!("http://127.0.0.1:{pp}");
    wait_ready(&format!("{proxied}/v2/health/ready"), "the proxy")?;

    println!("\nbench remote: one-row iris over REST JSON to the client, {protocol} from the proxy to the remote; {rounds} alternating rounds of {seconds}s per case, medians\n");
    println!("| concurrency | direct req/s | via remote variant req/s | ratio | direct p50 ms | via p50 ms | added p50 ms | direct p99 ms | via p99 ms |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut added_c1 = f64::NAN;
    for conc in [1usize, 16] {
        let (mut d, mut v) = (Vec::new(), Vec::new());
        for round in 0..rounds {
            eprintln!("==> concurrency {conc}, round {}", round + 1);
            d.push(load(&serve, &direct, "iris", &payload, conc, seconds)?);
            v.push(load(&serve, &proxied, "iris", &payload, conc, seconds)?);
        }
        let m = |rs: &[Value], k: &str| median(rs.iter().filter_map(|r| r[k].as_f64()).collect());
        let errors: f64 = v
            .iter()
            .chain(&d)
            .filter_map(|r| r["errors"].as_f64())
            .sum();
        if errors > 0.0 {
            anyhow::bail!("{errors} requests failed at concurrency {conc}");
        }
        let added = m(&v, "p50_ms") - m(&d, "p50_ms");
        if conc == 1 {
            added_c1 = added;
        }
        println!(
            "| {conc} | {:.0} | {:.0} | {:.2} | {:.3} | {:.3} | {:.3} | {:.3} | {:.3} |",
            m(&d, "rps"),
            m(&v, "rps"),
            m(&v, "rps") / m(&d, "rps"),
            m(&d, "p50_ms"),
            m(&v, "p50_ms"),
            added,
            m(&d, "p99_ms"),
            m(&v, "p99_ms"),
        );
    }
    println!(
        "\nadded p50 at concurrency 1: {added_c1:.3} ms (goal at most 0.200 ms on loopback): {}",
        if added_c1 <= 0.2 { "met" } else { "MISSED" }
    );
    Ok(())
}
