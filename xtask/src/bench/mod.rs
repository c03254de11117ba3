//! Benchmarks. Each runs the comparison side by side in one run and prints ratios; none is
//! a timed test.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Subcommand;

use crate::{build_provider, install_provider, root, terraform};

#[derive(Subcommand)]
pub enum Which {
    /// `terraform plan` of N modelplane_model_signature data sources, and of N
    /// modelplane_model resources, each vs N terraform_data resources; and the provider's
    /// time from start to handshake.
    Provider {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// The quickstart applied from nothing to a ready, benchmarked endpoint (after the
    /// build), then destroyed; median of `repeat` runs.
    Quickstart {
        #[arg(long, default_value_t = 3)]
        repeat: usize,
    },
    /// modelplane-serve against two floors (nginx and the server's own stack, axum and
    /// tonic, answering a fixed response) and peers (KServe and MLServer with onnxruntime,
    /// each in the best of the worker settings tried), over REST JSON, REST binary and gRPC,
    /// with two load generators (wrk and modelplane-serve's own), in alternating rounds;
    /// modelplane-serve with and without drift statistics in one process; PP-OCR recognition
    /// in process, tract vs onnxruntime. Prints medians and the goals. Needs wrk and nginx
    /// (`apt-get install wrk nginx-light`).
    Serve {
        /// Measured seconds per case.
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Rounds (the order of the systems rotates every round); medians are reported.
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
        concurrency: Vec<usize>,
        /// Models: fixture names, and `image` (a [N,3,224,224] FP32 input, generated).
        #[arg(long, value_delimiter = ',', default_value = "iris,image")]
        models: Vec<String>,
        #[arg(
            long,
            value_delimiter = ',',
            value_enum,
            default_value = "json,binary,grpc"
        )]
        protocols: Vec<serve::Protocol>,
        /// Leave KServe and MLServer out.
        #[arg(long)]
        no_peers: bool,
        /// Leave the in-process PP-OCR comparison out.
        #[arg(long)]
        no_compute: bool,
    },
    /// The bundled image: its size (goal at most 30 MB), cold start to ready in a container
    /// vs the same binary as a process, and throughput in the container vs the process on the
    /// same model (goal within 10%). Needs podman or docker.
    Container {
        /// podman or docker.
        #[arg(long, default_value = "podman")]
        engine: String,
        /// Arguments for the engine's `run` (the container shares the host's network, so both
        /// servers are reached the same way).
        #[arg(long = "run-arg", default_values_t = ["--network=host".to_string()])]
        run_args: Vec<String>,
        /// Cold starts to time, each way.
        #[arg(long, default_value_t = 5)]
        starts: usize,
        /// Measured seconds of load per case.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
    },
    /// A remote variant's cost: requests to a modelplane-serve endpoint whose only variant is
    /// another server, against the same requests sent to that server directly, at
    /// concurrency 1 and 16, in alternating rounds; prints the added latency (goal at most
    /// 0.2 ms p50 at concurrency 1 on loopback) and the throughput ratio.
    Remote {
        /// Measured seconds per case (after a 1 s warm-up).
        #[arg(long, default_value_t = 3)]
        seconds: u64,
        /// Alternating rounds per concurrency (medians reported).
        #[arg(long, default_value_t = 3)]
        rounds: usize,
        /// `rest` or `grpc` between the proxy and the remote.
        #[arg(long, default_value = "rest")]
        protocol: String,
    },
    /// The thousand-model paradigm: one shared server with `registered` small models and a
    /// memory budget for `resident` of them (memory per unloaded model, resident, cold and
    /// Zipf-mix latency at concurrency 16); then `count` attachments through Terraform vs
    /// `count` terraform_data and `dedicated` dedicated endpoints on `local`.
    Scale {
        #[arg(long, default_value_t = 1000)]
        count: usize,
        /// Dedicated endpoints to compare with (one server process each; 1000 needs about
        /// 1000 x 15 MiB of memory).
        #[arg(long, default_value_t = 100)]
        dedicated: usize,
        #[arg(long, default_value_t = 10_000)]
        registered: usize,
        #[arg(long, default_value_t = 500)]
        resident: usize,
        /// Measured seconds per load case.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Only the server's part (no Terraform).
        #[arg(long)]
        server_only: bool,
    },
    /// Upload and download of a large artifact against moto (S3 API): modelplane's data plane
    /// vs boto3's transfer manager, with each process's peak RSS.
    Transfer {
        /// Artifact size in MiB.
        #[arg(long, default_value_t = 1024)]
        size_mb: u64,
    },
}

