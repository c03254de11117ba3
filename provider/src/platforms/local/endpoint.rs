//! Endpoints on this host, as supervised processes (`local`) or containers (`container`):
//! one state folder each (see [`super::process`]), started, probed and stopped through
//! [`super::server`]. A change the server can reload is a hot reload; anything else starts a
//! new server on the same ports before the old one stops, where both can hold them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use modelplane_serve::config::{AuthConfig, ServeConfig};
use tfplugin::{AttributePath, Ctx};

use super::process::{self as le, Dir};
use super::server::{self, Launcher, Server};
use crate::ids::ClusterId;
use crate::platforms::rollout::{NoUndo, Rollout, Undo};
use crate::platforms::{
    container, Deployment, EndpointSpec, Imported, Observed, PlatformError, Previous, Running,
};

/// Seconds a server gets to drain on stop.
pub const DRAIN_SECONDS: u64 = 10;
/// How long a new server may take to load its models and report ready.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// How servers run on this host.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Runs {
    Process,
    Container,
}

/// Endpoints of one cluster on this host.
#[derive(Clone, Debug)]
pub struct Host {
    pub cluster: ClusterId,
    pub state_dir: PathBuf,
    pub runs: Runs,
    /// Environment servers get (credentials given in the provider block).
    pub server_env: Vec<(String, String)>,
    /// The binary whose `server` subcommand runs servers; `None`: this one (the provider).
    pub server_program: Option<PathBuf>,
}

pub fn url_of(port: i64) -> String {
    format!("http://127.0.0.1:{port}")
}

/// Whether two configurations differ in what a reload cannot change.
fn needs_restart(old: &ServeConfig, new: &ServeConfig) -> bool {
    let batching = |c: &ServeConfig| c.models.first().map(|m| m.batching.clone());
    old.http != new.http
        || old.grpc != new.grpc
        || old.limits != new.limits
        || old.auth != new.auth
        || batching(old) != batching(new)
        || old.monitoring != new.monitoring
}

/// Writes the server's configuration, and the `file_sd` targets file that monitors'
/// Prometheus reads, so that a moved endpoint is scraped at its new address at once.
fn write_config(dir: &Dir, cfg: &ServeConfig) -> std::io::Result<()> {
    dir.write_json("config.json", cfg)?;
    server::publish(dir, cfg)?;
    le::write_targets(dir, cfg)
}

impl Host {
    pub fn dir(&self, name: &str) -> Dir {
        Dir::new(&self.state_dir, name)
    }

    /// The server configuration of `spec` on this host: listeners on 127.0.0.1, the token in
    /// the state folder, artifacts of remote stores in the shared cache.
    fn host_config(
        &self,
        spec: &EndpointSpec,
        dir: &Dir,
        port: u16,
        grpc_port: u16,
    ) -> ServeConfig {
        let mut cfg = spec.serve.clone();
        cfg.http = SocketAddr::from(([127, 0, 0, 1], port));
        cfg.grpc = Some(SocketAddr::from(([127, 0, 0, 1], grpc_port)));
        // Artifacts of remote stores are downloaded once per sha256 and shared by endpoints.
        cfg.cache_dir = cfg
            .repository
            .contains("://")
            .then(|| self.state_dir.join("cache"));
        cfg.auth = AuthConfig {
            token_env: None,
            token_file: Some(dir.path("token").display().to_string()),
            none: false,
        };
        cfg.reuse_port = true;
        crate::platforms::point_remote_tokens(
            &mut cfg,
            &spec.remote_tokens,
            &dir.0.display().to_string(),
        );
        cfg
    }

    /// Writes the remote variants' tokens beside the endpoint's own (mode 0600).
    fn write_remote_tokens(dir: &Dir, spec: &EndpointSpec) -> std::io::Result<()> {
        for (variant, token) in &spec.remote_tokens {
            dir.write_secret(&crate::platforms::remote_token_file(variant), token)?;
        }
        Ok(())
    }

