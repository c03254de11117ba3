//! Remote variants: a share of an endpoint's traffic served by another Open Inference
//! Protocol server (another site's Modelplane endpoint, Triton, KServe), over REST (JSON) or
//! gRPC, with a bearer token, TLS with a CA, a timeout and a circuit breaker.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::config::RemoteConfig;
use crate::error::ServeError;
use crate::grpc::pb;
use crate::tensor::{self, Datatype, NamedTensor};

/// The state of a remote's circuit, as the `modelplane_remote_circuit_state` gauge shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Circuit {
    Closed = 0,
    Open = 1,
    HalfOpen = 2,
}

/// Opens after `threshold` consecutive failures; after `probe`, lets one request through
/// (half-open): its success closes the circuit, its failure opens it again.
pub struct Breaker {
    threshold: u32,
    probe: Duration,
    failures: AtomicU32,
    /// When the circuit opened, in ms since `epoch`; 0 when closed.
    opened_at: AtomicU64,
    /// A probe is in flight (half-open).
    probing: AtomicU32,
    epoch: Instant,
}

impl Breaker {
    pub fn new(threshold: u32, probe: Duration) -> Breaker {
        Breaker {
            threshold: threshold.max(1),
            probe,
            failures: AtomicU32::new(0),
            opened_at: AtomicU64::new(0),
            probing: AtomicU32::new(0),
            epoch: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    pub fn state(&self) -> Circuit {
        let opened = self.opened_at.load(Ordering::Acquire);
        if opened == 0 {
            Circuit::Closed
        } else if self.now_ms().saturating_sub(opened) >= self.probe.as_millis() as u64 {
            Circuit::HalfOpen
        } else {
            Circuit::Open
        }
    }

    /// Whether a request may go to the remote now: always when closed; when the probe time
    /// has passed, one request at a time.
    pub fn admit(&self) -> bool {
        match self.state() {
            Circuit::Closed => true,
            Circuit::Open => false,
            Circuit::HalfOpen => self
                .probing
                .compare_exchange(0, 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok(),
        }
    }

    pub fn success(&self) {
        self.failures.store(0, Ordering::Release);
        self.opened_at.store(0, Ordering::Release);
        self.probing.store(0, Ordering::Release);
    }

    pub fn failure(&self) {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let was_probe = self.probing.swap(0, Ordering::AcqRel) == 1;
        if n >= self.threshold || was_probe {
            self.opened_at.store(self.now_ms(), Ordering::Release);
        }
    }
}

enum Client {
    Rest { http: reqwest::Client, base: String },
    Grpc(pb::grpc_inference_service_client::GrpcInferenceServiceClient<tonic::transport::Channel>),
}

/// A remote model: where it is, how to reach it, and its circuit.
pub struct Remote {
    pub model: String,
    pub version: Option<String>,
    /// The `site` label of its metrics.
    pub site: String,
    pub url: String,
    pub fallback: bool,
    pub breaker: Breaker,
    timeout: Duration,
    token: Option<String>,
    client: Client,
    /// The remote's model metadata, when it answered at load.
    pub metadata: Option<Value>,
}

/// What a remote answered.
pub struct Answer {
    pub model_version: String,
    pub outputs: Vec<NamedTensor>,
}

fn site_of(url: &url::Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_string(),
    }
}

impl Remote {
    /// Connects (lazily) to the remote of `cfg`; `default_timeout` applies when the remote
    /// sets none. Asks for the model's metadata, without failing when the remote is down.
    pub async fn connect(
        model: &str,
        version: Option<&str>,
        cfg: &RemoteConfig,
        default_timeout: Duration,
    ) -> Result<Remote, String> {
        cfg.check(model)?;
        let url = url::Url::parse(&cfg.url).map_err(|e| format!("{}: {e}", cfg.url))?;
        let token = cfg.token()?;
        let ca = match &cfg.ca_file {
            Some(p) => {
                Some(std::fs::read(p).map_err(|e| format!("remote.ca_file {}: {e}", p.display()))?)
            }
            None => None,
        };
        let timeout = cfg
            .timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(default_timeout);
        let tls = matches!(url.scheme(), "https" | "grpcs");
        let host = url.host_str().unwrap_or_default();
        let port = url.port().unwrap_or(if tls { 443 } else { 80 });
        let client = match url.scheme() {
            "http" | "https" => {
                let mut b = reqwest::Client::builder()
                    .timeout(timeout)
                    .pool_idle_timeout(Duration::from_secs(60))
                    .tcp_nodelay(true)
                    .no_proxy();
                if tls {
                    b = b.use_preconfigured_tls(client_tls(ca.as_deref())?);
                }
                Client::Rest {
                    http: b.build().map_err(|e| format!("remote {}: {e}", cfg.url))?,
                    base: format!(
                        "{}://{host}:{port}{}",
                        url.scheme(),
                        url.path().trim_end_matches('/')
                    ),
                }
            }
            _ => {
                let scheme = if tls { "https" } else { "http" };
                let mut ep =
                    tonic::transport::Endpoint::from_shared(format!("{scheme}://{host}:{port}"))
                        .map_err(|e| format!("remote {}: {e}", cfg.url))?
                        .timeout(timeout)
                        .connect_timeout(timeout.min(Duration::from_secs(5)))
                        .tcp_nodelay(true);
                if tls {
                    let mut t = tonic::transport::ClientTlsConfig::new()
                        .domain_name(host)
                        .with_native_roots();
                    if let Some(pem) = &ca {
                        t = t.ca_certificate(tonic::transport::Certificate::from_pem(pem));
                    }
                    ep = ep
                        .tls_config(t)
                        .map_err(|e| format!("remote {}: {e}", cfg.url))?;
                }
                Client::Grpc(
                    pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(
                        ep.connect_lazy(),
                    )
                    .max_decoding_message_size(usize::MAX),
                )
            }
        };
        let mut r = Remote {
            model: model.to_string(),
            version: version.map(String::from),
            site: cfg.site.clone().unwrap_or_else(|| site_of(&url)),
            url: cfg.url.clone(),
            fallback: cfg.fallback,
            breaker: Breaker::new(
                cfg.breaker_failures,
                Duration::from_millis(cfg.breaker_probe_ms),
            ),
            timeout,
            token,
            client,
            metadata: None,
        };
        r.metadata = r.fetch_metadata().await.ok();
        Ok(r)
    }

    fn model_path(&self) -> String {
        match &self.version {
            Some(v) => format!("/v2/models/{}/versions/{v}", self.model),
            None => format!("/v2/models/{}", self.model),
        }
    }

    /// The remote model's metadata (`GET /v2/models/NAME`), within two seconds.
    pub async fn fetch_metadata(&self) -> Result<Value, String> {
        let Client::Rest { http, base } = &self.client else {
            let Client::Grpc(c) = &self.client else {
                unreachable!()
            };
            let mut req = tonic::Request::new(pb::ModelMetadataRequest {
                name: self.model.clone(),
                version: self.version.clone().unwrap_or_default(),
            });
            req.set_timeout(Duration::from_secs(2));
            self.authorize_grpc(&mut req);
            let m = c
                .clone()
                .model_metadata(req)
                .await
                .map_err(|e| e.message().to_string())?
                .into_inner();
            let t = |ts: &[pb::model_metadata_response::TensorMetadata]| -> Vec<Value> {
                ts.iter()
                    .map(|t| json!({"name": t.name, "datatype": t.datatype, "shape": t.shape}))
                    .collect()
            };
            return Ok(json!({
                "name": m.name, "versions": m.versions, "platform": m.platform,
                "inputs": t(&m.inputs), "outputs": t(&m.outputs),
            }));
        };
        let mut r = http
            .get(format!("{base}{}", self.model_path()))
            .timeout(Duration::from_secs(2));
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        let resp = r.send().await.map_err(|e| e.to_string())?;
        if !resp.status().is_success() {
            return Err(format!("HTTP {}", resp.status()));
        }
        resp.json().await.map_err(|e| e.to_string())
    }

    fn authorize_grpc<T>(&self, req: &mut tonic::Request<T>) {
        if let Some(t) = &self.token {
            if let Ok(v) = format!("Bearer {t}").parse() {
                req.metadata_mut().insert("authorization", v);
            }
        }
    }

    /// Whether an error is the remote's fault (counted by the breaker, and worth a fallback)
    /// rather than the request's.
    pub fn is_remote_fault(e: &ServeError) -> bool {
        matches!(
            e,
            ServeError::BadGateway(_) | ServeError::Timeout(_) | ServeError::Unavailable(_)
        )
    }

    /// Sends one request; errors name the variant and the remote.
    pub async fn infer(
        &self,
        variant: &str,
        id: Option<&str>,
        inputs: &[NamedTensor],
        outputs: Option<&[String]>,
    ) -> Result<Answer, ServeError> {
        if !self.breaker.admit() {
            return Err(ServeError::BadGateway(format!(
                "variant {variant}: the circuit to {} is open after repeated failures; it is probed again every {} ms",
                self.url,
                self.breaker.probe.as_millis()
            )));
        }
        let r = match &self.client {
            Client::Rest { http, base } => {
                self.infer_rest(http, base, variant, id, inputs, outputs)
                    .await
            }
            Client::Grpc(c) => self.infer_grpc(c, variant, id, inputs, outputs).await,
        };
        match &r {
            Ok(_) => self.breaker.success(),
            Err(e) if Remote::is_remote_fault(e) => self.breaker.failure(),
            // The request's own fault says nothing about the remote's health.
            Err(_) => self.breaker.success(),
        }
        r
    }

    async fn infer_rest(
        &self,
        http: &reqwest::Client,
        base: &str,
        variant: &str,
        id: Option<&str>,
        inputs: &[NamedTensor],
        outputs: Option<&[String]>,
    ) -> Result<Answer, ServeError> {
        let mut body = json!({
            "inputs": inputs.iter().map(|t| json!({
                "name": t.name,
                "shape": t.shape_i64(),
                "datatype": t.datatype().name(),
                "data": tensor::to_json(&t.tensor),
            })).collect::<Vec<_>>(),
        });
        if let Some(id) = id {
            body["id"] = json!(id);
        }
        if let Some(o) = outputs {
            body["outputs"] = json!(o.iter().map(|n| json!({"name": n})).collect::<Vec<_>>());
        }
        let mut r = http
            .post(format!("{base}{}/infer", self.model_path()))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body.to_string());
        if let Some(t) = &self.token {
            r = r.bearer_auth(t);
        }
        let resp = r
            .send()
            .await
            .map_err(|e| self.transport_error(variant, &e))?;
        let status = resp.status();
        let bytes = resp
            .bytes()
            .await
            .map_err(|e| self.transport_error(variant, &e))?;
        if !status.is_success() {
            let msg = serde_json::from_slice::<Value>(&bytes)
                .ok()
                .and_then(|v| v["error"].as_str().map(String::from))
                .unwrap_or_else(|| String::from_utf8_lossy(&bytes[..bytes.len().min(200)]).into());
            return Err(self.status_error(variant, status.as_u16(), &msg));
        }
        let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
            ServeError::BadGateway(format!(
                "variant {variant}: {} answered a body that is not an inference response: {e}",
                self.url
            ))
        })?;
        let bad = |what: String| {
            ServeError::BadGateway(format!("variant {variant}: {} answered {what}", self.url))
        };
        let mut out = Vec::new();
        for o in v["outputs"]
            .as_array()
            .ok_or_else(|| bad("no outputs".into()))?
        {
            let name = o["name"].as_str().unwrap_or_default().to_string();
            let dt = Datatype::parse(o["datatype"].as_str().unwrap_or_default())
                .map_err(|e| bad(format!("output {name:?}: {e}")))?;
            let shape: Vec<i64> = serde_json::from_value(o["shape"].clone())
                .map_err(|e| bad(format!("output {name:?}: shape: {e}")))?;
            let t = tensor::from_json(&name, dt, &shape, &o["data"])
                .map_err(|e| bad(format!("output {name:?}: {e}")))?;
            out.push(NamedTensor { name, tensor: t });
        }
        Ok(Answer {
            model_version: v["model_version"].as_str().unwrap_or_default().to_string(),
            outputs: out,
        })
    }

    async fn infer_grpc(
        &self,
        c: &pb::grpc_inference_service_client::GrpcInferenceServiceClient<
            tonic::transport::Channel,
        >,
        variant: &str,
        id: Option<&str>,
        inputs: &[NamedTensor],
        outputs: Option<&[String]>,
    ) -> Result<Answer, ServeError> {
        let req = pb::ModelInferRequest {
            model_name: self.model.clone(),
            model_version: self.version.clone().unwrap_or_default(),
            id: id.unwrap_or_default().to_string(),
            inputs: inputs
                .iter()
                .map(|t| pb::model_infer_request::InferInputTensor {
                    name: t.name.clone(),
                    datatype: t.datatype().name().to_string(),
                    shape: t.shape_i64(),
                    ..Default::default()
                })
                .collect(),
            outputs: outputs
                .unwrap_or_default()
                .iter()
                .map(|n| pb::model_infer_request::InferRequestedOutputTensor {
                    name: n.clone(),
                    ..Default::default()
                })
                .collect(),
            raw_input_contents: inputs.iter().map(|t| tensor::to_raw(&t.tensor)).collect(),
            ..Default::default()
        };
        let mut req = tonic::Request::new(req);
        req.set_timeout(self.timeout);
        self.authorize_grpc(&mut req);
        let resp = match c.clone().model_infer(req).await {
            Ok(r) => r.into_inner(),
            Err(s) => return Err(self.grpc_error(variant, &s)),
        };
        let bad = |what: String| {
            ServeError::BadGateway(format!("variant {variant}: {} answered {what}", self.url))
        };
        let mut out = Vec::new();
        for (i, o) in resp.outputs.iter().enumerate() {
            let dt = Datatype::parse(&o.datatype)
                .map_err(|e| bad(format!("output {:?}: {e}", o.name)))?;
            let raw = match resp.raw_output_contents.get(i) {
                Some(raw) => raw.clone(),
                None => match &o.contents {
                    Some(c) => crate::grpc::contents_to_raw(&o.name, dt, c)
                        .map_err(|e| bad(e.to_string()))?,
                    None => return Err(bad(format!("output {:?} without contents", o.name))),
                },
            };
            let t = tensor::from_raw(&o.name, dt, &o.shape, &raw)
                .map_err(|e| bad(format!("output {:?}: {e}", o.name)))?;
            out.push(NamedTensor {
                name: o.name.clone(),
                tensor: t,
            });
        }
        Ok(Answer {
            model_version: resp.model_version,
            outputs: out,
        })
    }

    fn transport_error(&self, variant: &str, e: &reqwest::Error) -> ServeError {
        let mut detail = e.to_string();
        let mut src = std::error::Error::source(e);
        while let Some(s) = src {
            detail = format!("{detail}: {s}");
            src = s.source();
        }
        if e.is_timeout() {
            ServeError::Timeout(format!(
                "variant {variant}: {} did not answer within {} ms",
                self.url,
                self.timeout.as_millis()
            ))
        } else {
            ServeError::BadGateway(format!("variant {variant}: {} failed: {detail}", self.url))
        }
    }

    /// A remote's HTTP error: its client errors are the request's (passed on), the rest are
    /// the remote's.
    fn status_error(&self, variant: &str, status: u16, msg: &str) -> ServeError {
        let m = format!("variant {variant}: {} answered {status}: {msg}", self.url);
        match status {
            400 | 413 | 422 => ServeError::BadRequest(m),
            404 => ServeError::BadGateway(m),
            429 => ServeError::Overloaded(m),
            504 => ServeError::Timeout(m),
            _ => ServeError::BadGateway(m),
        }
    }

    fn grpc_error(&self, variant: &str, s: &tonic::Status) -> ServeError {
        use tonic::Code;
        let m = format!(
            "variant {variant}: {} answered {:?}: {}",
            self.url,
            s.code(),
            s.message()
        );
        match s.code() {
            Code::InvalidArgument => ServeError::BadRequest(m),
            Code::ResourceExhausted => ServeError::Overloaded(m),
            Code::DeadlineExceeded | Code::Cancelled => ServeError::Timeout(format!(
                "variant {variant}: {} did not answer within {} ms",
                self.url,
                self.timeout.as_millis()
            )),
            _ => ServeError::BadGateway(m),
        }
    }
}

