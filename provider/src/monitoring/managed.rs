//! Prometheus and Alertmanager run by a monitor on the `local` platform: detached processes
//! (binaries from `PATH`) on loopback ports, with their configuration, data and logs in the
//! monitor's state folder:
//!
//! | file | what |
//! |---|---|
//! | `monitor.json` | what the monitor declares (for import) |
//! | `prometheus.yml`, `rules.yml` | Prometheus's configuration and rules (targets come from the endpoint's `targets.json`) |
//! | `alertmanager.yml` | Alertmanager's route and receivers |
//! | `dashboard.json` | the Grafana dashboard |
//! | `prometheus.json`, `alertmanager.json` | pid and start time of each process |
//! | `prometheus.log`, `alertmanager.log` | their logs |
//! | `prometheus-data/`, `alertmanager-data/` | their storage |
//!
//! Changes are applied with `POST /-/reload`, so the time series survive them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::json;

use super::{yaml, Spec};
use crate::platforms::local::process::{self as le, Dir, NotReady, Proc};

/// How long each process may take to answer `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// The first of `names` found in the folders of `path` (a `PATH`-style list).
pub fn which(path: Option<&std::ffi::OsStr>, names: &[&str]) -> Option<PathBuf> {
    for dir in std::env::split_paths(path?) {
        for n in names {
            let p = dir.join(n);
            if p.is_file() {
                use std::os::unix::fs::PermissionsExt;
                if std::fs::metadata(&p)
                    .map(|m| m.permissions().mode() & 0o111 != 0)
                    .unwrap_or(false)
                {
                    return Some(p);
                }
            }
        }
    }
    None
}

/// The two programs on `PATH`, or what to install.
pub fn binaries() -> Result<(PathBuf, PathBuf), String> {
    binaries_in(std::env::var_os("PATH").as_deref())
}

fn binaries_in(path: Option<&std::ffi::OsStr>) -> Result<(PathBuf, PathBuf), String> {
    let prometheus = which(path, &["prometheus"]);
    // Upstream calls it `alertmanager`; Debian and Ubuntu install `prometheus-alertmanager`.
    let alertmanager = which(path, &["alertmanager", "prometheus-alertmanager"]);
    match (prometheus, alertmanager) {
        (Some(p), Some(a)) => Ok((p, a)),
        (p, a) => {
            let mut missing = Vec::new();
            if p.is_none() {
                missing.push("`prometheus` (Debian/Ubuntu package `prometheus`)");
            }
            if a.is_none() {
                missing.push("`alertmanager` (Debian/Ubuntu package `prometheus-alertmanager`)");
            }
            Err(format!(
                "a managed monitor runs Prometheus and Alertmanager from PATH, and {} {} not found. Install {}, \
                 or download them from https://prometheus.io/download/; or point the monitor at an existing Prometheus \
                 with an existing_prometheus block.",
                missing.join(" and "),
                if missing.len() == 1 { "was" } else { "were" },
                if missing.len() == 1 { "it" } else { "them" },
            ))
        }
    }
}

/// The loopback ports of a managed monitor.
#[derive(Clone, Copy, Debug, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Ports {
    pub prometheus: u16,
    pub alertmanager: u16,
}

impl Ports {
    /// Two free loopback ports. Both listeners are held at once, so the two differ (two
    /// calls of `platforms::local::process::free_port` could return the same port).
    pub fn free() -> std::io::Result<Ports> {
        let a = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        let b = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        Ok(Ports {
            prometheus: a.local_addr()?.port(),
            alertmanager: b.local_addr()?.port(),
        })
    }
    pub fn prometheus_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.prometheus)
    }
    pub fn alertmanager_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.alertmanager)
    }
}

/// Prometheus's configuration for a managed monitor; `targets_file` is the endpoint's.
pub fn prometheus_config(
    spec: &Spec,
    dir: &Path,
    targets_file: &Path,
    ports: Ports,
) -> serde_json::Value {
    json!({
        "global": { "scrape_interval": spec.scrape_interval, "evaluation_interval": spec.evaluation_interval },
        "rule_files": [dir.join("rules.yml")],
        "scrape_configs": [spec.scrape_job(&targets_file.display().to_string())],
        "alerting": { "alertmanagers": [{ "static_configs": [{ "targets": [format!("127.0.0.1:{}", ports.alertmanager)] }] }] },
    })
}

/// Writes every file of a managed monitor; `targets_file` is the endpoint's.
pub fn write_files(
    dir: &Dir,
    spec: &Spec,
    targets_file: &Path,
    ports: Ports,
) -> std::io::Result<()> {
    dir.write("rules.yml", yaml(&spec.rules()).as_bytes())?;
    dir.write("alertmanager.yml", yaml(&spec.alertmanager()).as_bytes())?;
    dir.write_json("dashboard.json", &super::dashboard::render(spec))?;
    let config = prometheus_config(spec, &dir.0, targets_file, ports);
    dir.write("prometheus.yml", yaml(&config).as_bytes())
}