    /// How `spec`'s servers start: a local process, or a container of `image` (or of
    /// `pinned`, the digest a running container of the same `image` already runs).
    fn launcher(
        &self,
        spec: &EndpointSpec,
        cfg: &ServeConfig,
        pinned: Option<&str>,
    ) -> Result<Launcher, String> {
        if self.runs == Runs::Process {
            return Ok(Launcher::Local {
                env: self.server_env.clone(),
                program: self.server_program.clone(),
            });
        }
        let engine = container::engine_of(&self.state_dir, &self.cluster.name)?;
        let (_, models, cache) = server::container_view(cfg);
        let image = pinned
            .map(String::from)
            .or_else(|| spec.image.clone())
            .ok_or("image is required on container clusters")?;
        Ok(Launcher::Container(Box::new(container::Launch {
            engine,
            endpoint: spec.name.clone(),
            image,
            settings: spec.container.clone().unwrap_or_default(),
            ports: [cfg.http.port()]
                .into_iter()
                .chain(cfg.grpc.map(|g| g.port()))
                .collect(),
            models,
            cache,
        })))
    }

    fn deployment(
        &self,
        dir: &Dir,
        port: u16,
        grpc_port: u16,
        image: Option<String>,
    ) -> Deployment {
        Deployment {
            port,
            grpc_port,
            url: url_of(i64::from(port)),
            grpc_address: format!("127.0.0.1:{grpc_port}"),
            running_image: image,
            objects: None,
            state_path: Some(dir.0.display().to_string()),
            token_file: Some(dir.path("token").display().to_string()),
        }
    }

    /// An endpoint of this name that a finished create left running here, with what to do.
    pub async fn claimed(&self, name: &str) -> Option<String> {
        let dir = self.dir(name);
        let ready = dir
            .read_json::<serde_json::Value>("meta.json")
            .is_some_and(|m| m["ready"].as_bool() == Some(true));
        (ready && server::live(&dir).await.is_some()).then(|| {
            format!(
                "an endpoint named {name:?} already runs on this machine (state in {}). Choose another name, or import it: terraform import ADDRESS {}/{name}",
                dir.0.display(),
                self.cluster
            )
        })
    }

    pub async fn record(&self, name: &str, record: &serde_json::Value) {
        let _ = self.dir(name).write_json("meta.json", record);
    }

