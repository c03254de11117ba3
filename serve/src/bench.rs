//! A load generator for any Open Inference Protocol v2 endpoint, over REST or gRPC: fixed
//! concurrency for a duration or a request count, after a warm-up, with HDR latency
//! histograms. The provider's benchmark hook calls this.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::grpc::pb;
use crate::tensor::{self, Datatype};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Rest,
    Grpc,
    /// No server: the model runs in this process (the lower bound of any server's latency).
    #[value(skip)]
    InProcess,
}

/// What to run.
#[derive(Clone, Debug)]
pub struct Spec {
    /// `http://host:port` of the REST or gRPC listener.
    pub url: String,
    pub model: String,
    pub version: Option<String>,
    pub protocol: Protocol,
    /// An OIP JSON inference request body.
    pub payload: serde_json::Value,
    pub concurrency: usize,
    /// Stop after this long…
    pub duration: Option<Duration>,
    /// …or after this many requests.
    pub requests: Option<u64>,
    pub warmup: Duration,
    pub token: Option<String>,
    /// Extra headers (e.g. pin a variant).
    pub headers: Vec<(String, String)>,
    pub progress: bool,
}

/// Results, in milliseconds and requests per second.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Report {
    pub protocol: Protocol,
    pub concurrency: usize,
    pub requests: u64,
    pub errors: u64,
    pub duration_s: f64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
    /// The first error seen, to explain a non-zero error count.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_error: Option<String>,
}

impl Report {
    pub fn summary(&self) -> String {
        format!(
            "{} requests in {:.2}s at concurrency {} ({:?}): {:.1} req/s, p50 {:.3} ms, p90 {:.3} ms, p99 {:.3} ms, max {:.3} ms, errors {}",
            self.requests, self.duration_s, self.concurrency, self.protocol, self.rps, self.p50_ms, self.p90_ms, self.p99_ms, self.max_ms, self.errors
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    #[error("invalid payload: {0}")]
    Payload(String),
    #[error("cannot reach {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("give a duration or a request count")]
    NoBound,
}

enum Client {
    Rest {
        http: reqwest::Client,
        url: String,
        body: bytes::Bytes,
        headers: reqwest::header::HeaderMap,
    },
    Grpc {
        client: pb::grpc_inference_service_client::GrpcInferenceServiceClient<
            tonic::transport::Channel,
        >,
        req: Box<pb::ModelInferRequest>,
        meta: Vec<(String, String)>,
    },
}

impl Client {
    async fn call(&mut self) -> Result<(), String> {
        match self {
            Client::Rest {
                http,
                url,
                body,
                headers,
            } => {
                let r = http
                    .post(url.as_str())
                    .headers(headers.clone())
                    .body(body.clone())
                    .send()
                    .await
                    .map_err(|e| e.to_string())?;
                let status = r.status();
                let text = r.bytes().await.map_err(|e| e.to_string())?;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {status}: {}", String::from_utf8_lossy(&text)))
                }
            }
            Client::Grpc { client, req, meta } => {
                let mut r = tonic::Request::new((**req).clone());
                for (k, v) in meta.iter() {
                    if let (Ok(k), Ok(v)) = (
                        k.parse::<tonic::metadata::MetadataKey<tonic::metadata::Ascii>>(),
                        v.parse(),
                    ) {
                        r.metadata_mut().insert(k, v);
                    }
                }
                client
                    .model_infer(r)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("{}: {}", e.code(), e.message()))
            }
        }
    }
}

/// Converts an OIP JSON request into a gRPC request with raw contents.
pub fn grpc_request(
    model: &str,
    version: Option<&str>,
    payload: &serde_json::Value,
) -> Result<pb::ModelInferRequest, BenchError> {
    let inputs = payload["inputs"]
        .as_array()
        .ok_or_else(|| BenchError::Payload("no \"inputs\" array".into()))?;
    let mut req = pb::ModelInferRequest {
        model_name: model.into(),
        model_version: version.unwrap_or("").into(),
        ..Default::default()
    };
    for i in inputs {
        let name = i["name"]
            .as_str()
            .ok_or_else(|| BenchError::Payload("an input has no name".into()))?;
        let dt = Datatype::parse(i["datatype"].as_str().unwrap_or(""))
            .map_err(|e| BenchError::Payload(e.to_string()))?;
        let shape: Vec<i64> = i["shape"]
            .as_array()
            .map(|s| s.iter().filter_map(|d| d.as_i64()).collect())
            .unwrap_or_default();
        let t = tensor::from_json(name, dt, &shape, &i["data"])
            .map_err(|e| BenchError::Payload(e.to_string()))?;
        req.inputs.push(pb::model_infer_request::InferInputTensor {
            name: name.into(),
            datatype: dt.name().into(),
            shape,
            ..Default::default()
        });
        req.raw_input_contents.push(tensor::to_raw(&t));
    }
    Ok(req)
}

