//! `cargo xtask …`: the project's single entry point for the quickstart, tests, docs and
//! benchmarks.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use clap::{Parser, Subcommand};

mod bench;
mod modules;
mod release;
mod terraform;
mod tools;

#[derive(Parser)]
#[command(name = "cargo xtask", about = "Modelplane project tasks")]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the provider, install it locally and `terraform apply` examples/quickstart.
    Quickstart {
        /// Destroy what the quickstart created instead.
        #[arg(long)]
        destroy: bool,
        /// Use a dev build of the provider (what `cargo xtask test` already built) instead of
        /// the release build. CI runs the quickstart this way: the release build is a second
        /// compilation of every dependency (about 25 minutes on two cores), and the quickstart
        /// model meets its SLO either way.
        #[arg(long)]
        dev: bool,
    },
    /// Run every test: unit, property, handshake and acceptance tests through real Terraform.
    Test {
        /// Go on when system tools are missing (their tests skip and are listed at the end)
        /// instead of failing; without it, a run that skipped anything exits non-zero.
        #[arg(long)]
        allow_skips: bool,
        /// Extra arguments for `cargo test` (e.g. a test name filter).
        #[arg(trailing_var_arg = true)]
        args: Vec<String>,
    },
    /// Regenerate docs/ from the schemas and examples/ (or only check with --check).
    Docs {
        #[arg(long)]
        check: bool,
    },
    /// Regenerate what modules/ and blueprints/ share: the blueprints' endpoint fields (from
    /// modules/endpoint/variables.tf) and the READMEs' Inputs and Outputs tables (or only
    /// check with --check).
    Modules {
        #[arg(long)]
        check: bool,
    },
    /// Print the terraform binary the tasks use, installing one when none is found.
    Terraform,
    /// What the suite, the quickstart and a release need: present or missing, and how to
    /// install what is missing.
    Doctor,
    /// Build the bundled inference image (release `modelplane-serve`, no shell, non-root) as
    /// an OCI image layout, with no container engine; prints its digest and sizes.
    Image {
        /// Output folder (default target/image/modelplane-serve).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// The GPU check: builds `modelplane-serve --features cuda` (into target/cuda), then runs
    /// its `device-check` on the fixture models and PP-OCR's detection model (from
    /// .tools/real-models-venv): NVML inventory, cuda vs CPU outputs and latencies. Fails
    /// clearly where no NVIDIA GPU is present. With --build-only, stops after the build
    /// (what a GPU machine needs: target/cuda/release/modelplane-serve).
    DeviceCheck {
        #[arg(long)]
        build_only: bool,
    },
    /// Summarise the price table shipped with the provider (provider/src/cost/prices.csv) and
    /// print how to refresh it from the public price lists (AWS Price List bulk offer files,
    /// the Azure Retail Prices API) on a machine that reaches them.
    Prices,
    /// Release artifacts in target/release-artifacts: per-platform zips, manifest, SHA256SUMS
    /// (+ .sig with --gpg-key), a provider network mirror, and the image as an OCI layout.
    Release(release::Args),
    /// Benchmarks, each comparing side by side in one run.
    Bench {
        #[command(subcommand)]
        which: bench::Which,
    },
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// Runs a command, failing with its name when it fails.
pub fn run(cmd: &mut Command) -> Result<()> {
    let desc = format!("{cmd:?}");
    let status = cmd.status().with_context(|| format!("starting {desc}"))?;
    if !status.success() {
        bail!("{desc} failed ({status})");
    }
    Ok(())
}

/// Builds the provider binary; returns its path.
pub fn build_provider(release: bool) -> Result<PathBuf> {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root())
        .args(["build", "--quiet", "-p", "terraform-provider-modelplane"]);
    if release {
        c.arg("--release");
    }
    run(&mut c)?;
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"));
    Ok(target
        .join(if release { "release" } else { "debug" })
        .join("terraform-provider-modelplane"))
}

