//! Shared set-up for the acceptance tests: one provider mirror per test process.

#![allow(dead_code)]

pub mod containers;
pub mod emulators;
pub mod https;
pub mod stores;

use std::path::PathBuf;
use std::sync::OnceLock;

use tfplugin::acctest::{Harness, ProviderUnderTest, TestCase};

/// The repository root.
/// Runs a future to completion on a runtime of its own, from a synchronous test (checks and
/// set-up steps of Terraform test cases).
pub fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
        .block_on(f)
}

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// A path inside the repository, as an HCL string literal body.
pub fn repo_path(rel: &str) -> String {
    repo().join(rel).display().to_string()
}

/// `source` of a repository folder, relative to the test's working directory (module
/// sources must be relative paths).
pub fn relative_source(rel: &str) -> String {
    // The working directory is TEMP_DIR/tfacc-…: one `..` per component of TEMP_DIR
    // (the root included) climbs from it to `/`.
    let up = std::env::temp_dir().components().count();
    format!(
        "{}{}",
        "../".repeat(up),
        repo()
            .join(rel)
            .display()
            .to_string()
            .trim_start_matches('/')
    )
}

pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        Harness::new(
            ProviderUnderTest {
                binary: PathBuf::from(env!("CARGO_BIN_EXE_terraform-provider-modelplane")),
                address: modelplane_provider::ADDRESS.to_string(),
                version: modelplane_provider::VERSION.to_string(),
            },
            Some(PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("tfacc")),
        )
        .unwrap_or_else(|e| panic!("acceptance harness: {e}"))
    })
}

/// Runs an acceptance test case through real Terraform, when `TF_ACC` is set.
pub fn acc(name: &str, case: TestCase) {
    if !tfplugin::acctest::enabled() {
        eprintln!(
            "{name}: skipped; acceptance tests run with TF_ACC=1 (`cargo xtask test` sets it)"
        );
        return;
    }
    if let Err(e) = harness().run(name, &case) {
        panic!("{e}");
    }
}

/// A private state folder for the local platform, so tests running side by side never share
/// endpoints, stores or ports.
pub struct Local {
    pub dir: tempfile::TempDir,
}

impl Local {
    pub fn new(name: &str) -> Local {
        Local {
            dir: tempfile::Builder::new()
                .prefix(&format!("mp-{name}-"))
                .tempdir()
                .expect("temp dir"),
        }
    }
    pub fn path(&self) -> PathBuf {
        self.dir.path().to_path_buf()
    }
    /// The provider block pointing at this folder.
    pub fn provider(&self) -> String {
        format!(
            "provider \"modelplane\" {{\n  local {{\n    state_dir = {:?}\n  }}\n}}\n",
            self.dir.path().display().to_string()
        )
    }
    /// Server processes still running for this folder.
    pub fn processes(&self) -> Vec<i32> {
        modelplane_provider::platforms::local::process::processes_under(self.dir.path())
    }
    /// Prometheus and Alertmanager processes of managed monitors under this folder.
    pub fn monitor_processes(&self) -> Vec<i32> {
        modelplane_provider::platforms::local::process::processes_mentioning(
            &self.dir.path().join("monitors"),
        )
    }
    /// The recorded server process of an endpoint.
    pub fn process(
        &self,
        endpoint: &str,
    ) -> Option<modelplane_provider::platforms::local::process::Proc> {
        modelplane_provider::platforms::local::process::Dir::new(self.dir.path(), endpoint)
            .process()
    }
    pub fn token(&self, endpoint: &str) -> String {
        std::fs::read_to_string(
            self.dir
                .path()
                .join("endpoints")
                .join(endpoint)
                .join("token"),
        )
        .unwrap_or_default()
    }
}

impl Drop for Local {
    fn drop(&mut self) {
        // Never leave a server behind, whatever the test did.
        for pid in self.processes().into_iter().chain(self.monitor_processes()) {
            unsafe { libc::kill(pid, libc::SIGKILL) };
        }
    }
}

/// A blocking HTTP call for checks: status and JSON body.
pub fn http(
    method: &str,
    url: &str,
    token: Option<&str>,
    body: Option<&str>,
) -> Result<(u16, serde_json::Value), String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    rt.block_on(async {
        let c = reqwest::Client::new();
        let mut r = c.request(method.parse().map_err(|e| format!("{e}"))?, url);
        if let Some(t) = token {
            r = r.bearer_auth(t.trim());
        }
        if let Some(b) = body {
            r = r
                .header("content-type", "application/json")
                .body(b.to_string());
        }
        let resp = r.send().await.map_err(|e| format!("{url}: {e}"))?;
        let status = resp.status().as_u16();
        let json = resp.json().await.unwrap_or_default();
        Ok((status, json))
    })
}

