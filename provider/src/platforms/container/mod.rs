//! The `container` platform: a host with podman or docker (edge boxes, single nodes).
//! Endpoints run the bundled image; the engine is driven through its command line, which is
//! the one interface podman (rootful or rootless, no service needed) and docker share.
//!
//! An endpoint's container gets:
//!
//! | host | container | what |
//! |---|---|---|
//! | `STATE_DIR/endpoints/NAME/etc/` | `/etc/modelplane/` (read-only) | `config.json` and `token` |
//! | the local store's folder | `/models/` (read-only) | model versions, for `local` stores |
//! | `STATE_DIR/cache/` | `/var/cache/modelplane/` | artifacts of object stores, by sha256 |
//!
//! The image runs as its non-root user (65532). When the provider runs as root (a rootful
//! engine) the mounted files are handed to that user; otherwise the container runs as the
//! provider's own user (`--user UID:GID`, with `--userns keep-id` on podman), which owns
//! them.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

mod platform;
pub use platform::{host, Container};

/// The engines this platform drives, in the order they are looked for.
pub const ENGINES: &[&str] = &["podman", "docker"];
/// Where the endpoint's configuration is mounted.
pub const CONFIG_MOUNT: &str = modelplane_serve::image::CONFIG_DIR;
/// Where a local store is mounted.
pub const MODELS_MOUNT: &str = "/models";
/// Where the artifact cache is mounted.
pub const CACHE_MOUNT: &str = modelplane_serve::image::CACHE_DIR;

/// A container engine's command line.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Engine {
    /// `podman` or `docker`: a program on PATH, or a path to one.
    pub program: String,
}

fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).any(|d| d.join(program).is_file()))
        .unwrap_or(false)
}

impl Engine {
    /// The engine named, or the first of podman and docker on PATH.
    pub fn find(wanted: Option<&str>) -> Result<Engine, String> {
        match wanted {
            Some(w) => {
                if on_path(w) {
                    Ok(Engine { program: w.into() })
                } else {
                    Err(format!("the container engine {w:?} is not installed on this host (not on PATH); install it or leave `engine` unset to use whichever of podman and docker is there"))
                }
            }
            None => ENGINES
                .iter()
                .find(|e| on_path(e))
                .map(|e| Engine {
                    program: e.to_string(),
                })
                .ok_or_else(|| {
                    "the container platform needs podman or docker on this host; neither is on PATH"
                        .to_string()
                }),
        }
    }

    /// Which engine this is (`podman` or `docker`), from the program's name.
    pub fn kind(&self) -> &str {
        let name = Path::new(&self.program)
            .file_name()
            .and_then(|f| f.to_str())
            .unwrap_or("");
        if name.contains("docker") {
            "docker"
        } else {
            "podman"
        }
    }

    fn command(&self) -> tokio::process::Command {
        let mut c = tokio::process::Command::new(&self.program);
        c.stdin(std::process::Stdio::null()).kill_on_drop(true);
        c
    }

    /// Runs the engine; stdout on success, stderr (trimmed) on failure.
    async fn call(&self, args: &[String]) -> Result<String, String> {
        let out = self
            .command()
            .args(args)
            .output()
            .await
            .map_err(|e| format!("cannot run {}: {e}", self.program))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            let err = String::from_utf8_lossy(&out.stderr);
            // Keep the engine's own error lines, not its retry chatter.
            let lines: Vec<&str> = err
                .lines()
                .filter(|l| !l.contains("level=warning"))
                .collect();
            Err(lines.join("\n").trim().to_string())
        }
    }

    /// The engine's version. Docker needs its daemon for it, so a stopped daemon shows here.
    pub async fn version(&self) -> Result<String, String> {
        let field = if self.kind() == "docker" {
            "{{.Server.Version}}"
        } else {
            "{{.Client.Version}}"
        };
        self.call(&["version".into(), "--format".into(), field.into()])
            .await
            .map_err(|e| format!("{} does not answer: {e}", self.program))
    }

    /// Whether a container runs; `None` when it does not exist.
    pub async fn running(&self, id: &str) -> Option<bool> {
        self.call(&[
            "inspect".into(),
            "--type".into(),
            "container".into(),
            "--format".into(),
            "{{.State.Running}}".into(),
            id.into(),
        ])
        .await
        .ok()
        .map(|s| s == "true")
    }

    /// Stops a container (SIGTERM, then SIGKILL after `grace`) and removes it.
    pub async fn remove(&self, id: &str, grace: Duration) {
        let _ = self
            .call(&[
                "stop".into(),
                "-t".into(),
                grace.as_secs().to_string(),
                id.into(),
            ])
            .await;
        let _ = self
            .call(&["rm".into(), "-f".into(), "-t".into(), "0".into(), id.into()])
            .await;
    }

    /// The last lines a container wrote.
    pub async fn logs(&self, id: &str, n: usize) -> String {
        let out = self
            .command()
            .args(["logs", "--tail", &n.to_string(), id])
            .output()
            .await;
        match out {
            Ok(o) => format!(
                "{}{}",
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            )
            .trim()
            .to_string(),
            Err(e) => format!("(no logs: {e})"),
        }
    }

    /// `REPOSITORY@sha256:…` of the image a container runs, when the engine knows its digest.
    pub async fn pinned_image(&self, id: &str, reference: &str) -> Option<String> {
        if reference.contains("@sha256:") {
            return Some(reference.to_string());
        }
        let image = self
            .call(&[
                "inspect".into(),
                "--type".into(),
                "container".into(),
                "--format".into(),
                "{{.Image}}".into(),
                id.into(),
            ])
            .await
            .ok()?;
        let digests = self
            .call(&[
                "image".into(),
                "inspect".into(),
                "--format".into(),
                "{{json .RepoDigests}}".into(),
                image,
            ])
            .await
            .ok()?;
        let digests: Vec<String> = serde_json::from_str(&digests).ok()?;
        let repo = repository_of(reference);
        digests.into_iter().find(|d| repository_of(d) == repo)
    }
}