    pub fn token(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.dir(name).path("token"))
            .ok()
            .map(|t| t.trim().to_string())
            .filter(|t| !t.is_empty())
    }

    pub async fn deploy(
        &self,
        spec: &EndpointSpec,
        previous: Option<&Previous>,
        ctx: &mut Ctx,
    ) -> Rollout {
        match previous {
            None => self.create(spec, ctx).await,
            Some(p) => self.update(spec, p, ctx).await,
        }
    }

    async fn create(&self, spec: &EndpointSpec, ctx: &mut Ctx) -> Rollout {
        let dir = self.dir(&spec.name);
        let failed = |e: PlatformError, undo: Box<dyn Undo>| Rollout {
            deployment: None,
            result: Err(e),
            undo,
        };
        // A folder left by an interrupted create is cleaned up (a finished endpoint was
        // refused by `claimed`).
        if dir.exists() {
            if let Some(s) = server::live(&dir).await {
                s.stop(Duration::from_secs(DRAIN_SECONDS)).await;
            }
            let _ = dir.remove();
        }
        if let Err(e) = dir.create() {
            return failed(
                PlatformError::Failed(format!(
                    "cannot create the endpoint's state folder {}: {e}",
                    dir.0.display()
                )),
                Box::new(NoUndo),
            );
        }
        let undo = Box::new(Cleanup(dir.clone()));
        if let Err(e) = dir
            .write_secret("token", &spec.token)
            .and_then(|()| Self::write_remote_tokens(&dir, spec))
        {
            return failed(
                PlatformError::Failed(format!("cannot write the token: {e}")),
                undo,
            );
        }
        let mut ports = [0u16; 2];
        for (slot, (given, name)) in ports
            .iter_mut()
            .zip([(spec.port, "port"), (spec.grpc_port, "grpc_port")])
        {
            *slot = match given {
                Some(p) => p,
                None => match le::free_port() {
                    Ok(p) => p,
                    Err(e) => {
                        return failed(
                            PlatformError::Refused {
                                attribute: Some(AttributePath::attr(name)),
                                summary: "No free port".into(),
                                message: e.to_string(),
                            },
                            undo,
                        )
                    }
                },
            };
        }
        let [port, grpc_port] = ports;
        let cfg = self.host_config(spec, &dir, port, grpc_port);
        let launcher = match self.launcher(spec, &cfg, None) {
            Ok(l) => l,
            Err(e) => {
                return failed(
                    PlatformError::Invalid {
                        attribute: AttributePath::attr("cluster"),
                        message: e,
                    },
                    undo,
                )
            }
        };
        if let Launcher::Container(_) = launcher {
            if let Err(e) = std::fs::create_dir_all(server::etc(&dir)) {
                return failed(
                    PlatformError::Failed(format!(
                        "cannot create the endpoint's state folder: {e}"
                    )),
                    undo,
                );
            }
        }
        let mut record = spec.record.clone();
        record["ready"] = false.into();
        if let Err(e) = write_config(&dir, &cfg).and_then(|_| dir.write_json("meta.json", &record))
        {
            return failed(
                PlatformError::Failed(format!("cannot write the server configuration: {e}")),
                undo,
            );
        }
        let url = url_of(i64::from(port));
        match start(&launcher, &dir, &url, ctx).await {
            Ok(server) => Rollout {
                deployment: Some(self.deployment(
                    &dir,
                    port,
                    grpc_port,
                    server.image().map(String::from),
                )),
                result: Ok(()),
                undo,
            },
            Err(e) => failed(PlatformError::Failed(e), undo),
        }
    }

    async fn update(&self, spec: &EndpointSpec, previous: &Previous, ctx: &mut Ctx) -> Rollout {
        let dir = self.dir(&spec.name);
        let failed = |e: String| Rollout {
            deployment: None,
            result: Err(PlatformError::Failed(e)),
            undo: Box::new(NoUndo),
        };
        if !dir.exists() {
            if let Err(e) = dir.create() {
                return failed(format!(
                    "cannot create the endpoint's state folder {}: {e}",
                    dir.0.display()
                ));
            }
        }
        let old_token = std::fs::read_to_string(dir.path("token")).unwrap_or_default();
        let token = spec.token.clone();
        let old_cfg: Option<ServeConfig> = dir.read_json("config.json");
        let port = spec.port.unwrap_or(previous.deployment.port);
        let grpc_port = spec.grpc_port.unwrap_or(previous.deployment.grpc_port);
        let new_cfg = self.host_config(spec, &dir, port, grpc_port);
        let url = url_of(i64::from(port));
        let old_server = server::live(&dir).await;
        let prior_spec = previous.spec.as_ref();
        let prior_image = prior_spec.and_then(|p| p.image.clone());
        // A container keeps the digest it runs while `image` stays the same.
        let running = old_server
            .as_ref()
            .and_then(Server::image)
            .map(String::from)
            .or_else(|| previous.deployment.running_image.clone());
        let same_image = spec.image == prior_image;
        let launchers = self
            .launcher(spec, &new_cfg, running.as_deref().filter(|_| same_image))
            .and_then(|new| {
                let old = match (&old_cfg, prior_spec) {
                    (Some(c), Some(p)) => self.launcher(p, c, running.as_deref())?,
                    _ => new.clone(),
                };
                Ok((new, old))
            });
        let (launcher, old_launcher) = match launchers {
            Ok(l) => l,
            Err(e) => {
                return Rollout {
                    deployment: None,
                    result: Err(PlatformError::Invalid {
                        attribute: AttributePath::attr("cluster"),
                        message: e,
                    }),
                    undo: Box::new(NoUndo),
                }
            }
        };
        if let Launcher::Container(_) = launcher {
            if let Err(e) = std::fs::create_dir_all(server::etc(&dir)) {
                return failed(format!("cannot create the endpoint's state folder: {e}"));
            }
        }
        let token_changed = token != old_token.trim();
        let container_changed =
            !same_image || spec.container != prior_spec.and_then(|p| p.container.clone());
        let restart = match (&old_cfg, &old_server) {
            (Some(old), Some(_)) => {
                !previous.serving
                    || token_changed
                    || container_changed
                    || needs_restart(old, &new_cfg)
            }
            _ => true,
        };
        // Apply the change.
        let applied: Result<Option<Server>, String> = async {
            if token_changed {
                dir.write_secret("token", &token)
                    .map_err(|e| format!("cannot write the token: {e}"))?;
            }
            Self::write_remote_tokens(&dir, spec)
                .map_err(|e| format!("cannot write a remote variant's token: {e}"))?;
            write_config(&dir, &new_cfg)
                .map_err(|e| format!("cannot write the configuration: {e}"))?;
            if restart {
                // The new server starts before the old one stops where both can hold the
                // ports; otherwise the old one goes first.
                if !launcher.overlaps() {
                    if let Some(old) = &old_server {
                        old.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                    }
                }
                let news = start(&launcher, &dir, &url, ctx).await?;
                if launcher.overlaps() {
                    if let Some(old) = &old_server {
                        old.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                        // Both held the port: the old one may have answered the readiness
                        // probe. Now only the new one can.
                        server::wait_ready(&url, &news, READY_TIMEOUT, std::future::pending())
                            .await
                            .map_err(|e| format!("the new server did not take over: {e:?}"))?;
                    }
                }
                // start() recorded it in process.json.
                Ok(Some(news))
            } else {
                le::admin(&url, &token, reqwest::Method::POST, "/v2/admin/reload")
                    .await
                    .map_err(|e| format!("the server refused the new configuration: {e}"))?;
                Ok(None)
            }
        }
        .await;
        let started = applied.as_ref().ok().cloned().flatten();
        let image = match &started {
            Some(s) => s.image().map(String::from),
            None => running.filter(|_| same_image),
        };
        let undo = Box::new(Rollback {
            dir: dir.clone(),
            old_cfg,
            old_token: old_token.trim().to_string(),
            url: url_of(i64::from(previous.deployment.port)),
            restart,
            old_server,
            started,
            launcher: old_launcher,
        });
        Rollout {
            deployment: Some(self.deployment(&dir, port, grpc_port, image)),
            result: applied.map(|_| ()).map_err(PlatformError::Failed),
            undo,
        }
    }

    pub async fn observe(
        &self,
        name: &str,
        recorded: &Deployment,
    ) -> Result<Observed, PlatformError> {
        let dir = self.dir(name);
        if !dir.exists() {
            return Ok(Observed::Gone);
        }
        let Some(server) = server::live(&dir).await else {
            return Ok(Observed::Stopped);
        };
        let token = std::fs::read_to_string(dir.path("token")).unwrap_or_default();
        let url = &recorded.url;
        let served =
            match le::admin(url, token.trim(), reqwest::Method::GET, "/v2/admin/config").await {
                Ok(j) => j,
                Err(e) => return Ok(Observed::Unreachable(format!("{url}: {e}"))),
            };
        // What the server really serves, with the store as this host names it (a container
        // sees its store at a mount).
        let serves = serde_json::from_value::<ServeConfig>(served)
            .ok()
            .map(|mut cfg| {
                if let Some(host) = dir.read_json::<ServeConfig>("config.json") {
                    cfg.repository = host.repository;
                }
                cfg
            });
        Ok(Observed::Running(Box::new(Running {
            serves,
            running_image: server.image().map(String::from),
            drifted: false,
            token: None,
        })))
    }

    pub async fn remove(&self, name: &str) -> Result<(), PlatformError> {
        let dir = self.dir(name);
        if let Some(s) = server::recorded(&dir) {
            s.stop(Duration::from_secs(DRAIN_SECONDS + 5)).await;
        }
        // Containers a crash left unrecorded go too.
        if self.runs == Runs::Container {
            if let Ok(engine) = container::engine_of(&self.state_dir, &self.cluster.name) {
                for c in server::containers_of(&engine, name).await {
                    engine.remove(&c, Duration::from_secs(2)).await;
                }
            }
        }
        dir.remove().map_err(|e| {
            PlatformError::Failed(format!(
                "cannot remove the endpoint's state folder {}: {e}",
                dir.0.display()
            ))
        })
    }

    pub async fn import(&self, name: &str) -> Result<Imported, PlatformError> {
        let dir = self.dir(name);
        let (Some(record), Some(cfg)) = (
            dir.read_json::<serde_json::Value>("meta.json"),
            dir.read_json::<ServeConfig>("config.json"),
        ) else {
            return Err(PlatformError::Failed(format!(
                "no endpoint {name:?} on this machine (looked in {}).",
                dir.0.display()
            )));
        };
        let grpc = cfg.grpc.map_or(0, |g| g.port());
        let image = server::recorded(&dir).and_then(|s| s.image().map(String::from));
        Ok(Imported {
            deployment: self.deployment(&dir, cfg.http.port(), grpc, image),
            serves: cfg,
            image: None,
            kubernetes: None,
            token: None,
            record: Some(record),
        })
    }
}