/// rustls client configuration for HTTPS remotes: the CA given, else the system's roots.
fn client_tls(ca_pem: Option<&[u8]>) -> Result<rustls::ClientConfig, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::CertificateDer;
    let mut roots = rustls::RootCertStore::empty();
    match ca_pem {
        Some(pem) => {
            for c in CertificateDer::pem_slice_iter(pem) {
                let c = c.map_err(|e| format!("remote.ca_file: {e}"))?;
                roots.add(c).map_err(|e| format!("remote.ca_file: {e}"))?;
            }
            if roots.is_empty() {
                return Err("remote.ca_file holds no certificate".into());
            }
        }
        None => {
            for c in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(c);
            }
        }
    }
    let mut cfg = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_root_certificates(roots)
    .with_no_client_auth();
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breaker_opens_after_consecutive_failures_and_probes_once() {
        let b = Breaker::new(3, Duration::from_millis(40));
        b.failure();
        b.failure();
        b.success();
        b.failure();
        b.failure();
        assert_eq!(b.state(), Circuit::Closed, "a success resets the count");
        b.failure();
        assert_eq!(b.state(), Circuit::Open);
        assert!(!b.admit());
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(b.state(), Circuit::HalfOpen);
        assert!(b.admit(), "one probe goes through");
        assert!(!b.admit(), "only one probe at a time");
        b.failure();
        assert_eq!(b.state(), Circuit::Open, "a failed probe opens it again");
        std::thread::sleep(Duration::from_millis(50));
        assert!(b.admit());
        b.success();
        assert_eq!(b.state(), Circuit::Closed);
        assert!(b.admit() && b.admit());
    }

    #[test]
    fn remote_urls_are_checked() {
        assert!(RemoteConfig::at("http://127.0.0.1:8080").check("v").is_ok());
        assert!(RemoteConfig::at("grpcs://cloud.example.com")
            .check("v")
            .is_ok());
        let e = RemoteConfig::at("ftp://x")
            .check("variant cloud")
            .unwrap_err();
        assert!(e.contains("variant cloud") && e.contains("grpc://"), "{e}");
        assert!(RemoteConfig::at("not a url").check("v").is_err());
        let mut both = RemoteConfig::at("http://x:1");
        both.token_env = Some("A".into());
        both.token_file = Some("/b".into());
        assert!(both.check("v").unwrap_err().contains("not both"));
    }
}