/// Installs the provider binary into the project's filesystem mirror and writes a CLI
/// configuration naming it; returns the configuration file for `TF_CLI_CONFIG_FILE`.
pub fn install_provider(binary: &Path) -> Result<PathBuf> {
    let tools = root().join(".tools");
    let version = env!("CARGO_PKG_VERSION");
    let (os, arch) = (
        std::env::consts::OS,
        if std::env::consts::ARCH == "x86_64" {
            "amd64"
        } else {
            "arm64"
        },
    );
    let dir = tools
        .join("mirror/registry.terraform.io/modelplane/modelplane")
        .join(version)
        .join(format!("{os}_{arch}"));
    std::fs::create_dir_all(&dir)?;
    let dest = dir.join(format!("terraform-provider-modelplane_v{version}"));
    let tmp = dir.join(".incoming");
    std::fs::copy(binary, &tmp).with_context(|| format!("copying {}", binary.display()))?;
    std::fs::rename(&tmp, &dest)?;
    let cfg = tools.join("terraformrc");
    std::fs::write(
        &cfg,
        format!(
            "# Written by cargo xtask: installs the locally built provider like a registry would.\n\
             provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"registry.terraform.io/modelplane/modelplane\"]\n  }}\n  direct {{\n    exclude = [\"registry.terraform.io/modelplane/modelplane\"]\n  }}\n}}\n",
            tools.join("mirror").display().to_string()
        ),
    )?;
    Ok(cfg)
}

