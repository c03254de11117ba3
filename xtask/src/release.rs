//! `cargo xtask release`: the provider's release artifacts in the Terraform Registry's
//! layout (per-platform zips, manifest, SHA256SUMS and its GPG signature), a provider
//! network mirror tree of them, and the bundled inference image as an OCI layout.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use tfplugin::release;

use crate::{build_provider, image, root, run, target_dir, which};

/// The program's name, as the Registry names release files.
const NAME: &str = "terraform-provider-modelplane";
/// The targets a release can build, with their Terraform platforms.
const TARGETS: &[(&str, &str, &str)] = &[
    ("x86_64-unknown-linux-gnu", "linux", "amd64"),
    ("aarch64-unknown-linux-gnu", "linux", "arm64"),
];
const AARCH64_LINKER: &str = "aarch64-linux-gnu-gcc";
const AARCH64_LINKER_ENV: &str = "CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER";

#[derive(clap::Args)]
pub struct Args {
    /// A Rust target to build and package (repeatable): x86_64-unknown-linux-gnu (the
    /// default) or aarch64-unknown-linux-gnu (needs the rustup target and a cross linker).
    #[arg(long = "target", value_name = "TRIPLE")]
    targets: Vec<String>,
    /// Output folder (default target/release-artifacts).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Sign the SHA256SUMS file with this GPG key (`gpg --detach-sign --local-user KEYID`).
    #[arg(long, value_name = "KEYID")]
    gpg_key: Option<String>,
    /// Package this provider binary instead of building one (for one target: the host's, or
    /// the single --target given).
    #[arg(long, value_name = "PATH")]
    binary: Option<PathBuf>,
    /// Skip the bundled inference image (its release build takes a while).
    #[arg(long)]
    no_image: bool,
}

/// `registry.terraform.io/modelplane/modelplane`: `modelplane_provider::ADDRESS`, read from
/// the provider's source (xtask does not link the provider crate).
fn address() -> Result<(String, String, String)> {
    let src = root().join("provider/src/lib.rs");
    let text = std::fs::read_to_string(&src).with_context(|| src.display().to_string())?;
    let addr = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("pub const ADDRESS: &str = \""))
        .and_then(|rest| rest.split('"').next())
        .with_context(|| format!("no `pub const ADDRESS: &str = \"…\"` in {}", src.display()))?;
    match addr.split('/').collect::<Vec<_>>()[..] {
        [host, ns, ty] => Ok((host.into(), ns.into(), ty.into())),
        _ => bail!("ADDRESS {addr:?} is not HOSTNAME/NAMESPACE/TYPE"),
    }
}

fn host_target() -> &'static str {
    match std::env::consts::ARCH {
        "aarch64" => "aarch64-unknown-linux-gnu",
        _ => "x86_64-unknown-linux-gnu",
    }
}

fn platform(target: &str) -> Result<(&'static str, &'static str)> {
    TARGETS
        .iter()
        .find(|(t, _, _)| *t == target)
        .map(|&(_, os, arch)| (os, arch))
        .with_context(|| {
            format!(
                "unsupported target {target}; supported: {}",
                TARGETS.iter().map(|t| t.0).collect::<Vec<_>>().join(", ")
            )
        })
}

/// Everything a cross build needs, checked before any build starts; returns the
/// environment to build with.
fn preflight_cross(target: &str) -> Result<Vec<(String, String)>> {
    let mut missing = Vec::new();
    let mut install = Vec::new();
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned());
    if !installed
        .as_deref()
        .is_some_and(|s| s.lines().any(|l| l.trim() == target))
    {
        missing.push(format!("the Rust standard library for {target}"));
        install.push(format!("rustup target add {target}"));
    }
    let mut env = Vec::new();
    if target == "aarch64-unknown-linux-gnu" {
        let linker = std::env::var(AARCH64_LINKER_ENV).unwrap_or_else(|_| AARCH64_LINKER.into());
        let found = if linker.contains('/') {
            Path::new(&linker).is_file()
        } else {
            which(&linker).is_some()
        };
        if found {
            env.push((AARCH64_LINKER_ENV.to_string(), linker.clone()));
            // aws-lc-sys and other C code: the cc crate's compiler for the target.
            if which(AARCH64_LINKER).is_some() {
                env.push((
                    "CC_aarch64_unknown_linux_gnu".to_string(),
                    AARCH64_LINKER.to_string(),
                ));
            }
        } else {
            missing.push(format!("a cross linker ({linker} not found)"));
            install.push("apt-get install gcc-aarch64-linux-gnu".to_string());
        }
    }
    if !missing.is_empty() {
        bail!(
            "cannot build for {target} here; missing: {}.\nInstall with:\n  {}\nand build with the linker named:\n  export {AARCH64_LINKER_ENV}={AARCH64_LINKER}\n(cargo xtask release sets it itself when {AARCH64_LINKER} is on PATH)",
            missing.join("; "),
            install.join("\n  ")
        );
    }
    Ok(env)
}

fn build_for(target: &str, env: &[(String, String)]) -> Result<PathBuf> {
    if target == host_target() {
        // The plain release build (target/release), shared with `cargo xtask quickstart`.
        return build_provider(true);
    }
    eprintln!("==> building the provider (release, {target})");
    let mut c = Command::new(env!("CARGO"));
    c.current_dir(root())
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            NAME,
            "--target",
            target,
        ])
        .envs(env.iter().map(|(k, v)| (k, v)));
    run(&mut c)?;
    Ok(target_dir().join(target).join("release").join(NAME))
}