mod container;
mod remote;
mod scale;
mod serve;
mod transfer;
mod wrk;

pub fn run(which: Which) -> Result<()> {
    match which {
        Which::Provider { count, repeat } => provider(count, repeat),
        Which::Serve {
            seconds,
            rounds,
            concurrency,
            models,
            protocols,
            no_peers,
            no_compute,
        } => serve::run(&serve::Options {
            seconds,
            rounds,
            concurrency,
            models,
            protocols,
            peers: !no_peers,
            compute: !no_compute,
        }),
        Which::Quickstart { repeat } => quickstart(repeat),
        Which::Transfer { size_mb } => transfer::run(size_mb),
        Which::Scale {
            count,
            dedicated,
            registered,
            resident,
            seconds,
            server_only,
        } => scale::run(count, dedicated, registered, resident, seconds, server_only),
        Which::Remote {
            seconds,
            rounds,
            protocol,
        } => remote::run(seconds, rounds, &protocol),
        Which::Container {
            engine,
            run_args,
            starts,
            seconds,
        } => container::run(&engine, &run_args, starts, seconds),
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn time_plan(tf: &Path, cfg: &Path, dir: &Path, repeat: usize) -> Result<Duration> {
    let tfc = |args: &[&str]| {
        let mut c = Command::new(tf);
        c.current_dir(dir)
            .env("TF_CLI_CONFIG_FILE", cfg)
            .env("CHECKPOINT_DISABLE", "1")
            .args(args)
            .stdout(Stdio::null());
        c
    };
    crate::run(&mut tfc(&["init", "-input=false"]))?;
    // one warm-up, then the measured runs
    let mut times = Vec::new();
    for i in 0..=repeat {
        let t = Instant::now();
        crate::run(&mut tfc(&["plan", "-input=false", "-lock=false"]))?;
        if i > 0 {
            times.push(t.elapsed());
        }
    }
    Ok(median(times))
}

fn provider(count: usize, repeat: usize) -> Result<()> {
    let tf = terraform::ensure()?;
    let bin = build_provider(true)?;
    let cfg = install_provider(&bin)?;
    let work = root().join("target/bench-provider");
    let _ = std::fs::remove_dir_all(&work);
    let (a, b, c) = (
        work.join("modelplane"),
        work.join("terraform_data"),
        work.join("modelplane_model"),
    );
    for d in [&a, &b, &c] {
        std::fs::create_dir_all(d)?;
    }
    let model = root().join("examples/quickstart/model/iris-v1.onnx");
    let header = "terraform {\n  required_providers {\n    modelplane = { source = \"modelplane/modelplane\" }\n  }\n}\n";
    let mut ha = String::from(header);
    let mut hb = String::new();
    let mut hc = format!(
        "{header}provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n}}\nresource \"modelplane_model_store\" \"s\" {{\n  name    = \"bench\"\n  backend = \"local\"\n}}\n",
        work.join("state").display().to_string()
    );
    for i in 0..count {
        ha.push_str(&format!(
            "data \"modelplane_model_signature\" \"m{i}\" {{\n  path = {:?}\n}}\n",
            model.display().to_string()
        ));
        hb.push_str(&format!(
            "resource \"terraform_data\" \"r{i}\" {{\n  input = \"r{i}\"\n}}\n"
        ));
        hc.push_str(&format!(
            "resource \"modelplane_model\" \"m{i}\" {{\n  store   = modelplane_model_store.s.id\n  name    = \"m{i}\"\n  version = \"1\"\n  source  = {:?}\n  lineage {{\n    description = \"model {i}\"\n  }}\n}}\n",
            model.display().to_string()
        ));
    }
    std::fs::write(a.join("main.tf"), ha)?;
    std::fs::write(b.join("main.tf"), hb)?;
    std::fs::write(c.join("main.tf"), hc)?;
    eprintln!("==> planning {count} data sources, {count} modelplane_model and {count} terraform_data resources ({repeat} runs each, median)");
    let ta = time_plan(&tf, &cfg, &a, repeat)?;
    let tb = time_plan(&tf, &cfg, &b, repeat)?;
    let tc = time_plan(&tf, &cfg, &c, repeat)?;
    let (t_aws, t_k8s, t_aws_off) = platforms_plan(&tf, &cfg, &work, repeat)?;
    let start = startup(&bin, 20)?;
    println!("\nbench provider ({}):", tf.display());
    println!("  {:<44} {:>10}", "case", "time");
    println!(
        "  {:<44} {:>9.2}s",
        format!("plan, {count} x terraform_data"),
        tb.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}s",
        format!("plan, {count} x modelplane_model_signature"),
        ta.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}x   (goal <= 1.30x)",
        "  ratio to terraform_data",
        ta.as_secs_f64() / tb.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}s",
        format!("plan, {count} x modelplane_model"),
        tc.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}x   (goal <= 1.30x)",
        "  ratio to terraform_data",
        tc.as_secs_f64() / tb.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}s",
        "plan, kubernetes: cluster + 100 endpoints",
        t_k8s.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}s",
        "plan, aws: cluster, 10 node groups, 100 endp.",
        t_aws.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}x   (goal <= 1.20x)",
        "  ratio aws to kubernetes",
        t_aws.as_secs_f64() / t_k8s.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}s",
        "  the same without estimates (estimates=false)",
        t_aws_off.as_secs_f64()
    );
    println!(
        "  {:<44} {:>9.2}x   (goal: no measurable cost, ~1.00x)",
        "  ratio with estimates to without",
        t_aws.as_secs_f64() / t_aws_off.as_secs_f64()
    );
    println!(
        "  {:<44} {:>8.1}ms  (median of 20, incl. certificate generation)",
        "provider start to handshake",
        start.as_secs_f64() * 1e3
    );
    Ok(())
}