fn quickstart(destroy: bool, dev: bool) -> Result<()> {
    let tf = terraform::ensure()?;
    eprintln!(
        "==> building the provider ({})",
        if dev { "dev profile" } else { "release" }
    );
    let bin = if dev {
        // The tests' build, features unified across the workspace as `cargo xtask test`
        // compiled it: a no-op after the tests (a `cargo build -p` would recompile the crates
        // whose features differ).
        run(&mut test_build())?;
        target_dir().join("debug/terraform-provider-modelplane")
    } else {
        build_provider(true)?
    };
    let cfg = install_provider(&bin)?;
    let dir = root().join("examples/quickstart");
    let tfc = |args: &[&str]| {
        let mut c = Command::new(&tf);
        c.current_dir(&dir)
            .env("TF_CLI_CONFIG_FILE", &cfg)
            .env("CHECKPOINT_DISABLE", "1")
            .args(args);
        c
    };
    // A rebuilt provider has a new checksum: let init record it again.
    let _ = std::fs::remove_file(dir.join(".terraform.lock.hcl"));
    eprintln!("==> terraform init");
    run(tfc(&["init", "-input=false", "-upgrade"]).stdout(std::process::Stdio::null()))?;
    if destroy {
        eprintln!("==> terraform destroy");
        return run(&mut tfc(&["destroy", "-auto-approve", "-input=false"]));
    }
    eprintln!("==> terraform apply");
    let t = std::time::Instant::now();
    run(&mut tfc(&["apply", "-auto-approve", "-input=false"]))?;
    let applied = t.elapsed();
    // One real prediction through the endpoint the apply brought up.
    let out = tfc(&["output", "-json"])
        .output()
        .context("terraform output")?;
    let outputs: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("terraform output -json")?;
    let url = outputs["url"]["value"]
        .as_str()
        .context("no `url` output")?;
    let token_file = outputs["token_file"]["value"]
        .as_str()
        .context("no `token_file` output")?;
    let token =
        std::fs::read_to_string(token_file).with_context(|| format!("reading {token_file}"))?;
    let body = std::fs::read_to_string(dir.join("data/request.json"))?;
    let resp = reqwest::blocking::Client::new()
        .post(format!("{url}/v2/models/iris/infer"))
        .bearer_auth(token.trim())
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .context("sending the prediction request")?;
    let variant = resp
        .headers()
        .get("x-modelplane-variant")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("?")
        .to_string();
    let status = resp.status();
    let answer: serde_json::Value = resp.json().context("reading the prediction")?;
    if !status.is_success() {
        bail!("the endpoint answered HTTP {status}: {answer}");
    }
    let labels = answer["outputs"]
        .as_array()
        .and_then(|o| o.iter().find(|t| t["name"] == "label"))
        .map(|t| t["data"].clone())
        .unwrap_or_default();
    let species = ["setosa", "versicolor", "virginica"];
    let names: Vec<&str> = labels
        .as_array()
        .map(|l| {
            l.iter()
                .filter_map(|v| v.as_u64())
                .map(|i| species.get(i as usize).copied().unwrap_or("?"))
                .collect()
        })
        .unwrap_or_default();
    println!(
        "\nApplied in {:.1}s. One real prediction from {url}/v2/models/iris/infer:",
        applied.as_secs_f64()
    );
    println!(
        "  request:  {}",
        body.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    println!(
        "  answer:   labels {labels} = {names:?} (variant {variant}, model iris v{})",
        answer["model_version"].as_str().unwrap_or("?")
    );
    println!(
        "\nTry it yourself:\n  {}\n\nTo run terraform yourself in examples/quickstart:\n  export TF_CLI_CONFIG_FILE={}\n  {} -chdir=examples/quickstart output\n\
         Remove everything with: cargo xtask quickstart --destroy",
        outputs["curl"]["value"].as_str().unwrap_or(""),
        cfg.display(),
        tf.display()
    );
    Ok(())
}

fn docs(check: bool) -> Result<()> {
    let bin = build_provider(false)?;
    let mut c = Command::new(bin);
    c.current_dir(root())
        .args(["docs", "--out", "docs", "--examples", "examples"]);
    if check {
        c.arg("--check");
    }
    run(&mut c)
}

/// The S3 emulator the object-store tests run against (boto3 comes with it, for the transfer
/// benchmark's peer).
pub const MOTO: &[&str] = &["moto[server]==5.1.18"];
/// The validator of Kubernetes objects against the official schemas (1.29 to 1.33).
pub const KUBERNETES_VALIDATE: &[&str] = &["kubernetes-validate==1.33.1"];
/// Microsoft's models of the AKS API, against which the tests check every request body.
pub const AZURE_MODELS: &[&str] = &[
    "azure-mgmt-containerservice==41.8.0",
    "azure-mgmt-containerregistry==15.0.0",
    "azure-mgmt-authorization==4.0.0",
    "azure-mgmt-msi==7.1.0",
];
/// The Azure Blob Storage emulator (npm).
pub const AZURITE: &str = "azurite@3.35.0";

/// Installs Azurite into `.tools/azurite` (once) and returns its `azurite-blob` launcher.
pub fn azurite() -> Result<PathBuf> {
    let dir = root().join(".tools/azurite");
    let bin = dir.join("node_modules/.bin/azurite-blob");
    let stamp = dir.join(".installed");
    if bin.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(AZURITE) {
        return Ok(bin);
    }
    if which("npm").is_none() {
        bail!("npm not found: install Node.js 18+ (Debian: apt-get install nodejs npm) for the Azurite emulator");
    }
    eprintln!("==> installing {AZURITE} into .tools/azurite");
    std::fs::create_dir_all(&dir)?;
    run(Command::new("npm")
        .current_dir(&dir)
        .args([
            "install",
            "--silent",
            "--no-audit",
            "--no-fund",
            "--prefix",
            ".",
        ])
        .arg(AZURITE))?;
    std::fs::write(&stamp, AZURITE)?;
    Ok(bin)
}

/// Real models as PyPI packages ship them (magika's file-type model, rapidocr-onnxruntime's
/// PP-OCR models), with onnxruntime for reference outputs and tritonclient to send them.
pub const REAL_MODELS: &[&str] = &[
    "magika==1.0.3",
    "rapidocr-onnxruntime==1.4.4",
    "onnxruntime==1.32.0",
    "opencv-python==5.0.0.93",
    "PyYAML==6.0.4",
    "numpy==2.4.6",
    "onnx==1.23.2",
    "pillow==13.0.0",
    "tritonclient[http,grpc]==2.73.0",
];

/// The standard Open Inference Protocol clients the server is tested with.
pub const CLIENTS: &[&str] = &["tritonclient[http,grpc]==2.73.0", "kserve==0.21.0", "numpy"];

/// The build of every test target, the provider's binary included (target/debug).
fn test_build() -> Command {
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root()).args([
        "test",
        "--workspace",
        "--all-targets",
        "--no-run",
        "--quiet",
    ]);
    c
}

