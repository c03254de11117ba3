//! The rollout policy every platform shares, written once: deploy, wait until ready, run the
//! benchmark hook; on a failed rollout or a missed SLO put the previous deployment back (on
//! create: remove what was started), so that the state stays as it was.
//!
//! Platforms supply the first and the last step ([`super::Platform::deploy`] and the
//! [`Undo`] it returns); this module decides when to use them.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tfplugin::Ctx;

use super::{Deployment, EndpointSpec, Platform, PlatformError, Previous};

/// What a deploy did: where the endpoint answers now (also after a failure, where something
/// was written), whether it is ready, and how to put back what was there before.
pub struct Rollout {
    pub deployment: Option<Deployment>,
    pub result: Result<(), PlatformError>,
    pub undo: Box<dyn Undo>,
}

/// Puts back what was there before a deploy: the previous deployment, or nothing on create.
#[tfplugin::async_trait]
pub trait Undo: Send {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError>;
}

/// Nothing to put back.
pub struct NoUndo;

#[tfplugin::async_trait]
impl Undo for NoUndo {
    async fn undo(self: Box<Self>) -> Result<(), PlatformError> {
        Ok(())
    }
}

/// The benchmark hook of an endpoint (its `benchmark` block).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Benchmark {
    pub concurrency: Option<i64>,
    pub duration: Option<String>,
    pub warmup: Option<String>,
    pub protocol: Option<String>,
    pub payload: String,
    pub slo: Option<Slo>,
}

/// Thresholds an endpoint must meet after a change.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Slo {
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub min_rps: Option<f64>,
    pub max_error_rate: Option<f64>,
}

/// Figures of a benchmark run.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BenchResult {
    pub requests: i64,
    pub errors: i64,
    pub rps: f64,
    pub p50_ms: f64,
    pub p90_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

/// Which step failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Before anything changed: the platform refused the spec, or cannot be reached.
    Prepare,
    /// Deploying, or waiting until ready.
    Rollout,
    /// The benchmark hook: an SLO miss, or a benchmark that could not run.
    Benchmark,
}

/// A rollout that did not complete.
#[derive(Debug)]
pub struct Failure {
    pub stage: Stage,
    pub error: PlatformError,
    /// Whether the previous deployment serves again (on create: whether what was started is
    /// gone).
    pub restored: Result<(), PlatformError>,
    /// What is left when restoring failed, for the state to record.
    pub left: Option<Deployment>,
}

impl Failure {
    /// The diagnostic of a failed create (`update == false`) or update.
    pub fn report(&self, update: bool, diags: &mut tfplugin::Diagnostics) {
        let summary = match (update, self.stage) {
            (_, Stage::Prepare) => return self.error.report("Cannot run the endpoint", diags),
            (false, Stage::Rollout) => "The endpoint did not start",
            (false, Stage::Benchmark) => "Benchmark failed: the endpoint was not created",
            (true, Stage::Rollout) => "The endpoint change failed",
            (true, Stage::Benchmark) => "Benchmark failed: the change was rolled back",
        };
        let then = match (update, &self.restored) {
            (false, Ok(())) => {
                let mut s = "Nothing was left running and nothing was recorded.".to_string();
                if self.stage == Stage::Benchmark {
                    s.push_str(" Relax the slo block or give the endpoint more resources.");
                }
                s
            }
            (false, Err(e)) => format!("Removing what was started failed too ({e}); it is recorded in state, and the next apply replaces it."),
            (true, Ok(())) => "The endpoint serves its previous configuration again; the state is unchanged.".to_string(),
            (true, Err(e)) => format!("Rolling back failed too: {e}. Run terraform apply again."),
        };
        diags.error(summary, format!("{}\n{then}", self.error));
    }
}

/// Deploys `spec`, waits until it is ready and runs the benchmark hook; on any failure puts
/// back what `previous` describes (or removes what was started, on create).
pub async fn apply(
    platform: &dyn Platform,
    spec: &EndpointSpec,
    previous: Option<&Previous>,
    benchmark: Option<&Benchmark>,
    ctx: &mut Ctx,
) -> Result<(Deployment, Option<BenchResult>), Failure> {
    let Rollout {
        deployment,
        result,
        undo,
    } = platform.deploy(spec, previous, ctx).await;
    let failure = match (result, &deployment) {
        (
            Err(
                e @ (PlatformError::Invalid { .. }
                | PlatformError::Refused { .. }
                | PlatformError::Unreachable(_)),
            ),
            None,
        ) => (Stage::Prepare, e),
        (Err(e), _) => (Stage::Rollout, e),
        (Ok(()), None) => (
            Stage::Rollout,
            PlatformError::Failed("the platform reported no deployment".into()),
        ),
        (Ok(()), Some(d)) => match measure(benchmark, &spec.name, d, &spec.token, ctx).await {
            Ok(r) => return Ok((d.clone(), r)),
            Err(e) => (Stage::Benchmark, PlatformError::Failed(e)),
        },
    };
    let restored = undo.undo().await;
    Err(Failure {
        stage: failure.0,
        error: failure.1,
        left: restored.is_err().then_some(deployment).flatten(),
        restored,
    })
}

