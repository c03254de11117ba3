//! Acceptance tests through the real `terraform` CLI, the way terraform-plugin-testing
//! runs them.
//!
//! Each [`TestCase`] gets its own temporary working directory. The provider binary is
//! installed through a filesystem mirror named in a CLI configuration file
//! (`TF_CLI_CONFIG_FILE`) and `terraform init`, exactly as users install providers; never
//! `dev_overrides`. Each [`Step`] runs:
//!
//! init (once) → `plan -out` → plan checks on `show -json PLAN` → `apply PLAN` → state checks
//! on `show -json` → `plan -refresh=false` must be empty → `plan` must be empty →
//! optional import in a copy of the directory, compared with the original state.
//!
//! After the last step: `destroy`, then the state must hold no resources and the case's
//! destroy check runs.
//!
//! Tests run only when `TF_ACC` is set (as with terraform-plugin-testing); the terraform
//! binary is `TF_ACC_TERRAFORM_PATH`, else `terraform` or `tofu` on `PATH`. Set
//! `TF_ACC_KEEP=1` to keep the working directories for debugging (their paths are printed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

use regex::Regex;
use serde_json::Value as J;

/// The provider under test and how to install it.
#[derive(Clone, Debug)]
pub struct ProviderUnderTest {
    /// Path to the built provider binary.
    pub binary: PathBuf,
    /// Registry host, namespace and type: `registry.terraform.io/modelplane/modelplane`.
    pub address: String,
    /// Version to install it as.
    pub version: String,
}

/// True when acceptance tests should run (`TF_ACC` set and not `0`).
pub fn enabled() -> bool {
    std::env::var("TF_ACC")
        .map(|v| !v.is_empty() && v != "0")
        .unwrap_or(false)
}

/// The terraform (or tofu) binary to drive.
pub fn terraform_binary() -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("TF_ACC_TERRAFORM_PATH") {
        return Ok(PathBuf::from(p));
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["terraform", "tofu"] {
        for dir in std::env::split_paths(&path) {
            let c = dir.join(name);
            if c.is_file() {
                return Ok(c);
            }
        }
    }
    Err("no terraform or tofu binary: set TF_ACC_TERRAFORM_PATH or put one on PATH (`cargo xtask test` installs one)".into())
}

/// Parsed `terraform show -json` output (of a state or a plan).
#[derive(Clone, Debug)]
pub struct Shown(pub J);

