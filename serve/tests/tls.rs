//! REST and gRPC over TLS with a certificate from PEM files.

use crate::common;

use std::sync::Arc;

use common::*;
use modelplane_serve::config::TlsConfig;
use modelplane_serve::grpc::pb;
use rustls::pki_types::{CertificateDer, ServerName};

fn cert(
    dir: &std::path::Path,
) -> (
    std::path::PathBuf,
    std::path::PathBuf,
    CertificateDer<'static>,
) {
    let key = rcgen::KeyPair::generate().unwrap();
    let c = rcgen::CertificateParams::new(vec!["localhost".into()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let (cp, kp) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cp, c.pem()).unwrap();
    std::fs::write(&kp, key.serialize_pem()).unwrap();
    (cp, kp, c.der().clone())
}

#[tokio::test]
async fn rest_and_grpc_over_tls() {
    let td = tempfile::tempdir().unwrap();
    let (cert_file, key_file, der) = cert(td.path());
    let mut cfg = config(fixtures().join("repo").to_str().unwrap());
    cfg.models.retain(|m| m.name == "iris");
    cfg.tls = Some(TlsConfig {
        cert_file: cert_file.clone(),
        key_file,
    });
    let s = start(cfg).await;

    // REST with curl, trusting the certificate
    let url = format!("https://localhost:{}/v2/health/ready", s.http.port());
    let out = tokio::process::Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(&cert_file)
        .args([
            "--resolve",
            &format!("localhost:{}:127.0.0.1", s.http.port()),
            &url,
        ])
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "{\"ready\":true}");
    // plain HTTP to the TLS port gets no answer
    let plain = reqwest::Client::new()
        .get(format!("http://{}/v2/health/ready", s.http))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());

    // gRPC over TLS (h2 by ALPN)
    let mut roots = rustls::RootCertStore::empty();
    roots.add(der).unwrap();
    let mut tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    tls.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    let addr = s.grpc;
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let connector = connector.clone();
            async move {
                let sock = tokio::net::TcpStream::connect(addr).await?;
                let s = connector
                    .connect(ServerName::try_from("localhost").unwrap(), sock)
                    .await?;
                Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
            }
        }))
        .await
        .unwrap();
    let mut c = pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(channel);
    assert!(
        c.server_ready(pb::ServerReadyRequest {})
            .await
            .unwrap()
            .into_inner()
            .ready
    );
}

#[tokio::test]
async fn a_missing_key_is_a_clear_error() {
    let td = tempfile::tempdir().unwrap();
    let (cert_file, _, _) = cert(td.path());
    let e = modelplane_serve::tls::acceptor(&cert_file, &td.path().join("nope.pem"), &[b"h2"])
        .err()
        .unwrap();
    assert!(e.contains("tls key_file") && e.contains("nope.pem"), "{e}");
}
