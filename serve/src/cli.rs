//! The `modelplane-serve` command line, as a library function so that other binaries (the
//! Terraform provider runs local endpoints with it) carry the same server.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::batch::BatchConfig;
use crate::config::{ModelConfig, ServeConfig};
use clap::{Args, Parser, Subcommand};

/// Modelplane's inference server (Open Inference Protocol v2 over REST and gRPC) and its tools.
#[derive(Parser)]
#[command(name = "modelplane-serve", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve models over REST and gRPC.
    Serve(ServeArgs),
    /// On a machine with an NVIDIA GPU: list the GPUs (NVML), then run each model on cuda
    /// and on the CPU, compare the outputs (rtol 1e-3, atol 1e-4) and print the latencies
    /// side by side. Fails at once where no GPU is present. Needs a build with
    /// `--features cuda` (`cargo xtask device-check` makes one).
    DeviceCheck {
        /// .onnx models to run (repeatable).
        #[arg(long = "model", required = true)]
        models: Vec<PathBuf>,
        /// The size of every free dimension other than the batch (which is 1).
        #[arg(long, default_value_t = 64)]
        free_size: usize,
        /// Timed runs per model and device.
        #[arg(long, default_value_t = 20)]
        runs: usize,
    },
    /// Check a model against a hold-out dataset: exit 0 when the metric meets the threshold,
    /// 1 when it does not, 2 on an error.
    Validate(ValidateArgs),
    /// Load-test an Open Inference Protocol endpoint (REST or gRPC).
    Bench(BenchArgs),
    /// Floors for benchmarks, on the same runtime and REST/gRPC stacks as `serve` but with
    /// no work (`cargo xtask bench serve` measures the server's own time against them).
    #[command(hide = true)]
    Floor {
        /// Answer every REST request with the bytes of `--body` as JSON.
        #[arg(long, requires = "body")]
        http: Option<std::net::SocketAddr>,
        #[arg(long)]
        body: Option<PathBuf>,
        /// Answer every gRPC ModelInfer with the response the server at `--answer-from`
        /// gives to `--payload` for `--model` (asked once, at start).
        #[arg(long, requires_all = ["answer_from", "model", "payload"])]
        grpc: Option<std::net::SocketAddr>,
        #[arg(long)]
        answer_from: Option<String>,
        #[arg(long)]
        model: Option<String>,
        #[arg(long)]
        payload: Option<PathBuf>,
    },
    /// Compute a drift baseline (per-feature bins and moments, prediction distribution)
    /// from reference data; store it beside the model as baseline.json.
    Baseline {
        /// Reference (training) dataset: .csv, .jsonl, .npy or .npz.
        #[arg(long)]
        dataset: PathBuf,
        /// Target column to leave out of the features.
        #[arg(long)]
        target: Option<String>,
        /// Feature columns in the model's input order (default: every column but the target).
        #[arg(long, value_delimiter = ',')]
        features: Option<Vec<String>>,
        /// The model, to record its prediction distribution too.
        #[arg(long)]
        model: Option<PathBuf>,
        /// Where to write the baseline (JSON).
        #[arg(long)]
        out: PathBuf,
    },
    /// Print the signature of an ONNX model (digest, opset, inputs and outputs) as JSON.
    Inspect {
        /// Path to the .onnx file.
        model: PathBuf,
    },
    /// Copy one file to or from an object store, streamed in parts and checked by sha256,
    /// with the credentials of the AWS and Azure chains: `copy model.onnx
    /// 's3://BUCKET/iris/1/model.onnx?region=eu-west-1'` uploads, the reverse downloads.
    Copy {
        /// A local file, or an object as s3://BUCKET/KEY[?…] or az://ACCOUNT/CONTAINER/KEY[?…].
        from: String,
        /// A local file, or an object (one side must be local, the other remote).
        to: String,
    },
    /// Exit 0 when the server of a configuration is ready (`GET /v2/health/ready`), 1 when
    /// not: the health check of container engines, which the image runs without a shell.
    Health {
        /// The server's configuration (its `http` address is probed).
        #[arg(long, default_value = "/etc/modelplane/config.json")]
        config: PathBuf,
    },
    /// Write the container image of a server binary as an OCI image layout, without a
    /// container engine (see `cargo xtask image`).
    Image {
        /// The server binary to package (default: this one).
        #[arg(long)]
        binary: Option<PathBuf>,
        /// Output folder (an OCI image layout; replaced).
        #[arg(long, required_unless_present = "rootfs")]
        out: Option<PathBuf>,
        /// Write the image's files as a folder tree here instead (what serve/Containerfile
        /// copies into a `scratch` image).
        #[arg(long, conflicts_with = "out")]
        rootfs: Option<PathBuf>,
        /// Tag recorded in the layout (default: the version).
        #[arg(long)]
        tag: Option<String>,
        /// Source revision for the `org.opencontainers.image.revision` label.
        #[arg(long)]
        revision: Option<String>,
        /// Creation time (RFC 3339) for `created`; default the epoch, for reproducible digests.
        #[arg(long)]
        created: Option<String>,
        /// gzip level of the layer (0–9).
        #[arg(long, default_value_t = 9)]
        compression: u32,
    },
}