/// A reference without its tag or digest.
pub fn repository_of(reference: &str) -> &str {
    let no_digest = reference.split('@').next().unwrap_or(reference);
    match no_digest.rfind(':') {
        Some(i) if !no_digest[i..].contains('/') => &no_digest[..i],
        _ => no_digest,
    }
}

/// What a cluster of this platform records for its endpoints.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClusterRecord {
    pub engine: Engine,
}

fn record_path(state_dir: &Path, cluster: &str) -> PathBuf {
    state_dir
        .join("clusters")
        .join(format!("container-{cluster}.json"))
}

/// Records a cluster's engine, for the endpoints that run on it.
pub fn write_record(state_dir: &Path, cluster: &str, r: &ClusterRecord) -> std::io::Result<()> {
    let p = record_path(state_dir, cluster);
    std::fs::create_dir_all(p.parent().unwrap_or(state_dir))?;
    std::fs::write(&p, serde_json::to_vec_pretty(r).unwrap_or_default())
}

pub fn remove_record(state_dir: &Path, cluster: &str) {
    let _ = std::fs::remove_file(record_path(state_dir, cluster));
}

/// The engine of a cluster: its record, or the engine found on this host.
pub fn engine_of(state_dir: &Path, cluster: &str) -> Result<Engine, String> {
    match std::fs::read(record_path(state_dir, cluster))
        .ok()
        .and_then(|b| serde_json::from_slice::<ClusterRecord>(&b).ok())
    {
        Some(r) => Ok(r.engine),
        None => Engine::find(None),
    }
}

/// The container settings of an endpoint.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Default)]
pub struct Settings {
    pub cpus: Option<f64>,
    pub memory: Option<String>,
    pub restart: Option<String>,
    pub gpus: Option<i64>,
    pub extra_args: Option<Vec<String>>,
}

/// Restart policies both engines accept.
pub const RESTART_POLICIES: &[&str] = &["no", "on-failure", "always", "unless-stopped"];

/// Checks a memory size as engines take it (`512m`, `2g`, bytes).
pub fn check_memory(m: &str) -> Result<(), String> {
    let (num, unit) = m.split_at(m.find(|c: char| !c.is_ascii_digit()).unwrap_or(m.len()));
    let ok = !num.is_empty()
        && num.parse::<u64>().is_ok_and(|n| n > 0)
        && matches!(
            unit.to_ascii_lowercase().as_str(),
            "" | "b" | "k" | "m" | "g" | "kb" | "mb" | "gb"
        );
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{m:?} is not a memory size; write a number with b, k, m or g, e.g. \"512m\" or \"2g\""
        ))
    }
}

/// Whether extra arguments put the container on the host's network (then nothing is
/// published, and a new container can start on the same ports before the old one stops).
pub fn host_network(extra: &[String]) -> bool {
    extra.iter().enumerate().any(|(i, a)| {
        a == "--network=host"
            || a == "--net=host"
            || ((a == "--network" || a == "--net") && extra.get(i + 1).is_some_and(|n| n == "host"))
    })
}

/// One container of an endpoint, as `process.json` records it.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Running {
    pub engine: Engine,
    pub container: String,
    /// The image, pinned by digest when the engine knows it.
    pub image: String,
}