fn parse_duration(s: &str) -> Result<Duration, String> {
    modelplane_serve::cli::parse_duration(s)
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// Runs the benchmark hook; `Err` holds the SLO verdict (measured against required).
async fn benchmark(
    b: Option<&Benchmark>,
    name: &str,
    d: &Deployment,
    token: &str,
) -> Result<Option<BenchResult>, String> {
    let Some(b) = b else {
        return Ok(None);
    };
    let payload: serde_json::Value = serde_json::from_str(&b.payload)
        .map_err(|e| format!("benchmark.payload is not JSON: {e}"))?;
    let protocol = match b.protocol.as_deref() {
        Some("grpc") => modelplane_serve::bench::Protocol::Grpc,
        _ => modelplane_serve::bench::Protocol::Rest,
    };
    let url = match protocol {
        modelplane_serve::bench::Protocol::Grpc => format!("http://{}", d.grpc_address),
        _ => d.url.clone(),
    };
    let spec = modelplane_serve::bench::Spec {
        url,
        model: name.to_string(),
        version: None,
        protocol,
        payload,
        concurrency: b.concurrency.unwrap_or(4).max(1) as usize,
        duration: Some(parse_duration(b.duration.as_deref().unwrap_or("3s"))?),
        requests: None,
        warmup: parse_duration(b.warmup.as_deref().unwrap_or("500ms"))?,
        token: Some(token.to_string()),
        headers: Vec::new(),
        progress: false,
    };
    let r = modelplane_serve::bench::run(&spec)
        .await
        .map_err(|e| format!("the benchmark could not run: {e}"))?;
    let result = BenchResult {
        requests: r.requests as i64,
        errors: r.errors as i64,
        rps: round3(r.rps),
        p50_ms: round3(r.p50_ms),
        p90_ms: round3(r.p90_ms),
        p99_ms: round3(r.p99_ms),
        max_ms: round3(r.max_ms),
    };
    let mut misses = Vec::new();
    let total = (r.requests + r.errors).max(1) as f64;
    let error_rate = r.errors as f64 / total;
    let slo = b.slo.clone().unwrap_or(Slo {
        p50_ms: None,
        p99_ms: None,
        min_rps: None,
        max_error_rate: None,
    });
    if let Some(x) = slo.p50_ms {
        if r.p50_ms > x {
            misses.push(format!("p50 {:.3} ms > required {x} ms", r.p50_ms));
        }
    }
    if let Some(x) = slo.p99_ms {
        if r.p99_ms > x {
            misses.push(format!("p99 {:.3} ms > required {x} ms", r.p99_ms));
        }
    }
    if let Some(x) = slo.min_rps {
        if r.rps < x {
            misses.push(format!(
                "throughput {:.1} req/s < required {x} req/s",
                r.rps
            ));
        }
    }
    let max_err = slo.max_error_rate.unwrap_or(0.0);
    if error_rate > max_err {
        misses.push(format!(
            "error rate {:.4} ({} of {} requests) > allowed {max_err}{}",
            error_rate,
            r.errors,
            r.requests + r.errors,
            r.first_error
                .as_ref()
                .map(|e| format!("; first error: {e}"))
                .unwrap_or_default()
        ));
    }
    if misses.is_empty() {
        Ok(Some(result))
    } else {
        Err(format!(
            "SLO missed: {}.\nMeasured: {}",
            misses.join("; "),
            r.summary()
        ))
    }
}

/// The benchmark hook, cut short when Terraform asks the provider to stop.
pub(crate) async fn measure(
    b: Option<&Benchmark>,
    name: &str,
    d: &Deployment,
    token: &str,
    ctx: &mut Ctx,
) -> Result<Option<BenchResult>, String> {
    tokio::select! {
        r = benchmark(b, name, d, token) => r,
        _ = ctx.stopped() => Err("interrupted: Terraform was asked to stop during the benchmark".to_string()),
    }
}