/// Starts a server on the folder's configuration and waits for it; on failure it is
/// stopped and the error says why, with its last log lines.
async fn start(launcher: &Launcher, dir: &Dir, url: &str, ctx: &mut Ctx) -> Result<Server, String> {
    let server = launcher.spawn(dir, DRAIN_SECONDS).await?;
    let r = server::wait_ready(url, &server, READY_TIMEOUT, ctx.stopped()).await;
    match r {
        Ok(()) => Ok(server),
        Err(why) => {
            let log = server.log_tail(dir, 20).await;
            let log_name = server.log_name(dir);
            server.stop(Duration::from_secs(2)).await;
            let what = match why {
                le::NotReady::Exited => "the server exited before it was ready".to_string(),
                le::NotReady::Timeout => format!(
                    "the server was not ready after {}s",
                    READY_TIMEOUT.as_secs()
                ),
                le::NotReady::Interrupted => {
                    "interrupted (Terraform was asked to stop) while the server was starting"
                        .to_string()
                }
            };
            let hint = if log.contains("Address already in use")
                || log.contains("address already in use")
            {
                "\nA port of the endpoint is in use on this host: choose other port and grpc_port, or stop what holds them."
            } else {
                ""
            };
            Err(format!("{what}. Last lines of {log_name}:\n{log}{hint}"))
        }
    }
}