fn test(args: Vec<String>, allow_skips: bool) -> Result<()> {
    let started = std::time::Instant::now();
    // System tools first: installed (as root, through apt) or a clear stop before anything
    // is built.
    tools::ensure_system(allow_skips)?;
    // The tests compile while the tools install: compiling takes the CPUs, installing is
    // mostly waiting on the network and the disk, so a fresh machine gets both in the time
    // of the longer one. The installs run side by side too (each into its own folder).
    let mut build = test_build()
        .spawn()
        .context("starting cargo test --no-run")?;
    let tools = std::thread::scope(|s| {
        let env = |name: &'static str, packages: &'static [&'static str]| {
            s.spawn(move || terraform::python_env(name, packages))
        };
        let tf = s.spawn(terraform::ensure);
        let clients = env("clients-venv", CLIENTS);
        let real_models = env("real-models-venv", REAL_MODELS);
        let moto = env("moto-venv", MOTO);
        let kv = env("kubernetes-validate-venv", KUBERNETES_VALIDATE);
        let azure_models = env("azure-models-venv", AZURE_MODELS);
        let azurite = s.spawn(azurite);
        let join = |h: std::thread::ScopedJoinHandle<'_, Result<PathBuf>>| {
            h.join()
                .unwrap_or_else(|_| bail!("a tool install panicked"))
        };
        Ok::<_, anyhow::Error>((
            join(tf)?,
            join(clients)?,
            join(real_models)?,
            join(moto)?,
            join(azurite)?,
            join(kv)?,
            join(azure_models)?,
        ))
    });
    let built = build.wait().context("waiting for cargo test --no-run")?;
    let (tf, clients, real_models, moto, azurite, kv, azure_models) = tools?;
    if !built.success() {
        bail!("building the tests failed (see the compiler's messages above)");
    }
    eprintln!(
        "==> tests built and tools installed in {:.0}s; terraform: {}",
        started.elapsed().as_secs_f64(),
        tf.display()
    );
    let skips = tools::skip_log();
    let _ = std::fs::remove_file(&skips);
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root())
        .args(["test", "--workspace", "--all-targets"])
        .env("TF_ACC", "1")
        .env("TF_ACC_TERRAFORM_PATH", &tf)
        .env("MODELPLANE_CLIENTS_PYTHON", &clients)
        .env("MODELPLANE_REAL_MODELS_PYTHON", &real_models)
        .env("MODELPLANE_MOTO_SERVER", moto.with_file_name("moto_server"))
        .env("MODELPLANE_AZURITE_BLOB", &azurite)
        .env("MODELPLANE_AZURE_MODELS_PYTHON", &azure_models)
        .env(
            "MODELPLANE_KUBERNETES_VALIDATE",
            kv.with_file_name("kubernetes-validate"),
        )
        .env("MODELPLANE_SKIP_LOG", &skips)
        .env("CHECKPOINT_DISABLE", "1");
    let filtered = !args.is_empty();
    if filtered {
        c.arg("--").args(args);
    }
    let ran = std::time::Instant::now();
    let result = run(&mut c);
    let skipped = tools::summarise_skips(&skips);
    result?;
    if skipped > 0 && !allow_skips {
        bail!(
            "{skipped} test(s) skipped because something was missing (listed above); install it (`cargo xtask doctor` says how) or pass --allow-skips"
        );
    }
    if filtered {
        return Ok(());
    }
    eprintln!("==> tests ran in {:.0}s", ran.elapsed().as_secs_f64());
    // The CUDA backend must compile everywhere, although only a GPU machine can run it (CUDA
    // is loaded at run time, so there is nothing to link against). A dev build of the library
    // reuses every dependency the tests compiled and adds the 44 crates the
    // feature changes (about 2 minutes here), where a `cargo check` would go through all of
    // them again.
    eprintln!("==> building modelplane-serve's library with --features cuda");
    let t = std::time::Instant::now();
    run(Command::new(env!("CARGO")).current_dir(root()).args([
        "build",
        "--quiet",
        "-p",
        "modelplane-serve",
        "--lib",
        "--features",
        "cuda",
    ]))?;
    eprintln!("==> built in {:.0}s", t.elapsed().as_secs_f64());
    Ok(())
}

