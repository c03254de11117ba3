//! `wrk` (the Debian package), the load generator `cargo xtask bench serve` runs beside its
//! own, and nginx answering a fixed body (the floor no Rust stack sets).

use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};

use super::serve::{group, wait_ready, Group};

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

/// Fails with the installation hint when wrk or nginx is missing.
pub fn require_tools() -> Result<()> {
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
    Ok(())
}

/// A wrk script that POSTs the file `body` with `headers`.
pub fn script(path: &Path, body: &Path, headers: &[(&str, String)]) -> Result<()> {
    let mut s = format!(
        "wrk.method = \"POST\"\nlocal f = assert(io.open({}, \"rb\"))\nwrk.body = f:read(\"*all\")\nf:close()\n",
        serde_json::to_string(&body.display().to_string())?
    );
    for (k, v) in headers {
        s += &format!(
            "wrk.headers[{}] = {}\n",
            serde_json::to_string(k)?,
            serde_json::to_string(v)?
        );
    }
    std::fs::write(path, s)?;
    Ok(())
}

/// One wrk run: `conc` connections on up to two threads for `seconds`. Fails when any
/// answer was not a 2xx.
pub fn run(url: &str, script: &Path, conc: usize, seconds: u64) -> Result<Wrk> {
    let threads = conc.min(2);
    let out = Command::new("wrk")
        .args([
            &format!("-t{threads}"),
            &format!("-c{conc}"),
            &format!("-d{seconds}s"),
            "--timeout",
            "30s",
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

/// nginx answering `body` to every request on `port`, `worker_processes auto` (one per
/// core, as many threads as the floor's runtime uses).
pub fn nginx(dir: &Path, port: u16, body: &Path) -> Result<Group> {
    let conf = dir.join("nginx.conf");
    let text = std::fs::read_to_string(body)?.replace('\'', "\\'");
    std::fs::write(
        &conf,
        format!(
            "worker_processes auto;\ndaemon off;\npid {pid};\nerror_log {err} warn;\nevents {{ worker_connections 1024; }}\nhttp {{\n  access_log off;\n  client_body_temp_path {tmp};\n  server {{\n    listen 127.0.0.1:{port};\n    keepalive_requests 1000000;\n    client_max_body_size 0;\n    location / {{\n      default_type application/json;\n      return 200 '{text}';\n    }}\n  }}\n}}\n",
            pid = dir.join("nginx.pid").display(),
            err = dir.join("nginx.err").display(),
            tmp = dir.join("body").display(),
        ),
    )?;
    // A process group: the workers go with the master.
    let mut c = Command::new("nginx");
    c.args(["-p"]).arg(dir).arg("-c").arg(&conf);
    let p = group(c).context("starting nginx (apt-get install nginx-light)")?;
    wait_ready(&format!("http://127.0.0.1:{port}/"), "nginx")?;
    Ok(p)
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
