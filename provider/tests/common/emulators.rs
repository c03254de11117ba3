//! Real storage emulators on loopback for the object-store tests: moto (S3) and Azurite
//! (Blob). Each test starts its own and the guard stops it. `cargo xtask test` installs both
//! and names them in `MODELPLANE_MOTO_SERVER` and `MODELPLANE_AZURITE_BLOB`; elsewhere they are
//! looked for in `.tools/` and on PATH. Missing emulators skip a test, and fail it in CI.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Azurite's well-known development account and key (public, documented by Microsoft).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
/// The AWS profile the tests' shared credentials file holds (dummy keys moto accepts).
pub const AWS_PROFILE: &str = "moto";

pub struct Emulator {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl Emulator {
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn find(env: &str, tools: &str, name: &str) -> Option<PathBuf> {
    if let Some(p) = std::env::var_os(env)
        .map(PathBuf::from)
        .filter(|p| p.is_file())
    {
        return Some(p);
    }
    let local = super::repo().join(".tools").join(tools);
    if local.is_file() {
        return Some(local);
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn missing(test: &str, what: &str) -> Option<Emulator> {
    super::skipped(
        test,
        super::Skip::Missing,
        &format!("{what} not found; `cargo xtask test` installs it"),
    );
    None
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn start(mut cmd: Command, port: u16, what: &str) -> Emulator {
    let dir = tempfile::tempdir().expect("temp dir");
    let log = std::fs::File::create(dir.path().join("log")).expect("log");
    let child = cmd
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {what}: {e}"));
    let em = Emulator {
        child,
        port,
        _dir: dir,
    };
    let t0 = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if t0.elapsed() > Duration::from_secs(30) {
            let log = std::fs::read_to_string(em._dir.path().join("log")).unwrap_or_default();
            panic!("{what} did not start on port {port}: {log}");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    em
}

/// Credentials for moto in a shared credentials file, named by profile: the provider and the
/// servers it starts find them through the AWS chain like any user's. No key is left in the
/// environment, and instance metadata is not probed.
pub fn aws_profile_env() {
    static DONE: OnceLock<()> = OnceLock::new();
    DONE.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("aws");
        std::fs::create_dir_all(&dir).unwrap();
        let creds = dir.join("credentials");
        let config = dir.join("config");
        std::fs::write(
            &creds,
            format!(
                "[{AWS_PROFILE}]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
            ),
        )
        .unwrap();
        std::fs::write(
            &config,
            format!("[profile {AWS_PROFILE}]\nregion = us-east-1\n"),
        )
        .unwrap();
        for k in [
            "AWS_ACCESS_KEY_ID",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_SESSION_TOKEN",
            "AWS_PROFILE",
            "AWS_ENDPOINT_URL",
            "AZURE_STORAGE_KEY",
            "AZURE_STORAGE_CONNECTION_STRING",
        ] {
            std::env::remove_var(k);
        }
        std::env::set_var("AWS_SHARED_CREDENTIALS_FILE", &creds);
        std::env::set_var("AWS_CONFIG_FILE", &config);
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    });
}

/// A moto server (S3) on a free loopback port.
pub fn moto(test: &str) -> Option<Emulator> {
    let Some(bin) = find(
        "MODELPLANE_MOTO_SERVER",
        "moto-venv/bin/moto_server",
        "moto_server",
    ) else {
        return missing(test, "moto_server (pip install 'moto[server]')");
    };
    aws_profile_env();
    let port = free_port();
    let mut c = Command::new(bin);
    c.args(["-H", "127.0.0.1", "-p", &port.to_string()])
        // IAM role policies name AWS-managed policies (the EKS roles); moto has them on request.
        .env("MOTO_IAM_LOAD_MANAGED_POLICIES", "true");
    Some(start(c, port, "moto_server"))
}

/// Azurite's Blob service on a free loopback port, in memory.
pub fn azurite(test: &str) -> Option<Emulator> {
    let Some(bin) = find(
        "MODELPLANE_AZURITE_BLOB",
        "azurite/node_modules/.bin/azurite-blob",
        "azurite-blob",
    ) else {
        return missing(test, "azurite-blob (npm install azurite)");
    };
    aws_profile_env();
    let port = free_port();
    let mut c = Command::new(bin);
    c.args([
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        &port.to_string(),
        "--inMemoryPersistence",
        "--disableTelemetry",
        "--skipApiVersionCheck",
        "--loose",
    ]);
    Some(start(c, port, "azurite-blob"))
}