async fn client(spec: &Spec) -> Result<Client, BenchError> {
    match spec.protocol {
        Protocol::InProcess => Err(BenchError::Payload(
            "in-process runs go through run_in_process".into(),
        )),
        Protocol::Rest => {
            let path = match &spec.version {
                Some(v) => format!("/v2/models/{}/versions/{v}/infer", spec.model),
                None => format!("/v2/models/{}/infer", spec.model),
            };
            let mut headers = reqwest::header::HeaderMap::new();
            headers.insert(
                reqwest::header::CONTENT_TYPE,
                "application/json".parse().expect("header"),
            );
            if let Some(t) = &spec.token {
                headers.insert(
                    reqwest::header::AUTHORIZATION,
                    format!("Bearer {t}")
                        .parse()
                        .map_err(|_| BenchError::Payload("bad token".into()))?,
                );
            }
            for (k, v) in &spec.headers {
                if let (Ok(k), Ok(v)) = (k.parse::<reqwest::header::HeaderName>(), v.parse()) {
                    headers.insert(k, v);
                }
            }
            Ok(Client::Rest {
                http: reqwest::Client::builder()
                    .tcp_nodelay(true)
                    .pool_max_idle_per_host(spec.concurrency)
                    .build()
                    .map_err(|e| BenchError::Connect {
                        url: spec.url.clone(),
                        reason: e.to_string(),
                    })?,
                url: format!("{}{path}", spec.url.trim_end_matches('/')),
                body: bytes::Bytes::from(spec.payload.to_string()),
                headers,
            })
        }
        Protocol::Grpc => {
            let ch = tonic::transport::Endpoint::from_shared(spec.url.clone())
                .map_err(|e| BenchError::Connect {
                    url: spec.url.clone(),
                    reason: e.to_string(),
                })?
                .tcp_nodelay(true)
                .connect()
                .await
                .map_err(|e| BenchError::Connect {
                    url: spec.url.clone(),
                    reason: e.to_string(),
                })?;
            let mut meta = spec.headers.clone();
            if let Some(t) = &spec.token {
                meta.push(("authorization".into(), format!("Bearer {t}")));
            }
            Ok(Client::Grpc {
                client: pb::grpc_inference_service_client::GrpcInferenceServiceClient::new(ch)
                    .max_decoding_message_size(256 << 20),
                req: Box::new(grpc_request(
                    &spec.model,
                    spec.version.as_deref(),
                    &spec.payload,
                )?),
                meta,
            })
        }
    }
}

