//! tritonclient (HTTP and gRPC) and kserve's v2 clients, unmodified, against the server.
//!
//! Needs a Python with `tritonclient[http,grpc]`, `kserve` and `numpy`, named by
//! `MODELPLANE_CLIENTS_PYTHON` (`cargo xtask test` installs one); skipped otherwise.

use crate::common;

use common::*;

#[tokio::test]
async fn standard_oip_clients_work_unmodified() {
    let Ok(python) = std::env::var("MODELPLANE_CLIENTS_PYTHON") else {
        eprintln!("skipped: set MODELPLANE_CLIENTS_PYTHON to a Python with tritonclient and kserve (cargo xtask test does)");
        return;
    };
    let s = start(config(fixtures().join("repo").to_str().unwrap())).await;
    oip_clients_pass(&python, s.http, s.grpc).await;
}

/// Triton's statistics, model configuration and repository extensions and compressed
/// requests, driven by tritonclient (HTTP and gRPC, sync and aio) as Triton's example
/// clients use them, against Triton's `simple` model.
#[tokio::test]
async fn triton_extensions_through_tritonclient() {
    let Ok(python) = std::env::var("MODELPLANE_CLIENTS_PYTHON") else {
        eprintln!("skipped: set MODELPLANE_CLIENTS_PYTHON to a Python with tritonclient (cargo xtask test does)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), "t0ken\n").unwrap();
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models = ["iris", "simple", "unsupported"]
        .iter()
        .map(|m| modelplane_serve::config::ModelConfig::named(*m, None))
        .collect();
    cfg.auth.token_file = Some(dir.path().join("token").display().to_string());
    let s = start(cfg).await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clients/triton_extensions.py");
    for which in ["http", "grpc", "http_aio", "grpc_aio"] {
        let (ok, t) = common::python(
            &python,
            &[
                script.clone().into_os_string(),
                which.into(),
                s.http.to_string().into(),
                s.grpc.to_string().into(),
                "t0ken".into(),
            ],
        )
        .await;
        assert!(ok && t.contains(&format!("{which}: ok")), "{which}: {t}");
    }
    // The repository calls need the token: without it they are refused.
    let r = reqwest::Client::new()
        .post(s.url("/v2/repository/models/iris/unload"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}