fn size(p: &Path) -> String {
    let n = std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
    if n >= 1 << 20 {
        format!("{:.1} MiB", n as f64 / (1 << 20) as f64)
    } else if n >= 1 << 10 {
        format!("{:.1} KiB", n as f64 / 1024.0)
    } else {
        format!("{n} B")
    }
}

fn files_under(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<_> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            files_under(&p, out);
        } else {
            out.push(p);
        }
    }
}

pub fn run_release(args: Args) -> Result<()> {
    let version = env!("CARGO_PKG_VERSION");
    let (host, namespace, type_name) = address()?;
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| target_dir().join("release-artifacts"));
    let mut targets = args.targets.clone();
    if targets.is_empty() {
        targets.push(host_target().to_string());
    }
    targets.dedup();

    // Everything that can fail without building fails first.
    let mut plan = Vec::new();
    for t in &targets {
        let (os, arch) = platform(t)?;
        let env = if args.binary.is_none() && t != host_target() {
            preflight_cross(t)?
        } else {
            Vec::new()
        };
        plan.push((t.clone(), os, arch, env));
    }
    if let Some(b) = &args.binary {
        if plan.len() != 1 {
            bail!("--binary packages one binary: give at most one --target with it");
        }
        if !b.is_file() {
            bail!("--binary {}: no such file", b.display());
        }
    }
    if let Some(key) = &args.gpg_key {
        if which("gpg").is_none() {
            bail!("--gpg-key needs gpg (apt-get install gnupg)");
        }
        let ok = Command::new("gpg")
            .args(["--batch", "--list-secret-keys", key])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !ok {
            bail!("gpg has no secret key {key:?} (gpg --list-secret-keys)");
        }
    }

    std::fs::create_dir_all(&out).with_context(|| out.display().to_string())?;
    let mut written = Vec::new();
    let mut archives = Vec::new();
    for (target, os, arch, env) in &plan {
        let bin = match &args.binary {
            Some(b) => b.clone(),
            None => build_for(target, env)?,
        };
        eprintln!("==> packaging {} for {os}_{arch}", bin.display());
        let zip = release::package(&bin, NAME, version, os, arch, &out)?;
        written.push(zip.clone());
        archives.push((*os, *arch, zip));
    }
    let manifest = release::manifest(&out, NAME, version)?;
    let mut summed: Vec<PathBuf> = archives.iter().map(|a| a.2.clone()).collect();
    summed.push(manifest.clone());
    let sums = release::sha256sums(&summed, &out, NAME, version)?;
    written.push(manifest);
    written.push(sums.clone());
    if let Some(key) = &args.gpg_key {
        let sig = out.join(format!("{NAME}_{version}_SHA256SUMS.sig"));
        eprintln!("==> signing {} with {key}", sums.display());
        run(Command::new("gpg")
            .args([
                "--batch",
                "--yes",
                "--detach-sign",
                "--local-user",
                key,
                "--output",
            ])
            .arg(&sig)
            .arg(&sums))?;
        written.push(sig);
    }
    let mirror_root = out.join("mirror");
    let mirror = release::network_mirror(
        &archives,
        &host,
        &namespace,
        &type_name,
        version,
        &mirror_root,
    )?;
    files_under(&mirror, &mut written);

    let image = if args.no_image {
        None
    } else {
        Some(image(Some(out.join("image")))?)
    };

    println!(
        "Release {host}/{namespace}/{type_name} {version} in {}:",
        out.display()
    );
    for f in &written {
        println!(
            "  {:>10}  {}",
            size(f),
            f.strip_prefix(&out).unwrap_or(f).display()
        );
    }
    // The checksums Terraform will record, as the mirror lists them.
    let listed: serde_json::Value =
        serde_json::from_slice(&std::fs::read(mirror.join(format!("{version}.json")))?)?;
    if let Some(platforms) = listed["archives"].as_object() {
        for (platform, a) in platforms {
            let hashes: Vec<&str> = a["hashes"]
                .as_array()
                .map(|h| h.iter().filter_map(|h| h.as_str()).collect())
                .unwrap_or_default();
            println!("  {platform}: {}", hashes.join(" "));
        }
    }
    if let Some((dir, built)) = image {
        let mut files = Vec::new();
        files_under(&dir, &mut files);
        let total: u64 = files
            .iter()
            .filter_map(|f| std::fs::metadata(f).ok())
            .map(|m| m.len())
            .sum();
        println!(
            "  image (OCI layout): {} ({} files, {:.1} MiB){}",
            dir.strip_prefix(&out).unwrap_or(&dir).display(),
            files.len(),
            total as f64 / (1 << 20) as f64,
            built
                .get("digest")
                .and_then(|d| d.as_str())
                .map(|d| format!(", {d}"))
                .unwrap_or_default()
        );
    }
    println!(
        "Network mirror: serve {} over HTTPS and name it in the CLI configuration:\n  provider_installation {{ network_mirror {{ url = \"https://HOST/\" }} }}",
        mirror_root.display()
    );
    Ok(())
}