/// Runs the benchmark.
pub async fn run(spec: &Spec) -> Result<Report, BenchError> {
    if spec.duration.is_none() && spec.requests.is_none() {
        return Err(BenchError::NoBound);
    }
    let conc = spec.concurrency.max(1);
    // One connection per worker for gRPC (HTTP/2 would multiplex them otherwise); REST pools.
    let mut clients = Vec::with_capacity(conc);
    for _ in 0..conc {
        clients.push(client(spec).await?);
    }
    // Warm-up: same load, results discarded.
    if !spec.warmup.is_zero() {
        let until = Instant::now() + spec.warmup;
        let mut tasks = Vec::new();
        for mut c in clients.drain(..) {
            tasks.push(tokio::spawn(async move {
                while Instant::now() < until {
                    let _ = c.call().await;
                }
                c
            }));
        }
        for t in tasks {
            clients.push(t.await.expect("warm-up task"));
        }
    }
    let hist = Arc::new(Mutex::new(
        Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram"),
    ));
    let done = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let first_error: Arc<Mutex<Option<String>>> = Arc::new(Mutex::new(None));
    let stop = Arc::new(AtomicBool::new(false));
    let budget = spec.requests;
    let bar = spec.progress.then(|| {
        let b = match (spec.requests, spec.duration) {
            (Some(n), _) => indicatif::ProgressBar::new(n),
            (None, Some(d)) => indicatif::ProgressBar::new(d.as_secs().max(1)),
            _ => indicatif::ProgressBar::hidden(),
        };
        b.set_style(
            indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} {msg}").expect("style"),
        );
        b
    });
    let started = Instant::now();
    let deadline = spec.duration.map(|d| started + d);
    let mut tasks = Vec::new();
    for mut c in clients {
        let (hist, done, errors, first_error, stop) = (
            hist.clone(),
            done.clone(),
            errors.clone(),
            first_error.clone(),
            stop.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut local = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
            loop {
                if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
                    break;
                }
                if let Some(n) = budget {
                    if done.fetch_add(1, Ordering::Relaxed) >= n {
                        break;
                    }
                } else {
                    done.fetch_add(1, Ordering::Relaxed);
                }
                let t = Instant::now();
                let r = c.call().await;
                let us = t.elapsed().as_micros().max(1) as u64;
                let _ = local.record(us.min(60_000_000));
                if let Err(e) = r {
                    errors.fetch_add(1, Ordering::Relaxed);
                    first_error.lock().expect("lock").get_or_insert(e);
                }
            }
            hist.lock()
                .expect("lock")
                .add(&local)
                .expect("merge histograms");
        }));
    }
    if let Some(b) = &bar {
        let (done, stop) = (done.clone(), stop.clone());
        let b = b.clone();
        let by_count = spec.requests.is_some();
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if by_count {
                    b.set_position(done.load(Ordering::Relaxed));
                } else {
                    b.set_position(started.elapsed().as_secs());
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
    }
    for t in tasks {
        let _ = t.await;
    }
    stop.store(true, Ordering::SeqCst);
    if let Some(b) = bar {
        b.finish_and_clear();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let h = hist.lock().expect("lock");
    let first_error = first_error.lock().expect("lock").clone();
    Ok(report(
        spec.protocol,
        conc,
        &h,
        errors.load(Ordering::SeqCst),
        elapsed,
        first_error,
    ))
}

/// Summarises a latency histogram (microseconds).
fn report(
    protocol: Protocol,
    concurrency: usize,
    h: &Histogram<u64>,
    errors: u64,
    elapsed: f64,
    first_error: Option<String>,
) -> Report {
    let ms = |us: u64| us as f64 / 1000.0;
    Report {
        protocol,
        concurrency,
        requests: h.len(),
        errors,
        duration_s: elapsed,
        rps: h.len() as f64 / elapsed.max(1e-9),
        p50_ms: ms(h.value_at_quantile(0.50)),
        p90_ms: ms(h.value_at_quantile(0.90)),
        p99_ms: ms(h.value_at_quantile(0.99)),
        max_ms: ms(h.max()),
        mean_ms: h.mean() / 1000.0,
        first_error,
    }
}

/// Runs the model in this process with `concurrency` threads: what a server could reach at
/// best. Same report as [`run`]. `plan_per_shape`: optimised for the payload's shapes.
pub fn run_in_process(
    model: &std::path::Path,
    payload: &serde_json::Value,
    concurrency: usize,
    duration: Duration,
    warmup: Duration,
    plan_per_shape: bool,
) -> Result<Report, BenchError> {
    let options = crate::model::LoadOptions {
        plan_per_shape,
        ..Default::default()
    };
    let m = Arc::new(
        crate::model::Model::load_with("bench", "0", model, None, &options)
            .map_err(|e| BenchError::Payload(e.to_string()))?,
    );
    let inputs = payload["inputs"]
        .as_array()
        .ok_or_else(|| BenchError::Payload("no \"inputs\" array".into()))?;
    let mut named = Vec::new();
    for i in inputs {
        let name = i["name"].as_str().unwrap_or_default();
        let dt = Datatype::parse(i["datatype"].as_str().unwrap_or(""))
            .map_err(|e| BenchError::Payload(e.to_string()))?;
        let shape: Vec<i64> = i["shape"]
            .as_array()
            .map(|s| s.iter().filter_map(|d| d.as_i64()).collect())
            .unwrap_or_default();
        let t = tensor::from_json(name, dt, &shape, &i["data"])
            .map_err(|e| BenchError::Payload(e.to_string()))?;
        named.push(tensor::NamedTensor {
            name: name.into(),
            tensor: t,
        });
    }
    let prepared = m
        .prepare(named)
        .map_err(|e| BenchError::Payload(e.to_string()))?;
    let conc = concurrency.max(1);
    let warm_until = Instant::now() + warmup;
    let started = Arc::new(Mutex::new(None::<Instant>));
    let threads: Vec<_> = (0..conc)
        .map(|_| {
            let (m, inputs, started) = (m.clone(), prepared.clone(), started.clone());
            std::thread::spawn(move || {
                while Instant::now() < warm_until {
                    let _ = m.run(inputs.clone());
                }
                let t0 = *started
                    .lock()
                    .expect("lock")
                    .get_or_insert_with(Instant::now);
                let mut h = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
                let mut errors = 0u64;
                while t0.elapsed() < duration {
                    let t = Instant::now();
                    if m.run(inputs.clone()).is_err() {
                        errors += 1;
                    }
                    let _ = h.record(t.elapsed().as_micros().max(1) as u64);
                }
                (h, errors)
            })
        })
        .collect();
    let mut all = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram");
    let mut errors = 0;
    for t in threads {
        let (h, e) = t
            .join()
            .map_err(|_| BenchError::Payload("a bench thread panicked".into()))?;
        all.add(&h).expect("merge");
        errors += e;
    }
    Ok(report(
        Protocol::InProcess,
        conc,
        &all,
        errors,
        duration.as_secs_f64(),
        None,
    ))
}
