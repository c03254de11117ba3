//! An endpoint's server, whichever platform runs it: a supervised process (`local`) or a
//! container (`container`). The endpoint resource starts, probes and stops servers only
//! through this, so both platforms share its semantics (readiness wait, zero-downtime
//! restart, drift, rollback).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use modelplane_serve::config::ServeConfig;

use super::process::{self as le, Dir, NotReady, Proc};
use crate::platforms::container;

/// A running server, as `process.json` records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Server {
    Container(container::Running),
    Process(Proc),
}

impl Server {
    pub async fn alive(&self) -> bool {
        match self {
            Server::Process(p) => p.alive(),
            Server::Container(c) => c.engine.running(&c.container).await == Some(true),
        }
    }

    /// Stops the server: SIGTERM, a drain of up to `grace`, then SIGKILL. A container is
    /// removed too.
    pub async fn stop(&self, grace: Duration) {
        match self {
            Server::Process(p) => le::stop(*p, grace).await,
            Server::Container(c) => c.engine.remove(&c.container, grace).await,
        }
    }

    /// The last lines the server wrote.
    pub async fn log_tail(&self, dir: &Dir, n: usize) -> String {
        match self {
            Server::Process(_) => dir.log_tail(n),
            Server::Container(c) => c.engine.logs(&c.container, n).await,
        }
    }

    /// Where its log is, for messages.
    pub fn log_name(&self, dir: &Dir) -> String {
        match self {
            Server::Process(_) => dir.path("server.log").display().to_string(),
            Server::Container(c) => format!("`{} logs {}`", c.engine.program, c.container),
        }
    }

    /// The image a container runs.
    pub fn image(&self) -> Option<&str> {
        match self {
            Server::Container(c) => Some(&c.image),
            Server::Process(_) => None,
        }
    }
}

/// The server recorded in an endpoint's state folder.
pub fn recorded(dir: &Dir) -> Option<Server> {
    dir.read_json("process.json")
}

/// The recorded server, when it still runs.
pub async fn live(dir: &Dir) -> Option<Server> {
    match recorded(dir) {
        Some(s) if s.alive().await => Some(s),
        _ => None,
    }
}

/// How an endpoint's servers are started.
#[derive(Clone, Debug)]
pub enum Launcher {
    /// A process, with this environment added (credentials from the provider block), of
    /// `program`'s `server` subcommand (default: this binary).
    Local {
        env: Vec<(String, String)>,
        program: Option<std::path::PathBuf>,
    },
    Container(Box<container::Launch>),
}

impl Launcher {
    /// Whether a new server can run beside the old one on the same ports, so that a restart
    /// starts the new one first (no gap). Local processes can (`SO_REUSEPORT`), and so can
    /// containers on the host's network; containers with published ports cannot.
    pub fn overlaps(&self) -> bool {
        match self {
            Launcher::Local { .. } => true,
            Launcher::Container(l) => l.overlaps(),
        }
    }

    /// Starts a server on the folder's configuration and records it in `process.json`.
    pub async fn spawn(&self, dir: &Dir, drain_seconds: u64) -> Result<Server, String> {
        let s = match self {
            Launcher::Local { env, program } => Server::Process(
                le::spawn(dir, drain_seconds, env, program.as_deref())
                    .map_err(|e| format!("cannot start the server: {e}\n{}", dir.log_tail(20)))?,
            ),
            Launcher::Container(l) => Server::Container(l.start(&etc(dir), drain_seconds).await?),
        };
        dir.write_json("process.json", &s)
            .map_err(|e| e.to_string())?;
        Ok(s)
    }
}

/// The folder a container mounts as its configuration.
pub fn etc(dir: &Dir) -> std::path::PathBuf {
    dir.path("etc")
}

/// What a container sees of a configuration written for this host: its listeners on every
/// interface of the container, the token, a local store and the cache at their mounts.
/// Returns the view with the host folders to mount (local store, cache).
pub fn container_view(
    cfg: &ServeConfig,
) -> (
    ServeConfig,
    Option<std::path::PathBuf>,
    Option<std::path::PathBuf>,
) {
    let mut c = cfg.clone();
    fn any(a: std::net::SocketAddr) -> std::net::SocketAddr {
        std::net::SocketAddr::from(([0, 0, 0, 0], a.port()))
    }
    c.http = any(cfg.http);
    c.grpc = cfg.grpc.map(any);
    c.auth.token_file = Some(format!("{}/token", container::CONFIG_MOUNT));
    c.auth.token_env = None;
    // Remote variants' tokens are published beside the endpoint's.
    for v in c.endpoints.iter_mut().flat_map(|e| e.variants.iter_mut()) {
        if let Some(r) = &mut v.remote {
            if r.token_file.is_some() {
                r.token_file = Some(format!(
                    "{}/{}",
                    container::CONFIG_MOUNT,
                    crate::platforms::remote_token_file(&v.name)
                ));
            }
        }
    }
    let (models, cache) = if cfg.repository.contains("://") {
        c.cache_dir = Some(container::CACHE_MOUNT.into());
        (None, cfg.cache_dir.clone())
    } else {
        c.repository = container::MODELS_MOUNT.into();
        c.cache_dir = None;
        (Some(std::path::PathBuf::from(&cfg.repository)), None)
    };
    (c, models, cache)
}

