//! What the container-platform tests share: a real OCI registry on loopback (Debian's
//! `docker-registry`, CNCF distribution), podman, and the bundled image built from this
//! checkout's `modelplane-serve`. Missing tools skip a test, and fail it in CI.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::emulators::free_port;

pub struct Registry {
    child: Child,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl Registry {
    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn missing(test: &str, what: &str) {
    let msg = format!("{test}: {what} not found; `.ci/run` installs it (Debian packages podman, runc, docker-registry)");
    if std::env::var_os("CI").is_some() {
        panic!("{msg}");
    }
    eprintln!("{msg}; skipped");
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// A registry on a free loopback port; with `user`, basic auth (htpasswd, bcrypt) for that
/// user and password.
pub fn registry(test: &str, user: Option<(&str, &str)>) -> Option<Registry> {
    let Some(bin) = on_path("docker-registry") else {
        missing(test, "docker-registry");
        return None;
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let port = free_port();
    let auth = match user {
        Some((u, p)) => {
            let hash = bcrypt::hash(p, 5).expect("bcrypt");
            std::fs::write(dir.path().join("htpasswd"), format!("{u}:{hash}\n")).unwrap();
            format!(
                "auth:\n  htpasswd:\n    realm: modelplane-test\n    path: {}\n",
                dir.path().join("htpasswd").display()
            )
        }
        None => String::new(),
    };
    let config = format!(
        "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: 127.0.0.1:{port}\n{auth}",
        dir.path().join("data").display()
    );
    std::fs::write(dir.path().join("config.yml"), config).unwrap();
    let log = std::fs::File::create(dir.path().join("log")).unwrap();
    let child = Command::new(bin)
        .arg("serve")
        .arg(dir.path().join("config.yml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("docker-registry");
    let r = Registry { child, port, dir };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(20) {
            panic!("docker-registry did not start: {}", r.log());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Some(r)
}

/// Whether podman is here. This sandbox's quirks (no ulimit changes, runc) go into a
/// containers.conf for the tests only, unless `CONTAINERS_CONF` names one already.
pub fn podman(test: &str) -> bool {
    if on_path("podman").is_none() {
        missing(test, "podman");
        return false;
    }
    static CONF: OnceLock<()> = OnceLock::new();
    CONF.get_or_init(|| {
        if std::env::var_os("CONTAINERS_CONF").is_none() {
            let p = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("containers.conf");
            std::fs::write(
                &p,
                "[containers]\ndefault_ulimits = []\n\n[engine]\nruntime = \"runc\"\n",
            )
            .unwrap();
            std::env::set_var("CONTAINERS_CONF", &p);
        }
    });
    true
}

/// `run` arguments the tests' endpoints need here: the host's network (this sandbox has no
/// container networking) and a plain-HTTP loopback registry.
pub const SANDBOX_ARGS: &str = r#"["--network", "host", "--tls-verify=false"]"#;

/// The bundled image, built once per test process from this checkout's `modelplane-serve`
/// (a debug build: larger than a release image, same contents otherwise).
pub fn image_layout() -> PathBuf {
    static LAYOUT: OnceLock<PathBuf> = OnceLock::new();
    LAYOUT
        .get_or_init(|| {
            let target = PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-modelplane"))
                .parent()
                .expect("target dir")
                .to_path_buf();
            let bin = target.join("modelplane-serve");
            if !bin.is_file() {
                let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
                let ok = Command::new(cargo)
                    .args([
                        "build",
                        "-p",
                        "modelplane-serve",
                        "--bin",
                        "modelplane-serve",
                    ])
                    .current_dir(super::repo())
                    .status()
                    .map(|s| s.success())
                    .unwrap_or(false);
                assert!(ok && bin.is_file(), "cannot build {}", bin.display());
            }
            let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("image-{}", std::process::id()));
            modelplane_serve::image::build(
                &modelplane_serve::image::Spec {
                    binary: bin,
                    version: modelplane_provider::VERSION.into(),
                    revision: None,
                    source: "https://github.com/modelplane/modelplane".into(),
                    created: None,
                    tag: "test".into(),
                    compression: 1,
                },
                &out,
            )
            .expect("image build");
            out
        })
        .clone()
}

/// The containers podman has for an endpoint (by the provider's label), running or not.
pub fn containers_of(endpoint: &str) -> Vec<String> {
    let out = Command::new("podman")
        .args([
            "ps",
            "-a",
            "-q",
            "--no-trunc",
            "--filter",
            &format!("label=io.modelplane.endpoint={endpoint}"),
        ])
        .output()
        .expect("podman ps");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .filter(|l| !l.is_empty())
        .collect()
}

/// `podman inspect --format FORMAT ID`.
pub fn inspect(id: &str, format: &str) -> String {
    let out = Command::new("podman")
        .args(["inspect", "--format", format, id])
        .output()
        .expect("podman inspect");
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Removes an endpoint's containers (clean-up after a failed test).
pub fn remove_all(endpoint: &str) {
    for c in containers_of(endpoint) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &c])
            .output();
    }
}