impl Shown {
    fn all_resources(&self, root: &J) -> Vec<J> {
        let mut out = Vec::new();
        fn walk(m: &J, out: &mut Vec<J>) {
            if let Some(rs) = m.get("resources").and_then(J::as_array) {
                out.extend(rs.iter().cloned());
            }
            if let Some(cs) = m.get("child_modules").and_then(J::as_array) {
                for c in cs {
                    walk(c, out);
                }
            }
        }
        walk(root, &mut out);
        out
    }
    /// Every resource and data source in the state (root and child modules).
    pub fn resources(&self) -> Vec<J> {
        self.0
            .get("values")
            .and_then(|v| v.get("root_module"))
            .map(|r| self.all_resources(r))
            .unwrap_or_default()
    }
    /// The `values` of the resource at `address` (e.g. `data.modelplane_model_signature.x`).
    pub fn resource(&self, address: &str) -> Option<J> {
        self.resources()
            .into_iter()
            .find(|r| r.get("address").and_then(J::as_str) == Some(address))
            .and_then(|r| r.get("values").cloned())
    }
    /// The value at a flatmap-style path (`inputs.0.shape.1`, `tags.team`, `inputs.#` for a count).
    pub fn attr(&self, address: &str, path: &str) -> Option<J> {
        let mut cur = self.resource(address)?;
        for seg in path.split('.') {
            if seg == "#" || seg == "%" {
                return match &cur {
                    J::Array(a) => Some(J::from(a.len())),
                    J::Object(o) => Some(J::from(o.len())),
                    _ => None,
                };
            }
            cur = match &cur {
                J::Object(o) => o.get(seg)?.clone(),
                J::Array(a) => a.get(seg.parse::<usize>().ok()?)?.clone(),
                _ => return None,
            };
        }
        Some(cur)
    }
    /// Planned actions per address (`["create"]`, `["delete","create"]`, `["no-op"]`, …).
    pub fn planned_actions(&self) -> BTreeMap<String, Vec<String>> {
        self.0
            .get("resource_changes")
            .and_then(J::as_array)
            .map(|rcs| {
                rcs.iter()
                    .filter_map(|rc| {
                        let addr = rc.get("address")?.as_str()?.to_string();
                        let acts = rc
                            .get("change")?
                            .get("actions")?
                            .as_array()?
                            .iter()
                            .filter_map(|a| a.as_str().map(String::from))
                            .collect();
                        Some((addr, acts))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn change_field(&self, address: &str, field: &str, path: &str) -> Option<J> {
        let rc = self
            .0
            .get("resource_changes")?
            .as_array()?
            .iter()
            .find(|rc| rc.get("address").and_then(J::as_str) == Some(address))?;
        let mut cur = rc.get("change")?.get(field)?.clone();
        for seg in path.split('.').filter(|s| !s.is_empty()) {
            cur = match &cur {
                J::Object(o) => o.get(seg)?.clone(),
                J::Array(a) => a.get(seg.parse::<usize>().ok()?)?.clone(),
                _ => return None,
            };
        }
        Some(cur)
    }
    /// True when the plan says the value at `path` is known only after apply.
    pub fn is_unknown(&self, address: &str, path: &str) -> bool {
        self.change_field(address, "after_unknown", path) == Some(J::Bool(true))
    }
    /// True when the plan marks the value at `path` sensitive.
    pub fn is_sensitive(&self, address: &str, path: &str) -> bool {
        self.change_field(address, "after_sensitive", path) == Some(J::Bool(true))
    }
    /// The planned value at `path`.
    pub fn planned(&self, address: &str, path: &str) -> Option<J> {
        self.change_field(address, "after", path)
    }
}

/// A check on state or plan; `Err` says what is wrong.
pub type Check = Arc<dyn Fn(&Shown) -> Result<(), String> + Send + Sync>;

/// Checks that `address.path` equals `want` (compared as JSON; strings match strings).
pub fn attr_equals(address: &str, path: &str, want: impl Into<J>) -> Check {
    let (address, path, want) = (address.to_string(), path.to_string(), want.into());
    Arc::new(move |s: &Shown| match s.attr(&address, &path) {
        Some(v) if v == want => Ok(()),
        other => Err(format!(
            "{address}.{path}: want {want}, got {}",
            other.map_or("nothing".into(), |v| v.to_string())
        )),
    })
}

/// Checks that `address.path` is a string matching `re`.
pub fn attr_matches(address: &str, path: &str, re: &str) -> Check {
    let (address, path) = (address.to_string(), path.to_string());
    let re = Regex::new(re).expect("check regex");
    Arc::new(move |s: &Shown| match s.attr(&address, &path) {
        Some(J::String(v)) if re.is_match(&v) => Ok(()),
        other => Err(format!(
            "{address}.{path}: want a match of /{re}/, got {other:?}"
        )),
    })
}

/// Checks that `address.path` is set (not null, not absent).
pub fn attr_set(address: &str, path: &str) -> Check {
    let (address, path) = (address.to_string(), path.to_string());
    Arc::new(move |s: &Shown| match s.attr(&address, &path) {
        Some(J::Null) | None => Err(format!("{address}.{path}: want a value, got none")),
        Some(_) => Ok(()),
    })
}

/// Plan check: the planned action of `address` (`create`, `update`, `delete`, `no-op`, `replace`).
pub fn plan_action(address: &str, action: &str) -> Check {
    let (address, action) = (address.to_string(), action.to_string());
    Arc::new(move |s: &Shown| {
        let got = s
            .planned_actions()
            .get(&address)
            .cloned()
            .unwrap_or_default();
        let want: Vec<String> = match action.as_str() {
            "replace" => {
                if got == ["delete", "create"] || got == ["create", "delete"] {
                    return Ok(());
                }
                vec!["delete".into(), "create".into()]
            }
            a => vec![a.to_string()],
        };
        if got == want {
            Ok(())
        } else {
            Err(format!(
                "{address}: want planned action {action}, got {got:?}"
            ))
        }
    })
}

/// Plan check: `address.path` is unknown (known after apply).
pub fn plan_unknown(address: &str, path: &str) -> Check {
    let (address, path) = (address.to_string(), path.to_string());
    Arc::new(move |s: &Shown| {
        if s.is_unknown(&address, &path) {
            Ok(())
        } else {
            Err(format!("{address}.{path}: want unknown in the plan"))
        }
    })
}

/// Plan check: `address.path` is known and equals `want`.
pub fn plan_known(address: &str, path: &str, want: impl Into<J>) -> Check {
    let (address, path, want) = (address.to_string(), path.to_string(), want.into());
    Arc::new(move |s: &Shown| {
        if s.is_unknown(&address, &path) {
            return Err(format!("{address}.{path}: want known {want}, got unknown"));
        }
        match s.planned(&address, &path) {
            Some(v) if v == want => Ok(()),
            other => Err(format!(
                "{address}.{path}: want planned {want}, got {other:?}"
            )),
        }
    })
}

/// Plan check: `address.path` is marked sensitive.
pub fn plan_sensitive(address: &str, path: &str) -> Check {
    let (address, path) = (address.to_string(), path.to_string());
    Arc::new(move |s: &Shown| {
        if s.is_sensitive(&address, &path) {
            Ok(())
        } else {
            Err(format!("{address}.{path}: want sensitive"))
        }
    })
}

/// Import the resource at `address` in a copy of the directory and compare its attributes
/// with the applied state.
#[derive(Clone)]
pub struct ImportStep {
    pub address: String,
    /// Import ID; computed from the state when `None` with `id_from`.
    pub id: Option<String>,
    /// Derives the import ID from the applied state.
    pub id_from: Option<IdFrom>,
    /// Attributes not compared (set from configuration only, not readable back).
    pub ignore: Vec<String>,
}

/// Derives an import ID from the applied state.
pub type IdFrom = Arc<dyn Fn(&Shown) -> Option<String> + Send + Sync>;
/// Runs before a step's plan, with the working directory.
pub type Pre = Arc<dyn Fn(&Path) + Send + Sync>;

/// One configuration applied in order.
#[derive(Clone, Default)]
pub struct Step {
    pub config: String,
    /// Plan or apply must fail with an error matching this.
    pub expect_error: Option<Regex>,
    /// The plans after apply may be non-empty (e.g. drift the step provokes).
    pub expect_non_empty_plan: bool,
    /// Run before the step's plan (e.g. break something out of band).
    pub pre: Option<Pre>,
    pub plan_checks: Vec<Check>,
    pub checks: Vec<Check>,
    pub import: Option<ImportStep>,
}

impl Step {
    pub fn new(config: impl Into<String>) -> Self {
        Step {
            config: config.into(),
            ..Default::default()
        }
    }
    pub fn expect_error(mut self, re: &str) -> Self {
        self.expect_error = Some(Regex::new(re).expect("expect_error regex"));
        self
    }
    pub fn expect_non_empty_plan(mut self) -> Self {
        self.expect_non_empty_plan = true;
        self
    }
    pub fn check(mut self, c: Check) -> Self {
        self.checks.push(c);
        self
    }
    pub fn plan_check(mut self, c: Check) -> Self {
        self.plan_checks.push(c);
        self
    }
    pub fn pre(mut self, f: impl Fn(&Path) + Send + Sync + 'static) -> Self {
        self.pre = Some(Arc::new(f));
        self
    }
    pub fn import(mut self, i: ImportStep) -> Self {
        self.import = Some(i);
        self
    }
}

/// A sequence of steps in one working directory, then destroy.
#[derive(Clone, Default)]
pub struct TestCase {
    pub steps: Vec<Step>,
    pub check_destroy: Option<Check>,
    /// Extra files written into the working directory before init (path → content).
    pub files: BTreeMap<String, Vec<u8>>,
    /// Environment variables of every `terraform` command of the case (and so of the
    /// provider it starts): credentials, CA bundles, endpoints of emulators.
    pub env: BTreeMap<String, String>,
}

/// What went wrong in a test case, with the command output that shows why.
#[derive(Debug)]
pub struct Failure(pub String);

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn fail<T>(msg: impl Into<String>) -> Result<T, Failure> {
    Err(Failure(msg.into()))
}

/// Runs `terraform` commands in one directory with the harness's environment.
pub struct Workdir {
    pub dir: PathBuf,
    terraform: PathBuf,
    cli_config: PathBuf,
    env: BTreeMap<String, String>,
}

impl Workdir {
    /// The `terraform` command with the harness's environment, to spawn and control (e.g. to
    /// interrupt an apply).
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.terraform);
        c.args(args)
            .current_dir(&self.dir)
            .env("TF_CLI_CONFIG_FILE", &self.cli_config)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0")
            .env("CHECKPOINT_DISABLE", "1")
            .env_remove("TF_PLUGIN_CACHE_DIR")
            .env_remove("TF_CLI_ARGS")
            .envs(&self.env);
        c
    }

    pub fn run(&self, args: &[&str]) -> Result<Output, Failure> {
        self.command(args)
            .output()
            .or_else(|e| fail(format!("running {}: {e}", self.terraform.display())))
    }
    /// Runs and requires success (exit 0).
    pub fn ok(&self, args: &[&str]) -> Result<Output, Failure> {
        let o = self.run(args)?;
        if !o.status.success() {
            return fail(format!(
                "terraform {} failed ({}):\n{}",
                args.join(" "),
                o.status,
                text(&o)
            ));
        }
        Ok(o)
    }
    pub fn show(&self, plan: Option<&str>) -> Result<Shown, Failure> {
        let mut args = vec!["show", "-json", "-no-color"];
        if let Some(p) = plan {
            args.push(p);
        }
        let o = self.ok(&args)?;
        serde_json::from_slice(&o.stdout)
            .map(Shown)
            .or_else(|e| fail(format!("show -json output: {e}")))
    }
}

/// Whether an error matches: Terraform wraps diagnostics at 80 columns, so the pattern is
/// also tried on the text with every run of whitespace made one space.
fn matches(re: &Regex, text: &str) -> bool {
    re.is_match(text) || re.is_match(&text.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

/// The harness: the installed provider mirror and CLI configuration, shared by the cases
/// of one test process.
pub struct Harness {
    provider: ProviderUnderTest,
    terraform: PathBuf,
    root: Root,
    cli_config: PathBuf,
}

enum Root {
    Temp(tempfile::TempDir),
    Fixed(PathBuf),
}

impl Root {
    fn path(&self) -> &Path {
        match self {
            Root::Temp(t) => t.path(),
            Root::Fixed(p) => p,
        }
    }
}

impl Harness {
    /// Installs the provider into a filesystem mirror: under `root` when given (kept and
    /// safely shared by concurrent test processes, e.g. `CARGO_TARGET_TMPDIR`), else in a
    /// temporary directory removed with the harness.
    pub fn new(provider: ProviderUnderTest, root: Option<PathBuf>) -> Result<Harness, Failure> {
        let terraform = terraform_binary().map_err(Failure)?;
        let root = match root {
            Some(p) => {
                std::fs::create_dir_all(&p).or_else(|e| fail(format!("{}: {e}", p.display())))?;
                Root::Fixed(p)
            }
            None => Root::Temp(
                tempfile::Builder::new()
                    .prefix("tfacc-mirror-")
                    .tempdir()
                    .or_else(|e| fail(format!("temp dir: {e}")))?,
            ),
        };
        let (os, arch) = (
            std::env::consts::OS,
            match std::env::consts::ARCH {
                "x86_64" => "amd64",
                "aarch64" => "arm64",
                a => a,
            },
        );
        let ty = provider
            .address
            .rsplit('/')
            .next()
            .unwrap_or("provider")
            .to_string();
        let dir = root
            .path()
            .join("mirror")
            .join(&provider.address)
            .join(&provider.version)
            .join(format!("{os}_{arch}"));
        std::fs::create_dir_all(&dir).or_else(|e| fail(format!("mirror dir: {e}")))?;
        let dest = dir.join(format!("terraform-provider-{ty}_v{}", provider.version));
        // Link (or copy) under a unique name, then rename: atomic for concurrent processes.
        let tmp = dir.join(format!(".incoming-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        if std::fs::hard_link(&provider.binary, &tmp).is_err() {
            std::fs::copy(&provider.binary, &tmp)
                .or_else(|e| fail(format!("copying {}: {e}", provider.binary.display())))?;
        }
        std::fs::rename(&tmp, &dest)
            .or_else(|e| fail(format!("installing {}: {e}", dest.display())))?;
        // When both names are links to the same file (the binary did not change), rename does
        // nothing and leaves `tmp`; Terraform hashes every file of the package folder on every
        // command, so a leftover would slow down every later run.
        let _ = std::fs::remove_file(&tmp);
        let cli_config = root.path().join(format!("cli-{}.tfrc", std::process::id()));
        let mirror = root.path().join("mirror");
        std::fs::write(
            &cli_config,
            format!(
                "provider_installation {{\n  filesystem_mirror {{\n    path    = {:?}\n    include = [\"{}\"]\n  }}\n  direct {{\n    exclude = [\"{}\"]\n  }}\n}}\n",
                mirror.display().to_string(),
                provider.address,
                provider.address
            ),
        )
        .or_else(|e| fail(format!("cli config: {e}")))?;
        Ok(Harness {
            provider,
            terraform,
            root,
            cli_config,
        })
    }

    /// The `terraform { required_providers }` block every configuration gets.
    pub fn required_providers(&self) -> String {
        let local = self
            .provider
            .address
            .rsplit('/')
            .next()
            .unwrap_or("provider");
        let source: Vec<&str> = self.provider.address.split('/').collect();
        format!(
            "terraform {{\n  required_providers {{\n    {local} = {{\n      source  = \"{}\"\n      version = \"{}\"\n    }}\n  }}\n}}\n",
            source[source.len().saturating_sub(3)..].join("/"),
            self.provider.version
        )
    }

    /// A fresh working directory with the provider's requirements written.
    pub fn workdir(&self, name: &str) -> Result<(Workdir, Option<tempfile::TempDir>), Failure> {
        let keep = std::env::var("TF_ACC_KEEP")
            .map(|v| v == "1")
            .unwrap_or(false);
        let td = tempfile::Builder::new()
            .prefix(&format!("tfacc-{name}-"))
            .tempdir()
            .or_else(|e| fail(format!("temp dir: {e}")))?;
        let (dir, guard) = if keep {
            let p = td.keep();
            eprintln!(
                "TF_ACC_KEEP: working directory of {name} kept at {}",
                p.display()
            );
            (p, None)
        } else {
            (td.path().to_path_buf(), Some(td))
        };
        std::fs::write(dir.join("providers.tf"), self.required_providers())
            .or_else(|e| fail(format!("{e}")))?;
        Ok((
            Workdir {
                dir,
                terraform: self.terraform.clone(),
                cli_config: self.cli_config.clone(),
                env: BTreeMap::new(),
            },
            guard,
        ))
    }

    /// Where the mirror and CLI config live (removed with the harness).
    pub fn root(&self) -> &Path {
        self.root.path()
    }

    /// Runs a test case; the error explains the first failed expectation.
    pub fn run(&self, name: &str, case: &TestCase) -> Result<(), Failure> {
        let (mut wd, _guard) = self.workdir(name)?;
        wd.env = case.env.clone();
        for (rel, content) in &case.files {
            let p = wd.dir.join(rel);
            if let Some(parent) = p.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            std::fs::write(&p, content).or_else(|e| fail(format!("writing {rel}: {e}")))?;
        }
        wd.ok(&["init", "-input=false", "-no-color"])?;
        let mut result = Ok(());
        let mut last_applied = String::new();
        for (i, step) in case.steps.iter().enumerate() {
            match self.run_step(&wd, step) {
                Err(e) => {
                    result = fail(format!("step {} of {name}: {e}", i + 1));
                    break;
                }
                Ok(true) => last_applied = step.config.clone(),
                Ok(false) => {}
            }
        }
        // Always destroy, so nothing outlives the test; with the last configuration that
        // applied (a step that expected an error left an invalid one behind).
        let _ = std::fs::write(wd.dir.join("main.tf"), &last_applied);
        let destroyed = wd.ok(&["destroy", "-auto-approve", "-input=false", "-no-color"]);
        result?;
        destroyed?;
        let state = wd.show(None)?;
        let left: Vec<String> = state
            .resources()
            .iter()
            .filter(|r| r.get("mode").and_then(J::as_str) == Some("managed"))
            .filter_map(|r| r.get("address").and_then(J::as_str).map(String::from))
            .collect();
        if !left.is_empty() {
            return fail(format!("{name}: resources left after destroy: {left:?}"));
        }
        if let Some(c) = &case.check_destroy {
            c(&state).map_err(|e| Failure(format!("{name}: destroy check: {e}")))?;
        }
        Ok(())
    }

    /// Runs one step; `Ok(true)` when its configuration was applied.
    fn run_step(&self, wd: &Workdir, step: &Step) -> Result<bool, Failure> {
        std::fs::write(wd.dir.join("main.tf"), &step.config).or_else(|e| fail(format!("{e}")))?;
        if step.config.contains("module \"") {
            // Modules are installed by init, for the configuration at hand.
            wd.ok(&["init", "-input=false", "-no-color"])?;
        }
        if let Some(pre) = &step.pre {
            pre(&wd.dir);
        }
        let plan = wd.run(&["plan", "-out=tfplan", "-input=false", "-no-color"])?;
        if !plan.status.success() {
            return match &step.expect_error {
                Some(re) if matches(re, &text(&plan)) => Ok(false),
                Some(re) => fail(format!(
                    "plan failed, but not with /{re}/:\n{}",
                    text(&plan)
                )),
                None => fail(format!("plan failed:\n{}", text(&plan))),
            };
        }
        let shown = wd.show(Some("tfplan"))?;
        for c in &step.plan_checks {
            c(&shown).map_err(|e| Failure(format!("plan check: {e}")))?;
        }
        let apply = wd.run(&["apply", "-input=false", "-no-color", "tfplan"])?;
        if !apply.status.success() {
            return match &step.expect_error {
                Some(re) if matches(re, &text(&apply)) => Ok(false),
                Some(re) => fail(format!(
                    "apply failed, but not with /{re}/:\n{}",
                    text(&apply)
                )),
                None => fail(format!("apply failed:\n{}", text(&apply))),
            };
        }
        if let Some(re) = &step.expect_error {
            return fail(format!(
                "expected an error matching /{re}/, but plan and apply succeeded"
            ));
        }
        let state = wd.show(None)?;
        for c in &step.checks {
            c(&state).map_err(|e| Failure(format!("check: {e}")))?;
        }
        for (what, args) in [
            (
                "plan -refresh=false",
                vec![
                    "plan",
                    "-refresh=false",
                    "-detailed-exitcode",
                    "-input=false",
                    "-no-color",
                ],
            ),
            (
                "plan",
                vec!["plan", "-detailed-exitcode", "-input=false", "-no-color"],
            ),
        ] {
            let o = wd.run(&args)?;
            match (o.status.code(), step.expect_non_empty_plan) {
                (Some(0), _) | (Some(2), true) => {}
                (Some(2), false) => {
                    return fail(format!("after apply, {what} is not empty:\n{}", text(&o)))
                }
                _ => return fail(format!("after apply, {what} failed:\n{}", text(&o))),
            }
        }
        if let Some(imp) = &step.import {
            self.import_check(wd, imp, &state)?;
        }
        Ok(true)
    }

    fn import_check(&self, wd: &Workdir, imp: &ImportStep, state: &Shown) -> Result<(), Failure> {
        let id = match (&imp.id, &imp.id_from) {
            (Some(id), _) => id.clone(),
            (None, Some(f)) => f(state)
                .ok_or_else(|| Failure(format!("import: no ID derivable for {}", imp.address)))?,
            (None, None) => return fail("import step needs an id or id_from"),
        };
        let td = tempfile::Builder::new()
            .prefix("tfacc-import-")
            .tempdir()
            .or_else(|e| fail(format!("{e}")))?;
        for f in ["main.tf", "providers.tf", ".terraform.lock.hcl"] {
            let _ = std::fs::copy(wd.dir.join(f), td.path().join(f));
        }
        let copy = Workdir {
            dir: td.path().to_path_buf(),
            terraform: wd.terraform.clone(),
            cli_config: wd.cli_config.clone(),
            env: wd.env.clone(),
        };
        copy.ok(&["init", "-input=false", "-no-color"])?;
        copy.ok(&["import", "-input=false", "-no-color", &imp.address, &id])?;
        let imported = copy.show(None)?;
        let (Some(J::Object(want)), Some(J::Object(got))) = (
            state.resource(&imp.address),
            imported.resource(&imp.address),
        ) else {
            return fail(format!(
                "import: {} missing from original or imported state",
                imp.address
            ));
        };
        let mut diffs = Vec::new();
        for (k, v) in &want {
            if imp.ignore.contains(k) {
                continue;
            }
            if got.get(k) != Some(v) {
                diffs.push(format!(
                    "{k}: applied {v}, imported {}",
                    got.get(k).map_or("nothing".into(), |g| g.to_string())
                ));
            }
        }
        // The imported object must be destroyed by the original directory's destroy, not
        // twice: remove it from the copy's state.
        copy.ok(&["state", "rm", "-no-color", &imp.address])?;
        if diffs.is_empty() {
            Ok(())
        } else {
            fail(format!(
                "import of {} with ID {id:?} differs:\n  {}",
                imp.address,
                diffs.join("\n  ")
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_match_across_terraform_line_wrapping() {
        let wrapped = "Error: Cannot destroy the model store\n\nthe store at /tmp/x still holds 1 model\nversion(s) (iris/1); set\nforce_destroy = true";
        let re = Regex::new(
            "still holds 1 model version\\(s\\) \\(iris/1\\)(.|\\n)*force_destroy = true",
        )
        .unwrap();
        assert!(!re.is_match(wrapped), "the raw text is wrapped");
        assert!(matches(&re, wrapped));
        assert!(!matches(&Regex::new("holds 2 model").unwrap(), wrapped));
    }
}