#[derive(Args)]
struct ValidateArgs {
    /// The .onnx model.
    #[arg(long)]
    model: PathBuf,
    /// Refuse the model unless its sha256 is this.
    #[arg(long)]
    sha256: Option<String>,
    /// Dataset: .csv (with a header), .jsonl, .npy or .npz.
    #[arg(long)]
    dataset: PathBuf,
    /// Column with the true labels (classification) or values (regression).
    #[arg(long)]
    target: String,
    /// Feature columns in the model's input order (default: every other column).
    #[arg(long, value_delimiter = ',')]
    features: Option<Vec<String>>,
    /// Metric to compute.
    #[arg(long, value_enum)]
    metric: crate::validate::Metric,
    /// Pass when the metric is at least this.
    #[arg(long)]
    min: Option<f64>,
    /// Pass when the metric is at most this.
    #[arg(long)]
    max: Option<f64>,
    /// Model output to score (default: the label output, or the first).
    #[arg(long)]
    output: Option<String>,
    /// Rows per model call.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Judge the metric per slice of rows sharing these columns' values (numeric codes; not
    /// features), e.g. `--slice-by region,sex`.
    #[arg(long, value_delimiter = ',')]
    slice_by: Vec<String>,
    /// Every judged slice must reach this.
    #[arg(long)]
    slice_min: Option<f64>,
    /// Every judged slice must stay under this.
    #[arg(long)]
    slice_max: Option<f64>,
    /// A named slice's own threshold, in the metric's direction (a minimum for accuracy, f1,
    /// precision, recall; a maximum for mae, rmse, max_abs_diff), e.g. `--slice region=2=0.8`
    /// (repeatable).
    #[arg(long = "slice", value_name = "NAME=THRESHOLD")]
    slice: Vec<String>,
    /// The largest gap of the metric allowed between judged slices.
    #[arg(long)]
    max_disparity: Option<f64>,
    /// Slices with fewer rows are reported but not judged.
    #[arg(long, default_value_t = 30)]
    min_slice_rows: usize,
    /// Write the JSON report here.
    #[arg(long)]
    report: Option<PathBuf>,
    /// Print the JSON report instead of the summary.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct BenchArgs {
    /// Base URL of the REST or gRPC listener, e.g. http://127.0.0.1:8080.
    #[arg(long, required_unless_present = "in_process")]
    url: Option<String>,
    /// Run this .onnx model in this process instead of calling a server (the lower bound).
    #[arg(long, value_name = "MODEL.onnx")]
    in_process: Option<PathBuf>,
    /// With --in-process: optimise the model for the payload's concrete shapes (as
    /// `plan_per_shape` does) rather than once with its free dimensions symbolic.
    #[arg(long, requires = "in_process")]
    plan_per_shape: bool,
    /// Model or endpoint name.
    #[arg(long, required_unless_present = "in_process", default_value = "")]
    model: String,
    /// Model version (default: the newest, or the endpoint's split).
    #[arg(long = "model-version")]
    model_version: Option<String>,
    #[arg(long, value_enum, default_value = "rest")]
    protocol: crate::bench::Protocol,
    /// File with an OIP JSON inference request.
    #[arg(long)]
    payload: PathBuf,
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// How long to run, e.g. 10s, 500ms, 1m.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// How many requests to send (instead of a duration).
    #[arg(long)]
    requests: Option<u64>,
    /// Warm-up before measuring.
    #[arg(long, value_parser = parse_duration, default_value = "1s")]
    warmup: Duration,
    /// Bearer token.
    #[arg(long, env = "MODELPLANE_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Extra header NAME=VALUE (repeatable), e.g. x-modelplane-variant=canary.
    #[arg(long = "header")]
    headers: Vec<String>,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
}

