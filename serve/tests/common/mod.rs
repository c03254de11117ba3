//! Shared set-up: a server over the fixture models, in process, on loopback ports.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use modelplane_serve::app::App;
use modelplane_serve::config::{ModelConfig, ServeConfig};
use modelplane_serve::server::{serve, Listeners};

pub const MODELS: &[&str] = &[
    "iris",
    "digits_mlp",
    "diabetes_linear",
    "digits_cnn",
    "two_io",
];

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/models")
}

pub fn reference(model: &str) -> serde_json::Value {
    serde_json::from_str(
        &std::fs::read_to_string(fixtures().join("reference").join(format!("{model}.json")))
            .unwrap(),
    )
    .unwrap()
}

pub fn config(repo: &str) -> ServeConfig {
    ServeConfig {
        http: "127.0.0.1:0".parse().unwrap(),
        grpc: Some("127.0.0.1:0".parse().unwrap()),
        repository: repo.to_string(),
        cache_dir: None,
        models: MODELS
            .iter()
            .map(|m| ModelConfig::named(*m, None))
            .collect(),
        endpoints: vec![],
        limits: Default::default(),
        auth: Default::default(),
        monitoring: Default::default(),
        tls: None,
        strict: false,
        reuse_port: false,
        site: None,
        shared: None,
    }
}

pub struct Running {
    pub app: Arc<App>,
    pub http: SocketAddr,
    pub grpc: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.http)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

pub async fn start(cfg: ServeConfig) -> Running {
    let l = Listeners::bind(cfg.http, cfg.grpc).await.unwrap();
    let http = l.http.local_addr().unwrap();
    let grpc = l.grpc.as_ref().unwrap().local_addr().unwrap();
    let app = App::start(cfg, None).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let a2 = app.clone();
    tokio::spawn(async move {
        let _ = serve(
            a2,
            l,
            async move {
                let _ = rx.await;
            },
            Duration::from_secs(5),
        )
        .await;
    });
    Running {
        app,
        http,
        grpc,
        stop: Some(tx),
    }
}

/// Compares two flat numeric arrays within a tolerance.
pub fn close(got: &[f64], want: &[f64], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let tol = 1e-4 * w.abs().max(1.0);
        assert!((g - w).abs() <= tol, "{what}[{i}]: got {g}, want {w}");
    }
}

pub fn as_f64s(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

/// Runs a Python script (a stock client, a reference) and returns whether it succeeded and
/// what it printed, stdout then stderr.
pub async fn python<S: AsRef<std::ffi::OsStr>>(python: &str, args: &[S]) -> (bool, String) {
    let out = tokio::process::Command::new(python)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("running {python}: {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Runs tritonclient and kserve's clients (`tests/clients/oip_clients.py`) against a server
/// and asserts that every one of them passed.
pub async fn oip_clients_pass(python: &str, http: SocketAddr, grpc: SocketAddr) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oip_clients.py");
    let mut text = String::new();
    for which in ["triton", "kserve"] {
        let (ok, t) = self::python(
            python,
            &[
                script.clone().into_os_string(),
                which.into(),
                http.to_string().into(),
                grpc.to_string().into(),
                fixtures().into_os_string(),
            ],
        )
        .await;
        assert!(ok, "{which}: {t}");
        text.push_str(&t);
    }
    for client in [
        "tritonclient.http: ok",
        "tritonclient.grpc: ok",
        "kserve v2 REST and gRPC clients: ok",
    ] {
        assert!(text.contains(client), "{text}");
    }
}