/// How to start an endpoint's container.
#[derive(Clone, Debug)]
pub struct Launch {
    pub engine: Engine,
    pub endpoint: String,
    pub image: String,
    pub settings: Settings,
    pub ports: Vec<u16>,
    /// Host folder of a local store, mounted at [`MODELS_MOUNT`].
    pub models: Option<PathBuf>,
    /// Host folder of the artifact cache, mounted at [`CACHE_MOUNT`].
    pub cache: Option<PathBuf>,
}

impl Launch {
    /// Whether a new container can start before the old one stops (zero-downtime restart).
    pub fn overlaps(&self) -> bool {
        host_network(self.settings.extra_args.as_deref().unwrap_or(&[]))
    }

    /// The `run` arguments for a container on the state folder `etc`.
    pub fn args(&self, name: &str, etc: &Path, drain_seconds: u64) -> Vec<String> {
        let mut a: Vec<String> = vec![
            "run".into(),
            "-d".into(),
            "--name".into(),
            name.into(),
            "--label".into(),
            format!("io.modelplane.endpoint={}", self.endpoint),
            "--restart".into(),
            self.settings
                .restart
                .clone()
                .unwrap_or_else(|| "unless-stopped".into()),
            "--stop-timeout".into(),
            (drain_seconds + 5).to_string(),
            "-v".into(),
            format!("{}:{CONFIG_MOUNT}:ro", etc.display()),
        ];
        if let Some(m) = &self.models {
            a.extend(["-v".into(), format!("{}:{MODELS_MOUNT}:ro", m.display())]);
        }
        if let Some(c) = &self.cache {
            a.extend(["-v".into(), format!("{}:{CACHE_MOUNT}", c.display())]);
        }
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            let egid = unsafe { libc::getegid() };
            a.extend(["--user".into(), format!("{euid}:{egid}")]);
            if self.engine.kind() == "podman" {
                a.extend(["--userns".into(), "keep-id".into()]);
            }
        }
        if let Some(c) = self.settings.cpus {
            a.extend(["--cpus".into(), c.to_string()]);
        }
        if let Some(m) = &self.settings.memory {
            a.extend(["--memory".into(), m.clone()]);
        }
        match (self.settings.gpus, self.engine.kind()) {
            (Some(n), "docker") if n > 0 => a.extend(["--gpus".into(), n.to_string()]),
            // podman: the NVIDIA Container Toolkit's CDI devices.
            (Some(n), _) if n > 0 => {
                for i in 0..n {
                    a.extend(["--device".into(), format!("nvidia.com/gpu={i}")]);
                }
            }
            _ => {}
        }
        if self.engine.kind() == "podman" {
            // Exec form: the image has no shell. Docker's --health-cmd needs a shell, so on
            // docker the provider's readiness wait is the check.
            a.extend([
                "--health-cmd".into(),
                format!(r#"["{}","health"]"#, modelplane_serve::image::BINARY),
                "--health-interval".into(),
                "10s".into(),
            ]);
        }
        let extra = self.settings.extra_args.clone().unwrap_or_default();
        if !host_network(&extra) {
            for p in &self.ports {
                a.extend(["-p".into(), format!("{p}:{p}")]);
            }
        }
        a.extend(extra);
        a.push(self.image.clone());
        a.extend([
            "serve".into(),
            "--config".into(),
            format!("{CONFIG_MOUNT}/config.json"),
            "--drain-seconds".into(),
            drain_seconds.to_string(),
        ]);
        a
    }

    /// Starts a container; its id and pinned image, or the engine's error.
    pub async fn start(&self, etc: &Path, drain_seconds: u64) -> Result<Running, String> {
        let name = format!(
            "modelplane-{}-{}",
            self.endpoint,
            &crate::platforms::local::process::new_token()[..8]
        );
        let id = self
            .engine
            .call(&self.args(&name, etc, drain_seconds))
            .await
            .map_err(|e| explain_run_error(&self.image, &self.ports, &e))?;
        let id = id.lines().last().unwrap_or(&name).to_string();
        let image = self
            .engine
            .pinned_image(&id, &self.image)
            .await
            .unwrap_or_else(|| self.image.clone());
        Ok(Running {
            engine: self.engine.clone(),
            container: id,
            image,
        })
    }
}

