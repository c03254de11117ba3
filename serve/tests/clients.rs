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
    let script =
        std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/clients/oip_clients.py");
    let mut text = String::new();
    for which in ["triton", "kserve"] {
        let out = tokio::process::Command::new(&python)
            .arg(&script)
            .arg(which)
            .arg(s.http.to_string())
            .arg(s.grpc.to_string())
            .arg(fixtures())
            .output()
            .await
            .unwrap();
        let t = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{which}: {t}");
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