/// Writes what a container mounts as its configuration (`etc/`): the container's view of
/// `cfg` and the token, handed to the image's user (see [`container::share`]). Files are
/// replaced by rename, so a reload reads either the old or the new file whole. Nothing is
/// written for endpoints without an `etc/` folder (local processes).
pub fn publish(dir: &Dir, cfg: &ServeConfig) -> std::io::Result<()> {
    let etc = etc(dir);
    if !etc.is_dir() {
        return Ok(());
    }
    let (view, _, cache) = container_view(cfg);
    let put = |f: &str, bytes: &[u8]| -> std::io::Result<()> {
        let tmp = etc.join(format!(".{f}.tmp"));
        {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            file.write_all(bytes)?;
        }
        container::share(&tmp)?;
        std::fs::rename(&tmp, etc.join(f))
    };
    put(
        "config.json",
        &serde_json::to_vec_pretty(&view).map_err(std::io::Error::other)?,
    )?;
    if let Ok(token) = std::fs::read(dir.path("token")) {
        put("token", &token)?;
    }
    for v in cfg.endpoints.iter().flat_map(|e| &e.variants) {
        if let Some(f) = v.remote.as_ref().and_then(|r| r.token_file.as_ref()) {
            if let Ok(token) = std::fs::read(f) {
                put(&crate::platforms::remote_token_file(&v.name), &token)?;
            }
        }
    }
    container::share(&etc)?;
    if let Some(c) = cache {
        std::fs::create_dir_all(&c)?;
        container::share(&c)?;
    }
    Ok(())
}

/// Waits until the server answers `GET {url}/v2/health/ready`, stops, `timeout` passes or
/// `interrupted` resolves.
pub async fn wait_ready(
    url: &str,
    server: &Server,
    timeout: Duration,
    interrupted: impl std::future::Future<Output = ()>,
) -> Result<(), NotReady> {
    match server {
        Server::Process(p) => le::wait_ready(url, *p, timeout, interrupted).await,
        Server::Container(c) => {
            let probe = format!("{url}/v2/health/ready");
            // Asking the engine costs a process: every 10th round.
            let alive = |round: u32| async move {
                !round.is_multiple_of(10) || c.engine.running(&c.container).await == Some(true)
            };
            le::wait_http_while(&probe, alive, timeout, interrupted).await
        }
    }
}

/// Every container of an endpoint the engine knows, by label (for clean-up of containers a
/// crash left unrecorded).
pub async fn containers_of(engine: &container::Engine, endpoint: &str) -> Vec<String> {
    let out = tokio::process::Command::new(&engine.program)
        .args([
            "ps",
            "-a",
            "-q",
            "--filter",
            &format!("label=io.modelplane.endpoint={endpoint}"),
        ])
        .stdin(std::process::Stdio::null())
        .output()
        .await;
    match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A container sees remote variants' tokens at its configuration mount, published there
    /// from the endpoint's folder (mode 0600, handed to the image's user).
    #[test]
    fn remote_tokens_are_published_to_the_container() {
        let td = tempfile::tempdir().unwrap();
        let dir = Dir::new(td.path(), "gateway");
        dir.create().unwrap();
        std::fs::create_dir_all(etc(&dir)).unwrap();
        dir.write_secret("token", "own-token").unwrap();
        dir.write_secret(&crate::platforms::remote_token_file("cloud"), "cloud-token")
            .unwrap();
        let mut cfg: ServeConfig = serde_json::from_value(serde_json::json!({
            "repository": "/srv/models",
            "endpoints": [{ "name": "gateway", "variants": [
                { "name": "cloud", "model": "iris", "weight": 100, "remote": { "url": "http://127.0.0.1:9" } }
            ]}]
        }))
        .unwrap();
        let tokens =
            std::collections::BTreeMap::from([("cloud".to_string(), "cloud-token".to_string())]);
        crate::platforms::point_remote_tokens(&mut cfg, &tokens, &dir.0.display().to_string());
        let (view, _, _) = container_view(&cfg);
        assert_eq!(
            view.endpoints[0].variants[0]
                .remote
                .as_ref()
                .unwrap()
                .token_file
                .as_deref(),
            Some(format!("{}/remote-cloud.token", container::CONFIG_MOUNT).as_str())
        );
        publish(&dir, &cfg).unwrap();
        assert_eq!(
            std::fs::read_to_string(etc(&dir).join("remote-cloud.token")).unwrap(),
            "cloud-token"
        );
        let published = std::fs::read_to_string(etc(&dir).join("config.json")).unwrap();
        assert!(!published.contains("cloud-token"));
    }
}