/// Undoes a create: stops what was started and removes the state folder.
struct Cleanup(Dir);

#[tfplugin::async_trait]
impl Undo for Cleanup {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        if let Some(s) = server::recorded(&self.0) {
            s.stop(Duration::from_secs(DRAIN_SECONDS)).await;
        }
        let _ = self.0.remove();
        Ok(())
    }
}

/// What it takes to put an endpoint's previous configuration back, after a failed change
/// or a missed SLO.
struct Rollback {
    dir: Dir,
    old_cfg: Option<ServeConfig>,
    old_token: String,
    url: String,
    restart: bool,
    old_server: Option<Server>,
    started: Option<Server>,
    /// How the previous servers were started.
    launcher: Launcher,
}

#[tfplugin::async_trait]
impl Undo for Rollback {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        self.run().await.map_err(PlatformError::Failed)
    }
}

impl Rollback {
    async fn run(self) -> Result<(), String> {
        let Some(old) = &self.old_cfg else {
            return Err("no previous configuration to go back to".to_string());
        };
        self.dir
            .write_secret("token", &self.old_token)
            .map_err(|e| e.to_string())?;
        write_config(&self.dir, old).map_err(|e| e.to_string())?;
        let old_alive = match &self.old_server {
            Some(s) => s.alive().await,
            None => false,
        };
        match (self.restart, self.old_server) {
            (false, _) => le::admin(
                &self.url,
                &self.old_token,
                reqwest::Method::POST,
                "/v2/admin/reload",
            )
            .await
            .map(|_| ()),
            (true, Some(olds)) if old_alive => {
                // The old server still runs (the new one failed before it was stopped).
                if let Some(news) = self.started {
                    news.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                }
                self.dir
                    .write_json("process.json", &olds)
                    .map_err(|e| e.to_string())
            }
            (true, _) => {
                // Servers that cannot share the ports: the new one goes first.
                let mut started = self.started;
                if !self.launcher.overlaps() {
                    if let Some(news) = started.take() {
                        news.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                    }
                }
                let s = self.launcher.spawn(&self.dir, DRAIN_SECONDS).await?;
                if let Err(e) =
                    server::wait_ready(&self.url, &s, READY_TIMEOUT, std::future::pending()).await
                {
                    let log = s.log_tail(&self.dir, 20).await;
                    return Err(format!(
                        "the previous configuration did not start: {e:?}\n{log}"
                    ));
                }
                if let Some(news) = started {
                    news.stop(Duration::from_secs(DRAIN_SECONDS)).await;
                    // Both held the port: the new one may have answered the readiness probe.
                    // Now only the restored one can.
                    if let Err(e) =
                        server::wait_ready(&self.url, &s, READY_TIMEOUT, std::future::pending())
                            .await
                    {
                        let log = s.log_tail(&self.dir, 20).await;
                        return Err(format!(
                            "the previous configuration did not take over: {e:?}\n{log}"
                        ));
                    }
                }
                Ok(())
            }
        }
    }
}
