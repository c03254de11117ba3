//! go-plugin's side of the handshake and the gRPC server Terraform talks to.
//!
//! - The magic cookie tells a Terraform launch from a person running the binary by hand.
//! - AutoMTLS: Terraform passes its client certificate (self-signed ECDSA P-521) in
//!   `PLUGIN_CLIENT_CERT`; we answer with a fresh self-signed server certificate for
//!   `localhost` in the handshake line and accept exactly Terraform's certificate (pinned
//!   DER, handshake signatures verified with aws-lc-rs). Client authentication is mandatory.
//! - A unix socket (in `PLUGIN_UNIX_SOCKET_DIR` when set), falling back to TCP on loopback
//!   within `PLUGIN_MIN_PORT..=PLUGIN_MAX_PORT`.
//! - `plugin.GRPCController/Shutdown`, `plugin.GRPCStdio/StreamStdio` and gRPC health for
//!   service `plugin` are served beside `tfplugin6.Provider`; message limits are 256 MiB.
//! - SIGINT is ignored (Terraform calls StopProvider instead).
//! - `--debug` serves without TLS and prints `TF_REATTACH_PROVIDERS` for a debugger session.

use std::io::Write;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use base64::Engine;
use rustls::client::danger::HandshakeSignatureValid;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, UnixTime};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{DigitallySignedStruct, DistinguishedName, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::framework::Provider;
use crate::server::ProviderServer;
use crate::{plugin_proto, proto};

/// The magic cookie go-plugin and Terraform agree on.
pub const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
pub const MAGIC_COOKIE_VALUE: &str =
    "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";
/// go-plugin's core protocol version and our application protocol version.
pub const CORE_PROTOCOL_VERSION: u32 = 1;
pub const PROTOCOL_VERSION: u32 = 6;
/// Message size limit, as terraform-plugin-go sets it.
pub const MAX_MESSAGE_SIZE: usize = 256 << 20;

/// How the provider presents itself.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    /// Full provider address, e.g. `registry.terraform.io/modelplane/modelplane` (used by `--debug`).
    pub address: String,
    /// The binary's name, for messages.
    pub binary_name: String,
}

/// An error that stops the plugin before it serves.
#[derive(Debug, thiserror::Error)]
pub enum PluginError {
    #[error("{0}")]
    NotLaunchedByTerraform(String),
    #[error("Terraform offered plugin protocol versions {offered:?}; this provider speaks only version {PROTOCOL_VERSION}. Use Terraform 1.0 or later (or OpenTofu).")]
    UnsupportedProtocol { offered: String },
    #[error("PLUGIN_CLIENT_CERT is not a PEM certificate: {0}")]
    BadClientCert(String),
    #[error("creating the server certificate: {0}")]
    ServerCert(String),
    #[error("TLS setup: {0}")]
    Tls(#[from] rustls::Error),
    #[error("listening for Terraform: {0}")]
    Listen(#[source] std::io::Error),
    #[error("the provider's schemas break Terraform's rules:\n  {}", .0.join("\n  "))]
    Schema(Vec<String>),
    #[error("serving gRPC: {0}")]
    Serve(#[from] tonic::transport::Error),
}

/// Entry point for a provider binary's `main`: checks how it was started, serves, and
/// returns the process exit code.
pub fn run(provider: Arc<dyn Provider>, opts: ServeOptions, debug: bool) -> i32 {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("{}: cannot start the async runtime: {e}", opts.binary_name);
            return 1;
        }
    };
    let res = rt.block_on(async {
        if debug {
            serve_debug(provider, &opts).await
        } else {
            serve(provider, &opts).await
        }
    });
    match res {
        Ok(()) => 0,
        Err(PluginError::NotLaunchedByTerraform(msg)) => {
            eprintln!("{msg}");
            1
        }
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("{}: {e}", opts.binary_name);
            1
        }
    }
}