/// Parses 10s, 500ms, 2m, 1h or plain seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, "s"), |i| (&s[..i], &s[i..]));
    let v: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a duration (e.g. 10s, 500ms, 2m)"))?;
    let secs = match unit {
        "ms" => v / 1000.0,
        "s" => v,
        "m" => v * 60.0,
        "h" => v * 3600.0,
        _ => return Err(format!("{s:?}: unknown unit {unit:?}; use ms, s, m or h")),
    };
    Ok(Duration::from_secs_f64(secs))
}

fn bench(a: BenchArgs) -> ExitCode {
    let payload = match std::fs::read_to_string(&a.payload)
        .map_err(|e| e.to_string())
        .and_then(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
    {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {}: {e}", a.payload.display());
            return ExitCode::from(2);
        }
    };
    let headers = a
        .headers
        .iter()
        .filter_map(|h| {
            h.split_once('=')
                .map(|(k, v)| (k.to_string(), v.to_string()))
        })
        .collect();
    let (duration, requests) = match (a.duration, a.requests) {
        (None, None) => (Some(Duration::from_secs(10)), None),
        other => other,
    };
    if let Some(model) = &a.in_process {
        return match crate::bench::run_in_process(
            model,
            &payload,
            a.concurrency,
            duration.unwrap_or(Duration::from_secs(10)),
            a.warmup,
            a.plan_per_shape,
        ) {
            Ok(r) => {
                if a.json {
                    println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
                } else {
                    println!("{}", r.summary());
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        };
    }
    let spec = crate::bench::Spec {
        url: a.url.unwrap_or_default(),
        model: a.model,
        version: a.model_version,
        protocol: a.protocol,
        payload,
        concurrency: a.concurrency,
        duration,
        requests,
        warmup: a.warmup,
        token: a.token,
        headers,
        progress: !a.json && std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    match rt.block_on(crate::bench::run(&spec)) {
        Ok(r) => {
            if a.json {
                println!("{}", serde_json::to_string_pretty(&r).unwrap_or_default());
            } else {
                println!("{}", r.summary());
                if let Some(e) = &r.first_error {
                    println!("first error: {e}");
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

fn validate(a: ValidateArgs) -> ExitCode {
    if a.min.is_none() && a.max.is_none() {
        eprintln!("error: give a threshold with --min (accuracy, f1, precision, recall) or --max (mae, rmse, max_abs_diff)");
        return ExitCode::from(2);
    }
    let mut named = std::collections::BTreeMap::new();
    for s in &a.slice {
        // Split at the last `=`: slice names contain `=` themselves.
        let parsed = s
            .rsplit_once('=')
            .and_then(|(n, v)| v.parse::<f64>().ok().map(|v| (n.to_string(), v)));
        match parsed {
            Some((n, t)) => {
                named.insert(n, t);
            }
            None => {
                eprintln!("error: --slice {s:?}: write NAME=THRESHOLD, e.g. region=2=0.8");
                return ExitCode::from(2);
            }
        }
    }
    let slices = (!a.slice_by.is_empty()).then(|| crate::validate::Slices {
        by: a.slice_by.clone(),
        min: a.slice_min,
        max: a.slice_max,
        named,
        max_disparity: a.max_disparity,
        min_rows: a.min_slice_rows,
    });
    if slices.is_none()
        && (a.slice_min.is_some()
            || a.slice_max.is_some()
            || a.max_disparity.is_some()
            || !a.slice.is_empty())
    {
        eprintln!(
            "error: slice thresholds need --slice-by (the columns whose values make the slices)"
        );
        return ExitCode::from(2);
    }
    let spec = crate::validate::Spec {
        model: a.model,
        expected_sha256: a.sha256,
        dataset: a.dataset,
        target: a.target,
        features: a.features,
        metric: a.metric,
        min: a.min,
        max: a.max,
        output: a.output,
        batch_size: a.batch_size,
        slices,
    };
    match crate::validate::run(&spec) {
        Ok(report) => {
            if let Some(p) = &a.report {
                if let Err(e) = crate::validate::write_report(&report, p) {
                    eprintln!("error: writing {}: {e}", p.display());
                    return ExitCode::from(2);
                }
            }
            if a.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&report).unwrap_or_default()
                );
            } else {
                println!("{}", report.summary());
                if let Some(c) = &report.confusion_matrix {
                    println!(
                        "confusion matrix (rows: true label, columns: predicted) labels {:?}",
                        c.labels
                    );
                    for row in &c.matrix {
                        println!("  {row:?}");
                    }
                }
                for s in &report.slices {
                    println!(
                        "slice {}: {} = {:.6} on {} rows{}",
                        s.name,
                        report.metric,
                        s.value,
                        s.rows,
                        match (s.judged, s.passed) {
                            (false, _) => " (not judged: too few rows)",
                            (true, true) => "",
                            (true, false) => " FAIL",
                        }
                    );
                }
            }
            if report.passed {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

#[derive(Args)]
struct ServeArgs {
    /// Configuration file (JSON); flags override its settings.
    #[arg(long, env = "MODELPLANE_CONFIG")]
    config: Option<PathBuf>,
    /// Model repository with NAME/VERSION/model.onnx + model.json: a directory, file://PATH,
    /// s3://BUCKET[/PREFIX][?region=…&endpoint=…&path_style=true] or
    /// az://ACCOUNT/CONTAINER[/PREFIX][?endpoint=…]. Credentials come from the AWS and Azure
    /// standard chains.
    #[arg(long, env = "MODELPLANE_REPOSITORY")]
    repository: Option<String>,
    /// Where artifacts from s3:// and az:// repositories are cached.
    #[arg(long, env = "MODELPLANE_CACHE_DIR")]
    cache_dir: Option<PathBuf>,
    /// A model to serve, as NAME or NAME:VERSION (newest version when omitted); repeatable.
    #[arg(long = "model", value_name = "NAME[:VERSION]")]
    models: Vec<String>,
    /// REST listen address.
    #[arg(long, env = "MODELPLANE_HTTP")]
    http: Option<SocketAddr>,
    /// gRPC listen address.
    #[arg(long, env = "MODELPLANE_GRPC")]
    grpc: Option<SocketAddr>,
    /// Most rows per batch for models given with --model.
    #[arg(long, default_value_t = 32)]
    max_batch_size: usize,
    /// Serve without a token on an address other than loopback (anyone who reaches the port
    /// may infer). Without it, such a server refuses to start; set a token (auth.token_env or
    /// auth.token_file) instead.
    #[arg(long)]
    insecure: bool,
    /// Refuse to start when any model fails to load (else the server serves the others and
    /// the failed model answers not ready, with its reason).
    #[arg(long)]
    strict: bool,
    /// Where models given with --model compute.
    #[arg(long, value_enum, default_value = "cpu")]
    device: crate::model::Device,
    /// Longest a partial batch waits for more requests while a worker is free, in ms.
    #[arg(long, default_value_t = 0)]
    max_delay_ms: u64,
    /// TLS certificate chain (PEM); with --tls-key, REST and gRPC are served over TLS.
    #[arg(long, env = "MODELPLANE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "MODELPLANE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Seconds to drain in-flight requests on SIGTERM.
    #[arg(long, default_value_t = 30)]
    drain_seconds: u64,
    /// Log format: json (default) or text.
    #[arg(long, default_value = "json", env = "MODELPLANE_LOG_FORMAT")]
    log_format: String,
}

fn config_from(args: &ServeArgs) -> Result<ServeConfig, String> {
    let mut cfg = match &args.config {
        Some(p) => ServeConfig::from_file(p)?,
        None => ServeConfig {
            http: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc: None,
            repository: String::new(),
            cache_dir: None,
            models: vec![],
            endpoints: vec![],
            limits: Default::default(),
            auth: Default::default(),
            monitoring: Default::default(),
            tls: None,
            strict: false,
            reuse_port: false,
            site: None,
            shared: None,
        },
    };
    if let (Some(cert_file), Some(key_file)) = (&args.tls_cert, &args.tls_key) {
        cfg.tls = Some(crate::config::TlsConfig {
            cert_file: cert_file.clone(),
            key_file: key_file.clone(),
        });
    }
    if let Some(r) = &args.repository {
        cfg.repository = r.clone();
    }
    if args.insecure {
        cfg.auth.none = true;
    }
    if args.strict {
        cfg.strict = true;
    }
    if let Some(c) = &args.cache_dir {
        cfg.cache_dir = Some(c.clone());
    }
    if let Some(h) = args.http {
        cfg.http = h;
    }
    if args.grpc.is_some() {
        cfg.grpc = args.grpc;
    }
    for m in &args.models {
        let (name, version) = match m.split_once(':') {
            Some((n, v)) => (n.to_string(), Some(v.to_string())),
            None => (m.clone(), None),
        };
        cfg.models.push(ModelConfig {
            batching: BatchConfig {
                max_batch_size: args.max_batch_size,
                max_delay_ms: args.max_delay_ms,
                ..BatchConfig::default()
            },
            device: args.device,
            ..ModelConfig::named(name, version)
        });
    }
    if cfg.repository.is_empty() {
        return Err(
            "no model repository: pass --repository DIR or set `repository` in --config".into(),
        );
    }
    if cfg.models.is_empty() && cfg.endpoints.is_empty() && cfg.shared.is_none() {
        return Err(
            "nothing to serve: pass --model NAME[:VERSION] or declare models/endpoints in --config"
                .into(),
        );
    }
    cfg.check()?;
    Ok(cfg)
}

fn init_logs(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("MODELPLANE_LOG")
        .unwrap_or_else(|_| "info".into());
    let b = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "text" {
        let _ = b.try_init();
    } else {
        let _ = b
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init();
    }
}

async fn serve(args: ServeArgs, cfg: ServeConfig) -> Result<(), String> {
    let listeners = crate::server::Listeners::bind_with(cfg.http, cfg.grpc, cfg.reuse_port)
        .await
        .map_err(|e| format!("binding {}: {e}", cfg.http))?;
    let app = crate::app::App::start(cfg.clone(), args.config.clone()).await?;
    tracing::info!(http = %listeners.http.local_addr().map(|a| a.to_string()).unwrap_or_default(),
        grpc = %listeners.grpc.as_ref().and_then(|g| g.local_addr().ok()).map(|a| a.to_string()).unwrap_or_default(),
        "ready");
    let signals = crate::server::signals(app.clone());
    crate::server::serve(
        app,
        listeners,
        signals,
        Duration::from_secs(args.drain_seconds),
    )
    .await
    .map_err(|e| e.to_string())
}

/// The health check: probes the readiness of the server a configuration describes.
fn health(config: &std::path::Path) -> ExitCode {
    let cfg = match ServeConfig::from_file(config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    let mut addr = cfg.http;
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    // With TLS on, the listener accepting connections is the check (the probe speaks plain HTTP).
    if cfg.tls.is_some() {
        return match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(3)) {
            Ok(_) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("{addr}: {e}");
                ExitCode::from(1)
            }
        };
    }
    let url = format!("http://{addr}/v2/health/ready");
    let ready = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .ok()
        .and_then(|rt| {
            rt.block_on(async {
                let c = reqwest::Client::builder()
                    .timeout(Duration::from_secs(3))
                    .build()
                    .ok()?;
                Some(c.get(&url).send().await.ok()?.status().is_success())
            })
        })
        .unwrap_or(false);
    if ready {
        ExitCode::SUCCESS
    } else {
        eprintln!("{url}: not ready");
        ExitCode::from(1)
    }
}

/// Runs the command line `args` (the first item is the program name) and returns its exit code.
pub fn main_from<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match cli.command {
        Command::Inspect { model } => match crate::signature::read(&model) {
            Ok(sig) => {
                println!("{}", serde_json::to_string_pretty(&sig).unwrap_or_default());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Validate(a) => validate(a),
        Command::DeviceCheck {
            models,
            free_size,
            runs,
        } => {
            let checks: Vec<_> = models
                .into_iter()
                .map(|model| crate::device_check::Check {
                    model,
                    free_size,
                    runs,
                })
                .collect();
            match crate::device_check::run(&checks) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Health { config } => health(&config),
        Command::Image {
            binary,
            out,
            rootfs,
            tag,
            revision,
            created,
            compression,
        } => {
            let binary = match binary.map_or_else(std::env::current_exe, Ok) {
                Ok(b) => b,
                Err(e) => {
                    eprintln!("error: cannot find this binary: {e}");
                    return ExitCode::from(2);
                }
            };
            let version = env!("CARGO_PKG_VERSION").to_string();
            let spec = crate::image::Spec {
                binary,
                tag: tag.unwrap_or_else(|| version.clone()),
                version,
                revision,
                source: env!("CARGO_PKG_REPOSITORY").to_string(),
                created,
                compression,
            };
            if let Some(dir) = rootfs {
                return match crate::image::write_rootfs(&spec, &dir) {
                    Ok(bytes) => {
                        println!("{}: {bytes} bytes", dir.display());
                        ExitCode::SUCCESS
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        ExitCode::from(2)
                    }
                };
            }
            let Some(out) = out else {
                eprintln!("error: give --out or --rootfs");
                return ExitCode::from(2);
            };
            match crate::image::build(&spec, &out) {
                Ok(b) => {
                    println!("{}", serde_json::to_string_pretty(&b).unwrap_or_default());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Bench(a) => bench(a),
        Command::Floor {
            http,
            body,
            grpc,
            answer_from,
            model,
            payload,
        } => match floor(http, body, grpc, answer_from, model, payload) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Copy { from, to } => match copy(&from, &to) {
            Ok(msg) => {
                println!("{msg}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::from(2)
            }
        },
        Command::Baseline {
            dataset,
            target,
            features,
            model,
            out,
        } => {
            match crate::baseline::compute(
                &dataset,
                target.as_deref(),
                features.as_deref(),
                model.as_deref(),
            )
            .and_then(|b| {
                std::fs::write(&out, serde_json::to_vec_pretty(&b).unwrap_or_default())
                    .map(|_| b)
                    .map_err(|e| format!("{}: {e}", out.display()))
            }) {
                Ok(b) => {
                    println!(
                        "baseline of {} rows and {} features written to {}",
                        b.rows,
                        b.features.len(),
                        out.display()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
        Command::Serve(args) => {
            init_logs(&args.log_format);
            let cfg = match config_from(&args) {
                Ok(c) => c,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve");
                    eprintln!("error: {e}");
                    return ExitCode::from(2);
                }
            };
            // Model compute runs on blocking threads bounded by `workers`; keeping the pool
            // that small also keeps the allocator's per-thread arenas (and so RSS) small.
            let workers = cfg.limits.workers.unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            });
            let rt = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .max_blocking_threads(workers + 2)
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    eprintln!("error: cannot start the runtime: {e}");
                    return ExitCode::from(2);
                }
            };
            match rt.block_on(serve(args, cfg)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "cannot serve");
                    eprintln!("error: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// `copy`: one side local, the other an object (the location's path is the object's key).
fn copy(from: &str, to: &str) -> Result<String, String> {
    use crate::objects::{self, Auth, Location};
    let remote = |u: &str| u.starts_with("s3://") || u.starts_with("az://");
    let object = |u: &str| -> Result<(Location, object_store::path::Path), String> {
        let mut loc = Location::parse(u)?;
        if loc.prefix.is_empty() {
            return Err(format!("{u}: name the object, e.g. s3://BUCKET/KEY"));
        }
        let key = std::mem::take(&mut loc.prefix);
        Ok((loc, object_store::path::Path::from(key)))
    };
    let rt = tokio::runtime::Runtime::new().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let t0 = std::time::Instant::now();
        let (sha, n, what) = match (remote(from), remote(to)) {
            (false, true) => {
                let (loc, key) = object(to)?;
                let store = loc.open(&Auth::from_env()).await?;
                let (sha, n) =
                    objects::upload_file(&store, &key, std::path::Path::new(from)).await?;
                (sha, n, "uploaded")
            }
            (true, false) => {
                let (loc, key) = object(from)?;
                let store = loc.open(&Auth::from_env()).await?;
                // The digest recorded at upload, when there is one, is checked.
                let want = objects::head(&store, &key).await?.and_then(|(sha, _)| sha);
                let (sha, n) =
                    objects::download_file(&store, &key, std::path::Path::new(to), want.as_deref())
                        .await
                        .map_err(|e| match e {
                            objects::DownloadError::NotFound => format!("{from}: no such object"),
                            objects::DownloadError::Other(e) => e,
                        })?;
                (sha, n, "downloaded")
            }
            _ => {
                return Err(
                    "one side of copy must be a local file and the other s3://… or az://…".into(),
                )
            }
        };
        let secs = t0.elapsed().as_secs_f64();
        Ok(format!(
            "{what} {n} bytes in {secs:.2} s ({:.0} MB/s), sha256 {sha}",
            n as f64 / 1e6 / secs.max(1e-9)
        ))
    })
}

/// The benchmark floors: the same runtime and stacks as `serve`, a fixed answer.
fn floor(
    http: Option<SocketAddr>,
    body: Option<PathBuf>,
    grpc: Option<SocketAddr>,
    answer_from: Option<String>,
    model: Option<String>,
    payload: Option<PathBuf>,
) -> Result<(), String> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async move {
        let http = match (http, body) {
            (Some(a), Some(b)) => Some((
                a,
                bytes::Bytes::from(std::fs::read(&b).map_err(|e| format!("{}: {e}", b.display()))?),
            )),
            _ => None,
        };
        let grpc = match (grpc, answer_from, model, payload) {
            (Some(a), Some(url), Some(m), Some(p)) => {
                let text =
                    std::fs::read_to_string(&p).map_err(|e| format!("{}: {e}", p.display()))?;
                let payload: serde_json::Value =
                    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
                Some((a, crate::floor::grpc_answer(&url, &m, &payload).await?))
            }
            _ => None,
        };
        crate::floor::run(crate::floor::Floor { http, grpc }).await
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_command_line_is_well_formed() {
        use clap::CommandFactory;
        super::Cli::command().debug_assert();
    }

    #[test]
    fn durations_parse() {
        use std::time::Duration;
        assert_eq!(
            super::parse_duration("10s").unwrap(),
            Duration::from_secs(10)
        );
        assert_eq!(
            super::parse_duration("500ms").unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(
            super::parse_duration("2m").unwrap(),
            Duration::from_secs(120)
        );
        assert!(super::parse_duration("ten").is_err());
        assert!(super::parse_duration("5y").is_err());
    }
}