/// `terraform plan` of a new cluster and 100 endpoints on it, on `aws` (with 10 node groups)
/// and on `kubernetes` (partitions only: it has no node groups). A new configuration plans
/// without asking AWS or the API server anything, so neither needs to be reachable.
fn platforms_plan(
    tf: &Path,
    cfg: &Path,
    work: &Path,
    repeat: usize,
) -> Result<(Duration, Duration, Duration)> {
    let header = "terraform {\n  required_providers {\n    modelplane = { source = \"modelplane/modelplane\" }\n  }\n}\n";
    let partitions = "  partition {\n    purpose = \"inference\"\n    gpus    = 40\n  }\n  partition {\n    purpose = \"dev\"\n    gpus    = 4\n  }\n";
    let endpoints = || {
        (0..100)
            .map(|i| format!("resource \"modelplane_endpoint\" \"e{i}\" {{\n  name    = \"e{i}\"\n  cluster = modelplane_gpu_cluster.c.id\n  image   = \"registry.example/modelplane-serve@sha256:{}\"\n  variant {{\n    name   = \"a\"\n    model  = \"s3://models/m{i}/1\"\n    weight = 100\n  }}\n  kubernetes {{\n    min_replicas = 2\n    max_replicas = 4\n  }}\n  pricing {{\n    instance_type = \"g5.xlarge\"\n  }}\n}}\n", "0".repeat(64)))
            .collect::<String>()
    };
    let pools: String = (0..10)
        .map(|i| format!("  node_pool {{\n    name          = \"p{i}\"\n    purpose       = \"inference\"\n    instance_type = \"g5.xlarge\"\n    gpu_count     = 1\n    min_size      = 1\n    max_size      = 4\n  }}\n"))
        .collect();
    let aws = |pricing: &str| {
        format!(
        "{header}provider \"modelplane\" {{\n  aws {{\n    region = \"us-east-1\"\n  }}\n{pricing}}}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name     = \"gpu\"\n  platform = \"aws\"\n  aws {{\n    subnet_ids = [\"subnet-0a\", \"subnet-0b\"]\n  }}\n{pools}{partitions}}}\n{}",
        endpoints()
    )
    };
    let k8s = format!(
        "{header}provider \"modelplane\" {{\n  kubernetes {{\n    host = \"https://127.0.0.1:1\"\n  }}\n}}\nresource \"modelplane_gpu_cluster\" \"c\" {{\n  name     = \"gpu\"\n  platform = \"kubernetes\"\n{partitions}}}\n{}",
        endpoints()
    );
    let (da, dk, doff) = (
        work.join("aws"),
        work.join("kubernetes"),
        work.join("aws-no-estimates"),
    );
    for (d, text) in [
        (&da, aws("")),
        (&dk, k8s),
        (&doff, aws("  pricing {\n    estimates = false\n  }\n")),
    ] {
        std::fs::create_dir_all(d)?;
        std::fs::write(d.join("main.tf"), text)?;
    }
    eprintln!("==> planning a cluster and 100 endpoints on aws (10 node groups; with and without cost estimates) and on kubernetes ({repeat} runs each, median)");
    // Alternating, so both see the same machine.
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for _ in 0..repeat {
        with.push(time_plan(tf, cfg, &da, 1)?);
        without.push(time_plan(tf, cfg, &doff, 1)?);
    }
    Ok((
        median(with),
        time_plan(tf, cfg, &dk, repeat)?,
        median(without),
    ))
}