fn not_by_terraform(opts: &ServeOptions) -> PluginError {
    PluginError::NotLaunchedByTerraform(format!(
        "{bin} is a Terraform provider plugin: Terraform or OpenTofu starts it, you don't.\n\
         \n\
         Declare it in your configuration and let Terraform install and run it:\n\
         \n\
         \x20 terraform {{\n\
         \x20   required_providers {{\n\
         \x20     {local} = {{ source = \"{source}\" }}\n\
         \x20   }}\n\
         \x20 }}\n\
         \n\
         then `terraform init` and `terraform plan`. To attach a debugger, run `{bin} --debug`.",
        bin = opts.binary_name,
        local = opts.address.rsplit('/').next().unwrap_or("provider"),
        source = opts
            .address
            .split('/')
            .skip(1)
            .collect::<Vec<_>>()
            .join("/"),
    ))
}

/// Checks the environment Terraform sets when it launches a plugin.
pub fn check_launch(opts: &ServeOptions) -> Result<(), PluginError> {
    if std::env::var(MAGIC_COOKIE_KEY).ok().as_deref() != Some(MAGIC_COOKIE_VALUE) {
        return Err(not_by_terraform(opts));
    }
    if let Ok(offered) = std::env::var("PLUGIN_PROTOCOL_VERSIONS") {
        if !offered
            .split(',')
            .any(|v| v.trim() == PROTOCOL_VERSION.to_string())
        {
            return Err(PluginError::UnsupportedProtocol { offered });
        }
    }
    Ok(())
}

/// Generates the self-signed server certificate for `localhost`, returning (cert DER, key DER).
pub fn server_certificate() -> Result<(CertificateDer<'static>, PrivateKeyDer<'static>), PluginError>
{
    use rcgen::{
        BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair,
        KeyUsagePurpose,
    };
    let key = KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256)
        .map_err(|e| PluginError::ServerCert(e.to_string()))?;
    let mut params = CertificateParams::new(vec!["localhost".to_string()])
        .map_err(|e| PluginError::ServerCert(e.to_string()))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "localhost");
    params
        .distinguished_name
        .push(rcgen::DnType::OrganizationName, "tfplugin");
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::DigitalSignature,
        KeyUsagePurpose::KeyEncipherment,
        KeyUsagePurpose::KeyCertSign,
    ];
    params.extended_key_usages = vec![
        ExtendedKeyUsagePurpose::ServerAuth,
        ExtendedKeyUsagePurpose::ClientAuth,
    ];
    let now = time::OffsetDateTime::now_utc();
    params.not_before = now - time::Duration::seconds(30);
    params.not_after = now + time::Duration::hours(262_980);
    let cert = params
        .self_signed(&key)
        .map_err(|e| PluginError::ServerCert(e.to_string()))?;
    Ok((
        cert.der().clone(),
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
    ))
}

/// Accepts exactly one client certificate (Terraform's), byte for byte.
#[derive(Debug)]
pub struct PinnedClientCert {
    pinned: CertificateDer<'static>,
    provider: Arc<CryptoProvider>,
}

impl PinnedClientCert {
    pub fn new(pinned: CertificateDer<'static>) -> Self {
        PinnedClientCert {
            pinned,
            provider: Arc::new(rustls::crypto::aws_lc_rs::default_provider()),
        }
    }
}

impl ClientCertVerifier for PinnedClientCert {
    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }
    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        if end_entity.as_ref() == self.pinned.as_ref() {
            Ok(ClientCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::ApplicationVerificationFailure,
            ))
        }
    }
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
    fn client_auth_mandatory(&self) -> bool {
        true
    }
}

/// The TLS configuration for AutoMTLS: our certificate, Terraform's pinned, ALPN h2.
pub fn tls_config(
    client_cert_pem: &str,
    server_cert: CertificateDer<'static>,
    server_key: PrivateKeyDer<'static>,
) -> Result<rustls::ServerConfig, PluginError> {
    let client = CertificateDer::from_pem_slice(client_cert_pem.as_bytes())
        .map_err(|e| PluginError::BadClientCert(e.to_string()))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_client_cert_verifier(Arc::new(PinnedClientCert::new(client)))
        .with_single_cert(vec![server_cert], server_key)?;
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    Ok(cfg)
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// One accepted connection, plain or TLS, over a unix socket or TCP.
pub struct Conn(Box<dyn Io>);

impl Connected for Conn {
    type ConnectInfo = ();
    fn connect_info(&self) -> Self::ConnectInfo {}
}
impl AsyncRead for Conn {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}
impl AsyncWrite for Conn {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.0.is_write_vectored()
    }
}