/// Starts Prometheus on the folder's files.
pub fn spawn_prometheus(dir: &Dir, bin: &Path, spec: &Spec, ports: Ports) -> std::io::Result<Proc> {
    let mut c = std::process::Command::new(bin);
    c.arg(format!(
        "--config.file={}",
        dir.path("prometheus.yml").display()
    ))
    .arg(format!(
        "--storage.tsdb.path={}",
        dir.path("prometheus-data").display()
    ))
    .arg(format!(
        "--web.listen-address=127.0.0.1:{}",
        ports.prometheus
    ))
    .arg("--web.enable-lifecycle")
    // Firing alerts are re-sent every evaluation interval (Prometheus's default is a
    // minute, which would hold back the alerts of a fast-evaluating monitor).
    .arg(format!(
        "--rules.alert.resend-delay={}",
        spec.evaluation_interval
    ));
    le::spawn_detached(dir, c, "prometheus.log", "prometheus.json")
}

/// Starts Alertmanager on the folder's files (no clustering).
pub fn spawn_alertmanager(dir: &Dir, bin: &Path, ports: Ports) -> std::io::Result<Proc> {
    let mut c = std::process::Command::new(bin);
    c.arg(format!(
        "--config.file={}",
        dir.path("alertmanager.yml").display()
    ))
    .arg(format!(
        "--storage.path={}",
        dir.path("alertmanager-data").display()
    ))
    .arg(format!(
        "--web.listen-address=127.0.0.1:{}",
        ports.alertmanager
    ))
    .arg("--cluster.listen-address=");
    le::spawn_detached(dir, c, "alertmanager.log", "alertmanager.json")
}

/// The recorded processes, if alive.
pub fn processes(dir: &Dir) -> (Option<Proc>, Option<Proc>) {
    let p = dir.read_json::<Proc>("prometheus.json").filter(Proc::alive);
    let a = dir
        .read_json::<Proc>("alertmanager.json")
        .filter(Proc::alive);
    (p, a)
}

/// Starts whichever of the two is not running and waits until both are ready.
pub async fn ensure_running(dir: &Dir, spec: &Spec, ports: Ports) -> Result<(), String> {
    let (bp, ba) = binaries()?;
    let (p, a) = processes(dir);
    let a = match a {
        Some(a) => a,
        None => spawn_alertmanager(dir, &ba, ports)
            .map_err(|e| format!("cannot start {}: {e}", ba.display()))?,
    };
    let p = match p {
        Some(p) => p,
        None => spawn_prometheus(dir, &bp, spec, ports)
            .map_err(|e| format!("cannot start {}: {e}", bp.display()))?,
    };
    for (name, url, proc_, log) in [
        (
            "Alertmanager",
            ports.alertmanager_url(),
            a,
            "alertmanager.log",
        ),
        ("Prometheus", ports.prometheus_url(), p, "prometheus.log"),
    ] {
        match le::wait_http(
            &format!("{url}/-/ready"),
            proc_,
            READY_TIMEOUT,
            std::future::pending(),
        )
        .await
        {
            Ok(()) => {}
            Err(NotReady::Exited) => {
                return Err(format!(
                    "{name} exited at start. Last lines of {}:\n{}",
                    dir.path(log).display(),
                    dir.file_tail(log, 20)
                ))
            }
            Err(_) => {
                return Err(format!(
                    "{name} was not ready after {}s. Last lines of {}:\n{}",
                    READY_TIMEOUT.as_secs(),
                    dir.path(log).display(),
                    dir.file_tail(log, 20)
                ))
            }
        }
    }
    Ok(())
}

/// Asks a Prometheus or Alertmanager to read its configuration again.
pub async fn reload(url: &str) -> Result<(), String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| e.to_string())?;
    let r = http
        .post(format!("{url}/-/reload"))
        .send()
        .await
        .map_err(|e| format!("{url}/-/reload: {e}"))?;
    let status = r.status();
    if status.is_success() {
        return Ok(());
    }
    let body = r.text().await.unwrap_or_default();
    if status == reqwest::StatusCode::FORBIDDEN {
        return Err(format!(
            "{url} refused to reload ({}): start Prometheus with --web.enable-lifecycle",
            body.trim()
        ));
    }
    Err(format!("{url}/-/reload answered {status}: {}", body.trim()))
}

/// Stops both processes.
pub async fn stop(dir: &Dir) {
    for f in ["prometheus.json", "alertmanager.json"] {
        if let Some(p) = dir.read_json::<Proc>(f) {
            le::stop(p, Duration::from_secs(10)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_binaries_name_the_package() {
        let e =
            binaries_in(Some(std::ffi::OsStr::new("/nonexistent:/also-not-there"))).unwrap_err();
        assert!(
            e.contains("package `prometheus`") && e.contains("package `prometheus-alertmanager`"),
            "{e}"
        );
        assert!(e.contains("existing_prometheus"), "{e}");
    }
}
