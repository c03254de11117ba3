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
    super::skipped(
        test,
        super::Skip::Missing,
        &format!("{what} not found; `cargo xtask test` installs it (Debian packages podman, runc, docker-registry)"),
    );
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
    Some(start_registry(&bin, dir, free_port(), &auth))
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

/// A registry behind bearer-token auth, as Docker Hub, Harbor, ECR and ACR run it: the
/// registry (docker-registry's `token` auth) trusts tokens signed by a key whose certificate
/// it holds, and a token service on loopback issues them (ES256 JWTs) to `user` with
/// `password` over basic auth. The service is the test's own: a few lines of the Docker
/// token protocol, since no token server ships in Debian.
pub fn token_registry(test: &str, user: &'static str, password: &'static str) -> Option<Registry> {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{EcdsaKeyPair, ECDSA_P256_SHA256_FIXED_SIGNING};
    use base64::Engine as _;
    use rcgen::PublicKeyData as _;

    let Some(bin) = on_path("docker-registry") else {
        missing(test, "docker-registry");
        return None;
    };
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let signer = std::sync::Arc::new(
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap(),
    );
    let kp = rcgen::KeyPair::try_from(pkcs8.as_ref()).unwrap();
    let cert = rcgen::CertificateParams::new(vec!["modelplane-test-issuer".to_string()])
        .unwrap()
        .self_signed(&kp)
        .unwrap();
    // The key id docker-registry computes for a trusted key (libtrust): base32 of the first
    // 30 bytes of the SPKI's sha256, in groups of four.
    let kid = {
        use sha2::Digest;
        let h = sha2::Sha256::digest(kp.subject_public_key_info());
        let b32 = base32(&h[..30]);
        b32.as_bytes()
            .chunks(4)
            .map(|c| String::from_utf8_lossy(c).into_owned())
            .collect::<Vec<_>>()
            .join(":")
    };
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("issuer.pem"), cert.pem()).unwrap();

    // The token service.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let token_port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new().route(
                "/token",
                axum::routing::get(
                    move |headers: axum::http::HeaderMap,
                          axum::extract::Query(q): axum::extract::Query<
                        std::collections::HashMap<String, String>,
                    >| {
                        let signer = signer.clone();
                        let kid = kid.clone();
                        async move {
                            let expected = format!(
                                "Basic {}",
                                base64::engine::general_purpose::STANDARD
                                    .encode(format!("{user}:{password}"))
                            );
                            let given = headers
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("");
                            if given != expected {
                                return (
                                    axum::http::StatusCode::UNAUTHORIZED,
                                    "{\"details\":\"incorrect username or password\"}".to_string(),
                                );
                            }
                            // scope=repository:NAME:ACTIONS
                            let access: Vec<serde_json::Value> = q
                                .get("scope")
                                .map(|s| s.as_str())
                                .unwrap_or("")
                                .split(' ')
                                .filter_map(|s| {
                                    let mut p = s.splitn(3, ':');
                                    let (t, n, a) = (p.next()?, p.next()?, p.next()?);
                                    Some(serde_json::json!({"type": t, "name": n, "actions": a.split(',').collect::<Vec<_>>()}))
                                })
                                .collect();
                            let now = std::time::SystemTime::now()
                                .duration_since(std::time::UNIX_EPOCH)
                                .unwrap()
                                .as_secs();
                            let b64 = |b: &[u8]| {
                                base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
                            };
                            let header = serde_json::json!({"alg": "ES256", "typ": "JWT", "kid": kid});
                            let claims = serde_json::json!({
                                "iss": "modelplane-test-issuer", "sub": user, "aud": "modelplane-test",
                                "exp": now + 300, "nbf": now - 10, "iat": now,
                                "jti": format!("{now}-{}", rand_suffix()), "access": access,
                            });
                            let input = format!(
                                "{}.{}",
                                b64(header.to_string().as_bytes()),
                                b64(claims.to_string().as_bytes())
                            );
                            let sig = signer
                                .sign(&SystemRandom::new(), input.as_bytes())
                                .unwrap();
                            let token = format!("{input}.{}", b64(sig.as_ref()));
                            (
                                axum::http::StatusCode::OK,
                                serde_json::json!({"token": token, "access_token": token, "expires_in": 300}).to_string(),
                            )
                        }
                    },
                ),
            );
            let l = tokio::net::TcpListener::from_std(listener).unwrap();
            let _ = axum::serve(l, app).await;
        });
    });

    let auth = format!(
        "auth:\n  token:\n    realm: http://127.0.0.1:{token_port}/token\n    service: modelplane-test\n    issuer: modelplane-test-issuer\n    rootcertbundle: {}\n",
        dir.path().join("issuer.pem").display(),
    );
    Some(start_registry(&bin, dir, free_port(), &auth))
}

/// Starts docker-registry on `port` with filesystem storage in `dir` and the `auth` section
/// given (YAML, or empty), and waits until it listens.
fn start_registry(
    bin: &std::path::Path,
    dir: tempfile::TempDir,
    port: u16,
    auth: &str,
) -> Registry {
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
    r
}

fn rand_suffix() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(7);
    h.finish()
}

/// RFC 4648 base32 without padding.
fn base32(b: &[u8]) -> String {
    const A: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = String::new();
    let (mut buf, mut bits) = (0u32, 0u32);
    for &x in b {
        buf = (buf << 8) | u32::from(x);
        bits += 8;
        while bits >= 5 {
            out.push(A[((buf >> (bits - 5)) & 31) as usize] as char);
            bits -= 5;
        }
    }
    if bits > 0 {
        out.push(A[((buf << (5 - bits)) & 31) as usize] as char);
    }
    out
}

/// A destroy check: no container of the endpoint is left, running or not.
pub fn none_left(endpoint: &'static str) -> tfplugin::acctest::Check {
    super::check(move |_| {
        let left = containers_of(endpoint);
        if left.is_empty() {
            Ok(())
        } else {
            Err(format!(
                "containers of {endpoint} left after destroy: {left:?}"
            ))
        }
    })
}