/// `terraform apply` of the quickstart from nothing, in a copy with its own state folder.
fn quickstart(repeat: usize) -> Result<()> {
    let tf = terraform::ensure()?;
    eprintln!("==> building the provider (release)");
    let bin = build_provider(true)?;
    let cfg = install_provider(&bin)?;
    let work = root().join("target/bench-quickstart");
    let _ = std::fs::remove_dir_all(&work);
    let dir = work.join("quickstart");
    copy_dir(&root().join("examples/quickstart"), &dir)?;
    let state = work.join("state");
    let tfc = |args: &[&str]| {
        let mut c = Command::new(&tf);
        c.current_dir(&dir)
            .env("TF_CLI_CONFIG_FILE", &cfg)
            .env("CHECKPOINT_DISABLE", "1")
            .env("TF_VAR_state_dir", &state)
            .args(args)
            .stdout(Stdio::null());
        c
    };
    crate::run(&mut tfc(&["init", "-input=false"]))?;
    let mut times = Vec::new();
    for i in 0..repeat {
        eprintln!("==> apply {} of {repeat}", i + 1);
        let t = Instant::now();
        crate::run(&mut tfc(&["apply", "-auto-approve", "-input=false"]))?;
        times.push(t.elapsed());
        crate::run(&mut tfc(&["destroy", "-auto-approve", "-input=false"]))?;
    }
    let total = median(times);
    println!("\nbench quickstart ({}):", tf.display());
    println!(
        "  {:<52} {:>8.2}s   (goal <= 5 s)",
        "apply from nothing to a ready, benchmarked endpoint",
        total.as_secs_f64()
    );
    println!(
        "  (includes the 2 s load test of the quickstart's benchmark hook and two validations)"
    );
    Ok(())
}

fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to)?;
    for e in std::fs::read_dir(from)? {
        let e = e?;
        let name = e.file_name();
        let n = name.to_string_lossy();
        if n.starts_with(".terraform") || n.starts_with("terraform.tfstate") {
            continue;
        }
        if e.file_type()?.is_dir() {
            copy_dir(&e.path(), &to.join(&name))?;
        } else {
            std::fs::copy(e.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// Median time from starting the provider (as Terraform does, with a P-521 client
/// certificate) to its handshake line.
fn startup(bin: &Path, n: usize) -> Result<Duration> {
    let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P521_SHA512)?;
    let params = rcgen::CertificateParams::new(vec!["localhost".into()])?;
    let pem = params.self_signed(&key)?.pem();
    let mut times = Vec::new();
    for _ in 0..n {
        let t = Instant::now();
        let mut child = Command::new(bin)
            .env(
                "TF_PLUGIN_MAGIC_COOKIE",
                "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2",
            )
            .env("PLUGIN_PROTOCOL_VERSIONS", "6")
            .env("PLUGIN_CLIENT_CERT", &pem)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .context("starting the provider")?;
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout")).read_line(&mut line)?;
        times.push(t.elapsed());
        let _ = child.kill();
        let _ = child.wait();
        if !line.starts_with("1|6|") {
            bail!("unexpected handshake line {line:?}");
        }
    }
    Ok(median(times))
}
