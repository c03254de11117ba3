//! Endpoints on the `local` platform: `modelplane-serve` (carried by the provider binary as
//! its `server` subcommand) runs as a detached process that outlives the provider. Each
//! endpoint has a state folder:
//!
//! | file | what |
//! |---|---|
//! | `config.json` | the server's configuration (no secrets) |
//! | `token` | the bearer token, mode 0600 |
//! | `process.json` | pid and the process's start time, so a reused pid is not mistaken for it |
//! | `meta.json` | what the server's configuration does not hold (cluster, benchmark, …), and whether creation finished |
//! | `server.log` | the server's log (JSON lines) |
//! | `targets.json` | the metrics address as Prometheus `file_sd` targets, for monitors |
//!
//! Servers bind with `SO_REUSEPORT`, so a restart starts the new process on the same ports,
//! waits for it to be ready, then stops the old one: the URL never changes.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A running server: its pid and start time (clock ticks after boot, from /proc).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Proc {
    pub pid: i32,
    pub start_time: u64,
}

/// The `stat` start time of a live (not zombie) process.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name is in parentheses and may hold spaces: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is the state (field 3); the start time is field 22.
    if matches!(fields.first(), Some(&"Z") | Some(&"X")) {
        return None;
    }
    fields.get(19)?.parse().ok()
}

impl Proc {
    /// Whether this very process still runs.
    pub fn alive(&self) -> bool {
        start_time(self.pid) == Some(self.start_time)
    }
}

/// One endpoint's state folder.
#[derive(Clone, Debug)]
pub struct Dir(pub PathBuf);