/// A real prediction from the endpoint at `address` (its `url`) with the quickstart's
/// request: iris classes 0 and 2.
pub fn predicts(
    l: &Local,
    address: &'static str,
    endpoint: &'static str,
) -> tfplugin::acctest::Check {
    let dir = l.path();
    check(move |s| {
        let url = s
            .attr(address, "url")
            .and_then(|v| v.as_str().map(String::from))
            .ok_or("no url")?;
        let token = std::fs::read_to_string(dir.join("endpoints").join(endpoint).join("token"))
            .map_err(|e| e.to_string())?;
        let body =
            std::fs::read_to_string(repo().join("examples/quickstart/data/request.json")).unwrap();
        let u = format!("{url}/v2/models/{endpoint}/infer");
        let (status, answer) = http("POST", &u, Some(&token), Some(&body))?;
        if status == 200 && answer["outputs"][0]["data"] == serde_json::json!([0, 2]) {
            Ok(())
        } else {
            Err(format!("{u}: HTTP {status} {answer}"))
        }
    })
}

/// The quickstart's files, as HCL string literal bodies.
pub fn qs(rel: &str) -> String {
    repo_path(&format!("examples/quickstart/{rel}"))
}

/// A check from a closure.
pub fn check(
    f: impl Fn(&tfplugin::acctest::Shown) -> Result<(), String> + Send + Sync + 'static,
) -> tfplugin::acctest::Check {
    std::sync::Arc::new(f)
}

/// Provider, cluster `c` and store `s`.
pub fn cluster_and_store(l: &Local) -> String {
    format!(
        r#"{}
resource "modelplane_gpu_cluster" "c" {{
  name     = "c"
  platform = "local"
}}

resource "modelplane_model_store" "s" {{
  name          = "models"
  backend       = "local"
  force_destroy = true
}}
"#,
        l.provider()
    )
}

/// Why a test did not run.
#[derive(Clone, Copy)]
pub enum Skip {
    /// A tool it needs is missing: fails the test in CI, and fails `cargo xtask test` (which
    /// lists it) unless `--allow-skips`.
    Missing,
    /// An opt-in suite against a real cloud or cluster, waiting for credentials: listed at the
    /// end of `cargo xtask test`.
    OptIn,
}

/// Reports a test that does not run: on stderr, and in the file `cargo xtask test` names in
/// `MODELPLANE_SKIP_LOG`, so the run's summary shows it where a person sees it.
pub fn skipped(test: &str, kind: Skip, reason: &str) {
    if matches!(kind, Skip::Missing) && std::env::var_os("CI").is_some() {
        panic!("{test}: {reason}");
    }
    eprintln!("{test}: skipped; {reason}");
    if let Some(log) = std::env::var_os("MODELPLANE_SKIP_LOG") {
        use std::io::Write as _;
        let line = serde_json::json!({
            "test": test,
            "kind": match kind { Skip::Missing => "missing", Skip::OptIn => "opt-in" },
            "reason": reason,
        });
        // One short write with O_APPEND: lines from parallel tests do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
        {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// Whether Prometheus and Alertmanager are installed; in CI they must be.
pub fn have_prometheus(test: &str) -> bool {
    match modelplane_provider::monitoring::managed::binaries() {
        Ok(_) => true,
        Err(e) => {
            skipped(test, Skip::Missing, &e);
            false
        }
    }
}

/// Writes `main_tf` into `wd` and asserts that `terraform plan` fails saying `want` (a
/// module's variable validation, say).
pub fn plan_refuses(wd: &tfplugin::acctest::Workdir, main_tf: &str, want: &str) {
    std::fs::write(wd.dir.join("main.tf"), main_tf).unwrap();
    let _ = wd.run(&["init", "-no-color"]);
    let out = wd
        .run(&["plan", "-no-color"])
        .unwrap_or_else(|e| panic!("{e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Terraform wraps diagnostics at 80 columns.
    let flat = text.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(
        !out.status.success() && (text.contains(want) || flat.contains(want)),
        "want {want:?}:\n{text}"
    );
}