enum Listener {
    Unix(tokio::net::UnixListener, PathBuf),
    Tcp(tokio::net::TcpListener),
}

impl Listener {
    /// Network and address as the handshake line names them.
    fn describe(&self) -> (&'static str, String) {
        match self {
            Listener::Unix(_, p) => ("unix", p.display().to_string()),
            Listener::Tcp(l) => (
                "tcp",
                l.local_addr().map(|a| a.to_string()).unwrap_or_default(),
            ),
        }
    }
    async fn accept(&self) -> std::io::Result<Box<dyn Io>> {
        Ok(match self {
            Listener::Unix(l, _) => Box::new(l.accept().await?.0),
            Listener::Tcp(l) => Box::new(l.accept().await?.0),
        })
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, p) = self {
            let _ = std::fs::remove_file(p);
        }
    }
}

fn listen() -> Result<Listener, PluginError> {
    let dir = std::env::var_os("PLUGIN_UNIX_SOCKET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let path = dir.join(format!("plugin{}-{nanos:x}", std::process::id()));
    match tokio::net::UnixListener::bind(&path) {
        Ok(l) => return Ok(Listener::Unix(l, path)),
        Err(e) => {
            tracing::warn!(error = %e, path = %path.display(), "cannot listen on a unix socket; falling back to TCP")
        }
    }
    let min: u16 = std::env::var("PLUGIN_MIN_PORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10000);
    let max: u16 = std::env::var("PLUGIN_MAX_PORT")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(25000);
    let mut last = None;
    for port in min..=max {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(l) => {
                l.set_nonblocking(true).map_err(PluginError::Listen)?;
                return tokio::net::TcpListener::from_std(l)
                    .map(Listener::Tcp)
                    .map_err(PluginError::Listen);
            }
            Err(e) => last = Some(e),
        }
    }
    Err(PluginError::Listen(last.unwrap_or_else(|| {
        std::io::Error::other("no port in PLUGIN_MIN_PORT..PLUGIN_MAX_PORT")
    })))
}

/// Accepts connections (completing TLS where configured) into a stream tonic serves.
fn incoming(
    listener: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> ReceiverStream<std::io::Result<Conn>> {
    let (tx, rx) = tokio::sync::mpsc::channel(16);
    tokio::spawn(async move {
        loop {
            let io = match listener.accept().await {
                Ok(io) => io,
                Err(e) => {
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let conn_tx = tx.clone();
            let tls = tls.clone();
            tokio::spawn(async move {
                let conn = match tls {
                    None => Conn(io),
                    Some(acc) => {
                        match tokio::time::timeout(Duration::from_secs(30), acc.accept(io)).await {
                            Ok(Ok(s)) => Conn(Box::new(s)),
                            Ok(Err(e)) => {
                                tracing::warn!(error = %e, "TLS handshake with the plugin client failed");
                                return;
                            }
                            Err(_) => {
                                tracing::warn!("TLS handshake with the plugin client timed out");
                                return;
                            }
                        }
                    }
                };
                let _ = conn_tx.send(Ok(conn)).await;
            });
            if tx.is_closed() {
                break;
            }
        }
    });
    ReceiverStream::new(rx)
}

struct Controller(Arc<Notify>);

#[tonic::async_trait]
impl plugin_proto::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _r: tonic::Request<plugin_proto::Empty>,
    ) -> Result<tonic::Response<plugin_proto::Empty>, tonic::Status> {
        tracing::debug!("plugin client asked for shutdown");
        self.0.notify_one();
        Ok(tonic::Response::new(plugin_proto::Empty {}))
    }
}

struct Stdio;

#[tonic::async_trait]
impl plugin_proto::grpc_stdio_server::GrpcStdio for Stdio {
    type StreamStdioStream =
        futures::stream::Pending<Result<plugin_proto::StdioData, tonic::Status>>;
    async fn stream_stdio(
        &self,
        _r: tonic::Request<()>,
    ) -> Result<tonic::Response<Self::StreamStdioStream>, tonic::Status> {
        // Logs go to the real stderr as hclog JSON; nothing is relayed here.
        Ok(tonic::Response::new(futures::stream::pending()))
    }
}

async fn serve_on(
    server: ProviderServer,
    listener: Listener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    shutdown: Arc<Notify>,
) -> Result<(), PluginError> {
    let (health, health_svc) = tonic_health::server::health_reporter();
    health
        .set_service_status("plugin", tonic_health::ServingStatus::Serving)
        .await;
    let provider_svc = proto::provider_server::ProviderServer::new(server)
        .max_decoding_message_size(MAX_MESSAGE_SIZE)
        .max_encoding_message_size(MAX_MESSAGE_SIZE);
    let stream = incoming(listener, tls);
    tonic::transport::Server::builder()
        .add_service(provider_svc)
        .add_service(
            plugin_proto::grpc_controller_server::GrpcControllerServer::new(Controller(
                shutdown.clone(),
            )),
        )
        .add_service(plugin_proto::grpc_stdio_server::GrpcStdioServer::new(Stdio))
        .add_service(health_svc)
        .serve_with_incoming_shutdown(stream, async move { shutdown.notified().await })
        .await?;
    Ok(())
}

fn build_server(provider: Arc<dyn Provider>) -> Result<ProviderServer, PluginError> {
    ProviderServer::new(provider).map_err(PluginError::Schema)
}

/// Serves as Terraform launched us: handshake line on stdout, then gRPC until shutdown.
pub async fn serve(provider: Arc<dyn Provider>, opts: &ServeOptions) -> Result<(), PluginError> {
    check_launch(opts)?;
    crate::logging::init("provider");
    let server = build_server(provider)?;
    let (tls, cert_b64) = match std::env::var("PLUGIN_CLIENT_CERT") {
        Ok(pem) if !pem.trim().is_empty() => {
            let (cert, key) = server_certificate()?;
            let b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.as_ref());
            let cfg = tls_config(&pem, cert, key)?;
            (Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))), b64)
        }
        _ => {
            tracing::warn!("PLUGIN_CLIENT_CERT is not set: serving without TLS");
            (None, String::new())
        }
    };
    let listener = listen()?;
    let (network, addr) = listener.describe();
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(
            out,
            "{CORE_PROTOCOL_VERSION}|{PROTOCOL_VERSION}|{network}|{addr}|grpc|{cert_b64}"
        );
        let _ = out.flush();
    }
    tracing::debug!(network, address = %addr, "plugin serving");
    let shutdown = Arc::new(Notify::new());
    // Terraform forwards Ctrl-C as StopProvider; the signal itself must not kill us.
    tokio::spawn(async {
        while tokio::signal::ctrl_c().await.is_ok() {
            tracing::debug!("ignoring SIGINT; Terraform stops providers through StopProvider");
        }
    });
    serve_on(server, listener, tls, shutdown).await
}

/// Serves for a debugger: no TLS, prints `TF_REATTACH_PROVIDERS`, stops on Ctrl-C.
pub async fn serve_debug(
    provider: Arc<dyn Provider>,
    opts: &ServeOptions,
) -> Result<(), PluginError> {
    crate::logging::init("provider");
    let server = build_server(provider)?;
    let listener = listen()?;
    let (network, addr) = listener.describe();
    let reattach = serde_json::json!({
        opts.address.clone(): {
            "Protocol": "grpc",
            "ProtocolVersion": PROTOCOL_VERSION,
            "Pid": std::process::id(),
            "Test": true,
            "Addr": { "Network": network, "String": addr },
        }
    });
    println!(
        "Provider started. To attach Terraform CLI, set the TF_REATTACH_PROVIDERS environment variable with the following:\n\n\
         \tTF_REATTACH_PROVIDERS='{reattach}'\n\nStop the provider with Ctrl-C."
    );
    let _ = std::io::stdout().flush();
    let shutdown = Arc::new(Notify::new());
    let s2 = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        s2.notify_one();
    });
    serve_on(server, listener, None, shutdown).await
}