impl Dir {
    pub fn new(state_dir: &Path, name: &str) -> Dir {
        Dir(state_dir.join("endpoints").join(name))
    }
    pub fn path(&self, f: &str) -> PathBuf {
        self.0.join(f)
    }
    pub fn exists(&self) -> bool {
        self.0.is_dir()
    }
    pub fn create(&self) -> std::io::Result<()> {
        std::fs::create_dir_all(&self.0)?;
        set_mode(&self.0, 0o700)
    }
    pub fn remove(&self) -> std::io::Result<()> {
        match std::fs::remove_dir_all(&self.0) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }
    pub fn read_json<T: serde::de::DeserializeOwned>(&self, f: &str) -> Option<T> {
        serde_json::from_slice(&std::fs::read(self.path(f)).ok()?).ok()
    }
    /// Writes atomically (a temporary file, then rename).
    pub fn write(&self, f: &str, content: &[u8]) -> std::io::Result<()> {
        let tmp = self.path(&format!(".{f}.tmp"));
        std::fs::write(&tmp, content)?;
        std::fs::rename(&tmp, self.path(f))
    }
    pub fn write_json<T: Serialize>(&self, f: &str, v: &T) -> std::io::Result<()> {
        self.write(
            f,
            &serde_json::to_vec_pretty(v).map_err(std::io::Error::other)?,
        )
    }
    pub fn write_secret(&self, f: &str, content: &str) -> std::io::Result<()> {
        let tmp = self.path(&format!(".{f}.tmp"));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(content.as_bytes())?;
        }
        std::fs::rename(&tmp, self.path(f))
    }
    pub fn process(&self) -> Option<Proc> {
        self.read_json("process.json")
    }
    /// The last `n` lines of the server's log.
    pub fn log_tail(&self, n: usize) -> String {
        self.file_tail("server.log", n)
    }
    /// The last `n` lines of a file in the folder.
    pub fn file_tail(&self, f: &str, n: usize) -> String {
        let text = std::fs::read_to_string(self.path(f)).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// Writes `targets.json`: the server's metrics address as Prometheus `file_sd` targets,
/// labelled with the endpoint's name.
pub fn write_targets(
    dir: &Dir,
    cfg: &modelplane_serve::config::ServeConfig,
) -> std::io::Result<()> {
    let name = cfg
        .endpoints
        .first()
        .map(|e| e.name.clone())
        .unwrap_or_default();
    dir.write_json(
        "targets.json",
        &serde_json::json!([{ "targets": [cfg.http.to_string()], "labels": { "endpoint": name } }]),
    )
}

fn set_mode(p: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

/// The program that runs servers: this binary's `server` subcommand, unless
/// `MODELPLANE_SERVER_BIN` names another `modelplane-serve`-compatible binary.
///
/// The binary is first copied to `STATE_DIR/bin/` under a name unique to its build, so that
/// running servers do not hold Terraform's plugin cache busy (an upgrade or `rm -rf
/// .terraform` leaves them running) and keep running the build that started them.
fn server_command(
    state_dir: &Path,
    env: &[(String, String)],
    program: Option<&Path>,
) -> std::io::Result<std::process::Command> {
    if let Ok(bin) = std::env::var("MODELPLANE_SERVER_BIN") {
        let mut c = std::process::Command::new(bin);
        c.envs(env.iter().cloned());
        return Ok(c);
    }
    let exe = match program {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()?,
    };
    let meta = std::fs::metadata(&exe)?;
    let mtime = meta
        .modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos());
    let bin_dir = state_dir.join("bin");
    let dest = bin_dir.join(format!(
        "modelplane-server-{}-{:x}-{:x}",
        crate::VERSION,
        meta.len(),
        mtime
    ));
    // Endpoints are created concurrently: one copy at a time, under a name of its own.
    static COPY: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = COPY.lock().unwrap_or_else(|e| e.into_inner());
    if !dest.is_file() {
        std::fs::create_dir_all(&bin_dir)?;
        let tmp = bin_dir.join(format!(
            ".incoming-{}-{}",
            std::process::id(),
            &new_token()[..8]
        ));
        std::fs::copy(&exe, &tmp)?;
        set_mode(&tmp, 0o755)?;
        std::fs::rename(&tmp, &dest)?;
        prune_binaries(&bin_dir, &dest);
    }
    let mut c = std::process::Command::new(dest);
    c.arg("server");
    // Credentials given in the provider block reach the server through its environment.
    c.envs(env.iter().cloned());
    Ok(c)
}

/// Removes copies of older builds that no process runs any more.
fn prune_binaries(bin_dir: &Path, keep: &Path) {
    let in_use: Vec<PathBuf> = std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| std::fs::read_link(e.path().join("exe")).ok())
                .collect()
        })
        .unwrap_or_default();
    for e in std::fs::read_dir(bin_dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p != keep
            && !in_use.contains(&p)
            && e.file_name()
                .to_string_lossy()
                .starts_with("modelplane-server-")
        {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// Starts a detached server on `config.json` in its own process group, so that neither
/// Terraform's Ctrl-C nor the provider's exit reaches it. Its output goes to `server.log`;
/// `env` is added to its environment (credentials from the provider block); `program` is the
/// binary whose `server` subcommand runs (default: this one).
pub fn spawn(
    dir: &Dir,
    drain_seconds: u64,
    env: &[(String, String)],
    program: Option<&Path>,
) -> std::io::Result<Proc> {
    let state_dir = dir.0.parent().and_then(Path::parent).unwrap_or(&dir.0);
    let mut cmd = server_command(state_dir, env, program)?;
    cmd.arg("serve")
        .arg("--config")
        .arg(dir.path("config.json"))
        .arg("--drain-seconds")
        .arg(drain_seconds.to_string());
    spawn_detached(dir, cmd, "server.log", "process.json")
}

/// Starts `cmd` detached, in its own process group and in the folder `dir`, with its output
/// appended to `log`, and records its pid and start time in `process_file`.
pub fn spawn_detached(
    dir: &Dir,
    mut cmd: std::process::Command,
    log: &str,
    process_file: &str,
) -> std::io::Result<Proc> {
    use std::os::unix::process::CommandExt;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.path(log))?;
    cmd.current_dir(&dir.0)
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .env_remove("PLUGIN_CLIENT_CERT")
        .process_group(0);
    let mut child = cmd.spawn()?;
    let pid = child.id() as i32;
    let start = start_time(pid);
    // Reap it if it exits while this provider still runs (no zombie mistaken for alive).
    std::thread::spawn(move || {
        let _ = child.wait();
    });
    let start_time =
        start.ok_or_else(|| std::io::Error::other("the process exited at once; see its log"))?;
    let p = Proc { pid, start_time };
    dir.write_json(process_file, &p)?;
    Ok(p)
}

/// Sends SIGTERM, waits up to `grace` for the drain, then SIGKILL.
pub async fn stop(p: Proc, grace: Duration) {
    if !p.alive() {
        return;
    }
    // SAFETY: kill(2) with a pid we checked is the process we started.
    unsafe { libc::kill(p.pid, libc::SIGTERM) };
    let deadline = tokio::time::Instant::now() + grace;
    while p.alive() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    if p.alive() {
        unsafe { libc::kill(p.pid, libc::SIGKILL) };
        for _ in 0..100 {
            if !p.alive() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An error and its causes: an HTTP client's own text ("error sending request") does not say
/// whether the connection was refused, reset or timed out.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let text = c.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cause = c.source();
    }
    out
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> std::io::Result<u16> {
    Ok(std::net::TcpListener::bind(("127.0.0.1", 0))?
        .local_addr()?
        .port())
}

/// A new random bearer token (256 bits, hex).
pub fn new_token() -> String {
    use rand::RngCore;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// Why a server did not become ready.
#[derive(Debug)]
pub enum NotReady {
    Exited,
    Timeout,
    Interrupted,
}

/// Waits until `GET {url}/v2/health/ready` answers 200, the process exits, `timeout`
/// passes or `interrupted` resolves.
pub async fn wait_ready(
    url: &str,
    p: Proc,
    timeout: Duration,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<(), NotReady> {
    wait_http(&format!("{url}/v2/health/ready"), p, timeout, interrupted).await
}

/// Waits until `GET probe` answers 2xx, the process exits, `timeout` passes or
/// `interrupted` resolves.
pub async fn wait_http(
    probe: &str,
    p: Proc,
    timeout: Duration,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<(), NotReady> {
    wait_http_while(probe, |_| async move { p.alive() }, timeout, interrupted).await
}

/// Waits until `GET probe` answers 2xx, `alive(round)` answers false (the server is gone),
/// `timeout` passes or `interrupted` resolves. Rounds are 50 ms apart.
pub async fn wait_http_while<F, Fut>(
    probe: &str,
    mut alive: F,
    timeout: Duration,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<(), NotReady>
where
    F: FnMut(u32) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .map_err(|_| NotReady::Exited)?;
    let poll = async {
        for round in 0u32.. {
            if !alive(round).await {
                return Err(NotReady::Exited);
            }
            if let Ok(r) = http.get(probe).send().await {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(NotReady::Timeout)
    };
    tokio::select! {
        r = poll => r,
        _ = tokio::time::sleep(timeout) => Err(NotReady::Timeout),
        _ = interrupted => Err(NotReady::Interrupted),
    }
}

/// An admin call with the endpoint's token.
pub async fn admin(
    url: &str,
    token: &str,
    method: reqwest::Method,
    path: &str,
) -> Result<serde_json::Value, String> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .map_err(|e| e.to_string())?;
    let r = http
        .request(method, format!("{url}{path}"))
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| format!("{url}{path}: {}", with_causes(&e)))?;
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap_or_default();
    if status.is_success() {
        Ok(body)
    } else {
        Err(body["error"]
            .as_str()
            .map(String::from)
            .unwrap_or_else(|| format!("HTTP {status}")))
    }
}

/// Every live server process started for a state folder under `state_dir` (by command line).
pub fn processes_under(state_dir: &Path) -> Vec<i32> {
    processes_mentioning(&state_dir.join("endpoints"))
}

/// Every live process whose command line names a path under `folder`.
pub fn processes_mentioning(folder: &Path) -> Vec<i32> {
    let needle = folder.display().to_string();
    let Ok(rd) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    rd.flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter(|pid| start_time(*pid).is_some())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(&needle))
                .unwrap_or(false)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn an_unreachable_server_is_explained() {
        let port = super::free_port().unwrap();
        let url = format!("http://127.0.0.1:{port}");
        let e = super::admin(&url, "t", reqwest::Method::GET, "/v2/admin/config")
            .await
            .unwrap_err();
        assert!(e.starts_with(&format!("{url}/v2/admin/config: ")), "{e}");
        assert!(e.contains("Connection refused"), "{e}");
    }

    use super::*;

    #[test]
    fn start_time_identifies_a_process() {
        let me = std::process::id() as i32;
        let t = start_time(me).expect("this process is alive");
        assert!(Proc {
            pid: me,
            start_time: t
        }
        .alive());
        assert!(
            !Proc {
                pid: me,
                start_time: t + 1
            }
            .alive(),
            "same pid, other start time: not ours"
        );
        assert_eq!(start_time(i32::MAX), None);
    }

    #[test]
    fn tokens_are_random_and_long() {
        let (a, b) = (new_token(), new_token());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn secrets_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let td = tempfile::tempdir().unwrap();
        let d = Dir::new(td.path(), "e");
        d.create().unwrap();
        d.write_secret("token", "s3cret").unwrap();
        assert_eq!(
            std::fs::metadata(d.path("token"))
                .unwrap()
                .permissions()
                .mode()
                & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&d.0).unwrap().permissions().mode() & 0o777,
            0o700
        );
    }
}