/// The engine's `run` error with what to do about it.
fn explain_run_error(image: &str, ports: &[u16], e: &str) -> String {
    let l = e.to_lowercase();
    let hint = if l.contains("manifest unknown")
        || l.contains("not found")
        || l.contains("name unknown")
        || l.contains("no such image")
    {
        format!("the image {image} is not in its registry; check `image` (use modelplane_serving_image.NAME.reference)")
    } else if l.contains("unauthorized")
        || l.contains("authentication required")
        || l.contains("denied")
    {
        "the registry refused the engine's credentials; log in on this host (`podman login` / `docker login`)".to_string()
    } else if l.contains("address already in use") || l.contains("port is already allocated") {
        format!(
            "a port of the endpoint ({}) is already in use on this host; choose other `port` and `grpc_port`, or stop what holds them",
            ports
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else if l.contains("http response to https client") || l.contains("x509") {
        "the registry serves plain HTTP or an untrusted certificate; mark it insecure in the engine's registry configuration (or pass --tls-verify=false in extra_args on podman)".to_string()
    } else {
        String::new()
    };
    if hint.is_empty() {
        format!("the container did not start: {e}")
    } else {
        format!("{hint}.\nThe engine said: {e}")
    }
}

/// Hands a mounted folder (and what is in it) to the image's user when the provider runs
/// as root, so that a rootful engine's container can read it.
pub fn share(path: &Path) -> std::io::Result<()> {
    if unsafe { libc::geteuid() } != 0 {
        return Ok(());
    }
    let user = modelplane_serve::image::USER;
    let chown = |p: &Path| std::os::unix::fs::chown(p, Some(user), Some(user));
    chown(path)?;
    if path.is_dir() {
        for e in std::fs::read_dir(path)?.flatten() {
            chown(&e.path())?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn launch(extra: &[&str]) -> Launch {
        Launch {
            engine: Engine {
                program: "podman".into(),
            },
            endpoint: "iris".into(),
            image: "127.0.0.1:5000/serve@sha256:abc".into(),
            settings: Settings {
                cpus: Some(1.5),
                memory: Some("512m".into()),
                restart: None,
                gpus: Some(2),
                extra_args: Some(extra.iter().map(|s| s.to_string()).collect()),
            },
            ports: vec![8080, 8081],
            models: Some("/srv/models".into()),
            cache: None,
        }
    }

    #[test]
    fn run_arguments() {
        let a = launch(&[]).args("c1", Path::new("/state/etc"), 10);
        let s = a.join(" ");
        assert!(s.starts_with("run -d --name c1 "), "{s}");
        assert!(s.contains("--restart unless-stopped"), "{s}");
        assert!(s.contains("-v /state/etc:/etc/modelplane:ro"), "{s}");
        assert!(s.contains("-v /srv/models:/models:ro"), "{s}");
        assert!(s.contains("--cpus 1.5 --memory 512m"), "{s}");
        assert!(
            s.contains("--device nvidia.com/gpu=0 --device nvidia.com/gpu=1"),
            "{s}"
        );
        assert!(s.contains("-p 8080:8080 -p 8081:8081"), "{s}");
        assert!(
            s.ends_with("127.0.0.1:5000/serve@sha256:abc serve --config /etc/modelplane/config.json --drain-seconds 10"),
            "{s}"
        );
        assert!(!launch(&[]).overlaps());
        // On the host's network nothing is published and restarts overlap.
        let l = launch(&["--network", "host"]);
        let s = l.args("c1", Path::new("/e"), 10).join(" ");
        assert!(!s.contains("-p 8080"), "{s}");
        assert!(l.overlaps());
        assert!(host_network(&["--network=host".into()]));
        assert!(!host_network(&["--network".into(), "bridge".into()]));
    }

    #[test]
    fn docker_gets_gpus_and_no_exec_health_check() {
        let mut l = launch(&[]);
        l.engine.program = "/usr/bin/docker".into();
        let s = l.args("c", Path::new("/e"), 10).join(" ");
        assert!(s.contains("--gpus 2") && !s.contains("--health-cmd"), "{s}");
    }

    #[test]
    fn memory_sizes_and_references() {
        assert!(check_memory("512m").is_ok());
        assert!(check_memory("2G").is_ok());
        assert!(check_memory("1048576").is_ok());
        assert!(check_memory("lots").unwrap_err().contains("memory size"));
        assert!(check_memory("0m").is_err());
        assert_eq!(repository_of("h:5000/a/b:1.0"), "h:5000/a/b");
        assert_eq!(repository_of("h:5000/a/b@sha256:x"), "h:5000/a/b");
        assert_eq!(repository_of("h:5000/a/b"), "h:5000/a/b");
    }

    #[test]
    fn run_errors_say_what_to_do() {
        let e = explain_run_error("r/x@sha256:1", &[1, 2], "Error: initializing source docker://r/x: reading manifest sha256:1 in r/x: manifest unknown");
        assert!(e.contains("not in its registry"), "{e}");
        let e = explain_run_error(
            "i",
            &[8080, 8081],
            "Error: rootlessport listen tcp 0.0.0.0:8080: bind: address already in use",
        );
        assert!(e.contains("8080, 8081") && e.contains("port"), "{e}");
        let e = explain_run_error("i", &[], "unauthorized: authentication required");
        assert!(e.contains("podman login"), "{e}");
    }
}