/// Builds the release `modelplane-serve`; returns its path.
pub fn build_serve_release() -> Result<PathBuf> {
    eprintln!("==> building modelplane-serve (release)");
    run(Command::new(env!("CARGO")).current_dir(root()).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "modelplane-serve",
    ]))?;
    Ok(target_dir().join("release/modelplane-serve"))
}

/// The cargo target folder.
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target"))
}

/// Builds the release server and its image; returns the layout folder and what
/// `modelplane-serve image` reported (digest, sizes).
pub fn image(out: Option<PathBuf>) -> Result<(PathBuf, serde_json::Value)> {
    let serve = build_serve_release()?;
    let out = out.unwrap_or_else(|| target_dir().join("image/modelplane-serve"));
    let git = |args: &[&str]| {
        Command::new("git")
            .current_dir(root())
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let mut c = Command::new(&serve);
    c.arg("image").arg("--out").arg(&out);
    if let Some(rev) = git(&["rev-parse", "HEAD"]) {
        c.args(["--revision", &rev]);
    }
    // The commit's time, so that the same commit gives the same digest.
    if let Some(t) = git(&["show", "-s", "--format=%cI", "HEAD"]) {
        c.args(["--created", &t]);
    }
    eprintln!("==> writing the image");
    let o = c.output().context("running modelplane-serve image")?;
    if !o.status.success() {
        bail!(
            "modelplane-serve image: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    Ok((out, serde_json::from_slice(&o.stdout)?))
}

/// A program on PATH.
pub fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn device_check(build_only: bool) -> Result<()> {
    eprintln!("==> building modelplane-serve --features cuda (release, target/cuda)");
    run(Command::new(env!("CARGO")).current_dir(root()).args([
        "build",
        "--quiet",
        "--release",
        "-p",
        "modelplane-serve",
        "--features",
        "cuda",
        "--target-dir",
        "target/cuda",
    ]))?;
    let bin = root().join("target/cuda/release/modelplane-serve");
    if build_only {
        println!("{}", bin.display());
        return Ok(());
    }
    let mut models: Vec<PathBuf> = ["iris", "digits_cnn", "free_hw_cnn", "two_io"]
        .iter()
        .map(|m| root().join(format!("tests/fixtures/models/repo/{m}/1/model.onnx")))
        .collect();
    // A real model: PP-OCR detection as rapidocr-onnxruntime ships it.
    let py = terraform::python_env("real-models-venv", REAL_MODELS)?;
    let repo = root().join("target/cuda/real-models");
    run(Command::new(&py)
        .arg(root().join("serve/tests/realmodels/real_models.py"))
        .arg("repo")
        .arg(&repo)
        .stdout(std::process::Stdio::null()))?;
    models.push(repo.join("ppocr_det/1/model.onnx"));
    let mut c = Command::new(bin);
    c.arg("device-check").args(["--free-size", "640"]);
    for m in &models {
        c.arg("--model").arg(m);
    }
    run(&mut c)
}

fn main() {
    let cli = Cli::parse();
    let res = match cli.command {
        Cmd::Quickstart { destroy, dev } => quickstart(destroy, dev),
        Cmd::Test { allow_skips, args } => test(args, allow_skips),
        Cmd::Doctor => tools::doctor(),
        Cmd::Modules { check } => modules::run(check),
        Cmd::Docs { check } => docs(check),
        Cmd::Terraform => terraform::ensure().map(|p| println!("{}", p.display())),
        Cmd::Image { out } => image(out).map(|(dir, built)| {
            println!(
                "{}",
                serde_json::to_string_pretty(&built).unwrap_or_default()
            );
            eprintln!("==> OCI image layout in {}", dir.display());
        }),
        Cmd::Bench { which } => bench::run(which),
        Cmd::Release(args) => release::run_release(args),
        Cmd::Prices => prices(),
        Cmd::DeviceCheck { build_only } => device_check(build_only),
    };
    if let Err(e) = res {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// `cargo xtask prices`: what the shipped table holds, and how to refresh it.
fn prices() -> Result<()> {
    let path = root().join("provider/src/cost/prices.csv");
    let text = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;
    let mut by: std::collections::BTreeMap<(String, String), (usize, usize, String, String)> =
        Default::default();
    let mut sources = std::collections::BTreeSet::new();
    for line in text.lines().skip(1).filter(|l| !l.trim().is_empty()) {
        let f: Vec<&str> = line.split(',').collect();
        if f.len() != 11 {
            bail!("{}: a row without 11 fields: {line}", path.display());
        }
        let e = by.entry((f[0].to_string(), f[1].to_string())).or_insert((
            0,
            0,
            "9999".into(),
            "0000".into(),
        ));
        e.0 += 1;
        e.1 += usize::from(!f[8].is_empty());
        e.2 = e.2.clone().min(f[10].to_string());
        e.3 = e.3.clone().max(f[10].to_string());
        sources.insert(f[9].to_string());
    }
    println!("{} (USD an hour, Linux):\n", path.display());
    println!(
        "  {:<6} {:<12} {:>5} {:>6}  read on",
        "cloud", "region", "rows", "spot"
    );
    for ((cloud, region), (rows, spot, first, last)) in &by {
        let when = if first == last {
            first.clone()
        } else {
            format!("{first} to {last}")
        };
        println!("  {cloud:<6} {region:<12} {rows:>5} {spot:>6}  {when}");
    }
    println!("\nSources:");
    for s in &sources {
        println!("  - {s}");
    }
    println!(
        r#"
To refresh it, on a machine that reaches the public price lists:

AWS (the Price List bulk offer file of a region; large, so filter as it streams):
  curl -s https://pricing.us-east-1.amazonaws.com/offers/v1.0/aws/AmazonEC2/current/us-east-1/index.json \
    | jq -r '.products[] | select(.attributes.operatingSystem=="Linux" and .attributes.tenancy=="Shared"
        and .attributes.preInstalledSw=="NA" and .attributes.capacitystatus=="Used") | [.sku, .attributes.instanceType] | @tsv'
  then the OnDemand term of each sku: .terms.OnDemand[SKU][*].priceDimensions[*].pricePerUnit.USD
  (or: aws pricing get-products --region us-east-1 --service-code AmazonEC2 --filters
   Type=TERM_MATCH,Field=instanceType,Value=g5.xlarge Type=TERM_MATCH,Field=location,Value="US East (N. Virginia)"
   Type=TERM_MATCH,Field=operatingSystem,Value=Linux Type=TERM_MATCH,Field=tenancy,Value=Shared
   Type=TERM_MATCH,Field=preInstalledSw,Value=NA Type=TERM_MATCH,Field=capacitystatus,Value=Used)
  AWS publishes no spot list price (spot prices move by zone): leave spot_hour empty, so spot
  pools are priced at their on-demand ceiling with a warning.

Azure (the Retail Prices API, no sign-in):
  curl -s "https://prices.azure.com/api/retail/prices?\$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20armRegionName%20eq%20'eastus'%20and%20armSkuName%20eq%20'Standard_NC4as_T4_v3'%20and%20priceType%20eq%20'Consumption'" \
    | jq -r '.Items[] | select(.productName | test("Windows") | not) | [.skuName, .retailPrice, .effectiveStartDate] | @tsv'
  the row whose skuName has neither "Spot" nor "Low Priority" is on_demand_hour; the "Spot" one spot_hour.

Write each figure into provider/src/cost/prices.csv with its source and the date you read it,
then run `cargo test -p terraform-provider-modelplane --lib cost` (the table must parse, every
row have a source and a date, spot below on-demand) and note the refresh in CHANGELOG.md: a
new table changes estimates only when a resource changes, never on a plain plan."#
    );
    Ok(())
}
